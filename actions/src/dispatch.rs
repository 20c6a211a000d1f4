//! One action, start to end: bounded concurrency per connector, the once-only
//! claim, the connector call, the recorded outcome, the published results.

use std::{
    collections::HashMap,
    sync::Arc,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use sluice_infra::bus::Delivered;
use sluice_schemas::Action;
use tokio::sync::Semaphore;

use crate::{
    Error, Result,
    connectors::router::{CHANNELS, Connectors, channel_of},
    dedupe::{Claim, DedupeStore},
    metrics::Metrics,
    results::{Outcome, Publisher},
};

/// What became of one attempt at an action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Step {
    /// Finished (executed now, or found done before): its offset may be committed.
    Done,
    /// Another worker holds it; look again at this time (Unix ms).
    RetryAt(i64),
}

/// The current time, Unix milliseconds.
pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Runs actions.
pub(crate) struct Dispatcher {
    pub(crate) dedupe: Arc<dyn DedupeStore>,
    pub(crate) connectors: Connectors,
    pub(crate) publisher: Publisher,
    pub(crate) metrics: Metrics,
    semaphores: HashMap<&'static str, Arc<Semaphore>>,
    owner: String,
    lease: Duration,
}

impl Dispatcher {
    pub(crate) fn new(
        dedupe: Arc<dyn DedupeStore>,
        connectors: Connectors,
        publisher: Publisher,
        metrics: Metrics,
        concurrency: usize,
        owner: String,
        lease: Duration,
    ) -> Self {
        let semaphores = CHANNELS
            .iter()
            .map(|&channel| (channel, Arc::new(Semaphore::new(concurrency.max(1)))))
            .collect();
        Dispatcher {
            dedupe,
            connectors,
            publisher,
            metrics,
            semaphores,
            owner,
            lease,
        }
    }

    /// Handles `action`, read from `source`. An `Err` is an infrastructure failure
    /// (the store, the bus): the caller tries again later, and the claim makes sure
    /// the provider is not called twice for what already happened.
    ///
    /// `executed` carries the provider's outcome across those attempts: once the
    /// provider was called, a later attempt only records and publishes that outcome
    /// — a store outage between the call and the record must not call it again.
    pub(crate) async fn handle(
        &self,
        action: &Action,
        source: &Delivered,
        executed: &mut Option<Outcome>,
    ) -> Result<Step> {
        let channel = channel_of(action);
        let _permit = match self.semaphores.get(channel) {
            Some(semaphore) => Some(Arc::clone(semaphore).acquire_owned().await),
            None => None,
        };
        if let Some(outcome) = executed {
            return self.finish(action, source, outcome).await;
        }
        let action_type = action.action_type.as_str();
        match self
            .dedupe
            .claim(&action.id, &self.owner, now_ms(), self.lease)
            .await?
        {
            Claim::Held { owner, until } => {
                tracing::debug!(action_id = %action.id, %owner, until, "action held by another worker");
                Ok(Step::RetryAt(until.saturating_add(50)))
            }
            Claim::Done { outcome } => {
                let outcome: Outcome =
                    serde_json::from_str(&outcome).map_err(|e| Error::Outcome {
                        action_id: action.id.clone(),
                        message: e.to_string(),
                    })?;
                // Publishing again is harmless (deterministic event ids) and covers a
                // worker that died between recording the outcome and publishing it.
                self.publisher.publish(&outcome, source).await?;
                self.metrics
                    .actions
                    .with_label_values(&[action_type, "duplicate"])
                    .inc();
                Ok(Step::Done)
            }
            Claim::Acquired { attempt } => {
                if attempt > 1 {
                    tracing::info!(action_id = %action.id, attempt, "taking over an action whose lease ran out");
                }
                let outcome = self.connectors.execute(action, now_ms).await?;
                let outcome = executed.insert(outcome);
                self.finish(action, source, outcome).await
            }
        }
    }

    /// Records the outcome of an executed action with its claim, then publishes it.
    async fn finish(&self, action: &Action, source: &Delivered, outcome: &Outcome) -> Result<Step> {
        let recorded = serde_json::to_string(outcome).map_err(|e| Error::Outcome {
            action_id: action.id.clone(),
            message: e.to_string(),
        })?;
        self.complete(&action.id, &recorded).await?;
        self.publisher.publish(outcome, source).await?;
        self.record(action, outcome);
        Ok(Step::Done)
    }

    /// Records the outcome, trying a few times: once the provider was called, a
    /// lost record would mean calling it again.
    async fn complete(&self, action_id: &str, outcome: &str) -> Result<()> {
        let mut pause = Duration::from_millis(100);
        let mut tries = 0;
        loop {
            tries += 1;
            match self.dedupe.complete(action_id, &self.owner, outcome).await {
                Ok(true) => return Ok(()),
                Ok(false) => {
                    tracing::warn!(
                        action_id,
                        "lease ran out while executing; another worker may run it too"
                    );
                    return Ok(());
                }
                Err(error) if tries < 6 && error.is_retryable() => {
                    tracing::warn!(action_id, %error, "recording an outcome failed; trying again");
                    tokio::time::sleep(pause).await;
                    pause *= 2;
                }
                Err(error) => return Err(error),
            }
        }
    }

    fn record(&self, action: &Action, outcome: &Outcome) {
        let action_type = action.action_type.as_str();
        self.metrics
            .actions
            .with_label_values(&[action_type, outcome.status.as_str()])
            .inc();
        if let Some(dead) = &outcome.dead_letter {
            self.metrics
                .dead_letters
                .with_label_values(&[dead.kind.as_str()])
                .inc();
            tracing::warn!(action_id = %action.id, action_type, reason = %dead.reason, "action dead-lettered");
        }
        let due = action
            .not_before
            .unwrap_or(action.created_at)
            .max(action.created_at);
        let waited = now_ms().saturating_sub(due).max(0);
        self.metrics
            .end_to_end
            .observe(Duration::from_millis(waited.unsigned_abs()).as_secs_f64());
    }
}
