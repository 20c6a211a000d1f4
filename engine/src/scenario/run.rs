//! Runs a scenario on a virtual clock through the embedded runtime's own
//! per-partition path ([`Partition`]): events and due timers take the same
//! per-contact path as in `sluice dev`, against an in-memory store and bus.

use std::sync::Arc;

use bytes::Bytes;
use serde_json::Value;
use sluice_infra::{
    bus::{EventBus, MemoryBus, TopicSpec},
    store::{ContactKey, MemoryStore, StateStore, StoredState, TimerChanges, TimerStore},
};
use sluice_schemas::{Action, Event};

use super::{
    Scenario,
    file::{Step, format_time, parse_millis, parse_time, scenario_error},
    matching::{brief, compare, map_to_pairs, normalize_expected_action, record_view, state_view},
};
use crate::{
    Error, Result,
    eval::ContactState,
    runtime::{Clock, Partition, Processed, Processor, TimerConfig, VirtualClock},
};

/// Timers one step may fire before the scenario is stopped as runaway.
const MAX_FIRES_PER_STEP: usize = 10_000;

/// How one step went wrong.
#[derive(Debug, Clone, PartialEq)]
pub struct StepFailure {
    /// The step's number, from 1 (0 for the final state).
    pub step: usize,
    /// What the step did (`at 2026-01-01T10:00:00Z: event message.received`).
    pub label: String,
    /// Each mismatch, starting with what it concerns.
    pub problems: Vec<String>,
    /// The actions the step actually produced, as JSON.
    pub actual_actions: Vec<String>,
}

/// The result of one scenario.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// The scenario's name.
    pub name: String,
    /// Steps that did not go as expected (empty: passed).
    pub failures: Vec<StepFailure>,
}

impl Outcome {
    /// Whether every expectation held.
    pub fn passed(&self) -> bool {
        self.failures.is_empty()
    }
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for failure in &self.failures {
            if failure.step == 0 {
                writeln!(f, "  final state:")?;
            } else {
                writeln!(f, "  step {} ({}):", failure.step, failure.label)?;
            }
            for problem in &failure.problems {
                writeln!(f, "    - {problem}")?;
            }
            if !failure.actual_actions.is_empty() {
                writeln!(f, "    actual actions:")?;
                for action in &failure.actual_actions {
                    writeln!(f, "      {action}")?;
                }
            }
        }
        Ok(())
    }
}

struct Runner<'a> {
    scenario: &'a Scenario,
    clock: VirtualClock,
    store: Arc<MemoryStore>,
    partition: Partition,
    contact: ContactKey,
    /// The id of the newest action so far, for `${last_action_id}` in events.
    last_action_id: Option<String>,
}

/// Replaces `${last_action_id}` in every string of `value`.
fn substitute(value: &mut Value, last_action_id: Option<&str>) -> std::result::Result<(), String> {
    match value {
        Value::String(text) if text.contains(LAST_ACTION_ID) => {
            let id = last_action_id.ok_or("${last_action_id} used before any action")?;
            *text = text.replace(LAST_ACTION_ID, id);
        }
        Value::Array(items) => {
            for item in items {
                substitute(item, last_action_id)?;
            }
        }
        Value::Object(map) => {
            for item in map.values_mut() {
                substitute(item, last_action_id)?;
            }
        }
        _ => {}
    }
    Ok(())
}

/// In an event, stands for the id of the newest action so far (to answer an
/// `http` or `ai_complete` node with a `function.result` / `ai.result`).
pub const LAST_ACTION_ID: &str = "${last_action_id}";

/// Runs a loaded scenario. `Err` only when the scenario itself is invalid or the
/// runtime failed; unmet expectations are in the [`Outcome`].
pub async fn run(scenario: &Scenario) -> Result<Outcome> {
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
    let mut runner = Runner {
        scenario,
        clock: VirtualClock::new(scenario.start),
        store,
        partition: Partition::new(0, 1, processor, TimerConfig::default()),
        contact,
        last_action_id: None,
    };
    runner.seed().await?;
    let mut failures = Vec::new();
    for (index, step) in scenario.file.steps.iter().enumerate() {
        if let Some(failure) = runner.step(index + 1, step).await? {
            failures.push(failure);
        }
    }
    if let Some(expected) = &scenario.file.final_state {
        let mut problems = Vec::new();
        let state = runner.state_view().await?;
        compare(expected, Some(&state), "state", &mut problems);
        if !problems.is_empty() {
            failures.push(StepFailure {
                step: 0,
                label: "final".into(),
                problems,
                actual_actions: Vec::new(),
            });
        }
    }
    Ok(Outcome {
        name: scenario.file.name.clone(),
        failures,
    })
}

impl Runner<'_> {
    fn fail(&self, step: usize, message: impl std::fmt::Display) -> Error {
        scenario_error(&self.scenario.path, format!("step {step}: {message}"))
    }

    /// Stores the contact's initial state, when the scenario gives one.
    async fn seed(&mut self) -> Result<()> {
        let Some(spec) = &self.scenario.file.contact.state else {
            return Ok(());
        };
        let mut state = serde_json::to_value(ContactState::default())
            .map_err(|e| scenario_error(&self.scenario.path, e.to_string()))?;
        state["created"] = Value::Bool(true);
        state["tenant"] = Value::String(self.contact.tenant.clone());
        state["contact_id"] = Value::String(self.contact.contact_id.clone());
        for (key, value) in spec {
            let mut value = value.clone();
            if key == "fields" {
                map_to_pairs(&mut value);
            }
            if let Value::Array(items) = &mut value
                && matches!(key.as_str(), "tags" | "urns")
            {
                items.sort_by_key(ToString::to_string);
            }
            state[key.as_str()] = value;
        }
        let state: ContactState = serde_json::from_value(state)
            .map_err(|e| scenario_error(&self.scenario.path, format!("contact.state: {e}")))?;
        let stored = StoredState {
            version: 1,
            data: Bytes::from(state.encode()),
        };
        self.store
            .commit(&[(self.contact.clone(), stored)], &TimerChanges::default())
            .await
            .map_err(Error::Store)
    }

    async fn state_view(&self) -> Result<Value> {
        let state = match self.store.load(&self.contact).await.map_err(Error::Store)? {
            Some(stored) => ContactState::decode(&stored.data)?,
            None => ContactState::default(),
        };
        let json = serde_json::to_value(&state).unwrap_or(Value::Null);
        Ok(state_view(&json, &self.scenario.flows))
    }

    /// Fires every timer due up to `to`, each at its own due time, then sets the
    /// clock to `to`.
    async fn advance(&mut self, step: usize, to: i64, out: &mut Vec<Processed>) -> Result<()> {
        let mut fired = 0;
        loop {
            self.partition
                .load(to.saturating_add(1), usize::MAX)
                .await?;
            match self.partition.next_due() {
                Some(due) if due <= to => {
                    let now = due.max(self.clock.now());
                    self.clock.set(now);
                    if let Some(processed) = self.partition.fire_next(now).await? {
                        out.push(processed);
                    }
                    fired += 1;
                    if fired > MAX_FIRES_PER_STEP {
                        return Err(
                            self.fail(step, "more than 10000 timers fired: a runaway loop?")
                        );
                    }
                }
                _ => break,
            }
        }
        self.clock.set(to);
        Ok(())
    }

    fn event(&self, step: usize, spec: &serde_json::Map<String, Value>) -> Result<Event> {
        let mut spec = spec.clone();
        let defaults = [
            ("id", Value::String(format!("scenario-{step}"))),
            ("tenant", Value::String(self.contact.tenant.clone())),
            ("contact_id", Value::String(self.contact.contact_id.clone())),
            ("occurred_at", Value::from(self.clock.now())),
        ];
        for (key, value) in defaults {
            spec.entry(key).or_insert(value);
        }
        let mut spec = Value::Object(spec);
        substitute(&mut spec, self.last_action_id.as_deref()).map_err(|e| self.fail(step, e))?;
        let event: Event =
            serde_json::from_value(spec).map_err(|e| self.fail(step, format!("event: {e}")))?;
        event
            .validate()
            .map_err(|e| self.fail(step, format!("event: {e}")))?;
        Ok(event)
    }

    async fn step(&mut self, index: usize, step: &Step) -> Result<Option<StepFailure>> {
        let now = self.clock.now();
        let mut label = Vec::new();
        let target = match (&step.at, &step.advance) {
            (Some(_), Some(_)) => return Err(self.fail(index, "give `at` or `advance`, not both")),
            (Some(at), None) => Some(parse_time(at, now).map_err(|e| self.fail(index, e))?),
            (None, Some(d)) => Some(now + parse_millis(d).map_err(|e| self.fail(index, e))?),
            (None, None) => None,
        };
        let mut processed = Vec::new();
        if let Some(target) = target {
            if target < now {
                return Err(self.fail(
                    index,
                    format!("time goes backwards to {}", format_time(target)),
                ));
            }
            self.advance(index, target, &mut processed).await?;
        }
        label.push(format!("at {}", format_time(self.clock.now())));
        if let Some(spec) = &step.event {
            let event = self.event(index, spec)?;
            label.push(format!("event {}", event.event_type));
            processed.push(
                self.partition
                    .handle_event(&event, self.clock.now())
                    .await?,
            );
        }
        let actions: Vec<&Action> = processed.iter().flat_map(|p| &p.output.actions).collect();
        if let Some(last) = actions.last() {
            self.last_action_id = Some(last.id.clone());
        }
        let emitted: Vec<&Event> = processed.iter().flat_map(|p| &p.output.emitted).collect();
        let mut problems = Vec::new();
        if let Some(expected) = &step.actions {
            let expected: Vec<Value> = expected
                .iter()
                .map(|e| normalize_expected_action(e, self.clock.now()))
                .collect::<std::result::Result<_, _>>()
                .map_err(|e| self.fail(index, e))?;
            let actual: Vec<Value> = actions.iter().map(|a| record_view(*a)).collect();
            compare(
                &Value::Array(expected),
                Some(&Value::Array(actual)),
                "actions",
                &mut problems,
            );
        }
        if let Some(expected) = &step.emitted {
            let mut remaining: Vec<Value> = emitted.iter().map(|e| record_view(*e)).collect();
            for (i, want) in expected.iter().enumerate() {
                let found = remaining.iter().position(|have| {
                    let mut p = Vec::new();
                    compare(want, Some(have), "", &mut p);
                    p.is_empty()
                });
                match found {
                    Some(at) => {
                        remaining.drain(..=at);
                    }
                    None => problems.push(format!("emitted[{i}]: no emitted event matches {want}")),
                }
            }
        }
        if let Some(expected) = &step.state {
            let state = self.state_view().await?;
            compare(expected, Some(&state), "state", &mut problems);
        }
        Ok((!problems.is_empty()).then(|| StepFailure {
            step: index,
            label: label.join(": "),
            problems,
            actual_actions: actions.iter().map(|a| brief(&record_view(*a))).collect(),
        }))
    }
}
