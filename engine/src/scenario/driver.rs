//! What a scenario runs on, behind one interface: the steps of a scenario — start
//! a contact, move virtual time (firing due timers), deliver an event, look at the
//! state — and what each produced. [`EmbeddedDriver`] runs them through the
//! embedded runtime's per-partition path (`sluice flow test`); the end-to-end test
//! (`sluice/tests/scenarios_e2e`) drives the distributed pipeline with the same
//! runner ([`run_with`](super::run_with)), so both are held to the same
//! expectations.

use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use sluice_infra::{
    bus::{EventBus, MemoryBus, TopicSpec},
    store::{ContactKey, MemoryStore, StateStore, StoredState, TimerChanges, TimerStore},
};
use sluice_schemas::{Action, Event};

use super::{Scenario, file::scenario_error};
use crate::{
    Error, Result,
    eval::ContactState,
    runtime::{Clock, Partition, Processed, Processor, TimerConfig, VirtualClock},
};

/// Timers one move may fire before the scenario is stopped as runaway.
const MAX_FIRES_PER_STEP: usize = 10_000;

/// What one move of the clock or one event produced.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Produced {
    /// The actions, in the order they were published.
    pub actions: Vec<Action>,
    /// The events the evaluation emitted; `None` when the driver cannot observe
    /// them (they never leave the engine), and `emitted` expectations are then
    /// not checked.
    pub emitted: Option<Vec<Event>>,
}

impl Produced {
    fn extend(&mut self, processed: Processed) {
        self.actions.extend(processed.output.actions);
        self.emitted
            .get_or_insert_with(Vec::new)
            .extend(processed.output.emitted);
    }
}

/// Runs the steps of a scenario on one pipeline.
#[async_trait]
pub trait Driver: Send {
    /// Starts `scenario`: its flows, its contact, virtual time at its start.
    /// Returns the contact the scenario's events are about (a driver may give it
    /// another tenant, to keep scenarios apart).
    async fn begin(&mut self, scenario: &Scenario) -> Result<ContactKey>;

    /// Stores the contact's initial state (before any event).
    async fn seed(&mut self, state: &ContactState) -> Result<()>;

    /// Moves virtual time forward to `to`, firing every timer due by then, each
    /// at its own due time.
    async fn advance(&mut self, to: i64) -> Result<Produced>;

    /// Delivers an event at the current virtual time and returns what it produced.
    async fn deliver(&mut self, event: &Event) -> Result<Produced>;

    /// The contact's state now (the default state when none is stored).
    async fn state(&mut self) -> Result<ContactState>;
}

/// The embedded runtime's per-contact path ([`Partition`]) on a
/// [`VirtualClock`], an in-memory store and bus: what `sluice flow test` runs.
#[derive(Debug, Default)]
pub struct EmbeddedDriver {
    run: Option<EmbeddedRun>,
}

#[derive(Debug)]
struct EmbeddedRun {
    scenario: std::path::PathBuf,
    clock: VirtualClock,
    store: Arc<MemoryStore>,
    partition: Partition,
    contact: ContactKey,
}

impl EmbeddedDriver {
    fn run(&mut self) -> Result<&mut EmbeddedRun> {
        self.run.as_mut().ok_or_else(|| Error::Scenario {
            file: String::new(),
            message: "the driver was not started".into(),
        })
    }
}

#[async_trait]
impl Driver for EmbeddedDriver {
    async fn begin(&mut self, scenario: &Scenario) -> Result<ContactKey> {
        let store = Arc::new(MemoryStore::default());
        let bus = MemoryBus::new(1);
        bus.ensure_topics(&TopicSpec::sluice_topics(1, 1))
            .await
            .map_err(Error::Bus)?;
        let processor = Processor::new(scenario.flows.clone(), store.clone(), Arc::new(bus));
        let contact = ContactKey::new(
            scenario.file.contact.tenant.as_str(),
            scenario.file.contact.id.as_str(),
        );
        self.run = Some(EmbeddedRun {
            scenario: scenario.path.clone(),
            clock: VirtualClock::new(scenario.start),
            store,
            partition: Partition::new(0, 1, processor, TimerConfig::default()),
            contact: contact.clone(),
        });
        Ok(contact)
    }

    async fn seed(&mut self, state: &ContactState) -> Result<()> {
        let run = self.run()?;
        let stored = StoredState {
            version: 1,
            data: Bytes::from(state.encode()),
        };
        run.store
            .commit(&[(run.contact.clone(), stored)], &TimerChanges::default())
            .await
            .map_err(Error::Store)
    }

    async fn advance(&mut self, to: i64) -> Result<Produced> {
        let run = self.run()?;
        let mut produced = Produced {
            emitted: Some(Vec::new()),
            ..Produced::default()
        };
        let mut fired = 0;
        loop {
            run.partition.load(to.saturating_add(1), usize::MAX).await?;
            match run.partition.next_due() {
                Some(due) if due <= to => {
                    let now = due.max(run.clock.now());
                    run.clock.set(now);
                    if let Some(processed) = run.partition.fire_next(now).await? {
                        produced.extend(processed);
                    }
                    fired += 1;
                    if fired > MAX_FIRES_PER_STEP {
                        return Err(scenario_error(
                            &run.scenario,
                            "more than 10000 timers fired: a runaway loop?",
                        ));
                    }
                }
                _ => break,
            }
        }
        run.clock.set(to);
        Ok(produced)
    }

    async fn deliver(&mut self, event: &Event) -> Result<Produced> {
        let run = self.run()?;
        let mut produced = Produced {
            emitted: Some(Vec::new()),
            ..Produced::default()
        };
        let now = run.clock.now();
        produced.extend(run.partition.handle_event(event, now).await?);
        Ok(produced)
    }

    async fn state(&mut self) -> Result<ContactState> {
        let run = self.run()?;
        match run.store.load(&run.contact).await.map_err(Error::Store)? {
            Some(stored) => ContactState::decode(&stored.data),
            None => Ok(ContactState::default()),
        }
    }
}
