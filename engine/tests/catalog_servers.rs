//! The flow catalog against the real servers: the CQL `flows` table (one behaviour
//! test run against the in-memory store and Cassandra) and submit → catalog over Kafka.

use std::{sync::Arc, time::Duration};

use serde_json::Value;
use sluice_engine::{
    Error,
    catalog::{
        CatalogConfig, CqlFlowStore, FlowCatalog, FlowStore, MemoryFlowStore, StoredFlow,
        SubmitOutcome, TenantFlows, flows_topic, headers, submit,
    },
    flow::{CompiledFlow, compile_value},
};
use sluice_infra::{
    bus::{EventBus, KafkaBus, KafkaConfig},
    cql::{Cql, CqlConfig},
    testing,
};

const WAIT: Duration = Duration::from_secs(60);

fn welcome(version: u32, greeting: &str) -> CompiledFlow {
    let mut source: Value =
        serde_json::from_str(include_str!("../../examples/flows/welcome.json")).unwrap();
    source["version"] = version.into();
    source["nodes"][0]["text"] = greeting.into();
    compile_value(source).into_result().unwrap()
}

async fn cql_store() -> Option<CqlFlowStore> {
    let node = testing::cql()?;
    let keyspace = testing::unique_name("flows");
    let config =
        CqlConfig::from_url(&format!("cql://{node}/{keyspace}?replication_factor=1")).unwrap();
    let cql = Cql::connect(&config).await.expect("connecting to CQL");
    Some(CqlFlowStore::new(cql).await.expect("preparing statements"))
}

fn kafka() -> Option<Arc<dyn EventBus>> {
    let bootstrap = testing::kafka()?;
    let config = KafkaConfig::from_url(&format!("kafka://{bootstrap}")).unwrap();
    Some(Arc::new(KafkaBus::new(config).unwrap()))
}

/// What every [`FlowStore`] must do.
async fn store_behaviour(store: &dyn FlowStore) {
    assert_eq!(store.newest("acme", "welcome").await.unwrap(), None);
    let v1 = StoredFlow::new("acme", &welcome(1, "one"), 1_700_000_000_000);
    let v2 = StoredFlow::new("acme", &welcome(2, "two"), 1_700_000_001_000);
    let other = StoredFlow::new("globex", &welcome(7, "seven"), 1_700_000_002_000);
    for flow in [&v2, &v1, &other] {
        store.insert_if_absent(flow).await.unwrap();
    }
    assert_eq!(
        store.get("acme", "welcome", 1).await.unwrap().as_ref(),
        Some(&v1)
    );
    assert_eq!(store.get("acme", "welcome", 3).await.unwrap(), None);
    assert_eq!(
        store.newest("acme", "welcome").await.unwrap().as_ref(),
        Some(&v2)
    );
    assert_eq!(
        store.newest("globex", "welcome").await.unwrap().as_ref(),
        Some(&other)
    );

    // A version is recorded once: a second insert keeps the first content.
    let conflicting = StoredFlow::new("acme", &welcome(1, "changed"), 1_800_000_000_000);
    store.insert_if_absent(&conflicting).await.unwrap();
    assert_eq!(
        store.get("acme", "welcome", 1).await.unwrap().as_ref(),
        Some(&v1)
    );

    let mut all = store.all().await.unwrap();
    all.sort_by(|a, b| (&a.tenant, a.version).cmp(&(&b.tenant, b.version)));
    assert_eq!(all, vec![v1.clone(), v2, other]);
    // What is stored compiles back to the same flow.
    let back = sluice_engine::flow::from_artifact(&v1.artifact().unwrap()).unwrap();
    assert_eq!(back.content_hash, v1.content_hash);
}

#[tokio::test]
async fn memory_flow_store_behaviour() {
    store_behaviour(&MemoryFlowStore::new()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cql_flow_store_behaviour() {
    let Some(store) = cql_store().await else {
        return;
    };
    store_behaviour(&store).await;
}

fn has(flows: &TenantFlows, tenant: &str, version: u32) -> bool {
    flows
        .get(tenant)
        .is_some_and(|set| set.version("welcome", version).is_some())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn submit_and_catalog_on_kafka_and_cql() {
    let (Some(bus), Some(store)) = (kafka(), cql_store().await) else {
        return;
    };
    let store: Arc<dyn FlowStore> = Arc::new(store);
    let topic = flows_topic(&testing::unique_name("sluice_test_flows"), 1);
    let now = 1_700_000_000_000;

    let first = submit(&*bus, &*store, &topic, "acme", &welcome(1, "one"), now)
        .await
        .unwrap();
    assert!(
        matches!(first.outcome, SubmitOutcome::Published(_)),
        "{first}"
    );
    submit(&*bus, &*store, &topic, "globex", &welcome(1, "hej"), now)
        .await
        .unwrap();
    let refused = submit(&*bus, &*store, &topic, "acme", &welcome(1, "other"), now)
        .await
        .unwrap_err();
    assert!(matches!(refused, Error::FlowRefused { .. }), "{refused}");

    // The record on the topic: key, headers, artifact.
    let mut subscription = bus
        .subscribe(&testing::unique_name("reader"), &[&topic.name])
        .await
        .unwrap();
    let mut seen = Vec::new();
    let deadline = tokio::time::Instant::now() + WAIT;
    while seen.len() < 2 && tokio::time::Instant::now() < deadline {
        seen.extend(
            subscription
                .poll(10, Duration::from_millis(500))
                .await
                .unwrap(),
        );
    }
    subscription.close().await.unwrap();
    assert_eq!(
        seen.len(),
        2,
        "two versions were published, the refused one was not"
    );
    assert_eq!(seen[0].key, "acme/welcome");
    assert_eq!(seen[0].header(headers::VERSION), Some(&b"1"[..]));
    assert_eq!(seen[1].header(headers::TENANT), Some(&b"globex"[..]));

    // A catalog started now loads both tenants, with the store as well as without.
    let config = CatalogConfig::new(topic.clone());
    let catalog = FlowCatalog::start(bus.clone(), Some(store.clone()), config.clone())
        .await
        .unwrap();
    tokio::time::timeout(WAIT, catalog.loaded()).await.unwrap();
    let snapshot = catalog.snapshot();
    assert!(has(&snapshot, "acme", 1) && has(&snapshot, "globex", 1));
    let topic_only = FlowCatalog::start(bus.clone(), None, config).await.unwrap();
    tokio::time::timeout(WAIT, topic_only.loaded())
        .await
        .unwrap();
    assert!(has(&topic_only.snapshot(), "acme", 1) && has(&topic_only.snapshot(), "globex", 1));

    // A new version reaches both running catalogs without a restart.
    submit(&*bus, &*store, &topic, "acme", &welcome(2, "two"), now)
        .await
        .unwrap();
    for catalog in [&catalog, &topic_only] {
        assert!(catalog.wait_until(WAIT, |f| has(f, "acme", 2)).await);
        let acme = catalog.flows("acme").unwrap();
        assert_eq!(acme.newest("welcome").unwrap().version, 2);
        assert!(acme.version("welcome", 1).is_some());
    }
    catalog.stop().await;
    topic_only.stop().await;
}
