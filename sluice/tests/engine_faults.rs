//! Issue #5's failover and fault tests: `sluice engine` and `sluice actions` as
//! operators run them, on a private Kafka and Cassandra (`deploy/local/servers.sh`
//! with `SLUICE_SERVERS_RUN`) that the test stops and restarts without touching the
//! shared servers.
//!
//! Two engine processes share the consumer group; one `sluice actions` worker sends
//! every message to a fake provider ([`support::provider`]) that records each request
//! by its `Idempotency-Key`, the action id. Every phase produces its own contacts'
//! events, 10 per contact, in rounds about a second apart, so the fault lands while
//! events are flowing and while the flows' waits and windows are pending:
//!
//! | round | even contact | odd contact |
//! |---|---|---|
//! | 0 | `contact.created`: `hello`, wait 5 s, `later` | the same |
//! | 1 | `order.paid`: `thanks` | `cart.updated`, not followed by `order.paid` within 8 s: `remind` |
//! | 2‥9 | `ping`: `pong` | the same |
//!
//! 1. **Failover**: one engine is SIGKILLed mid-stream; the other takes over its
//!    partitions (after the group's 6 s session timeout) and their timers.
//! 2. **CQL outage**: Cassandra is stopped for 30 s mid-stream, then started again.
//! 3. **Broker restart**: Kafka is stopped and started again mid-stream.
//! 4. **Restart with timers pending**: a second tenant's flows wait 30 s; with those
//!    timers pending every process and both servers are stopped, started again once
//!    the timers are overdue, and the timers fire.
//!
//! After each phase: every expected message was executed by the provider under
//! exactly one action id per (contact, message) — eight distinct ids for the eight
//! pongs — and no action id reached the provider twice (no re-execution); every
//! `later` and `remind` is a timer that fired once. At the end every executed action
//! id is on `sluice.actions`, and every action on it was executed.
//!
//! Duplicate records on `sluice.actions` are allowed and counted, not failed, where
//! an input is replayed: the killed engine's uncommitted offsets, a batch whose
//! store commit failed or could not finish before its partition moved (the CQL
//! outage, the broker restart). They re-emit the same action ids, and the action
//! workers execute each id once (their `action_dedupe` claims). The test shows
//! exactly that: duplicates on the topic, printed per phase and node, and one
//! execution per id at the provider. When nothing fails — the restart phase, where
//! both engines start together with overdue timers and the group rebalances while
//! the first one fires them — a partition moves only once its batches are durable,
//! so no timer action is published twice. `sluice_engine_timers_fired_total` must
//! count every timer the restarted engines fired.
//!
//! Size: `SLUICE_FAULTS_CONTACTS` contacts per phase (default 1,000; 10,000 gives
//! the issue's 100K events per phase).

mod support;

use std::{
    collections::{BTreeMap, HashMap, HashSet},
    net::SocketAddr,
    process::Command,
    sync::Arc,
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use sluice_infra::bus::{self, EventBus, Record, TopicSpec, topics};
use sluice_schemas::{Action, Event};
use support::{
    Process, free_port, http_get, metric,
    provider::Provider,
    servers::{PrivateServers, Server},
};

/// Events per contact, one per round.
const ROUNDS: usize = 10;
/// Partitions of the events and actions topics.
const PARTITIONS: i32 = 6;
/// How long a phase may take to drain once its events are produced: 240 s, and
/// 40 ms per contact beyond 6,000 (the processes are debug builds; one action
/// worker executes every message).
fn drain_limit(contacts: usize) -> Duration {
    Duration::from_secs(240)
        .max(Duration::from_millis(40) * u32::try_from(contacts).unwrap_or(u32::MAX))
}

/// The flows of a tenant whose welcome waits `wait` and whose cart window is `within`.
fn flows(wait: &str, within: &str) -> Vec<(&'static str, String)> {
    vec![
        (
            "welcome",
            format!(
                r#"{{"id":"welcome","name":"Welcome","version":1,"kind":"event",
 "triggers":[{{"event":"contact.created","reentry":"once"}}],
 "nodes":[
  {{"id":"hello","type":"send_message","text":"hello","exits":{{"next":"pause"}}}},
  {{"id":"pause","type":"wait","duration":"{wait}","exits":{{"next":"later"}}}},
  {{"id":"later","type":"send_message","text":"later","exits":{{"next":"done"}}}},
  {{"id":"done","type":"end","outcome":"welcomed"}}]}}"#
            ),
        ),
        (
            "cart",
            format!(
                r#"{{"id":"cart","name":"Cart","version":1,"kind":"event",
 "triggers":[{{"pattern":{{"type":"not_followed_by",
   "first":{{"event":"custom","name":"cart.updated"}},
   "then":{{"event":"custom","name":"order.paid"}},"within":"{within}"}},
   "reentry":"always"}}],
 "nodes":[{{"id":"remind","type":"send_message","text":"remind"}}]}}"#
            ),
        ),
        (
            "paid",
            r#"{"id":"paid","name":"Paid","version":1,"kind":"event",
 "triggers":[{"event":"custom","name":"order.paid","reentry":"always"}],
 "nodes":[{"id":"thanks","type":"send_message","text":"thanks"}]}"#
                .to_owned(),
        ),
        (
            "pong",
            r#"{"id":"pong","name":"Pong","version":1,"kind":"event",
 "triggers":[{"event":"custom","name":"ping","reentry":"always"}],
 "nodes":[{"id":"pong","type":"send_message","text":"pong"}]}"#
                .to_owned(),
        ),
    ]
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// One phase's contacts and the events and messages they get.
struct Phase {
    name: &'static str,
    tenant: String,
    contacts: usize,
}

impl Phase {
    fn contact(&self, i: usize) -> String {
        format!("{}-c{i}", self.name)
    }

    fn event(&self, i: usize, round: usize) -> Event {
        let custom = |name: &str| serde_json::json!({"custom": {"name": name, "fields": {}}});
        let (kind, payload) = match round {
            0 => ("contact.created", serde_json::Value::Null),
            1 if i.is_multiple_of(2) => ("custom", custom("order.paid")),
            1 => ("custom", custom("cart.updated")),
            _ => ("custom", custom("ping")),
        };
        let mut event = serde_json::json!({
            "id": format!("{}:{i}:{round}", self.name),
            "tenant": self.tenant,
            "contact_id": self.contact(i),
            "type": kind,
            "occurred_at": now_ms(),
        });
        if !payload.is_null() {
            event["payload"] = payload;
        }
        serde_json::from_value(event).expect("a valid event")
    }

    /// Distinct action ids expected per (contact, text) once `rounds` rounds are in and
    /// every timer has fired.
    fn expected(&self, rounds: usize) -> HashMap<(String, String), usize> {
        let mut expected = HashMap::new();
        for i in 0..self.contacts {
            let mut put = |text: &str, n: usize| {
                if n > 0 {
                    expected.insert((self.contact(i), text.to_owned()), n);
                }
            };
            put("hello", 1);
            put("later", 1);
            if rounds > 1 {
                put(
                    if i.is_multiple_of(2) {
                        "thanks"
                    } else {
                        "remind"
                    },
                    1,
                );
            }
            put("pong", rounds.saturating_sub(2));
        }
        expected
    }

    /// Timers that fire once `rounds` rounds are in: every `later`, every `remind`.
    fn timers(&self, rounds: usize) -> usize {
        self.contacts + if rounds > 1 { self.contacts / 2 } else { 0 }
    }
}

/// Private servers, the fake provider, and the sluice processes.
/// (Fields drop in order: the processes first, the servers and their data last.)
struct Cluster {
    engines: Vec<(Process, SocketAddr)>,
    worker: Option<Process>,
    started: usize,
    /// What went wrong in a phase but lets the later phases run: reported at the end.
    problems: Vec<String>,
    /// Action ids already reported as executed more than once.
    reported: HashSet<String>,
    bus: Arc<dyn EventBus>,
    provider: Provider,
    servers: PrivateServers,
    dir: tempfile::TempDir,
}

impl Cluster {
    async fn start() -> Option<Cluster> {
        let servers = PrivateServers::start()?;
        let bus = bus::connect(&format!("kafka://{}", servers.kafka()))
            .await
            .expect("a Kafka client");
        bus.ensure_topics(&TopicSpec::sluice_topics(PARTITIONS, 1))
            .await
            .expect("creating the topics");
        Some(Cluster {
            servers,
            provider: Provider::start().await,
            dir: tempfile::tempdir().expect("a temporary directory"),
            bus,
            engines: Vec::new(),
            worker: None,
            started: 0,
            problems: Vec::new(),
            reported: HashSet::new(),
        })
    }

    fn command(&self) -> Command {
        let mut command = support::sluice();
        command
            .env(
                "SLUICE_BUS",
                format!(
                    "kafka://{}?session.timeout.ms=6000&heartbeat.interval.ms=1000",
                    self.servers.kafka()
                ),
            )
            .env(
                "SLUICE_STORE",
                format!("cql://{}/sluice?replication_factor=1", self.servers.cql()),
            )
            .env("SLUICE_LOG", "info");
        command
    }

    fn submit(&self, tenant: &str, wait: &str, within: &str) {
        for (name, source) in flows(wait, within) {
            let path = self.dir.path().join(format!("{tenant}-{name}.json"));
            std::fs::write(&path, source).expect("writing a flow");
            let output = self
                .command()
                .args(["flow", "submit"])
                .arg(&path)
                .args(["--tenant", tenant])
                .output()
                .expect("running sluice flow submit");
            assert!(
                output.status.success(),
                "submitting {name}: {}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
    }

    fn start_engine(&mut self) {
        self.started += 1;
        let metrics = free_port();
        let mut command = self.command();
        command.args([
            "engine",
            "--partitions-hint",
            &PARTITIONS.to_string(),
            "--metrics-addr",
            &metrics.to_string(),
        ]);
        let name = format!("engine-{}", self.started);
        self.engines
            .push((Process::spawn(&name, command, self.dir.path()), metrics));
    }

    fn start_worker(&mut self) {
        self.started += 1;
        let mut command = self.command();
        command.args([
            "actions",
            "--webhook-url",
            self.provider.url(),
            "--metrics-addr",
            "127.0.0.1:0",
        ]);
        let name = format!("actions-{}", self.started);
        self.worker = Some(Process::spawn(&name, command, self.dir.path()));
    }

    /// Two engines and a worker.
    fn start_processes(&mut self) {
        self.start_engine();
        self.start_engine();
        self.start_worker();
    }

    /// SIGTERM to every process, each exiting cleanly.
    fn stop_processes(&mut self) {
        for (engine, _) in self.engines.drain(..) {
            engine.terminate();
        }
        if let Some(worker) = self.worker.take() {
            worker.terminate();
        }
    }

    fn assert_running(&mut self) {
        for (engine, _) in &mut self.engines {
            engine.assert_running();
        }
        if let Some(worker) = &mut self.worker {
            worker.assert_running();
        }
    }

    fn logs(&self) -> String {
        self.engines
            .iter()
            .map(|(p, _)| p)
            .chain(&self.worker)
            .map(|p| p.log_tail(30))
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Publishes one round of a phase's events, retrying while the broker comes back.
    async fn publish_round(&self, phase: &Phase, round: usize) {
        let records: Vec<Record> = (0..phase.contacts)
            .map(|i| {
                let event = phase.event(i, round);
                Record::new(
                    format!("{}/{}", event.tenant, event.contact_id),
                    event.encode().expect("encoding an event"),
                )
            })
            .collect();
        let deadline = Instant::now() + Duration::from_secs(60);
        while let Err(error) = self.bus.publish(topics::EVENTS, records.clone()).await {
            assert!(
                Instant::now() < deadline,
                "publishing round {round} of {}: {error}",
                phase.name
            );
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }

    /// Publishes `rounds`, about a second apart.
    async fn publish_rounds(&self, phase: &Phase, rounds: std::ops::Range<usize>) {
        for round in rounds {
            let t0 = Instant::now();
            self.publish_round(phase, round).await;
            tokio::time::sleep(Duration::from_secs(1).saturating_sub(t0.elapsed())).await;
        }
    }

    /// What the provider executed for a phase's contacts, per (contact, text).
    fn executed(&self, phase: &Phase) -> HashMap<(String, String), usize> {
        let prefix = format!("{}-", phase.name);
        self.provider
            .ids_per_message()
            .into_iter()
            .filter(|((contact, _), _)| contact.starts_with(&prefix))
            .collect()
    }

    /// Waits until the provider executed everything `phase` expects after `rounds`
    /// rounds (panicking when it does not), then checks that it executed nothing more
    /// and nothing twice (noting a problem when it did).
    async fn await_phase(&mut self, phase: &Phase, rounds: usize) {
        let t0 = Instant::now();
        let drain = drain_limit(phase.contacts);
        let expected = phase.expected(rounds);
        let missing = |executed: &HashMap<(String, String), usize>| {
            let mut missing: Vec<String> = expected
                .iter()
                .filter(|(key, n)| executed.get(*key).copied().unwrap_or(0) < **n)
                .map(|((contact, text), n)| {
                    let got = executed.get(&(contact.clone(), text.clone()));
                    format!("{contact}/{text}: {} of {n}", got.copied().unwrap_or(0))
                })
                .collect();
            missing.sort();
            missing
        };
        loop {
            let left = missing(&self.executed(phase));
            if left.is_empty() {
                break;
            }
            self.assert_running();
            assert!(
                t0.elapsed() < drain,
                "phase {}: {} message(s) not executed after {drain:?}, e.g. {:?}\n{}",
                phase.name,
                left.len(),
                &left[..left.len().min(10)],
                self.logs()
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        // A second execution, or a timer firing again, would show up within seconds.
        tokio::time::sleep(Duration::from_secs(3)).await;
        let executed = self.executed(phase);
        let mut extra: Vec<String> = executed
            .iter()
            .filter(|(key, n)| expected.get(*key).copied().unwrap_or(0) != **n)
            .map(|((contact, text), n)| format!("{contact}/{text}: {n} ids"))
            .collect();
        extra.sort();
        if !extra.is_empty() {
            self.problems.push(format!(
                "phase {}: {} message(s) executed under more action ids than expected (a \
                 timer fired twice, or an input produced new ids on replay), e.g. {:?}",
                phase.name,
                extra.len(),
                &extra[..extra.len().min(20)]
            ));
        }
        let repeated: BTreeMap<String, usize> = self
            .provider
            .repeated()
            .into_iter()
            .filter(|(id, _)| self.reported.insert(id.clone()))
            .collect();
        if !repeated.is_empty() {
            self.problems.push(format!(
                "phase {}: {} action id(s) executed more than once at the provider: {:?}",
                phase.name,
                repeated.len(),
                repeated.iter().take(20).collect::<BTreeMap<_, _>>(),
            ));
        }
        #[allow(clippy::print_stderr)]
        {
            eprintln!(
                "phase {}: {} contacts, {} messages expected, all executed, drained in {:.1} s; \
                 {} executed under extra ids, {} re-executed",
                phase.name,
                phase.contacts,
                expected.values().sum::<usize>(),
                t0.elapsed().as_secs_f64(),
                extra.len(),
                repeated.len()
            );
        }
    }

    /// Sum of an engine counter over the running engines.
    fn engines_metric(&self, name: &str) -> f64 {
        self.engines
            .iter()
            .map(|(_, addr)| metric(&http_get(*addr, "/metrics").1, name))
            .sum()
    }

    /// Reads `sluice.actions` from the start: every action id the provider executed is
    /// on it, and every action on it was executed. Returns the duplicate records per
    /// (phase, node): replays that the workers' dedupe dropped.
    async fn check_actions_topic(&self) -> BTreeMap<(String, String), usize> {
        let executed = self.provider.executed();
        let ends = self
            .bus
            .end_offsets(topics::ACTIONS)
            .await
            .expect("the actions topic's end offsets")
            .expect("Kafka knows its end offsets");
        let mut reader = self
            .bus
            .subscribe("faults-check", &[topics::ACTIONS])
            .await
            .expect("subscribing to the actions topic");
        let mut next = vec![0_i64; ends.len()];
        let mut duplicates: BTreeMap<(String, String), usize> = BTreeMap::new();
        let mut ids: HashSet<String> = HashSet::new();
        let deadline = Instant::now() + Duration::from_secs(120);
        while next.iter().zip(&ends).any(|(n, end)| n < end) {
            assert!(
                Instant::now() < deadline,
                "the actions topic was not read to its end ({next:?} of {ends:?})"
            );
            for record in reader
                .poll(10_000, Duration::from_millis(500))
                .await
                .expect("reading the actions topic")
            {
                let partition = usize::try_from(record.position.partition).expect("a partition");
                next[partition] = next[partition].max(record.position.offset + 1);
                let action = Action::decode(&record.payload).expect("an Avro action");
                if !ids.insert(action.id) {
                    let phase = action.contact_id.split('-').next().unwrap_or_default();
                    *duplicates
                        .entry((phase.to_owned(), action.node_id))
                        .or_default() += 1;
                }
            }
        }
        let unexecuted: Vec<&String> = ids
            .iter()
            .filter(|id| !executed.contains_key(*id))
            .collect();
        assert!(
            unexecuted.is_empty(),
            "{} action(s) on the topic never reached the provider, e.g. {:?}",
            unexecuted.len(),
            &unexecuted[..unexecuted.len().min(10)]
        );
        let off_topic: Vec<&String> = executed.keys().filter(|id| !ids.contains(*id)).collect();
        assert!(
            off_topic.is_empty(),
            "{} executed action id(s) are not on the topic, e.g. {:?}",
            off_topic.len(),
            &off_topic[..off_topic.len().min(10)]
        );
        #[allow(clippy::print_stderr)]
        {
            eprintln!(
                "actions topic: {} distinct action ids, each executed once; duplicate records \
                 (replays the workers' dedupe dropped) per (phase, node): {duplicates:?}",
                ids.len()
            );
        }
        duplicates
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if std::thread::panicking() {
            // Keep every process's and server's whole log for the post-mortem.
            let kept = std::env::temp_dir().join(format!(
                "sluice-faults-logs-{}-{}",
                std::process::id(),
                now_ms()
            ));
            let copied = std::fs::create_dir_all(&kept).is_ok()
                && std::fs::read_dir(self.dir.path()).is_ok_and(|entries| {
                    entries.flatten().all(|entry| {
                        std::fs::copy(entry.path(), kept.join(entry.file_name())).is_ok()
                    })
                })
                && self.servers.keep_logs(&kept);
            #[allow(clippy::print_stderr)]
            {
                eprintln!("{}", self.logs());
                if copied {
                    eprintln!("process and server logs kept in {}", kept.display());
                }
            }
        }
    }
}

fn contacts() -> usize {
    std::env::var("SLUICE_FAULTS_CONTACTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_lost_or_executed_twice_through_sigkill_cql_outage_and_broker_restart() {
    let Some(mut cluster) = Cluster::start().await else {
        return;
    };
    let contacts = contacts();
    let phase = |name, tenant: &str, contacts| Phase {
        name,
        tenant: tenant.to_owned(),
        contacts,
    };
    cluster.submit("fast", "5s", "8s");
    cluster.submit("slow", "30s", "30s");
    cluster.start_processes();

    // 1. SIGKILL one engine mid-stream.
    let failover = phase("failover", "fast", contacts);
    cluster.publish_rounds(&failover, 0..4).await;
    cluster.engines[0].0.kill();
    let (killed, _) = cluster.engines.remove(0);
    cluster.publish_rounds(&failover, 4..ROUNDS).await;
    cluster.await_phase(&failover, ROUNDS).await;
    drop(killed);
    cluster.start_engine();

    // 2. The CQL server down for 30 s mid-stream.
    let outage = phase("cql", "fast", contacts);
    cluster.publish_rounds(&outage, 0..3).await;
    let down = Instant::now();
    cluster.servers.stop(Server::Cassandra);
    cluster.publish_rounds(&outage, 3..ROUNDS).await;
    tokio::time::sleep(Duration::from_secs(30).saturating_sub(down.elapsed())).await;
    cluster.servers.start_again(Server::Cassandra);
    cluster.await_phase(&outage, ROUNDS).await;

    // 3. The broker restarted mid-stream.
    let broker = phase("broker", "fast", contacts);
    cluster.publish_rounds(&broker, 0..4).await;
    cluster.servers.stop(Server::Kafka);
    tokio::time::sleep(Duration::from_secs(5)).await;
    cluster.servers.start_again(Server::Kafka);
    cluster.publish_rounds(&broker, 4..ROUNDS).await;
    cluster.await_phase(&broker, ROUNDS).await;

    // 4. Everything stopped with 30 s timers pending, started again once they are due.
    let restart = phase("restart", "slow", (contacts / 4).max(10));
    cluster.publish_rounds(&restart, 0..2).await;
    let published = Instant::now();
    let immediate = |executed: &HashMap<(String, String), usize>| {
        let count = |text: &str| executed.keys().filter(|(_, t)| t == text).count();
        (
            count("hello") + count("thanks"),
            count("later") + count("remind"),
        )
    };
    let want = restart.contacts + restart.contacts.div_ceil(2);
    support::wait_until(
        "the restart phase's first messages",
        Duration::from_secs(60),
        || immediate(&cluster.executed(&restart)).0 == want,
    )
    .await;
    cluster.stop_processes();
    cluster.servers.stop(Server::Kafka);
    cluster.servers.stop(Server::Cassandra);
    // On a loaded machine the first of them may have come due before the stop; most
    // are still pending.
    let (_, fired) = immediate(&cluster.executed(&restart));
    let pending = restart.timers(2) - fired;
    assert!(
        pending >= restart.timers(2) / 2,
        "only {pending} timers were pending at the stop"
    );
    #[allow(clippy::print_stderr)]
    {
        eprintln!("phase restart: everything stopped with {pending} timers pending");
    }
    tokio::time::sleep(Duration::from_secs(31).saturating_sub(published.elapsed())).await;
    cluster.servers.start_again(Server::Cassandra);
    cluster.servers.start_again(Server::Kafka);
    cluster.start_processes();
    cluster.await_phase(&restart, 2).await;

    let duplicates = cluster.check_actions_topic().await;

    // The restarted engines count every timer they fired, and fire each once: the
    // first engine's revocation waits for its fired timers to be durable before the
    // second one loads them.
    let fired = cluster.engines_metric("sluice_engine_timers_fired_total");
    let timers = restart.timers(2);
    let twice: usize = ["later", "remind"]
        .iter()
        .filter_map(|node| duplicates.get(&("restart".to_owned(), (*node).to_owned())))
        .sum();
    #[allow(clippy::print_stderr)]
    {
        eprintln!(
            "restart: sluice_engine_timers_fired_total {fired} for {timers} due timers; \
             {twice} timer action(s) published twice"
        );
    }
    if twice > 0 {
        cluster.problems.push(format!(
            "{twice} timer action(s) of the restart phase were published twice: both engines \
             fired them while the group settled"
        ));
    }
    if fired < timers as f64 {
        cluster.problems.push(format!(
            "sluice_engine_timers_fired_total of the restarted engines is {fired}, but they \
             fired {timers} timers"
        ));
    }
    cluster.stop_processes();
    assert!(
        cluster.problems.is_empty(),
        "nothing executed twice, every timer counted:\n{}",
        cluster.problems.join("\n")
    );
}
