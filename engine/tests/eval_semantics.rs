//! Flow semantics: contacts, dedupe, offer order, bot sessions, chaining, chain depth,
//! versions, re-entry and ref, quiet hours, frequency caps.

mod common;

use std::sync::Arc;

use common::*;
use serde_json::{Value, json};
use sluice_engine::eval::{Disposition, FlowSet, Input, evaluate};
use sluice_schemas::{EventType, Payload, Scalar};

fn simple(id: &str, trigger: Value, nodes: Value) -> Value {
    json!({ "id": id, "name": id, "version": 1, "kind": "event", "triggers": [trigger], "nodes": nodes })
}

fn say(text: &str) -> Value {
    json!([ { "id": "say", "type": "send_message", "text": text } ])
}

#[test]
fn contact_created_is_processed_before_the_first_event() {
    let mut h = Harness::new(vec![
        simple(
            "welcome",
            json!({ "event": "contact.created", "reentry": "once" }),
            say("welcome"),
        ),
        simple("echo", json!({ "event": "message.received" }), say("echo")),
    ]);
    h.send(msg("m1", "hi", T0));
    h.send(msg("m2", "hi", T0 + 1));
    assert_eq!(h.texts(), ["welcome", "echo", "echo"]);
    assert_eq!(h.emitted[0].event_type, EventType::ContactCreated);
    assert_eq!(&*h.state.urns[0], "telegram:42");
}

#[test]
fn an_applied_event_id_is_a_duplicate_and_changes_nothing() {
    let mut h = Harness::new(vec![simple(
        "echo",
        json!({ "event": "message.received" }),
        say("echo"),
    )]);
    h.send(msg("m1", "hi", T0));
    let before = h.state.encode();
    let out = h.send(msg("m1", "hi", T0 + 5));
    assert_eq!(out.disposition, Disposition::Duplicate);
    assert!(out.actions.is_empty() && out.emitted.is_empty());
    assert_eq!(h.state.encode(), before);
}

fn bot() -> Value {
    json!({
        "id": "bot", "name": "bot", "version": 1, "kind": "bot",
        "triggers": [ { "event": "message.received" } ],
        "nodes": [
            { "id": "q", "type": "ask", "text": "Name?", "expect": "text", "var": "name",
              "exits": { "answered": "a", "invalid": "a" } },
            { "id": "a", "type": "send_message", "text": "Hi {{ vars.name }}" }
        ]
    })
}

#[test]
fn bot_runs_own_their_session_and_get_its_messages_first() {
    let mut h = Harness::new(vec![
        bot(),
        json!({
            "id": "bot2", "name": "bot2", "version": 1, "kind": "bot",
            "triggers": [ { "event": "message.received", "reentry": "always" } ],
            "nodes": [ { "id": "x", "type": "wait", "duration": "1h" } ]
        }),
    ]);
    h.send(msg("m1", "hello", T0));
    assert_eq!(h.state.runs.len(), 1, "one bot run per session");
    h.send(msg("m2", "Ann", T0 + MIN));
    assert_eq!(h.texts(), ["Name?", "Hi Ann"]);
    assert!(
        h.state.runs.is_empty(),
        "the answer did not start a new bot run"
    );
    // Another session gets its own bot run.
    let mut other = msg("m3", "hey", T0 + 2 * MIN);
    other.session = Some(session("s-2", "open"));
    h.send(other);
    assert_eq!(h.state.runs.len(), 1);
    // session.closed ends it.
    let mut closed = event("c1", EventType::SessionClosed, Payload::None, T0 + 3 * MIN);
    closed.session = Some(session("s-2", "closed"));
    h.send(closed);
    assert!(h.state.runs.is_empty());
    assert!(h.outcomes().contains(&"bot:session_closed".to_owned()));
}

#[test]
fn goal_and_exit_events_end_active_runs() {
    let f = json!({
        "id": "f", "name": "f", "version": 1, "kind": "event",
        "triggers": [ { "event": "custom", "name": "go" } ],
        "settings": { "goal_events": [ { "event": "payment.received" } ],
                      "exit_events": [ { "event": "custom", "name": "stop" } ] },
        "nodes": [ { "id": "w", "type": "wait", "duration": "1d", "exits": { "next": "m" } },
                   { "id": "m", "type": "send_message", "text": "late" } ]
    });
    let mut h = Harness::new(vec![f]);
    h.send(custom("e1", "go", &[], T0));
    let out = h.send(custom("e2", "stop", &[], T0 + MIN));
    assert_eq!(out.timers_cancelled.len(), 1);
    h.send(custom("e3", "go", &[], T0 + 2 * MIN));
    h.send(event(
        "p1",
        EventType::PaymentReceived,
        Payload::Payment(sluice_schemas::PaymentPayload {
            payment_id: "p".into(),
            amount_minor: 100,
            currency: "EUR".into(),
            description: None,
        }),
        T0 + 3 * MIN,
    ));
    h.run_until(T0 + 3 * DAY);
    assert_eq!(h.outcomes(), ["f:exited", "f:goal"]);
    assert!(h.texts().is_empty());
}

#[test]
fn flow_lifecycle_events_chain_flows_and_the_depth_limit_stops_loops() {
    let mut h = Harness::new(vec![
        simple(
            "a",
            json!({ "event": "custom", "name": "go" }),
            json!([ { "id": "t", "type": "add_tag", "tag": "x" } ]),
        ),
        simple(
            "b",
            json!({ "event": "flow.completed", "flow": "a" }),
            say("after a"),
        ),
        simple(
            "c",
            json!({ "event": "contact.field_updated", "field": "tags" }),
            say("tags changed"),
        ),
    ]);
    h.send(custom("e1", "go", &[], T0));
    assert_eq!(h.texts(), ["tags changed", "after a"]);

    // Two flows that start each other forever.
    let mut h = Harness::new(vec![
        simple(
            "ping",
            json!({ "event": "flow.completed", "flow": "pong" }),
            json!([ { "id": "n", "type": "end" } ]),
        ),
        simple(
            "pong",
            json!({ "event": "flow.completed", "flow": "ping" }),
            json!([ { "id": "n", "type": "end" } ]),
        ),
        simple(
            "go",
            json!({ "event": "custom", "name": "go" }),
            json!([
            { "id": "s", "type": "start_flow", "flow": "ping" } ]),
        ),
    ]);
    let out = h.send(custom("e1", "go", &[], T0));
    let failed = out
        .emitted
        .iter()
        .filter_map(|e| match &e.payload {
            Payload::Flow(f) if e.event_type == EventType::FlowFailed => f.error.clone(),
            _ => None,
        })
        .collect::<Vec<_>>();
    assert!(
        failed.iter().any(|e| e.contains("chain depth limit")),
        "{failed:?}"
    );
    assert!(out.emitted.len() < 100);
}

#[test]
fn runs_stay_on_their_version_and_a_missing_version_fails_clearly() {
    let v = |version: u32, text: &str| {
        json!({ "id": "f", "name": "f", "version": version, "kind": "event",
            "triggers": [ { "event": "custom", "name": "go", "reentry": "always" } ],
            "nodes": [ { "id": "w", "type": "wait", "duration": "1h", "exits": { "next": "m" } },
                       { "id": "m", "type": "send_message", "text": text } ] })
    };
    let mut h = Harness::new(vec![v(1, "v1")]);
    h.send(custom("e1", "go", &[], T0));
    h.flows.insert(compile(v(2, "v2")));
    h.send(custom("e2", "go", &[], T0 + MIN));
    h.run_until(T0 + 2 * HOUR);
    assert_eq!(h.texts(), ["v1", "v2"]);

    let mut h = Harness::new(vec![v(1, "v1")]);
    h.send(custom("e1", "go", &[], T0));
    h.flows = FlowSet::new();
    h.flows.insert(compile(v(2, "v2")));
    h.run_until(T0 + 2 * HOUR);
    assert!(h.outcomes()[0].contains("version 1 is no longer loaded"));
}

#[test]
fn reentry_rules_and_ref_dedupe() {
    let wait = json!([ { "id": "w", "type": "wait", "duration": "1h" } ]);
    let rule = |r: Value| {
        simple(
            "f",
            json!({ "event": "custom", "name": "go", "reentry": r }),
            wait.clone(),
        )
    };
    let starts = |h: &Harness| {
        h.emitted
            .iter()
            .filter(|e| e.event_type == EventType::FlowStarted)
            .count()
    };
    let mut cases = vec![
        (json!("always"), 3),
        (json!("once"), 1),
        (json!("not_while_active"), 2),
        (json!({ "once_per": "1d" }), 1),
    ];
    for (r, expected) in cases.drain(..) {
        let mut h = Harness::new(vec![rule(r.clone())]);
        h.send(custom("e1", "go", &[], T0));
        h.send(custom("e2", "go", &[], T0 + MIN));
        h.send(custom("e3", "go", &[], T0 + 2 * HOUR));
        assert_eq!(starts(&h), expected, "{r}");
    }
    let mut h = Harness::new(vec![simple(
        "f",
        json!({ "event": "custom", "name": "go", "reentry": "always", "ref": "{{ event.fields.lead }}" }),
        wait,
    )]);
    let lead = |id: &str, l: &str, at| custom(id, "go", &[("lead", Scalar::String(l.into()))], at);
    h.send(lead("e1", "L1", T0));
    h.send(lead("e2", "L1", T0 + MIN));
    h.send(lead("e3", "L2", T0 + MIN));
    assert_eq!(starts(&h), 2);
    h.run_until(T0 + 2 * HOUR);
    h.send(lead("e4", "L1", T0 + 3 * HOUR));
    assert_eq!(starts(&h), 3, "the ref is free once its run ended");
}

#[test]
fn quiet_hours_defer_or_skip_and_the_frequency_cap_holds_across_flows() {
    let f = |id: &str, mode: &str| {
        json!({ "id": id, "name": id, "version": 1, "kind": "event",
            "triggers": [ { "event": "custom", "name": "go", "reentry": "always" } ],
            "settings": { "timezone": "Europe/Berlin",
                "quiet_hours": { "hours": { "from": "22:00", "to": "08:00" }, "mode": mode },
                "frequency_cap": { "count": 2, "per": "1d" } },
            "nodes": [ { "id": "m", "type": "send_message", "text": id } ] })
    };
    let mut h = Harness::new(vec![f("defer", "defer"), f("skip", "skip")]);
    // 23:00 Berlin (22:00Z): deferred to 08:00 Berlin (07:00Z), skipped by the other.
    let night = T0 + 12 * HOUR;
    h.send(custom("e1", "go", &[], night));
    assert_eq!(h.actions.len(), 1);
    assert_eq!(h.actions[0].not_before, Some(T0 + 21 * HOUR));
    h.send(custom("e2", "go", &[], T0 + DAY));
    h.send(custom("e3", "go", &[], T0 + DAY + MIN));
    assert_eq!(
        h.texts(),
        ["defer", "defer"],
        "cap of 2 per day across both flows"
    );
}

#[test]
fn same_input_same_output_byte_for_byte() {
    let set = flows(vec![bot()]);
    let run = || {
        let mut state = sluice_engine::eval::ContactState::default();
        let a = evaluate(&set, &mut state, Input::Event(&msg("m1", "x", T0)), T0);
        let b = evaluate(
            &set,
            &mut state,
            Input::Event(&msg("m2", "y", T0 + 1)),
            T0 + 1,
        );
        (format!("{a:?}{b:?}"), state.encode())
    };
    assert_eq!(run(), run());
    let _ = Arc::new(());
}

#[test]
fn wait_expired_is_an_event_other_flows_trigger_on() {
    let mut h = Harness::new(vec![
        simple(
            "w",
            json!({ "event": "custom", "name": "go" }),
            json!([
            { "id": "pause", "type": "wait", "duration": "1h" } ]),
        ),
        simple(
            "watch",
            json!({ "event": "wait.expired" }),
            say("a wait expired"),
        ),
    ]);
    h.send(custom("e1", "go", &[], T0));
    h.run_until(T0 + HOUR);
    assert_eq!(h.texts(), ["a wait expired"]);
    assert!(h.emitted_types().contains(&"wait.expired".to_owned()));
}

#[test]
fn a_failing_template_fails_the_run_with_its_reason() {
    let mut h = Harness::new(vec![simple(
        "f",
        json!({ "event": "custom", "name": "go" }),
        json!([ { "id": "m", "type": "send_message", "text": "{% for i in range(1000000) %}{{ i }}{% endfor %}" } ]),
    )]);
    h.send(custom("e1", "go", &[], T0));
    let o = h.outcomes();
    assert!(o[0].contains("node m: template failed"), "{o:?}");
    assert!(h.actions.is_empty());
}

#[test]
fn a_question_asked_in_quiet_hours_is_deferred_and_its_timeout_counts_from_then() {
    for mode in ["defer", "skip"] {
        let mut h = Harness::new(vec![
            json!({ "id": "q", "name": "q", "version": 1, "kind": "event",
            "triggers": [ { "event": "custom", "name": "go", "reentry": "always" } ],
            "settings": { "timezone": "Europe/Berlin",
                "quiet_hours": { "hours": { "from": "22:00", "to": "08:00" }, "mode": mode } },
            "nodes": [
                { "id": "ask", "type": "ask", "text": "How was it?", "expect": "text", "var": "answer",
                  "timeout": "30m", "exits": { "answered": "thanks", "invalid": "late", "timeout": "late" } },
                { "id": "thanks", "type": "send_message", "text": "thanks" },
                { "id": "late", "type": "send_message", "text": "late" }
            ] }),
        ]);
        // 23:00 Berlin (22:00Z): the question waits for 08:00 Berlin (07:00Z), whatever the
        // mode (a question cannot be skipped: the run waits for its answer) ...
        h.send(custom("e1", "go", &[], T0 + 12 * HOUR));
        assert_eq!(h.actions.len(), 1, "{mode}");
        assert_eq!(h.actions[0].not_before, Some(T0 + 21 * HOUR), "{mode}");
        // ... and its timeout counts from then, not from the night.
        assert_eq!(
            h.timers.values().copied().collect::<Vec<_>>(),
            vec![T0 + 21 * HOUR + 30 * MIN],
            "{mode}"
        );
    }
}

#[test]
fn linking_an_identity_records_it_in_the_contact_state() {
    let mut h = Harness::new(vec![simple(
        "echo",
        json!({ "event": "message.received" }),
        say("echo"),
    )]);
    h.send(msg("m1", "hi", T0));
    h.send(custom(
        "link-1",
        sluice_engine::eval::LINK_IDENTITY,
        &[("urn", Scalar::String("whatsapp:4915112345678".into()))],
        T0 + MIN,
    ));
    let urns: Vec<&str> = h.state.urns.iter().map(|u| &**u).collect();
    assert_eq!(urns, ["telegram:42", "whatsapp:4915112345678"]);
}

#[test]
fn a_first_event_that_is_contact_created_is_processed_once() {
    let mut h = Harness::new(vec![simple(
        "welcome",
        json!({ "event": "contact.created", "reentry": "always" }),
        say("welcome"),
    )]);
    let mut created = msg("c1", "", T0);
    created.event_type = EventType::ContactCreated;
    created.payload = Payload::None;
    h.send(created);
    assert_eq!(h.texts(), ["welcome"], "one contact.created, one welcome");
}
