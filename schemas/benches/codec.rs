//! Encode and decode cost of the wire codec for a typical `message.received` event and a
//! `message.send` action, on the fast path (current schema), the schema-resolution path
//! (a v1 writer) and, for comparison, JSON.
//!
//! Reproduce: `cargo bench -p sluice-schemas --bench codec` (add `-- --quick` for a short run).

#[path = "../tests/common/mod.rs"]
mod common;

use std::hint::black_box;

use apache_avro::Schema;
use apache_avro::types::Value;
use apache_avro::writer::datum::GenericDatumWriter;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use sluice_schemas::{Action, Event, schema_fingerprint, schema_text};

/// `sample_event()` as a v1 producer would have written it (no origin, no chain_depth).
fn v1_event_bytes(event: &Event) -> Vec<u8> {
    let schema = Schema::parse_str(schema_text("event.v1").expect("v1 registered"))
        .expect("v1 schema parses");
    let s = |v: &str| Value::String(v.to_owned());
    let null = || Value::Union(0, Box::new(Value::Null));
    let session = event.session.as_ref().expect("sample has a session");
    let value = Value::Record(vec![
        ("id".into(), s(&event.id)),
        ("tenant".into(), s(&event.tenant)),
        ("contact_id".into(), s(&event.contact_id)),
        ("type".into(), s(event.event_type.as_str())),
        (
            "occurred_at".into(),
            Value::TimestampMillis(event.occurred_at),
        ),
        (
            "session".into(),
            Value::Union(
                1,
                Box::new(Value::Record(vec![
                    ("id".into(), s(&session.id)),
                    ("type".into(), s(&session.session_type)),
                    ("status".into(), s(&session.status)),
                    ("channel_type".into(), s(&session.channel_type)),
                    ("channel_id".into(), s(&session.channel_id)),
                ])),
            ),
        ),
        (
            "payload".into(),
            Value::Union(
                1,
                Box::new(Value::Record(vec![
                    (
                        "text".into(),
                        Value::Union(1, Box::new(s("Hi! Where is my order #4417?"))),
                    ),
                    ("kind".into(), s("text")),
                    ("media".into(), null()),
                    ("reply_payload".into(), null()),
                    ("edited".into(), Value::Boolean(false)),
                ])),
            ),
        ),
    ]);
    let mut bytes = vec![0xC3, 0x01];
    bytes.extend_from_slice(
        &schema_fingerprint("event.v1")
            .expect("v1 registered")
            .to_le_bytes(),
    );
    let datum = GenericDatumWriter::builder(&schema)
        .build()
        .and_then(|w| w.write_value_to_vec(value))
        .expect("v1 value fits v1 schema");
    bytes.extend_from_slice(&datum);
    bytes
}

fn codec(c: &mut Criterion) {
    let event = common::sample_event();
    let event_bytes = event.encode().expect("sample encodes");
    let action = common::sample_action();
    let action_bytes = action.encode().expect("sample encodes");
    let v1_bytes = v1_event_bytes(&event);
    assert_eq!(Event::decode(&v1_bytes).expect("v1 decodes"), event);
    let event_json = serde_json::to_vec(&event).expect("json");

    let mut group = c.benchmark_group(format!("event_{}B", event_bytes.len()));
    group.throughput(Throughput::Elements(1));
    let mut buf = Vec::with_capacity(256);
    group.bench_function("encode_into", |b| {
        b.iter(|| {
            buf.clear();
            black_box(&event).encode_into(&mut buf).expect("encodes");
            black_box(buf.len())
        })
    });
    group.bench_function("encode", |b| {
        b.iter(|| black_box(&event).encode().expect("encodes"))
    });
    group.bench_function("decode", |b| {
        b.iter(|| Event::decode(black_box(&event_bytes)).expect("decodes"))
    });
    group.bench_function("decode_v1_resolved", |b| {
        b.iter(|| Event::decode(black_box(&v1_bytes)).expect("decodes"))
    });
    group.bench_function("json_encode", |b| {
        b.iter(|| serde_json::to_vec(black_box(&event)).expect("json"))
    });
    group.bench_function("json_decode", |b| {
        b.iter(|| serde_json::from_slice::<Event>(black_box(&event_json)).expect("json"))
    });
    group.finish();

    let mut group = c.benchmark_group(format!("action_{}B", action_bytes.len()));
    group.throughput(Throughput::Elements(1));
    group.bench_function("encode_into", |b| {
        b.iter(|| {
            buf.clear();
            black_box(&action).encode_into(&mut buf).expect("encodes");
            black_box(buf.len())
        })
    });
    group.bench_function("decode", |b| {
        b.iter(|| Action::decode(black_box(&action_bytes)).expect("decodes"))
    });
    group.finish();
}

criterion_group!(benches, codec);
criterion_main!(benches);
