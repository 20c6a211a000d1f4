//! A tiny driver for evaluator tests: compiles inline flows, feeds events and fires due
//! timers in order on a virtual clock, the way the runtime does.
#![allow(dead_code, unreachable_pub)]

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::Value;
use sluice_engine::eval::{
    ContactState, Disposition, FlowSet, Input, Output, TimerFired, TimerKey, evaluate,
};
use sluice_engine::flow::{CompiledFlow, compile_value};
use sluice_schemas::{
    Action, ActionPayload, CustomPayload, Event, EventType, MessagePayload, Origin, Payload,
    Scalar, Session,
};

/// 2026-03-02T10:00:00Z, a Monday.
pub const T0: i64 = 1_772_445_600_000;
pub const MIN: i64 = 60_000;
pub const HOUR: i64 = 3_600_000;
pub const DAY: i64 = 86_400_000;

pub fn compile(v: Value) -> Arc<CompiledFlow> {
    let c = compile_value(v);
    match c.flow {
        Some(f) => Arc::new(f),
        None => panic!("flow does not compile: {:#?}", c.diagnostics),
    }
}

pub fn flows(list: Vec<Value>) -> FlowSet {
    let mut set = FlowSet::new();
    for v in list {
        set.insert(compile(v));
    }
    set
}

pub struct Harness {
    pub flows: FlowSet,
    pub state: ContactState,
    pub now: i64,
    pub timers: BTreeMap<TimerKey, i64>,
    pub actions: Vec<Action>,
    pub emitted: Vec<Event>,
    pub outputs: Vec<Output>,
}

impl Harness {
    pub fn new(list: Vec<Value>) -> Self {
        Harness::with(flows(list))
    }

    pub fn with(flows: FlowSet) -> Self {
        Harness {
            flows,
            state: ContactState::default(),
            now: T0,
            timers: BTreeMap::new(),
            actions: Vec::new(),
            emitted: Vec::new(),
            outputs: Vec::new(),
        }
    }

    fn apply(&mut self, out: &Output) {
        for k in &out.timers_cancelled {
            self.timers.remove(k);
        }
        for t in &out.timers_set {
            self.timers.insert(t.key, t.due_at);
        }
        self.actions.extend(out.actions.iter().cloned());
        self.emitted.extend(out.emitted.iter().cloned());
        self.outputs.push(out.clone());
    }

    /// Fires due timers up to `at`, then feeds the event at `at`.
    pub fn send(&mut self, event: Event) -> Output {
        self.run_until(event.occurred_at);
        self.now = self.now.max(event.occurred_at);
        let out = evaluate(&self.flows, &mut self.state, Input::Event(&event), self.now);
        self.apply(&out);
        out
    }

    /// Fires every timer due at or before `at`, in due order.
    pub fn run_until(&mut self, at: i64) -> Vec<Output> {
        let mut outs = Vec::new();
        loop {
            let next = self
                .timers
                .iter()
                .map(|(k, d)| (*d, *k))
                .min()
                .filter(|(d, _)| *d <= at);
            let Some((due, key)) = next else { break };
            self.timers.remove(&key);
            self.now = self.now.max(due);
            let fired = TimerFired { key, due_at: due };
            let out = evaluate(&self.flows, &mut self.state, Input::Timer(fired), self.now);
            self.apply(&out);
            outs.push(out);
        }
        self.now = self.now.max(at);
        outs
    }

    pub fn fire(&mut self, key: TimerKey, due_at: i64) -> Output {
        let out = evaluate(
            &self.flows,
            &mut self.state,
            Input::Timer(TimerFired { key, due_at }),
            self.now,
        );
        self.apply(&out);
        out
    }

    /// Texts of message actions so far.
    pub fn texts(&self) -> Vec<String> {
        self.actions
            .iter()
            .filter_map(|a| match &a.payload {
                ActionPayload::SendMessage(m) => m.text.clone(),
                ActionPayload::SendShort(m) => Some(m.text.clone()),
                _ => None,
            })
            .collect()
    }

    pub fn take_texts(&mut self) -> Vec<String> {
        let t = self.texts();
        self.actions.clear();
        t
    }

    pub fn emitted_types(&self) -> Vec<String> {
        self.emitted
            .iter()
            .map(|e| e.event_type.as_str().to_owned())
            .collect()
    }

    pub fn outcomes(&self) -> Vec<String> {
        self.emitted
            .iter()
            .filter_map(|e| match &e.payload {
                Payload::Flow(f) if e.event_type == EventType::FlowCompleted => Some(format!(
                    "{}:{}",
                    f.flow_id,
                    f.outcome.clone().unwrap_or_default()
                )),
                Payload::Flow(f) if e.event_type == EventType::FlowFailed => Some(format!(
                    "{}:failed:{}",
                    f.flow_id,
                    f.error.clone().unwrap_or_default()
                )),
                _ => None,
            })
            .collect()
    }
}

pub fn event(id: &str, ty: EventType, payload: Payload, at: i64) -> Event {
    Event {
        id: id.into(),
        tenant: "acme".into(),
        contact_id: "c-1".into(),
        event_type: ty,
        occurred_at: at,
        session: None,
        origin: Some(Origin {
            channel_type: "telegram".into(),
            channel_id: "bot-1".into(),
            urn: Some("telegram:42".into()),
            username: None,
            provider_id: None,
        }),
        chain_depth: 0,
        payload,
    }
}

pub fn session(id: &str, status: &str) -> Session {
    Session {
        id: id.into(),
        session_type: "chat".into(),
        status: status.into(),
        channel_type: "telegram".into(),
        channel_id: "bot-1".into(),
        assignee: None,
        closing_message: None,
    }
}

pub fn msg(id: &str, text: &str, at: i64) -> Event {
    let mut e = event(
        id,
        EventType::MessageReceived,
        Payload::Message(MessagePayload {
            text: Some(text.into()),
            kind: "text".into(),
            media: None,
            reply_payload: None,
            edited: false,
        }),
        at,
    );
    e.session = Some(session("s-1", "open"));
    e
}

pub fn custom(id: &str, name: &str, fields: &[(&str, Scalar)], at: i64) -> Event {
    event(
        id,
        EventType::Custom,
        Payload::Custom(CustomPayload {
            name: name.into(),
            fields: fields
                .iter()
                .map(|(k, v)| ((*k).to_owned(), v.clone()))
                .collect(),
        }),
        at,
    )
}

pub fn applied(out: &Output) -> bool {
    out.disposition == Disposition::Applied
}
