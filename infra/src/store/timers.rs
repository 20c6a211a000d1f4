//! Durable timers: every pending wall-clock timer of every contact, kept in the
//! same store as the contacts' states and written together with them.
//!
//! The engine's timer service keeps near-term timers in memory and reads the rest
//! window by window ([`TimerStore::due`]); this store is the source of truth, so a
//! restarted process resumes every pending timer. A timer is identified by its
//! contact, run and wait token ([`TimerId`]); setting one that exists moves it.

use async_trait::async_trait;

use super::{ContactKey, StateStore, StoredState};
use crate::Result;

/// Identifies one timer: the contact, the run and the run's wait token.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TimerId {
    /// The contact the timer belongs to.
    pub contact: ContactKey,
    /// The run, unique within the contact.
    pub run: u64,
    /// The run's wait token when the timer was set.
    pub token: u32,
}

/// A pending timer. Ordered by due time, then contact, run and token: the order in
/// which timers fire.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TimerEntry {
    /// When it is due, Unix milliseconds.
    pub due_at: i64,
    /// The contact it belongs to.
    pub contact: ContactKey,
    /// The run, unique within the contact.
    pub run: u64,
    /// The run's wait token when the timer was set.
    pub token: u32,
}

impl TimerEntry {
    /// The timer's identity, without its due time.
    pub fn id(&self) -> TimerId {
        TimerId {
            contact: self.contact.clone(),
            run: self.run,
            token: self.token,
        }
    }
}

/// Timer changes made by one batch of inputs. Cancellations apply first, then the
/// new timers, so a batch may cancel a timer and set it again.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TimerChanges {
    /// Timers to add (or move, when one with the same id exists).
    pub set: Vec<TimerEntry>,
    /// Timers to remove: fired, or no longer needed. Unknown ids are ignored.
    pub cancel: Vec<TimerId>,
}

impl TimerChanges {
    /// Whether the batch changes no timer.
    pub fn is_empty(&self) -> bool {
        self.set.is_empty() && self.cancel.is_empty()
    }
}

/// A [`StateStore`] that also keeps the contacts' durable timers.
#[async_trait]
pub trait TimerStore: StateStore {
    /// Stores states and timer changes together — all of them or, on error, none —
    /// and returns once they are durable. States follow [`StateStore::save`]'s rules.
    async fn commit(
        &self,
        states: &[(ContactKey, StoredState)],
        timers: &TimerChanges,
    ) -> Result<()>;

    /// Pending timers due strictly before `before`, in firing order, starting strictly
    /// after `after` (a cursor: the last entry of the previous page), at most `limit`.
    async fn due(
        &self,
        after: Option<&TimerEntry>,
        before: i64,
        limit: usize,
    ) -> Result<Vec<TimerEntry>>;

    /// Whether this exact timer (id and due time) is still pending.
    async fn contains(&self, timer: &TimerEntry) -> Result<bool>;
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use bytes::Bytes;

    use super::*;
    use crate::store::{FileStore, MemoryStore};

    fn entry(due_at: i64, contact: &str, run: u64, token: u32) -> TimerEntry {
        TimerEntry {
            due_at,
            contact: ContactKey::new("acme", contact),
            run,
            token,
        }
    }

    /// The behaviour every timer store must have.
    async fn timer_store_behaviour(store: Arc<dyn TimerStore>) {
        assert!(store.due(None, i64::MAX, 10).await.unwrap().is_empty());
        let a = entry(3_000, "c-1", 1, 1);
        let b = entry(1_000, "c-2", 7, 2);
        let c = entry(2_000, "c-1", 2, 1);
        let d = entry(-5, "c-3", 1, 1);
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
        assert_eq!(store.load(&a.contact).await.unwrap(), Some(state));

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
        let moved = entry(500, "c-1", 1, 1);
        let changes = TimerChanges {
            set: vec![moved.clone()],
            cancel: vec![b.id(), entry(0, "c-9", 9, 9).id()],
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

    #[tokio::test]
    async fn memory_store_keeps_timers() {
        timer_store_behaviour(Arc::new(MemoryStore::default())).await;
    }

    #[tokio::test]
    async fn file_store_keeps_timers_across_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sluice.redb");
        timer_store_behaviour(Arc::new(FileStore::open(&path).unwrap())).await;
        let reopened = FileStore::open(&path).unwrap();
        let pending = reopened.due(None, i64::MAX, 10).await.unwrap();
        assert_eq!(pending, vec![entry(2_000, "c-1", 2, 1)]);
    }
}
