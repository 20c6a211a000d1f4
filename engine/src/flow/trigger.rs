//! Triggers: what starts a run — an event (with an optional filter), a schedule in the
//! contact's zone, or a windowed pattern over the contact's events — and the re-entry rule
//! and `ref` that may refuse a start.

use std::fmt;
use std::time::Duration;

use chrono::NaiveTime;
use serde_json::Value;
use sluice_schemas::EventType;

use super::condition::{Condition, read_condition};
use super::diagnostic::Cx;
use super::duration::parse_duration;
use super::literal::{Literal, Money};
use super::node::NodeIndex;
use super::operand::{Operand, ValueType};
use super::params::{Obj, kind};
use super::schedule::{CronSchedule, parse_cron, time_at};
use super::template::Text;

/// Which events an event trigger, a pattern step, a goal or an exit event matches.
#[derive(Debug, Clone)]
pub struct EventMatch {
    /// The event type.
    pub event: EventType,
    /// `custom` only: the custom event's name.
    pub name: Option<String>,
    /// `contact.field_updated` only: the profile field.
    pub field: Option<String>,
    /// `flow.*` only: the flow the event is about.
    pub flow: Option<String>,
    /// Any further condition.
    pub filter: Option<Condition>,
}

/// When a trigger may start another run for a contact that already had one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reentry {
    /// Every time.
    Always,
    /// Once per contact, ever.
    Once,
    /// Not while a run of this flow is active for the contact (the default).
    NotWhileActive,
    /// At most once per period.
    OncePer(Duration),
}

/// A scheduled start, in the contact's zone.
#[derive(Debug, Clone)]
pub enum Schedule {
    /// A cron expression.
    Cron(Box<CronSchedule>),
    /// Every year on the date held by a field (a birthday), at a time of day.
    Yearly {
        /// Where the date is (`contact.fields.<name>`).
        operand: Operand,
        /// The time of day.
        time: NaiveTime,
    },
}

/// A windowed pattern over one contact's events.
#[derive(Debug, Clone)]
pub enum Pattern {
    /// `first` happened and `then` did not follow within `within`.
    NotFollowedBy {
        /// The event that opens the window.
        first: EventMatch,
        /// The event that cancels it.
        then: EventMatch,
        /// The window.
        within: Duration,
    },
    /// At least `count` matching events within `within`.
    AtLeast {
        /// The counted event.
        event: EventMatch,
        /// How many.
        count: u32,
        /// The window.
        within: Duration,
    },
    /// The sum of `operand` over matching events within `within` exceeds `above`.
    SumAbove {
        /// The summed event.
        event: EventMatch,
        /// The summed value (`event.payment.amount` or `event.fields.<name>`).
        operand: Operand,
        /// The threshold: money (same currency only) or a number.
        above: Literal,
        /// The window.
        within: Duration,
    },
    /// No matching event for `period` (counted from the last one, or from the first time
    /// the contact was seen).
    Absence {
        /// The awaited event.
        event: EventMatch,
        /// How long.
        period: Duration,
    },
}

/// What starts the run.
#[derive(Debug, Clone)]
pub enum TriggerKind {
    /// An event.
    Event(EventMatch),
    /// A schedule.
    Schedule(Schedule),
    /// A windowed pattern.
    Pattern(Box<Pattern>),
}

/// One compiled trigger.
#[derive(Debug, Clone)]
pub struct Trigger {
    /// What starts the run.
    pub kind: TriggerKind,
    /// A condition checked when the trigger fires (on the event, or for schedules and
    /// patterns on the contact).
    pub filter: Option<Condition>,
    /// Whether a contact may start another run.
    pub reentry: Reentry,
    /// A rendered key: a start is refused while a run with the same ref is active.
    pub dedupe_ref: Option<Text>,
    /// The node the run starts at.
    pub entry: NodeIndex,
}

impl fmt::Display for EventMatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.event)?;
        for (k, v) in [
            ("name", &self.name),
            ("field", &self.field),
            ("flow", &self.flow),
        ] {
            if let Some(v) = v {
                write!(f, " {k}={v:?}")?;
            }
        }
        if let Some(c) = &self.filter {
            write!(f, " if {c}")?;
        }
        Ok(())
    }
}

/// Reads the event-matching keys (`event`, `name`, `field`, `flow`, `filter`) of `o`.
pub(crate) fn read_event_match(
    o: &mut Obj<'_, '_>,
    reads: &mut Vec<(String, String)>,
) -> Option<EventMatch> {
    let cx = o.cx();
    let event = o.req_str("event").and_then(|s| {
        s.parse::<EventType>()
            .map_err(|_| {
                cx.error(
                    &o.at("event"),
                    format!(
                        "unknown event type {s:?} (use one of: {})",
                        EventType::ALL
                            .iter()
                            .map(|t| t.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                )
            })
            .ok()
    });
    let mut ok = true;
    let mut qualifier =
        |o: &mut Obj<'_, '_>, key: &'static str, applies: bool, what: &str| -> Option<String> {
            let v = o.opt_str(key).map(str::to_owned);
            ok &= v.is_some() || !o.has(key);
            if v.is_some() && !applies {
                cx.error(&o.at(key), format!("`{key}` applies only to {what} events"));
                ok = false;
            }
            v
        };
    let ty = event.unwrap_or(EventType::ContactCreated);
    let name = qualifier(
        o,
        "name",
        ty == EventType::Custom || event.is_none(),
        "custom",
    );
    let field = qualifier(
        o,
        "field",
        ty == EventType::ContactFieldUpdated || event.is_none(),
        "contact.field_updated",
    );
    let is_flow = matches!(
        ty,
        EventType::FlowStarted | EventType::FlowCompleted | EventType::FlowFailed
    );
    let flow = qualifier(
        o,
        "flow",
        is_flow || event.is_none(),
        "flow.started / flow.completed / flow.failed",
    );
    if ty == EventType::Custom && event.is_some() && name.is_none() && ok {
        cx.warning(
            o.path(),
            "a custom-event match without `name` matches every custom event",
        );
    }
    let filter = match o.get("filter") {
        Some(v) => {
            let at = o.at("filter");
            let c = read_condition(v, &at, cx);
            ok &= c.is_some();
            if let Some(c) = &c {
                c.for_each_operand(&mut |op| {
                    if let Operand::Var(v) = op {
                        reads.push((v.clone(), at.clone()));
                    }
                });
            }
            c
        }
        None => None,
    };
    ok.then_some(EventMatch {
        event: event?,
        name,
        field,
        flow,
        filter,
    })
}

/// Reads a standalone event match object (pattern steps, goals, exits).
pub(crate) fn read_event_match_at(value: &Value, path: &str, cx: Cx<'_>) -> Option<EventMatch> {
    let mut o = Obj::new(value, path, "event match", cx)?;
    let mut reads = Vec::new();
    let m = read_event_match(&mut o, &mut reads);
    for (var, at) in reads {
        cx.error(
            &at,
            format!("an event match cannot read run variables (vars.{var})"),
        );
    }
    o.finish();
    m
}

/// Reads the re-entry rule.
pub(crate) fn read_reentry(value: &Value, path: &str, cx: Cx<'_>) -> Option<Reentry> {
    match value {
        Value::String(s) => match s.as_str() {
            "always" => Some(Reentry::Always),
            "once" => Some(Reentry::Once),
            "not_while_active" => Some(Reentry::NotWhileActive),
            other => {
                cx.error(path, format!("unknown re-entry rule {other:?} (use \"always\", \"once\", \"not_while_active\" or {{\"once_per\": \"<duration>\"}})"));
                None
            }
        },
        other => {
            let mut o = Obj::new(other, path, "re-entry rule", cx)?;
            let per = o.req_str("once_per");
            let at = o.at("once_per");
            o.finish();
            parse_duration(per?)
                .map(Reentry::OncePer)
                .map_err(|e| cx.error(&at, e))
                .ok()
        }
    }
}

/// Reads a schedule.
pub(crate) fn read_schedule(value: &Value, path: &str, cx: Cx<'_>) -> Option<Schedule> {
    let mut o = Obj::new(value, path, "schedule", cx)?;
    let cron = o.opt_str("cron");
    let field = o.opt_str("date_field");
    let time = o.opt_str("time");
    let (cron_at, field_at, time_at_path) = (o.at("cron"), o.at("date_field"), o.at("time"));
    let has = (o.has("cron"), o.has("date_field"));
    o.finish();
    match has {
        (true, false) => {
            if time.is_some() {
                cx.error(
                    &time_at_path,
                    "`time` goes with `date_field`; a cron expression has its own time",
                );
                return None;
            }
            parse_cron(cron?)
                .map(|c| Schedule::Cron(Box::new(c)))
                .map_err(|e| cx.error(&cron_at, e))
                .ok()
        }
        (false, true) => {
            let operand = Operand::parse(field?)
                .map_err(|e| cx.error(&field_at, e))
                .ok()?;
            if !matches!(operand, Operand::ContactField(_)) {
                cx.error(
                    &field_at,
                    format!("`date_field` must be contact.fields.<name>, not {operand}"),
                );
                return None;
            }
            let Some(time) = time else {
                cx.error(path, "schedule is missing required parameter `time`");
                return None;
            };
            Some(Schedule::Yearly {
                operand,
                time: time_at(time, &time_at_path, cx)?,
            })
        }
        _ => {
            cx.error(
                path,
                "a schedule needs exactly one of `cron` and `date_field`",
            );
            None
        }
    }
}

/// Reads a windowed pattern.
pub(crate) fn read_pattern(value: &Value, path: &str, cx: Cx<'_>) -> Option<Pattern> {
    let mut o = Obj::new(value, path, "pattern", cx)?;
    let ty = o.req_str("type");
    let step = |o: &mut Obj<'_, '_>, key: &'static str| -> Option<EventMatch> {
        let v = o.req(key)?;
        read_event_match_at(v, &o.at(key), cx)
    };
    let dur = |o: &mut Obj<'_, '_>, key: &'static str| -> Option<Duration> {
        let s = o.req_str(key)?;
        parse_duration(s).map_err(|e| cx.error(&o.at(key), e)).ok()
    };
    let pattern = match ty? {
        "not_followed_by" => {
            let first = step(&mut o, "first");
            let then = step(&mut o, "then");
            let within = dur(&mut o, "within");
            Some(Pattern::NotFollowedBy {
                first: first?,
                then: then?,
                within: within?,
            })
        }
        "at_least" => {
            let event = step(&mut o, "event");
            let count = o.opt_u32("count", 1, 10_000);
            if !o.has("count") {
                cx.error(path, "pattern is missing required parameter `count`");
            }
            let within = dur(&mut o, "within");
            Some(Pattern::AtLeast {
                event: event?,
                count: count?,
                within: within?,
            })
        }
        "sum_above" => {
            let event = step(&mut o, "event");
            let within = dur(&mut o, "within");
            let field_at = o.at("field");
            let operand = o
                .req_str("field")
                .and_then(|s| Operand::parse(s).map_err(|e| cx.error(&field_at, e)).ok());
            let operand = operand.filter(|op| {
                let ok = matches!(op, Operand::PaymentAmount | Operand::EventField(_));
                if !ok {
                    cx.error(
                        &field_at,
                        format!(
                            "`sum_above` sums event.payment.amount or event.fields.<name>, not {op}"
                        ),
                    );
                }
                ok
            });
            let above_at = o.at("above");
            let above = o
                .req("above")
                .and_then(|v| threshold(operand.as_ref(), v, &above_at, cx));
            Some(Pattern::SumAbove {
                event: event?,
                operand: operand?,
                above: above?,
                within: within?,
            })
        }
        "absence" => {
            let event = step(&mut o, "event");
            let period = dur(&mut o, "for");
            Some(Pattern::Absence {
                event: event?,
                period: period?,
            })
        }
        other => {
            cx.error(&o.at("type"), format!("unknown pattern type {other:?} (use not_followed_by, at_least, sum_above or absence)"));
            None
        }
    };
    o.finish();
    pattern
}

fn threshold(operand: Option<&Operand>, value: &Value, path: &str, cx: Cx<'_>) -> Option<Literal> {
    match (operand.map(Operand::value_type), value) {
        (Some(ValueType::Money), Value::String(s)) => Money::parse(s)
            .map(Literal::Money)
            .map_err(|e| cx.error(path, e))
            .ok(),
        (Some(ValueType::Money), other) => {
            cx.error(
                path,
                format!(
                    "money must be compared with money such as \"100.00 EUR\", not {}",
                    kind(other)
                ),
            );
            None
        }
        (_, Value::Number(n)) => n.as_f64().map(Literal::Number),
        (_, other) => {
            cx.error(
                path,
                format!("`above` must be a number, not {}", kind(other)),
            );
            None
        }
    }
}

impl Pattern {
    /// Every event match the pattern observes.
    pub fn inputs(&self) -> Vec<&EventMatch> {
        match self {
            Pattern::NotFollowedBy { first, then, .. } => vec![first, then],
            Pattern::AtLeast { event, .. }
            | Pattern::SumAbove { event, .. }
            | Pattern::Absence { event, .. } => vec![event],
        }
    }
}
