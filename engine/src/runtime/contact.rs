//! The per-contact path every input takes — an event from the bus or a timer
//! that came due: load the contact's state, evaluate, make the state and timer
//! changes durable in one store commit, and publish the actions to
//! `sluice.actions` (acknowledged). The input's offset is committed only after both.
//! Inputs go through it in batches ([`Processor::process_batch`], `batch.rs`).

use std::{future::Future, pin::Pin, sync::Arc};

use sluice_infra::{
    bus::{EventBus, Record, topics},
    store::{ContactKey, StoredState, TimerChanges, TimerEntry, TimerStore},
};
use sluice_schemas::ActionType;

use super::{BatchInput, EngineMetrics, Evaluator, StateCache};
use crate::{
    Error, Result,
    eval::{Input, Output},
};

/// A batch's actions handed to the bus ([`Processor::send`]): resolves once every
/// one of them is acknowledged.
pub type Delivery = Pin<Box<dyn Future<Output = Result<()>> + Send>>;

/// Runs inputs through the evaluator, a batch at a time, in order per contact.
#[derive(Clone)]
pub struct Processor {
    pub(super) evaluator: Arc<dyn Evaluator>,
    pub(super) store: Arc<dyn TimerStore>,
    bus: Arc<dyn EventBus>,
    actions_topic: String,
    metrics: Option<EngineMetrics>,
    pub(super) actions_first: bool,
}

impl std::fmt::Debug for Processor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Processor").finish_non_exhaustive()
    }
}

/// What processing one input did.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Processed {
    /// The evaluator's output (its actions are already published).
    pub output: Output,
    /// The timers it set, as stored.
    pub timers_set: Vec<TimerEntry>,
}

impl Processor {
    /// A processor over a store (states and timers) and a bus (actions).
    pub fn new(
        evaluator: Arc<dyn Evaluator>,
        store: Arc<dyn TimerStore>,
        bus: Arc<dyn EventBus>,
    ) -> Self {
        Processor {
            evaluator,
            store,
            bus,
            actions_topic: topics::ACTIONS.to_owned(),
            metrics: None,
            actions_first: false,
        }
    }

    /// Publishes actions to `topic` instead of `sluice.actions`.
    pub fn with_actions_topic(mut self, topic: impl Into<String>) -> Self {
        self.actions_topic = topic.into();
        self
    }

    /// Publishes a batch's actions before committing its states, for an input log
    /// that replays uncommitted inputs (Kafka): see [`Processor::process_batch`].
    pub fn with_actions_before_commit(mut self) -> Self {
        self.actions_first = true;
        self
    }

    /// Records store latency and actions on `metrics`.
    pub fn with_metrics(mut self, metrics: EngineMetrics) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// The metrics this processor records on, if any.
    pub fn metrics(&self) -> Option<&EngineMetrics> {
        self.metrics.as_ref()
    }

    /// The store this processor commits to.
    pub fn store(&self) -> &Arc<dyn TimerStore> {
        &self.store
    }

    /// Processes one input for `contact` at `now`: a batch of one
    /// ([`process_batch`](Self::process_batch)) without a state cache.
    pub async fn process(
        &self,
        contact: &ContactKey,
        input: Input<'_>,
        now: i64,
    ) -> Result<Processed> {
        let batch = [BatchInput {
            contact,
            input,
            now,
        }];
        let mut processed = self.process_batch(&mut StateCache::new(0), &batch).await?;
        Ok(processed.pop().unwrap_or_default())
    }

    /// Publishes a batch's action records in one call (all sends in flight
    /// together, awaited together), then counts them by type.
    pub(super) async fn publish(&self, records: Vec<Record>, types: Vec<ActionType>) -> Result<()> {
        self.send(records, types).await?.await
    }

    /// Hands a batch's action records to the bus in one call, in order after the
    /// ones sent before; the returned [`Delivery`] resolves once every one is
    /// acknowledged, and counts them by type then.
    pub(super) async fn send(
        &self,
        records: Vec<Record>,
        types: Vec<ActionType>,
    ) -> Result<Delivery> {
        if records.is_empty() {
            return Ok(Box::pin(std::future::ready(Ok(()))));
        }
        let sending = self
            .bus
            .send(&self.actions_topic, records)
            .await
            .map_err(Error::Bus)?;
        let metrics = self.metrics.clone();
        Ok(Box::pin(async move {
            sending.await.map_err(Error::Bus)?;
            if let Some(metrics) = metrics {
                for action_type in types {
                    metrics
                        .actions
                        .with_label_values(&[action_type.as_str()])
                        .inc();
                }
            }
            Ok(())
        }))
    }

    pub(super) async fn commit(
        &self,
        states: &[(ContactKey, StoredState)],
        changes: &TimerChanges,
    ) -> Result<()> {
        if !states.is_empty() || !changes.is_empty() {
            let _timer = self.store_timer("commit");
            self.store
                .commit(states, changes)
                .await
                .map_err(Error::Store)?;
        }
        Ok(())
    }

    pub(super) fn store_timer(&self, operation: &str) -> Option<prometheus::HistogramTimer> {
        self.metrics
            .as_ref()
            .map(|m| m.store.with_label_values(&[operation]).start_timer())
    }
}
