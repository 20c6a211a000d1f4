//! Moving runs: start one, advance it until it waits or ends (bounded by the flow's step
//! limit), resume a waiting one through an exit, and finish it with `flow.completed` or
//! `flow.failed`.

use std::collections::BTreeMap;

use sluice_schemas::{Event, EventType, FlowPayload, Payload};

use super::ids::stable_hash;
use super::machine::{Machine, Work};
use super::nodes;
use super::run::{FIRST_RUN_ID, Run, Wait};
use crate::flow::{CompiledFlow, FlowKind, NodeIndex};

/// What a node tells the walk.
pub(crate) enum Step {
    /// Continue through the exit in this slot.
    Next(usize),
    /// Stop and wait.
    Wait(Wait),
    /// End the run with this outcome.
    End(String),
    /// Fail the run with this reason.
    Fail(String),
}

/// How a run ended.
pub(crate) enum Ending {
    /// `flow.completed` with an outcome.
    Completed(String),
    /// `flow.failed` with a reason.
    Failed(String),
}

/// What a new run starts with besides its flow.
pub(crate) struct Start {
    pub(crate) entry: NodeIndex,
    pub(crate) session: Option<Box<str>>,
    pub(crate) parent: Option<u64>,
    pub(crate) vars: Vec<(Box<str>, Box<str>)>,
}

impl Machine<'_, '_> {
    /// Takes back the newest run of `flow` this input started (it was not kept).
    pub(crate) fn forget_started(&mut self, flow: &str) {
        if let Some(at) = self.started.iter().position(|(f, _)| **f == *flow) {
            match self.started[at].1.checked_sub(1) {
                Some(n) => self.started[at].1 = n,
                None => {
                    self.started.swap_remove(at);
                }
            }
        }
    }

    /// Creates a run (not yet stored or advanced).
    ///
    /// The run's seed — its public id, and so its action ids — depends only on the
    /// input (its tag), the flow and how many runs of that flow this input started
    /// before, not on the contact's run counter: a replayed input re-emits the same
    /// action ids even when a timer fired on one side of it the first time and on
    /// the other side on replay (timers follow processing time, not the log).
    pub(crate) fn new_run(&mut self, flow: &CompiledFlow, start: Start) -> Run {
        let id = self.state.next_run.max(FIRST_RUN_ID);
        self.state.next_run = id.wrapping_add(1);
        let ordinal = match self.started.iter_mut().find(|(f, _)| **f == *flow.id) {
            Some((_, n)) => {
                *n += 1;
                *n
            }
            None => {
                self.started.push((flow.id.as_str().into(), 0));
                0
            }
        };
        let seed = stable_hash(&[
            self.state.tenant.as_bytes(),
            self.state.contact_id.as_bytes(),
            self.input_tag.as_bytes(),
            flow.id.as_bytes(),
            &ordinal.to_le_bytes(),
        ]);
        let flow_id = self
            .flows
            .interned(&flow.id)
            .cloned()
            .unwrap_or_else(|| flow.id.as_str().into());
        Run {
            id,
            seed,
            flow: flow_id,
            version: flow.version,
            node: start.entry.0,
            token: 0,
            step: 0,
            started_at: self.now,
            wait: None,
            vars: start.vars,
            session: start.session,
            extra: start.parent.map(|p| {
                Box::new(super::run::RunExtra {
                    parent: Some(p),
                    ..Default::default()
                })
            }),
            bot: flow.kind == FlowKind::Bot,
        }
    }

    /// Records a new run's start, raises `flow.started`, and advances it now or (for a
    /// sub-flow, after its parent has reached its wait) later.
    pub(crate) fn begin(
        &mut self,
        mut run: Run,
        flow: &CompiledFlow,
        event: &Event,
        depth: u32,
        now: bool,
    ) {
        self.state.record_start(&run.flow, self.now);
        if event.event_type != EventType::WaitExpired
            && self.flows.remembers_trigger(&flow.id, flow.version)
        {
            run.extra_mut().trigger = serde_json::to_string(event).ok().map(Into::into);
        }
        let payload = self.flow_payload(&run, None, None);
        let started = self.internal(EventType::FlowStarted, payload, None, depth + 1);
        self.raise(started, depth + 1);
        if now {
            self.advance(run, flow, event, depth);
        } else {
            let id = run.id;
            self.state.insert_run(run);
            self.queue
                .push_back(Work::Advance(id, Box::new(event.clone()), depth));
        }
    }

    /// Advances a run until it waits or ends.
    pub(crate) fn advance(&mut self, mut run: Run, flow: &CompiledFlow, event: &Event, depth: u32) {
        let limit = flow.settings.step_limit;
        let mut visited = 0u32;
        loop {
            visited += 1;
            let Some(node) = flow.nodes.get(run.node as usize) else {
                let reason = format!(
                    "flow {} v{}: run is at node #{} which does not exist",
                    flow.id, flow.version, run.node
                );
                return self.finish(run, Ending::Failed(reason), depth);
            };
            if visited > limit {
                let reason = format!(
                    "flow {}: step limit of {limit} nodes reached at node {} without waiting",
                    flow.id, node.id
                );
                return self.finish(run, Ending::Failed(reason), depth);
            }
            match nodes::exec(self, &mut run, flow, node, event, depth) {
                Step::Next(slot) => match node.exits.get(slot).copied().flatten() {
                    Some(next) => run.node = next.0,
                    None => return self.finish(run, Ending::Completed("completed".into()), depth),
                },
                Step::Wait(wait) => {
                    run.token = run.token.wrapping_add(1);
                    if let Some(due) = wait.due {
                        self.set_timer(run.timer_key(), due);
                    }
                    run.wait = Some(wait);
                    self.state.insert_run(run);
                    return;
                }
                Step::End(outcome) => return self.finish(run, Ending::Completed(outcome), depth),
                Step::Fail(reason) => {
                    let reason = format!("flow {}: node {}: {reason}", flow.id, node.id);
                    return self.finish(run, Ending::Failed(reason), depth);
                }
            }
        }
    }

    /// Takes the waiting run at `index` out through exit `slot` and advances it.
    /// `timer_fired` says whether its timer is the reason (otherwise it is cancelled).
    pub(crate) fn resume(
        &mut self,
        index: usize,
        slot: usize,
        event: &Event,
        depth: u32,
        timer_fired: bool,
    ) {
        let mut run = self.state.runs.remove(index);
        if let Some(wait) = run.wait.take()
            && wait.due.is_some()
            && !timer_fired
        {
            self.cancel_timer(run.timer_key());
        }
        let flows = self.flows;
        let Some(flow) = flows.version(&run.flow, run.version) else {
            return self.version_missing(run, depth);
        };
        let Some(node) = flow.nodes.get(run.node as usize) else {
            let reason = format!(
                "flow {} v{}: run is at node #{} which does not exist",
                flow.id, flow.version, run.node
            );
            return self.finish(run, Ending::Failed(reason), depth);
        };
        match node.exits.get(slot).copied().flatten() {
            Some(next) => {
                run.node = next.0;
                // A run resumed by its own timer sees the event that started it.
                let trigger = run
                    .trigger()
                    .filter(|_| timer_fired)
                    .and_then(|t| serde_json::from_str::<Event>(t).ok());
                self.advance(run, flow, trigger.as_ref().unwrap_or(event), depth);
            }
            None => self.finish(run, Ending::Completed("completed".into()), depth),
        }
    }

    /// Ends the run at `index` from outside (goal, exit, session closed).
    pub(crate) fn end_run(&mut self, index: usize, ending: Ending, depth: u32) {
        let mut run = self.state.runs.remove(index);
        if let Some(wait) = run.wait.take()
            && wait.due.is_some()
        {
            self.cancel_timer(run.timer_key());
        }
        self.finish(run, ending, depth);
    }

    /// Fails a run whose pinned version is no longer loaded, rather than stranding it.
    pub(crate) fn version_missing(&mut self, run: Run, depth: u32) {
        let reason = format!(
            "flow {} version {} is no longer loaded; the run cannot continue",
            run.flow, run.version
        );
        self.finish(run, Ending::Failed(reason), depth);
    }

    /// Finishes a run (already out of the state): `flow.completed` or `flow.failed`,
    /// carrying its variables as outputs.
    pub(crate) fn finish(&mut self, run: Run, ending: Ending, depth: u32) {
        let (ty, outcome, error) = match ending {
            Ending::Completed(o) => (EventType::FlowCompleted, Some(o), None),
            Ending::Failed(e) => (EventType::FlowFailed, None, Some(e)),
        };
        let payload = self.flow_payload(&run, outcome, error);
        let event = self.internal(ty, payload, None, depth + 1);
        self.raise(event, depth + 1);
    }

    fn flow_payload(&self, run: &Run, outcome: Option<String>, error: Option<String>) -> Payload {
        let parent_run_id = run
            .parent()
            .and_then(|p| self.state.run_index(p))
            .map(|i| self.state.runs[i].public_id());
        let outputs: BTreeMap<String, String> = if outcome.is_some() {
            run.vars
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        } else {
            BTreeMap::new()
        };
        Payload::Flow(FlowPayload {
            flow_id: run.flow.to_string(),
            flow_version: i32::try_from(run.version).unwrap_or(i32::MAX),
            run_id: run.public_id(),
            parent_run_id,
            outcome,
            error,
            outputs,
        })
    }
}
