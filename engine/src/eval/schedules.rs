//! Schedule triggers (cron, or a yearly date field at a time of day), in the contact's
//! zone. The contact keeps each scheduled trigger's next occurrence and ONE timer for
//! the earliest (reserved run id [`SCHEDULE_RUN`](super::run::SCHEDULE_RUN)).
//!
//! The occurrences are recomputed when the scheduled flows change (a fingerprint of their
//! ids and versions), when a profile field or the time zone changes, and after the timer
//! fires — never on other events, so the hot path does not pay for them.

use chrono::{DateTime, Datelike};
use chrono_tz::Tz;
use sluice_schemas::Event;

use super::TimerKey;
use super::clock::{next_yearly, parse_date};
use super::machine::Machine;
use super::run::SCHEDULE_RUN;
use super::state::{ScheduleEntry, TimerSlot};
use crate::flow::{CompiledFlow, Operand, Schedule, TriggerKind};

impl Machine<'_, '_> {
    /// Recomputes the schedule if flows or the profile changed since it was computed.
    pub(crate) fn sync_schedule(&mut self) {
        let fp = self.flows.schedule_fingerprint();
        let stored = self.state.clocks.as_ref().map_or(0, |c| c.schedule_fp);
        if stored != fp || (self.profile_dirty && fp != 0) {
            self.recompute_schedule(self.now);
        }
    }

    /// Computes every scheduled trigger's next occurrence after `after`.
    fn recompute_schedule(&mut self, after: i64) {
        let flows = self.flows;
        let mut entries = Vec::new();
        for flow in flows.scheduled() {
            for &t in flow.scheduled() {
                if let Some(due) = self.next_occurrence(flow, t, after) {
                    entries.push(ScheduleEntry {
                        flow: flows
                            .interned(&flow.id)
                            .cloned()
                            .unwrap_or_else(|| flow.id.as_str().into()),
                        version: flow.version,
                        trigger: t,
                        due,
                    });
                }
            }
        }
        let clocks = self.state.clocks_mut();
        clocks.schedule = entries;
        clocks.schedule_fp = flows.schedule_fingerprint();
        let earliest = clocks.schedule.iter().map(|e| e.due).min();
        let slot = clocks.schedule_timer;
        if earliest == slot.due {
            return;
        }
        if slot.due.is_some() {
            self.cancel_timer(TimerKey {
                run: SCHEDULE_RUN,
                token: slot.token,
            });
        }
        let token = slot.token.wrapping_add(1);
        self.state.clocks_mut().schedule_timer = TimerSlot {
            token,
            due: earliest,
        };
        if let Some(due) = earliest {
            self.set_timer(
                TimerKey {
                    run: SCHEDULE_RUN,
                    token,
                },
                due,
            );
        }
    }

    fn next_occurrence(&self, flow: &CompiledFlow, trigger: u32, after: i64) -> Option<i64> {
        let TriggerKind::Schedule(schedule) = &flow.triggers.get(trigger as usize)?.kind else {
            return None;
        };
        let tz: Tz = self.tz(flow);
        match schedule {
            Schedule::Cron(cron) => {
                let start = DateTime::from_timestamp_millis(after)?.with_timezone(&tz);
                cron.cron
                    .find_next_occurrence(&start, false)
                    .ok()
                    .map(|t| t.timestamp_millis())
            }
            Schedule::Yearly { operand, time } => {
                let Operand::ContactField(name) = operand else {
                    return None;
                };
                let date = parse_date(self.state.field(name)?)?;
                Some(next_yearly(after, tz, date.month(), date.day(), *time))
            }
        }
    }

    /// The schedule timer fired at `due_at`: start every trigger that is due, then
    /// compute the next occurrences.
    pub(crate) fn schedule_due(&mut self, due_at: i64, event: &Event) {
        let clocks = self.state.clocks_mut();
        let due: Vec<ScheduleEntry> = clocks
            .schedule
            .iter()
            .filter(|e| e.due <= due_at)
            .cloned()
            .collect();
        clocks.schedule_timer.due = None;
        self.recompute_schedule(self.now.max(due_at));
        let flows = self.flows;
        for e in due {
            let Some(flow) = flows.version(&e.flow, e.version) else {
                continue;
            };
            if let Some(trigger) = flow.triggers.get(e.trigger as usize) {
                self.try_start(flow, trigger, event, 0);
            }
        }
    }
}
