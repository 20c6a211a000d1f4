//! The two entry points behind [`evaluate`](super::evaluate): an event, a timer.
//!
//! An event: dropped as `Duplicate` when its id is among the contact's last
//! [`DEDUPE_WINDOW`](super::DEDUPE_WINDOW) applied ids; a contact's first event creates
//! the state and `contact.created` is processed before it. Then the event is offered to
//! waiting runs, to active runs' goals and exits, to triggers, and to pattern windows;
//! internal events it causes are processed in the same call, in order.
//!
//! Timers fire in order with the contact's events: before an (applied) event is
//! processed at `now`, every deadline of the contact due at or before `now` (run waits,
//! the schedule and window slots) fires first, earliest first, exactly as its
//! `TimerFired` would. The durable timer that arrives later is then stale and ignored,
//! so each timer still fires once; the fired keys are listed in `timers_cancelled`.

use sluice_schemas::{Event, EventType, Payload};

use super::alias::{self, Route};
use super::ids::event_hash;
use super::machine::{Machine, Work};
use super::run::{SCHEDULE_RUN, WINDOW_RUN, WaitKind};
use super::state::{Channel, ContactState};
use super::windows::timer_event;
use super::{Disposition, FlowSet, Output, TimerFired, TimerKey};
use crate::flow::exits;

/// Work items one evaluation may process before it stops (a safety net behind the
/// chain-depth and step limits).
const MAX_WORK: usize = 10_000;

/// Overdue deadlines one event fires before it is processed (a safety net against a
/// deadline that keeps coming due at or before `now`; the rest fire as durable timers).
const MAX_OVERDUE: usize = 1_000;

/// The earliest deadline of the contact due at or before `now`, as its timer would fire.
fn next_overdue(state: &ContactState, now: i64) -> Option<TimerFired> {
    let runs = state.runs.iter().filter_map(|run| {
        let due = run.wait?.due?;
        Some((due, run.timer_key()))
    });
    let slots = state.clocks.iter().flat_map(|c| {
        [
            (SCHEDULE_RUN, c.schedule_timer),
            (WINDOW_RUN, c.window_timer),
        ]
        .into_iter()
        .filter_map(|(run, slot)| {
            let key = TimerKey {
                run,
                token: slot.token,
            };
            Some((slot.due?, key))
        })
    });
    runs.chain(slots)
        .filter(|(due, _)| *due <= now)
        .min()
        .map(|(due_at, key)| TimerFired { key, due_at })
}

/// Appends a later part of this evaluation's output: a timer set earlier and cancelled
/// later is dropped from both lists.
fn merge(out: &mut Output, part: Output) {
    out.timers_fired += part.timers_fired;
    out.actions.extend(part.actions);
    out.emitted.extend(part.emitted);
    for key in part.timers_cancelled {
        let before = out.timers_set.len();
        out.timers_set.retain(|t| t.key != key);
        if out.timers_set.len() == before && !out.timers_cancelled.contains(&key) {
            out.timers_cancelled.push(key);
        }
    }
    out.timers_set.extend(part.timers_set);
}

/// Fires, in due order, the contact's deadlines due at or before `now`.
fn fire_overdue(flows: &FlowSet, state: &mut ContactState, now: i64) -> Output {
    let mut out = Output::default();
    for _ in 0..MAX_OVERDUE {
        let Some(fired) = next_overdue(state, now) else {
            break;
        };
        let part = on_timer(flows, state, fired, now);
        if part.disposition != Disposition::Applied {
            break;
        }
        // The durable timer is still stored; it is stale from now on.
        merge(
            &mut out,
            Output {
                timers_cancelled: vec![fired.key],
                timers_fired: 1,
                ..Output::default()
            },
        );
        merge(&mut out, part);
    }
    out
}

fn duplicate() -> Output {
    Output {
        disposition: Disposition::Duplicate,
        ..Output::default()
    }
}

pub(super) fn on_event(
    flows: &FlowSet,
    state: &mut ContactState,
    event: &Event,
    now: i64,
) -> Output {
    let id_hash = event_hash(&event.id);
    if state.created && state.seen(id_hash) {
        return duplicate();
    }
    match alias::route(state, event) {
        Route::Local => apply(flows, state, event, now, id_hash),
        Route::Forward(forward) => {
            // An alias runs no flows; its own deadlines still fire.
            let mut out = fire_overdue(flows, state, now);
            state.remember(id_hash);
            let action = alias::forward_action(state, event, forward, now);
            out.actions.push(action);
            out
        }
        Route::Unwrap(original) => {
            let original_hash = event_hash(&original.id);
            if state.created && state.seen(original_hash) {
                return duplicate();
            }
            state.remember(id_hash);
            apply(flows, state, &original, now, original_hash)
        }
    }
}

/// Processes an event of this contact that is not a duplicate.
fn apply(
    flows: &FlowSet,
    state: &mut ContactState,
    event: &Event,
    now: i64,
    id_hash: u64,
) -> Output {
    let mut out = if state.created {
        fire_overdue(flows, state, now)
    } else {
        Output::default()
    };
    let depth = u32::try_from(event.chain_depth).unwrap_or(0);
    let mut m = Machine::new(flows, state, now, event.id.clone(), depth);
    m.state.remember(id_hash);
    if !m.state.created {
        m.state.created = true;
        m.state.tenant = event.tenant.as_str().into();
        m.state.contact_id = event.contact_id.as_str().into();
        m.learn(event);
        m.sync_windows();
        // A first event that is itself `contact.created` (from ingest or an upstream
        // system) is the announcement; only other first events need one made up. A
        // contact made an alias by its first event is not a new person.
        if event.event_type != EventType::ContactCreated && alias::aliased_to(event).is_none() {
            let created = m.internal(EventType::ContactCreated, Payload::None, None, 0);
            m.queue.push_back(Work::Event(Box::new(created), 0));
            m.drain();
        }
    } else {
        m.learn(event);
        m.sync_windows();
    }
    m.handle(event, 0);
    m.drain();
    m.sync_schedule();
    if out == Output::default() {
        return m.out;
    }
    merge(&mut out, m.out);
    out
}

pub(super) fn on_timer(
    flows: &FlowSet,
    state: &mut ContactState,
    fired: TimerFired,
    now: i64,
) -> Output {
    let stale = Output {
        disposition: Disposition::StaleTimer,
        ..Output::default()
    };
    if !state.created {
        return stale;
    }
    let key = fired.key;
    match key.run {
        SCHEDULE_RUN | WINDOW_RUN => {
            let slot = match (&state.clocks, key.run) {
                (Some(c), SCHEDULE_RUN) => c.schedule_timer,
                (Some(c), _) => c.window_timer,
                (None, _) => return stale,
            };
            if slot.token != key.token || slot.due.is_none() {
                return stale;
            }
            let event = timer_event(state, key, fired.due_at, "");
            let mut m = Machine::new(flows, state, now, event.id.clone(), 0);
            m.sync_windows();
            if key.run == SCHEDULE_RUN {
                m.schedule_due(fired.due_at, &event);
            } else {
                m.window_deadlines(fired.due_at, &event);
            }
            m.drain();
            m.sync_schedule();
            m.out
        }
        id => {
            let Some(index) = state.run_index(id) else {
                return stale;
            };
            let run = &state.runs[index];
            let Some(wait) = run
                .wait
                .filter(|w| w.due.is_some() && run.token == key.token)
            else {
                return stale;
            };
            let node_id = flows
                .version(&run.flow, run.version)
                .and_then(|f| f.nodes.get(run.node as usize))
                .map_or("", |n| n.id.as_str());
            let mut event = timer_event(state, key, fired.due_at, node_id);
            if let Payload::Timer(t) = &mut event.payload {
                t.run_id = run.public_id();
            }
            let slot = match wait.kind {
                WaitKind::Timer => exits::NEXT,
                _ => exits::TIMEOUT,
            };
            let mut m = Machine::new(flows, state, now, event.id.clone(), 0);
            m.sync_windows();
            m.resume(index, slot, &event, 0, true);
            if !flows.triggered_by(EventType::WaitExpired).is_empty() {
                m.queue.push_back(Work::Event(Box::new(event), 0));
            }
            m.drain();
            m.sync_schedule();
            m.out
        }
    }
}

impl Machine<'_, '_> {
    /// Offers one event to waiting runs, exits, triggers and windows.
    pub(crate) fn handle(&mut self, event: &Event, depth: u32) {
        let resumed = self.offer_waits(event, depth);
        if !self.state.runs.is_empty() {
            self.offer_exits(event, depth, resumed);
        }
        // A message a run consumed is not also the first message of a new bot run.
        let skip_bots = resumed.is_some() && event.event_type == EventType::MessageReceived;
        self.offer_triggers(event, depth, skip_bots);
        self.observe(event, depth);
    }

    /// Processes queued internal work in order.
    pub(crate) fn drain(&mut self) {
        let mut done = 0;
        while let Some(work) = self.queue.pop_front() {
            done += 1;
            if done > MAX_WORK {
                self.queue.clear();
                let error = format!(
                    "evaluation stopped after {MAX_WORK} internal steps; the rest of this input's internal events were dropped"
                );
                let payload = Payload::Flow(sluice_schemas::FlowPayload {
                    flow_id: String::new(),
                    flow_version: 0,
                    run_id: String::new(),
                    parent_run_id: None,
                    outcome: None,
                    error: Some(error),
                    outputs: Default::default(),
                });
                let failed = self.internal(EventType::FlowFailed, payload, None, 0);
                self.emit_only(failed);
                break;
            }
            match work {
                Work::Event(event, depth) => {
                    self.handle(&event, depth);
                    self.out.emitted.push(*event);
                }
                Work::Advance(id, event, depth) => {
                    let Some(index) = self.state.run_index(id) else {
                        continue;
                    };
                    let run = self.state.runs.remove(index);
                    let flows = self.flows;
                    match flows.version(&run.flow, run.version) {
                        Some(flow) => self.advance(run, flow, &event, depth),
                        None => self.version_missing(run, depth),
                    }
                }
            }
        }
    }

    /// Learns identities, the default channel and profile changes from an event.
    pub(crate) fn learn(&mut self, event: &Event) {
        if let Some(o) = &event.origin {
            if let Some(urn) = &o.urn {
                self.state.add_urn(urn);
            }
            if let Some(u) = &o.username
                && self.state.username.as_deref() != Some(u.as_str())
            {
                self.state.username = Some(u.as_str().into());
            }
            // Custom events (a manager's reply from a forum topic, a linking event)
            // never move the contact's default channel.
            let to = o
                .urn
                .as_deref()
                .or(o.provider_id.as_deref())
                .unwrap_or(&event.contact_id);
            let same = self.state.channel.as_ref().is_some_and(|c| {
                *c.channel_type == *o.channel_type && *c.channel_id == *o.channel_id && *c.to == *to
            });
            if !same && event.event_type != EventType::Custom {
                self.state.channel = Some(Channel {
                    channel_type: o.channel_type.as_str().into(),
                    channel_id: o.channel_id.as_str().into(),
                    to: to.into(),
                });
            }
        }
        if let (EventType::ContactFieldUpdated, Payload::ProfileChange(p)) =
            (event.event_type, &event.payload)
            && self.state.set_field(&p.field, p.new.as_deref()).is_some()
        {
            self.profile_dirty = true;
        }
        // Linking identities is explicit (see `alias`).
        self.learn_links(event);
    }
}
