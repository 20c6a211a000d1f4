//! Schema evolution: data written with an older published schema (schemas/history/) decodes
//! with today's code into today's types, with the new fields' defaults filled in.
//!
//! The old bytes are made the way an old producer made them: apache-avro's `Value` API with
//! the old schema, behind a single-object header carrying the old schema's fingerprint.

use apache_avro::Schema;
use apache_avro::types::Value;
use apache_avro::writer::datum::GenericDatumWriter;
use sluice_schemas::*;

fn s(v: &str) -> Value {
    Value::String(v.to_owned())
}

fn record(fields: &[(&str, Value)]) -> Value {
    Value::Record(
        fields
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect(),
    )
}

/// Frames `value` as a producer of schema `name` (e.g. `event.v1`) would.
fn old_message(name: &str, value: Value) -> Vec<u8> {
    let schema = Schema::parse_str(schema_text(name).unwrap()).unwrap();
    let datum = GenericDatumWriter::builder(&schema)
        .build()
        .unwrap()
        .write_value_to_vec(value)
        .unwrap();
    let mut bytes = vec![0xC3, 0x01];
    bytes.extend_from_slice(&schema_fingerprint(name).unwrap().to_le_bytes());
    bytes.extend_from_slice(&datum);
    bytes
}

fn v1_event(payload: Value) -> Value {
    record(&[
        ("id", s("wa:wamid.HBgL")),
        ("tenant", s("acme")),
        ("contact_id", s("c-1")),
        ("type", s("message.received")),
        ("occurred_at", Value::TimestampMillis(1_700_000_000_000)),
        (
            "session",
            Value::Union(
                1,
                Box::new(record(&[
                    ("id", s("s-1")),
                    ("type", s("human")),
                    ("status", s("assigned")),
                    ("channel_type", s("whatsapp")),
                    ("channel_id", s("+4930")),
                ])),
            ),
        ),
        ("payload", payload),
    ])
}

fn v1_message_payload() -> Value {
    Value::Union(
        1,
        Box::new(record(&[
            ("text", Value::Union(1, Box::new(s("hallo")))),
            ("kind", s("text")),
            ("media", Value::Union(0, Box::new(Value::Null))),
            ("reply_payload", Value::Union(0, Box::new(Value::Null))),
            ("edited", Value::Boolean(true)),
        ])),
    )
}

#[test]
fn history_fingerprints_differ_from_current() {
    assert_ne!(
        schema_fingerprint("event.v1").unwrap(),
        Event::schema_fingerprint()
    );
    assert_ne!(
        schema_fingerprint("action.v1").unwrap(),
        Action::schema_fingerprint()
    );
}

#[test]
fn v1_event_decodes_with_defaults() {
    let bytes = old_message("event.v1", v1_event(v1_message_payload()));
    let event = Event::decode(&bytes).unwrap();
    assert_eq!(
        event,
        Event {
            id: "wa:wamid.HBgL".into(),
            tenant: "acme".into(),
            contact_id: "c-1".into(),
            event_type: EventType::MessageReceived,
            occurred_at: 1_700_000_000_000,
            session: Some(Session {
                id: "s-1".into(),
                session_type: "human".into(),
                status: "assigned".into(),
                channel_type: "whatsapp".into(),
                channel_id: "+4930".into(),
                assignee: None,
                closing_message: None,
            }),
            origin: None,
            chain_depth: 0,
            payload: Payload::Message(MessagePayload {
                text: Some("hallo".into()),
                kind: "text".into(),
                media: None,
                reply_payload: None,
                edited: true,
            }),
        }
    );
    event.validate().unwrap();
}

#[test]
fn v1_union_branches_map_by_name_not_index() {
    // ResultPayload is the last branch of v1 and the second to last today.
    let result = Value::Union(
        8,
        Box::new(record(&[
            ("action_id", s("a-9")),
            ("status", s("success")),
            ("status_code", Value::Union(1, Box::new(Value::Int(200)))),
            ("body", Value::Union(1, Box::new(s("{}")))),
            ("error", Value::Union(0, Box::new(Value::Null))),
        ])),
    );
    let mut value = v1_event(result);
    if let Value::Record(fields) = &mut value {
        fields[3].1 = s("function.result");
    }
    let event = Event::decode(&old_message("event.v1", value)).unwrap();
    assert_eq!(
        event.payload,
        Payload::Result(ResultPayload {
            action_id: "a-9".into(),
            status: "success".into(),
            status_code: Some(200),
            body: Some("{}".into()),
            error: None,
        })
    );
    let none = old_message("event.v1", v1_event(Value::Union(0, Box::new(Value::Null))));
    assert_eq!(Event::decode(&none).unwrap().payload, Payload::None);
}

#[test]
fn v1_action_decodes_with_defaults() {
    let value = record(&[
        ("id", s("r:1")),
        ("tenant", s("acme")),
        ("contact_id", s("c-1")),
        ("run_id", s("r")),
        ("flow_id", s("f")),
        ("flow_version", Value::Int(2)),
        ("node_id", s("n")),
        ("type", s("contact.tag")),
        ("created_at", Value::TimestampMillis(-5)),
        (
            "payload",
            Value::Union(
                6,
                Box::new(record(&[("tag", s("vip")), ("add", Value::Boolean(false))])),
            ),
        ),
    ]);
    let action = Action::decode(&old_message("action.v1", value)).unwrap();
    assert_eq!(action.not_before, None);
    assert_eq!(action.chain_depth, 0);
    assert_eq!(action.created_at, -5);
    assert_eq!(action.action_type, ActionType::ContactTag);
    assert_eq!(
        action.payload,
        ActionPayload::Tag(Tag {
            tag: "vip".into(),
            add: false
        })
    );
    action.validate().unwrap();
}

/// Regression: apache-avro 0.22's `Value` decoder reads end-of-input at a union as `null`
/// (and at a string or boolean as `Null`), so a v1 message cut right before its payload
/// would decode as an event without one. Every cut must be an error.
#[test]
fn every_cut_v1_message_is_truncated() {
    let bytes = old_message("event.v1", v1_event(v1_message_payload()));
    for len in 0..bytes.len() {
        let err = Event::decode(&bytes[..len]).unwrap_err();
        assert!(
            matches!(err, Error::Truncated { .. }),
            "cut at {len}: {err}"
        );
    }
}

#[test]
fn v1_with_trailing_bytes_is_refused() {
    let mut bytes = old_message("event.v1", v1_event(v1_message_payload()));
    bytes.push(0);
    let err = Event::decode(&bytes).unwrap_err();
    assert!(
        matches!(err, Error::TrailingBytes { trailing: 1, .. }),
        "{err}"
    );
}

#[test]
fn v1_with_unknown_type_names_it() {
    let mut value = v1_event(v1_message_payload());
    if let Value::Record(fields) = &mut value {
        fields[3].1 = s("message.recieved");
    }
    let err = Event::decode(&old_message("event.v1", value)).unwrap_err();
    assert!(
        err.to_string()
            .contains(r#"unknown event type "message.recieved""#),
        "{err}"
    );
}

fn zigzag(v: i64, out: &mut Vec<u8>) {
    let mut z = ((v << 1) ^ (v >> 63)) as u64;
    while z >= 0x80 {
        out.push((z as u8 & 0x7F) | 0x80);
        z >>= 7;
    }
    out.push(z as u8);
}

/// Regression: apache-avro's `Value` decoder reserves room for a declared map size before
/// reading it, so 27 bytes declaring millions of `outputs` cost milliseconds (or an
/// allocation error); the datum is now walked first and the lie is found at the end of input.
#[test]
fn declared_huge_map_in_old_data_is_truncated_not_allocated() {
    for count in [5_000_000, 1 << 40] {
        let mut bytes = vec![0xC3, 0x01];
        bytes.extend_from_slice(&schema_fingerprint("event.v1").unwrap().to_le_bytes());
        for field in ["e", "t", "c", "flow.started"] {
            zigzag(field.len() as i64, &mut bytes);
            bytes.extend_from_slice(field.as_bytes());
        }
        zigzag(0, &mut bytes); // occurred_at
        zigzag(0, &mut bytes); // session: null
        zigzag(6, &mut bytes); // payload: FlowPayload
        for _ in 0..6 {
            zigzag(0, &mut bytes); // flow_id "", flow_version 0, run_id "", three nulls
        }
        zigzag(count, &mut bytes); // outputs: block of `count` entries, none present
        let err = Event::decode(&bytes).unwrap_err();
        assert!(matches!(err, Error::Truncated { .. }), "{err}");
    }
}
