//! The timer changes of a batch of inputs, netted per timer: only each timer's
//! last change is written, and a timer set and cancelled within the batch is not
//! written at all.

use std::collections::HashMap;

use sluice_infra::store::{TimerChanges, TimerEntry, TimerId};

/// What a batch does to one timer.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Change {
    /// Set (or moved) to this entry.
    Set(TimerEntry),
    /// Removed from the store.
    Cancel,
    /// Set within the batch, then cancelled: nothing to write.
    Nothing,
}

/// Timer changes accumulated over a batch, in the order the timers were first touched.
#[derive(Debug, Default)]
pub(crate) struct TimerNet {
    /// Each touched timer's last change, and whether the batch's first change to it
    /// was a set.
    changes: HashMap<TimerId, (Change, bool)>,
    order: Vec<TimerId>,
}

impl TimerNet {
    /// Sets (or moves) a timer.
    pub(crate) fn set(&mut self, timer: TimerEntry) {
        let id = timer.id();
        match self.changes.get_mut(&id) {
            Some((change, _)) => *change = Change::Set(timer),
            None => {
                self.order.push(id.clone());
                self.changes.insert(id, (Change::Set(timer), true));
            }
        }
    }

    /// Cancels a timer. When the batch's first change to it was a set, it is as if
    /// neither happened (the timer was new; or, if it was pending with another due
    /// time before the batch, it stays there: an extra timer, which the stale-timer
    /// guard ignores when it fires).
    pub(crate) fn cancel(&mut self, id: TimerId) {
        match self.changes.get_mut(&id) {
            Some((change, set_first)) => {
                *change = if *set_first {
                    Change::Nothing
                } else {
                    Change::Cancel
                };
            }
            None => {
                self.order.push(id.clone());
                self.changes.insert(id, (Change::Cancel, false));
            }
        }
    }

    /// Whether `timer` is still pending after the batch's changes so far, when the
    /// batch changed it; `None` when the store decides.
    pub(crate) fn pending(&self, timer: &TimerEntry) -> Option<bool> {
        match &self.changes.get(&timer.id())?.0 {
            Change::Set(set) => Some(set.due_at == timer.due_at),
            Change::Cancel | Change::Nothing => Some(false),
        }
    }

    /// The changes to commit: each touched timer once, with its last change.
    pub(crate) fn into_changes(mut self) -> TimerChanges {
        let mut out = TimerChanges::default();
        for id in self.order {
            match self.changes.remove(&id) {
                Some((Change::Set(timer), _)) => out.set.push(timer),
                Some((Change::Cancel, _)) => out.cancel.push(id),
                Some((Change::Nothing, _)) | None => {}
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use sluice_infra::store::ContactKey;

    use super::*;

    fn timer(due_at: i64, run: u64) -> TimerEntry {
        TimerEntry {
            due_at,
            contact: ContactKey::new("acme", "c"),
            run,
            token: 1,
        }
    }

    #[test]
    fn a_timer_set_and_cancelled_within_the_batch_costs_nothing() {
        let mut net = TimerNet::default();
        net.set(timer(10, 1));
        net.cancel(timer(10, 1).id());
        assert_eq!(net.pending(&timer(10, 1)), Some(false));
        assert!(net.into_changes().is_empty());
    }

    #[test]
    fn only_the_last_change_of_each_timer_is_written_in_first_touch_order() {
        let mut net = TimerNet::default();
        net.cancel(timer(5, 3).id()); // pending before the batch (fired, say)
        net.set(timer(10, 1));
        net.set(timer(20, 2));
        net.set(timer(30, 1)); // moved within the batch
        net.cancel(timer(20, 2).id());
        net.set(timer(20, 2)); // set again after the cancel
        assert_eq!(net.pending(&timer(10, 1)), Some(false), "moved away");
        assert_eq!(net.pending(&timer(30, 1)), Some(true));
        assert_eq!(
            net.pending(&timer(7, 9)),
            None,
            "untouched: the store decides"
        );
        let changes = net.into_changes();
        assert_eq!(changes.cancel, vec![timer(5, 3).id()]);
        assert_eq!(changes.set, vec![timer(30, 1), timer(20, 2)]);
    }

    #[test]
    fn a_cancel_of_a_timer_the_batch_did_not_set_is_written() {
        let mut net = TimerNet::default();
        net.cancel(timer(10, 1).id());
        net.cancel(timer(10, 1).id());
        net.set(timer(15, 1));
        net.cancel(timer(15, 1).id());
        let changes = net.into_changes();
        assert_eq!(changes.cancel, vec![timer(10, 1).id()]);
        assert!(changes.set.is_empty());
    }
}
