//! A batch of inputs through the per-contact path, with one round of I/O for all
//! of them: the states of the batch's contacts loaded at once (those not in the
//! partition's [`StateCache`]), every input evaluated in order, then one publish
//! of all actions, one store commit of all states (one write per contact) and
//! netted timer changes ([`TimerNet`]), in the order the input log calls for.
//!
//! The result is the same as processing the inputs one by one: each contact's
//! inputs are evaluated in order on the state the previous one left, its version
//! grows by one per applied input, a duplicate or stale input changes nothing,
//! and a fired timer is checked against the store and the batch's own earlier
//! changes, so a timer cancelled or moved earlier in the batch does not fire.

use std::{collections::HashMap, sync::Arc};

use bytes::Bytes;
use futures::future::try_join_all;
use sluice_infra::{
    bus::Record,
    store::{ContactKey, StoredState, TimerChanges, TimerEntry, TimerId},
};
use sluice_schemas::ActionType;

use super::{Cached, Processed, Processor, StateCache, net::TimerNet};
use crate::{
    Error, Result,
    eval::{ContactState, Disposition, Input, TimerFired},
};

/// One input of a batch: whose it is, what it is, and the time to evaluate it at.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BatchInput<'a> {
    /// The contact.
    pub contact: &'a ContactKey,
    /// An event, or a timer that came due.
    pub input: Input<'a>,
    /// The evaluation's `now`.
    pub now: i64,
}

/// A batch evaluated whose effects are not durable yet: its actions to publish,
/// its states and timer changes to commit, and its contacts' states after it (for
/// the cache once committed, and for the next batch while the commit runs).
#[derive(Debug, Default)]
pub struct Staged {
    /// Each changed contact's last state, as written.
    pub(super) states: Vec<(ContactKey, StoredState)>,
    /// The batch's timer changes, netted.
    pub(super) changes: TimerChanges,
    /// The changed contacts' states after the batch.
    working: HashMap<ContactKey, Cached>,
    /// The timers the batch changed: set with this due time, or retired (`None`).
    timers: HashMap<TimerId, Option<i64>>,
    /// The batch's actions, encoded, and their types.
    pub(super) records: Vec<Record>,
    pub(super) types: Vec<ActionType>,
}

impl Staged {
    /// Whether `timer` is pending after this batch, when the batch changed it.
    fn pending(&self, timer: &TimerEntry) -> Option<bool> {
        self.timers
            .get(&timer.id())
            .map(|due| *due == Some(timer.due_at))
    }

    /// The changed contacts' states after the batch.
    pub(super) fn states_after(&self) -> impl Iterator<Item = (&ContactKey, &Cached)> {
        self.working.iter()
    }

    /// Hands the batch's states to `cache`, once they are durable.
    pub(super) fn into_cache(self, cache: &mut StateCache) {
        for (key, cached) in self.working {
            cache.put(key, cached);
        }
    }
}

/// What evaluating a batch yields: each input's result, the changed contacts'
/// states as written, the timer changes, and the actions (encoded) with their types.
type Evaluated = (
    Vec<Processed>,
    Vec<(ContactKey, StoredState)>,
    TimerNet,
    Vec<Record>,
    Vec<ActionType>,
);

/// A contact's state while its batch runs.
struct Working {
    key: ContactKey,
    cached: Cached,
    /// Whether an input was applied to it (so it is written).
    applied: bool,
}

fn timer_entry(contact: &ContactKey, fired: &TimerFired) -> TimerEntry {
    TimerEntry {
        due_at: fired.due_at,
        contact: contact.clone(),
        run: fired.key.run,
        token: fired.key.token,
    }
}

fn timer_id(contact: &ContactKey, run: u64, token: u32) -> TimerId {
    TimerId {
        contact: contact.clone(),
        run,
        token,
    }
}

impl Processor {
    /// Processes `inputs` in order and makes their effects durable together; see
    /// the module docs. Returns what each input did, in order (a timer that is no
    /// longer pending yields an empty [`Processed`]).
    ///
    /// With [`with_actions_before_commit`](Self::with_actions_before_commit), all
    /// actions are published (acknowledged) before the states and timers are
    /// committed: a crash in between replays the inputs on the old states, which
    /// yields the same actions (same ids, deduped by the action workers); the other
    /// order would lose them, since the replay would see duplicates. Without it (the
    /// embedded bus, which does not replay), the durable state goes first.
    ///
    /// On error nothing is acknowledged and the contacts the batch changed leave
    /// `cache` (the store may hold part of the commit), so a retry loads them again.
    /// An error of one input (an undecodable stored state, an action that cannot be
    /// encoded) fails the whole batch before any I/O; the caller can then process
    /// the inputs one by one to isolate it.
    pub async fn process_batch(
        &self,
        cache: &mut StateCache,
        inputs: &[BatchInput<'_>],
    ) -> Result<Vec<Processed>> {
        let (processed, mut staged) = self.stage(cache, &[], inputs).await?;
        let (records, types) = (
            std::mem::take(&mut staged.records),
            std::mem::take(&mut staged.types),
        );
        if self.actions_first {
            self.publish(records, types).await?;
            self.commit(&staged.states, &staged.changes).await?;
        } else {
            self.commit(&staged.states, &staged.changes).await?;
            self.publish(records, types).await?;
        }
        staged.into_cache(cache);
        Ok(processed)
    }

    /// Evaluates `inputs` in order, without publishing or committing anything:
    /// loads the states of the batch's contacts (from `before` — staged batches
    /// whose commits have not finished, oldest first; the newest that has the
    /// contact wins — then `cache`, then the store) and checks its fired timers
    /// (against `before`, newest first, then the store). The contacts the batch
    /// changes leave `cache` for the returned [`Staged`]; the others stay.
    pub async fn stage(
        &self,
        cache: &mut StateCache,
        before: &[Arc<Staged>],
        inputs: &[BatchInput<'_>],
    ) -> Result<(Vec<Processed>, Staged)> {
        let mut index: HashMap<&ContactKey, usize> = HashMap::new();
        let mut working: Vec<Option<Working>> = Vec::new();
        let mut missing: Vec<ContactKey> = Vec::new();
        for input in inputs {
            if index.contains_key(input.contact) {
                continue;
            }
            index.insert(input.contact, working.len());
            let staged = before
                .iter()
                .rev()
                .find_map(|b| b.working.get(input.contact));
            let cached = match staged {
                Some(staged) => Some(staged.clone()),
                None => cache.take(input.contact),
            };
            if cached.is_none() {
                missing.push(input.contact.clone());
            }
            working.push(cached.map(|cached| Working {
                key: input.contact.clone(),
                cached,
                applied: false,
            }));
        }
        let result = self
            .evaluate_batch(inputs, before, &index, &mut working, &missing)
            .await;
        let mut staged = Staged::default();
        for state in working.into_iter().flatten() {
            if !state.applied {
                // Unchanged: still the durable state (or the staged one before).
                if !before.iter().any(|b| b.working.contains_key(&state.key)) {
                    cache.put(state.key, state.cached);
                }
            } else if result.is_ok() {
                staged.working.insert(state.key, state.cached);
            }
        }
        let (processed, states, net, records, types) = result?;
        staged.states = states;
        staged.changes = net.into_changes();
        for timer in &staged.changes.set {
            staged.timers.insert(timer.id(), Some(timer.due_at));
        }
        for id in &staged.changes.cancel {
            staged.timers.insert(id.clone(), None);
        }
        staged.records = records;
        staged.types = types;
        Ok((processed, staged))
    }

    async fn evaluate_batch(
        &self,
        inputs: &[BatchInput<'_>],
        before: &[Arc<Staged>],
        index: &HashMap<&ContactKey, usize>,
        working: &mut [Option<Working>],
        missing: &[ContactKey],
    ) -> Result<Evaluated> {
        let fired: Vec<TimerEntry> = inputs
            .iter()
            .filter_map(|i| match &i.input {
                Input::Timer(fired) => Some(timer_entry(i.contact, fired)),
                Input::Event(_) => None,
            })
            .collect();
        let loaded = async {
            if missing.is_empty() {
                return Ok(Vec::new());
            }
            let _timer = self.store_timer("load");
            self.store.load_many(missing).await
        };
        let present = try_join_all(fired.iter().map(|timer| self.store.contains(timer)));
        let (loaded, present) = futures::try_join!(loaded, present).map_err(Error::Store)?;
        for (key, stored) in missing.iter().zip(loaded) {
            let cached = match stored {
                Some(stored) => Cached {
                    state: ContactState::decode(&stored.data)?,
                    version: stored.version,
                },
                None => Cached {
                    state: ContactState::default(),
                    version: 0,
                },
            };
            if let Some(slot) = index.get(key).and_then(|&i| working.get_mut(i)) {
                *slot = Some(Working {
                    key: key.clone(),
                    cached,
                    applied: false,
                });
            }
        }

        let mut net = TimerNet::default();
        let mut records = Vec::new();
        let mut types = Vec::new();
        let mut processed = Vec::with_capacity(inputs.len());
        let mut present = present.into_iter();
        for input in inputs {
            let contact = input.contact;
            let Some(state) = index
                .get(contact)
                .and_then(|&i| working.get_mut(i))
                .and_then(Option::as_mut)
            else {
                return Err(Error::State(format!("no state loaded for {contact}")));
            };
            if let Input::Timer(fired) = &input.input {
                let timer = timer_entry(contact, fired);
                let in_store = present.next().unwrap_or(false);
                let pending = net
                    .pending(&timer)
                    .or_else(|| before.iter().rev().find_map(|b| b.pending(&timer)))
                    .unwrap_or(in_store);
                if !pending {
                    // Cancelled, moved or fired already: it does not fire (again).
                    processed.push(Processed::default());
                    continue;
                }
                // A fired timer is retired in the same commit as the state it produced.
                net.cancel(timer.id());
            }
            // The evaluator changes nothing for a duplicate or a stale timer, so the
            // state carries on to the contact's next input as it was.
            let output = self.evaluator.evaluate_for(
                contact,
                &mut state.cached.state,
                input.input,
                input.now,
            );
            if output.disposition == Disposition::Applied {
                // One contact's inputs are processed in order by one worker, so a
                // counter per contact is its input position.
                state.cached.version += 1;
                state.applied = true;
            }
            for key in &output.timers_cancelled {
                net.cancel(timer_id(contact, key.run, key.token));
            }
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
            for timer in &timers_set {
                net.set(timer.clone());
            }
            for action in &output.actions {
                let payload = action
                    .encode()
                    .map_err(|e| Error::Action(action.id.clone(), e.to_string()))?;
                records.push(Record::new(action.key(), payload));
                types.push(action.action_type);
            }
            processed.push(Processed { output, timers_set });
        }

        let states: Vec<(ContactKey, StoredState)> = working
            .iter()
            .flatten()
            .filter(|w| w.applied)
            .map(|w| {
                (
                    w.key.clone(),
                    StoredState {
                        version: w.cached.version,
                        data: Bytes::from(w.cached.state.encode()),
                    },
                )
            })
            .collect();
        Ok((processed, states, net, records, types))
    }
}
