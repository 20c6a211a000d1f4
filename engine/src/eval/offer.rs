//! The first two stops of an event: runs waiting on it (a reply, a delivery receipt that
//! starts a reply timeout, a correlated function / AI result, a sub-flow's end), then the
//! goal and exit conditions of active runs (and `session.closed` for bot runs).

use sluice_schemas::{Event, EventType, Payload};

use super::ids::action_id;
use super::machine::Machine;
use super::nodes::{answer_consent, answer_reply};
use super::run::WaitKind;
use super::walk::Ending;
use crate::flow::{NodeKind, ResponseField, exits};

impl Machine<'_, '_> {
    /// Offers an event to waiting runs; returns the id of the run it resumed, if any.
    pub(crate) fn offer_waits(&mut self, event: &Event, depth: u32) -> Option<u64> {
        if self.state.runs.is_empty() {
            return None;
        }
        match (&event.event_type, &event.payload) {
            (EventType::MessageReceived, _) => {
                let session = event.session.as_ref().map(|s| s.id.as_str());
                let fits = |r: &super::run::Run| {
                    matches!(
                        r.wait.map(|w| w.kind),
                        Some(WaitKind::Reply { .. } | WaitKind::Consent)
                    ) && match (r.session.as_deref(), session) {
                        (Some(a), Some(b)) => a == b,
                        (Some(_), None) => false,
                        (None, _) => true,
                    }
                };
                let runs = &self.state.runs;
                let index = runs
                    .iter()
                    .position(|r| r.bot && r.session.is_some() && fits(r))
                    .or_else(|| runs.iter().position(fits))?;
                let id = runs[index].id;
                match runs[index].wait.map(|w| w.kind) {
                    Some(WaitKind::Consent) => answer_consent(self, index, event, depth),
                    _ => answer_reply(self, index, event, depth),
                }
                Some(id)
            }
            (EventType::MessageSent | EventType::MessageDelivered, Payload::Delivery(d)) => {
                if let Some(aid) = d.action_id.as_deref() {
                    self.rearm_reply_timeout(aid, event.occurred_at);
                }
                None
            }
            (EventType::FunctionResult | EventType::AiResult, Payload::Result(r)) => {
                let index = self.state.runs.iter().position(|run| match run.wait {
                    Some(w) => match w.kind {
                        WaitKind::Result { step } => {
                            action_id(&self.state.tenant, &self.state.contact_id, run.seed, step)
                                == r.action_id
                        }
                        _ => false,
                    },
                    None => false,
                })?;
                let id = self.state.runs[index].id;
                let slot = match r.status.as_str() {
                    "success" => {
                        self.store_result(index, r.status_code, r.body.as_deref());
                        exits::OK
                    }
                    "timeout" => exits::TIMEOUT,
                    _ => exits::FAILED,
                };
                self.resume(index, slot, event, depth, false);
                Some(id)
            }
            (EventType::FlowCompleted | EventType::FlowFailed, Payload::Flow(f)) => {
                let child = u64::from_str_radix(&f.run_id, 16).ok()?;
                let index = self.state.runs.iter().position(|run| {
                    matches!(run.wait.map(|w| w.kind), Some(WaitKind::Child { child: c }) if c == child)
                })?;
                let id = self.state.runs[index].id;
                if event.event_type == EventType::FlowFailed {
                    self.resume(index, exits::FAILED, event, depth, false);
                    return Some(id);
                }
                let result_var = self.node_kind(index).and_then(|k| match k {
                    NodeKind::StartFlow { result_var, .. } => result_var.clone(),
                    _ => None,
                });
                if let Some(var) = result_var {
                    let run = &mut self.state.runs[index];
                    for (k, v) in &f.outputs {
                        run.set_var(&format!("{var}.{k}"), v);
                    }
                }
                self.resume(index, exits::OK, event, depth, false);
                Some(id)
            }
            _ => None,
        }
    }

    fn node_kind(&self, index: usize) -> Option<&NodeKind> {
        let run = &self.state.runs[index];
        let flows = self.flows;
        let flow = flows.version(&run.flow, run.version)?;
        flow.nodes.get(run.node as usize).map(|n| &n.kind)
    }

    /// Stores a successful function / AI result in the run's variables.
    fn store_result(&mut self, index: usize, status: Option<i32>, body: Option<&str>) {
        let Some(kind) = self.node_kind(index).cloned() else {
            return;
        };
        let run = &mut self.state.runs[index];
        match kind {
            NodeKind::AiComplete { result_var, .. } => run.set_var(&result_var, body.unwrap_or("")),
            NodeKind::Http { response, .. } => {
                let json = body.and_then(|b| serde_json::from_str::<serde_json::Value>(b).ok());
                for (var, field) in &response {
                    let value = match field {
                        ResponseField::Status => status.map(|s| s.to_string()),
                        ResponseField::Body => body.map(str::to_owned),
                        ResponseField::Pointer(p) => json
                            .as_ref()
                            .and_then(|j| j.pointer(p))
                            .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned)),
                    };
                    if let Some(v) = value {
                        run.set_var(var, &v);
                    }
                }
            }
            _ => {}
        }
    }

    /// A question was delivered: its reply timeout now counts from delivery.
    fn rearm_reply_timeout(&mut self, aid: &str, delivered_at: i64) {
        let (tenant, contact) = (&self.state.tenant, &self.state.contact_id);
        let Some(index) = self.state.runs.iter().position(|run| {
            run.wait
                .and_then(|w| w.sent_step)
                .is_some_and(|step| action_id(tenant, contact, run.seed, step) == aid)
        }) else {
            return;
        };
        let timeout = match self.node_kind(index) {
            Some(NodeKind::Ask { timeout, .. } | NodeKind::Consent { timeout, .. }) => *timeout,
            _ => None,
        };
        let old = self.state.runs[index].timer_key();
        let run = &mut self.state.runs[index];
        let Some(wait) = &mut run.wait else { return };
        wait.sent_step = None;
        let (Some(t), Some(_)) = (timeout, wait.due) else {
            return;
        };
        let due = delivered_at.saturating_add(i64::try_from(t.as_millis()).unwrap_or(i64::MAX));
        wait.due = Some(due);
        run.token = run.token.wrapping_add(1);
        let key = run.timer_key();
        self.cancel_timer(old);
        self.set_timer(key, due);
    }

    /// Ends active runs whose goal or exit events match, and bot runs whose session closed.
    pub(crate) fn offer_exits(&mut self, event: &Event, depth: u32, skip: Option<u64>) {
        let mut i = 0;
        while i < self.state.runs.len() {
            let run = &self.state.runs[i];
            let flows = self.flows;
            let Some(flow) = flows.version(&run.flow, run.version) else {
                i += 1;
                continue;
            };
            let closed = run.bot
                && event.event_type == EventType::SessionClosed
                && run.session.as_deref() == event.session.as_ref().map(|s| s.id.as_str());
            let ending = if Some(run.id) == skip {
                None
            } else if closed {
                Some("session_closed")
            } else if flow
                .settings
                .exit_events
                .iter()
                .any(|m| self.matches(m, flow, event))
            {
                Some("exited")
            } else if flow
                .settings
                .goal_events
                .iter()
                .any(|m| self.matches(m, flow, event))
            {
                Some("goal")
            } else {
                None
            };
            match ending {
                Some(o) => self.end_run(i, Ending::Completed(o.into()), depth),
                None => i += 1,
            }
        }
    }
}
