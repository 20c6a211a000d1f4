//! Helpers for tests that need the real servers the test harness starts
//! (`deploy/local/servers.sh`): Kafka on `SLUICE_TEST_KAFKA` (default
//! `127.0.0.1:9092`) and CQL on `SLUICE_TEST_CQL` (default `127.0.0.1:9042`).
//!
//! When a server is unreachable, a test is skipped with a loud message on a
//! developer's machine, and fails under CI (`CI` set) or when
//! `SLUICE_REQUIRE_SERVERS=1` — the test command sets it.

use std::{net::TcpStream, sync::Arc, time::Duration};

use bytes::Bytes;

use crate::store::{ContactKey, StoredState, TimerChanges, TimerEntry, TimerStore};

/// Whether missing servers must fail tests instead of skipping them.
pub fn servers_required() -> bool {
    let set =
        |name: &str| std::env::var(name).is_ok_and(|v| !v.is_empty() && v != "0" && v != "false");
    set("CI") || set("SLUICE_REQUIRE_SERVERS")
}

fn require(what: &str, variable: &str, default: &str) -> Option<String> {
    let addr = std::env::var(variable).unwrap_or_else(|_| default.to_owned());
    let reachable = addr
        .parse()
        .ok()
        .is_some_and(|socket| TcpStream::connect_timeout(&socket, Duration::from_secs(2)).is_ok());
    if reachable {
        return Some(addr);
    }
    let message = format!(
        "{what} is not reachable on {addr} (set {variable}, or start it with deploy/local/servers.sh start)"
    );
    assert!(!servers_required(), "{message}");
    #[allow(clippy::print_stderr)]
    {
        eprintln!("SKIPPED: {message}");
    }
    None
}

/// The Kafka bootstrap address, or `None` (after saying so) when it is down and
/// servers are not required.
pub fn kafka() -> Option<String> {
    require("Kafka", "SLUICE_TEST_KAFKA", "127.0.0.1:9092")
}

/// The CQL contact point, or `None` (after saying so) when it is down and servers
/// are not required.
pub fn cql() -> Option<String> {
    require("the CQL server", "SLUICE_TEST_CQL", "127.0.0.1:9042")
}

/// A name no earlier test run used, for topics, groups and keyspaces.
pub fn unique_name(prefix: &str) -> String {
    use std::time::{SystemTime, UNIX_EPOCH};
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("{prefix}_{}_{nanos}", std::process::id())
}

/// A timer of tenant `acme`, for [`timer_store_behaviour`].
pub fn timer_entry(due_at: i64, contact: &str, run: u64, token: u32) -> TimerEntry {
    TimerEntry {
        due_at,
        contact: ContactKey::new("acme", contact),
        run,
        token,
    }
}

/// The behaviour every [`TimerStore`] must have; panics on a deviation. Run it
/// against a fresh store (a new keyspace for CQL).
pub async fn timer_store_behaviour(store: Arc<dyn TimerStore>) {
    assert!(store.due(None, i64::MAX, 10).await.unwrap().is_empty());
    let a = timer_entry(3_000, "c-1", 1, 1);
    let b = timer_entry(1_000, "c-2", 7, 2);
    let c = timer_entry(2_000, "c-1", 2, 1);
    let d = timer_entry(-5, "c-3", 1, 1);
    let state = StoredState {
        version: 1,
        data: Bytes::from_static(b"s1"),
    };
    let changes = TimerChanges {
        set: vec![a.clone(), b.clone(), c.clone(), d.clone()],
        cancel: vec![],
    };
    store
        .commit(&[(a.contact.clone(), state.clone())], &changes)
        .await
        .unwrap();
    assert_eq!(store.load(&a.contact).await.unwrap(), Some(state.clone()));
    assert_eq!(
        store
            .load_many(&[b.contact.clone(), a.contact.clone()])
            .await
            .unwrap(),
        vec![None, Some(state)]
    );

    // Firing order, exclusive upper bound, paging with a cursor.
    let all = store.due(None, i64::MAX, 10).await.unwrap();
    assert_eq!(all, vec![d.clone(), b.clone(), c.clone(), a.clone()]);
    assert_eq!(
        store.due(None, 2_000, 10).await.unwrap(),
        vec![d.clone(), b.clone()]
    );
    let page = store.due(None, i64::MAX, 2).await.unwrap();
    assert_eq!(page, vec![d.clone(), b.clone()]);
    let next = store.due(page.last(), i64::MAX, 2).await.unwrap();
    assert_eq!(next, vec![c.clone(), a.clone()]);
    assert!(store.contains(&c).await.unwrap());

    // Moving a timer (same id, new due time) and cancelling in one batch.
    let moved = timer_entry(500, "c-1", 1, 1);
    let changes = TimerChanges {
        set: vec![moved.clone()],
        cancel: vec![b.id(), timer_entry(0, "c-9", 9, 9).id()],
    };
    store.commit(&[], &changes).await.unwrap();
    assert_eq!(
        store.due(None, i64::MAX, 10).await.unwrap(),
        vec![d.clone(), moved.clone(), c.clone()]
    );
    assert!(!store.contains(&a).await.unwrap());
    assert!(!store.contains(&b).await.unwrap());

    // Cancel then set again in the same batch keeps the timer.
    let changes = TimerChanges {
        set: vec![c.clone()],
        cancel: vec![c.id(), d.id(), moved.id()],
    };
    store.commit(&[], &changes).await.unwrap();
    assert_eq!(store.due(None, i64::MAX, 10).await.unwrap(), vec![c]);
}
