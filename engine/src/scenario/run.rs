//! Runs a scenario's steps on a [`Driver`] and checks each step's expectations:
//! the embedded runtime ([`run`]) or any other pipeline ([`run_with`]).

use serde_json::Value;
use sluice_infra::store::ContactKey;
use sluice_schemas::Event;

use super::{
    Scenario,
    driver::{Driver, EmbeddedDriver, Produced},
    file::{Step, format_time, parse_millis, parse_time, scenario_error},
    matching::{brief, compare, map_to_pairs, normalize_expected_action, record_view, state_view},
};
use crate::{Error, Result, eval::ContactState};

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
    /// The actions of each step, in order.
    pub steps: Vec<StepActions>,
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

/// The actions one step produced.
#[derive(Debug, Clone, PartialEq)]
pub struct StepActions {
    /// The step's number, from 1.
    pub step: usize,
    /// What the step did (`at 2026-01-01T10:00:00Z: event message.received`).
    pub label: String,
    /// Its actions as matched: JSON, payload unwrapped (see the module docs).
    pub actions: Vec<Value>,
}

struct Runner<'a, D: Driver + ?Sized> {
    scenario: &'a Scenario,
    driver: &'a mut D,
    /// Virtual time now, Unix ms.
    now: i64,
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

/// Runs a loaded scenario on the embedded runtime ([`EmbeddedDriver`]). `Err`
/// only when the scenario itself is invalid or the runtime failed; unmet
/// expectations are in the [`Outcome`].
pub async fn run(scenario: &Scenario) -> Result<Outcome> {
    run_with(&mut EmbeddedDriver::default(), scenario).await
}

/// Runs a loaded scenario on `driver`, checking the same expectations whatever
/// the pipeline; `emitted` expectations are checked only when the driver can
/// observe emitted events.
pub async fn run_with<D: Driver + ?Sized>(driver: &mut D, scenario: &Scenario) -> Result<Outcome> {
    let contact = driver.begin(scenario).await?;
    if let Some(state) = initial_state(scenario, &contact)? {
        driver.seed(&state).await?;
    }
    let mut runner = Runner {
        scenario,
        driver,
        now: scenario.start,
        contact,
        last_action_id: None,
    };
    let mut failures = Vec::new();
    let mut steps = Vec::new();
    for (index, step) in scenario.file.steps.iter().enumerate() {
        let (actions, failure) = runner.step(index + 1, step).await?;
        steps.push(actions);
        failures.extend(failure);
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
        steps,
    })
}

/// The contact's initial state, when the scenario gives one, for `contact`.
fn initial_state(scenario: &Scenario, contact: &ContactKey) -> Result<Option<ContactState>> {
    let Some(spec) = &scenario.file.contact.state else {
        return Ok(None);
    };
    let mut state = serde_json::to_value(ContactState::default())
        .map_err(|e| scenario_error(&scenario.path, e.to_string()))?;
    state["created"] = Value::Bool(true);
    state["tenant"] = Value::String(contact.tenant.clone());
    state["contact_id"] = Value::String(contact.contact_id.clone());
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
    serde_json::from_value(state)
        .map(Some)
        .map_err(|e| scenario_error(&scenario.path, format!("contact.state: {e}")))
}

impl<D: Driver + ?Sized> Runner<'_, D> {
    fn fail(&self, step: usize, message: impl std::fmt::Display) -> Error {
        scenario_error(&self.scenario.path, format!("step {step}: {message}"))
    }

    async fn state_view(&mut self) -> Result<Value> {
        let state = self.driver.state().await?;
        let json = serde_json::to_value(&state).unwrap_or(Value::Null);
        Ok(state_view(&json, &self.scenario.flows))
    }

    fn event(&self, step: usize, spec: &serde_json::Map<String, Value>) -> Result<Event> {
        let mut spec = spec.clone();
        let defaults = [
            ("id", Value::String(format!("scenario-{step}"))),
            ("tenant", Value::String(self.contact.tenant.clone())),
            ("contact_id", Value::String(self.contact.contact_id.clone())),
            ("occurred_at", Value::from(self.now)),
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

    async fn step(
        &mut self,
        index: usize,
        step: &Step,
    ) -> Result<(StepActions, Option<StepFailure>)> {
        let now = self.now;
        let mut label = Vec::new();
        let target = match (&step.at, &step.advance) {
            (Some(_), Some(_)) => return Err(self.fail(index, "give `at` or `advance`, not both")),
            (Some(at), None) => Some(parse_time(at, now).map_err(|e| self.fail(index, e))?),
            (None, Some(d)) => Some(now + parse_millis(d).map_err(|e| self.fail(index, e))?),
            (None, None) => None,
        };
        let mut actions = Vec::new();
        let mut emitted = Some(Vec::new());
        let mut take = |produced: Produced| {
            actions.extend(produced.actions);
            match (&mut emitted, produced.emitted) {
                (Some(all), Some(more)) => all.extend(more),
                (_, None) => emitted = None,
                (None, Some(_)) => {}
            }
        };
        if let Some(target) = target {
            if target < now {
                return Err(self.fail(
                    index,
                    format!("time goes backwards to {}", format_time(target)),
                ));
            }
            take(self.driver.advance(target).await?);
            self.now = target;
        }
        label.push(format!("at {}", format_time(self.now)));
        if let Some(spec) = &step.event {
            let event = self.event(index, spec)?;
            label.push(format!("event {}", event.event_type));
            take(self.driver.deliver(&event).await?);
        }
        if let Some(last) = actions.last() {
            self.last_action_id = Some(last.id.clone());
        }
        let views: Vec<Value> = actions.iter().map(record_view).collect();
        let mut problems = Vec::new();
        if let Some(expected) = &step.actions {
            let expected: Vec<Value> = expected
                .iter()
                .map(|e| normalize_expected_action(e, self.now))
                .collect::<std::result::Result<_, _>>()
                .map_err(|e| self.fail(index, e))?;
            compare(
                &Value::Array(expected),
                Some(&Value::Array(views.clone())),
                "actions",
                &mut problems,
            );
        }
        if let (Some(expected), Some(emitted)) = (&step.emitted, &emitted) {
            let mut remaining: Vec<Value> = emitted.iter().map(record_view).collect();
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
        let label = label.join(": ");
        let failure = (!problems.is_empty()).then(|| StepFailure {
            step: index,
            label: label.clone(),
            problems,
            actual_actions: views.iter().map(brief).collect(),
        });
        Ok((
            StepActions {
                step: index,
                label,
                actions: views,
            },
            failure,
        ))
    }
}
