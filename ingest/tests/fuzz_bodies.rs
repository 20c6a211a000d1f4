//! Arbitrary bodies, correctly signed, through every adapter: never a panic, never a 5xx
//! (the in-memory bus does not fail), only 200 or a 4xx with a reason.

mod common;

use std::sync::Arc;

use common::*;
use proptest::prelude::*;
use sluice_infra::bus::{EventBus, MemoryBus, TopicSpec};

const ADAPTERS: [&str; 6] = [
    "telegram",
    "whatsapp",
    "messenger",
    "stripe",
    "helpdesk",
    "events",
];

const FIXTURES: [&str; 8] = [
    "telegram/message_text.json",
    "telegram/forum_topic_reply.json",
    "whatsapp/status_failed.json",
    "whatsapp/interactive_list_reply.json",
    "messenger/message_quick_reply.json",
    "stripe/checkout.session.completed.json",
    "helpdesk/session_assigned.json",
    "generic/batch_with_urn.json",
];

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn check(adapter: &str, body: Vec<u8>) -> Result<(), TestCaseError> {
    runtime().block_on(async {
        let bus = Arc::new(MemoryBus::new(2));
        bus.ensure_topics(&TopicSpec::sluice_topics(2, 1))
            .await
            .unwrap();
        let (ingest, _) = app(bus, settings());
        let (status, reply, _) = send(&ingest.router(), signed(adapter, body)).await;
        prop_assert!(
            status == 200 || (400..500).contains(&status),
            "{adapter}: status {status}: {reply}"
        );
        if status != 200 {
            prop_assert!(reply["error"].is_string(), "{adapter}: {reply}");
        }
        Ok(())
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn random_bytes(adapter in prop::sample::select(&ADAPTERS[..]), body in prop::collection::vec(any::<u8>(), 0..512)) {
        check(adapter, body)?;
    }

    #[test]
    fn mutated_fixtures(
        adapter in prop::sample::select(&ADAPTERS[..]),
        path in prop::sample::select(&FIXTURES[..]),
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
    ) {
        let mut body = fixture(path);
        for (at, byte) in edits {
            let i = at.index(body.len());
            body[i] = byte;
        }
        check(adapter, body)?;
    }

    #[test]
    fn json_values_of_the_wrong_shape(
        adapter in prop::sample::select(&ADAPTERS[..]),
        value in json_value(),
    ) {
        check(adapter, serde_json::to_vec(&value).unwrap())?;
    }

    #[test]
    fn twilio_forms(params in prop::collection::vec(("[A-Za-z]{1,12}", "[ -~]{0,24}"), 0..12)) {
        let mut params: Vec<(String, String)> = params;
        params.extend(form("twilio/incoming_sms.json").into_iter().take(3));
        runtime().block_on(async {
            let bus = Arc::new(MemoryBus::new(2));
            bus.ensure_topics(&TopicSpec::sluice_topics(2, 1)).await.unwrap();
            let (ingest, _) = app(bus, settings());
            let (status, reply, _) = send(&ingest.router(), twilio_request(&params)).await;
            prop_assert!(status == 200 || (400..500).contains(&status), "{status}: {reply}");
            Ok(())
        })?;
    }
}

fn json_value() -> impl Strategy<Value = serde_json::Value> {
    use serde_json::{Value, json};
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        "[a-z_.:]{0,12}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(
                prop::sample::select(vec![
                    "update_id",
                    "message",
                    "object",
                    "entry",
                    "changes",
                    "value",
                    "messages",
                    "statuses",
                    "messaging",
                    "sender",
                    "recipient",
                    "id",
                    "type",
                    "data",
                    "created",
                    "chat",
                    "from",
                    "date",
                    "text",
                    "tenant",
                    "contact_id",
                    "occurred_at",
                    "session",
                    "contact",
                    "payload",
                    "origin",
                    "urn",
                ])
                .prop_map(str::to_owned),
                inner,
                0..6
            )
            .prop_map(|map| Value::Object(map.into_iter().collect())),
        ]
    })
}
