//! The per-contact path every input takes — an event from the bus or a timer
//! that came due: load the contact's state, evaluate, make the state and timer
//! changes durable in one store commit, and publish the actions to
//! `sluice.actions` (acknowledged). The input's offset is committed only after both.

use std::sync::Arc;

use bytes::Bytes;
use sluice_infra::{
    bus::{EventBus, Record, topics},
    store::{ContactKey, StoredState, TimerChanges, TimerEntry, TimerId, TimerStore},
};

use super::{EngineMetrics, Evaluator};
use crate::{
    Error, Result,
    eval::{ContactState, Disposition, Input, Output},
};

/// Runs inputs through the evaluator for one contact at a time.
#[derive(Clone)]
pub struct Processor {
    evaluator: Arc<dyn Evaluator>,
    store: Arc<dyn TimerStore>,
    bus: Arc<dyn EventBus>,
    actions_topic: String,
    metrics: Option<EngineMetrics>,
    actions_first: bool,
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

    /// Publishes each input's actions before committing its state, for an input log
    /// that replays uncommitted inputs (Kafka): see [`Processor::process`].
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

    /// Processes one input for `contact` at `now`: commits its state and timer
    /// changes and publishes its actions (acknowledged), in the order the input log
    /// calls for ([`with_actions_before_commit`](Self::with_actions_before_commit)).
    /// A fired timer is removed in the same commit as the state it produced, so it
    /// fires once.
    pub async fn process(
        &self,
        contact: &ContactKey,
        input: Input<'_>,
        now: i64,
    ) -> Result<Processed> {
        let timer = self.store_timer("load");
        let stored = self.store.load(contact).await.map_err(Error::Store)?;
        drop(timer);
        let (mut state, version) = match &stored {
            Some(stored) => (ContactState::decode(&stored.data)?, stored.version),
            None => (ContactState::default(), 0),
        };
        let output = self.evaluator.evaluate_for(contact, &mut state, input, now);

        let timers_set: Vec<TimerEntry> = output
            .timers_set
            .iter()
            .map(|t| TimerEntry {
                due_at: t.due_at,
                contact: contact.clone(),
                run: t.key.run,
                token: t.key.token,
            })
            .collect();
        let mut cancel: Vec<TimerId> = output
            .timers_cancelled
            .iter()
            .map(|key| TimerId {
                contact: contact.clone(),
                run: key.run,
                token: key.token,
            })
            .collect();
        if let Input::Timer(fired) = input {
            cancel.insert(
                0,
                TimerId {
                    contact: contact.clone(),
                    run: fired.key.run,
                    token: fired.key.token,
                },
            );
        }
        let states = match output.disposition {
            Disposition::Applied => vec![(
                contact.clone(),
                StoredState {
                    // One contact's inputs are processed in order by one worker, so
                    // a counter per contact is its input position.
                    version: version + 1,
                    data: Bytes::from(state.encode()),
                },
            )],
            Disposition::Duplicate | Disposition::StaleTimer => Vec::new(),
        };
        let changes = TimerChanges {
            set: timers_set.clone(),
            cancel,
        };
        // With a replayable input log (Kafka), actions go first, then the state
        // that records the input as applied: a crash in between replays the input
        // on the old state, which yields the same actions (same ids, deduped by the
        // action workers); the other order would lose them, since the replay would
        // see a duplicate. Without one (the embedded bus), the durable state goes
        // first, so that a crash cannot lose a timer whose action was printed.
        if self.actions_first {
            self.publish(&output).await?;
            self.commit(&states, &changes).await?;
        } else {
            self.commit(&states, &changes).await?;
            self.publish(&output).await?;
        }
        Ok(Processed { output, timers_set })
    }

    async fn publish(&self, output: &Output) -> Result<()> {
        if !output.actions.is_empty() {
            let mut records = Vec::with_capacity(output.actions.len());
            for action in &output.actions {
                let payload = action
                    .encode()
                    .map_err(|e| Error::Action(action.id.clone(), e.to_string()))?;
                records.push(Record::new(action.key(), payload));
            }
            self.bus
                .publish(&self.actions_topic, records)
                .await
                .map_err(Error::Bus)?;
            if let Some(metrics) = &self.metrics {
                for action in &output.actions {
                    metrics
                        .actions
                        .with_label_values(&[action.action_type.as_str()])
                        .inc();
                }
            }
        }
        Ok(())
    }

    async fn commit(
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

    fn store_timer(&self, operation: &str) -> Option<prometheus::HistogramTimer> {
        self.metrics
            .as_ref()
            .map(|m| m.store.with_label_values(&[operation]).start_timer())
    }
}
