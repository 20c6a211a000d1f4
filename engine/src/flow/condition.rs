//! Conditions: `{"all": […]}`, `{"any": […]}`, `{"not": …}` and leaves
//! `{"left": "<operand>", "op": "<operator>", "right": <literal>}`, compiled into a tree of
//! typed tests with pre-compiled regexes. Type mismatches (money compared with text, a regex
//! on money, …) are compile errors.

use std::fmt;

use regex::Regex;
use serde_json::Value;

use super::diagnostic::{Cx, join};
use super::literal::{Literal, Money, TimeRef};
use super::operand::{Operand, ValueType};
use super::params::{Obj, kind};
use super::schedule::{TimeRange, WeekdaySet, read_weekdays, time_at};

/// The longest regex source a condition may use; keeps compiled automata small.
const MAX_REGEX_LEN: usize = 1_000;

/// A compiled condition.
#[derive(Debug, Clone)]
pub enum Condition {
    /// Every child holds.
    All(Vec<Condition>),
    /// At least one child holds.
    Any(Vec<Condition>),
    /// The child does not hold.
    Not(Box<Condition>),
    /// One test on one operand.
    Test {
        /// What is read.
        left: Operand,
        /// What is checked.
        test: Test,
    },
}

/// Comparison operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmpOp {
    /// `eq`
    Eq,
    /// `ne`
    Ne,
    /// `lt`
    Lt,
    /// `le`
    Le,
    /// `gt`
    Gt,
    /// `ge`
    Ge,
}

/// One test on an operand's value. Text comparisons are case-insensitive (the literal is
/// stored folded); a missing value fails every test except `not`-wrapped ones and `empty`.
#[derive(Debug, Clone)]
pub enum Test {
    /// `eq`, `ne`, `lt`, `le`, `gt`, `ge`. Money compares only within one currency.
    Compare(CmpOp, Literal),
    /// `contains`: substring of text, or member of a set. Folded.
    Contains(String),
    /// `starts_with`, folded.
    StartsWith(String),
    /// `ends_with`, folded.
    EndsWith(String),
    /// `regex`: the pattern matches somewhere in the text (anchor it to match all).
    Regex(Regex),
    /// `in`: equal to one of the literals (for a set: any member is).
    In(Vec<Literal>),
    /// `not_in`: equal to none of the literals.
    NotIn(Vec<Literal>),
    /// `exists`: the value is present.
    Exists,
    /// `empty`: missing, empty text or an empty set.
    Empty,
    /// `between`: `low <= value <= high`.
    Between(Literal, Literal),
    /// `has_tag`: the set holds the tag (folded).
    HasTag(String),
    /// `time_between`: the time of day, in the contact's zone, is in the range.
    TimeBetween(TimeRange),
    /// `weekday_in`: the weekday, in the contact's zone, is in the set.
    WeekdayIn(WeekdaySet),
    /// `before`: strictly earlier than the instant, date or time of day.
    Before(TimeRef),
    /// `after`: strictly later.
    After(TimeRef),
}

impl Condition {
    /// Calls `f` with every operand the condition reads.
    pub fn for_each_operand(&self, f: &mut impl FnMut(&Operand)) {
        match self {
            Condition::All(items) | Condition::Any(items) => {
                items.iter().for_each(|c| c.for_each_operand(f))
            }
            Condition::Not(inner) => inner.for_each_operand(f),
            Condition::Test { left, .. } => f(left),
        }
    }
}

const OPS: &str = "eq, ne, lt, le, gt, ge, contains, starts_with, ends_with, regex, in, not_in, exists, empty, between, has_tag, time_between, weekday_in, before, after";

/// Reads a condition at `path`, reporting every problem.
pub(crate) fn read_condition(value: &Value, path: &str, cx: Cx<'_>) -> Option<Condition> {
    let mut o = Obj::new(value, path, "condition", cx)?;
    let group = ["all", "any", "not"]
        .into_iter()
        .filter(|k| o.has(k))
        .collect::<Vec<_>>();
    if group.len() > 1 || (group.len() == 1 && (o.has("left") || o.has("op"))) {
        cx.error(
            path,
            "a condition is either one of all / any / not, or a test with left and op",
        );
        return None;
    }
    match group.first().copied() {
        Some(key @ ("all" | "any")) => {
            let items = o.req_array(key);
            let at = o.at(key);
            o.finish();
            let items = items?;
            if items.is_empty() {
                cx.error(&at, format!("`{key}` needs at least one condition"));
                return None;
            }
            let read: Vec<_> = items
                .iter()
                .enumerate()
                .map(|(i, v)| read_condition(v, &join(&at, i), cx))
                .collect();
            let read = read.into_iter().collect::<Option<Vec<_>>>()?;
            Some(if key == "all" {
                Condition::All(read)
            } else {
                Condition::Any(read)
            })
        }
        Some(_) => {
            let inner = o.req("not");
            let at = o.at("not");
            o.finish();
            Some(Condition::Not(Box::new(read_condition(inner?, &at, cx)?)))
        }
        None => read_test(o),
    }
}

fn read_test(mut o: Obj<'_, '_>) -> Option<Condition> {
    let cx = o.cx();
    let op = o.req_str("op");
    let left_text = o.opt_str("left");
    let right = o.get("right");
    let (left_at, op_at, right_at) = (o.at("left"), o.at("op"), o.at("right"));
    let path = o.path().to_owned();
    o.finish();
    let op = op?;
    let left = match (left_text, op) {
        (Some(text), _) => Operand::parse(text)
            .map_err(|e| cx.error(&left_at, e))
            .ok()?,
        (None, "has_tag") => Operand::ContactTags,
        (None, _) => {
            cx.error(&path, "condition is missing required parameter `left`");
            return None;
        }
    };
    let ty = left.value_type();
    let mismatch = |what: &str| {
        cx.error(&op_at, format!("`{op}` {what}, but {left} is {ty}"));
    };
    let needs_right = !matches!(op, "exists" | "empty");
    let right = match (needs_right, right) {
        (true, None) => {
            cx.error(&path, format!("`{op}` needs a `right` value"));
            return None;
        }
        (false, Some(_)) => {
            cx.error(&right_at, format!("`{op}` takes no `right` value"));
            return None;
        }
        (_, right) => right.unwrap_or(&Value::Null),
    };
    let test = match op {
        "eq" | "ne" | "lt" | "le" | "gt" | "ge" => {
            let cmp = match op {
                "eq" => CmpOp::Eq,
                "ne" => CmpOp::Ne,
                "lt" => CmpOp::Lt,
                "le" => CmpOp::Le,
                "gt" => CmpOp::Gt,
                _ => CmpOp::Ge,
            };
            let ordering = !matches!(cmp, CmpOp::Eq | CmpOp::Ne);
            match ty {
                ValueType::TextSet => {
                    mismatch("compares single values (use has_tag, contains or in)");
                    return None;
                }
                ValueType::Text if ordering => {
                    mismatch("compares numbers, money or times");
                    return None;
                }
                _ => {}
            }
            Test::Compare(cmp, literal(ty, right, &right_at, cx)?)
        }
        "contains" | "starts_with" | "ends_with" | "has_tag" => {
            let allowed = match op {
                "has_tag" => ty == ValueType::TextSet,
                "contains" => matches!(
                    ty,
                    ValueType::Text | ValueType::Dynamic | ValueType::TextSet
                ),
                _ => matches!(ty, ValueType::Text | ValueType::Dynamic),
            };
            if !allowed {
                mismatch(if op == "has_tag" {
                    "tests a set such as contact.tags"
                } else {
                    "tests text"
                });
                return None;
            }
            let text = string(right, &right_at, cx)?.to_lowercase();
            match op {
                "contains" => Test::Contains(text),
                "starts_with" => Test::StartsWith(text),
                "ends_with" => Test::EndsWith(text),
                _ => Test::HasTag(text),
            }
        }
        "regex" => {
            if !matches!(ty, ValueType::Text | ValueType::Dynamic) {
                mismatch("matches text");
                return None;
            }
            Test::Regex(compile_regex(string(right, &right_at, cx)?, &right_at, cx)?)
        }
        "in" | "not_in" => {
            if matches!(ty, ValueType::Time) {
                mismatch("compares with a list of values");
                return None;
            }
            let Some(items) = right.as_array().filter(|a| !a.is_empty()) else {
                cx.error(
                    &right_at,
                    format!("`{op}` needs a non-empty array, not {}", kind(right)),
                );
                return None;
            };
            let item_ty = if ty == ValueType::TextSet {
                ValueType::Text
            } else {
                ty
            };
            let lits: Vec<_> = items
                .iter()
                .enumerate()
                .map(|(i, v)| literal(item_ty, v, &join(&right_at, i), cx))
                .collect();
            let lits = lits.into_iter().collect::<Option<Vec<_>>>()?;
            if op == "in" {
                Test::In(lits)
            } else {
                Test::NotIn(lits)
            }
        }
        "exists" => Test::Exists,
        "empty" => Test::Empty,
        "between" => {
            if matches!(ty, ValueType::Text | ValueType::TextSet) {
                mismatch("compares numbers, money or times");
                return None;
            }
            let (lo, hi) = pair(right, &right_at, cx)?;
            let lo = literal(ty, lo, &join(&right_at, 0), cx);
            let hi = literal(ty, hi, &join(&right_at, 1), cx);
            let (lo, hi) = (lo?, hi?);
            if !ordered(&lo, &hi, &right_at, cx) {
                return None;
            }
            Test::Between(lo, hi)
        }
        "time_between" | "weekday_in" | "before" | "after" => {
            if !matches!(ty, ValueType::Time | ValueType::Dynamic) {
                mismatch("tests a time such as now or event.occurred_at");
                return None;
            }
            match op {
                "time_between" => {
                    let (from, to) = pair(right, &right_at, cx)?;
                    let from = string(from, &join(&right_at, 0), cx)
                        .and_then(|s| time_at(s, &join(&right_at, 0), cx));
                    let to = string(to, &join(&right_at, 1), cx)
                        .and_then(|s| time_at(s, &join(&right_at, 1), cx));
                    Test::TimeBetween(TimeRange {
                        from: from?,
                        to: to?,
                    })
                }
                "weekday_in" => {
                    let Some(items) = right.as_array() else {
                        cx.error(
                            &right_at,
                            format!(
                                "`weekday_in` needs an array of weekdays, not {}",
                                kind(right)
                            ),
                        );
                        return None;
                    };
                    Test::WeekdayIn(read_weekdays(items, &right_at, cx)?)
                }
                _ => {
                    let at = TimeRef::parse(string(right, &right_at, cx)?)
                        .map_err(|e| cx.error(&right_at, e))
                        .ok()?;
                    if op == "before" {
                        Test::Before(at)
                    } else {
                        Test::After(at)
                    }
                }
            }
        }
        other => {
            cx.error(
                &op_at,
                format!("unknown operator {other:?} (use one of: {OPS})"),
            );
            return None;
        }
    };
    Some(Condition::Test { left, test })
}

/// Compiles a regex, bounded in size, reporting errors at `path`.
pub(crate) fn compile_regex(pattern: &str, path: &str, cx: Cx<'_>) -> Option<Regex> {
    if pattern.len() > MAX_REGEX_LEN {
        cx.error(
            path,
            format!("regex is longer than {MAX_REGEX_LEN} characters"),
        );
        return None;
    }
    regex::RegexBuilder::new(pattern)
        .size_limit(1 << 20)
        .build()
        .map_err(|e| {
            cx.error(
                path,
                format!("invalid regex {pattern:?}: {}", first_line(&e.to_string())),
            )
        })
        .ok()
}

fn first_line(text: &str) -> String {
    text.lines()
        .rfind(|l| !l.trim().is_empty())
        .unwrap_or(text)
        .trim()
        .to_owned()
}

fn string<'v>(value: &'v Value, path: &str, cx: Cx<'_>) -> Option<&'v str> {
    let s = value.as_str();
    if s.is_none() {
        cx.error(path, format!("expected a string, not {}", kind(value)));
    }
    s
}

fn pair<'v>(value: &'v Value, path: &str, cx: Cx<'_>) -> Option<(&'v Value, &'v Value)> {
    match value.as_array().map(Vec::as_slice) {
        Some([a, b]) => Some((a, b)),
        _ => {
            cx.error(
                path,
                format!("expected an array of two values, not {}", kind(value)),
            );
            None
        }
    }
}

fn ordered(lo: &Literal, hi: &Literal, path: &str, cx: Cx<'_>) -> bool {
    let ok = match (lo, hi) {
        (Literal::Number(a), Literal::Number(b)) => a <= b,
        (Literal::Money(a), Literal::Money(b)) if a.currency == b.currency => a.minor <= b.minor,
        (Literal::Money(_), Literal::Money(_)) => {
            cx.error(path, "both ends of `between` need the same currency");
            return false;
        }
        (Literal::Instant(a), Literal::Instant(b)) => a <= b,
        _ => true,
    };
    if !ok {
        cx.error(path, "the low end of `between` is above the high end");
    }
    ok
}

/// Reads the literal a value of type `ty` is compared with.
fn literal(ty: ValueType, value: &Value, path: &str, cx: Cx<'_>) -> Option<Literal> {
    let lit = match (ty, value) {
        (ValueType::Money, Value::String(s)) => Money::parse(s)
            .map(Literal::Money)
            .map_err(|e| cx.error(path, e))
            .ok()?,
        (ValueType::Money, Value::Object(_)) => {
            let mut o = Obj::new(value, path, "money", cx)?;
            let amount = o.req_str("amount");
            let currency = o.req_str("currency");
            o.finish();
            let m = Money::from_parts(amount?, currency?).map_err(|e| {
                cx.error(
                    path,
                    if e.is_empty() {
                        "invalid money amount: write a decimal such as \"12.50\"".to_owned()
                    } else {
                        e
                    },
                )
            });
            Literal::Money(m.ok()?)
        }
        (ValueType::Money, other) => {
            cx.error(
                path,
                format!(
                    "money must be compared with money such as \"12.50 EUR\", not {}",
                    kind(other)
                ),
            );
            return None;
        }
        (ValueType::Time, Value::String(s)) => match TimeRef::parse(s) {
            Ok(TimeRef::Instant(ms)) => Literal::Instant(ms),
            _ => {
                cx.error(
                    path,
                    format!("a time must be compared with an RFC 3339 instant, not {s:?}"),
                );
                return None;
            }
        },
        (ValueType::Text | ValueType::TextSet, Value::String(s)) => Literal::text(s),
        (ValueType::Text | ValueType::TextSet | ValueType::Time, other) => {
            cx.error(
                path,
                format!("{ty} must be compared with a string, not {}", kind(other)),
            );
            return None;
        }
        (ValueType::Dynamic, Value::String(s)) => Literal::text(s),
        (ValueType::Dynamic, Value::Bool(b)) => Literal::Bool(*b),
        (ValueType::Dynamic, Value::Number(n)) => Literal::Number(n.as_f64().unwrap_or(f64::NAN)),
        (ValueType::Dynamic, other) => {
            cx.error(
                path,
                format!("expected a string, number or boolean, not {}", kind(other)),
            );
            return None;
        }
    };
    Some(lit)
}

impl fmt::Display for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let group = |f: &mut fmt::Formatter<'_>, items: &[Condition], sep: &str| -> fmt::Result {
            f.write_str("(")?;
            for (i, c) in items.iter().enumerate() {
                if i > 0 {
                    f.write_str(sep)?;
                }
                c.fmt(f)?;
            }
            f.write_str(")")
        };
        match self {
            Condition::All(items) => group(f, items, " and "),
            Condition::Any(items) => group(f, items, " or "),
            Condition::Not(inner) => write!(f, "not {inner}"),
            Condition::Test { left, test } => write!(f, "{left} {test}"),
        }
    }
}

impl fmt::Display for Test {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let list = |items: &[Literal]| {
            items
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        };
        match self {
            Test::Compare(op, lit) => write!(f, "{} {lit}", format!("{op:?}").to_lowercase()),
            Test::Contains(s) => write!(f, "contains {s:?}"),
            Test::StartsWith(s) => write!(f, "starts_with {s:?}"),
            Test::EndsWith(s) => write!(f, "ends_with {s:?}"),
            Test::Regex(r) => write!(f, "regex /{}/", r.as_str()),
            Test::In(items) => write!(f, "in [{}]", list(items)),
            Test::NotIn(items) => write!(f, "not_in [{}]", list(items)),
            Test::Exists => f.write_str("exists"),
            Test::Empty => f.write_str("empty"),
            Test::Between(lo, hi) => write!(f, "between {lo} and {hi}"),
            Test::HasTag(t) => write!(f, "has_tag {t:?}"),
            Test::TimeBetween(r) => write!(f, "time_between {r}"),
            Test::WeekdayIn(d) => write!(f, "weekday_in {d}"),
            Test::Before(t) => write!(f, "before {t}"),
            Test::After(t) => write!(f, "after {t}"),
        }
    }
}
