//! The distributed pipeline as processes — `sluice ingest` → Kafka → `sluice
//! engine` (Cassandra, virtual clock) → Kafka → `sluice actions` → the fake
//! providers — and a scenario [`Driver`] on it.
//!
//! Each scenario gets a tenant of its own, with only its flows submitted, so one
//! set of processes runs them all. The driver:
//! - seeds the contact's initial state by writing it to the engine's keyspace
//!   before any event (version 1), and resets the engine's virtual clock to the
//!   scenario's start (`POST /debug/clock {"reset"}`);
//! - delivers an event by POSTing its JSON form, signed, to ingest's generic
//!   `/v1/{tenant}/events`, then waits until the engine has committed it (the
//!   contact's state version moved). Scenario events name their contact,
//!   session and ids outright, which a channel adapter would derive from the
//!   provider's payload instead (the adapters' own tests cover that mapping);
//!   the generic endpoint keeps them as written, so both runs see the same event;
//! - advances time with `POST /debug/clock {"advance_to"}`, which returns once
//!   every timer due by then fired, each at its due time;
//! - collects the actions of a step from the actions topic: as many as the
//!   engine's `sluice_engine_actions_total` grew by (actions are published before
//!   the state commit), keeping the scenario contact's;
//! - reads the state from the engine's keyspace.
//!
//! `sluice actions` publishes its results (`message.sent`, `function.result`, …)
//! to a topic of their own, not back to the engine: `sluice flow test` does not
//! feed them back either, and a scenario sends the replies it expects itself.
//! Emitted events never leave the engine, so `emitted` expectations are checked
//! embedded only.

use std::{
    collections::HashMap,
    net::SocketAddr,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::Arc,
    time::{Duration, Instant},
};

use async_trait::async_trait;
use sluice_engine::{
    Error, Result,
    catalog::{self, CqlFlowStore},
    eval::ContactState,
    flow::{self, SourceFormat},
    scenario::{Driver, Produced, Scenario},
};
use sluice_infra::{
    bus::{EventBus, KafkaBus, KafkaConfig, Subscription, TopicSpec},
    cql::{Cql, CqlConfig},
    store::{ContactKey, CqlStore, StateStore, StoredState},
    testing,
};
use sluice_schemas::{Action, Event};

use super::providers::Providers;

/// The secret every tenant signs its events with.
const SECRET: &str = "e2e-events-secret";
/// How long one event or one move of the clock may take through the pipeline.
const STEP_TIMEOUT: Duration = Duration::from_secs(60);

fn fail(message: impl Into<String>) -> Error {
    Error::Scenario {
        file: "scenarios_e2e".into(),
        message: message.into(),
    }
}

/// A child process, killed when dropped.
struct Process {
    name: &'static str,
    child: Child,
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("binding a free port");
    listener.local_addr().expect("its address")
}

/// One HTTP/1.0 request: status and body.
pub(crate) async fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> std::io::Result<(u16, String)> {
    use std::io::{Read, Write};
    let mut request = format!(
        "{method} {path} HTTP/1.0\r\nHost: {addr}\r\nContent-Length: {}\r\n",
        body.len()
    )
    .into_bytes();
    for (name, value) in headers {
        request.extend_from_slice(format!("{name}: {value}\r\n").as_bytes());
    }
    request.extend_from_slice(b"\r\n");
    request.extend_from_slice(body);
    let response = tokio::task::spawn_blocking(move || {
        let mut stream = std::net::TcpStream::connect(addr)?;
        stream.set_read_timeout(Some(Duration::from_secs(120)))?;
        stream.write_all(&request)?;
        let mut response = Vec::new();
        stream.read_to_end(&mut response)?;
        Ok::<_, std::io::Error>(response)
    })
    .await
    .map_err(std::io::Error::other)??;
    let response = String::from_utf8_lossy(&response);
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = response.split_once("\r\n\r\n").map(|(_, b)| b.to_owned());
    Ok((status, body.unwrap_or_default()))
}

async fn post_json(addr: SocketAddr, path: &str, body: &serde_json::Value) -> Result<String> {
    let body = serde_json::to_vec(body).map_err(|e| fail(e.to_string()))?;
    let headers = [("Content-Type", "application/json")];
    match http(addr, "POST", path, &headers, &body).await {
        Ok((200, answer)) => Ok(answer),
        Ok((status, answer)) => Err(fail(format!("POST {path}: {status} {answer}"))),
        Err(error) => Err(fail(format!("POST {path}: {error}"))),
    }
}

/// The processes, topics and keyspace of one test run.
pub(crate) struct Pipeline {
    dir: tempfile::TempDir,
    processes: Vec<Process>,
    tenants: HashMap<PathBuf, String>,
    ingest: SocketAddr,
    engine_metrics: SocketAddr,
    pub(crate) providers: Providers,
    /// A `Mutex` only to make the pipeline `Sync`.
    actions: tokio::sync::Mutex<Box<dyn Subscription>>,
    states: CqlStore,
    /// `sluice_engine_actions_total` when actions were last collected.
    actions_seen: u64,
    /// Every action of a scenario contact seen so far.
    pub(crate) collected: Vec<Action>,
    contact: Option<ContactKey>,
}

/// The flows a scenario names, compiled.
fn flows_of(scenario: &Scenario) -> Vec<flow::CompiledFlow> {
    let base = scenario.path.parent().unwrap_or(Path::new("."));
    scenario
        .file
        .flows
        .iter()
        .map(|relative| {
            let path = base.join(relative);
            let source = std::fs::read_to_string(&path).expect("reading a flow");
            flow::compile_str(&source, SourceFormat::from_path(&path))
                .flow
                .unwrap_or_else(|| panic!("{} does not compile", path.display()))
        })
        .collect()
}

impl Pipeline {
    /// Submits every scenario's flows for a tenant of its own and starts the
    /// processes; `None` when the servers are not running (and not required).
    pub(crate) async fn start(scenarios: &[Scenario]) -> Option<Pipeline> {
        let kafka = testing::kafka()?;
        let cql = testing::cql()?;
        let unique = testing::unique_name("e2e").to_lowercase().replace('-', "_");
        let keyspace: String = format!("ks_{unique}").chars().take(48).collect();
        let store = format!("cql://{cql}/{keyspace}?replication_factor=1");
        let topic = |role: &str| format!("{unique}.{role}");
        let bus: Arc<dyn EventBus> = Arc::new(
            KafkaBus::new(KafkaConfig::from_url(&format!("kafka://{kafka}")).expect("a Kafka URL"))
                .expect("a Kafka client"),
        );
        let spec = |role: &str, partitions: i32| TopicSpec {
            name: topic(role),
            partitions,
            replication: 1,
            compacted: false,
        };
        bus.ensure_topics(&[
            spec("events", 2),
            spec("actions", 2),
            spec("results", 2),
            spec("dlq", 1),
        ])
        .await
        .expect("creating the topics");

        // Each scenario's flows, for its own tenant.
        let session = Cql::connect(&CqlConfig::from_url(&store).expect("a CQL URL"))
            .await
            .expect("connecting to CQL");
        let flow_store = CqlFlowStore::new(session.clone())
            .await
            .expect("the flow store");
        let flows_topic = catalog::flows_topic(&topic("flows"), 1);
        let mut tenants = HashMap::new();
        for (index, scenario) in scenarios.iter().enumerate() {
            let tenant = format!("{}-{unique}-{index}", scenario.file.contact.tenant);
            for compiled in flows_of(scenario) {
                catalog::submit(
                    bus.as_ref(),
                    &flow_store,
                    &flows_topic,
                    &tenant,
                    &compiled,
                    scenario.start,
                )
                .await
                .expect("submitting a flow");
            }
            tenants.insert(scenario.path.clone(), tenant);
        }

        let dir = tempfile::tempdir().expect("a temporary directory");
        let config = dir.path().join("ingest.yaml");
        let mut yaml = String::from("tenants:\n");
        for tenant in tenants.values() {
            yaml.push_str(&format!("  {tenant}:\n    events: {{secret: {SECRET}}}\n"));
        }
        std::fs::write(&config, yaml).expect("writing the ingest config");

        let providers = Providers::start().await;
        let ingest = free_port();
        let engine_metrics = free_port();
        let start = scenarios.first().map_or(0, |s| s.start);
        let spawn = |name: &'static str, args: &[&str], env: &[(&str, String)]| {
            let log =
                std::fs::File::create(dir.path().join(format!("{name}.log"))).expect("a log file");
            let mut command = Command::new(env!("CARGO_BIN_EXE_sluice"));
            command
                .args(args)
                .env("SLUICE_BUS", format!("kafka://{kafka}"))
                .env("SLUICE_STORE", &store)
                .env("SLUICE_EVENTS_TOPIC", topic("events"))
                .env("SLUICE_ACTIONS_TOPIC", topic("actions"))
                .env("SLUICE_FLOWS_TOPIC", topic("flows"))
                .env("SLUICE_DLQ_TOPIC", topic("dlq"))
                .env("SLUICE_LOG", "info")
                .env("RUST_LOG", "info")
                .stdout(Stdio::null())
                .stderr(log);
            for (key, value) in env {
                command.env(key, value);
            }
            Process {
                name,
                child: command.spawn().expect("starting sluice"),
            }
        };
        let processes = vec![
            spawn(
                "ingest",
                &["ingest"],
                &[
                    ("SLUICE_INGEST_ADDR", ingest.to_string()),
                    ("SLUICE_INGEST_CONFIG", config.display().to_string()),
                    ("SLUICE_METRICS_ADDR", "127.0.0.1:0".into()),
                ],
            ),
            spawn(
                "engine",
                &["engine", "--create-topics", "--partitions-hint", "2"],
                &[
                    ("SLUICE_TEST_HOOKS", "1".into()),
                    ("SLUICE_VIRTUAL_CLOCK", start.to_string()),
                    ("SLUICE_ENGINE_GROUP", format!("{unique}-engine")),
                    ("SLUICE_METRICS_ADDR", engine_metrics.to_string()),
                ],
            ),
            spawn(
                "actions",
                &["actions"],
                &[
                    // Results go to a topic of their own (see the module docs).
                    ("SLUICE_EVENTS_TOPIC", topic("results")),
                    ("SLUICE_ACTIONS_GROUP", format!("{unique}-actions")),
                    ("SLUICE_METRICS_ADDR", "127.0.0.1:0".into()),
                    ("SLUICE_TELEGRAM_API_URL", providers.url("telegram")),
                    ("SLUICE_TELEGRAM_TOKEN", "123:fake".into()),
                    ("SLUICE_TELEGRAM_SUPPORT_CHAT", "-1001234567890".into()),
                    ("SLUICE_WHATSAPP_API_URL", providers.url("whatsapp")),
                    ("SLUICE_WHATSAPP_TOKEN", "fake".into()),
                    ("SLUICE_SMS_API_URL", providers.url("sms")),
                    ("SLUICE_SMS_ACCOUNT_SID", "ACfake".into()),
                    ("SLUICE_SMS_AUTH_TOKEN", "fake".into()),
                    ("SLUICE_WEBHOOK_URL", providers.url("webhook")),
                    ("SLUICE_WEBHOOK_SECRET", "fake".into()),
                    ("SLUICE_AI_API_URL", providers.url("ai")),
                    ("SLUICE_AI_API_KEY", "fake".into()),
                    ("SLUICE_HELPDESK_URL", providers.url("helpdesk")),
                    ("SLUICE_CRM_URL", providers.url("crm")),
                ],
            ),
        ];
        let actions = bus
            .subscribe(&format!("{unique}-reader"), &[&topic("actions")])
            .await
            .expect("subscribing to the actions");
        let mut pipeline = Pipeline {
            dir,
            processes,
            tenants,
            ingest,
            engine_metrics,
            providers,
            actions: tokio::sync::Mutex::new(actions),
            states: CqlStore::new(session).await.expect("the state store"),
            actions_seen: 0,
            collected: Vec::new(),
            contact: None,
        };
        pipeline.wait_ready().await;
        Some(pipeline)
    }

    async fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            let engine = http(self.engine_metrics, "GET", "/readyz", &[], b"").await;
            let ingest = http(self.ingest, "POST", "/v1/nobody/events", &[], b"{}").await;
            if matches!(engine, Ok((200, _))) && matches!(ingest, Ok((status, _)) if status != 0) {
                return;
            }
            let exited = self.processes.iter_mut().find_map(|process| {
                let status = process.child.try_wait().ok()??;
                Some(format!("{} exited with {status}", process.name))
            });
            if let Some(exited) = exited {
                panic!("{exited}\n{}", self.logs());
            }
            assert!(
                Instant::now() < deadline,
                "the pipeline did not get ready\n{}",
                self.logs()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// The tail of every process's log.
    pub(crate) fn logs(&self) -> String {
        let mut out = String::new();
        for process in &self.processes {
            let log =
                std::fs::read_to_string(self.dir.path().join(format!("{}.log", process.name)))
                    .unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(40).collect();
            out.push_str(&format!("--- {} (last lines)\n", process.name));
            for line in tail.into_iter().rev() {
                out.push_str(line);
                out.push('\n');
            }
        }
        out
    }

    fn contact(&self) -> Result<&ContactKey> {
        self.contact
            .as_ref()
            .ok_or_else(|| fail("the driver was not started"))
    }

    async fn version(&self) -> Result<i64> {
        let stored = self
            .states
            .load(self.contact()?)
            .await
            .map_err(Error::Store)?;
        Ok(stored.map_or(0, |s| s.version))
    }

    /// `sluice_engine_actions_total`, summed over action types.
    async fn actions_total(&self) -> Result<u64> {
        let (_, metrics) = http(self.engine_metrics, "GET", "/metrics", &[], b"")
            .await
            .map_err(|e| fail(format!("scraping the engine: {e}")))?;
        Ok(metrics
            .lines()
            .filter(|line| line.starts_with("sluice_engine_actions_total{"))
            .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
            .sum::<f64>() as u64)
    }

    /// The actions published since the last collection, the scenario contact's.
    async fn collect(&mut self) -> Result<Vec<Action>> {
        let total = self.actions_total().await?;
        let want = usize::try_from(total.saturating_sub(self.actions_seen)).unwrap_or(0);
        let deadline = Instant::now() + STEP_TIMEOUT;
        let mut records = Vec::new();
        while records.len() < want {
            if Instant::now() > deadline {
                return Err(fail(format!(
                    "{} of {want} actions arrived on the actions topic",
                    records.len()
                )));
            }
            let batch = self
                .actions
                .lock()
                .await
                .poll(want - records.len(), Duration::from_millis(200))
                .await
                .map_err(Error::Bus)?;
            records.extend(batch);
        }
        self.actions_seen = total;
        let contact = self.contact()?.clone();
        let mut mine = Vec::new();
        for record in records {
            let action = Action::decode(&record.payload).map_err(|e| fail(e.to_string()))?;
            if action.tenant == contact.tenant && action.contact_id == contact.contact_id {
                mine.push(action);
            }
        }
        self.collected.extend(mine.iter().cloned());
        Ok(mine)
    }
}

#[async_trait]
impl Driver for Pipeline {
    async fn begin(&mut self, scenario: &Scenario) -> Result<ContactKey> {
        let tenant = self
            .tenants
            .get(&scenario.path)
            .ok_or_else(|| fail(format!("no tenant for {}", scenario.path.display())))?;
        let contact = ContactKey::new(tenant.as_str(), scenario.file.contact.id.as_str());
        self.contact = Some(contact.clone());
        post_json(
            self.engine_metrics,
            "/debug/clock",
            &serde_json::json!({ "reset": scenario.start }),
        )
        .await?;
        // Whatever earlier scenarios left is not this one's.
        self.collect().await?;
        Ok(contact)
    }

    async fn seed(&mut self, state: &ContactState) -> Result<()> {
        let stored = StoredState {
            version: 1,
            data: state.encode().into(),
        };
        self.states
            .save(&[(self.contact()?.clone(), stored)])
            .await
            .map_err(Error::Store)
    }

    async fn advance(&mut self, to: i64) -> Result<Produced> {
        post_json(
            self.engine_metrics,
            "/debug/clock",
            &serde_json::json!({ "advance_to": to }),
        )
        .await?;
        Ok(Produced {
            actions: self.collect().await?,
            emitted: None,
        })
    }

    async fn deliver(&mut self, event: &Event) -> Result<Produced> {
        let before = self.version().await?;
        let body = serde_json::to_vec(event).map_err(|e| fail(e.to_string()))?;
        let signature = sluice_ingest::signature::sign_sha256_header(SECRET, &body);
        let path = format!("/v1/{}/events", event.tenant);
        let headers = [
            ("Content-Type", "application/json"),
            ("X-Sluice-Signature", signature.as_str()),
        ];
        let (status, answer) = http(self.ingest, "POST", &path, &headers, &body)
            .await
            .map_err(|e| fail(format!("POST {path}: {e}")))?;
        if status != 200 {
            return Err(fail(format!("POST {path}: {status} {answer}")));
        }
        let answer: serde_json::Value =
            serde_json::from_str(&answer).map_err(|e| fail(format!("{e}: {answer}")))?;
        if answer["published"].as_u64().unwrap_or(0) > 0 {
            // Committed once the contact's state moved on.
            let deadline = Instant::now() + STEP_TIMEOUT;
            while self.version().await? <= before {
                if Instant::now() > deadline {
                    return Err(fail(format!("event {} was not processed", event.id)));
                }
                tokio::time::sleep(Duration::from_millis(25)).await;
            }
        }
        Ok(Produced {
            actions: self.collect().await?,
            emitted: None,
        })
    }

    async fn state(&mut self) -> Result<ContactState> {
        match self
            .states
            .load(self.contact()?)
            .await
            .map_err(Error::Store)?
        {
            Some(stored) => ContactState::decode(&stored.data),
            None => Ok(ContactState::default()),
        }
    }
}
