//! Subset matching of expectations against what happened, and the views it
//! matches on: an action or event as JSON with its payload unwrapped, and the
//! contact's state with profile fields and run variables as maps and each run's
//! node by id.

use serde_json::{Map, Value};

use crate::{eval::FlowSet, flow::CompiledFlow};

use super::file::parse_time;

/// Compares `expected` against `actual`; appends one line per mismatch, each
/// starting with the path. Objects match when every expected key matches (a
/// `null` expectation also matches an absent key), arrays element by element with
/// equal lengths, numbers by value, everything else by equality.
pub(super) fn compare(expected: &Value, actual: Option<&Value>, path: &str, out: &mut Vec<String>) {
    match (expected, actual) {
        (Value::Null, None | Some(Value::Null)) => {}
        (_, None) => out.push(format!("{path}: expected {expected}, but it is absent")),
        (Value::Object(want), Some(Value::Object(have))) => {
            for (key, value) in want {
                compare(value, have.get(key), &join(path, key), out);
            }
        }
        (Value::Array(want), Some(Value::Array(have))) => {
            if want.len() != have.len() {
                out.push(format!(
                    "{path}: expected {} item(s), got {}",
                    want.len(),
                    have.len()
                ));
            }
            for i in 0..want.len().max(have.len()) {
                let at = format!("{path}[{i}]");
                match (want.get(i), have.get(i)) {
                    (Some(w), Some(h)) => compare(w, Some(h), &at, out),
                    (Some(w), None) => out.push(format!("{at}: missing, expected {w}")),
                    (None, Some(h)) => out.push(format!("{at}: unexpected {}", brief(h))),
                    (None, None) => {}
                }
            }
        }
        (Value::Number(want), Some(Value::Number(have))) if want.as_f64() == have.as_f64() => {}
        (want, Some(have)) if want == have => {}
        (want, Some(have)) => out.push(format!("{path}: expected {want}, got {have}")),
    }
}

/// A record in one line for a report: `type flow/node payload` when it has those,
/// else its JSON.
pub(super) fn brief(value: &Value) -> String {
    let text = |key: &str| value.get(key).and_then(Value::as_str);
    match (text("type"), text("flow_id"), text("node_id")) {
        (Some(kind), Some(flow), Some(node)) => {
            let mut line = format!("{kind} {flow}/{node}");
            if let Some(at) = value.get("not_before").and_then(Value::as_i64) {
                line.push_str(&format!(" not_before {}", super::file::format_time(at)));
            }
            if let Some(payload) = value.get("payload") {
                line.push_str(&format!(" {payload}"));
            }
            line
        }
        _ => value.to_string(),
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

/// Writes times given as text in an action expectation (`not_before`,
/// `created_at`) as Unix ms, relative ones (`+2h`) from `now`.
pub(super) fn normalize_expected_action(expected: &Value, now: i64) -> Result<Value, String> {
    let mut expected = expected.clone();
    if let Value::Object(map) = &mut expected {
        for key in ["not_before", "created_at"] {
            if let Some(Value::String(text)) = map.get(key) {
                let ms = parse_time(text, now).map_err(|e| format!("{key}: {e}"))?;
                map.insert(key.to_owned(), Value::from(ms));
            }
        }
    }
    Ok(expected)
}

/// An action or event as matched: its JSON form, the payload's single variant
/// unwrapped (`payload.text` rather than `payload.send_message.text`), and
/// `flow` / `node` aliases for `flow_id` / `node_id`.
pub(super) fn record_view<T: serde::Serialize>(record: &T) -> Value {
    let mut value = serde_json::to_value(record).unwrap_or(Value::Null);
    if let Value::Object(map) = &mut value {
        if let Some(Value::Object(payload)) = map.get("payload")
            && payload.len() == 1
            && let Some(inner) = payload.values().next()
        {
            let inner = inner.clone();
            map.insert("payload".into(), inner);
        }
        for (alias, key) in [("flow", "flow_id"), ("node", "node_id")] {
            if let Some(v) = map.get(key).cloned() {
                map.insert(alias.into(), v);
            }
        }
    }
    value
}

/// Turns a list of `[name, value]` pairs into a map.
fn pairs_to_map(value: &mut Value) {
    if let Value::Array(items) = value {
        let mut map = Map::new();
        for item in items.iter() {
            if let Value::Array(pair) = item
                && let [Value::String(k), v] = pair.as_slice()
            {
                map.insert(k.clone(), v.clone());
            }
        }
        *value = Value::Object(map);
    }
}

/// Turns a map into sorted `[name, value]` pairs (the stored form).
pub(super) fn map_to_pairs(value: &mut Value) {
    if let Value::Object(map) = value {
        let mut pairs: Vec<(String, Value)> =
            map.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        pairs.sort_by(|a, b| a.0.cmp(&b.0));
        *value = Value::Array(
            pairs
                .into_iter()
                .map(|(k, v)| Value::Array(vec![Value::String(k), v]))
                .collect(),
        );
    }
}

fn node_id(flow: Option<&std::sync::Arc<CompiledFlow>>, index: &Value) -> Option<Value> {
    let flow = flow?;
    let index = usize::try_from(index.as_u64()?).ok()?;
    flow.nodes.get(index).map(|n| Value::String(n.id.clone()))
}

/// The contact's state as matched: its JSON form with `fields` and each run's
/// `vars` as maps, and each run's `node` as the node id.
pub(super) fn state_view(state: &Value, flows: &FlowSet) -> Value {
    let mut view = state.clone();
    if let Some(fields) = view.get_mut("fields") {
        pairs_to_map(fields);
    }
    if let Some(Value::Array(runs)) = view.get_mut("runs") {
        for run in runs {
            if let Some(vars) = run.get_mut("vars") {
                pairs_to_map(vars);
            }
            let flow = run.get("flow").and_then(Value::as_str).map(str::to_owned);
            let version = run.get("version").and_then(Value::as_u64);
            let compiled = match (flow, version) {
                (Some(id), Some(v)) => u32::try_from(v).ok().and_then(|v| flows.version(&id, v)),
                _ => None,
            };
            if let Some(id) = run.get("node").and_then(|n| node_id(compiled, n)) {
                run["node"] = id;
            }
        }
    }
    view
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn diff(expected: Value, actual: Value) -> Vec<String> {
        let mut out = Vec::new();
        compare(&expected, Some(&actual), "", &mut out);
        out
    }

    #[test]
    fn subset_match_names_each_mismatch() {
        let actual = json!({"a": 1, "b": {"c": "x", "d": [1, 2]}, "e": null});
        assert!(
            diff(
                json!({"a": 1.0, "b": {"c": "x"}, "e": null, "z": null}),
                actual.clone()
            )
            .is_empty()
        );
        assert_eq!(
            diff(json!({"b": {"c": "y", "d": [1]}, "q": 3}), actual),
            [
                "b.c: expected \"y\", got \"x\"",
                "b.d: expected 1 item(s), got 2",
                "b.d[1]: unexpected 2",
                "q: expected 3, but it is absent",
            ]
        );
    }

    #[test]
    fn views_unwrap_payloads_and_pairs() {
        let action = json!({"type": "message.send", "node_id": "n", "payload": {"send_message": {"text": "hi"}}});
        let view = record_view(&action);
        assert_eq!(view["payload"]["text"], "hi");
        assert_eq!(view["node"], "n");
        let mut fields = json!({"b": "2", "a": "1"});
        map_to_pairs(&mut fields);
        assert_eq!(fields, json!([["a", "1"], ["b", "2"]]));
        let state = state_view(&json!({"fields": fields, "runs": []}), &FlowSet::new());
        assert_eq!(state["fields"], json!({"a": "1", "b": "2"}));
    }
}
