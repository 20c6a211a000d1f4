//! Every error says what was wrong, in words a dead-letter reader can act on.

mod common;

use common::*;
use sluice_schemas::*;

fn with_header(fingerprint: u64, datum: &[u8]) -> Vec<u8> {
    let mut bytes = vec![0xC3, 0x01];
    bytes.extend_from_slice(&fingerprint.to_le_bytes());
    bytes.extend_from_slice(datum);
    bytes
}

fn replace(bytes: &mut [u8], from: &[u8], to: &[u8]) {
    assert_eq!(from.len(), to.len());
    let at = bytes
        .windows(from.len())
        .position(|w| w == from)
        .expect("pattern in message");
    bytes[at..at + to.len()].copy_from_slice(to);
}

fn event_error(bytes: &[u8]) -> String {
    Event::decode(bytes).unwrap_err().to_string()
}

#[test]
fn bad_magic() {
    let mut bytes = sample_event().encode().unwrap();
    bytes[0] = 0x00;
    assert_eq!(
        event_error(&bytes),
        "event: bad magic [00, 01], expected [c3, 01] (Avro single-object encoding)"
    );
    assert_eq!(
        event_error(&[0x7B]),
        "event: bad magic [7b], expected [c3, 01] (Avro single-object encoding)"
    );
    // JSON sent to the Avro topic is a common mistake.
    assert!(event_error(br#"{"id":"e1"}"#).starts_with("event: bad magic [7b, 22]"));
}

#[test]
fn short_header() {
    assert_eq!(
        event_error(&[]),
        "event: truncated after 0 bytes: the single-object header needs 10 bytes"
    );
    assert_eq!(
        event_error(&[0xC3, 0x01, 1, 2]),
        "event: truncated after 4 bytes: the single-object header needs 10 bytes"
    );
}

#[test]
fn unknown_fingerprint() {
    let err = Event::decode(&with_header(0x0123_4567_89ab_cdef, &[0])).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "event: unknown writer schema fingerprint 0x0123456789abcdef (known: {:#018x} (event), \
             {:#018x} (event.v1)); register the schema in schemas/history/",
            Event::schema_fingerprint(),
            schema_fingerprint("event.v1").unwrap()
        )
    );
    // An action on the event topic is named as such.
    let action = sample_action().encode().unwrap();
    let err = Event::decode(&action).unwrap_err().to_string();
    assert!(
        err.starts_with(&format!(
            "event: unknown writer schema fingerprint {:#018x}",
            Action::schema_fingerprint()
        )),
        "{err}"
    );
}

#[test]
fn truncated_datum() {
    let bytes = sample_event().encode().unwrap();
    let cut = &bytes[..bytes.len() - 3];
    let err = event_error(cut);
    assert!(
        err.starts_with(&format!("event: truncated after {} bytes: ", cut.len())),
        "{err}"
    );
    let bytes = sample_action().encode().unwrap();
    let err = Action::decode(&bytes[..20]).unwrap_err().to_string();
    assert!(
        err.starts_with("action: truncated after 20 bytes: "),
        "{err}"
    );
}

#[test]
fn trailing_bytes() {
    let mut bytes = sample_event().encode().unwrap();
    let len = bytes.len() + 2;
    bytes.extend_from_slice(&[0, 0]);
    assert_eq!(
        event_error(&bytes),
        format!("event: 2 trailing bytes after the datum (message is {len} bytes)")
    );
}

#[test]
fn unknown_event_type_on_the_wire() {
    let mut bytes = sample_event().encode().unwrap();
    replace(&mut bytes, b"message.received", b"message.recieved");
    let err = Event::decode(&bytes).unwrap_err();
    assert!(matches!(err, Error::Decode { .. }));
    let text = err.to_string();
    assert!(text.starts_with("event: invalid datum at byte "), "{text}");
    assert!(
        text.ends_with(r#"unknown event type "message.recieved""#),
        "{text}"
    );
    let mut bytes = sample_action().encode().unwrap();
    replace(&mut bytes, b"message.send", b"message.sand");
    let text = Action::decode(&bytes).unwrap_err().to_string();
    assert!(
        text.ends_with(r#"unknown action type "message.sand""#),
        "{text}"
    );
}

#[test]
fn bad_union_index() {
    let mut event = sample_event();
    event.payload = Payload::None;
    let mut bytes = event.encode().unwrap();
    let last = bytes.len() - 1;
    assert_eq!(bytes[last], 0, "payload index of null");
    bytes[last] = 0x7E; // zigzag 63
    let text = event_error(&bytes);
    assert!(text.starts_with("event: invalid datum at byte "), "{text}");
    assert!(text.contains("63"), "{text}");
    assert!(text.len() < 400, "reason is kept short: {text}");
}

#[test]
fn invalid_utf8() {
    let mut bytes = sample_event().encode().unwrap();
    replace(&mut bytes, b"acme", b"ac\xFFe");
    let text = event_error(&bytes);
    assert!(text.starts_with("event: invalid datum at byte "), "{text}");
    assert!(text.contains("utf-8"), "{text}");
}

#[test]
fn faults() {
    let err = Event::decode(&[1]).unwrap_err();
    assert_eq!(err.fault(), Fault::Input);
    assert!(!err.is_retryable());
}

#[test]
fn unknown_schema_name() {
    assert_eq!(
        schema_fingerprint("event.v9").unwrap_err().to_string(),
        r#"unknown schema "event.v9"; known: event, action, event.v1, action.v1"#
    );
}

fn invalid(event: &Event) -> String {
    let err = event.validate().unwrap_err();
    assert_eq!(err.fault(), Fault::Input);
    err.to_string()
}

#[test]
fn event_validation_names_the_field() {
    sample_event().validate().unwrap();

    let mut e = sample_event();
    e.event_type = EventType::PaymentReceived;
    assert_eq!(
        invalid(&e),
        r#"event "tg:bot-7:update-884213309": invalid field `payload`: payment.received needs a payment payload, found message"#
    );

    let mut e = sample_event();
    e.event_type = EventType::ContactCreated;
    assert!(invalid(&e).ends_with(
        "invalid field `payload`: contact.created carries no payload, found a message payload"
    ));

    let mut e = sample_event();
    e.event_type = EventType::SessionClosed;
    e.payload = Payload::None;
    e.session = None;
    assert!(invalid(&e).ends_with("invalid field `session`: session.closed needs a session"));

    let mut e = sample_event();
    e.id.clear();
    assert_eq!(
        invalid(&e),
        r#"event "": invalid field `id`: must not be empty"#
    );

    let mut e = sample_event();
    e.tenant = "acme/eu".into();
    assert!(invalid(&e).ends_with(
        r#"invalid field `tenant`: "acme/eu" contains '/', which separates tenant and contact in the key"#
    ));

    let mut e = sample_event();
    e.contact_id.clear();
    assert!(invalid(&e).ends_with("invalid field `contact_id`: must not be empty"));

    let mut e = sample_event();
    e.chain_depth = -1;
    assert!(invalid(&e).ends_with("invalid field `chain_depth`: must not be negative, found -1"));

    let mut e = sample_event();
    e.event_type = EventType::Custom;
    e.payload = Payload::Custom(CustomPayload {
        name: String::new(),
        fields: Fields::new(),
    });
    assert!(invalid(&e).ends_with("invalid field `payload.name`: a custom event needs a name"));

    let mut e = sample_event();
    e.event_type = EventType::PaymentReceived;
    e.payload = Payload::Payment(PaymentPayload {
        payment_id: "p".into(),
        amount_minor: 1999,
        currency: "eur".into(),
        description: None,
    });
    assert!(invalid(&e).ends_with(
        r#"invalid field `payload.currency`: "eur" is not an ISO 4217 code (three capital letters)"#
    ));
}

#[test]
fn every_event_type_accepts_its_own_payload_kind() {
    for t in EventType::ALL {
        let mut e = sample_event();
        e.event_type = *t;
        if t.payload_name() != "message" {
            assert!(e.validate().is_err(), "{t} accepted a message payload");
        } else {
            e.validate().unwrap();
        }
    }
}

#[test]
fn action_validation_names_the_field() {
    sample_action().validate().unwrap();

    let mut a = sample_action();
    a.action_type = ActionType::ContactTag;
    assert_eq!(
        a.validate().unwrap_err().to_string(),
        r#"action "run-77:step-3": invalid field `payload`: contact.tag needs a tag payload, found send_message"#
    );

    let mut a = sample_action();
    a.action_type = ActionType::HttpCall;
    a.payload = ActionPayload::HttpCall(HttpCall {
        method: "GET".into(),
        url: "https://example.invalid".into(),
        headers: Default::default(),
        body: None,
        timeout_ms: 0,
    });
    assert!(
        a.validate()
            .unwrap_err()
            .to_string()
            .ends_with("invalid field `payload.timeout_ms`: must be positive, found 0")
    );

    let mut a = sample_action();
    a.action_type = ActionType::EventPublish;
    a.payload = ActionPayload::PublishEvent(PublishEvent {
        name: String::new(),
        fields: Fields::new(),
    });
    assert!(
        a.validate()
            .unwrap_err()
            .to_string()
            .ends_with("invalid field `payload.name`: a published event needs a name")
    );

    let mut a = sample_action();
    a.tenant.clear();
    assert!(
        a.validate()
            .unwrap_err()
            .to_string()
            .ends_with("invalid field `tenant`: must not be empty")
    );
}

#[test]
fn keys_are_tenant_slash_contact() {
    assert_eq!(sample_event().key(), "acme/c-5f3a9e2b");
    assert_eq!(sample_action().key(), "acme/c-5f3a9e2b");
}
