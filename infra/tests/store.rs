//! One behaviour test for the state store, run against every backend: the
//! in-memory store, the embedded file store and a real CQL server.

use std::sync::Arc;

use bytes::Bytes;
use sluice_infra::{
    cql::{Cql, CqlConfig, MIGRATIONS},
    store::{
        self, ContactKey, CqlStore, CqlTimerStore, FileStore, MemoryStore, StateStore, StoredState,
        TimerChanges, TimerEntry, TimerStore,
    },
    testing,
};

fn state(version: i64, data: &str) -> StoredState {
    StoredState {
        version,
        data: Bytes::copy_from_slice(data.as_bytes()),
    }
}

async fn store_behaviour(store: Arc<dyn StateStore>) {
    let tenant = testing::unique_name("tenant");
    let alice = ContactKey::new(&tenant, "alice");
    let bob = ContactKey::new(&tenant, "bob");
    let other_tenant = ContactKey::new(format!("{tenant}-other"), "alice");

    assert_eq!(store.load(&alice).await.unwrap(), None, "unknown contact");

    store
        .save(&[
            (alice.clone(), state(10, "a10")),
            (bob.clone(), state(3, "b3")),
        ])
        .await
        .unwrap();
    assert_eq!(store.load(&alice).await.unwrap(), Some(state(10, "a10")));
    assert_eq!(
        store
            .load_many(&[bob.clone(), other_tenant.clone(), alice.clone()])
            .await
            .unwrap(),
        vec![Some(state(3, "b3")), None, Some(state(10, "a10"))],
        "tenants do not see each other's contacts"
    );

    // Newer versions replace, older ones are ignored whatever the arrival order.
    store
        .save(&[(alice.clone(), state(12, "a12"))])
        .await
        .unwrap();
    store
        .save(&[(alice.clone(), state(11, "a11"))])
        .await
        .unwrap();
    assert_eq!(store.load(&alice).await.unwrap(), Some(state(12, "a12")));

    // Many contacts at once, in the order asked, the unknown ones as `None`.
    let many: Vec<(ContactKey, StoredState)> = (0..300)
        .map(|n| (ContactKey::new(&tenant, format!("m-{n}")), state(n, "m")))
        .collect();
    store.save(&many).await.unwrap();
    let keys: Vec<ContactKey> = (0..600)
        .rev()
        .map(|n| ContactKey::new(&tenant, format!("m-{n}")))
        .collect();
    let loaded = store.load_many(&keys).await.unwrap();
    let expected: Vec<Option<StoredState>> = (0..600)
        .rev()
        .map(|n| (n < 300).then(|| state(n, "m")))
        .collect();
    assert_eq!(loaded, expected);

    // Large states, more than one request's worth (the CQL store sends unlogged
    // batches of bounded size), and one state larger than any batch.
    let large: Vec<(ContactKey, StoredState)> = (0..40)
        .map(|n| {
            let data = format!("{n:>3000}");
            (ContactKey::new(&tenant, format!("l-{n}")), state(1, &data))
        })
        .chain(std::iter::once((
            ContactKey::new(&tenant, "huge"),
            state(1, &"h".repeat(100_000)),
        )))
        .collect();
    store.save(&large).await.unwrap();
    let keys: Vec<ContactKey> = large.iter().map(|(key, _)| key.clone()).collect();
    let loaded = store.load_many(&keys).await.unwrap();
    let expected: Vec<Option<StoredState>> = large.into_iter().map(|(_, s)| Some(s)).collect();
    assert!(loaded == expected, "large states come back whole");

    // Binary data survives as is.
    let binary = StoredState {
        version: 20,
        data: Bytes::from_static(&[0, 255, 1, 254, 0]),
    };
    store.save(&[(bob.clone(), binary.clone())]).await.unwrap();
    assert_eq!(store.load(&bob).await.unwrap(), Some(binary));
}

#[tokio::test]
async fn memory_store_behaviour() {
    store_behaviour(Arc::new(MemoryStore::default())).await;
}

#[tokio::test]
async fn file_store_behaviour_and_durability() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nested/sluice.redb");
    let store = FileStore::open(&path).unwrap();
    store_behaviour(Arc::new(store.clone())).await;
    let key = ContactKey::new("acme", "durable");
    store
        .save(&[(key.clone(), state(7, "kept"))])
        .await
        .unwrap();
    drop(store);
    // Reopened (as after a restart), the state is still there.
    let reopened = store::connect(&format!("file://{}", path.display()))
        .await
        .unwrap();
    assert_eq!(reopened.load(&key).await.unwrap(), Some(state(7, "kept")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cql_store_behaviour_and_migrations() {
    let Some(node) = testing::cql() else {
        return;
    };
    let keyspace = testing::unique_name("sluice_test").to_lowercase();
    let keyspace = &keyspace[..keyspace.len().min(48)];
    let url = format!("cql://{node}/{keyspace}?replication_factor=1");
    let cql = Cql::connect(&CqlConfig::from_url(&url).unwrap())
        .await
        .unwrap();
    let all: Vec<i32> = MIGRATIONS.iter().map(|m| m.version).collect();
    assert_eq!(cql.applied_migrations().await.unwrap(), all);
    // Connecting again finds the schema current and changes nothing.
    let again = store::connect(&url).await.unwrap();
    assert_eq!(cql.applied_migrations().await.unwrap(), all);
    let store = Arc::new(CqlStore::new(cql).await.unwrap());
    store_behaviour(store).await;
    store_behaviour(again).await;
}

#[test]
fn cql_urls_are_checked() {
    let config = CqlConfig::from_url("cql://a:9042,b:9042/ks?replication_factor=3").unwrap();
    assert_eq!(config.nodes, vec!["a:9042", "b:9042"]);
    assert_eq!(config.keyspace, "ks");
    assert_eq!(config.replication_factor, 3);
    assert_eq!(
        CqlConfig::from_url("cql://a:9042").unwrap().keyspace,
        "sluice"
    );
    for (url, needle) in [
        ("cql:///ks", "no contact points"),
        ("cql://a/bad-name", "keyspace \"bad-name\""),
        (
            "cql://a/ks?replication_factor=0",
            "replication_factor \"0\"",
        ),
        (
            "cql://a/ks?consistency=one",
            "unknown option \"consistency\"",
        ),
    ] {
        let error = CqlConfig::from_url(url).unwrap_err();
        assert!(error.to_string().contains(needle), "{url}: {error}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cql_timer_store_behaviour() {
    let Some(node) = testing::cql() else {
        return;
    };
    let keyspace = testing::unique_name("sluice_timers").to_lowercase();
    let keyspace = &keyspace[..keyspace.len().min(48)];
    let url = format!("cql://{node}/{keyspace}?replication_factor=1");
    let cql = Cql::connect(&CqlConfig::from_url(&url).unwrap())
        .await
        .unwrap();
    let store = Arc::new(CqlTimerStore::new(cql, 4).await.unwrap());
    testing::timer_store_behaviour(store.clone()).await;
    // What is left, read per partition: each timer is in exactly its partition's shards.
    let left = testing::timer_entry(2_000, "c-1", 2, 1);
    let mut found = Vec::new();
    for partition in 0..4 {
        found.extend(
            store
                .due_in(partition, 4, None, i64::MAX, 10)
                .await
                .unwrap(),
        );
    }
    assert_eq!(found, vec![left.clone()]);
    // Many timers on one instant spread over sub-shards and page in order.
    let burst: Vec<TimerEntry> = (0..40)
        .map(|i| testing::timer_entry(90_000, &format!("burst-{i}"), 1, 1))
        .collect();
    let changes = TimerChanges {
        set: burst.clone(),
        cancel: vec![],
    };
    store.commit(&[], &changes).await.unwrap();
    let mut expected = burst;
    expected.push(left);
    expected.sort();
    let mut paged = Vec::new();
    loop {
        let page = store.due(paged.last(), i64::MAX, 7).await.unwrap();
        if page.is_empty() {
            break;
        }
        paged.extend(page);
    }
    assert_eq!(paged, expected);
}
