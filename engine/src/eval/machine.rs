//! One evaluation in progress: the contact's state, the output being built, and the
//! queue of internal events (`flow.started`, `contact.field_updated`, …) that are
//! processed inside the same call, bounded by the chain-depth limit.

use std::collections::VecDeque;

use chrono_tz::Tz;
use sluice_schemas::{Action, ActionPayload, ActionType, Event, EventType, Payload};

use super::conditions::Scope;
use super::context::context;
use super::ids::action_id;
use super::run::Run;
use super::state::ContactState;
use super::{FlowSet, Output, Timer, TimerKey};
use crate::flow::{CompiledFlow, Text};

/// How deep flows may trigger each other (an input's `chain_depth` plus the internal
/// depth of this evaluation) before a start is refused with `flow.failed`.
pub const MAX_CHAIN_DEPTH: u32 = 16;

/// Work queued inside one evaluation.
pub(crate) enum Work {
    /// An internal event at an internal depth.
    Event(Box<Event>, u32),
    /// A run started by another (a sub-flow) that has not been advanced yet, with the
    /// event that started it.
    Advance(u64, Box<Event>, u32),
}

/// The evaluation in progress.
pub(crate) struct Machine<'f, 's> {
    pub(crate) flows: &'f FlowSet,
    pub(crate) state: &'s mut ContactState,
    pub(crate) now: i64,
    pub(crate) out: Output,
    pub(crate) queue: VecDeque<Work>,
    /// The input's chain depth.
    pub(crate) base_depth: u32,
    /// Names internal events: the input's id or timer key.
    pub(crate) input_tag: String,
    seq: u32,
    /// Runs started by this input so far, per flow: with the input's tag and the
    /// flow, what seeds a run's action ids (see [`Machine::new_run`]).
    pub(crate) started: Vec<(Box<str>, u32)>,
    /// Profile fields or the time zone changed (schedules must be recomputed).
    pub(crate) profile_dirty: bool,
}

impl<'f, 's> Machine<'f, 's> {
    pub(crate) fn new(
        flows: &'f FlowSet,
        state: &'s mut ContactState,
        now: i64,
        input_tag: String,
        base_depth: u32,
    ) -> Self {
        Machine {
            flows,
            state,
            now,
            out: Output::default(),
            queue: VecDeque::new(),
            base_depth,
            input_tag,
            seq: 0,
            started: Vec::new(),
            profile_dirty: false,
        }
    }

    /// The contact's zone, else the flow's.
    pub(crate) fn tz(&self, flow: &CompiledFlow) -> Tz {
        self.state
            .timezone
            .as_deref()
            .and_then(|z| z.parse::<Tz>().ok())
            .unwrap_or(flow.settings.timezone)
    }

    /// A condition scope.
    pub(crate) fn scope<'a>(
        &'a self,
        flow: &CompiledFlow,
        event: &'a Event,
        vars: &'a [(Box<str>, Box<str>)],
    ) -> Scope<'a> {
        Scope {
            state: self.state,
            event,
            vars,
            now: self.now,
            tz: self.tz(flow),
        }
    }

    /// Renders a text for a run; literal texts are copied, never rendered.
    pub(crate) fn render(
        &self,
        flow: &CompiledFlow,
        run: &Run,
        event: &Event,
        text: &Text,
    ) -> Result<String, String> {
        match text {
            Text::Literal(s) => Ok(s.clone()),
            Text::Template { .. } => flow
                .render(text, &context(self.state, flow, run, event, self.now))
                .map_err(|e| e.to_string()),
        }
    }

    /// Renders a template that the compiler kept as plain text (rare: a
    /// `send_template` language), in a sandboxed environment with bounded fuel.
    pub(crate) fn render_str(
        &self,
        flow: &CompiledFlow,
        run: &Run,
        event: &Event,
        source: &str,
    ) -> Result<String, String> {
        let mut env = minijinja::Environment::new();
        env.set_fuel(Some(crate::flow::TEMPLATE_FUEL));
        env.render_str(source, context(self.state, flow, run, event, self.now))
            .map_err(|e| e.to_string())
    }

    /// Builds an internal event about this contact.
    pub(crate) fn internal(
        &mut self,
        event_type: EventType,
        payload: Payload,
        session: Option<sluice_schemas::Session>,
        depth: u32,
    ) -> Event {
        self.seq += 1;
        Event {
            id: format!("{}#{}", self.input_tag, self.seq),
            tenant: self.state.tenant.to_string(),
            contact_id: self.state.contact_id.to_string(),
            event_type,
            occurred_at: self.now,
            session,
            origin: None,
            chain_depth: i32::try_from(self.base_depth + depth).unwrap_or(i32::MAX),
            payload,
        }
    }

    /// Queues an internal event for processing in this evaluation (and for `emitted`).
    pub(crate) fn raise(&mut self, event: Event, depth: u32) {
        self.queue.push_back(Work::Event(Box::new(event), depth));
    }

    /// Emits an event observers see but this evaluation does not process.
    pub(crate) fn emit_only(&mut self, event: Event) {
        self.out.emitted.push(event);
    }

    /// Adds an action of `run` at its next step.
    pub(crate) fn action(
        &mut self,
        run: &mut Run,
        node_id: &str,
        action_type: ActionType,
        payload: ActionPayload,
        not_before: Option<i64>,
        depth: u32,
    ) -> String {
        let id = action_id(
            &self.state.tenant,
            &self.state.contact_id,
            run.seed,
            run.step,
        );
        run.step = run.step.wrapping_add(1);
        self.out.actions.push(Action {
            id: id.clone(),
            tenant: self.state.tenant.to_string(),
            contact_id: self.state.contact_id.to_string(),
            run_id: run.public_id(),
            flow_id: run.flow.to_string(),
            flow_version: i32::try_from(run.version).unwrap_or(i32::MAX),
            node_id: node_id.to_owned(),
            action_type,
            created_at: self.now,
            not_before,
            chain_depth: i32::try_from(self.base_depth + depth).unwrap_or(i32::MAX),
            payload,
        });
        id
    }

    /// Sets a timer.
    pub(crate) fn set_timer(&mut self, key: TimerKey, due_at: i64) {
        self.out.timers_set.push(Timer { due_at, key });
    }

    /// Cancels a timer.
    pub(crate) fn cancel_timer(&mut self, key: TimerKey) {
        self.out.timers_set.retain(|t| t.key != key);
        self.out.timers_cancelled.push(key);
    }
}
