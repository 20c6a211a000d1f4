//! A bounded memory of recently published event ids, to answer a provider's quick retry
//! without publishing again. It is an optimization only: the engine drops an event id it
//! applied already, so a miss here (another replica, a restart, an evicted id) costs a
//! duplicate record, never a duplicate effect.
//!
//! Two generations per shard: ids go into the current set; when it is full it becomes
//! the previous one and the oldest generation is dropped. Lookups check both, so an id
//! is remembered for at least `capacity / 2` and at most `capacity` later insertions.

use std::{
    collections::{HashSet, hash_map::RandomState},
    hash::BuildHasher,
    sync::Mutex,
};

const SHARDS: usize = 16;

/// Recently published `tenant/event id`s.
#[derive(Debug)]
pub(crate) struct RecentIds {
    shards: Vec<Mutex<Generations>>,
    per_generation: usize,
    hasher: RandomState,
}

#[derive(Debug, Default)]
struct Generations {
    current: HashSet<String>,
    previous: HashSet<String>,
}

impl RecentIds {
    /// Remembers up to about `capacity` ids; 0 disables it.
    pub(crate) fn new(capacity: usize) -> Self {
        RecentIds {
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
            per_generation: capacity / SHARDS / 2,
            hasher: RandomState::new(),
        }
    }

    fn shard(&self, key: &str) -> std::sync::MutexGuard<'_, Generations> {
        let index = (self.hasher.hash_one(key) as usize) % SHARDS;
        // A panic cannot leave a shard half-updated: each update is one insert or swap.
        self.shards[index]
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Whether `key` was recorded recently.
    pub(crate) fn contains(&self, key: &str) -> bool {
        if self.per_generation == 0 {
            return false;
        }
        let shard = self.shard(key);
        shard.current.contains(key) || shard.previous.contains(key)
    }

    /// Records `key`.
    pub(crate) fn insert(&self, key: String) {
        if self.per_generation == 0 {
            return;
        }
        let mut shard = self.shard(&key);
        if shard.current.len() >= self.per_generation {
            shard.previous = std::mem::take(&mut shard.current);
        }
        shard.current.insert(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembers_recent_ids_and_forgets_old_ones() {
        let ids = RecentIds::new(320);
        ids.insert("acme/e1".into());
        assert!(ids.contains("acme/e1"));
        assert!(!ids.contains("globex/e1"));
        for i in 0..10_000 {
            ids.insert(format!("acme/x{i}"));
        }
        assert!(!ids.contains("acme/e1"));
        assert!(ids.contains("acme/x9999"));
    }

    #[test]
    fn zero_capacity_disables_it() {
        let ids = RecentIds::new(0);
        ids.insert("a/b".into());
        assert!(!ids.contains("a/b"));
    }
}
