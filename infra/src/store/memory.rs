//! The in-memory state store, for tests and benchmarks.

use std::{
    collections::HashMap,
    sync::{Mutex, MutexGuard},
};

use async_trait::async_trait;

use super::{ContactKey, StateStore, StoredState};
use crate::Result;

/// A [`StateStore`] in a hash map.
#[derive(Debug, Default)]
pub struct MemoryStore {
    states: Mutex<HashMap<ContactKey, StoredState>>,
}

impl MemoryStore {
    fn lock(&self) -> MutexGuard<'_, HashMap<ContactKey, StoredState>> {
        // Every critical section is a single map operation: never half-updated.
        self.states
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Number of contacts stored.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether no contact is stored.
    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }
}

#[async_trait]
impl StateStore for MemoryStore {
    async fn load(&self, key: &ContactKey) -> Result<Option<StoredState>> {
        Ok(self.lock().get(key).cloned())
    }

    async fn save(&self, batch: &[(ContactKey, StoredState)]) -> Result<()> {
        let mut states = self.lock();
        for (key, state) in batch {
            match states.get(key) {
                Some(stored) if stored.version > state.version => {}
                _ => {
                    states.insert(key.clone(), state.clone());
                }
            }
        }
        Ok(())
    }
}
