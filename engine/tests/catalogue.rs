//! Every node type, operator and trigger kind of the catalogue compiles from its documented
//! form, with the documented exits; the compiled flow indexes triggers and renders templates.

use serde_json::{Value, json};
use sluice_engine::flow::{
    CompiledFlow, Condition, NodeKind, Pattern, Schedule, Test, TriggerKind, compile_value, exits,
    to_dot, to_mermaid,
};
use sluice_schemas::EventType;

fn flow(triggers: Value, nodes: Value) -> CompiledFlow {
    let source = json!({
        "id": "t", "name": "t", "version": 1, "kind": "event",
        "settings": { "working_hours": { "from": "09:00", "to": "18:00" } },
        "triggers": triggers, "nodes": nodes,
    });
    let c = compile_value(source);
    let errors: Vec<String> = c
        .diagnostics
        .iter()
        .filter(|d| d.is_error())
        .map(ToString::to_string)
        .collect();
    assert!(errors.is_empty(), "{errors:#?}");
    c.flow.unwrap()
}

fn one(node: Value) -> CompiledFlow {
    flow(
        json!([{ "event": "message.received" }]),
        json!([node, { "id": "z", "type": "end" }]),
    )
}

#[test]
fn every_node_type_compiles_with_its_exits() {
    let z = "z";
    let cases = [
        (
            json!({"type": "send_message", "text": "hi {{ contact.fields.name }}", "media": {"url": "https://x/y.png"}, "buttons": ["a", {"id": "b", "title": "B"}], "exits": {"next": z}}),
            vec!["next"],
            false,
        ),
        (
            json!({"type": "send_short", "shortcut": "thanks", "text": "Thanks!"}),
            vec!["next"],
            false,
        ),
        (
            json!({"type": "send_template", "template": "order_update", "language": "en", "parameters": ["{{ vars.x }}"]}),
            vec!["next"],
            false,
        ),
        (
            json!({"type": "ai_complete", "model": "small", "prompt": "Summarize {{ event.message.text }}", "result_var": "summary", "exits": {"success": z, "error": z, "timeout": z}}),
            vec!["success", "error", "timeout"],
            true,
        ),
        (
            json!({"type": "update_field", "field": "city", "value": "Berlin"}),
            vec!["next"],
            false,
        ),
        (
            json!({"type": "update_field", "field": "city", "value": null}),
            vec!["next"],
            false,
        ),
        (
            json!({"type": "add_tag", "tag": "vip"}),
            vec!["next"],
            false,
        ),
        (
            json!({"type": "remove_tag", "tag": "vip"}),
            vec!["next"],
            false,
        ),
        (
            json!({"type": "assign_session", "team": "l1"}),
            vec!["next"],
            false,
        ),
        (json!({"type": "unassign_session"}), vec!["next"], false),
        (
            json!({"type": "close_session", "message": "Bye"}),
            vec!["next"],
            false,
        ),
        (
            json!({"type": "survey_session", "survey": "csat"}),
            vec!["next"],
            false,
        ),
        (
            json!({"type": "start_flow", "flow": "other", "params": {"a": "{{ contact.id }}"}}),
            vec!["next"],
            false,
        ),
        (
            json!({"type": "start_flow", "flow": "other", "mode": "call", "result_var": "out", "timeout": "1h", "exits": {"completed": z, "failed": z, "timeout": z}}),
            vec!["completed", "failed", "timeout"],
            true,
        ),
        (
            json!({"type": "publish_event", "name": "ticket.created", "fields": {"a": "x", "n": 1, "b": true, "z": null}}),
            vec!["next"],
            false,
        ),
        (
            json!({"type": "set_var", "var": "x", "value": "{{ 1 + 1 }}"}),
            vec!["next"],
            false,
        ),
        (
            json!({"type": "http", "method": "post", "url": "https://api/{{ contact.id }}", "headers": {"X": "y"}, "body": "{}", "response": {"id": "/id", "code": "status", "raw": "body"}, "exits": {"success": z, "error": z, "timeout": z}}),
            vec!["success", "error", "timeout"],
            true,
        ),
        (
            json!({"type": "ask", "text": "Email?", "expect": "email", "retries": 2, "var": "email", "timeout": "1d", "exits": {"answered": z, "invalid": z, "timeout": z}}),
            vec!["answered", "invalid", "timeout"],
            true,
        ),
        (
            json!({"type": "ask", "text": "Pick", "expect": "choice", "choices": ["a", "b"], "var": "c", "exits": {"answered": z, "invalid": z}}),
            vec!["answered", "invalid", "timeout"],
            true,
        ),
        (
            json!({"type": "wait", "duration": "2h"}),
            vec!["next"],
            true,
        ),
        (
            json!({"type": "wait", "until_time": "09:00", "weekdays": ["mon", "fri"]}),
            vec!["next"],
            true,
        ),
        (
            json!({"type": "wait", "until": "contact.fields.callback_at", "time": "10:00"}),
            vec!["next"],
            true,
        ),
        (
            json!({"type": "wait", "until_working_hours": true}),
            vec!["next"],
            true,
        ),
        (
            json!({"type": "consent", "text": "May we text you?", "topic": "marketing", "timeout": "1d", "exits": {"granted": z, "denied": z, "timeout": z}}),
            vec!["granted", "denied", "timeout"],
            true,
        ),
        (
            json!({"type": "if", "condition": {"left": "contact.tags", "op": "has_tag", "right": "vip"}, "exits": {"true": z, "false": z}}),
            vec!["true", "false"],
            false,
        ),
        (
            json!({"type": "switch", "cases": [{"name": "a", "condition": {"left": "event.message.text", "op": "contains", "right": "pay"}}], "exits": {"a": z, "default": z}}),
            vec!["a", "default"],
            false,
        ),
        (
            json!({"type": "split", "branches": [{"name": "a", "weight": 1}, {"name": "b", "weight": 3}], "exits": {"a": z, "b": z}}),
            vec!["a", "b"],
            false,
        ),
        (
            json!({"type": "working_hours", "exits": {"open": z, "closed": z}}),
            vec!["open", "closed"],
            false,
        ),
        (
            json!({"type": "working_hours", "hours": [{"days": ["sat"], "from": "10:00", "to": "14:00"}], "exits": {"open": z, "closed": z}}),
            vec!["open", "closed"],
            false,
        ),
        (json!({"type": "end", "outcome": "done"}), vec![], false),
    ];
    let mut seen = std::collections::BTreeSet::new();
    for (mut node, exit_names, waits) in cases {
        node["id"] = json!("n");
        let f = one(node.clone());
        let n = &f.nodes[0];
        seen.insert(n.kind.type_name());
        assert_eq!(n.kind.exit_names(), exit_names, "{node}");
        assert_eq!(n.kind.is_waiting(), waits, "{node}");
        assert_eq!(n.exits.len(), exit_names.len());
    }
    assert_eq!(
        seen.len(),
        sluice_engine::flow::NODE_TYPES.len(),
        "every node type is covered"
    );
}

#[test]
fn exits_are_indices_in_slot_order() {
    let f = one(
        json!({"id": "n", "type": "http", "url": "https://x", "exits": {"timeout": "z", "success": "z", "error": "n"}}),
    );
    let n = &f.nodes[0];
    assert_eq!(n.exits[exits::OK].map(|i| f.node(i).id.as_str()), Some("z"));
    assert_eq!(n.exits[exits::FAILED].map(|i| i.0), Some(0));
    assert_eq!(n.exit("timeout"), f.node_index("z"));
}

#[test]
fn every_operator_compiles_to_its_test() {
    let ops = [
        ("eq", json!("vars.a"), json!("x")),
        ("ne", json!("contact.fields.city"), json!("Berlin")),
        ("lt", json!("vars.n"), json!(3)),
        ("le", json!("event.payment.amount"), json!("10.00 EUR")),
        (
            "gt",
            json!("event.occurred_at"),
            json!("2026-01-01T00:00:00Z"),
        ),
        ("ge", json!("event.fields.score"), json!(7.5)),
        ("contains", json!("event.message.text"), json!("Refund")),
        ("starts_with", json!("contact.username"), json!("ann")),
        (
            "ends_with",
            json!("contact.fields.email"),
            json!("@example.com"),
        ),
        ("regex", json!("event.message.text"), json!("^\\d+$")),
        (
            "in",
            json!("session.channel_type"),
            json!(["telegram", "whatsapp"]),
        ),
        ("not_in", json!("contact.channels"), json!(["sms"])),
        ("exists", json!("contact.fields.phone"), Value::Null),
        ("empty", json!("session.assignee"), Value::Null),
        (
            "between",
            json!("event.payment.amount"),
            json!(["1.00 EUR", "9.99 EUR"]),
        ),
        ("has_tag", json!("contact.tags"), json!("VIP")),
        ("time_between", json!("now"), json!(["22:00", "08:00"])),
        ("weekday_in", json!("now"), json!(["sat", "sun"])),
        ("before", json!("now"), json!("2026-12-31")),
        ("after", json!("vars.deadline"), json!("09:30")),
    ];
    for (op, left, right) in ops {
        let mut cond = json!({"left": left, "op": op});
        if !right.is_null() {
            cond["right"] = right;
        }
        let f = one(
            json!({"id": "n", "type": "if", "condition": {"not": {"all": [cond]}}, "exits": {"true": "z", "false": "z"}}),
        );
        let NodeKind::If {
            condition: Condition::Not(inner),
        } = &f.nodes[0].kind
        else {
            panic!("{op}")
        };
        let Condition::All(items) = inner.as_ref() else {
            panic!("{op}")
        };
        let Condition::Test { test, .. } = &items[0] else {
            panic!("{op}")
        };
        let name = test.to_string();
        assert!(
            name.starts_with(op) || (op == "lt" && name.starts_with("lt")),
            "{op}: {name}"
        );
        if op == "has_tag" {
            assert!(
                matches!(test, Test::HasTag(t) if t == "vip"),
                "tags compare case-insensitively"
            );
        }
    }
}

#[test]
fn triggers_are_indexed_by_event_type() {
    let f = flow(
        json!([
            {"event": "message.received"},
            {"event": "custom", "name": "cart.updated"},
            {"event": "contact.field_updated", "field": "email", "reentry": "once"},
            {"event": "flow.completed", "flow": "onboarding", "reentry": {"once_per": "1d"}},
            {"schedule": {"cron": "0 9 * * 1-5"}},
            {"schedule": {"date_field": "contact.fields.birthday", "time": "09:00"}},
            {"pattern": {"type": "not_followed_by", "first": {"event": "custom", "name": "cart.updated"}, "then": {"event": "payment.received"}, "within": "2h"}},
            {"pattern": {"type": "at_least", "event": {"event": "message.failed"}, "count": 3, "within": "1h"}},
            {"pattern": {"type": "sum_above", "event": {"event": "payment.received"}, "field": "event.payment.amount", "above": "500.00 EUR", "within": "30d"}},
            {"pattern": {"type": "absence", "event": {"event": "message.received"}, "for": "7d"}},
            {"event": "message.received", "filter": {"left": "event.message.kind", "op": "eq", "right": "image"}, "entry": "z"}
        ]),
        json!([{"id": "a", "type": "end"}, {"id": "z", "type": "end"}]),
    );
    assert_eq!(f.triggers_for(EventType::MessageReceived), &[0, 10]);
    assert_eq!(f.triggers_for(EventType::Custom), &[1]);
    assert_eq!(f.triggers_for(EventType::SessionClosed), &[] as &[u32]);
    assert_eq!(f.scheduled(), &[4, 5]);
    assert_eq!(f.patterns_observing(EventType::PaymentReceived), &[6, 8]);
    assert_eq!(f.patterns_observing(EventType::MessageReceived), &[9]);
    assert!(matches!(
        f.triggers[5].kind,
        TriggerKind::Schedule(Schedule::Yearly { .. })
    ));
    assert!(
        matches!(&f.triggers[8].kind, TriggerKind::Pattern(p) if matches!(**p, Pattern::SumAbove { .. }))
    );
    assert_eq!(f.node(f.triggers[10].entry).id, "z");
    assert!(f.triggers[10].filter.is_some());
}

#[test]
fn templates_render_with_the_flow_context() {
    let f = one(
        json!({"id": "n", "type": "send_message", "text": "Hi {{ contact.fields.name | default('there') }}, ticket {{ vars.t }}"}),
    );
    let NodeKind::SendMessage {
        text: Some(text), ..
    } = &f.nodes[0].kind
    else {
        panic!()
    };
    let ctx = minijinja::context! { contact => minijinja::context! { fields => minijinja::context! {} }, vars => minijinja::context! { t => "T-1" } };
    assert_eq!(f.render(text, &ctx).unwrap(), "Hi there, ticket T-1");
}

#[test]
fn graphs_name_every_node_and_edge() {
    let f = one(
        json!({"id": "n", "type": "if", "label": "Is \"VIP\"?", "condition": {"left": "contact.tags", "op": "has_tag", "right": "vip"}, "exits": {"true": "z", "false": "z"}}),
    );
    let dot = to_dot(&f);
    assert!(dot.contains("n0 -> n1 [label=\"true\"]"), "{dot}");
    assert!(dot.contains("Is \\\"VIP\\\"?"), "{dot}");
    assert!(to_mermaid(&f).contains("n0 -->|false| n1"));
}

#[test]
fn hash_ignores_key_order_and_artifacts_round_trip() {
    let a = compile_value(
        json!({"id": "h", "name": "h", "version": 1, "kind": "event", "triggers": [], "nodes": [{"id": "a", "type": "end"}]}),
    );
    let b = compile_value(serde_json::from_str(r#"{"nodes": [{"type": "end", "id": "a"}], "triggers": [], "kind": "event", "version": 1, "name": "h", "id": "h"}"#).unwrap());
    let (a, b) = (a.flow.unwrap(), b.flow.unwrap());
    assert_eq!(a.content_hash, b.content_hash);
    let art = sluice_engine::flow::artifact(&a);
    assert_eq!(
        sluice_engine::flow::from_artifact(&art)
            .unwrap()
            .content_hash,
        a.content_hash
    );
    let mut tampered = art.clone();
    tampered["source"]["version"] = json!(2);
    assert!(
        sluice_engine::flow::from_artifact(&tampered)
            .unwrap_err()
            .to_string()
            .contains("content hash mismatch")
    );
}

#[test]
fn the_json_schema_lists_every_node_type() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../schemas/flow.schema.json");
    let schema: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let types: Vec<&str> = schema["properties"]["nodes"]["items"]["oneOf"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["properties"]["type"]["const"].as_str().unwrap())
        .collect();
    assert_eq!(types, sluice_engine::flow::NODE_TYPES);
}
