//! proptest strategies and samples shared by the integration tests.

#![allow(dead_code, unreachable_pub)]

use std::collections::BTreeMap;

use proptest::collection::{btree_map, vec};
use proptest::option;
use proptest::prelude::*;
use sluice_schemas::*;

/// Any string: empty, ASCII, any unicode scalar.
pub fn text() -> BoxedStrategy<String> {
    prop_oneof![
        Just(String::new()),
        "[a-z0-9._/-]{1,12}",
        any::<String>(),
        "\\PC{0,40}",
    ]
    .boxed()
}

pub fn opt_text() -> BoxedStrategy<Option<String>> {
    option::of(text()).boxed()
}

/// i64 with its extremes weighted in.
pub fn long() -> BoxedStrategy<i64> {
    prop_oneof![
        Just(i64::MIN),
        Just(i64::MAX),
        Just(0),
        Just(-1),
        any::<i64>()
    ]
    .boxed()
}

pub fn int() -> BoxedStrategy<i32> {
    prop_oneof![Just(i32::MIN), Just(i32::MAX), Just(0), any::<i32>()].boxed()
}

pub fn string_map() -> BoxedStrategy<BTreeMap<String, String>> {
    btree_map(text(), text(), 0..4).boxed()
}

/// Finite doubles: JSON has no NaN or infinity.
pub fn scalar() -> BoxedStrategy<Scalar> {
    prop_oneof![
        Just(Scalar::Null),
        any::<bool>().prop_map(Scalar::Bool),
        long().prop_map(Scalar::Long),
        prop_oneof![
            Just(0.0),
            Just(-0.0),
            Just(f64::MAX),
            Just(f64::MIN_POSITIVE),
            any::<f64>().prop_filter("finite", |v| v.is_finite())
        ]
        .prop_map(Scalar::Double),
        text().prop_map(Scalar::String),
    ]
    .boxed()
}

pub fn fields() -> BoxedStrategy<Fields> {
    btree_map(text(), scalar(), 0..5).boxed()
}

pub fn event_type() -> BoxedStrategy<EventType> {
    proptest::sample::select(EventType::ALL).boxed()
}

pub fn action_type() -> BoxedStrategy<ActionType> {
    proptest::sample::select(ActionType::ALL).boxed()
}

pub fn session() -> BoxedStrategy<Session> {
    (
        text(),
        text(),
        text(),
        text(),
        text(),
        opt_text(),
        opt_text(),
    )
        .prop_map(
            |(id, session_type, status, channel_type, channel_id, assignee, closing_message)| {
                Session {
                    id,
                    session_type,
                    status,
                    channel_type,
                    channel_id,
                    assignee,
                    closing_message,
                }
            },
        )
        .boxed()
}

pub fn origin() -> BoxedStrategy<Origin> {
    (text(), text(), opt_text(), opt_text(), opt_text())
        .prop_map(
            |(channel_type, channel_id, urn, username, provider_id)| Origin {
                channel_type,
                channel_id,
                urn,
                username,
                provider_id,
            },
        )
        .boxed()
}

/// Every variant of the event payload union.
pub fn payload() -> BoxedStrategy<Payload> {
    let media = option::of((text(), opt_text(), opt_text()).prop_map(
        |(url, mime_type, caption)| Media {
            url,
            mime_type,
            caption,
        },
    ));
    prop_oneof![
        Just(Payload::None),
        (opt_text(), text(), media, opt_text(), any::<bool>()).prop_map(
            |(text, kind, media, reply_payload, edited)| Payload::Message(MessagePayload {
                text,
                kind,
                media,
                reply_payload,
                edited,
            })
        ),
        (text(), opt_text(), opt_text(), opt_text()).prop_map(
            |(message_id, action_id, error_code, error)| Payload::Delivery(DeliveryPayload {
                message_id,
                action_id,
                error_code,
                error,
            })
        ),
        (text(), text(), any::<bool>()).prop_map(|(message_id, emoji, removed)| {
            Payload::Reaction(ReactionPayload {
                message_id,
                emoji,
                removed,
            })
        }),
        (text(), long(), text(), opt_text()).prop_map(
            |(payment_id, amount_minor, currency, description)| Payload::Payment(PaymentPayload {
                payment_id,
                amount_minor,
                currency,
                description,
            })
        ),
        (text(), opt_text(), opt_text()).prop_map(|(field, old, new)| Payload::ProfileChange(
            ProfileChangePayload { field, old, new }
        )),
        (
            text(),
            int(),
            text(),
            opt_text(),
            opt_text(),
            opt_text(),
            string_map()
        )
            .prop_map(
                |(flow_id, flow_version, run_id, parent_run_id, outcome, error, outputs)| {
                    Payload::Flow(FlowPayload {
                        flow_id,
                        flow_version,
                        run_id,
                        parent_run_id,
                        outcome,
                        error,
                        outputs,
                    })
                }
            ),
        (text(), fields())
            .prop_map(|(name, fields)| Payload::Custom(CustomPayload { name, fields })),
        (text(), text(), option::of(int()), opt_text(), opt_text()).prop_map(
            |(action_id, status, status_code, body, error)| Payload::Result(ResultPayload {
                action_id,
                status,
                status_code,
                body,
                error,
            })
        ),
        (text(), text(), long()).prop_map(|(run_id, node_id, due_at)| Payload::Timer(
            TimerPayload {
                run_id,
                node_id,
                due_at
            }
        )),
    ]
    .boxed()
}

pub fn event() -> BoxedStrategy<Event> {
    (
        (text(), text(), text(), event_type(), long()),
        (
            option::of(session()),
            option::of(origin()),
            int(),
            payload(),
        ),
    )
        .prop_map(
            |(
                (id, tenant, contact_id, event_type, occurred_at),
                (session, origin, chain_depth, payload),
            )| Event {
                id,
                tenant,
                contact_id,
                event_type,
                occurred_at,
                session,
                origin,
                chain_depth,
                payload,
            },
        )
        .boxed()
}

/// Every variant of the action payload union.
pub fn action_payload() -> BoxedStrategy<ActionPayload> {
    let media = option::of((text(), opt_text(), opt_text()).prop_map(
        |(url, mime_type, caption)| OutboundMedia {
            url,
            mime_type,
            caption,
        },
    ));
    let buttons = vec(
        (text(), text()).prop_map(|(id, title)| Button { id, title }),
        0..3,
    );
    prop_oneof![
        (
            (text(), text(), text()),
            (opt_text(), opt_text(), media, buttons)
        )
            .prop_map(
                |((channel_type, channel_id, to), (session_id, text, media, buttons))| {
                    ActionPayload::SendMessage(SendMessage {
                        channel_type,
                        channel_id,
                        to,
                        session_id,
                        text,
                        media,
                        buttons,
                    })
                }
            ),
        (text(), text(), text(), opt_text(), text(), text()).prop_map(
            |(channel_type, channel_id, to, session_id, shortcut, text)| {
                ActionPayload::SendShort(SendShort {
                    channel_type,
                    channel_id,
                    to,
                    session_id,
                    shortcut,
                    text,
                })
            }
        ),
        (text(), text(), text(), text(), text(), vec(text(), 0..4)).prop_map(
            |(channel_type, channel_id, to, template, language, parameters)| {
                ActionPayload::SendTemplate(SendTemplate {
                    channel_type,
                    channel_id,
                    to,
                    template,
                    language,
                    parameters,
                })
            }
        ),
        (text(), opt_text(), text(), long()).prop_map(|(model, system, prompt, timeout_ms)| {
            ActionPayload::AiComplete(AiComplete {
                model,
                system,
                prompt,
                timeout_ms,
            })
        }),
        (text(), text(), string_map(), opt_text(), long()).prop_map(
            |(method, url, headers, body, timeout_ms)| ActionPayload::HttpCall(HttpCall {
                method,
                url,
                headers,
                body,
                timeout_ms,
            })
        ),
        (text(), opt_text())
            .prop_map(|(field, value)| ActionPayload::UpdateField(UpdateField { field, value })),
        (text(), any::<bool>()).prop_map(|(tag, add)| ActionPayload::Tag(Tag { tag, add })),
        (text(), opt_text(), opt_text(), opt_text()).prop_map(
            |(session_id, user, team, message)| ActionPayload::SessionChange(SessionChange {
                session_id,
                user,
                team,
                message,
            })
        ),
        (text(), any::<bool>(), string_map()).prop_map(|(flow_id, wait, params)| {
            ActionPayload::StartFlow(StartFlow {
                flow_id,
                wait,
                params,
            })
        }),
        (text(), fields())
            .prop_map(|(name, fields)| ActionPayload::PublishEvent(PublishEvent { name, fields })),
    ]
    .boxed()
}

pub fn action() -> BoxedStrategy<Action> {
    (
        (text(), text(), text(), text(), text(), int()),
        (text(), action_type(), long(), option::of(long()), int()),
        action_payload(),
    )
        .prop_map(
            |(
                (id, tenant, contact_id, run_id, flow_id, flow_version),
                (node_id, action_type, created_at, not_before, chain_depth),
                payload,
            )| Action {
                id,
                tenant,
                contact_id,
                run_id,
                flow_id,
                flow_version,
                node_id,
                action_type,
                created_at,
                not_before,
                chain_depth,
                payload,
            },
        )
        .boxed()
}

/// A typical `message.received` event, about 150 bytes on the wire.
pub fn sample_event() -> Event {
    Event {
        id: "tg:bot-7:update-884213309".into(),
        tenant: "acme".into(),
        contact_id: "c-5f3a9e2b".into(),
        event_type: EventType::MessageReceived,
        occurred_at: 1_767_225_600_123,
        session: Some(Session {
            id: "s-91c2".into(),
            session_type: "bot".into(),
            status: "open".into(),
            channel_type: "telegram".into(),
            channel_id: "bot-7".into(),
            assignee: None,
            closing_message: None,
        }),
        origin: None,
        chain_depth: 0,
        payload: Payload::Message(MessagePayload {
            text: Some("Hi! Where is my order #4417?".into()),
            kind: "text".into(),
            media: None,
            reply_payload: None,
            edited: false,
        }),
    }
}

/// A typical `message.send` action.
pub fn sample_action() -> Action {
    Action {
        id: "run-77:step-3".into(),
        tenant: "acme".into(),
        contact_id: "c-5f3a9e2b".into(),
        run_id: "run-77".into(),
        flow_id: "support-bot".into(),
        flow_version: 4,
        node_id: "reply".into(),
        action_type: ActionType::MessageSend,
        created_at: 1_767_225_600_456,
        not_before: None,
        chain_depth: 0,
        payload: ActionPayload::SendMessage(SendMessage {
            channel_type: "telegram".into(),
            channel_id: "bot-7".into(),
            to: "telegram:884213".into(),
            session_id: Some("s-91c2".into()),
            text: Some("Your order ships tomorrow.".into()),
            media: None,
            buttons: vec![Button {
                id: "ok".into(),
                title: "Thanks".into(),
            }],
        }),
    }
}
