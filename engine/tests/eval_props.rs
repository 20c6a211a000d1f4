//! Property tests of the evaluator's invariants: determinism (byte for byte), replayed
//! events change nothing and keep their action ids, each timer fires at most once,
//! also when events overtake their contact's due timers, contacts are independent of how
//! their inputs interleave, and decoding a state never panics.

mod common;

use std::collections::BTreeMap;

use common::*;
use proptest::prelude::*;
use serde_json::json;
use sluice_engine::eval::{
    ContactState, Disposition, FlowSet, Input, TimerFired, TimerKey, evaluate,
};
use sluice_schemas::{Event, EventType, Payload, PaymentPayload, Scalar};

fn set() -> FlowSet {
    flows(vec![
        json!({ "id": "bot", "name": "bot", "version": 1, "kind": "bot",
            "triggers": [ { "event": "message.received" } ],
            "nodes": [
                { "id": "q", "type": "ask", "text": "Number?", "expect": "number", "var": "n",
                  "retries": 1, "timeout": "10m", "exits": { "answered": "h", "invalid": "bye", "timeout": "bye" } },
                { "id": "h", "type": "http", "method": "GET", "url": "https://x.example/{{ vars.n }}",
                  "timeout": "5m", "exits": { "success": "t", "error": "bye", "timeout": "bye" } },
                { "id": "t", "type": "add_tag", "tag": "done", "exits": { "next": "w" } },
                { "id": "w", "type": "wait", "duration": "30m", "exits": { "next": "bye" } },
                { "id": "bye", "type": "send_message", "text": "bye {{ vars.n }}" } ] }),
        json!({ "id": "pay", "name": "pay", "version": 1, "kind": "event",
            "triggers": [ { "event": "payment.received", "reentry": "always" } ],
            "settings": { "quiet_hours": { "hours": { "from": "22:00", "to": "08:00" } } },
            "nodes": [
                { "id": "s", "type": "split", "branches": [ { "name": "a", "weight": 1 }, { "name": "b", "weight": 1 } ],
                  "exits": { "a": "m", "b": "w" } },
                { "id": "w", "type": "wait", "duration": "1h", "exits": { "next": "m" } },
                { "id": "m", "type": "send_message", "text": "thanks {{ event.payment.amount }}" } ] }),
        json!({ "id": "cart", "name": "cart", "version": 1, "kind": "event",
            "triggers": [ { "pattern": { "type": "not_followed_by", "first": { "event": "custom", "name": "cart" },
                "then": { "event": "payment.received" }, "within": "2h" } } ],
            "nodes": [ { "id": "m", "type": "send_message", "text": "cart" } ] }),
    ])
}

#[derive(Debug, Clone)]
enum Op {
    Msg(u8),
    Pay(i64),
    Cart,
    Advance(i64),
    Replay(usize),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0u8..4).prop_map(Op::Msg),
        (1i64..20_000).prop_map(Op::Pay),
        Just(Op::Cart),
        (1i64..240).prop_map(|m| Op::Advance(m * MIN)),
        (0usize..64).prop_map(Op::Replay),
    ]
}

fn make(i: usize, op: &Op, at: i64, contact: &str) -> Option<Event> {
    let id = format!("{contact}-e{i}");
    let mut e = match op {
        Op::Msg(t) => msg(&id, ["hi", "12", "x", "7.5"][usize::from(*t)], at),
        Op::Pay(minor) => event(
            &id,
            EventType::PaymentReceived,
            Payload::Payment(PaymentPayload {
                payment_id: id.clone(),
                amount_minor: *minor,
                currency: "EUR".into(),
                description: None,
            }),
            at,
        ),
        Op::Cart => custom(&id, "cart", &[("items", Scalar::Long(1))], at),
        _ => return None,
    };
    e.contact_id = contact.into();
    Some(e)
}

/// Runs ops for one contact; returns the Debug form of every output and the final state.
fn drive(flows: &FlowSet, ops: &[Op], contact: &str) -> (Vec<String>, Vec<u8>) {
    let mut h = Harness::with(flows.clone());
    let mut sent: Vec<Event> = Vec::new();
    let mut at = T0;
    for (i, op) in ops.iter().enumerate() {
        match op {
            Op::Advance(d) => {
                at += d;
                h.run_until(at);
            }
            Op::Replay(k) if !sent.is_empty() => {
                let e = sent[k % sent.len()].clone();
                let before = h.state.encode();
                let out = evaluate(&h.flows, &mut h.state, Input::Event(&e), at);
                if out.disposition == Disposition::Duplicate {
                    assert!(out.actions.is_empty() && out.timers_set.is_empty());
                    assert_eq!(h.state.encode(), before, "a duplicate changed the state");
                }
            }
            _ => {
                if let Some(e) = make(i, op, at, contact) {
                    // Replaying on the state before the event yields the same action ids.
                    let mut before = h.state.clone();
                    let out = h.send(e.clone());
                    let again = evaluate(&h.flows, &mut before, Input::Event(&e), h.now);
                    assert_eq!(format!("{out:?}"), format!("{again:?}"));
                    sent.push(e);
                }
            }
        }
    }
    h.run_until(at + 30 * DAY);
    let outs = h.outputs.iter().map(|o| format!("{o:?}")).collect();
    (outs, h.state.encode())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn deterministic_byte_for_byte(ops in prop::collection::vec(op(), 1..40)) {
        let flows = set();
        prop_assert_eq!(drive(&flows, &ops, "c-1"), drive(&flows, &ops, "c-1"));
    }

    #[test]
    fn contacts_do_not_depend_on_interleaving(ops in prop::collection::vec(op(), 1..30)) {
        let flows = set();
        let alone = drive(&flows, &ops, "c-2");
        // The same contact's inputs, with another contact's processed in between.
        let mut other = ContactState::default();
        for (i, op) in ops.iter().enumerate() {
            if let Some(e) = make(i, op, T0, "c-3") {
                evaluate(&flows, &mut other, Input::Event(&e), T0);
            }
        }
        prop_assert_eq!(alone, drive(&flows, &ops, "c-2"));
    }

    #[test]
    fn every_timer_fires_at_most_once(ops in prop::collection::vec(op(), 1..40)) {
        let flows = set();
        let mut h = Harness::with(flows);
        let mut at = T0;
        for (i, op) in ops.iter().enumerate() {
            if let Op::Advance(d) = op {
                at += d;
                let before = h.outputs.len();
                let fired: Vec<_> = h.timers.iter().filter(|(_, d)| **d <= at).map(|(k, d)| (*k, *d)).collect();
                h.run_until(at);
                prop_assert!(h.outputs.len() >= before);
                for (key, due) in fired {
                    let out = evaluate(&h.flows, &mut h.state, Input::Timer(TimerFired { key, due_at: due }), at);
                    prop_assert_eq!(out.disposition, Disposition::StaleTimer);
                    prop_assert!(out.actions.is_empty());
                }
            } else if let Some(e) = make(i, op, at, "c-1") {
                h.send(e);
            }
        }
    }

    /// Events overtake their contact's due timers (a busy worker, a backlog after
    /// downtime): the overdue deadlines fire inside the event, in due order, and are
    /// reported cancelled; their timers, fed afterwards, are stale, so each fires once.
    #[test]
    fn overdue_timers_fire_once_when_events_overtake_them(ops in prop::collection::vec(op(), 1..40)) {
        let flows = set();
        let mut state = ContactState::default();
        let mut timers: BTreeMap<TimerKey, i64> = BTreeMap::new();
        let mut at = T0;
        for (i, op) in ops.iter().enumerate() {
            if let Op::Advance(d) = op {
                at += d;
                continue;
            }
            let Some(e) = make(i, op, at, "c-1") else { continue };
            let overdue: Vec<(TimerKey, i64)> =
                timers.iter().filter(|(_, d)| **d <= at).map(|(k, d)| (*k, *d)).collect();
            let out = evaluate(&flows, &mut state, Input::Event(&e), at);
            prop_assert_eq!(out.disposition, Disposition::Applied);
            for (key, _) in &overdue {
                prop_assert!(out.timers_cancelled.contains(key), "{:?} not cancelled", key);
            }
            for key in &out.timers_cancelled {
                timers.remove(key);
            }
            for t in &out.timers_set {
                timers.insert(t.key, t.due_at);
            }
            for (key, due_at) in overdue {
                let late = evaluate(&flows, &mut state, Input::Timer(TimerFired { key, due_at }), at);
                prop_assert_eq!(late.disposition, Disposition::StaleTimer);
                prop_assert!(late.actions.is_empty());
            }
        }
    }

    #[test]
    fn decoding_garbage_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        let _ = ContactState::decode(&bytes);
        let mut framed = vec![1u8];
        framed.extend_from_slice(&bytes);
        let _ = ContactState::decode(&framed);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// A corrupted stored state either fails to decode or evaluates without panicking.
    #[test]
    fn corrupted_states_never_panic(flips in prop::collection::vec((any::<usize>(), any::<u8>()), 1..6)) {
        let flows = set();
        let mut h = Harness::with(flows.clone());
        h.send(msg("m1", "hi", T0));
        h.send(make(1, &Op::Pay(500), T0 + MIN, "c-1").unwrap_or_else(|| msg("x", "x", T0)));
        h.send(custom("c1", "cart", &[], T0 + 2 * MIN));
        let mut bytes = h.state.encode();
        for (at, v) in flips {
            let i = at % bytes.len();
            bytes[i] ^= v;
        }
        if let Ok(mut state) = ContactState::decode(&bytes) {
            let e = msg("m9", "12", T0 + 3 * MIN);
            let _ = evaluate(&flows, &mut state, Input::Event(&e), T0 + 3 * MIN);
            for run in state.runs.clone() {
                let key = run.timer_key();
                let _ = evaluate(&flows, &mut state, Input::Timer(TimerFired { key, due_at: T0 + DAY }), T0 + DAY);
            }
        }
    }
}
