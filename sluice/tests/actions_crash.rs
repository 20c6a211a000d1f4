//! Issue #7's crash test, with the real Kafka and Cassandra: a `sluice actions`
//! process is SIGKILLed in the middle of a batch and started again; every action
//! reaches the provider, and none is executed twice.
//!
//! The provider behaves like an idempotent HTTP API: it executes a request the
//! first time it sees its `Idempotency-Key` and answers a repeat without executing
//! it again. Requests that were in flight when the worker died are sent again by
//! the next worker (it cannot know whether they arrived); the dedupe store must
//! keep everything else — all that was recorded done before the kill, including
//! what Kafka redelivers because its offset was not committed yet — from reaching
//! the provider a second time.

use std::{
    collections::HashMap,
    process::{Child, Command, Stdio},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use axum::{Router, http::HeaderMap, routing::post};
use sluice_infra::{
    bus::{EventBus, KafkaBus, KafkaConfig, Record, TopicSpec},
    testing,
};
use sluice_schemas::{Action, ActionPayload, ActionType, Event, EventType, SendMessage};

const ACTIONS: usize = 400;
const CONCURRENCY: usize = 8;

#[derive(Default)]
struct Seen {
    /// Requests per idempotency key.
    requests: HashMap<String, usize>,
}

fn action(i: usize) -> Action {
    Action {
        id: format!("crash-{i}"),
        tenant: "acme".into(),
        contact_id: format!("c{}", i % 40),
        run_id: "r".into(),
        flow_id: "f".into(),
        flow_version: 1,
        node_id: "n".into(),
        action_type: ActionType::MessageSend,
        created_at: 1_767_225_600_000,
        not_before: None,
        chain_depth: 0,
        payload: ActionPayload::SendMessage(SendMessage {
            channel_type: "web".into(),
            channel_id: "widget".into(),
            to: format!("web:{i}"),
            session_id: None,
            text: Some(format!("message {i}")),
            media: None,
            buttons: vec![],
        }),
    }
}

struct Worker(Child);

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_worker(kafka: &str, store: &str, names: &HashMap<&str, String>, hook: &str) -> Worker {
    let child = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(["actions", "--bus"])
        .arg(format!(
            "kafka://{kafka}?session.timeout.ms=6000&heartbeat.interval.ms=1000"
        ))
        .args(["--store", store])
        .args(["--actions-topic", &names["actions"]])
        .args(["--events-topic", &names["events"]])
        .args(["--dlq-topic", &names["dlq"]])
        .args(["--group", &names["group"]])
        .args(["--webhook-url", hook])
        .args(["--lease-ms", "3000"])
        .args(["--concurrency", &CONCURRENCY.to_string()])
        .args(["--metrics-addr", "127.0.0.1:0"])
        .env("SLUICE_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("starting sluice actions");
    Worker(child)
}

async fn wait_until(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_batch_then_restart_executes_every_action_once() {
    let (Some(kafka), Some(cql)) = (testing::kafka(), testing::cql()) else {
        return;
    };
    let unique = testing::unique_name("crash").to_lowercase();
    let names: HashMap<&str, String> = [
        ("actions", format!("{unique}_actions")),
        ("events", format!("{unique}_events")),
        ("dlq", format!("{unique}_dlq")),
        ("group", format!("{unique}_group")),
    ]
    .into();
    let keyspace: String = format!("ks_{unique}").chars().take(48).collect();
    let store = format!("cql://{cql}/{keyspace}?replication_factor=1");

    // The provider: idempotent by key, a little slow so the kill lands mid-batch.
    let seen: Arc<Mutex<Seen>> = Arc::default();
    let recorder = Arc::clone(&seen);
    let app = Router::new().route(
        "/hook",
        post(move |headers: HeaderMap| {
            let recorder = Arc::clone(&recorder);
            async move {
                let key = headers
                    .get("idempotency-key")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_owned();
                tokio::time::sleep(Duration::from_millis(25)).await;
                *recorder
                    .lock()
                    .unwrap()
                    .requests
                    .entry(key.clone())
                    .or_default() += 1;
                format!("{{\"message_id\":\"p-{key}\"}}")
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hook = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let bus = KafkaBus::new(KafkaConfig::from_url(&format!("kafka://{kafka}")).unwrap()).unwrap();
    let spec = |name: &str, partitions| TopicSpec {
        name: name.to_owned(),
        partitions,
        replication: 1,
        compacted: false,
    };
    bus.ensure_topics(&[
        spec(&names["actions"], 4),
        spec(&names["events"], 4),
        spec(&names["dlq"], 1),
    ])
    .await
    .unwrap();
    let records = (0..ACTIONS)
        .map(|i| {
            let a = action(i);
            Record::new(a.key(), a.encode().unwrap())
        })
        .collect();
    bus.publish(&names["actions"], records).await.unwrap();

    let executed = || seen.lock().unwrap().requests.len();
    let first = start_worker(&kafka, &store, &names, &hook);
    wait_until(
        "the first worker to get going",
        Duration::from_secs(180),
        || executed() >= ACTIONS / 4,
    )
    .await;
    drop(first); // SIGKILL
    let at_kill = executed();
    assert!(
        at_kill < ACTIONS,
        "the kill must land mid-batch ({at_kill} of {ACTIONS} done)"
    );

    let _second = start_worker(&kafka, &store, &names, &hook);
    wait_until(
        "every action to reach the provider",
        Duration::from_secs(180),
        || executed() == ACTIONS,
    )
    .await;

    // Every action produced its message.sent, exactly once per id.
    let mut events = bus
        .subscribe(&testing::unique_name("check"), &[&names["events"]])
        .await
        .unwrap();
    let mut sent: HashMap<String, usize> = HashMap::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while sent.len() < ACTIONS && Instant::now() < deadline {
        for record in events.poll(1000, Duration::from_millis(200)).await.unwrap() {
            let event = Event::decode(&record.payload).unwrap();
            assert_eq!(event.event_type, EventType::MessageSent);
            *sent.entry(event.id).or_default() += 1;
        }
    }
    assert_eq!(sent.len(), ACTIONS, "a message.sent for every action");

    // Let any stray redelivery show up before counting.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let seen = seen.lock().unwrap();
    let resent: Vec<(&String, &usize)> = seen.requests.iter().filter(|(_, n)| **n > 1).collect();
    assert_eq!(seen.requests.len(), ACTIONS, "every action id executed");
    assert!(
        resent.len() <= CONCURRENCY,
        "only requests in flight at the kill may be sent again (their key makes the \
         provider answer without executing); re-sent: {resent:?}"
    );
    for i in 0..ACTIONS {
        assert!(seen.requests.contains_key(&format!("crash-{i}")));
    }
    #[allow(clippy::print_stderr)]
    {
        eprintln!(
            "crash test: killed after {at_kill} of {ACTIONS} executed; {} request(s) in flight at the kill were sent again and answered by idempotency key",
            resent.len()
        );
    }
}
