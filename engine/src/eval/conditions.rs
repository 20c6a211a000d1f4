//! Evaluates compiled [`Condition`]s over the contact, the event, the run's variables and
//! the clock. Typed: money compares within its currency, times as instants (or as local
//! dates, times of day and weekdays in the contact's zone), numbers as numbers, text
//! case-insensitively. A missing value fails every test but `empty` (and `not`).

use std::borrow::Cow;
use std::cmp::Ordering;

use chrono::Datelike;
use chrono_tz::Tz;
use sluice_schemas::{Event, Payload, Scalar};

use super::clock::{local, parse_instant};
use super::state::ContactState;
use crate::flow::{CmpOp, Condition, Literal, Money, Operand, Test, TimeRef};

/// What a condition can see.
#[derive(Clone, Copy)]
pub(crate) struct Scope<'a> {
    pub(crate) state: &'a ContactState,
    pub(crate) event: &'a Event,
    pub(crate) vars: &'a [(Box<str>, Box<str>)],
    pub(crate) now: i64,
    pub(crate) tz: Tz,
}

/// A value read from an operand.
#[derive(Debug)]
pub(crate) enum Val<'a> {
    Missing,
    Text(Cow<'a, str>),
    Money(i64, &'a str),
    Time(i64),
    Set(Vec<&'a str>),
}

impl<'a> Scope<'a> {
    /// True when the condition holds.
    pub(crate) fn holds(&self, c: &Condition) -> bool {
        match c {
            Condition::All(items) => items.iter().all(|c| self.holds(c)),
            Condition::Any(items) => items.iter().any(|c| self.holds(c)),
            Condition::Not(inner) => !self.holds(inner),
            Condition::Test { left, test } => self.test(self.read(left), test),
        }
    }

    /// Reads an operand.
    pub(crate) fn read(&self, op: &Operand) -> Val<'a> {
        let (s, e) = (self.state, self.event);
        let text = |v: Option<&'a str>| v.map_or(Val::Missing, |t| Val::Text(Cow::Borrowed(t)));
        let session = e.session.as_ref();
        match op {
            Operand::ContactId => text(Some(&s.contact_id)),
            Operand::ContactField(n) => text(match n.as_str() {
                "timezone" => s.timezone.as_deref(),
                "language" => s.language.as_deref(),
                "username" => s.username.as_deref(),
                _ => s.field(n),
            }),
            Operand::ContactTags => Val::Set(s.tags.iter().map(|t| &**t).collect()),
            Operand::ContactUrns => Val::Set(s.urns.iter().map(|t| &**t).collect()),
            Operand::ContactChannels => Val::Set(
                s.urns
                    .iter()
                    .map(|u| u.split_once(':').map_or(&**u, |(c, _)| c))
                    .collect(),
            ),
            Operand::ContactUsername => text(s.username.as_deref()),
            Operand::ContactLanguage => text(s.language.as_deref()),
            Operand::ContactTimezone => text(s.timezone.as_deref()),
            Operand::EventType => text(Some(e.event_type.as_str())),
            Operand::EventOccurredAt => Val::Time(e.occurred_at),
            Operand::Now => Val::Time(self.now),
            Operand::Var(n) => text(
                self.vars
                    .binary_search_by(|(k, _)| (**k).cmp(n))
                    .ok()
                    .map(|i| &*self.vars[i].1),
            ),
            Operand::SessionType => text(session.map(|x| x.session_type.as_str())),
            Operand::SessionStatus => text(session.map(|x| x.status.as_str())),
            Operand::SessionChannelType => text(session.map(|x| x.channel_type.as_str())),
            Operand::SessionChannelId => text(session.map(|x| x.channel_id.as_str())),
            Operand::SessionAssignee => text(session.and_then(|x| x.assignee.as_deref())),
            Operand::SessionClosingMessage => {
                text(session.and_then(|x| x.closing_message.as_deref()))
            }
            _ => read_payload(op, &e.payload),
        }
    }

    fn test(&self, v: Val<'_>, t: &Test) -> bool {
        match (t, &v) {
            (Test::Exists, _) => !matches!(v, Val::Missing),
            (Test::Empty, Val::Missing) => true,
            (Test::Empty, Val::Text(s)) => s.is_empty(),
            (Test::Empty, Val::Set(s)) => s.is_empty(),
            (Test::Empty, _) | (_, Val::Missing) => false,
            (Test::Compare(op, lit), _) => match (self.compare(&v, lit), op) {
                (None, op) => *op == CmpOp::Ne,
                (Some(o), CmpOp::Eq) => o.is_eq(),
                (Some(o), CmpOp::Ne) => o.is_ne(),
                (Some(o), CmpOp::Lt) => o.is_lt(),
                (Some(o), CmpOp::Le) => o.is_le(),
                (Some(o), CmpOp::Gt) => o.is_gt(),
                (Some(o), CmpOp::Ge) => o.is_ge(),
            },
            (Test::Contains(s), Val::Text(t)) => fold(t).contains(s.as_str()),
            (Test::Contains(s) | Test::HasTag(s), Val::Set(items)) => {
                items.iter().any(|i| fold(i) == s.as_str())
            }
            (Test::StartsWith(s), Val::Text(t)) => fold(t).starts_with(s.as_str()),
            (Test::EndsWith(s), Val::Text(t)) => fold(t).ends_with(s.as_str()),
            (Test::Regex(re), Val::Text(t)) => re.is_match(t),
            (Test::In(lits), _) => self.any_equal(&v, lits),
            (Test::NotIn(lits), _) => !self.any_equal(&v, lits),
            (Test::Between(lo, hi), _) => {
                self.compare(&v, lo).is_some_and(Ordering::is_ge)
                    && self.compare(&v, hi).is_some_and(Ordering::is_le)
            }
            (Test::TimeBetween(range), _) => self
                .instant(&v)
                .is_some_and(|t| range.contains(local(t, self.tz).time())),
            (Test::WeekdayIn(days), _) => self
                .instant(&v)
                .is_some_and(|t| days.contains(local(t, self.tz).weekday())),
            (Test::Before(r), _) => self.time_cmp(&v, r).is_some_and(Ordering::is_lt),
            (Test::After(r), _) => self.time_cmp(&v, r).is_some_and(Ordering::is_gt),
            _ => false,
        }
    }

    fn any_equal(&self, v: &Val<'_>, lits: &[Literal]) -> bool {
        match v {
            Val::Set(items) => items.iter().any(|i| {
                let item = Val::Text(Cow::Borrowed(i));
                lits.iter()
                    .any(|l| self.compare(&item, l).is_some_and(Ordering::is_eq))
            }),
            _ => lits
                .iter()
                .any(|l| self.compare(v, l).is_some_and(Ordering::is_eq)),
        }
    }

    fn instant(&self, v: &Val<'_>) -> Option<i64> {
        match v {
            Val::Time(t) => Some(*t),
            Val::Text(s) => parse_instant(s, self.tz),
            _ => None,
        }
    }

    fn time_cmp(&self, v: &Val<'_>, r: &TimeRef) -> Option<Ordering> {
        let t = self.instant(v)?;
        Some(match r {
            TimeRef::Instant(i) => t.cmp(i),
            TimeRef::Date(d) => local(t, self.tz).date().cmp(d),
            TimeRef::TimeOfDay(x) => local(t, self.tz).time().cmp(x),
        })
    }

    /// Orders a value against a literal; `None` when they are not comparable.
    fn compare(&self, v: &Val<'_>, lit: &Literal) -> Option<Ordering> {
        match (v, lit) {
            (Val::Text(s), Literal::Text { folded, .. }) => Some(fold(s).as_ref().cmp(folded)),
            (Val::Text(s), Literal::Number(n)) => number(s)?.partial_cmp(n),
            (Val::Text(s), Literal::Bool(b)) => Some(boolean(s)?.cmp(b)),
            (Val::Text(s), Literal::Money(m)) => {
                let v = Money::parse(s).ok()?;
                (v.currency == m.currency).then(|| v.minor.cmp(&m.minor))
            }
            (Val::Text(s), Literal::Instant(i)) => Some(parse_instant(s, self.tz)?.cmp(i)),
            (Val::Money(minor, cur), Literal::Money(m)) => {
                (cur.as_bytes() == m.currency).then(|| minor.cmp(&m.minor))
            }
            (Val::Time(t), Literal::Instant(i)) => Some(t.cmp(i)),
            _ => None,
        }
    }
}

fn read_payload<'a>(op: &Operand, payload: &'a Payload) -> Val<'a> {
    let text = |v: Option<&'a str>| v.map_or(Val::Missing, |t| Val::Text(Cow::Borrowed(t)));
    match (op, payload) {
        (Operand::EventName, Payload::Custom(c)) => text(Some(&c.name)),
        (Operand::EventField(n), Payload::Custom(c)) => match c.fields.get(n.as_str()) {
            None | Some(Scalar::Null) => Val::Missing,
            Some(Scalar::String(s)) => text(Some(s)),
            Some(Scalar::Bool(b)) => Val::Text(Cow::Borrowed(if *b { "true" } else { "false" })),
            Some(Scalar::Long(n)) => Val::Text(Cow::Owned(n.to_string())),
            Some(Scalar::Double(n)) => Val::Text(Cow::Owned(n.to_string())),
        },
        (Operand::MessageText, Payload::Message(m)) => text(m.text.as_deref()),
        (Operand::MessageKind, Payload::Message(m)) => text(Some(&m.kind)),
        (Operand::MessageReplyPayload, Payload::Message(m)) => text(m.reply_payload.as_deref()),
        (Operand::ReactionEmoji, Payload::Reaction(r)) => text(Some(&r.emoji)),
        (Operand::PaymentAmount, Payload::Payment(p)) => Val::Money(p.amount_minor, &p.currency),
        (Operand::PaymentCurrency, Payload::Payment(p)) => text(Some(&p.currency)),
        (Operand::ProfileField, Payload::ProfileChange(p)) => text(Some(&p.field)),
        (Operand::ProfileOld, Payload::ProfileChange(p)) => text(p.old.as_deref()),
        (Operand::ProfileNew, Payload::ProfileChange(p)) => text(p.new.as_deref()),
        (Operand::FlowId, Payload::Flow(f)) => text(Some(&f.flow_id)),
        (Operand::FlowOutcome, Payload::Flow(f)) => text(f.outcome.as_deref()),
        (Operand::ResultStatus, Payload::Result(r)) => text(Some(&r.status)),
        _ => Val::Missing,
    }
}

/// Lower case, borrowing when the text has no upper-case letters.
pub(crate) fn fold(s: &str) -> Cow<'_, str> {
    if s.chars().any(char::is_uppercase) {
        Cow::Owned(s.to_lowercase())
    } else {
        Cow::Borrowed(s)
    }
}

/// A number as people write it (`12`, `12.5`, `12,5`).
pub(crate) fn number(s: &str) -> Option<f64> {
    let t = s.trim();
    t.parse::<f64>()
        .ok()
        .or_else(|| t.replace(',', ".").parse().ok())
        .filter(|n: &f64| n.is_finite())
}

fn boolean(s: &str) -> Option<bool> {
    match fold(s.trim()).as_ref() {
        "true" | "yes" | "1" => Some(true),
        "false" | "no" | "0" => Some(false),
        _ => None,
    }
}

#[cfg(test)]
#[path = "conditions_tests.rs"]
mod tests;
