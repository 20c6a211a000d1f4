//! Pattern triggers, kept per contact in compact form: one small record per (flow,
//! trigger) and ONE timer for the earliest deadline (reserved run id
//! [`WINDOW_RUN`](super::run::WINDOW_RUN); its token changes whenever the deadline does).
//!
//! - `not_followed_by`: when `first` happened (re-armed by a later `first`, cleared by
//!   `then`); the deadline fires the trigger.
//! - `at_least`: times of the matching events within the window; fires on the Nth.
//! - `sum_above`: (time, value) of matching events within the window; fires when the
//!   sum exceeds the threshold (money only in the threshold's currency).
//! - `absence`: when a matching event was last seen (or the contact first seen); the
//!   deadline fires the trigger once per silence.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use sluice_schemas::{Event, EventType, Payload, Scalar, TimerPayload};

use super::TimerKey;
use super::conditions::number;
use super::machine::Machine;
use super::run::WINDOW_RUN;
use crate::flow::{CompiledFlow, Literal, Operand, Pattern, TriggerKind};

/// What a window remembers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum WindowData {
    /// `not_followed_by`: when `first` happened, if the window is open.
    Armed(Option<i64>),
    /// `at_least`: times of matching events.
    Times(Vec<i64>),
    /// `sum_above`: times and values of matching events.
    Values(Vec<(i64, f64)>),
    /// `absence`: when the event was last seen, and whether this silence already fired.
    Seen {
        /// Last seen, Unix ms.
        last: i64,
        /// Fired for this silence.
        fired: bool,
    },
}

/// One pattern trigger's window for one contact.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WindowState {
    /// The flow id.
    pub flow: Arc<str>,
    /// The flow version the window belongs to (a new version starts new windows).
    pub version: u32,
    /// The trigger's index.
    pub trigger: u32,
    /// What it remembers.
    pub data: WindowData,
}

impl WindowState {
    /// Heap bytes owned.
    pub fn heap_size(&self) -> usize {
        match &self.data {
            WindowData::Times(t) => t.capacity() * 8,
            WindowData::Values(v) => v.capacity() * 16,
            _ => 0,
        }
    }
}

fn ms(d: std::time::Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

fn pattern(flow: &CompiledFlow, trigger: u32) -> Option<&Pattern> {
    match &flow.triggers.get(trigger as usize)?.kind {
        TriggerKind::Pattern(p) => Some(p),
        _ => None,
    }
}

fn deadline(p: &Pattern, data: &WindowData) -> Option<i64> {
    match (p, data) {
        (Pattern::NotFollowedBy { within, .. }, WindowData::Armed(Some(t))) => {
            Some(t.saturating_add(ms(*within)))
        }
        (Pattern::Absence { period, .. }, WindowData::Seen { last, fired: false }) => {
            Some(last.saturating_add(ms(*period)))
        }
        _ => None,
    }
}

fn initial(p: &Pattern, now: i64) -> WindowData {
    match p {
        Pattern::NotFollowedBy { .. } => WindowData::Armed(None),
        Pattern::AtLeast { .. } => WindowData::Times(Vec::new()),
        Pattern::SumAbove { .. } => WindowData::Values(Vec::new()),
        Pattern::Absence { .. } => WindowData::Seen {
            last: now,
            fired: false,
        },
    }
}

fn summand(operand: &Operand, above: &Literal, event: &Event) -> Option<f64> {
    match (operand, &event.payload, above) {
        (Operand::PaymentAmount, Payload::Payment(p), Literal::Money(m)) => {
            (p.currency.as_bytes() == m.currency).then_some(p.amount_minor as f64)
        }
        (Operand::EventField(n), Payload::Custom(c), _) => match c.fields.get(n.as_str())? {
            Scalar::Long(v) => Some(*v as f64),
            Scalar::Double(v) => Some(*v),
            Scalar::String(s) => number(s),
            _ => None,
        },
        _ => None,
    }
}

impl Machine<'_, '_> {
    /// Makes the windows match the loaded pattern flows (after a flow change).
    pub(crate) fn sync_windows(&mut self) {
        let fp = self.flows.windows_fingerprint();
        if self.state.clocks.as_ref().map_or(0, |c| c.windows_fp) == fp {
            return;
        }
        let old = self
            .state
            .clocks
            .as_mut()
            .map(|c| std::mem::take(&mut c.windows))
            .unwrap_or_default();
        let mut next = Vec::new();
        for flow in self.flows.patterned() {
            for (i, t) in flow.triggers.iter().enumerate() {
                let (TriggerKind::Pattern(p), Ok(i)) = (&t.kind, u32::try_from(i)) else {
                    continue;
                };
                let kept = old
                    .iter()
                    .find(|w| *w.flow == *flow.id && w.version == flow.version && w.trigger == i);
                next.push(kept.cloned().unwrap_or_else(|| {
                    WindowState {
                        flow: self
                            .flows
                            .interned(&flow.id)
                            .cloned()
                            .unwrap_or_else(|| flow.id.as_str().into()),
                        version: flow.version,
                        trigger: i,
                        data: initial(p, self.now),
                    }
                }));
            }
        }
        let clocks = self.state.clocks_mut();
        clocks.windows = next;
        clocks.windows_fp = fp;
        self.rearm_windows();
    }

    /// Feeds an event to the windows observing its type; fires what completes.
    pub(crate) fn observe(&mut self, event: &Event, depth: u32) {
        let flows = self.flows;
        let observing = flows.observing(event.event_type);
        if observing.is_empty() || event.event_type == EventType::WaitExpired {
            return;
        }
        let now = self.now;
        let mut fire = Vec::new();
        for flow in observing {
            for &t in flow.patterns_observing(event.event_type) {
                let Some(p) = pattern(flow, t) else { continue };
                let Some(clocks) = self.state.clocks.as_ref() else {
                    return;
                };
                let Some(w) = clocks.windows.iter().position(|w| {
                    *w.flow == *flow.id && w.version == flow.version && w.trigger == t
                }) else {
                    continue;
                };
                let data = clocks.windows[w].data.clone();
                let hit = |m| self.matches(m, flow, event);
                let (data, fired) = match (p, data) {
                    (Pattern::NotFollowedBy { first, then, .. }, WindowData::Armed(at)) => {
                        let at = if hit(then) { None } else { at };
                        (
                            WindowData::Armed(if hit(first) { Some(now) } else { at }),
                            false,
                        )
                    }
                    (
                        Pattern::AtLeast {
                            event: m,
                            count,
                            within,
                        },
                        WindowData::Times(mut ts),
                    ) if hit(m) => {
                        ts.retain(|t| *t > now.saturating_sub(ms(*within)));
                        ts.push(now);
                        if ts.len() >= *count as usize {
                            (WindowData::Times(Vec::new()), true)
                        } else {
                            (WindowData::Times(ts), false)
                        }
                    }
                    (
                        Pattern::SumAbove {
                            event: m,
                            operand,
                            above,
                            within,
                        },
                        WindowData::Values(mut vs),
                    ) if hit(m) => {
                        vs.retain(|(t, _)| *t > now.saturating_sub(ms(*within)));
                        if let Some(v) = summand(operand, above, event) {
                            vs.push((now, v));
                        }
                        let limit = match above {
                            Literal::Money(m) => m.minor as f64,
                            Literal::Number(n) => *n,
                            _ => f64::INFINITY,
                        };
                        if vs.iter().map(|(_, v)| v).sum::<f64>() > limit {
                            (WindowData::Values(Vec::new()), true)
                        } else {
                            (WindowData::Values(vs), false)
                        }
                    }
                    (Pattern::Absence { event: m, .. }, _) if hit(m) => (
                        WindowData::Seen {
                            last: now,
                            fired: false,
                        },
                        false,
                    ),
                    (_, data) => (data, false),
                };
                self.state.clocks_mut().windows[w].data = data;
                if fired {
                    fire.push((flow.clone(), t));
                }
            }
        }
        self.rearm_windows();
        for (flow, t) in fire {
            if let Some(trigger) = flow.triggers.get(t as usize) {
                self.try_start(&flow, trigger, event, depth);
            }
        }
    }

    /// The window timer fired at `due_at`: fire every window whose deadline passed.
    pub(crate) fn window_deadlines(&mut self, due_at: i64, event: &Event) {
        let flows = self.flows;
        let mut fire = Vec::new();
        let clocks = self.state.clocks_mut();
        for w in &mut clocks.windows {
            let Some(flow) = flows.version(&w.flow, w.version) else {
                continue;
            };
            let Some(p) = pattern(flow, w.trigger) else {
                continue;
            };
            if deadline(p, &w.data).is_some_and(|d| d <= due_at) {
                w.data = match w.data {
                    WindowData::Seen { last, .. } => WindowData::Seen { last, fired: true },
                    _ => WindowData::Armed(None),
                };
                fire.push((flow.clone(), w.trigger));
            }
        }
        clocks.window_timer.due = None;
        self.rearm_windows();
        for (flow, t) in fire {
            if let Some(trigger) = flow.triggers.get(t as usize) {
                self.try_start(&flow, trigger, event, 0);
            }
        }
    }

    /// Keeps one timer at the earliest window deadline.
    fn rearm_windows(&mut self) {
        let flows = self.flows;
        let Some(clocks) = self.state.clocks.as_ref() else {
            return;
        };
        let earliest = clocks
            .windows
            .iter()
            .filter_map(|w| {
                let flow = flows.version(&w.flow, w.version)?;
                deadline(pattern(flow, w.trigger)?, &w.data)
            })
            .min();
        let slot = clocks.window_timer;
        if earliest == slot.due {
            return;
        }
        if slot.due.is_some() {
            self.cancel_timer(TimerKey {
                run: WINDOW_RUN,
                token: slot.token,
            });
        }
        let token = slot.token.wrapping_add(1);
        self.state.clocks_mut().window_timer = super::state::TimerSlot {
            token,
            due: earliest,
        };
        if let Some(due) = earliest {
            self.set_timer(
                TimerKey {
                    run: WINDOW_RUN,
                    token,
                },
                due,
            );
        }
    }
}

/// The event a contact-level timer stands for (conditions and templates read it).
pub(crate) fn timer_event(
    state: &super::ContactState,
    key: TimerKey,
    due_at: i64,
    node: &str,
) -> Event {
    Event {
        id: format!("timer:{}:{}", key.run, key.token),
        tenant: state.tenant.to_string(),
        contact_id: state.contact_id.to_string(),
        event_type: EventType::WaitExpired,
        occurred_at: due_at,
        session: None,
        origin: None,
        chain_depth: 0,
        payload: Payload::Timer(TimerPayload {
            run_id: super::ids::hex64(key.run),
            node_id: node.to_owned(),
            due_at,
        }),
    }
}
