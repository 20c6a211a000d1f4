//! `wait`: a duration, a time of day (on some weekdays), a date held by a variable or
//! field, or the next opening of working hours — all in the contact's zone.

use chrono::NaiveTime;

use super::Cx;
use crate::eval::clock::{instant, next_open, next_time_of_day, parse_date, parse_instant};
use crate::eval::machine::Machine;
use crate::eval::run::{Run, Wait, WaitKind};
use crate::eval::walk::Step;
use crate::flow::{Operand, WaitSpec, exits};

pub(super) fn wait(m: &mut Machine<'_, '_>, run: &mut Run, cx: &Cx<'_>, spec: &WaitSpec) -> Step {
    let tz = m.tz(cx.flow);
    let due = match spec {
        WaitSpec::For(d) => m
            .now
            .saturating_add(i64::try_from(d.as_millis()).unwrap_or(i64::MAX)),
        WaitSpec::UntilTime { time, weekdays } => next_time_of_day(m.now, tz, *time, *weekdays),
        WaitSpec::UntilDate { operand, time } => {
            let value = match operand {
                Operand::Var(n) => run.var(n),
                Operand::ContactField(n) => m.state.field(n),
                _ => None,
            };
            let at = value.and_then(|v| match time {
                Some(t) => parse_date(v).map(|d| instant(d.and_time(*t), tz)),
                None => parse_instant(v, tz)
                    .or_else(|| parse_date(v).map(|d| instant(d.and_time(NaiveTime::MIN), tz))),
            });
            match at {
                Some(at) => at,
                None => {
                    return Step::Fail(format!(
                        "wait until {operand}: {} is not a date",
                        value.map_or_else(|| "no value".to_owned(), |v| format!("{v:?}"))
                    ));
                }
            }
        }
        WaitSpec::UntilOpen(hours) => {
            match hours.as_ref().or(cx.flow.settings.working_hours.as_ref()) {
                Some(h) => next_open(m.now, tz, h),
                None => m.now,
            }
        }
    };
    if due <= m.now {
        return Step::Next(exits::NEXT);
    }
    Step::Wait(Wait {
        kind: WaitKind::Timer,
        due: Some(due),
        sent_step: None,
    })
}
