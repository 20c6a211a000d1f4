//! Which partitions the consumer group assigns to this member, and since when.
//!
//! Every partition has an ownership generation, bumped each time the group assigns
//! it to this member or revokes it. The consumer tags each record with its
//! partition's generation when it polls it; a worker drops a record whose
//! generation is older than the partition's current one (the partition changed
//! hands since: the group redelivers the record from the committed offset, to this
//! member or another), and forgets its timers and cached states whenever the
//! generation of a partition it serves changes — another replica may have changed
//! them meanwhile.
//!
//! Before the group takes partitions away, the [`Fence`] revokes them here first:
//! their workers stop firing their timers and taking their records, settle the
//! batches they have in flight, and the offsets they acknowledged are committed —
//! so the next owner loads the timers and states this member left in the store,
//! and neither fires a timer nor processes an event a second time.

use std::{
    collections::{BTreeMap, HashMap},
    sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError},
    time::{Duration, Instant},
};

use sluice_infra::bus::{Delivered, Position, Revocations};
use tokio::sync::{mpsc, watch};

/// How long a revocation waits for the workers to settle their batches in flight
/// (longer only while the store is down): then the partitions go anyway, and their
/// next owner may process those batches' inputs again — same action ids, which the
/// action workers execute once.
pub(crate) const SETTLE_TIMEOUT: Duration = Duration::from_secs(10);

/// A record and the generation of its partition when it was polled.
#[derive(Debug)]
pub(crate) struct Polled {
    /// The ownership generation of the record's partition at the poll.
    pub(crate) generation: u64,
    /// The record.
    pub(crate) record: Delivered,
}

/// The partitions assigned to this member, and every partition's generation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Assignment {
    /// Assigned partitions, ascending.
    owned: Vec<i32>,
    /// Generation per partition that was ever assigned (0 for the others).
    generations: BTreeMap<i32, u64>,
}

impl Assignment {
    /// Takes the group's current assignment (ascending); bumps the generation of
    /// every partition assigned or revoked. Returns whether anything changed.
    pub(crate) fn update(&mut self, partitions: Vec<i32>) -> bool {
        if partitions == self.owned {
            return false;
        }
        let changed = partitions
            .iter()
            .filter(|p| !self.owned.contains(p))
            .chain(self.owned.iter().filter(|p| !partitions.contains(p)));
        for &partition in changed {
            *self.generations.entry(partition).or_default() += 1;
        }
        self.owned = partitions;
        true
    }

    /// Takes `partitions` away (the group is about to reassign them); returns
    /// whether any of them was assigned.
    pub(crate) fn revoke(&mut self, partitions: &[i32]) -> bool {
        let remaining = self
            .owned
            .iter()
            .copied()
            .filter(|p| !partitions.contains(p))
            .collect();
        self.update(remaining)
    }

    /// The assigned partitions, ascending.
    pub(crate) fn partitions(&self) -> &[i32] {
        &self.owned
    }

    /// The partition's ownership generation.
    pub(crate) fn generation(&self, partition: i32) -> u64 {
        self.generations.get(&partition).copied().unwrap_or(0)
    }

    /// A number that changes whenever the generation of one of the partitions
    /// `serves` selects changes (generations only grow, so their sum does).
    pub(crate) fn epoch(&self, serves: impl Fn(i32) -> bool) -> u64 {
        self.generations
            .iter()
            .filter(|(p, _)| serves(**p))
            .map(|(_, g)| g)
            .sum()
    }
}

/// Per worker, the ownership epoch it has settled: it follows that epoch's
/// assignment and has no batch from an earlier one in flight.
#[derive(Debug)]
pub(crate) struct Settlement {
    epochs: Mutex<Vec<u64>>,
    changed: Condvar,
}

impl Settlement {
    pub(crate) fn new(workers: usize) -> Self {
        Settlement {
            epochs: Mutex::new(vec![0; workers]),
            changed: Condvar::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Vec<u64>> {
        // A panicking worker leaves nothing half-written: the epochs are plain numbers.
        self.epochs.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Worker `worker` has settled `epoch`.
    pub(crate) fn report(&self, worker: usize, epoch: u64) {
        if let Some(settled) = self.lock().get_mut(worker)
            && *settled != epoch
        {
            *settled = epoch;
            self.changed.notify_all();
        }
    }

    /// Blocks until every `(worker, epoch)` is settled or `timeout` passes; returns
    /// the workers that had not settled.
    pub(crate) fn wait(&self, targets: &[(usize, u64)], timeout: Duration) -> Vec<usize> {
        let deadline = Instant::now() + timeout;
        let late = |epochs: &[u64]| -> Vec<usize> {
            targets
                .iter()
                .filter(|&&(w, epoch)| epochs.get(w).is_some_and(|&e| e < epoch))
                .map(|&(w, _)| w)
                .collect()
        };
        let mut epochs = self.lock();
        loop {
            let waiting = late(&epochs);
            let left = deadline.saturating_duration_since(Instant::now());
            if waiting.is_empty() || left.is_zero() {
                return waiting;
            }
            epochs = self
                .changed
                .wait_timeout(epochs, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }
}

/// The workers' acknowledgements, taken by the consumer and by the [`Fence`].
#[derive(Debug)]
pub(crate) struct Acked(Mutex<mpsc::UnboundedReceiver<Position>>);

impl Acked {
    pub(crate) fn new(receiver: mpsc::UnboundedReceiver<Position>) -> Self {
        Acked(Mutex::new(receiver))
    }

    /// The acknowledgements so far, only the last one per partition (a worker
    /// acknowledges its partition's records in order), and whether any worker can
    /// still send more.
    pub(crate) fn take(&self) -> (Vec<Position>, bool) {
        let mut last: HashMap<i32, Position> = HashMap::new();
        let mut receiver = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let open = loop {
            match receiver.try_recv() {
                Ok(position) => {
                    last.insert(position.partition, position);
                }
                Err(mpsc::error::TryRecvError::Empty) => break true,
                Err(mpsc::error::TryRecvError::Disconnected) => break false,
            }
        };
        (last.into_values().collect(), open)
    }
}

/// The engine's side of a revocation (see the module documentation).
pub(crate) struct Fence {
    pub(crate) topic: String,
    /// How many workers share the partitions (`partition % workers` routes).
    pub(crate) workers: i32,
    pub(crate) assign: Arc<watch::Sender<Assignment>>,
    pub(crate) settlement: Arc<Settlement>,
    /// The workers' acknowledgements, shared with the consumer.
    pub(crate) acked: Arc<Acked>,
    pub(crate) stopped: watch::Receiver<bool>,
    pub(crate) timeout: Duration,
}

impl Fence {
    /// Revokes `partitions` and waits for their workers to settle.
    fn settle(&self, partitions: &[i32]) {
        self.assign.send_if_modified(|a| a.revoke(partitions));
        let workers = self.workers.max(1);
        let assignment = self.assign.borrow().clone();
        let mut targets: Vec<(usize, u64)> = partitions
            .iter()
            .map(|p| p.rem_euclid(workers))
            .map(|w| {
                let epoch = assignment.epoch(|p| p.rem_euclid(workers) == w);
                (usize::try_from(w).unwrap_or(usize::MAX), epoch)
            })
            .collect();
        targets.sort_unstable();
        targets.dedup();
        let started = Instant::now();
        let late = self.settlement.wait(&targets, self.timeout);
        if late.is_empty() {
            tracing::info!(
                ?partitions,
                elapsed = ?started.elapsed(),
                "revoked partitions settled"
            );
        } else {
            tracing::warn!(
                ?partitions,
                workers = ?late,
                timeout = ?self.timeout,
                "revoking partitions whose batches in flight are not durable yet; \
                 their next owner may process those inputs again"
            );
        }
    }
}

impl Revocations for Fence {
    fn revoking(&self, topic: &str, partitions: &[i32]) -> Vec<Position> {
        if topic != self.topic {
            return Vec::new();
        }
        // Once the runtime stops (or was dropped), the workers are gone or going:
        // nothing to wait for.
        let stopping = *self.stopped.borrow() || self.stopped.has_changed().is_err();
        if !stopping {
            self.settle(partitions);
        }
        self.acked.take().0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generations_change_when_a_partition_is_assigned_or_revoked() {
        let mut a = Assignment::default();
        assert!(!a.update(Vec::new()));
        assert!(a.update(vec![0, 1]));
        assert_eq!(
            (a.generation(0), a.generation(1), a.generation(2)),
            (1, 1, 0)
        );
        // Partition 1 moves away, 2 arrives; 0 stays, with its generation.
        assert!(a.update(vec![0, 2]));
        assert_eq!(
            (a.generation(0), a.generation(1), a.generation(2)),
            (1, 2, 1)
        );
        assert!(!a.update(vec![0, 2]));
        // 1 comes back: a new generation, so records polled before are stale.
        assert!(a.update(vec![0, 1, 2]));
        assert_eq!(a.generation(1), 3);
        assert_eq!(a.partitions(), [0, 1, 2]);
    }

    #[test]
    fn revoking_takes_partitions_away_in_a_new_generation() {
        let mut a = Assignment::default();
        a.update(vec![0, 1, 2]);
        assert!(a.revoke(&[1, 5]));
        assert_eq!(a.partitions(), [0, 2]);
        assert_eq!((a.generation(0), a.generation(1)), (1, 2));
        assert!(!a.revoke(&[1]), "already gone");
        // The group assigns what is left: no change, no new generation.
        assert!(!a.update(vec![0, 2]));
    }

    #[test]
    fn a_revocation_waits_for_the_workers_to_settle_or_times_out() {
        let settlement = Arc::new(Settlement::new(2));
        settlement.report(1, 3);
        assert!(
            settlement.wait(&[(1, 3)], Duration::ZERO).is_empty(),
            "settled already"
        );
        let reporter = Arc::clone(&settlement);
        let worker = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            reporter.report(0, 2);
        });
        let started = Instant::now();
        assert!(
            settlement
                .wait(&[(0, 2), (1, 3)], Duration::from_secs(30))
                .is_empty()
        );
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "woken by the report"
        );
        worker.join().unwrap();
        assert_eq!(
            settlement.wait(&[(0, 5), (1, 3)], Duration::from_millis(20)),
            [0],
            "worker 0 never settled epoch 5"
        );
    }

    #[test]
    fn the_epoch_of_a_worker_changes_only_with_its_partitions() {
        let mut a = Assignment::default();
        a.update(vec![0, 1, 2, 3]);
        let even = |p: i32| p % 2 == 0;
        let before = a.epoch(even);
        a.update(vec![0, 2, 3]);
        assert_eq!(a.epoch(even), before, "partition 1 is not an even worker's");
        a.update(vec![0, 3]);
        assert_ne!(a.epoch(even), before);
    }
}
