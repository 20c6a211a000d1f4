//! The in-memory dedupe store, for `sluice dev`, tests and benchmarks.

use std::{
    collections::HashMap,
    sync::{Mutex, MutexGuard},
    time::Duration,
};

use async_trait::async_trait;

use super::{Claim, DedupeStore, lease_end};
use crate::Result;

#[derive(Debug, Clone)]
struct Entry {
    owner: String,
    lease_until: i64,
    attempts: i32,
    outcome: Option<String>,
}

/// A [`DedupeStore`] in a hash map. Entries never expire: it lives as long as one
/// process, which is what it is for.
#[derive(Debug, Default)]
pub struct MemoryDedupe {
    entries: Mutex<HashMap<String, Entry>>,
}

impl MemoryDedupe {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, Entry>> {
        // Every critical section is a single insert or field update.
        self.entries
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[async_trait]
impl DedupeStore for MemoryDedupe {
    async fn claim(
        &self,
        action_id: &str,
        owner: &str,
        now: i64,
        lease: Duration,
    ) -> Result<Claim> {
        let mut entries = self.lock();
        let until = lease_end(now, lease);
        match entries.get_mut(action_id) {
            None => {
                entries.insert(
                    action_id.to_owned(),
                    Entry {
                        owner: owner.to_owned(),
                        lease_until: until,
                        attempts: 1,
                        outcome: None,
                    },
                );
                Ok(Claim::Acquired { attempt: 1 })
            }
            Some(entry) => {
                if let Some(outcome) = &entry.outcome {
                    return Ok(Claim::Done {
                        outcome: outcome.clone(),
                    });
                }
                let mine = entry.owner == owner;
                if !mine && entry.lease_until > now {
                    return Ok(Claim::Held {
                        owner: entry.owner.clone(),
                        until: entry.lease_until,
                    });
                }
                entry.owner = owner.to_owned();
                entry.lease_until = until;
                if !mine {
                    entry.attempts += 1;
                }
                Ok(Claim::Acquired {
                    attempt: entry.attempts,
                })
            }
        }
    }

    async fn complete(&self, action_id: &str, owner: &str, outcome: &str) -> Result<bool> {
        let mut entries = self.lock();
        let entry = entries
            .entry(action_id.to_owned())
            .or_insert_with(|| Entry {
                owner: owner.to_owned(),
                lease_until: 0,
                attempts: 1,
                outcome: None,
            });
        let ours = entry.owner == owner && entry.outcome.is_none();
        if entry.outcome.is_none() {
            entry.outcome = Some(outcome.to_owned());
        }
        Ok(ours)
    }
}
