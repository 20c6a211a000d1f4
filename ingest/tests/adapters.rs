//! Providers' published example payloads (`tests/fixtures/`) through each adapter, with
//! the normalized events checked field by field.

use sluice_ingest::{
    Secret,
    adapters::{Normalized, generic, helpdesk, meta, stripe, telegram, twilio, whatsapp},
    config::TelegramBot,
    identity::contact_id,
};
use sluice_schemas::{
    DeliveryPayload, Event, EventType, Media, MessagePayload, Origin, Payload, PaymentPayload,
    ReactionPayload, Scalar,
};

const NOW: i64 = 1_767_225_999_000;

fn fixture(path: &str) -> Vec<u8> {
    let full = format!("{}/tests/fixtures/{path}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&full).unwrap_or_else(|e| panic!("{full}: {e}"))
}

fn one(normalized: Normalized) -> Event {
    assert_eq!(normalized.ignored, 0, "{normalized:?}");
    assert_eq!(normalized.events.len(), 1, "{normalized:?}");
    let event = normalized.events.into_iter().next().unwrap();
    event.validate().unwrap();
    event.encode().unwrap();
    event
}

fn origin(channel_type: &str, channel_id: &str, urn: &str) -> Origin {
    Origin {
        channel_type: channel_type.into(),
        channel_id: channel_id.into(),
        urn: Some(urn.into()),
        username: None,
        provider_id: None,
    }
}

fn text(kind: &str, text: Option<&str>) -> MessagePayload {
    MessagePayload {
        text: text.map(str::to_owned),
        kind: kind.into(),
        media: None,
        reply_payload: None,
        edited: false,
    }
}

fn bot() -> TelegramBot {
    TelegramBot {
        secret_token: Secret::new("tok"),
        managers_chat_id: Some(-1_001_234_567_890),
    }
}

fn tg(path: &str) -> Normalized {
    telegram::normalize("acme", "support_bot", &bot(), &fixture(path), NOW).unwrap()
}

#[test]
fn telegram_text_message() {
    let event = one(tg("telegram/message_text.json"));
    let mut expected_origin = origin("telegram", "support_bot", "telegram:1111111");
    expected_origin.username = Some("Test".into());
    expected_origin.provider_id = Some("1111111:1365".into());
    assert_eq!(
        event,
        Event {
            id: "telegram:support_bot:10000".into(),
            tenant: "acme".into(),
            contact_id: contact_id("acme", "telegram:1111111"),
            event_type: EventType::MessageReceived,
            occurred_at: 1_441_645_532_000,
            session: None,
            origin: Some(expected_origin),
            chain_depth: 0,
            payload: Payload::Message(text("text", Some("/start"))),
        }
    );
}

#[test]
fn telegram_edited_message_and_callback() {
    let edited = one(tg("telegram/edited_message.json"));
    assert_eq!(edited.occurred_at, 1_441_646_600_000);
    let Payload::Message(message) = &edited.payload else {
        panic!()
    };
    assert!(message.edited);
    assert_eq!(message.text.as_deref(), Some("Edited text"));

    let button = one(tg("telegram/callback_query.json"));
    assert_eq!(button.event_type, EventType::MessageReceived);
    assert_eq!(button.occurred_at, NOW, "callback queries carry no date");
    assert_eq!(button.contact_id, contact_id("acme", "telegram:1111111"));
    assert_eq!(
        button.origin.as_ref().unwrap().provider_id.as_deref(),
        Some("4382bfdwdsb323b2d9")
    );
    assert_eq!(
        button.payload,
        Payload::Message(MessagePayload {
            reply_payload: Some("Data from button callback".into()),
            ..text("button", None)
        })
    );
}

#[test]
fn telegram_photo_uses_the_largest_size_and_caption() {
    let event = one(tg("telegram/message_photo.json"));
    assert_eq!(
        event.payload,
        Payload::Message(MessagePayload {
            media: Some(Media {
                url: "telegram-file:AgACAgIAAxkBAAIBZ2X-large".into(),
                mime_type: Some("image/jpeg".into()),
                caption: Some("My order arrived damaged".into()),
            }),
            ..text("image", Some("My order arrived damaged"))
        })
    );
}

#[test]
fn telegram_block_reaction_and_ignored_updates() {
    let blocked = one(tg("telegram/my_chat_member_kicked.json"));
    assert_eq!(blocked.event_type, EventType::ContactBlocked);
    assert_eq!(blocked.payload, Payload::None);
    assert_eq!(blocked.occurred_at, 1_441_645_700_000);

    let reaction = one(tg("telegram/message_reaction.json"));
    assert_eq!(
        reaction.payload,
        Payload::Reaction(ReactionPayload {
            message_id: "1111111:1370".into(),
            emoji: "👍".into(),
            removed: false,
        })
    );

    let poll = tg("telegram/poll.json");
    assert!(poll.events.is_empty());
    assert_eq!(poll.ignored, 1);
}

#[test]
fn telegram_forum_topic_message_is_a_manager_reply() {
    let event = one(tg("telegram/forum_topic_reply.json"));
    let urn = "telegram-topic:-1001234567890:42";
    assert_eq!(event.id, "telegram:support_bot:10004");
    assert_eq!(event.event_type, EventType::Custom);
    assert_eq!(event.contact_id, contact_id("acme", urn));
    let origin = event.origin.as_ref().unwrap();
    assert_eq!(origin.channel_id, "-1001234567890");
    assert_eq!(origin.urn.as_deref(), Some(urn));
    assert_eq!(origin.username.as_deref(), Some("maria_support"));
    let Payload::Custom(custom) = &event.payload else {
        panic!()
    };
    assert_eq!(custom.name, telegram::MANAGER_REPLY);
    assert_eq!(custom.fields["chat_id"], Scalar::Long(-1_001_234_567_890));
    assert_eq!(custom.fields["thread_id"], Scalar::Long(42));
    assert_eq!(custom.fields["message_id"], Scalar::Long(88));
    assert_eq!(custom.fields["manager"], Scalar::Long(2_222_222));
    assert_eq!(
        custom.fields["text"],
        Scalar::String("Hi! A replacement is on its way.".into())
    );
    // Without the managers' chat configured, a supergroup message is not a contact's.
    let plain = TelegramBot {
        managers_chat_id: None,
        ..bot()
    };
    let ignored = telegram::normalize(
        "acme",
        "support_bot",
        &plain,
        &fixture("telegram/forum_topic_reply.json"),
        NOW,
    )
    .unwrap();
    assert_eq!((ignored.events.len(), ignored.ignored), (0, 1));
}

fn wa(path: &str) -> Normalized {
    whatsapp::normalize("acme", &fixture(path)).unwrap()
}

#[test]
fn whatsapp_text_message() {
    let event = one(wa("whatsapp/text.json"));
    let wamid = "wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQTRBNjU5OUFFRTAzODEwMTQ0RgA=";
    let mut expected_origin = origin("whatsapp", "106540352242922", "whatsapp:16505551234");
    expected_origin.username = Some("Sheena Nelson".into());
    expected_origin.provider_id = Some(wamid.into());
    assert_eq!(
        event,
        Event {
            id: format!("whatsapp:{wamid}"),
            tenant: "acme".into(),
            contact_id: contact_id("acme", "whatsapp:16505551234"),
            event_type: EventType::MessageReceived,
            occurred_at: 1_749_416_383_000,
            session: None,
            origin: Some(expected_origin),
            chain_depth: 0,
            payload: Payload::Message(text("text", Some("Does it come in another color?"))),
        }
    );
}

#[test]
fn whatsapp_media_interactive_and_reaction() {
    let image = one(wa("whatsapp/image.json"));
    assert_eq!(
        image.payload,
        Payload::Message(MessagePayload {
            media: Some(Media {
                url: "whatsapp-media:1003383421387256".into(),
                mime_type: Some("image/jpeg".into()),
                caption: Some("Lizard's new hat".into()),
            }),
            ..text("image", Some("Lizard's new hat"))
        })
    );
    let button = one(wa("whatsapp/interactive_button_reply.json"));
    assert_eq!(
        button.payload,
        Payload::Message(MessagePayload {
            reply_payload: Some("change-button".into()),
            ..text("interactive", Some("Change"))
        })
    );
    let list = one(wa("whatsapp/interactive_list_reply.json"));
    assert_eq!(
        list.payload,
        Payload::Message(MessagePayload {
            reply_payload: Some("priority_express".into()),
            ..text("interactive", Some("Priority Mail Express"))
        })
    );
    let reaction = one(wa("whatsapp/reaction.json"));
    assert_eq!(reaction.event_type, EventType::ReactionReceived);
    assert_eq!(
        reaction.payload,
        Payload::Reaction(ReactionPayload {
            message_id: "wamid.HBgLMTY1MDM4Nzk0MzkVAgARGBI5QTNDQTVCM0Q0Q0Q2RTY3RTcA".into(),
            emoji: "👍".into(),
            removed: false,
        })
    );
}

#[test]
fn whatsapp_statuses_carry_the_error_and_the_action() {
    let delivered = one(wa("whatsapp/status_delivered.json"));
    let wamid = "wamid.HBgNNTUxNjk5MjMxODIyMhUCABEYEjgxQkVFRDVBQTVDODFDOTg3MQA=";
    assert_eq!(delivered.id, format!("whatsapp:{wamid}:delivered"));
    assert_eq!(delivered.event_type, EventType::MessageDelivered);
    assert_eq!(
        delivered.contact_id,
        contact_id("acme", "whatsapp:5516992318222")
    );
    assert_eq!(
        delivered.origin.as_ref().unwrap().channel_id,
        "590968830767958"
    );
    assert_eq!(
        delivered.payload,
        Payload::Delivery(DeliveryPayload {
            message_id: wamid.into(),
            action_id: Some("act-4f1c".into()),
            error_code: None,
            error: None,
        })
    );
    let failed = one(wa("whatsapp/status_failed.json"));
    assert_eq!(failed.event_type, EventType::MessageFailed);
    assert_eq!(failed.occurred_at, 1_744_350_000_000);
    assert_eq!(
        failed.payload,
        Payload::Delivery(DeliveryPayload {
            message_id: "wamid.HBgLMTY1MDM4Nzk0MzkVAgARGBI4NjdFNjBCNTM4QzQ2MjE3NjkA".into(),
            action_id: None,
            error_code: Some("131026".into()),
            error: Some("Message undeliverable: Message Undeliverable.".into()),
        })
    );
}

fn fb(path: &str) -> Normalized {
    meta::normalize("acme", &fixture(path), NOW).unwrap()
}

#[test]
fn messenger_messages_postbacks_reactions_deliveries() {
    let quick = one(fb("messenger/message_quick_reply.json"));
    assert_eq!(quick.id, "messenger:mid.1457764197618:41d102a3e1ae206a38");
    assert_eq!(quick.contact_id, contact_id("acme", "messenger:<PSID>"));
    assert_eq!(quick.occurred_at, 1_458_692_752_478);
    assert_eq!(quick.origin.as_ref().unwrap().channel_id, "<PAGE_ID>");
    assert_eq!(
        quick.payload,
        Payload::Message(MessagePayload {
            reply_payload: Some("<DEVELOPER_DEFINED_PAYLOAD>".into()),
            ..text("button", Some("hello, world!"))
        })
    );
    let image = one(fb("messenger/message_image.json"));
    assert_eq!(
        image.payload,
        Payload::Message(MessagePayload {
            media: Some(Media {
                url: "<IMAGE_URL>".into(),
                mime_type: None,
                caption: None,
            }),
            ..text("image", None)
        })
    );
    let postback = one(fb("messenger/postback.json"));
    assert!(postback.id.starts_with("messenger:postback:m_AG5Hz2"));
    assert_eq!(
        postback.payload,
        Payload::Message(MessagePayload {
            reply_payload: Some("<USER_DEFINED_PAYLOAD>".into()),
            ..text("button", Some("<TITLE_FOR_THE_CTA>"))
        })
    );
    let reaction = one(fb("messenger/reaction.json"));
    assert_eq!(
        reaction.payload,
        Payload::Reaction(ReactionPayload {
            message_id: "<MID_OF_ReactedTo_Message>".into(),
            emoji: "\u{2764}\u{FE0F}".into(),
            removed: false,
        })
    );
    let delivery = one(fb("messenger/delivery.json"));
    assert_eq!(delivery.event_type, EventType::MessageDelivered);
    assert_eq!(delivery.occurred_at, NOW);
    assert_eq!(
        delivery.id,
        "messenger:mid.1458668856218:ed81099e15d3f4f233:delivered"
    );
    let echo = fb("messenger/echo.json");
    assert_eq!((echo.events.len(), echo.ignored), (0, 1));
}

#[test]
fn instagram_messages_get_instagram_urns() {
    let event = one(fb("messenger/instagram_message.json"));
    assert_eq!(event.id, "instagram:<MESSAGE_ID>");
    assert_eq!(
        event.origin,
        Some(Origin {
            provider_id: Some("<MESSAGE_ID>".into()),
            ..origin("instagram", "<IGID>", "instagram:<IGSID>")
        })
    );
    assert_eq!(event.contact_id, contact_id("acme", "instagram:<IGSID>"));
}

fn form(path: &str) -> Vec<(String, String)> {
    let map: std::collections::BTreeMap<String, String> =
        serde_json::from_slice(&fixture(path)).unwrap();
    map.into_iter().collect()
}

#[test]
fn twilio_incoming_sms_and_mms() {
    let sms = one(twilio::normalize("acme", &form("twilio/incoming_sms.json"), NOW).unwrap());
    assert_eq!(
        sms,
        Event {
            id: "twilio:SM1f0e8ae6ade43cb3c0ce4525424e404f".into(),
            tenant: "acme".into(),
            contact_id: contact_id("acme", "tel:+14017122661"),
            event_type: EventType::MessageReceived,
            occurred_at: NOW,
            session: None,
            origin: Some(Origin {
                provider_id: Some("SM1f0e8ae6ade43cb3c0ce4525424e404f".into()),
                ..origin("sms", "+15558675310", "tel:+14017122661")
            }),
            chain_depth: 0,
            payload: Payload::Message(text(
                "text",
                Some("Ahoy! We can't wait to see what you build.")
            )),
        }
    );
    let mms = one(twilio::normalize("acme", &form("twilio/incoming_mms.json"), NOW).unwrap());
    let Payload::Message(message) = &mms.payload else {
        panic!()
    };
    assert_eq!(message.kind, "image");
    assert_eq!(message.text, None);
    let media = message.media.as_ref().unwrap();
    assert!(
        media
            .url
            .ends_with("/Media/ME1c2f6a2dd0e7d1f9e5c9a2b8b1a2c3d4")
    );
    assert_eq!(media.mime_type.as_deref(), Some("image/jpeg"));
}

#[test]
fn twilio_status_callbacks() {
    let delivered =
        one(twilio::normalize("acme", &form("twilio/status_delivered.json"), NOW).unwrap());
    assert_eq!(
        delivered.id,
        "twilio:SM2xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx:delivered"
    );
    assert_eq!(delivered.event_type, EventType::MessageDelivered);
    assert_eq!(delivered.contact_id, contact_id("acme", "tel:+15558675310"));
    let failed =
        one(twilio::normalize("acme", &form("twilio/status_undelivered.json"), NOW).unwrap());
    assert_eq!(failed.event_type, EventType::MessageFailed);
    assert_eq!(
        failed.payload,
        Payload::Delivery(DeliveryPayload {
            message_id: "SM3xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx".into(),
            action_id: None,
            error_code: Some("30003".into()),
            error: None,
        })
    );
    let queued = twilio::normalize("acme", &form("twilio/status_queued.json"), NOW).unwrap();
    assert_eq!((queued.events.len(), queued.ignored), (0, 1));
}

#[test]
fn stripe_payments_by_customer_email_and_metadata() {
    let paid =
        one(stripe::normalize("acme", &fixture("stripe/payment_intent.succeeded.json")).unwrap());
    assert_eq!(
        paid,
        Event {
            id: "stripe:pi_3QxYcKLkdIwHu7ix0vXk1aBc".into(),
            tenant: "acme".into(),
            contact_id: contact_id("acme", "stripe:cus_Na6dX7aXxi11N4"),
            event_type: EventType::PaymentReceived,
            occurred_at: 1_767_225_600_000,
            session: None,
            origin: Some(Origin {
                provider_id: Some("evt_3QxYcKLkdIwHu7ix1RrB4Cd7".into()),
                ..origin("stripe", "stripe", "stripe:cus_Na6dX7aXxi11N4")
            }),
            chain_depth: 0,
            payload: Payload::Payment(PaymentPayload {
                payment_id: "pi_3QxYcKLkdIwHu7ix0vXk1aBc".into(),
                amount_minor: 4990,
                currency: "EUR".into(),
                description: Some("Order #1001".into()),
            }),
        }
    );
    // The checkout session of the same payment shares the event id (one payment).
    let checkout =
        one(stripe::normalize("acme", &fixture("stripe/checkout.session.completed.json")).unwrap());
    assert_eq!(checkout.id, paid.id);
    assert_eq!(
        checkout.contact_id,
        contact_id("acme", "mailto:jenny.rosen@example.com")
    );
    let linked = one(stripe::normalize(
        "acme",
        &fixture("stripe/payment_intent.succeeded.metadata_urn.json"),
    )
    .unwrap());
    assert_eq!(linked.contact_id, contact_id("acme", "telegram:1111111"));
    for ignored in [
        "stripe/payment_intent.succeeded.anonymous.json",
        "stripe/customer.created.json",
    ] {
        let out = stripe::normalize("acme", &fixture(ignored)).unwrap();
        assert_eq!((out.events.len(), out.ignored), (0, 1), "{ignored}");
    }
}

#[test]
fn helpdesk_session_events() {
    let assigned =
        one(helpdesk::normalize("acme", &fixture("helpdesk/session_assigned.json")).unwrap());
    assert_eq!(assigned.id, "helpdesk:T-88231/assigned/3");
    assert_eq!(assigned.event_type, EventType::SessionAssigned);
    assert_eq!(assigned.contact_id, contact_id("acme", "telegram:1111111"));
    let session = assigned.session.as_ref().unwrap();
    assert_eq!(session.session_type, "human");
    assert_eq!(session.assignee.as_deref(), Some("agent-7"));
    let closed =
        one(helpdesk::normalize("acme", &fixture("helpdesk/session_closed.json")).unwrap());
    assert_eq!(closed.contact_id, "c-5f3a9e2b");
    assert_eq!(
        closed.session.as_ref().unwrap().closing_message.as_deref(),
        Some("Glad we could help!")
    );
    let wrong = br#"{"id":"x","type":"message.received","occurred_at":1,"contact":{"id":"c"},"session":{"id":"s","status":"open","channel_type":"web","channel_id":"w"}}"#;
    assert!(helpdesk::normalize("acme", wrong).is_err());
}

#[test]
fn generic_events_single_batch_and_tenant_guard() {
    let single = one(generic::normalize("acme", &fixture("generic/custom.json")).unwrap());
    assert_eq!(single.id, "tg:884213309");
    assert_eq!(single.contact_id, "c-5f3a9e2b");
    let batch = generic::normalize("acme", &fixture("generic/batch_with_urn.json")).unwrap();
    assert_eq!(batch.events.len(), 2);
    assert_eq!(batch.events[0].tenant, "acme");
    assert_eq!(
        batch.events[0].contact_id,
        contact_id("acme", "mailto:jenny.rosen@example.com")
    );
    assert_eq!(batch.events[1].event_type, EventType::ContactFieldUpdated);
    let other = generic::normalize("globex", &fixture("generic/custom.json")).unwrap_err();
    assert_eq!(other.status().as_u16(), 403, "{other}");
    let invalid =
        br#"{"id":"e","tenant":"acme","contact_id":"c","type":"payment.received","occurred_at":1}"#;
    let err = generic::normalize("acme", invalid).unwrap_err().to_string();
    assert!(err.contains("payment"), "{err}");
    assert!(generic::normalize("acme", b"[]").is_err());
    assert!(generic::normalize("acme", br#"{"id":"e","type":"custom","occurred_at":1}"#).is_err());
}
