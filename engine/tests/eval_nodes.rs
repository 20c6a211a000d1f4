//! Every node type and exit, exercised with small inline flows.

mod common;

use common::*;
use serde_json::{Value, json};
use sluice_engine::eval::TimerKey;
use sluice_schemas::{
    ActionPayload, ActionType, DeliveryPayload, EventType, FlowPayload, MessagePayload, Payload,
    ResultPayload, Scalar,
};

fn flow(id: &str, nodes: Value) -> Value {
    json!({
        "id": id, "name": id, "version": 1, "kind": "event",
        "triggers": [ { "event": "custom", "name": "go", "reentry": "always" } ],
        "nodes": nodes,
    })
}

fn go(id: &str, at: i64) -> sluice_schemas::Event {
    custom(id, "go", &[("amount", Scalar::Long(5))], at)
}

fn types(h: &Harness) -> Vec<ActionType> {
    h.actions.iter().map(|a| a.action_type).collect()
}

#[test]
fn actions_render_apply_and_announce() {
    let mut h = Harness::new(vec![flow(
        "f",
        json!([
            { "id": "a", "type": "set_var", "var": "n", "value": "{{ event.fields.amount * 2 }}", "exits": { "next": "b" } },
            { "id": "b", "type": "update_field", "field": "city", "value": "Berlin", "exits": { "next": "c" } },
            { "id": "c", "type": "add_tag", "tag": "vip", "exits": { "next": "d" } },
            { "id": "d", "type": "if", "condition": { "all": [
                { "left": "contact.fields.city", "op": "eq", "right": "berlin" },
                { "left": "contact.tags", "op": "has_tag", "right": "VIP" } ] },
              "exits": { "true": "e", "false": "x" } },
            { "id": "e", "type": "send_message", "text": "n={{ vars.n }} in {{ contact.fields.city }}",
              "buttons": [ { "id": "ok", "title": "OK" } ], "exits": { "next": "f" } },
            { "id": "f", "type": "send_short", "shortcut": "hi", "text": "Hi", "exits": { "next": "g" } },
            { "id": "g", "type": "send_template", "template": "t1", "language": "en", "parameters": ["{{ vars.n }}"], "exits": { "next": "h" } },
            { "id": "h", "type": "remove_tag", "tag": "vip", "exits": { "next": "i" } },
            { "id": "i", "type": "publish_event", "name": "done", "fields": { "n": "{{ vars.n }}", "k": 2, "b": true }, "exits": { "next": "j" } },
            { "id": "j", "type": "end", "outcome": "ok" },
            { "id": "x", "type": "end", "outcome": "wrong" }
        ]),
    )]);
    assert!(applied(&h.send(go("e1", T0))));
    assert_eq!(
        types(&h),
        [
            ActionType::ContactUpdateField,
            ActionType::ContactTag,
            ActionType::MessageSend,
            ActionType::MessageSendShort,
            ActionType::MessageSendTemplate,
            ActionType::ContactTag,
            ActionType::EventPublish
        ]
    );
    assert_eq!(h.texts(), ["n=10 in Berlin", "Hi"]);
    match &h.actions[4].payload {
        ActionPayload::SendTemplate(t) => assert_eq!(t.parameters, ["10"]),
        other => panic!("{other:?}"),
    }
    match &h.actions[6].payload {
        ActionPayload::PublishEvent(p) => {
            assert_eq!(p.fields["n"], Scalar::String("10".into()));
            assert_eq!(p.fields["k"], Scalar::Long(2));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(h.state.field("city"), Some("Berlin"));
    assert!(!h.state.has_tag("vip"));
    assert_eq!(h.outcomes(), ["f:ok"]);
    let updates = h
        .emitted
        .iter()
        .filter(|e| e.event_type == EventType::ContactFieldUpdated)
        .count();
    assert_eq!(updates, 3, "field, tag added, tag removed");
    assert_eq!(
        h.emitted_types().first().map(String::as_str),
        Some("contact.created")
    );
    assert!(h.state.runs.is_empty());
}

#[test]
fn switch_split_and_working_hours() {
    let mut h = Harness::new(vec![flow(
        "f",
        json!([
            { "id": "s", "type": "switch", "cases": [
                { "name": "big", "condition": { "left": "event.fields.amount", "op": "gt", "right": 100 } },
                { "name": "small", "condition": { "left": "event.fields.amount", "op": "le", "right": 10 } } ],
              "exits": { "big": "x", "small": "ab", "default": "x" } },
            { "id": "ab", "type": "split", "branches": [ { "name": "a", "weight": 1 }, { "name": "b", "weight": 1 } ],
              "exits": { "a": "wh", "b": "wh" } },
            { "id": "wh", "type": "working_hours", "hours": { "days": ["mon"], "from": "09:00", "to": "11:00" },
              "exits": { "open": "open", "closed": "closed" } },
            { "id": "open", "type": "end", "outcome": "open" },
            { "id": "closed", "type": "end", "outcome": "closed" },
            { "id": "x", "type": "end", "outcome": "default" }
        ]),
    )]);
    h.send(go("e1", T0)); // Monday 10:00 UTC
    h.send(go("e2", T0 + 2 * HOUR)); // 12:00
    assert_eq!(h.outcomes(), ["f:open", "f:closed"]);
}

#[test]
fn split_is_stable_and_weighted() {
    let f = flow(
        "ab",
        json!([
            { "id": "s", "type": "split", "branches": [ { "name": "a", "weight": 3 }, { "name": "b", "weight": 1 } ],
              "exits": { "a": "a", "b": "b" } },
            { "id": "a", "type": "end", "outcome": "a" },
            { "id": "b", "type": "end", "outcome": "b" }
        ]),
    );
    let set = flows(vec![f]);
    let mut a = 0;
    for i in 0..2000 {
        let mut pick = Vec::new();
        for _ in 0..2 {
            let mut h = Harness::with(set.clone());
            let mut e = go("e", T0);
            e.contact_id = format!("c-{i}");
            h.send(e);
            pick.push(h.outcomes());
        }
        assert_eq!(pick[0], pick[1], "same contact, same branch");
        a += usize::from(pick[0] == ["ab:a"]);
    }
    assert!((1350..1650).contains(&a), "3:1 split gave {a} of 2000");
}

#[test]
fn wait_duration_fires_once_and_stale_timers_are_ignored() {
    let mut h = Harness::new(vec![flow(
        "f",
        json!([
            { "id": "w", "type": "wait", "duration": "2h", "exits": { "next": "m" } },
            { "id": "m", "type": "send_message", "text": "later" }
        ]),
    )]);
    let out = h.send(go("e1", T0));
    assert_eq!(out.timers_set.len(), 1);
    let t = out.timers_set[0];
    assert_eq!(t.due_at, T0 + 2 * HOUR);
    assert!(h.run_until(T0 + HOUR).is_empty());
    h.run_until(T0 + 2 * HOUR);
    assert_eq!(h.texts(), ["later"]);
    let again = h.fire(t.key, t.due_at);
    assert_eq!(
        again.disposition,
        sluice_engine::eval::Disposition::StaleTimer
    );
    assert!(again.actions.is_empty());
    let bogus = h.fire(TimerKey { run: 999, token: 1 }, T0);
    assert_eq!(
        bogus.disposition,
        sluice_engine::eval::Disposition::StaleTimer
    );
}

#[test]
fn wait_until_time_date_and_working_hours_in_the_contacts_zone() {
    let mut h = Harness::new(vec![json!({
        "id": "f", "name": "f", "version": 1, "kind": "event",
        "triggers": [ { "event": "custom", "name": "go", "reentry": "always" } ],
        "settings": { "timezone": "Europe/Berlin",
                      "working_hours": { "days": ["tue"], "from": "09:00", "to": "17:00" } },
        "nodes": [
            { "id": "t", "type": "wait", "until_time": "09:00", "exits": { "next": "v" } },
            { "id": "v", "type": "set_var", "var": "d", "value": "2026-03-05", "exits": { "next": "d" } },
            { "id": "d", "type": "wait", "until": "vars.d", "time": "08:00", "exits": { "next": "o" } },
            { "id": "o", "type": "wait", "until_working_hours": true, "exits": { "next": "m" } },
            { "id": "m", "type": "send_message", "text": "done" }
        ]
    })]);
    // Monday 10:00Z = 11:00 Berlin → Tuesday 09:00 Berlin = 08:00Z.
    let out = h.send(go("e1", T0));
    assert_eq!(out.timers_set[0].due_at, T0 + DAY - 2 * HOUR);
    let outs = h.run_until(T0 + DAY);
    // Thursday 2026-03-05 08:00 Berlin = 07:00Z
    assert_eq!(outs[0].timers_set[0].due_at, T0 + 3 * DAY - 3 * HOUR);
    let outs = h.run_until(T0 + 3 * DAY);
    // Not open on Thursday: next Tuesday 09:00 Berlin.
    assert_eq!(outs[0].timers_set[0].due_at, T0 + 8 * DAY - 2 * HOUR);
    h.run_until(T0 + 9 * DAY);
    assert_eq!(h.texts(), ["done"]);
}

fn ask_flow(expect: &str, extra: Value) -> Value {
    let mut ask = json!({ "id": "q", "type": "ask", "text": "How many?", "expect": expect,
        "retries": 1, "retry_text": "Again?", "var": "n", "timeout": "30m",
        "exits": { "answered": "ok", "invalid": "bad", "timeout": "late" } });
    if let (Some(a), Some(e)) = (ask.as_object_mut(), extra.as_object()) {
        a.extend(e.clone());
    }
    flow(
        "f",
        json!([
            ask,
            { "id": "ok", "type": "send_message", "text": "got {{ vars.n }}" },
            { "id": "bad", "type": "end", "outcome": "invalid" },
            { "id": "late", "type": "end", "outcome": "timeout" }
        ]),
    )
}

#[test]
fn ask_answered_invalid_and_timeout() {
    let mut h = Harness::new(vec![ask_flow("number", json!({}))]);
    h.send(go("e1", T0));
    h.send(msg("m1", "twelve", T0 + MIN));
    h.send(msg("m2", " 12,0 ", T0 + 2 * MIN));
    assert_eq!(h.texts(), ["How many?", "Again?", "got 12"]);

    let mut h = Harness::new(vec![ask_flow("email", json!({}))]);
    h.send(go("e1", T0));
    h.send(msg("m1", "nope", T0 + MIN));
    h.send(msg("m2", "still no", T0 + 2 * MIN));
    assert_eq!(h.outcomes(), ["f:invalid"]);

    let mut h = Harness::new(vec![ask_flow("phone", json!({}))]);
    h.send(go("e1", T0));
    h.run_until(T0 + HOUR);
    assert_eq!(h.outcomes(), ["f:timeout"]);

    let mut h = Harness::new(vec![ask_flow(
        "choice",
        json!({
        "choices": [ { "id": "billing", "title": "Billing" }, { "id": "other", "title": "Other" } ] }),
    )]);
    h.send(go("e1", T0));
    let mut reply = msg("m1", "", T0 + MIN);
    reply.payload = Payload::Message(MessagePayload {
        text: None,
        kind: "button".into(),
        media: None,
        reply_payload: Some("other".into()),
        edited: false,
    });
    h.send(reply);
    assert_eq!(h.texts().last().map(String::as_str), Some("got other"));
}

#[test]
fn ask_timeout_counts_from_delivery() {
    let mut h = Harness::new(vec![ask_flow("text", json!({}))]);
    h.send(go("e1", T0));
    let question = h.actions[0].id.clone();
    let mut delivered = event(
        "d1",
        EventType::MessageDelivered,
        Payload::Delivery(DeliveryPayload {
            message_id: "p-1".into(),
            action_id: Some(question),
            error_code: None,
            error: None,
        }),
        T0 + 20 * MIN,
    );
    delivered.session = None;
    let out = h.send(delivered);
    assert_eq!(out.timers_set[0].due_at, T0 + 50 * MIN);
    assert_eq!(out.timers_cancelled.len(), 1);
    assert!(
        h.run_until(T0 + 40 * MIN).is_empty(),
        "the old timer is gone"
    );
    h.run_until(T0 + 50 * MIN);
    assert_eq!(h.outcomes(), ["f:timeout"]);
}

#[test]
fn consent_granted_denied_timeout() {
    let f = flow(
        "f",
        json!([
            { "id": "c", "type": "consent", "text": "May we?", "topic": "news", "timeout": "1h",
              "exits": { "granted": "y", "denied": "n", "timeout": "t" } },
            { "id": "y", "type": "end", "outcome": "granted" },
            { "id": "n", "type": "end", "outcome": "denied" },
            { "id": "t", "type": "end", "outcome": "timeout" }
        ]),
    );
    for (reply, outcome) in [
        (Some("Yes"), "f:granted"),
        (Some("nope"), "f:denied"),
        (None, "f:timeout"),
    ] {
        let mut h = Harness::new(vec![f.clone()]);
        h.send(go("e1", T0));
        match reply {
            Some(r) => {
                h.send(msg("m1", r, T0 + MIN));
            }
            None => {
                h.run_until(T0 + 2 * HOUR);
            }
        }
        assert_eq!(h.outcomes(), [outcome]);
        assert_eq!(h.state.has_tag("consent:news"), outcome == "f:granted");
    }
}

fn result(
    id: &str,
    ty: EventType,
    action_id: &str,
    status: &str,
    body: &str,
    at: i64,
) -> sluice_schemas::Event {
    event(
        id,
        ty,
        Payload::Result(ResultPayload {
            action_id: action_id.into(),
            status: status.into(),
            status_code: Some(201),
            body: Some(body.into()),
            error: None,
        }),
        at,
    )
}

#[test]
fn http_and_ai_results_are_correlated_by_action_id() {
    let f = flow(
        "f",
        json!([
            { "id": "h", "type": "http", "method": "POST", "url": "https://x.example/{{ event.fields.amount }}",
              "body": "{\"a\": 1}", "timeout": "30s", "response": { "tid": "/ticket/id", "code": "status" },
              "exits": { "success": "ai", "error": "err", "timeout": "late" } },
            { "id": "ai", "type": "ai_complete", "model": "m", "prompt": "Summarize {{ vars.tid }}", "result_var": "sum",
              "exits": { "success": "ok", "error": "err", "timeout": "late" } },
            { "id": "ok", "type": "send_message", "text": "{{ vars.tid }}/{{ vars.code }}: {{ vars.sum }}" },
            { "id": "err", "type": "end", "outcome": "error" },
            { "id": "late", "type": "end", "outcome": "timeout" }
        ]),
    );
    let mut h = Harness::new(vec![f.clone()]);
    h.send(go("e1", T0));
    let call = h.actions[0].clone();
    assert_eq!(call.action_type, ActionType::HttpCall);
    match &call.payload {
        ActionPayload::HttpCall(c) => assert_eq!(c.url, "https://x.example/5"),
        other => panic!("{other:?}"),
    }
    // A result for another action id changes nothing.
    h.send(result(
        "r0",
        EventType::FunctionResult,
        "other",
        "success",
        "{}",
        T0 + 1000,
    ));
    assert_eq!(h.actions.len(), 1);
    h.send(result(
        "r1",
        EventType::FunctionResult,
        &call.id,
        "success",
        r#"{"ticket":{"id":"T-9"}}"#,
        T0 + 2000,
    ));
    let ai = h.actions[1].clone();
    assert_eq!(ai.action_type, ActionType::AiComplete);
    h.send(result(
        "r2",
        EventType::AiResult,
        &ai.id,
        "success",
        "all good",
        T0 + 3000,
    ));
    assert_eq!(h.texts(), ["T-9/201: all good"]);

    let mut h = Harness::new(vec![f.clone()]);
    h.send(go("e1", T0));
    let id = h.actions[0].id.clone();
    h.send(result(
        "r1",
        EventType::FunctionResult,
        &id,
        "error",
        "",
        T0 + 1000,
    ));
    assert_eq!(h.outcomes(), ["f:error"]);

    let mut h = Harness::new(vec![f]);
    h.send(go("e1", T0));
    h.run_until(T0 + MIN);
    assert_eq!(h.outcomes(), ["f:timeout"]);
}

#[test]
fn start_flow_call_resumes_with_outputs_and_fire_and_forget_does_not_wait() {
    let child = json!({
        "id": "child", "name": "child", "version": 1, "kind": "event", "params": ["x"],
        "triggers": [ { "event": "custom", "name": "never" } ],
        "nodes": [
            { "id": "c1", "type": "set_var", "var": "y", "value": "{{ vars.x }}!", "exits": { "next": "c2" } },
            { "id": "c2", "type": "wait", "duration": "1m", "exits": { "next": "c3" } },
            { "id": "c3", "type": "end", "outcome": "ok" }
        ]
    });
    let parent = flow(
        "p",
        json!([
            { "id": "call", "type": "start_flow", "flow": "child", "mode": "call", "params": { "x": "hi" },
              "result_var": "r", "timeout": "1h", "exits": { "completed": "ok", "failed": "bad", "timeout": "late" } },
            { "id": "ok", "type": "send_message", "text": "child said {{ vars.r.y }}", "exits": { "next": "ff" } },
            { "id": "ff", "type": "start_flow", "flow": "child", "params": { "x": "again" } },
            { "id": "bad", "type": "end", "outcome": "failed" },
            { "id": "late", "type": "end", "outcome": "timeout" }
        ]),
    );
    let mut h = Harness::new(vec![child, parent]);
    h.send(go("e1", T0));
    assert_eq!(h.state.runs.len(), 2, "parent waits, child waits");
    h.run_until(T0 + MIN);
    assert_eq!(h.texts(), ["child said hi!"]);
    assert_eq!(h.outcomes(), ["child:ok", "p:completed"]);
    assert_eq!(h.state.runs.len(), 1, "the fire-and-forget child runs on");
}

#[test]
fn session_nodes_need_a_session() {
    let f = flow(
        "f",
        json!([
            { "id": "a", "type": "assign_session", "team": "l1", "exits": { "next": "u" } },
            { "id": "u", "type": "unassign_session", "exits": { "next": "s" } },
            { "id": "s", "type": "survey_session", "survey": "csat", "exits": { "next": "c" } },
            { "id": "c", "type": "close_session", "message": "Bye" }
        ]),
    );
    let mut h = Harness::new(vec![f.clone()]);
    let mut e = go("e1", T0);
    e.session = Some(session("s-9", "open"));
    h.send(e);
    assert_eq!(
        types(&h),
        [
            ActionType::SessionAssign,
            ActionType::SessionUnassign,
            ActionType::SessionSurvey,
            ActionType::SessionClose
        ]
    );
    let mut h = Harness::new(vec![f]);
    h.send(go("e1", T0));
    assert!(
        h.outcomes()[0].contains("needs a session"),
        "{:?}",
        h.outcomes()
    );
}

#[test]
fn step_limit_fails_the_run_with_a_reason() {
    let mut h = Harness::new(vec![json!({
        "id": "f", "name": "f", "version": 1, "kind": "event",
        "triggers": [ { "event": "custom", "name": "go" } ],
        "settings": { "step_limit": 2 },
        "nodes": [
            { "id": "a", "type": "set_var", "var": "x", "value": "1", "exits": { "next": "b" } },
            { "id": "b", "type": "set_var", "var": "x", "value": "2", "exits": { "next": "c" } },
            { "id": "c", "type": "set_var", "var": "x", "value": "3" }
        ]
    })]);
    h.send(go("e1", T0));
    let o = h.outcomes();
    assert!(
        o[0].contains("step limit of 2 nodes reached at node c"),
        "{o:?}"
    );
}

#[test]
fn sub_flow_failure_takes_the_failed_exit() {
    let child = json!({
        "id": "child", "name": "child", "version": 1, "kind": "event",
        "triggers": [ { "event": "custom", "name": "never" } ],
        "nodes": [ { "id": "c", "type": "close_session" } ]
    });
    let parent = flow(
        "p",
        json!([
            { "id": "call", "type": "start_flow", "flow": "child", "mode": "call",
              "exits": { "completed": "ok", "failed": "bad" } },
            { "id": "ok", "type": "end", "outcome": "ok" },
            { "id": "bad", "type": "end", "outcome": "child_failed" }
        ]),
    );
    let mut h = Harness::new(vec![child, parent]);
    h.send(go("e1", T0));
    let o = h.outcomes();
    assert_eq!(o.len(), 2, "{o:?}");
    assert_eq!(o[1], "p:child_failed");
    let parent_of = h.emitted.iter().find_map(|e| match &e.payload {
        Payload::Flow(FlowPayload {
            flow_id,
            parent_run_id,
            ..
        }) if flow_id == "child" && e.event_type == EventType::FlowFailed => parent_run_id.clone(),
        _ => None,
    });
    assert!(parent_of.is_some());
}

#[test]
fn start_flow_call_times_out() {
    let child = json!({
        "id": "slow", "name": "slow", "version": 1, "kind": "event",
        "triggers": [ { "event": "custom", "name": "never" } ],
        "nodes": [ { "id": "w", "type": "wait", "duration": "1d" } ]
    });
    let parent = flow(
        "p",
        json!([
            { "id": "call", "type": "start_flow", "flow": "slow", "mode": "call", "timeout": "1h",
              "exits": { "completed": "ok", "failed": "bad", "timeout": "late" } },
            { "id": "ok", "type": "end", "outcome": "ok" },
            { "id": "bad", "type": "end", "outcome": "failed" },
            { "id": "late", "type": "end", "outcome": "timeout" }
        ]),
    );
    let mut h = Harness::new(vec![child, parent]);
    h.send(go("e1", T0));
    h.run_until(T0 + 2 * HOUR);
    assert_eq!(h.outcomes(), ["p:timeout"]);
    // The child's later completion finds no parent waiting and changes nothing else.
    h.run_until(T0 + 2 * DAY);
    assert_eq!(h.outcomes(), ["p:timeout", "slow:completed"]);
}
