//! Typed condition evaluation: money with currency, instants, numbers, folded text,
//! sets, time ranges and weekdays in the contact's zone (DST included).

use chrono::DateTime;
use serde_json::{Value, json};
use sluice_schemas::{
    CustomPayload, Event, EventType, MessagePayload, Payload, PaymentPayload, Scalar,
};

use super::Scope;
use crate::eval::state::ContactState;
use crate::flow::{Condition, NodeKind, compile_value, parse_timezone};

fn cond(c: Value) -> Condition {
    let flow = compile_value(json!({
        "id": "t", "name": "t", "version": 1, "kind": "event",
        "triggers": [ { "event": "custom", "name": "x" } ],
        "nodes": [
            { "id": "i", "type": "if", "condition": c, "exits": { "true": "a", "false": "a" } },
            { "id": "a", "type": "end" } ]
    }))
    .into_result()
    .unwrap_or_else(|e| panic!("{e}"));
    match &flow.nodes[0].kind {
        NodeKind::If { condition } => condition.clone(),
        other => panic!("{other:?}"),
    }
}

fn ms(s: &str) -> i64 {
    DateTime::parse_from_rfc3339(s).unwrap().timestamp_millis()
}

fn event(payload: Payload) -> Event {
    Event {
        id: "e".into(),
        tenant: "t".into(),
        contact_id: "c".into(),
        event_type: EventType::Custom,
        occurred_at: ms("2026-03-29T00:30:00Z"),
        session: None,
        origin: None,
        chain_depth: 0,
        payload,
    }
}

fn holds(state: &ContactState, e: &Event, now: &str, c: Value) -> bool {
    let vars: Vec<(Box<str>, Box<str>)> = vec![
        ("n".into(), "12.5".into()),
        ("when".into(), "2026-03-01".into()),
    ];
    let scope = Scope {
        state,
        event: e,
        vars: &vars,
        now: ms(now),
        tz: parse_timezone("Europe/Berlin").unwrap(),
    };
    scope.holds(&cond(c))
}

#[test]
fn money_numbers_text_and_sets() {
    let mut s = ContactState::default();
    s.set_field("city", Some("BERLIN"));
    s.set_tag("Vip", true);
    s.add_urn("telegram:1");
    let pay = event(Payload::Payment(PaymentPayload {
        payment_id: "p".into(),
        amount_minor: 12_000,
        currency: "EUR".into(),
        description: None,
    }));
    let now = "2026-03-02T10:00:00Z";
    let t = |c| holds(&s, &pay, now, c);
    assert!(t(
        json!({ "left": "event.payment.amount", "op": "ge", "right": "100.00 EUR" })
    ));
    assert!(
        !t(json!({ "left": "event.payment.amount", "op": "ge", "right": "100.00 USD" })),
        "other currency"
    );
    assert!(t(
        json!({ "left": "event.payment.amount", "op": "ne", "right": "100.00 USD" })
    ));
    assert!(t(
        json!({ "left": "event.payment.amount", "op": "between", "right": ["100 EUR", "120 EUR"] })
    ));
    assert!(
        t(json!({ "left": "vars.n", "op": "gt", "right": 9 })),
        "12.5 > 9 as numbers, not text"
    );
    assert!(t(
        json!({ "left": "contact.fields.city", "op": "eq", "right": "berlin" })
    ));
    assert!(t(
        json!({ "left": "contact.fields.city", "op": "in", "right": ["Paris", "Berlin"] })
    ));
    assert!(t(
        json!({ "left": "contact.fields.city", "op": "starts_with", "right": "Ber" })
    ));
    assert!(t(
        json!({ "left": "contact.fields.city", "op": "regex", "right": "^B.*N$" })
    ));
    assert!(t(
        json!({ "left": "contact.tags", "op": "has_tag", "right": "VIP" })
    ));
    assert!(t(
        json!({ "left": "contact.channels", "op": "contains", "right": "telegram" })
    ));
    assert!(
        !t(json!({ "left": "contact.fields.missing", "op": "ne", "right": "x" })),
        "missing fails"
    );
    assert!(t(
        json!({ "left": "contact.fields.missing", "op": "empty" })
    ));
    assert!(t(
        json!({ "not": { "left": "contact.fields.missing", "op": "exists" } })
    ));
    assert!(t(
        json!({ "any": [ { "left": "vars.n", "op": "lt", "right": 1 }, { "left": "vars.n", "op": "eq", "right": 12.5 } ] })
    ));
}

#[test]
fn times_in_the_contacts_zone_across_dst() {
    let s = ContactState::default();
    let e = event(Payload::Custom(CustomPayload {
        name: "x".into(),
        fields: [(
            "at".to_owned(),
            Scalar::String("2026-03-29T08:00:00+02:00".into()),
        )]
        .into(),
    }));
    // 2026-03-29 is the spring change in Berlin: 01:30Z is 03:30 CEST, a Sunday.
    let now = "2026-03-29T01:30:00Z";
    let t = |c| holds(&s, &e, now, c);
    assert!(t(
        json!({ "left": "now", "op": "time_between", "right": ["03:00", "04:00"] })
    ));
    assert!(t(
        json!({ "left": "now", "op": "weekday_in", "right": ["sun"] })
    ));
    assert!(t(json!({ "left": "now", "op": "after", "right": "03:29" })));
    assert!(t(
        json!({ "left": "now", "op": "after", "right": "2026-03-28" })
    ));
    assert!(t(
        json!({ "left": "now", "op": "before", "right": "2026-03-29T02:00:00Z" })
    ));
    assert!(t(
        json!({ "left": "event.fields.at", "op": "after", "right": "2026-03-29T05:59:00Z" })
    ));
    assert!(t(
        json!({ "left": "vars.when", "op": "before", "right": "2026-03-02" })
    ));
    // The event happened at 00:30Z = 01:30 CET (before the change).
    assert!(t(
        json!({ "left": "event.occurred_at", "op": "time_between", "right": ["01:00", "02:00"] })
    ));
    assert!(t(
        json!({ "left": "event.occurred_at", "op": "lt", "right": "2026-03-29T01:00:00Z" })
    ));
}

#[test]
fn message_fields() {
    let s = ContactState::default();
    let mut e = event(Payload::Message(MessagePayload {
        text: Some("Hello World".into()),
        kind: "text".into(),
        media: None,
        reply_payload: Some("yes".into()),
        edited: false,
    }));
    e.event_type = EventType::MessageReceived;
    let t = |c| holds(&s, &e, "2026-03-02T10:00:00Z", c);
    assert!(t(
        json!({ "left": "event.message.text", "op": "contains", "right": "WORLD" })
    ));
    assert!(t(
        json!({ "left": "event.message.reply_payload", "op": "eq", "right": "YES" })
    ));
    assert!(t(
        json!({ "left": "event.type", "op": "eq", "right": "message.received" })
    ));
    assert!(!t(
        json!({ "left": "event.payment.currency", "op": "eq", "right": "EUR" })
    ));
}
