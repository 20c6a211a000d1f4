//! `sluice engine` as operators run it, against the real Kafka and CQL servers: a
//! submitted flow answers an event with its action, a wait fires once after its
//! duration, an undecodable record goes to the dead-letter topic and the engine goes
//! on, and a timer pending when the engine is stopped fires once after a restart.

mod support;

use std::{
    collections::HashMap,
    path::PathBuf,
    process::Command,
    sync::Arc,
    time::{Duration, Instant},
};

use sluice_infra::{
    bus::{Delivered, EventBus, KafkaBus, KafkaConfig, Record, TopicSpec},
    cql::{Cql, CqlConfig},
    store::{ContactKey, CqlStore, StateStore},
    testing,
};
use sluice_schemas::{Action, Event};
use support::{Process, free_port, http_get as get, read_until};

const NUDGE: &str = r#"{"id":"nudge","name":"Nudge","version":1,"kind":"event",
 "triggers":[{"event":"contact.created","reentry":"once"}],
 "nodes":[
  {"id":"hello","type":"send_message","text":"hello","exits":{"next":"pause"}},
  {"id":"pause","type":"wait","duration":"3s","exits":{"next":"later"}},
  {"id":"later","type":"send_message","text":"still there?","exits":{"next":"done"}},
  {"id":"done","type":"end","outcome":"nudged"}]}"#;

struct Setup {
    kafka: String,
    store: String,
    prefix: String,
    tenant: String,
    dir: tempfile::TempDir,
}

impl Setup {
    fn new(name: &str) -> Option<Setup> {
        let kafka = testing::kafka()?;
        let cql = testing::cql()?;
        let keyspace = testing::unique_name(&format!("sluice_{name}")).to_lowercase();
        let keyspace = keyspace[..keyspace.len().min(48)].to_owned();
        Some(Setup {
            kafka,
            store: format!("cql://{cql}/{keyspace}?replication_factor=1"),
            prefix: testing::unique_name(&format!("engine_{name}")),
            tenant: testing::unique_name("tenant"),
            dir: tempfile::tempdir().expect("a temporary directory"),
        })
    }

    fn topic(&self, role: &str) -> String {
        format!("{}.{role}", self.prefix)
    }

    fn command(&self) -> Command {
        let mut command = support::sluice();
        command
            .env("SLUICE_BUS", format!("kafka://{}", self.kafka))
            .env("SLUICE_STORE", &self.store)
            .env("SLUICE_FLOWS_TOPIC", self.topic("flows"))
            .env("SLUICE_EVENTS_TOPIC", self.topic("events"))
            .env("SLUICE_ACTIONS_TOPIC", self.topic("actions"))
            .env("SLUICE_DLQ_TOPIC", self.topic("dlq"))
            .env("SLUICE_ENGINE_GROUP", format!("{}-group", self.prefix))
            .env("RUST_LOG", "info");
        command
    }

    fn submit(&self, source: &str) {
        let path: PathBuf = self.dir.path().join("flow.json");
        std::fs::write(&path, source).expect("writing the flow");
        let output = self
            .command()
            .args(["flow", "submit"])
            .arg(&path)
            .args(["--tenant", &self.tenant])
            .output()
            .expect("running sluice flow submit");
        assert!(
            output.status.success(),
            "submit failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }

    fn start(&self, name: &str) -> Process {
        self.start_on(name, "127.0.0.1:0")
    }

    fn start_on(&self, name: &str, metrics_addr: &str) -> Process {
        let mut command = self.command();
        command.args([
            "engine",
            "--create-topics",
            "--partitions-hint",
            "4",
            "--metrics-addr",
            metrics_addr,
        ]);
        Process::spawn(name, command, self.dir.path())
    }

    fn bus(&self) -> Arc<dyn EventBus> {
        Arc::new(
            KafkaBus::new(
                KafkaConfig::from_url(&format!("kafka://{}", self.kafka)).expect("a Kafka URL"),
            )
            .expect("a Kafka client"),
        )
    }

    async fn create_topics(&self, bus: &Arc<dyn EventBus>) {
        let spec = |role: &str, partitions: i32| TopicSpec {
            name: self.topic(role),
            partitions,
            replication: 1,
            compacted: false,
        };
        bus.ensure_topics(&[spec("events", 4), spec("actions", 4), spec("dlq", 1)])
            .await
            .expect("creating the topics");
    }

    fn event(&self, contact: &str) -> Event {
        serde_json::from_value(serde_json::json!({
            "id": format!("test:{contact}:created"),
            "tenant": self.tenant,
            "contact_id": contact,
            "type": "contact.created",
            "occurred_at": 1_767_225_600_000_i64,
        }))
        .expect("a valid event")
    }

    async fn publish(&self, bus: &Arc<dyn EventBus>, event: &Event) {
        let record = Record::new(
            format!("{}/{}", event.tenant, event.contact_id),
            event.encode().expect("encoding the event"),
        );
        // A topic just created may not have its partition leaders yet.
        let mut attempts = 0;
        while let Err(error) = bus
            .publish(&self.topic("events"), vec![record.clone()])
            .await
        {
            attempts += 1;
            assert!(attempts < 20, "publishing the event: {error}");
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
}

fn texts(actions: &[Delivered]) -> Vec<(String, String, String)> {
    actions
        .iter()
        .map(|record| {
            let action = Action::decode(&record.payload).expect("an Avro action");
            let text = serde_json::to_value(&action.payload)
                .ok()
                .and_then(|payload| find_text(&payload))
                .unwrap_or_default();
            (action.contact_id.clone(), text, action.id.clone())
        })
        .collect()
}

fn find_text(value: &serde_json::Value) -> Option<String> {
    match value {
        serde_json::Value::Object(map) => map
            .get("text")
            .and_then(|t| t.as_str().map(str::to_owned))
            .or_else(|| map.values().find_map(find_text)),
        _ => None,
    }
}

fn count(actions: &[(String, String, String)], contact: &str, text: &str) -> usize {
    actions
        .iter()
        .filter(|(c, t, _)| c == contact && t == text)
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn engine_runs_a_flow_fires_its_wait_once_and_dead_letters_bad_input() {
    let Some(setup) = Setup::new("run") else {
        return;
    };
    setup.submit(NUDGE);
    let bus = setup.bus();
    setup.create_topics(&bus).await;
    let metrics_addr = free_port();
    let engine = setup.start_on("engine", &metrics_addr.to_string());
    let mut actions = bus
        .subscribe(&testing::unique_name("reader"), &[&setup.topic("actions")])
        .await
        .expect("subscribing to actions");
    let mut dlq = bus
        .subscribe(&testing::unique_name("reader"), &[&setup.topic("dlq")])
        .await
        .expect("subscribing to the DLQ");

    bus.publish(
        &setup.topic("events"),
        vec![Record::new(
            format!("{}/ann", setup.tenant),
            b"not avro".to_vec(),
        )],
    )
    .await
    .expect("publishing garbage");
    let published = Instant::now();
    setup.publish(&bus, &setup.event("ann")).await;

    let mut seen = Vec::new();
    read_until(&mut actions, &mut seen, Duration::from_secs(90), |s| {
        count(&texts(s), "ann", "still there?") >= 1
    })
    .await;
    let waited = published.elapsed();
    // Anything more (a second firing) would arrive within a few seconds.
    read_until(&mut actions, &mut seen, Duration::from_secs(5), |_| false).await;
    let got = texts(&seen);
    assert_eq!(count(&got, "ann", "hello"), 1, "{got:?}\n{}", engine.log());
    assert_eq!(count(&got, "ann", "still there?"), 1, "{got:?}");
    assert!(
        waited >= Duration::from_secs(3),
        "the wait fired after {waited:?}"
    );

    let mut letters = Vec::new();
    read_until(&mut dlq, &mut letters, Duration::from_secs(30), |s| {
        !s.is_empty()
    })
    .await;
    assert_eq!(letters.len(), 1, "{}", engine.log());
    let headers: HashMap<&str, String> = letters[0]
        .headers
        .iter()
        .map(|(k, v)| (k.as_str(), String::from_utf8_lossy(v).into_owned()))
        .collect();
    assert!(
        headers["sluice.error"].starts_with("undecodable"),
        "{headers:?}"
    );
    assert!(
        headers["sluice.source"].starts_with(&format!("{}/", setup.topic("events"))),
        "{headers:?}"
    );
    assert_eq!(letters[0].payload, b"not avro");

    // The contact's state is in CQL.
    let cql = Cql::connect(&CqlConfig::from_url(&setup.store).expect("a CQL URL"))
        .await
        .expect("connecting to CQL");
    let states = CqlStore::new(cql).await.expect("a state store");
    let state = states
        .load(&ContactKey::new(&setup.tenant, "ann"))
        .await
        .expect("reading the state");
    assert!(state.is_some_and(|s| s.version >= 2));

    // What the dashboards and alerts read.
    let (status, ready) = get(metrics_addr, "/readyz");
    assert_eq!(status, 200, "{ready}");
    let (_, metrics) = get(metrics_addr, "/metrics");
    for expected in [
        "sluice_engine_events_total{type=\"contact.created\"} 1",
        "sluice_engine_actions_total{type=\"message.send\"} 2",
        "sluice_engine_dead_letters_total{reason=\"undecodable\"} 1",
        "sluice_engine_timers_fired_total 1",
        "sluice_engine_processing_seconds_count",
        "sluice_engine_timer_lateness_seconds_count 1",
        "sluice_engine_store_seconds_count{operation=\"commit\"}",
        "sluice_engine_timers_pending{partition=",
    ] {
        assert!(metrics.contains(expected), "{expected} missing:\n{metrics}");
    }
    engine.terminate();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn engine_restart_fires_a_pending_timer_once() {
    let Some(setup) = Setup::new("restart") else {
        return;
    };
    setup.submit(NUDGE);
    let bus = setup.bus();
    setup.create_topics(&bus).await;
    let first = setup.start("first");
    let mut actions = bus
        .subscribe(&testing::unique_name("reader"), &[&setup.topic("actions")])
        .await
        .expect("subscribing to actions");
    setup.publish(&bus, &setup.event("bob")).await;
    let mut seen = Vec::new();
    read_until(&mut actions, &mut seen, Duration::from_secs(60), |s| {
        count(&texts(s), "bob", "hello") >= 1
    })
    .await;
    assert_eq!(count(&texts(&seen), "bob", "hello"), 1, "{}", first.log());
    // Stop with the 3 s wait pending; nothing fires while no engine runs.
    first.terminate();
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(count(&texts(&seen), "bob", "still there?"), 0);

    let second = setup.start("second");
    read_until(&mut actions, &mut seen, Duration::from_secs(90), |s| {
        count(&texts(s), "bob", "still there?") >= 1
    })
    .await;
    read_until(&mut actions, &mut seen, Duration::from_secs(5), |_| false).await;
    let got = texts(&seen);
    assert_eq!(
        count(&got, "bob", "still there?"),
        1,
        "{got:?}\n{}",
        second.log()
    );
    assert_eq!(count(&got, "bob", "hello"), 1, "not replayed: {got:?}");
    second.terminate();
}

/// Distinct action ids per (contact, text): what the action workers execute.
fn distinct(actions: &[(String, String, String)], text: &str) -> HashMap<String, usize> {
    let mut ids: HashMap<String, std::collections::BTreeSet<String>> = HashMap::new();
    for (contact, t, id) in actions {
        if t == text {
            ids.entry(contact.clone()).or_default().insert(id.clone());
        }
    }
    ids.into_iter().map(|(c, set)| (c, set.len())).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_engines_share_the_group_and_survive_a_sigkill() {
    let Some(setup) = Setup::new("failover") else {
        return;
    };
    setup.submit(NUDGE);
    let bus = setup.bus();
    setup.create_topics(&bus).await;
    let mut first = setup.start("first");
    let second = setup.start("second");
    let mut actions = bus
        .subscribe(&testing::unique_name("reader"), &[&setup.topic("actions")])
        .await
        .expect("subscribing to actions");
    let contacts: Vec<String> = (0..20).map(|i| format!("c-{i}")).collect();
    for contact in &contacts {
        setup.publish(&bus, &setup.event(contact)).await;
    }
    let mut seen = Vec::new();
    read_until(&mut actions, &mut seen, Duration::from_secs(60), |s| {
        distinct(&texts(s), "hello").len() == contacts.len()
    })
    .await;
    // One replica dies hard with waits pending; the other takes its partitions
    // (after the group's session timeout) and fires their timers.
    first.kill();
    read_until(&mut actions, &mut seen, Duration::from_secs(120), |s| {
        distinct(&texts(s), "still there?").len() == contacts.len()
    })
    .await;
    read_until(&mut actions, &mut seen, Duration::from_secs(5), |_| false).await;
    let got = texts(&seen);
    for text in ["hello", "still there?"] {
        let ids = distinct(&got, text);
        for contact in &contacts {
            assert_eq!(
                ids.get(contact),
                Some(&1),
                "{contact} {text:?}: {got:?}\n{}\n{}",
                first.log(),
                second.log()
            );
        }
    }
    second.terminate();
}
