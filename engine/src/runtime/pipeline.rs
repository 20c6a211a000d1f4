//! Batches in flight: published, their commits running in the background, one
//! after the other, while the worker evaluates and publishes the next batches.
//!
//! A worker stages a batch on top of the batches in flight
//! ([`Partition::stage`](super::Partition::stage)), publishes its actions, and hands
//! its commit to [`spawn_commit`], chained after the previous batch's commit: the
//! commits of one partition run in order, each retried with backoff while the
//! store is unavailable. The worker settles the batches oldest first — a batch's
//! inputs are acknowledged only once its commit and every earlier one succeeded —
//! and holds at most [`DEPTH`] of them.

use std::{sync::Arc, time::Duration};

use sluice_infra::{bus::Delivered, store::TimerEntry};
use tokio::{
    sync::{oneshot, watch},
    task::JoinHandle,
};

use super::{Processed, Processor, Staged};
use crate::Error;

/// Most batches of one partition published and not yet committed.
pub(super) const DEPTH: usize = 4;

/// How a background commit ended.
#[derive(Debug)]
pub(super) enum Committed {
    /// Durable.
    Done,
    /// The runtime stopped while the store was unavailable.
    Stopped,
    /// Failed for a reason a retry cannot fix.
    Failed(Error),
    /// Not attempted: an earlier batch's commit did not succeed.
    Aborted,
}

/// A batch whose actions are published and whose commit runs in the background.
pub(super) struct InFlight {
    pub(super) commit: JoinHandle<Committed>,
    pub(super) batch: Published,
}

/// A batch staged and published: what settling it needs.
pub(super) struct Published {
    pub(super) staged: Arc<Staged>,
    pub(super) records: Vec<Delivered>,
    pub(super) timers: Vec<TimerEntry>,
    pub(super) processed: Vec<Processed>,
    pub(super) started: std::time::Instant,
    pub(super) now: i64,
}

/// Commits `staged` in the background once `after` (the previous batch's commit)
/// has succeeded, retrying while the store is unavailable; the returned receiver
/// resolves once this commit has succeeded, and fails if it did not.
pub(super) fn spawn_commit(
    processor: Processor,
    staged: Arc<Staged>,
    after: Option<oneshot::Receiver<()>>,
    mut stopped: watch::Receiver<bool>,
) -> (JoinHandle<Committed>, oneshot::Receiver<()>) {
    let (done, next) = oneshot::channel();
    let task = tokio::spawn(async move {
        if let Some(after) = after
            && after.await.is_err()
        {
            return Committed::Aborted;
        }
        let mut backoff = Duration::from_millis(100);
        loop {
            match processor.commit(&staged.states, &staged.changes).await {
                Ok(()) => {
                    let _ = done.send(());
                    return Committed::Done;
                }
                Err(error) if super::worker::retryable(&error) => {
                    tracing::warn!(%error, ?backoff, "commit failed; retrying");
                    tokio::select! {
                        _ = tokio::time::sleep(backoff) => {}
                        _ = stopped.wait_for(|stop| *stop) => return Committed::Stopped,
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
                Err(error) => return Committed::Failed(error),
            }
        }
    });
    (task, next)
}
