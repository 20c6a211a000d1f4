//! Compiling arbitrary input never panics: arbitrary JSON values, arbitrary text as JSON
//! and YAML, and random mutations of the example flows.

use proptest::prelude::*;
use serde_json::{Map, Value, json};
use sluice_engine::flow::{SourceFormat, compile_str, compile_value, summary, to_dot, to_mermaid};

fn any_json() -> impl Strategy<Value = Value> {
    let words = prop::sample::select(vec![
        "id",
        "type",
        "exits",
        "next",
        "nodes",
        "triggers",
        "event",
        "if",
        "ask",
        "wait",
        "left",
        "op",
        "right",
        "all",
        "condition",
        "duration",
        "2h",
        "vars.x",
        "{{ vars.x }}",
        "{% for %}",
        "message.received",
        "eq",
        "regex",
        "(",
    ]);
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        words.clone().prop_map(Value::from),
        ".{0,12}".prop_map(Value::from),
    ];
    leaf.prop_recursive(6, 64, 8, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((words.clone(), inner), 0..8).prop_map(|kv| Value::Object(
                kv.into_iter()
                    .map(|(k, v)| (k.to_owned(), v))
                    .collect::<Map<_, _>>()
            )),
        ]
    })
}

fn examples() -> Vec<Value> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/flows");
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "json") {
            out.push(serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap());
        }
    }
    out
}

/// Replaces the value at the `pick`-th position of a depth-first walk.
fn mutate(value: &mut Value, pick: &mut usize, replacement: &Value) -> bool {
    if *pick == 0 {
        *value = replacement.clone();
        return true;
    }
    *pick -= 1;
    match value {
        Value::Array(items) => items.iter_mut().any(|v| mutate(v, pick, replacement)),
        Value::Object(map) => map.values_mut().any(|v| mutate(v, pick, replacement)),
        _ => false,
    }
}

fn exercise(value: Value) {
    let c = compile_value(value);
    if let Some(flow) = c.flow {
        let _ = (summary(&flow), to_dot(&flow), to_mermaid(&flow));
    } else {
        assert!(c.diagnostics.iter().any(|d| d.is_error()));
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_json_never_panics(value in any_json()) {
        exercise(value.clone());
        exercise(json!({"id": "p", "name": "p", "version": 1, "kind": "bot", "triggers": [value.clone()], "nodes": [value]}));
    }

    #[test]
    fn arbitrary_text_never_panics(text in ".{0,200}") {
        let _ = compile_str(&text, SourceFormat::Json);
        let _ = compile_str(&text, SourceFormat::Yaml);
    }

    #[test]
    fn mutated_examples_never_panic(which in 0usize..16, pick in 0usize..400, replacement in any_json()) {
        let mut all = examples();
        let n = all.len();
        let mut value = all.swap_remove(which % n);
        let mut p = pick;
        mutate(&mut value, &mut p, &replacement);
        exercise(value);
    }
}
