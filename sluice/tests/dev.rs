//! `sluice dev` as a process: it prints actions as JSON Lines, refuses invalid
//! flows, and — killed with SIGKILL mid-wait and restarted on the same `--data`
//! directory — still fires the pending wait, once.

use std::{
    io::{BufRead, BufReader},
    path::Path,
    process::{Child, Command, Stdio},
    sync::mpsc,
    time::Duration,
};

use serde_json::Value;

const WAIT_FLOW: &str = r#"{
  "id": "nudge", "name": "Nudge", "version": 1, "kind": "event",
  "triggers": [ { "event": "contact.created", "reentry": "once" } ],
  "nodes": [
    { "id": "hello", "type": "send_message", "text": "hello", "exits": { "next": "pause" } },
    { "id": "pause", "type": "wait", "duration": "4s", "exits": { "next": "later" } },
    { "id": "later", "type": "send_message", "text": "later" }
  ]
}"#;

const EVENT: &str = r#"{"id":"e-1","tenant":"acme","contact_id":"c-1","type":"contact.created","occurred_at":1767225600000,"origin":{"channel_type":"telegram","channel_id":"bot-7","urn":"telegram:1"}}"#;

/// A running `sluice dev`, killed when dropped (so a failing test leaves none behind).
struct Dev(Child);

impl Drop for Dev {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn dev(args: &[&str]) -> Dev {
    Dev(Command::new(env!("CARGO_BIN_EXE_sluice"))
        .arg("dev")
        .args(["--metrics-addr", "127.0.0.1:0"])
        .args(args)
        .env_remove("SLUICE_FLOWS")
        .env_remove("SLUICE_DATA")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start sluice dev"))
}

/// The process's stdout lines, as they come.
fn lines(dev: &mut Dev) -> mpsc::Receiver<String> {
    let stdout = dev.0.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

fn text_of(line: &str) -> String {
    let action: Value = serde_json::from_str(line).expect("an action per stdout line");
    action["payload"]["send_message"]["text"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

fn setup(dir: &Path) {
    std::fs::create_dir_all(dir.join("flows")).unwrap();
    std::fs::write(dir.join("flows/nudge.json"), WAIT_FLOW).unwrap();
    std::fs::write(dir.join("events.jsonl"), format!("{EVENT}\n")).unwrap();
}

#[test]
fn a_pending_wait_fires_after_sigkill_and_restart() {
    let dir = tempfile::tempdir().unwrap();
    setup(dir.path());
    let path = |p: &str| dir.path().join(p).display().to_string();
    let (flows, events, data) = (path("flows"), path("events.jsonl"), path("data"));

    let mut first = dev(&["--flows", &flows, "--events", &events, "--data", &data]);
    let out = lines(&mut first);
    let line = out
        .recv_timeout(Duration::from_secs(30))
        .expect("the first action");
    assert_eq!(text_of(&line), "hello");
    first.0.kill().unwrap(); // SIGKILL, mid-wait
    first.0.wait().unwrap();

    let mut second = dev(&["--flows", &flows, "--data", &data, "--exit-when-idle"]);
    let out = lines(&mut second);
    let line = out
        .recv_timeout(Duration::from_secs(30))
        .expect("the wait fires after the restart");
    assert_eq!(text_of(&line), "later");
    let status = second.0.wait().unwrap();
    assert!(status.success());
    let rest: Vec<String> = out.try_iter().collect();
    assert!(rest.is_empty(), "fired once: {rest:?}");
}

#[test]
fn invalid_flows_are_refused_with_their_diagnostics() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("broken.json"),
        r#"{"id": "broken", "nodes": []}"#,
    )
    .unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args([
            "dev",
            "--metrics-addr",
            "127.0.0.1:0",
            "--exit-when-idle",
            "--flows",
        ])
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("broken.json"), "{stderr}");
    assert!(stderr.contains("have errors"), "{stderr}");
}

#[test]
fn quickstart_runs_and_exits_when_idle_without_flows() {
    let events = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/events/quickstart.jsonl");
    let output = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args([
            "dev",
            "--metrics-addr",
            "127.0.0.1:0",
            "--exit-when-idle",
            "--events",
        ])
        .arg(events)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.stdout.is_empty());
}

#[test]
fn quickstart_prints_the_expected_actions() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let flows = root.join("examples/flows").display().to_string();
    let events = root
        .join("examples/events/quickstart.jsonl")
        .display()
        .to_string();
    let mut dev = dev(&["--flows", &flows, "--events", &events]);
    let out = lines(&mut dev);
    let mut seen = Vec::new();
    let expected = [
        ("c-alice", "welcome", "greet"),
        ("c-alice", "welcome", "tag_new"),
        ("c-alice", "support-bot", "classify"),
        ("c-bob", "payment-received", "confirm"),
        ("c-bob", "payment-received", "tag_customer"),
    ];
    while !expected.iter().all(|e| seen.contains(e)) {
        let line = out
            .recv_timeout(Duration::from_secs(30))
            .unwrap_or_else(|_| panic!("missing actions; saw {seen:?}"));
        let action: Value = serde_json::from_str(&line).expect("an action per stdout line");
        let field = |name: &str| action[name].as_str().unwrap_or_default().to_owned();
        let key = (field("contact_id"), field("flow_id"), field("node_id"));
        let key: (&str, &str, &str) = expected
            .iter()
            .copied()
            .find(|e| (e.0, e.1, e.2) == (key.0.as_str(), key.1.as_str(), key.2.as_str()))
            .unwrap_or(("", "", ""));
        seen.push(key);
    }
}
