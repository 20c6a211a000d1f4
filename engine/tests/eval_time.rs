//! Clock-driven triggers: pattern windows (not followed by, at least N, sum above,
//! absence) and schedules (cron, yearly date field), in the contact's zone.

mod common;

use common::*;
use serde_json::{Value, json};
use sluice_engine::eval::{SCHEDULE_RUN, WINDOW_RUN};
use sluice_schemas::{EventType, Payload, PaymentPayload, ProfileChangePayload, Scalar};

fn pattern_flow(pattern: Value) -> Value {
    json!({ "id": "p", "name": "p", "version": 1, "kind": "event",
        "triggers": [ { "pattern": pattern, "reentry": "always" } ],
        "nodes": [ { "id": "m", "type": "send_message", "text": "fired" } ] })
}

fn pay(id: &str, minor: i64, currency: &str, at: i64) -> sluice_schemas::Event {
    event(
        id,
        EventType::PaymentReceived,
        Payload::Payment(PaymentPayload {
            payment_id: id.into(),
            amount_minor: minor,
            currency: currency.into(),
            description: None,
        }),
        at,
    )
}

#[test]
fn not_followed_by_keeps_one_window_timer() {
    let mut h = Harness::new(vec![pattern_flow(json!({ "type": "not_followed_by",
        "first": { "event": "custom", "name": "cart" }, "then": { "event": "payment.received" }, "within": "2h" }))]);
    let out = h.send(custom("c1", "cart", &[], T0));
    assert_eq!(out.timers_set.len(), 1);
    assert_eq!(out.timers_set[0].key.run, WINDOW_RUN);
    // A later cart update restarts the window.
    h.send(custom("c2", "cart", &[], T0 + HOUR));
    assert_eq!(h.timers.len(), 1);
    h.run_until(T0 + 2 * HOUR + MIN);
    assert!(h.texts().is_empty());
    h.run_until(T0 + 3 * HOUR);
    assert_eq!(h.texts(), ["fired"]);
    // Paid in time: nothing.
    h.actions.clear();
    h.send(custom("c3", "cart", &[], T0 + 4 * HOUR));
    h.send(pay("p1", 100, "EUR", T0 + 5 * HOUR));
    assert!(h.timers.is_empty());
    h.run_until(T0 + DAY);
    assert!(h.texts().is_empty());
}

#[test]
fn at_least_n_within_a_window() {
    let mut h = Harness::new(vec![pattern_flow(json!({ "type": "at_least",
        "event": { "event": "custom", "name": "click" }, "count": 3, "within": "1h" }))]);
    h.send(custom("a", "click", &[], T0));
    h.send(custom("b", "click", &[], T0 + 10 * MIN));
    h.send(custom("c", "click", &[], T0 + 2 * HOUR)); // the first two fell out
    assert!(h.texts().is_empty());
    h.send(custom("d", "click", &[], T0 + 2 * HOUR + MIN));
    h.send(custom("e", "click", &[], T0 + 2 * HOUR + 2 * MIN));
    assert_eq!(h.texts(), ["fired"]);
}

#[test]
fn sum_above_counts_only_the_thresholds_currency() {
    let mut h = Harness::new(vec![pattern_flow(json!({ "type": "sum_above",
        "event": { "event": "payment.received" }, "field": "event.payment.amount",
        "above": "100.00 EUR", "within": "1d" }))]);
    h.send(pay("p1", 6000, "EUR", T0));
    h.send(pay("p2", 90000, "USD", T0 + MIN));
    assert!(h.texts().is_empty());
    h.send(pay("p3", 4001, "EUR", T0 + 2 * MIN));
    assert_eq!(h.texts(), ["fired"]);

    let mut h = Harness::new(vec![pattern_flow(json!({ "type": "sum_above",
        "event": { "event": "custom", "name": "order" }, "field": "event.fields.total",
        "above": 10, "within": "1h" }))]);
    h.send(custom("o1", "order", &[("total", Scalar::Double(6.0))], T0));
    h.send(custom(
        "o2",
        "order",
        &[("total", Scalar::String("5".into()))],
        T0 + MIN,
    ));
    assert_eq!(h.texts(), ["fired"]);
}

#[test]
fn absence_fires_once_per_silence() {
    let mut h = Harness::new(vec![pattern_flow(json!({ "type": "absence",
        "event": { "event": "message.received" }, "for": "7d" }))]);
    h.send(msg("m1", "hi", T0));
    h.send(msg("m2", "hi", T0 + 3 * DAY));
    h.run_until(T0 + 10 * DAY - MIN);
    assert!(h.texts().is_empty());
    h.run_until(T0 + 30 * DAY);
    assert_eq!(h.texts(), ["fired"]);
}

#[test]
fn cron_schedule_in_the_contacts_zone() {
    let mut h = Harness::new(vec![
        json!({ "id": "s", "name": "s", "version": 1, "kind": "event",
        "triggers": [ { "schedule": { "cron": "0 9 * * 1" }, "reentry": "always" } ],
        "settings": { "timezone": "America/New_York" },
        "nodes": [ { "id": "m", "type": "send_message", "text": "monday" } ] }),
    ]);
    let out = h.send(msg("m1", "hi", T0)); // Monday 05:00 in New York (EST, UTC-5)
    let t = out
        .timers_set
        .iter()
        .find(|t| t.key.run == SCHEDULE_RUN)
        .unwrap();
    assert_eq!(t.due_at, T0 + 4 * HOUR, "09:00 EST = 14:00Z");
    h.run_until(T0 + 8 * DAY);
    assert_eq!(h.texts(), ["monday", "monday"]);
    // After the US switch to EDT (2026-03-08), 09:00 is 13:00Z.
    let next = *h.timers.values().next().unwrap();
    assert_eq!(next, T0 + 14 * DAY + 3 * HOUR);
}

#[test]
fn yearly_date_field_follows_profile_changes() {
    let mut h = Harness::new(vec![
        json!({ "id": "b", "name": "b", "version": 1, "kind": "event",
        "triggers": [ { "schedule": { "date_field": "contact.fields.birthday", "time": "09:00" } } ],
        "nodes": [ { "id": "m", "type": "send_message", "text": "happy birthday" } ] }),
    ]);
    h.send(msg("m1", "hi", T0));
    assert!(h.timers.is_empty(), "no birthday, no timer");
    h.send(event(
        "f1",
        EventType::ContactFieldUpdated,
        Payload::ProfileChange(ProfileChangePayload {
            field: "birthday".into(),
            old: None,
            new: Some("1990-03-04".into()),
        }),
        T0 + MIN,
    ));
    assert_eq!(
        h.timers.values().copied().collect::<Vec<_>>(),
        [T0 + 2 * DAY - HOUR]
    );
    h.run_until(T0 + 3 * DAY);
    assert_eq!(h.texts(), ["happy birthday"]);
    let next = *h.timers.values().next().unwrap();
    assert_eq!(next, T0 + 367 * DAY - HOUR, "2027-03-04 09:00Z");
}

/// The ids of the actions whose message text is `text`.
fn ids_of(h: &Harness, text: &str) -> Vec<String> {
    h.actions
        .iter()
        .filter(|a| {
            matches!(&a.payload, sluice_schemas::ActionPayload::SendMessage(m)
                if m.text.as_deref() == Some(text))
        })
        .map(|a| a.id.clone())
        .collect()
}

#[test]
fn an_event_keeps_its_action_ids_whichever_side_of_a_window_timer_it_is_processed() {
    // A replay processes an event later than the first time, so a timer that fired
    // after it then may fire before it now; its actions must keep their ids (the
    // action workers execute each id once).
    let flows = || {
        vec![
            pattern_flow(json!({ "type": "not_followed_by",
                "first": { "event": "custom", "name": "cart" },
                "then": { "event": "payment.received" }, "within": "2h" })),
            json!({ "id": "pong", "name": "pong", "version": 1, "kind": "event",
                "triggers": [ { "event": "custom", "name": "ping", "reentry": "always" } ],
                "nodes": [ { "id": "m", "type": "send_message", "text": "pong" } ] }),
        ]
    };
    let mut first = Harness::new(flows());
    first.send(custom("c1", "cart", &[], T0));
    first.send(custom("ping-1", "ping", &[], T0 + HOUR));
    first.run_until(T0 + 3 * HOUR);

    let mut replay = Harness::new(flows());
    replay.send(custom("c1", "cart", &[], T0));
    replay.run_until(T0 + 3 * HOUR);
    replay.send(custom("ping-1", "ping", &[], T0 + 3 * HOUR));

    assert_eq!(first.texts(), ["pong", "fired"]);
    assert_eq!(replay.texts(), ["fired", "pong"]);
    assert_eq!(ids_of(&first, "pong"), ids_of(&replay, "pong"));
    assert_eq!(ids_of(&first, "fired"), ids_of(&replay, "fired"));
}
