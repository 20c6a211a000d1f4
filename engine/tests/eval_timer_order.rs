//! Timers fire in order with the contact's events (issue 4): a deadline that was due
//! before an event fires before that event is processed, even when its durable timer
//! has not been fed yet (a busy worker, a backlog after downtime), and still fires once.

mod common;

use std::sync::Arc;

use common::*;
use serde_json::{Value, json};
use sluice_engine::eval::{Disposition, Input, TimerFired, evaluate};
use sluice_engine::runtime::{Partition, Processor, TimerConfig};
use sluice_infra::bus::MemoryBus;
use sluice_infra::store::{MemoryStore, TimerStore};
use sluice_schemas::Scalar;

/// Asks with a 30 min timeout; a timeout sends "too late".
fn ask_flow() -> Value {
    json!({
        "id": "f", "name": "f", "version": 1, "kind": "event",
        "triggers": [ { "event": "custom", "name": "go", "reentry": "always" } ],
        "nodes": [
            { "id": "q", "type": "ask", "text": "How many?", "expect": "number", "var": "n",
              "timeout": "30m", "exits": { "answered": "ok", "invalid": "bad", "timeout": "late" } },
            { "id": "ok", "type": "send_message", "text": "got {{ vars.n }}" },
            { "id": "late", "type": "send_message", "text": "too late" },
            { "id": "bad", "type": "end", "outcome": "invalid" }
        ],
    })
}

fn go(id: &str, at: i64) -> sluice_schemas::Event {
    custom(id, "go", &[("amount", Scalar::Long(5))], at)
}

#[test]
fn overdue_timeout_fires_before_a_late_reply() {
    let mut h = Harness::new(vec![ask_flow()]);
    h.send(go("e1", T0));
    let (&key, &due) = h.timers.iter().next().expect("the ask's timeout is set");
    assert_eq!(due, T0 + 30 * MIN);

    // The reply is processed at 10:05 (relative), before the timeout due at 10:00 was fed.
    let reply = msg("m1", "12", T0 + 35 * MIN);
    let out = evaluate(&h.flows, &mut h.state, Input::Event(&reply), T0 + 35 * MIN);
    assert_eq!(out.disposition, Disposition::Applied);
    assert_eq!(out.timers_fired, 1, "the overdue timeout fired inline");
    assert!(out.timers_cancelled.contains(&key), "{out:?}");
    assert!(out.timers_set.iter().all(|t| t.key != key));
    let texts: Vec<_> = out
        .actions
        .iter()
        .filter_map(|a| match &a.payload {
            sluice_schemas::ActionPayload::SendMessage(m) => m.text.clone(),
            _ => None,
        })
        .collect();
    assert_eq!(texts, ["too late"]);

    // The durable timer arrives afterwards: stale, so the timeout fires once.
    let late = evaluate(
        &h.flows,
        &mut h.state,
        Input::Timer(TimerFired { key, due_at: due }),
        T0 + 36 * MIN,
    );
    assert_eq!(late.disposition, Disposition::StaleTimer);
    assert!(late.actions.is_empty());
    assert_eq!(late.timers_fired, 0, "a stale timer fires nothing");
}

#[test]
fn a_timer_that_applies_counts_as_fired() {
    let mut h = Harness::new(vec![ask_flow()]);
    h.send(go("e1", T0));
    let (&key, &due) = h.timers.iter().next().expect("the ask's timeout is set");
    let out = evaluate(
        &h.flows,
        &mut h.state,
        Input::Timer(TimerFired { key, due_at: due }),
        due,
    );
    assert_eq!(out.disposition, Disposition::Applied);
    assert_eq!(out.timers_fired, 1);
}

#[test]
fn firing_overdue_deadlines_inline_matches_feeding_their_timers_first() {
    let flows = flows(vec![ask_flow()]);
    // Fed in order: the timer, then the reply.
    let mut fed = Harness::with(flows.clone());
    fed.send(go("e1", T0));
    fed.send(msg("m1", "12", T0 + 35 * MIN));
    // The reply alone, at the same `now`.
    let mut inline = Harness::with(flows);
    inline.send(go("e1", T0));
    let reply = msg("m1", "12", T0 + 35 * MIN);
    let out = evaluate(
        &inline.flows,
        &mut inline.state,
        Input::Event(&reply),
        T0 + 35 * MIN,
    );
    inline.actions.extend(out.actions);
    let ids = |h: &Harness| -> Vec<String> { h.actions.iter().map(|a| a.id.clone()).collect() };
    assert_eq!(ids(&fed), ids(&inline));
    assert_eq!(fed.texts(), ["How many?", "too late"]);
    assert_eq!(fed.texts(), inline.texts());
}

#[tokio::test]
async fn runtime_fires_an_overdue_timeout_before_an_event_processed_later() {
    let store = Arc::new(MemoryStore::default());
    let processor = Processor::new(
        Arc::new(flows(vec![ask_flow()])),
        Arc::clone(&store) as Arc<dyn TimerStore>,
        Arc::new(MemoryBus::new(1)),
    );
    let mut p = Partition::new(0, 1, processor, TimerConfig::default());
    p.handle_event(&go("e1", T0), T0).await.expect("go");
    assert_eq!(store.due(None, i64::MAX, 10).await.expect("due").len(), 1);

    // The worker takes the reply before it fires the timer that was due earlier.
    let reply = msg("m1", "12", T0 + 35 * MIN);
    let out = p.handle_event(&reply, T0 + 35 * MIN).await.expect("reply");
    let texts: Vec<_> = out
        .output
        .actions
        .iter()
        .filter_map(|a| match &a.payload {
            sluice_schemas::ActionPayload::SendMessage(m) => m.text.clone(),
            _ => None,
        })
        .collect();
    assert_eq!(texts, ["too late"]);
    assert!(
        store.due(None, i64::MAX, 10).await.expect("due").is_empty(),
        "the fired timeout is no longer pending"
    );
    // Nothing fires afterwards: the timeout fired once.
    while let Some(fired) = p.fire_next(T0 + DAY).await.expect("fire") {
        assert!(fired.output.actions.is_empty());
    }
}
