//! `sluice flow submit` as operators run it, against the real Kafka and CQL servers:
//! the version lands in the `flows` table and on the flows topic, a catalog loads it, a
//! new version reaches a running catalog live, and invalid or stale flows are refused.

use std::{
    path::{Path, PathBuf},
    process::{Command, Output},
    sync::Arc,
    time::Duration,
};

use serde_json::Value;
use sluice_engine::catalog::{
    CatalogConfig, CqlFlowStore, FlowCatalog, FlowStore, flows_topic, headers,
};
use sluice_infra::{
    bus::{Delivered, EventBus, KafkaBus, KafkaConfig},
    cql::{Cql, CqlConfig},
    testing,
};

const WAIT: Duration = Duration::from_secs(60);

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(path)
}

struct Servers {
    bus_url: String,
    store_url: String,
    topic: String,
}

impl Servers {
    /// Runs `sluice flow submit FILE` with the servers given by environment variables
    /// (the flags' `env` names) and the tenant as a flag.
    fn submit(&self, file: &Path, tenant: &str) -> Output {
        Command::new(env!("CARGO_BIN_EXE_sluice"))
            .args(["flow", "submit"])
            .arg(file)
            .args(["--tenant", tenant])
            .env("SLUICE_BUS", &self.bus_url)
            .env("SLUICE_STORE", &self.store_url)
            .env("SLUICE_FLOWS_TOPIC", &self.topic)
            .env("RUST_LOG", "warn")
            .output()
            .expect("run sluice")
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn welcome_variant(dir: &Path, version: u32, greeting: &str) -> PathBuf {
    let mut source: Value = serde_json::from_str(
        &std::fs::read_to_string(repo("examples/flows/welcome.json")).unwrap(),
    )
    .unwrap();
    source["version"] = version.into();
    source["nodes"][0]["text"] = greeting.into();
    let path = dir.join(format!("welcome-v{version}-{}.json", greeting.len()));
    std::fs::write(&path, serde_json::to_string_pretty(&source).unwrap()).unwrap();
    path
}

async fn topic_records(bus: &Arc<dyn EventBus>, topic: &str, expected: usize) -> Vec<Delivered> {
    let mut subscription = bus
        .subscribe(&testing::unique_name("reader"), &[topic])
        .await
        .unwrap();
    let mut seen = Vec::new();
    let deadline = tokio::time::Instant::now() + WAIT;
    while seen.len() < expected && tokio::time::Instant::now() < deadline {
        seen.extend(
            subscription
                .poll(10, Duration::from_millis(500))
                .await
                .unwrap(),
        );
    }
    // Anything beyond what is expected would show up within a short extra poll.
    seen.extend(subscription.poll(10, Duration::from_secs(1)).await.unwrap());
    subscription.close().await.unwrap();
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn submit_records_publishes_and_reaches_running_catalogs() {
    let (Some(kafka), Some(cql)) = (testing::kafka(), testing::cql()) else {
        return;
    };
    let keyspace = testing::unique_name("submit");
    let servers = Servers {
        bus_url: format!("kafka://{kafka}"),
        store_url: format!("cql://{cql}/{keyspace}?replication_factor=1"),
        topic: testing::unique_name("sluice_test_flows"),
    };
    let dir = tempfile::tempdir().unwrap();
    let welcome = repo("examples/flows/welcome.json");

    // 1. Submit the example: one summary line, exit 0.
    let out = servers.submit(&welcome, "acme");
    assert!(
        out.status.success(),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    let stdout = text(&out.stdout);
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
    assert!(stdout.contains("submitted acme/welcome v1"), "{stdout}");
    assert!(stdout.contains(&servers.topic), "{stdout}");

    // It is in the table…
    let cql = Cql::connect(&CqlConfig::from_url(&servers.store_url).unwrap())
        .await
        .unwrap();
    let store: Arc<dyn FlowStore> = Arc::new(CqlFlowStore::new(cql).await.unwrap());
    let recorded = store
        .get("acme", "welcome", 1)
        .await
        .unwrap()
        .expect("v1 recorded");
    // …and on the topic, with the same content.
    let bus: Arc<dyn EventBus> =
        Arc::new(KafkaBus::new(KafkaConfig::from_url(&servers.bus_url).unwrap()).unwrap());
    let records = topic_records(&bus, &servers.topic, 1).await;
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].key, "acme/welcome");
    assert_eq!(
        records[0].header(headers::CONTENT_HASH),
        Some(recorded.content_hash.as_bytes())
    );

    // 2. A catalog started afterwards loads it.
    let catalog = FlowCatalog::start(
        bus.clone(),
        Some(store.clone()),
        CatalogConfig::new(flows_topic(&servers.topic, 1)),
    )
    .await
    .unwrap();
    tokio::time::timeout(WAIT, catalog.loaded()).await.unwrap();
    let acme = catalog.flows("acme").expect("acme's flows");
    assert_eq!(acme.newest("welcome").unwrap().version, 1);

    // 3. Version 2 reaches the running catalog live.
    let v2 = welcome_variant(dir.path(), 2, "Hello again!");
    let out = servers.submit(&v2, "acme");
    assert!(
        out.status.success(),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    assert!(text(&out.stdout).contains("submitted acme/welcome v2"));
    assert!(
        catalog
            .wait_until(WAIT, |flows| flows
                .get("acme")
                .is_some_and(|set| set.version("welcome", 2).is_some()))
            .await,
        "v2 did not reach the running catalog"
    );
    let acme = catalog.flows("acme").unwrap();
    assert_eq!(acme.newest("welcome").unwrap().version, 2);
    assert!(
        acme.version("welcome", 1).is_some(),
        "runs stay pinned to v1"
    );
    catalog.stop().await;

    // 4. An invalid flow is refused with every diagnostic (as `flow validate` prints
    //    them) and exit 1.
    let broken = repo("engine/tests/broken/structure.json");
    let out = servers.submit(&broken, "acme");
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let validate = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(["flow", "validate"])
        .arg(&broken)
        .output()
        .unwrap();
    assert_eq!(text(&out.stdout), text(&validate.stdout));
    assert!(
        text(&out.stdout).lines().count() >= 5,
        "{}",
        text(&out.stdout)
    );

    // 5. A lower version is refused, naming the newest one; exit 1.
    let stale = welcome_variant(dir.path(), 1, "Stale greeting, longer");
    let out = servers.submit(&stale, "acme");
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("refused"), "{stderr}");
    assert!(stderr.contains("acme/welcome v1"), "{stderr}");
    assert!(stderr.contains("newest recorded version 2"), "{stderr}");

    // 6. Resubmitting the identical v2 is a no-op (exit 0).
    let out = servers.submit(&v2, "acme");
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("unchanged acme/welcome v2"));

    // Nothing refused was published: v1, v2, and v2 published again by the no-op.
    let versions: Vec<String> = topic_records(&bus, &servers.topic, 3)
        .await
        .iter()
        .map(|r| text(r.header(headers::VERSION).unwrap_or_default()))
        .collect();
    assert_eq!(versions, ["1", "2", "2"]);
    assert_eq!(store.all().await.unwrap().len(), 2);
}
