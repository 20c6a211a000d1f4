//! The per-contact path every input takes — an event from the bus or a timer
//! that came due: load the contact's state, evaluate, then make all of the
//! input's effects durable together (state and timer changes in one store
//! commit) and publish its actions to `sluice.actions`.

use std::sync::Arc;

use bytes::Bytes;
use sluice_infra::{
    bus::{EventBus, Record, topics},
    store::{ContactKey, StoredState, TimerChanges, TimerEntry, TimerId, TimerStore},
};

use super::Evaluator;
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
        }
    }

    /// The store this processor commits to.
    pub fn store(&self) -> &Arc<dyn TimerStore> {
        &self.store
    }

    /// Processes one input for `contact` at `now`. A fired timer (`fired`) is removed
    /// in the same commit as the state it produced, so it fires once.
    pub async fn process(
        &self,
        contact: &ContactKey,
        input: Input<'_>,
        now: i64,
    ) -> Result<Processed> {
        let stored = self.store.load(contact).await.map_err(Error::Store)?;
        let (mut state, version) = match &stored {
            Some(stored) => (ContactState::decode(&stored.data)?, stored.version),
            None => (ContactState::default(), 0),
        };
        let output = self.evaluator.evaluate(&mut state, input, now);

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
        if !states.is_empty() || !changes.is_empty() {
            self.store
                .commit(&states, &changes)
                .await
                .map_err(Error::Store)?;
        }
        if !output.actions.is_empty() {
            let mut records = Vec::with_capacity(output.actions.len());
            for action in &output.actions {
                let payload = action
                    .encode()
                    .map_err(|e| Error::Action(action.id.clone(), e.to_string()))?;
                records.push(Record::new(action.key(), payload));
            }
            self.bus
                .publish(topics::ACTIONS, records)
                .await
                .map_err(Error::Bus)?;
        }
        Ok(Processed { output, timers_set })
    }
}
