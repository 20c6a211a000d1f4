//! Reading the hybrid and branching nodes: `ask`, `wait`, `switch` and `split`.

use serde_json::Value;

use super::condition::{Condition, read_condition};
use super::diagnostic::join;
use super::node::{AnswerType, NodeKind, WaitSpec};
use super::operand::{Operand, is_identifier};
use super::params::{Obj, kind};
use super::read_node::Reader;
use super::schedule::{WeekdaySet, read_hours, read_weekdays, time_at};

impl Reader<'_, '_, '_> {
    pub(super) fn ask(&mut self) -> Option<NodeKind> {
        let text = self.text("text", true);
        let expect = match self.o.opt_str("expect") {
            None if !self.o.has("expect") => Some(AnswerType::Text),
            Some("text") => Some(AnswerType::Text),
            Some("number") => Some(AnswerType::Number),
            Some("email") => Some(AnswerType::Email),
            Some("phone") => Some(AnswerType::Phone),
            Some("choice") => Some(AnswerType::Choice),
            Some("date") => Some(AnswerType::Date),
            Some(other) => {
                self.cx().error(&self.o.at("expect"), format!("unknown answer type {other:?} (use text, number, email, phone, choice or date)"));
                None
            }
            None => None,
        };
        let choices = self.buttons("choices");
        let retries = self.o.opt_u32("retries", 0, 10);
        let retries_ok = retries.is_some() || !self.o.has("retries");
        let retry_text = self.opt_text("retry_text");
        let var = self.name("var", "variable name");
        let timeout = self.duration("timeout", None);
        if let Some(v) = &var {
            self.sets.push((0, v.clone()));
        }
        let (expect, choices) = (expect?, choices.ok()?);
        if (expect == AnswerType::Choice) == choices.is_empty() {
            let msg = if choices.is_empty() {
                "expect \"choice\" needs a non-empty `choices` list"
            } else {
                "`choices` needs expect \"choice\""
            };
            self.cx().error(self.o.path(), msg);
            return None;
        }
        if !retries_ok {
            return None;
        }
        Some(NodeKind::Ask {
            text: text?,
            expect,
            choices,
            retries: retries.unwrap_or(0),
            retry_text: retry_text.ok()?,
            var: var?,
            timeout: timeout.ok()?,
        })
    }

    pub(super) fn wait(&mut self) -> Option<NodeKind> {
        let modes = ["duration", "until_time", "until", "until_working_hours"];
        let given: Vec<&str> = modes.into_iter().filter(|k| self.o.has(k)).collect();
        self.o.allow(&["weekdays", "time", "hours"]);
        if given.len() != 1 {
            self.cx().error(self.o.path(), format!("wait needs exactly one of `duration`, `until_time`, `until`, `until_working_hours` (found {})", given.len()));
            return None;
        }
        let extra = |r: &mut Self, allowed: &[&str]| {
            let mut ok = true;
            for key in ["weekdays", "time", "hours"] {
                if !allowed.contains(&key) && r.o.has(key) {
                    r.cx().error(
                        &r.o.at(key),
                        format!("`{key}` does not go with `{}`", given[0]),
                    );
                    ok = false;
                }
            }
            ok
        };
        let spec = match given[0] {
            "duration" => {
                let ok = extra(self, &[]);
                let d = self.duration("duration", None).ok()??;
                ok.then_some(WaitSpec::For(d))?
            }
            "until_time" => {
                let ok = extra(self, &["weekdays"]);
                let time = self
                    .o
                    .req_str("until_time")
                    .and_then(|s| time_at(s, &self.o.at("until_time"), self.cx()));
                let weekdays = match self.o.get("weekdays") {
                    Some(Value::Array(items)) => {
                        read_weekdays(items, &self.o.at("weekdays"), self.cx())
                    }
                    Some(other) => {
                        self.cx().error(
                            &self.o.at("weekdays"),
                            format!("`weekdays` must be an array, not {}", kind(other)),
                        );
                        None
                    }
                    None => Some(WeekdaySet::ALL),
                };
                (ok).then_some(WaitSpec::UntilTime {
                    time: time?,
                    weekdays: weekdays?,
                })?
            }
            "until" => {
                let ok = extra(self, &["time"]);
                let at = self.o.at("until");
                let operand = self
                    .o
                    .req_str("until")
                    .and_then(|s| Operand::parse(s).map_err(|e| self.cx().error(&at, e)).ok());
                let operand = match operand {
                    Some(
                        op @ (Operand::Var(_) | Operand::ContactField(_) | Operand::EventField(_)),
                    ) => Some(op),
                    Some(other) => {
                        self.cx().error(&at, format!("wait until needs a date in vars.<name>, contact.fields.<name> or event.fields.<name>, not {other}"));
                        None
                    }
                    None => None,
                };
                if let Some(Operand::Var(v)) = &operand {
                    self.reads.push((v.clone(), at));
                }
                let time = match self.o.opt_str("time") {
                    Some(s) => Some(Some(time_at(s, &self.o.at("time"), self.cx())?)),
                    None if self.o.has("time") => None,
                    None => Some(None),
                };
                ok.then_some(WaitSpec::UntilDate {
                    operand: operand?,
                    time: time?,
                })?
            }
            _ => {
                let ok = extra(self, &["hours"]);
                if self.o.get("until_working_hours") != Some(&Value::Bool(true)) {
                    self.cx().error(
                        &self.o.at("until_working_hours"),
                        "`until_working_hours` must be true",
                    );
                    return None;
                }
                let hours = match self.o.get("hours") {
                    Some(v) => Some(read_hours(v, &self.o.at("hours"), self.cx())?),
                    None => None,
                };
                ok.then_some(WaitSpec::UntilOpen(hours))?
            }
        };
        Some(NodeKind::Wait(spec))
    }

    pub(super) fn switch(&mut self) -> Option<NodeKind> {
        let items = self.o.req_array("cases")?;
        let base = self.o.at("cases");
        if items.is_empty() {
            self.cx().error(&base, "`cases` needs at least one case");
            return None;
        }
        let mut cases: Vec<(String, Condition)> = Vec::new();
        let mut ok = true;
        for (i, item) in items.iter().enumerate() {
            let at = join(&base, i);
            let Some(mut c) = Obj::new(item, &at, "case", self.cx()) else {
                ok = false;
                continue;
            };
            let name = c.req_str("name");
            let cond = c.req("condition");
            let cond_at = c.at("condition");
            let name_at = c.at("name");
            c.finish();
            let cond = cond.and_then(|v| read_condition(v, &cond_at, self.cx()));
            if let Some(cond) = &cond {
                self.note_condition(cond, &cond_at);
            }
            match (name, cond) {
                (Some(n), _) if !is_identifier(n) || n == "default" => {
                    self.cx().error(
                        &name_at,
                        format!(
                            "invalid case name {n:?}: use letters, digits and _ (not \"default\")"
                        ),
                    );
                    ok = false;
                }
                (Some(n), _) if cases.iter().any(|(m, _)| m == n) => {
                    self.cx()
                        .error(&name_at, format!("duplicate case name {n:?}"));
                    ok = false;
                }
                (Some(n), Some(c)) => cases.push((n.to_owned(), c)),
                _ => ok = false,
            }
        }
        ok.then_some(NodeKind::Switch { cases })
    }

    pub(super) fn split(&mut self) -> Option<NodeKind> {
        let items = self.o.req_array("branches")?;
        let base = self.o.at("branches");
        let mut branches: Vec<(String, u32)> = Vec::new();
        let mut ok = !items.is_empty();
        if items.is_empty() {
            self.cx()
                .error(&base, "`branches` needs at least one branch");
        }
        for (i, item) in items.iter().enumerate() {
            let at = join(&base, i);
            let Some(mut b) = Obj::new(item, &at, "branch", self.cx()) else {
                ok = false;
                continue;
            };
            let name = b.req_str("name");
            let weight = b.opt_u32("weight", 1, 1_000_000);
            let weight_ok = weight.is_some() || !b.has("weight");
            if !b.has("weight") {
                b.cx()
                    .error(&at, "branch is missing required parameter `weight`");
            }
            let name_at = b.at("name");
            b.finish();
            match (name, weight) {
                (Some(n), _) if !is_identifier(n) || branches.iter().any(|(m, _)| m == n) => {
                    self.cx()
                        .error(&name_at, format!("invalid or duplicate branch name {n:?}"));
                    ok = false;
                }
                (Some(n), Some(w)) if weight_ok => branches.push((n.to_owned(), w)),
                _ => ok = false,
            }
        }
        ok.then_some(NodeKind::Split { branches })
    }
}
