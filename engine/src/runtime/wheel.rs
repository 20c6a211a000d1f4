//! The in-memory tier of the timer service: one partition's near-term timers in
//! firing order, in compact form (24 bytes per timer plus the contact, interned
//! once however many timers it has).

use std::{
    collections::{BTreeSet, HashMap},
    sync::Arc,
};

use sluice_infra::store::{ContactKey, TimerEntry};

/// Near-term timers of one partition. Cancelled timers are not removed eagerly:
/// the partition checks each popped timer against the durable store first.
#[derive(Debug, Default)]
pub struct TimerWheel {
    /// `(due_at, run, contact slot, token)`, in firing order per contact.
    queue: BTreeSet<(i64, u64, u32, u32)>,
    contacts: Interner,
}

impl TimerWheel {
    /// Adds a timer; adding one that is already there changes nothing.
    pub fn insert(&mut self, timer: &TimerEntry) {
        let slot = self.contacts.acquire(&timer.contact);
        if !self
            .queue
            .insert((timer.due_at, timer.run, slot, timer.token))
        {
            self.contacts.release(slot);
        }
    }

    /// When the earliest timer is due.
    pub fn next_due(&self) -> Option<i64> {
        self.queue.first().map(|t| t.0)
    }

    /// Removes and returns the earliest timer if it is due at `now`.
    pub fn pop_due(&mut self, now: i64) -> Option<TimerEntry> {
        if self.next_due()? > now {
            return None;
        }
        let (due_at, run, slot, token) = self.queue.pop_first()?;
        let contact = self.contacts.release(slot)?;
        Some(TimerEntry {
            due_at,
            contact: ContactKey::clone(&contact),
            run,
            token,
        })
    }

    /// Number of timers held.
    pub fn len(&self) -> usize {
        self.queue.len()
    }

    /// Whether no timer is held.
    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }
}

/// Contacts by slot, reference-counted by the timers that name them.
#[derive(Debug, Default)]
struct Interner {
    slots: HashMap<Arc<ContactKey>, u32>,
    keys: Vec<Option<(Arc<ContactKey>, u32)>>,
    free: Vec<u32>,
}

impl Interner {
    fn acquire(&mut self, contact: &ContactKey) -> u32 {
        if let Some(&slot) = self.slots.get(contact) {
            if let Some(Some((_, refs))) = self.keys.get_mut(slot as usize) {
                *refs += 1;
            }
            return slot;
        }
        let key = Arc::new(contact.clone());
        let slot = match self.free.pop() {
            Some(slot) => {
                self.keys[slot as usize] = Some((Arc::clone(&key), 1));
                slot
            }
            None => {
                self.keys.push(Some((Arc::clone(&key), 1)));
                u32::try_from(self.keys.len() - 1).unwrap_or(u32::MAX)
            }
        };
        self.slots.insert(key, slot);
        slot
    }

    /// Drops one reference; returns the contact (freeing the slot on the last one).
    fn release(&mut self, slot: u32) -> Option<Arc<ContactKey>> {
        let entry = self.keys.get_mut(slot as usize)?;
        let (key, refs) = entry.as_mut()?;
        let key = Arc::clone(key);
        *refs -= 1;
        if *refs == 0 {
            *entry = None;
            self.slots.remove(&key);
            self.free.push(slot);
        }
        Some(key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn timer(due_at: i64, contact: &str, run: u64) -> TimerEntry {
        TimerEntry {
            due_at,
            contact: ContactKey::new("t", contact),
            run,
            token: 1,
        }
    }

    #[test]
    fn pops_in_due_order_once_and_frees_contacts() {
        let mut wheel = TimerWheel::default();
        for t in [
            timer(30, "a", 1),
            timer(10, "b", 1),
            timer(20, "a", 2),
            timer(10, "b", 1),
        ] {
            wheel.insert(&t);
        }
        assert_eq!(wheel.len(), 3);
        assert_eq!(wheel.pop_due(5), None);
        assert_eq!(wheel.pop_due(100), Some(timer(10, "b", 1)));
        assert_eq!(wheel.pop_due(100), Some(timer(20, "a", 2)));
        assert_eq!(wheel.next_due(), Some(30));
        assert_eq!(wheel.pop_due(100), Some(timer(30, "a", 1)));
        assert_eq!(wheel.pop_due(100), None);
        assert!(wheel.contacts.slots.is_empty());
        assert_eq!(wheel.contacts.free.len(), 2);
    }
}
