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

    /// Like [`due`](Self::due), but a store that shards timers by the events topic's
    /// partition may return only those of contacts on `partition` of `partitions`
    /// (callers filter either way). By default, all of them.
    async fn due_in(
        &self,
        partition: i32,
        partitions: i32,
        after: Option<&TimerEntry>,
        before: i64,
        limit: usize,
    ) -> Result<Vec<TimerEntry>> {
        let _ = (partition, partitions);
        self.due(after, before, limit).await
    }

    /// Whether this exact timer (id and due time) is still pending.
    async fn contains(&self, timer: &TimerEntry) -> Result<bool>;
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::{
        store::{FileStore, MemoryStore},
        testing::{timer_entry as entry, timer_store_behaviour},
    };

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
