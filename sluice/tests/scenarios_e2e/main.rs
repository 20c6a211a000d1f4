//! Every scenario in `examples/flows/tests` end to end (issue #8): each runs on the
//! embedded runtime (what `sluice flow test` does) AND through the distributed
//! pipeline — a signed POST into a `sluice ingest` process → Kafka → a `sluice
//! engine` process on Cassandra with a virtual clock → Kafka → a `sluice actions`
//! process → fake provider servers ([`providers`]) — with the same runner and
//! expectations ([`sluice_engine::scenario::run_with`]). Both must pass, and the
//! two must agree: each step's actions are compared with each other too (all but
//! the ids, which name the tenant).
//!
//! What the pipeline does not check: `emitted` expectations (emitted events never
//! leave the engine; they are checked embedded), and results fed back into the
//! engine (see [`pipeline`]'s docs). What it adds: every message action must reach
//! its provider through `sluice actions`.
//!
//! Needs the shared Kafka and Cassandra (`deploy/local/servers.sh`); skipped
//! without them unless `SLUICE_REQUIRE_SERVERS=1`. Run it alone with
//! `cargo test -p sluice --test scenarios_e2e`.

mod pipeline;
mod providers;

use std::{
    path::PathBuf,
    time::{Duration, Instant},
};

use serde_json::Value;
use sluice_engine::scenario::{self, Outcome, Scenario, StepActions};
use sluice_schemas::{Action, ActionPayload};

use pipeline::Pipeline;

fn scenario_files() -> Vec<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples/flows/tests");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("reading examples/flows/tests")
        .map(|entry| entry.expect("a directory entry").path())
        .filter(|path| {
            path.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.ends_with(".test.yaml") || n.ends_with(".test.json"))
        })
        .collect();
    files.sort();
    files
}

/// An action as the two pipelines must agree on it: all but its ids and tenant.
fn comparable(action: &Value) -> Value {
    let mut action = action.clone();
    if let Value::Object(map) = &mut action {
        for key in ["id", "run_id", "tenant"] {
            map.remove(key);
        }
    }
    action
}

fn disagreement(embedded: &[StepActions], pipeline: &[StepActions]) -> Vec<String> {
    let mut out = Vec::new();
    for (a, b) in embedded.iter().zip(pipeline) {
        let left: Vec<Value> = a.actions.iter().map(comparable).collect();
        let right: Vec<Value> = b.actions.iter().map(comparable).collect();
        if left != right {
            out.push(format!(
                "  step {} ({}): embedded {} action(s), pipeline {}:\n    embedded: {}\n    pipeline: {}",
                a.step,
                a.label,
                left.len(),
                right.len(),
                Value::Array(left),
                Value::Array(right),
            ));
        }
    }
    out
}

/// What a provider must have received for a message action: its text, or the
/// template's name.
fn delivered_text(action: &Action) -> Option<String> {
    match &action.payload {
        ActionPayload::SendMessage(message) => message.text.clone(),
        other => {
            let value = serde_json::to_value(other).ok()?;
            let inner = value.as_object()?.values().next()?.clone();
            ["template", "text"]
                .iter()
                .find_map(|key| inner.get(*key).and_then(Value::as_str).map(str::to_owned))
        }
    }
}

/// Waits until every message action of the scenarios reached a provider.
async fn undelivered(pipeline: &Pipeline) -> Vec<String> {
    let wanted: Vec<(String, String)> = pipeline
        .collected
        .iter()
        .filter(|a| a.action_type.as_str().starts_with("message.send"))
        .filter_map(|a| Some((a.id.clone(), delivered_text(a)?)))
        .collect();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let requests = pipeline.providers.requests();
        let missing: Vec<String> = wanted
            .iter()
            .filter(|(_, text)| {
                let escaped = serde_json::to_string(text).unwrap_or_default();
                let escaped = escaped.trim_matches('"');
                !requests
                    .iter()
                    .any(|r| r.body.contains(escaped) || r.body.contains(&form_encoded(text)))
            })
            .map(|(id, text)| format!("  action {id} ({text:?}) reached no provider"))
            .collect();
        if missing.is_empty() || Instant::now() > deadline {
            return missing;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// `text` as an `application/x-www-form-urlencoded` value (the SMS API's body).
fn form_encoded(text: &str) -> String {
    let mut out = String::new();
    for byte in text.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'*' => {
                out.push(char::from(byte));
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_scenario_passes_embedded_and_through_the_pipeline_alike() {
    let scenarios: Vec<Scenario> = scenario_files()
        .iter()
        .map(|file| Scenario::load(file).unwrap_or_else(|e| panic!("{e}")))
        .collect();
    assert!(!scenarios.is_empty(), "no scenarios found");
    let mut embedded: Vec<Outcome> = Vec::new();
    for scenario in &scenarios {
        embedded.push(
            scenario::run(scenario)
                .await
                .unwrap_or_else(|e| panic!("{e}")),
        );
    }
    let Some(mut pipeline) = Pipeline::start(&scenarios).await else {
        return;
    };
    let started = Instant::now();
    let mut report = String::new();
    for (scenario, embedded) in scenarios.iter().zip(&embedded) {
        let name = scenario.path.file_name().map_or_else(
            || scenario.path.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        );
        let outcome = match scenario::run_with(&mut pipeline, scenario).await {
            Ok(outcome) => outcome,
            Err(error) => {
                report.push_str(&format!("{name}: the pipeline failed: {error}\n"));
                continue;
            }
        };
        if !embedded.passed() {
            report.push_str(&format!("{name}: embedded:\n{embedded}"));
        }
        if !outcome.passed() {
            report.push_str(&format!("{name}: pipeline:\n{outcome}"));
        }
        let differences = disagreement(&embedded.steps, &outcome.steps);
        if !differences.is_empty() {
            report.push_str(&format!(
                "{name}: the pipelines disagree:\n{}\n",
                differences.join("\n")
            ));
        }
    }
    let missing = undelivered(&pipeline).await;
    if !missing.is_empty() {
        report.push_str(&format!("not delivered:\n{}\n", missing.join("\n")));
    }
    assert!(
        report.is_empty(),
        "{report}\n{}\n(scenarios took {:?})",
        pipeline.logs(),
        started.elapsed()
    );
    let mut calls: std::collections::BTreeMap<String, usize> = std::collections::BTreeMap::new();
    for request in pipeline.providers.requests() {
        *calls
            .entry(format!("{} {}", request.provider, request.call))
            .or_default() += 1;
    }
    eprintln!(
        "{} scenarios passed embedded and through the pipeline in {:?}: {} actions; provider calls {calls:?}",
        scenarios.len(),
        started.elapsed(),
        pipeline.collected.len(),
    );
}

#[test]
fn the_virtual_clock_is_refused_without_the_test_hooks() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(["engine", "--virtual-clock", "2026-01-05T10:00:00Z"])
        .args(["--metrics-addr", "127.0.0.1:0"])
        .env_remove("SLUICE_TEST_HOOKS")
        .output()
        .expect("running sluice engine");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    assert!(stderr.contains("SLUICE_TEST_HOOKS=1"), "{stderr}");
}
