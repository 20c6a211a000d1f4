//! Batches in flight: their actions sent, their commits running in the background
//! while the worker evaluates and sends the next batches.
//!
//! A worker stages a batch on top of the batches in flight
//! ([`Partition::stage`](super::Partition::stage)), hands its actions to the bus
//! without waiting for their acknowledgement, and hands the batch to its
//! partition's [`Committer`]. The committer commits one partition's batches in
//! order, each once its actions are acknowledged; the batches that queued up while
//! a commit ran are committed together as one (a group commit: each contact's last
//! state, the timer changes netted across them), so a store that falls behind gets
//! fewer, larger commits rather than a growing queue. Each commit is retried with
//! backoff while the store is unavailable. The worker settles the batches oldest
//! first — a batch's inputs are acknowledged only once its commit succeeded, and
//! every earlier one — and holds at most [`DEPTH`] of them.

use std::{collections::HashMap, sync::Arc, time::Duration};

use futures::future::try_join_all;
use sluice_infra::{
    bus::Delivered,
    store::{ContactKey, StoredState, TimerChanges, TimerEntry},
};
use tokio::sync::{mpsc, watch};

use super::{Delivery, Processed, Processor, Staged, net::TimerNet};
use crate::Error;

/// Most batches of one partition sent and not yet committed.
pub(super) const DEPTH: usize = 16;

/// How a batch's background commit ended.
#[derive(Debug)]
pub(super) enum Committed {
    /// Durable.
    Done,
    /// The runtime stopped while the store was unavailable.
    Stopped,
    /// Failed for a reason a retry cannot fix.
    Failed(Error),
    /// The actions of a batch of its group commit were not acknowledged (the bus
    /// gave up on them): nothing of the group was committed.
    Undelivered(Error),
}

/// A batch staged and its actions sent: what settling it needs.
pub(super) struct Published {
    pub(super) staged: Arc<Staged>,
    pub(super) records: Vec<Delivered>,
    pub(super) timers: Vec<TimerEntry>,
    pub(super) processed: Vec<Processed>,
    pub(super) started: std::time::Instant,
    pub(super) now: i64,
}

/// One partition's background commits: batches in, one outcome per batch out, both
/// in batch order. After a commit that did not succeed it stops; the worker starts
/// a new one once it has dealt with the batches in flight.
pub(super) struct Committer {
    batches: mpsc::UnboundedSender<(Arc<Staged>, Delivery)>,
    outcomes: mpsc::UnboundedReceiver<Committed>,
}

impl Committer {
    /// Starts committing with `processor`; a commit retrying while the store is
    /// unavailable gives up when `stopped` turns true.
    pub(super) fn start(processor: Processor, stopped: watch::Receiver<bool>) -> Self {
        let (batches, queue) = mpsc::unbounded_channel();
        let (report, outcomes) = mpsc::unbounded_channel();
        tokio::spawn(commit_in_order(processor, queue, report, stopped));
        Committer { batches, outcomes }
    }

    /// Queues a batch's commit after the ones queued before, to start once its
    /// actions (`delivery`) are acknowledged.
    pub(super) fn push(&self, staged: Arc<Staged>, delivery: Delivery) {
        let _ = self.batches.send((staged, delivery));
    }

    /// The outcome of the oldest batch not yet reported; `None` when the committer
    /// stopped before committing it (an earlier commit did not succeed).
    pub(super) async fn next(&mut self) -> Option<Committed> {
        self.outcomes.recv().await
    }

    /// The outcome of the oldest batch not yet reported, if it is known already.
    pub(super) fn ready(&mut self) -> Option<Committed> {
        self.outcomes.try_recv().ok()
    }
}

async fn commit_in_order(
    processor: Processor,
    mut queue: mpsc::UnboundedReceiver<(Arc<Staged>, Delivery)>,
    report: mpsc::UnboundedSender<Committed>,
    mut stopped: watch::Receiver<bool>,
) {
    while let Some(first) = queue.recv().await {
        let mut queued = vec![first];
        while let Ok(next) = queue.try_recv() {
            queued.push(next);
        }
        let (group, deliveries): (Vec<_>, Vec<_>) = queued.into_iter().unzip();
        // The actions go to the bus before the states they follow from: a replay of
        // the inputs then finds the old states and yields the same actions again.
        // Not raced against `stopped`: the bus gives up on its own (Kafka's
        // `message.timeout.ms`), and a stopping runtime still finishes what it sent.
        if let Err(error) = try_join_all(deliveries).await {
            let _ = report.send(Committed::Undelivered(error));
            return;
        }
        let (states, changes) = merge(&group);
        let mut backoff = Duration::from_millis(100);
        let outcome = loop {
            match processor.commit(&states, &changes).await {
                Ok(()) => break Committed::Done,
                Err(error) if super::worker::retryable(&error) => {
                    tracing::warn!(%error, ?backoff, "commit failed; retrying");
                    tokio::select! {
                        _ = tokio::time::sleep(backoff) => {}
                        _ = stopped.wait_for(|stop| *stop) => break Committed::Stopped,
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
                Err(error) => break Committed::Failed(error),
            }
        };
        if !matches!(outcome, Committed::Done) {
            // The later batches are not committed: the worker processes them again.
            let _ = report.send(outcome);
            return;
        }
        for _ in &group {
            if report.send(Committed::Done).is_err() {
                return;
            }
        }
    }
}

/// Batches committed as one: each contact's last state, and the timer changes
/// netted across the batches in order (as within one batch).
pub(super) fn merge(group: &[Arc<Staged>]) -> (Vec<(ContactKey, StoredState)>, TimerChanges) {
    if let [only] = group {
        return (only.states.clone(), only.changes.clone());
    }
    let mut states: HashMap<&ContactKey, &StoredState> = HashMap::new();
    let mut net = TimerNet::default();
    for staged in group {
        for (key, state) in &staged.states {
            states.insert(key, state);
        }
        for id in &staged.changes.cancel {
            net.cancel(id.clone());
        }
        for timer in &staged.changes.set {
            net.set(timer.clone());
        }
    }
    let states = states
        .into_iter()
        .map(|(key, state)| (key.clone(), state.clone()))
        .collect();
    (states, net.into_changes())
}
