//! Submit and catalog on the in-memory bus and store.

use std::{sync::Arc, time::Duration};

use serde_json::Value;
use sluice_infra::bus::{EventBus, MemoryBus, Record, TopicSpec};

use super::*;
use crate::{
    Error,
    flow::{CompiledFlow, compile_value},
};

const TOPIC: &str = "test.flows";
const WAIT: Duration = Duration::from_secs(10);

fn topic() -> TopicSpec {
    flows_topic(TOPIC, 1)
}

fn welcome(version: u32, greeting: &str) -> CompiledFlow {
    let mut source: Value =
        serde_json::from_str(include_str!("../../../examples/flows/welcome.json")).unwrap();
    source["version"] = version.into();
    source["nodes"][0]["text"] = greeting.into();
    compile_value(source).into_result().unwrap()
}

fn setup() -> (Arc<MemoryBus>, Arc<MemoryFlowStore>) {
    (
        Arc::new(MemoryBus::new(4)),
        Arc::new(MemoryFlowStore::new()),
    )
}

async fn submit_to(
    bus: &MemoryBus,
    store: &MemoryFlowStore,
    tenant: &str,
    flow: &CompiledFlow,
) -> crate::Result<Submitted> {
    submit(bus, store, &topic(), tenant, flow, 1_700_000_000_000).await
}

async fn records(bus: &MemoryBus) -> Vec<sluice_infra::bus::Delivered> {
    let mut sub = bus.subscribe("reader", &[TOPIC]).await.unwrap();
    sub.poll(100, Duration::from_millis(10)).await.unwrap()
}

fn config() -> CatalogConfig {
    CatalogConfig {
        poll_timeout: Duration::from_millis(20),
        settle: Duration::from_millis(200),
        ..CatalogConfig::new(topic())
    }
}

async fn start(bus: &Arc<MemoryBus>, store: Option<&Arc<MemoryFlowStore>>) -> FlowCatalog {
    let bus: Arc<dyn EventBus> = bus.clone();
    let store = store.map(|s| s.clone() as Arc<dyn FlowStore>);
    let catalog = FlowCatalog::start(bus, store, config()).await.unwrap();
    tokio::time::timeout(WAIT, catalog.loaded()).await.unwrap();
    catalog
}

fn has(flows: &TenantFlows, tenant: &str, id: &str, version: u32) -> bool {
    flows
        .get(tenant)
        .is_some_and(|set| set.version(id, version).is_some())
}

#[tokio::test]
async fn submit_records_then_publishes_the_artifact_with_headers() {
    let (bus, store) = setup();
    let flow = welcome(1, "Hi!");
    let submitted = submit_to(&bus, &store, "acme", &flow).await.unwrap();
    assert!(matches!(submitted.outcome, SubmitOutcome::Published(_)));
    assert!(
        submitted
            .to_string()
            .starts_with("submitted acme/welcome v1"),
        "{submitted}"
    );

    let stored = store.get("acme", "welcome", 1).await.unwrap().unwrap();
    assert_eq!(stored.content_hash, flow.content_hash);
    assert_eq!(stored.submitted_at_ms, 1_700_000_000_000);

    let records = records(&bus).await;
    assert_eq!(records.len(), 1);
    let record = &records[0];
    assert_eq!(record.key, "acme/welcome");
    assert_eq!(record.header(headers::TENANT), Some(&b"acme"[..]));
    assert_eq!(record.header(headers::FLOW_ID), Some(&b"welcome"[..]));
    assert_eq!(record.header(headers::VERSION), Some(&b"1"[..]));
    assert_eq!(
        record.header(headers::CONTENT_HASH),
        Some(flow.content_hash.as_bytes())
    );
    let artifact: Value = serde_json::from_slice(&record.payload).unwrap();
    let back = crate::flow::from_artifact(&artifact).unwrap();
    assert_eq!(back.content_hash, flow.content_hash);
    assert_eq!(
        stored.artifact().unwrap()["source"],
        artifact["source"],
        "the table and the topic hold the same source"
    );
}

#[tokio::test]
async fn identical_resubmit_is_a_no_op_and_only_the_newest_is_published_again() {
    let (bus, store) = setup();
    submit_to(&bus, &store, "acme", &welcome(1, "a"))
        .await
        .unwrap();
    let again = submit_to(&bus, &store, "acme", &welcome(1, "a"))
        .await
        .unwrap();
    assert!(
        matches!(again.outcome, SubmitOutcome::Unchanged(Some(_))),
        "{again}"
    );
    submit_to(&bus, &store, "acme", &welcome(2, "b"))
        .await
        .unwrap();
    let old = submit_to(&bus, &store, "acme", &welcome(1, "a"))
        .await
        .unwrap();
    assert_eq!(old.outcome, SubmitOutcome::Unchanged(None), "{old}");
    assert_eq!(store.all().await.unwrap().len(), 2);
    // v1, v1 again, v2; the old identical v1 was not published after v2.
    let versions: Vec<_> = records(&bus)
        .await
        .iter()
        .map(|r| r.header(headers::VERSION).unwrap().to_vec())
        .collect();
    assert_eq!(versions, [b"1".to_vec(), b"1".to_vec(), b"2".to_vec()]);
}

#[tokio::test]
async fn stale_or_conflicting_versions_are_refused_and_nothing_is_published() {
    let (bus, store) = setup();
    submit_to(&bus, &store, "acme", &welcome(3, "three"))
        .await
        .unwrap();
    for (version, text, needle) in [
        (2, "two", "greater than the newest recorded version 3"),
        (3, "other", "already recorded with different content"),
    ] {
        let error = submit_to(&bus, &store, "acme", &welcome(version, text))
            .await
            .unwrap_err();
        assert!(matches!(error, Error::FlowRefused { .. }), "{error}");
        assert!(error.to_string().contains(needle), "{error}");
        assert!(error.to_string().contains("acme/welcome"), "{error}");
    }
    assert_eq!(records(&bus).await.len(), 1);
    // Versions are per tenant: another tenant may start at 1.
    submit_to(&bus, &store, "globex", &welcome(1, "one"))
        .await
        .unwrap();
    submit_to(&bus, &store, "acme", &welcome(4, "four"))
        .await
        .unwrap();
    assert_eq!(store.all().await.unwrap().len(), 3);
}

#[tokio::test]
async fn malformed_tenants_are_refused() {
    let (bus, store) = setup();
    for tenant in ["", "a/b", "a b", &"x".repeat(129)] {
        let error = submit_to(&bus, &store, tenant, &welcome(1, "x"))
            .await
            .unwrap_err();
        assert!(error.to_string().contains("tenant"), "{error}");
    }
    assert!(store.all().await.unwrap().is_empty());
    assert!(check_tenant("acme-eu_1.prod").is_ok());
}

#[tokio::test]
async fn catalog_loads_everything_then_follows_new_versions_live() {
    let (bus, store) = setup();
    submit_to(&bus, &store, "acme", &welcome(1, "one"))
        .await
        .unwrap();
    submit_to(&bus, &store, "globex", &welcome(1, "one"))
        .await
        .unwrap();
    let catalog = start(&bus, None).await;
    assert!(catalog.is_loaded());
    let snapshot = catalog.snapshot();
    assert!(has(&snapshot, "acme", "welcome", 1));
    assert!(has(&snapshot, "globex", "welcome", 1));

    submit_to(&bus, &store, "acme", &welcome(2, "two"))
        .await
        .unwrap();
    assert!(
        catalog
            .wait_until(WAIT, |f| has(f, "acme", "welcome", 2))
            .await
    );
    let acme = catalog.flows("acme").unwrap();
    assert_eq!(acme.newest("welcome").unwrap().version, 2);
    assert!(
        acme.version("welcome", 1).is_some(),
        "old versions stay for pinned runs"
    );
    assert_eq!(
        catalog
            .flows("globex")
            .unwrap()
            .newest("welcome")
            .unwrap()
            .version,
        1,
        "tenants are separate"
    );
    // The snapshot taken before is unchanged: readers never see a half-applied update.
    assert!(!has(&snapshot, "acme", "welcome", 2));
    assert!(catalog.status().borrow().generation >= 1);
    catalog.stop().await;
}

#[tokio::test]
async fn an_empty_topic_is_loaded_at_once() {
    let (bus, _) = setup();
    let catalog = start(&bus, None).await;
    assert!(catalog.is_loaded());
    assert!(catalog.snapshot().is_empty());
    catalog.stop().await;
}

#[tokio::test]
async fn broken_records_are_skipped_and_never_stop_the_catalog() {
    let (bus, store) = setup();
    bus.ensure_topics(&[topic()]).await.unwrap();
    let good = welcome(1, "one");
    let mut tampered: Value = crate::flow::artifact(&welcome(2, "two"));
    tampered["source"]["nodes"][0]["text"] = "evil".into();
    let mut invalid: Value = crate::flow::artifact(&welcome(3, "three"));
    invalid["source"]["nodes"] = Value::Array(Vec::new());
    invalid["content_hash"] =
        blake3::hash(crate::flow::canonical_json(&invalid["source"]).as_bytes())
            .to_hex()
            .to_string()
            .into();
    let json = |v: &Value| serde_json::to_vec(v).unwrap();
    bus.publish(
        TOPIC,
        vec![
            Record::new("acme/welcome", "not json"),
            Record::new("no-slash", json(&crate::flow::artifact(&good))),
            Record::new("acme/other", json(&crate::flow::artifact(&good))),
            Record::new("acme/welcome", json(&tampered)),
            Record::new("acme/welcome", json(&invalid)),
            flow_record("acme", &good)
                .unwrap()
                .with_header(headers::TENANT, "ignored: first header wins"),
            {
                let mut r = flow_record("acme", &welcome(4, "four")).unwrap();
                r.headers.retain(|(n, _)| n != headers::TENANT);
                r.headers
                    .push((headers::TENANT.to_owned(), b"globex".to_vec()));
                r
            },
        ],
    )
    .await
    .unwrap();
    let catalog = start(&bus, Some(&store)).await;
    assert_eq!(catalog.status().borrow().skipped, 6);
    let snapshot = catalog.snapshot();
    assert_eq!(
        snapshot.len(),
        1,
        "{:?}",
        snapshot.keys().collect::<Vec<_>>()
    );
    let acme = &snapshot["acme"];
    assert!(acme.version("welcome", 1).is_some());
    for version in [2, 3, 4] {
        assert!(acme.version("welcome", version).is_none(), "v{version}");
    }
    assert!(acme.newest("other").is_none());
    // And it still follows the topic.
    submit_to(&bus, &store, "acme", &welcome(5, "five"))
        .await
        .unwrap();
    assert!(
        catalog
            .wait_until(WAIT, |f| has(f, "acme", "welcome", 5))
            .await
    );
    catalog.stop().await;
}

#[tokio::test]
async fn old_versions_come_from_the_store_when_compaction_removed_them() {
    let (bus, store) = setup();
    // v1 is only in the store (its record was compacted away), v2 is on the topic.
    store
        .insert_if_absent(&StoredFlow::new("acme", &welcome(1, "one"), 1))
        .await
        .unwrap();
    bus.publish(
        TOPIC,
        vec![flow_record("acme", &welcome(2, "two")).unwrap()],
    )
    .await
    .unwrap();
    let catalog = start(&bus, Some(&store)).await;
    let acme = catalog.flows("acme").unwrap();
    assert!(acme.version("welcome", 1).is_some());
    assert_eq!(acme.newest("welcome").unwrap().version, 2);
    catalog.stop().await;
}

/// A bus that reports fixed end offsets (`None`: cannot tell, the trait's default).
struct FixedEnds(MemoryBus, Option<Vec<i64>>);

#[async_trait::async_trait]
impl EventBus for FixedEnds {
    async fn ensure_topics(&self, specs: &[TopicSpec]) -> sluice_infra::Result<()> {
        self.0.ensure_topics(specs).await
    }
    async fn publish(
        &self,
        topic: &str,
        records: Vec<Record>,
    ) -> sluice_infra::Result<Vec<sluice_infra::bus::Position>> {
        self.0.publish(topic, records).await
    }
    async fn subscribe(
        &self,
        group: &str,
        topics: &[&str],
    ) -> sluice_infra::Result<Box<dyn sluice_infra::bus::Subscription>> {
        self.0.subscribe(group, topics).await
    }
    async fn end_offsets(&self, _topic: &str) -> sluice_infra::Result<Option<Vec<i64>>> {
        Ok(self.1.clone())
    }
}

#[tokio::test]
async fn a_catalog_settles_when_the_topic_is_quiet_short_of_its_end_or_without_one() {
    // Without end offsets; and with an end the topic never reaches (compaction can
    // leave the last offsets empty).
    for ends in [None, Some(vec![100])] {
        let (bus, store) = setup();
        submit_to(&bus, &store, "acme", &welcome(1, "one"))
            .await
            .unwrap();
        let fake = Arc::new(FixedEnds((*bus).clone(), ends.clone()));
        let catalog = FlowCatalog::start(fake, None, config()).await.unwrap();
        assert!(!catalog.is_loaded(), "{ends:?}");
        tokio::time::timeout(WAIT, catalog.loaded()).await.unwrap();
        assert!(has(&catalog.snapshot(), "acme", "welcome", 1), "{ends:?}");
        catalog.stop().await;
    }
}
