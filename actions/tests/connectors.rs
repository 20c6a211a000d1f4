//! Each connector against a local server that checks the provider's published
//! request shape: path, method, auth header, JSON or form body.

mod support;

use serde_json::json;
use sluice_actions::signature;
use sluice_schemas::{
    ActionPayload, ActionType, AiComplete, Button, EventType, HttpCall, OutboundMedia, Payload,
    PublishEvent, Scalar, SendTemplate, SessionChange, StartFlow, Tag, UpdateField,
};
use support::{Harness, Provider, action, config, send};

#[tokio::test]
async fn telegram_text_buttons_and_media() {
    let provider = Provider::start().await;
    let mut h = Harness::start(config(&provider)).await;
    let mut with_buttons = send("a1", "c1", "telegram", "telegram:4242", "Pick one");
    if let ActionPayload::SendMessage(m) = &mut with_buttons.payload {
        m.buttons = vec![Button {
            id: "yes".into(),
            title: "Yes".into(),
        }];
    }
    let mut photo = send("a2", "c1", "telegram", "telegram:4242", "a cat");
    if let ActionPayload::SendMessage(m) = &mut photo.payload {
        m.media = Some(OutboundMedia {
            url: "https://x/cat.png".into(),
            mime_type: Some("image/png".into()),
            caption: None,
        });
    }
    h.publish(&[with_buttons, photo]).await;
    let events = h.events(2).await;
    let seen = provider.requests();
    assert_eq!(seen.len(), 2);
    assert_eq!(
        (seen[0].method.as_str(), seen[0].path.as_str()),
        ("POST", "/bot123:ABC/sendMessage")
    );
    assert_eq!(seen[0].header("content-type"), Some("application/json"));
    assert_eq!(
        seen[0].json(),
        json!({"chat_id": 4242, "text": "Pick one", "reply_markup": {"inline_keyboard": [[{"text": "Yes", "callback_data": "yes"}]]}})
    );
    assert_eq!(seen[1].path, "/bot123:ABC/sendPhoto");
    assert_eq!(
        seen[1].json(),
        json!({"chat_id": 4242, "photo": "https://x/cat.png", "caption": "a cat"})
    );
    for event in &events {
        assert_eq!(event.event_type, EventType::MessageSent);
        let Payload::Delivery(d) = &event.payload else {
            panic!("{event:?}")
        };
        assert_eq!(d.message_id, "501");
    }
    assert_eq!(events[0].id, "a1/sent");
    h.stop().await;
}

#[tokio::test]
async fn telegram_sends_to_a_forum_topic_urn_in_its_thread() {
    let provider = Provider::start().await;
    let mut h = Harness::start(config(&provider)).await;
    h.publish(&[send(
        "t1",
        "c1",
        "telegram",
        "telegram-topic:-1005551234:9",
        "A note for the managers",
    )])
    .await;
    let events = h.events(1).await;
    let seen = provider.requests();
    assert_eq!(seen[0].path, "/bot123:ABC/sendMessage");
    assert_eq!(
        seen[0].json(),
        json!({"chat_id": -1005551234, "message_thread_id": 9, "text": "A note for the managers"})
    );
    assert_eq!(events[0].event_type, EventType::MessageSent);
    h.stop().await;
}

#[tokio::test]
async fn telegram_support_desk_topics_and_status() {
    let provider = Provider::start().await;
    let mut cfg = config(&provider);
    cfg.telegram.support_chat_id = Some(-1001234);
    let mut h = Harness::start(cfg).await;
    let session = |id: &str, t: ActionType| {
        action(
            id,
            "c7",
            t,
            ActionPayload::SessionChange(SessionChange {
                session_id: "s1".into(),
                user: Some("agent-1".into()),
                team: None,
                message: None,
            }),
        )
    };
    h.publish(&[
        send("d1", "c7", "telegram_desk", "Alice", "My order is late"),
        send("d2", "c7", "telegram_desk", "Alice", "Any news?"),
        session("d3", ActionType::SessionAssign),
        session("d4", ActionType::SessionClose),
    ])
    .await;
    let events = h.events(5).await;
    let seen = provider.requests();
    let paths: Vec<&str> = seen
        .iter()
        .map(|s| s.path.trim_start_matches("/bot123:ABC/"))
        .collect();
    assert_eq!(
        paths,
        [
            "createForumTopic",
            "sendMessage",
            "sendMessage",
            "editForumTopic",
            "editForumTopic"
        ]
    );
    assert_eq!(
        seen[0].json(),
        json!({"chat_id": -1001234, "name": "❗️ Alice"})
    );
    assert_eq!(
        seen[1].json(),
        json!({"chat_id": -1001234, "message_thread_id": 77, "text": "My order is late"})
    );
    assert_eq!(
        seen[3].json(),
        json!({"chat_id": -1001234, "message_thread_id": 77, "name": "📝 Alice"})
    );
    assert_eq!(seen[4].json()["name"], "🏁 Alice");
    let types: Vec<EventType> = events.iter().map(|e| e.event_type).collect();
    assert_eq!(
        types,
        [
            EventType::MessageSent,
            EventType::Custom,
            EventType::MessageSent,
            EventType::SessionAssigned,
            EventType::SessionClosed
        ]
    );
    // Creating the topic links its URN to the contact, so a manager's reply there
    // reaches the contact's flows.
    assert_eq!(events[1].id, "d1/link");
    assert_eq!(events[1].contact_id, "c7");
    let Payload::Custom(link) = &events[1].payload else {
        panic!("{:?}", events[1])
    };
    assert_eq!(link.name, "contact.link_identity");
    assert_eq!(
        link.fields["urn"],
        Scalar::String("telegram-topic:-1001234:77".into())
    );
    assert_eq!(
        events[3].session.as_ref().unwrap().assignee.as_deref(),
        Some("agent-1")
    );
    h.stop().await;
}

#[tokio::test]
async fn whatsapp_template_text_and_interactive() {
    let provider = Provider::start().await;
    let mut h = Harness::start(config(&provider)).await;
    let template = action(
        "w1",
        "c2",
        ActionType::MessageSendTemplate,
        ActionPayload::SendTemplate(SendTemplate {
            channel_type: "whatsapp".into(),
            channel_id: "106540352242922".into(),
            to: "whatsapp:+4915112345678".into(),
            template: "order_update".into(),
            language: "en_US".into(),
            parameters: vec!["Alice".into(), "#42".into()],
        }),
    );
    let mut buttons = send("w2", "c2", "whatsapp", "whatsapp:+4915112345678", "Rate us");
    if let ActionPayload::SendMessage(m) = &mut buttons.payload {
        m.channel_id = "106540352242922".into();
        m.buttons = vec![
            Button {
                id: "good".into(),
                title: "Good".into(),
            },
            Button {
                id: "bad".into(),
                title: "Bad".into(),
            },
        ];
    }
    h.publish(&[template, buttons]).await;
    let events = h.events(2).await;
    let seen = provider.requests();
    assert_eq!(seen[0].path, "/v21.0/106540352242922/messages");
    assert_eq!(seen[0].header("authorization"), Some("Bearer wa-token"));
    assert_eq!(
        seen[0].json(),
        json!({
            "messaging_product": "whatsapp", "recipient_type": "individual", "to": "4915112345678", "type": "template",
            "template": {"name": "order_update", "language": {"code": "en_US"},
                "components": [{"type": "body", "parameters": [{"type": "text", "text": "Alice"}, {"type": "text", "text": "#42"}]}]}
        })
    );
    assert_eq!(
        seen[1].json()["interactive"],
        json!({
            "type": "button", "body": {"text": "Rate us"},
            "action": {"buttons": [{"type": "reply", "reply": {"id": "good", "title": "Good"}}, {"type": "reply", "reply": {"id": "bad", "title": "Bad"}}]}
        })
    );
    let Payload::Delivery(d) = &events[0].payload else {
        panic!()
    };
    assert_eq!(d.message_id, "wamid.HBgL");
    h.stop().await;
}

#[tokio::test]
async fn sms_is_form_encoded_with_basic_auth() {
    let provider = Provider::start().await;
    let mut h = Harness::start(config(&provider)).await;
    let mut sms = send("s1", "c3", "sms", "tel:+15551234567", "Your code is 1234");
    if let ActionPayload::SendMessage(m) = &mut sms.payload {
        m.channel_id = "+15550000000".into();
    }
    h.publish(&[sms]).await;
    let events = h.events(1).await;
    let seen = &provider.requests()[0];
    assert_eq!(
        (seen.method.as_str(), seen.path.as_str()),
        ("POST", "/2010-04-01/Accounts/AC123/Messages.json")
    );
    assert_eq!(
        seen.header("content-type"),
        Some("application/x-www-form-urlencoded")
    );
    // base64("AC123:sms-token")
    assert_eq!(
        seen.header("authorization"),
        Some("Basic QUMxMjM6c21zLXRva2Vu")
    );
    assert_eq!(
        seen.body,
        "To=%2B15551234567&From=%2B15550000000&Body=Your+code+is+1234"
    );
    let Payload::Delivery(d) = &events[0].payload else {
        panic!()
    };
    assert_eq!(d.message_id, "SM123");
    h.stop().await;
}

#[tokio::test]
async fn web_chat_webhook_is_signed_and_idempotent() {
    let provider = Provider::start().await;
    let mut h = Harness::start(config(&provider)).await;
    h.publish(&[send("web-1", "c4", "web", "web:visitor-9", "Hi there")])
        .await;
    h.events(1).await;
    let seen = &provider.requests()[0];
    assert_eq!(seen.path, "/web/hook");
    assert_eq!(seen.header("idempotency-key"), Some("web-1"));
    let header = seen.header("x-sluice-signature").unwrap();
    let t: u64 = header
        .strip_prefix("t=")
        .unwrap()
        .split(',')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(header, signature(b"hook-secret", t, seen.body.as_bytes()));
    assert_eq!(seen.json()["text"], "Hi there");
    assert_eq!(seen.json()["to"], "web:visitor-9");
    h.stop().await;
}

#[tokio::test]
async fn ai_completion_and_custom_function_reply_as_correlated_events() {
    let provider = Provider::start().await;
    let mut h = Harness::start(config(&provider)).await;
    let ai = action(
        "ai-1",
        "c5",
        ActionType::AiComplete,
        ActionPayload::AiComplete(AiComplete {
            model: "gpt-test".into(),
            system: Some("Be brief".into()),
            prompt: "Classify: refund".into(),
            timeout_ms: 5_000,
        }),
    );
    let call = action(
        "fn-1",
        "c6",
        ActionType::HttpCall,
        ActionPayload::HttpCall(HttpCall {
            method: "put".into(),
            url: format!("{}/crm/orders/42", provider.url()),
            headers: [("x-api-key".to_owned(), "k1".to_owned())].into(),
            body: Some("{\"a\":1}".into()),
            timeout_ms: 5_000,
        }),
    );
    h.publish(&[ai, call]).await;
    let mut events = h.events(2).await;
    events.sort_by(|a, b| a.id.cmp(&b.id));
    let seen = provider.requests();
    let ai_req = seen
        .iter()
        .find(|s| s.path == "/v1/chat/completions")
        .unwrap();
    assert_eq!(ai_req.header("authorization"), Some("Bearer sk-test"));
    assert_eq!(
        ai_req.json(),
        json!({"model": "gpt-test", "messages": [{"role": "system", "content": "Be brief"}, {"role": "user", "content": "Classify: refund"}]})
    );
    let fn_req = seen.iter().find(|s| s.path == "/crm/orders/42").unwrap();
    assert_eq!(
        (fn_req.method.as_str(), fn_req.body.as_str()),
        ("PUT", "{\"a\":1}")
    );
    assert_eq!(fn_req.header("x-api-key"), Some("k1"));
    assert_eq!(fn_req.header("idempotency-key"), Some("fn-1"));
    assert_eq!(events[0].event_type, EventType::AiResult);
    let Payload::Result(r) = &events[0].payload else {
        panic!()
    };
    assert_eq!(
        (r.action_id.as_str(), r.status.as_str(), r.body.as_deref()),
        ("ai-1", "success", Some("Hello from AI"))
    );
    assert_eq!(events[1].event_type, EventType::FunctionResult);
    let Payload::Result(r) = &events[1].payload else {
        panic!()
    };
    assert_eq!((r.status.as_str(), r.status_code), ("success", Some(200)));
    h.stop().await;
}

#[tokio::test]
async fn custom_function_timeout_is_reported_as_timeout() {
    let provider = Provider::start().await;
    let mut slow = support::Answer::json(200, json!({}));
    slow.delay = std::time::Duration::from_millis(1500);
    provider.script(slow);
    let mut h = Harness::start(config(&provider)).await;
    h.publish(&[action(
        "fn-slow",
        "c6",
        ActionType::HttpCall,
        ActionPayload::HttpCall(HttpCall {
            method: "GET".into(),
            url: format!("{}/slow", provider.url()),
            headers: Default::default(),
            body: None,
            timeout_ms: 300,
        }),
    )])
    .await;
    let events = h.events(1).await;
    let Payload::Result(r) = &events[0].payload else {
        panic!()
    };
    assert_eq!(r.status, "timeout", "{r:?}");
    h.stop().await;
}

#[tokio::test]
async fn profile_writes_go_to_the_store_and_emit_nothing_while_events_are_published() {
    let provider = Provider::start().await;
    let mut h = Harness::start(config(&provider)).await;
    h.publish(&[
        action(
            "p1",
            "c8",
            ActionType::ContactUpdateField,
            ActionPayload::UpdateField(UpdateField {
                field: "city".into(),
                value: Some("Berlin".into()),
            }),
        ),
        action(
            "p2",
            "c8",
            ActionType::ContactTag,
            ActionPayload::Tag(Tag {
                tag: "vip".into(),
                add: true,
            }),
        ),
        action(
            "e1",
            "c8",
            ActionType::EventPublish,
            ActionPayload::PublishEvent(PublishEvent {
                name: "cart.abandoned".into(),
                fields: Default::default(),
            }),
        ),
        action(
            "f1",
            "c8",
            ActionType::FlowStart,
            ActionPayload::StartFlow(StartFlow {
                flow_id: "onboarding".into(),
                wait: true,
                params: Default::default(),
            }),
        ),
    ])
    .await;
    // Only the custom event and the flow start come back: profile writes emit nothing.
    let events = h.events(2).await;
    assert_eq!(events[0].id, "e1/event");
    assert_eq!(events[0].chain_depth, 1);
    let Payload::Custom(c) = &events[0].payload else {
        panic!()
    };
    assert_eq!(c.name, "cart.abandoned");
    assert_eq!(events[1].event_type, EventType::FlowStarted);
    let Payload::Flow(f) = &events[1].payload else {
        panic!()
    };
    assert_eq!(
        (f.flow_id.as_str(), f.parent_run_id.as_deref()),
        ("onboarding", Some("run-1"))
    );
    let profile = h.stores.profiles.get("acme", "c8").await.unwrap();
    assert_eq!(
        profile.fields.get("city").map(String::as_str),
        Some("Berlin")
    );
    assert!(profile.tags.contains("vip"));
    assert!(provider.requests().is_empty());
    h.stop().await;
}

#[tokio::test]
async fn metrics_and_readiness_are_served() {
    let provider = Provider::start().await;
    let mut h = Harness::start(config(&provider)).await;
    h.publish(&[send("m1", "c9", "web", "web:v", "hello")])
        .await;
    h.events(1).await;
    assert!(h.telemetry.is_ready());
    let text = h.telemetry.render();
    assert!(
        text.contains(r#"sluice_actions_total{outcome="success",type="message.send"} 1"#),
        "{text}"
    );
    assert!(text.contains("sluice_actions_delivery_seconds_bucket"));
    h.stop().await;
}
