//! Every Event and Action, every payload variant, survives Avro and JSON unchanged.

mod common;

use common::*;
use proptest::prelude::*;
use sluice_schemas::*;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2048))]

    #[test]
    fn event_avro_round_trip(event in event()) {
        let bytes = event.encode().unwrap();
        prop_assert_eq!(&bytes[..2], &[0xC3, 0x01]);
        prop_assert_eq!(&bytes[2..10], &Event::schema_fingerprint().to_le_bytes());
        prop_assert_eq!(Event::decode(&bytes).unwrap(), event);
    }

    #[test]
    fn event_json_round_trip(event in event()) {
        let json = serde_json::to_string(&event).unwrap();
        prop_assert_eq!(serde_json::from_str::<Event>(&json).unwrap(), event);
    }

    #[test]
    fn action_avro_round_trip(action in action()) {
        let bytes = action.encode().unwrap();
        prop_assert_eq!(&bytes[2..10], &Action::schema_fingerprint().to_le_bytes());
        prop_assert_eq!(Action::decode(&bytes).unwrap(), action);
    }

    #[test]
    fn action_json_round_trip(action in action()) {
        let json = serde_json::to_string(&action).unwrap();
        prop_assert_eq!(serde_json::from_str::<Action>(&json).unwrap(), action);
    }

    #[test]
    fn encode_into_appends_and_matches_encode(event in event(), prefix in proptest::collection::vec(any::<u8>(), 0..8)) {
        let mut out = prefix.clone();
        event.encode_into(&mut out).unwrap();
        prop_assert_eq!(&out[..prefix.len()], &prefix[..]);
        prop_assert_eq!(&out[prefix.len()..], &event.encode().unwrap()[..]);
    }
}

/// The strategies must reach every union branch; this pins that they do, so a variant
/// added later without a strategy fails here rather than going untested.
#[test]
fn strategies_cover_every_payload_variant() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    use std::collections::BTreeSet;

    let mut runner = TestRunner::deterministic();
    let mut events = BTreeSet::new();
    let mut actions = BTreeSet::new();
    for _ in 0..2000 {
        events.insert(payload().new_tree(&mut runner).unwrap().current().name());
        actions.insert(
            action_payload()
                .new_tree(&mut runner)
                .unwrap()
                .current()
                .name(),
        );
    }
    let mut expected: BTreeSet<_> = EventType::ALL.iter().map(|t| t.payload_name()).collect();
    expected.insert("none");
    assert_eq!(events, expected);
    let expected: BTreeSet<_> = ActionType::ALL.iter().map(|t| t.payload_name()).collect();
    assert_eq!(actions, expected);
}

#[test]
fn empty_collections_and_extremes_round_trip() {
    let mut event = sample_event();
    event.occurred_at = i64::MIN;
    event.chain_depth = i32::MAX;
    event.payload = Payload::Custom(CustomPayload {
        name: String::new(),
        fields: Fields::new(),
    });
    assert_eq!(Event::decode(&event.encode().unwrap()).unwrap(), event);
}

#[test]
fn doubles_keep_their_bits_in_avro_even_when_not_finite() {
    for v in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY, -0.0] {
        let mut event = sample_event();
        event.payload = Payload::Custom(CustomPayload {
            name: "n".into(),
            fields: [("v".to_owned(), Scalar::Double(v))].into(),
        });
        let back = Event::decode(&event.encode().unwrap()).unwrap();
        let Payload::Custom(custom) = back.payload else {
            panic!("custom payload expected")
        };
        let Some(Scalar::Double(got)) = custom.fields.get("v") else {
            panic!("double expected")
        };
        assert_eq!(got.to_bits(), v.to_bits());
    }
}

#[test]
fn typical_event_is_about_150_bytes() {
    let bytes = sample_event().encode().unwrap();
    assert!((120..=180).contains(&bytes.len()), "{} bytes", bytes.len());
}

#[test]
fn json_shape_of_an_event() {
    let mut event = sample_event();
    event.payload = Payload::Custom(CustomPayload {
        name: "cart.abandoned".into(),
        fields: [
            ("items".to_owned(), Scalar::Long(3)),
            ("total".to_owned(), Scalar::Double(59.9)),
            ("vip".to_owned(), Scalar::Bool(true)),
            ("coupon".to_owned(), Scalar::Null),
        ]
        .into(),
    });
    event.event_type = EventType::Custom;
    let json = serde_json::to_value(&event).unwrap();
    assert_eq!(
        json,
        serde_json::json!({
            "id": "tg:bot-7:update-884213309",
            "tenant": "acme",
            "contact_id": "c-5f3a9e2b",
            "type": "custom",
            "occurred_at": 1_767_225_600_123_i64,
            "session": {
                "id": "s-91c2", "type": "bot", "status": "open",
                "channel_type": "telegram", "channel_id": "bot-7"
            },
            "chain_depth": 0,
            "payload": {"custom": {
                "name": "cart.abandoned",
                "fields": {"coupon": null, "items": 3, "total": 59.9, "vip": true}
            }}
        })
    );
}

#[test]
fn minimal_json_fills_defaults() {
    let event: Event = serde_json::from_str(
        r#"{"id":"e1","tenant":"acme","contact_id":"c1","type":"contact.created","occurred_at":5}"#,
    )
    .unwrap();
    assert_eq!(event.payload, Payload::None);
    assert_eq!(event.session, None);
    assert_eq!(event.chain_depth, 0);
    event.validate().unwrap();
    // "none" is the unit variant's own JSON form and is accepted too.
    let explicit: Event = serde_json::from_str(
        r#"{"id":"e1","tenant":"acme","contact_id":"c1","type":"contact.created","occurred_at":5,"payload":"none"}"#,
    )
    .unwrap();
    assert_eq!(explicit, event);
    let message: Event = serde_json::from_str(
        r#"{"id":"e2","tenant":"acme","contact_id":"c1","type":"message.received","occurred_at":5,
            "payload":{"message":{"kind":"text","text":"hi"}}}"#,
    )
    .unwrap();
    message.validate().unwrap();
}

#[test]
fn json_with_unknown_type_names_it() {
    let err = serde_json::from_str::<Event>(
        r#"{"id":"e1","tenant":"acme","contact_id":"c1","type":"contact.deleted","occurred_at":5}"#,
    )
    .unwrap_err();
    assert!(
        err.to_string()
            .contains(r#"unknown event type "contact.deleted""#),
        "{err}"
    );
}
