//! The in-memory state and timer store, for tests, benchmarks and `sluice dev`
//! without a data directory.

use std::{
    collections::{BTreeSet, HashMap},
    sync::{Mutex, MutexGuard},
};

use async_trait::async_trait;

use super::{
    ContactKey, StateStore, StoredState,
    timers::{TimerChanges, TimerEntry, TimerId, TimerStore},
};
use crate::Result;

/// A [`StateStore`] and [`TimerStore`] in hash maps.
#[derive(Debug, Default)]
pub struct MemoryStore {
    states: Mutex<HashMap<ContactKey, StoredState>>,
    timers: Mutex<Timers>,
}

/// Pending timers in firing order, and each one's due time by id.
#[derive(Debug, Default)]
struct Timers {
    by_due: BTreeSet<TimerEntry>,
    due_of: HashMap<TimerId, i64>,
}

impl Timers {
    fn cancel(&mut self, id: &TimerId) {
        if let Some(due_at) = self.due_of.remove(id) {
            self.by_due.remove(&TimerEntry {
                due_at,
                contact: id.contact.clone(),
                run: id.run,
                token: id.token,
            });
        }
    }

    fn apply(&mut self, changes: &TimerChanges) {
        for id in &changes.cancel {
            self.cancel(id);
        }
        for timer in &changes.set {
            let id = timer.id();
            self.cancel(&id);
            self.due_of.insert(id, timer.due_at);
            self.by_due.insert(timer.clone());
        }
    }
}

/// Every critical section below is a single map operation or a batch applied
/// without early returns: a poisoned lock never holds a half-updated value.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn save_states(states: &mut HashMap<ContactKey, StoredState>, batch: &[(ContactKey, StoredState)]) {
    for (key, state) in batch {
        match states.get(key) {
            Some(stored) if stored.version > state.version => {}
            _ => {
                states.insert(key.clone(), state.clone());
            }
        }
    }
}

impl MemoryStore {
    /// Number of contacts stored.
    pub fn len(&self) -> usize {
        lock(&self.states).len()
    }

    /// Whether no contact is stored.
    pub fn is_empty(&self) -> bool {
        lock(&self.states).is_empty()
    }
}

#[async_trait]
impl StateStore for MemoryStore {
    async fn load(&self, key: &ContactKey) -> Result<Option<StoredState>> {
        Ok(lock(&self.states).get(key).cloned())
    }

    async fn load_many(&self, keys: &[ContactKey]) -> Result<Vec<Option<StoredState>>> {
        let states = lock(&self.states);
        Ok(keys.iter().map(|key| states.get(key).cloned()).collect())
    }

    async fn save(&self, batch: &[(ContactKey, StoredState)]) -> Result<()> {
        save_states(&mut lock(&self.states), batch);
        Ok(())
    }
}

#[async_trait]
impl TimerStore for MemoryStore {
    async fn commit(
        &self,
        states: &[(ContactKey, StoredState)],
        timers: &TimerChanges,
    ) -> Result<()> {
        // Both locks are held together (always in this order), so no reader sees
        // the states without their timers.
        let mut stored = lock(&self.states);
        let mut pending = lock(&self.timers);
        save_states(&mut stored, states);
        pending.apply(timers);
        Ok(())
    }

    async fn due(
        &self,
        after: Option<&TimerEntry>,
        before: i64,
        limit: usize,
    ) -> Result<Vec<TimerEntry>> {
        let pending = lock(&self.timers);
        let from = match after {
            Some(cursor) => std::ops::Bound::Excluded(cursor),
            None => std::ops::Bound::Unbounded,
        };
        Ok(pending
            .by_due
            .range((from, std::ops::Bound::Unbounded))
            .take_while(|t| t.due_at < before)
            .take(limit)
            .cloned()
            .collect())
    }

    async fn contains(&self, timer: &TimerEntry) -> Result<bool> {
        Ok(lock(&self.timers).by_due.contains(timer))
    }
}
