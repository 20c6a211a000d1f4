//! The last stop of an event: flow triggers. Newest versions only, looked up by event
//! type, in flow-id order; each start is subject to the trigger's filter, the flow's
//! re-entry rule, its `ref` dedupe, the bot-session rule (one active bot run per
//! session) and the chain-depth limit.

use sluice_schemas::{Event, EventType, FlowPayload, Payload};

use super::machine::{MAX_CHAIN_DEPTH, Machine};
use super::walk::Start;
use crate::flow::{CompiledFlow, EventMatch, FlowKind, Reentry, Trigger, TriggerKind};

impl Machine<'_, '_> {
    /// True when the event matches (type, qualifiers, filter).
    pub(crate) fn matches(&self, m: &EventMatch, flow: &CompiledFlow, event: &Event) -> bool {
        if m.event != event.event_type {
            return false;
        }
        let p = &event.payload;
        if let Some(name) = &m.name
            && !matches!(p, Payload::Custom(c) if c.name == *name)
        {
            return false;
        }
        if let Some(field) = &m.field
            && !matches!(p, Payload::ProfileChange(c) if c.field == *field)
        {
            return false;
        }
        if let Some(id) = &m.flow
            && !matches!(p, Payload::Flow(f) if f.flow_id == *id)
        {
            return false;
        }
        m.filter
            .as_ref()
            .is_none_or(|c| self.scope(flow, event, &[]).holds(c))
    }

    /// Offers the event to every flow's event triggers; at most one new run per flow.
    pub(crate) fn offer_triggers(&mut self, event: &Event, depth: u32, skip_bots: bool) {
        let flows = self.flows;
        for flow in flows.triggered_by(event.event_type) {
            if skip_bots && flow.kind == FlowKind::Bot {
                continue;
            }
            for &t in flow.triggers_for(event.event_type) {
                let Some(trigger) = flow.triggers.get(t as usize) else {
                    continue;
                };
                let TriggerKind::Event(m) = &trigger.kind else {
                    continue;
                };
                if self.matches(m, flow, event) && self.try_start(flow, trigger, event, depth) {
                    break;
                }
            }
        }
    }

    /// Starts a run for a trigger unless a rule refuses it; true when it started.
    pub(crate) fn try_start(
        &mut self,
        flow: &CompiledFlow,
        trigger: &Trigger,
        event: &Event,
        depth: u32,
    ) -> bool {
        if let Some(c) = &trigger.filter
            && !self.scope(flow, event, &[]).holds(c)
        {
            return false;
        }
        let active = || self.state.runs.iter().any(|r| *r.flow == *flow.id);
        let allowed = match trigger.reentry {
            Reentry::Always => true,
            Reentry::Once => self.state.last_started(&flow.id).is_none(),
            Reentry::NotWhileActive => !active(),
            Reentry::OncePer(per) => self.state.last_started(&flow.id).is_none_or(|t| {
                t.saturating_add(i64::try_from(per.as_millis()).unwrap_or(i64::MAX)) <= self.now
            }),
        };
        if !allowed {
            return false;
        }
        let session: Option<Box<str>> = event.session.as_ref().map(|s| Box::from(s.id.as_str()));
        if flow.kind == FlowKind::Bot
            && let Some(s) = &session
            && self
                .state
                .runs
                .iter()
                .any(|r| r.bot && r.session.as_ref() == Some(s))
        {
            return false;
        }
        if self.base_depth + depth >= MAX_CHAIN_DEPTH {
            let error = format!(
                "chain depth limit of {MAX_CHAIN_DEPTH} reached: {} did not start flow {} (flows trigger each other in a loop?)",
                event.event_type, flow.id
            );
            let payload = Payload::Flow(FlowPayload {
                flow_id: flow.id.clone(),
                flow_version: i32::try_from(flow.version).unwrap_or(i32::MAX),
                run_id: String::new(),
                parent_run_id: None,
                outcome: None,
                error: Some(error),
                outputs: Default::default(),
            });
            let failed = self.internal(EventType::FlowFailed, payload, None, depth + 1);
            self.emit_only(failed);
            return false;
        }
        let start = Start {
            entry: trigger.entry,
            session,
            parent: None,
            vars: Vec::new(),
        };
        let mut run = self.new_run(flow, start);
        if let Some(text) = &trigger.dedupe_ref {
            let key = self.render(flow, &run, event, text).unwrap_or_default();
            if !key.is_empty() {
                let taken = self
                    .state
                    .runs
                    .iter()
                    .any(|r| *r.flow == *flow.id && r.dedupe_ref() == Some(key.as_str()));
                if taken {
                    self.state.next_run = self.state.next_run.wrapping_sub(1);
                    self.forget_started(&flow.id);
                    return false;
                }
                run.extra_mut().dedupe_ref = Some(key.into());
            }
        }
        self.begin(run, flow, event, depth, true);
        true
    }
}
