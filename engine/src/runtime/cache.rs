//! A partition's cache of contact states, so that a contact active in batch after
//! batch is loaded from the store once rather than once per batch.
//!
//! An entry is exactly the contact's durable state: it is put back only after the
//! batch that changed it was committed, and a batch takes its contacts' entries
//! out while it runs, so a batch that fails leaves them out (the retry loads them
//! from the store). The cache is only valid while this replica owns the partition
//! without interruption — another replica may have changed the contacts meanwhile —
//! so the partition [clears](StateCache::clear) it whenever its ownership
//! generation changes.
//!
//! Eviction is an approximate LRU in two generations: entries go into `hot`; when
//! `hot` holds half the capacity it becomes `cold` and the old `cold` is dropped. A
//! hit in `cold` moves the entry back to `hot`. So an entry used within the last
//! `capacity / 2` insertions is always kept, at most `capacity` entries are held,
//! and every operation is O(1).

use std::collections::HashMap;

use sluice_infra::store::ContactKey;

use crate::eval::ContactState;

/// A contact's state as last committed.
#[derive(Debug, Clone, PartialEq)]
pub struct Cached {
    /// The decoded state.
    pub state: ContactState,
    /// Its version in the store (the contact's applied-input counter).
    pub version: i64,
}

/// Recently used contact states of one partition (see the module docs).
#[derive(Debug)]
pub struct StateCache {
    hot: HashMap<ContactKey, Cached>,
    cold: HashMap<ContactKey, Cached>,
    /// `hot` turns cold at this many entries; 0 disables the cache.
    half: usize,
}

impl Default for StateCache {
    fn default() -> Self {
        StateCache::new(DEFAULT_CAPACITY)
    }
}

/// Contacts cached per partition unless configured otherwise.
pub(crate) const DEFAULT_CAPACITY: usize = 8_192;

impl StateCache {
    /// A cache of at most `capacity` contacts (0: caches nothing).
    pub fn new(capacity: usize) -> Self {
        StateCache {
            hot: HashMap::new(),
            cold: HashMap::new(),
            half: capacity / 2,
        }
    }

    /// Removes and returns the contact's entry (the caller puts it back once its
    /// changes are durable).
    pub fn take(&mut self, key: &ContactKey) -> Option<Cached> {
        self.hot.remove(key).or_else(|| self.cold.remove(key))
    }

    /// Whether the contact is cached.
    pub fn contains(&self, key: &ContactKey) -> bool {
        self.hot.contains_key(key) || self.cold.contains_key(key)
    }

    /// Stores the contact's durable state as the most recently used entry.
    pub fn put(&mut self, key: ContactKey, cached: Cached) {
        if self.half == 0 {
            return;
        }
        self.cold.remove(&key);
        self.hot.insert(key, cached);
        if self.hot.len() >= self.half {
            self.cold = std::mem::take(&mut self.hot);
        }
    }

    /// Forgets every entry: the partition changed hands, or a store commit failed.
    pub fn clear(&mut self) {
        self.hot.clear();
        self.cold.clear();
    }

    /// Entries held.
    pub fn len(&self) -> usize {
        self.hot.len() + self.cold.len()
    }

    /// Whether no entry is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: usize) -> ContactKey {
        ContactKey::new("acme", format!("c-{n}"))
    }

    fn cached(version: i64) -> Cached {
        Cached {
            state: ContactState::default(),
            version,
        }
    }

    #[test]
    fn a_taken_entry_is_gone_until_put_back() {
        let mut cache = StateCache::new(8);
        cache.put(key(1), cached(3));
        assert!(cache.contains(&key(1)));
        assert_eq!(cache.take(&key(1)), Some(cached(3)));
        assert_eq!(cache.take(&key(1)), None);
        cache.put(key(1), cached(4));
        assert_eq!(cache.take(&key(1)).map(|c| c.version), Some(4));
    }

    #[test]
    fn holds_at_most_its_capacity_and_keeps_recently_used_entries() {
        let mut cache = StateCache::new(8);
        for n in 0..100 {
            cache.put(key(n), cached(n as i64));
            // The entry used most recently survives any 4 (capacity / 2) insertions.
            if n >= 1 {
                let kept = cache.take(&key(0)).expect("key 0 is kept while in use");
                cache.put(key(0), kept);
            }
            assert!(cache.len() <= 8, "{} entries", cache.len());
        }
        assert!(cache.contains(&key(0)));
        assert!(cache.contains(&key(99)));
        assert!(!cache.contains(&key(50)), "an old, unused entry is evicted");
    }

    #[test]
    fn entries_unused_for_a_whole_capacity_are_evicted() {
        let mut cache = StateCache::new(4);
        cache.put(key(0), cached(0));
        for n in 1..=4 {
            cache.put(key(n), cached(0));
        }
        assert!(!cache.contains(&key(0)));
        assert!(cache.contains(&key(4)));
    }

    #[test]
    fn clearing_forgets_everything_and_capacity_zero_caches_nothing() {
        let mut cache = StateCache::new(16);
        for n in 0..10 {
            cache.put(key(n), cached(1));
        }
        cache.clear();
        assert!(cache.is_empty());
        let mut off = StateCache::new(0);
        off.put(key(1), cached(1));
        assert!(off.is_empty());
    }
}
