//! Reading one node of a flow definition: its id, type, parameters and raw exits. Every
//! problem is reported; a node whose parameters are broken is still registered by id so that
//! exits pointing at it are not reported as dangling too.

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::Value;

use super::condition::{Condition, read_condition};
use super::diagnostic::{Cx, join};
use super::duration::parse_duration;
use super::node::{Button, FieldValue, Media, NodeKind, ResponseField, SendChannel};
use super::operand::{Operand, is_identifier};
use super::params::{Obj, kind, strings};
use super::schedule::read_hours;
use super::template::{Templates, Text};

/// Every node type, in catalogue order.
pub const NODE_TYPES: &[&str] = &[
    "send_message",
    "send_short",
    "send_template",
    "ai_complete",
    "update_field",
    "add_tag",
    "remove_tag",
    "assign_session",
    "unassign_session",
    "close_session",
    "survey_session",
    "start_flow",
    "publish_event",
    "set_var",
    "http",
    "ask",
    "wait",
    "consent",
    "if",
    "switch",
    "split",
    "working_hours",
    "end",
];

/// A node as read, before exits are resolved to indices.
#[derive(Debug)]
pub(crate) struct ReadNode {
    /// The parsed kind; `None` when its parameters were broken (errors already reported).
    pub(crate) kind: Option<NodeKind>,
    /// Display label.
    pub(crate) label: Option<String>,
    /// Exits as written: name, target id, JSON path.
    pub(crate) exits: Vec<(String, String, String)>,
    /// Run variables read, with where.
    pub(crate) reads: Vec<(String, String)>,
    /// Run variables set, by exit slot.
    pub(crate) sets: Vec<(usize, String)>,
}

/// Reads a node's parameters, given its already-validated `type`.
pub(crate) fn read_node(
    o: &mut Obj<'_, '_>,
    type_name: &str,
    templates: &mut Templates,
) -> ReadNode {
    o.allow(&["id", "type", "exits", "position"]);
    let label = o.opt_str("label").map(str::to_owned);
    let exits = read_exits(o);
    let mut r = Reader {
        o,
        templates,
        reads: Vec::new(),
        sets: Vec::new(),
    };
    let kind = r.kind(type_name);
    ReadNode {
        kind,
        label,
        exits,
        reads: r.reads,
        sets: r.sets,
    }
}

fn read_exits(o: &mut Obj<'_, '_>) -> Vec<(String, String, String)> {
    let Some(map) = o.opt_object("exits") else {
        return Vec::new();
    };
    let base = o.at("exits");
    let mut out = Vec::new();
    for (name, target) in map {
        let at = join(&base, name);
        match target.as_str() {
            Some(t) => out.push((name.clone(), t.to_owned(), at)),
            None => o.cx().error(
                &at,
                format!(
                    "exit `{name}` must name a node id (a string), not {}",
                    kind(target)
                ),
            ),
        }
    }
    out
}

pub(super) struct Reader<'r, 'v, 'a> {
    pub(super) o: &'r mut Obj<'v, 'a>,
    pub(super) templates: &'r mut Templates,
    pub(super) reads: Vec<(String, String)>,
    pub(super) sets: Vec<(usize, String)>,
}

impl Reader<'_, '_, '_> {
    pub(super) fn cx(&self) -> Cx<'_> {
        self.o.cx()
    }

    fn compile(&mut self, source: &str, at: &str) -> Option<Text> {
        let (text, vars) = self.templates.add(source, at, self.o.cx())?;
        self.note_reads(vars, at);
        Some(text)
    }

    fn note_reads(&mut self, vars: BTreeSet<String>, at: &str) {
        self.reads
            .extend(vars.into_iter().map(|v| (v, at.to_owned())));
    }

    pub(super) fn text(&mut self, key: &'static str, required: bool) -> Option<Text> {
        let source = if required {
            self.o.req_str(key)?
        } else {
            self.o.opt_str(key)?
        };
        let at = self.o.at(key);
        self.compile(source, &at)
    }

    /// A required parameter that failed is `Err(())`; an absent optional one is `Ok(None)`.
    pub(super) fn opt_text(&mut self, key: &'static str) -> Result<Option<Text>, ()> {
        if !self.o.has(key) {
            return Ok(None);
        }
        self.text(key, false).map(Some).ok_or(())
    }

    pub(super) fn name(&mut self, key: &'static str, what: &str) -> Option<String> {
        let name = self.o.req_str(key)?;
        if is_identifier(name) {
            Some(name.to_owned())
        } else {
            self.cx().error(
                &self.o.at(key),
                format!(
                    "invalid {what} {name:?}: use letters, digits and _, not starting with a digit"
                ),
            );
            None
        }
    }

    fn nonempty(&mut self, key: &'static str) -> Option<String> {
        let s = self.o.req_str(key)?;
        if s.trim().is_empty() {
            self.cx()
                .error(&self.o.at(key), format!("`{key}` must not be empty"));
            return None;
        }
        Some(s.to_owned())
    }

    pub(super) fn duration(
        &mut self,
        key: &'static str,
        default: Option<Duration>,
    ) -> Result<Option<Duration>, ()> {
        let Some(text) = self.o.opt_str(key) else {
            return if self.o.has(key) {
                Err(())
            } else {
                Ok(default)
            };
        };
        parse_duration(text)
            .map(Some)
            .map_err(|e| self.cx().error(&self.o.at(key), e))
    }

    fn condition(&mut self, key: &'static str) -> Option<Condition> {
        let value = self.o.req(key)?;
        let at = self.o.at(key);
        let c = read_condition(value, &at, self.cx())?;
        self.note_condition(&c, &at);
        Some(c)
    }

    pub(super) fn note_condition(&mut self, c: &Condition, at: &str) {
        c.for_each_operand(&mut |op| {
            if let Operand::Var(v) = op {
                self.reads.push((v.clone(), at.to_owned()));
            }
        });
    }

    fn text_map(&mut self, key: &'static str) -> Result<Vec<(String, Text)>, ()> {
        let Some(map) = self.o.opt_object(key) else {
            return if self.o.has(key) {
                Err(())
            } else {
                Ok(Vec::new())
            };
        };
        let base = self.o.at(key);
        let mut out = Vec::new();
        let mut ok = true;
        for (k, v) in map {
            let at = join(&base, k);
            match v.as_str() {
                Some(s) => match self.compile(s, &at) {
                    Some(t) => out.push((k.clone(), t)),
                    None => ok = false,
                },
                None => {
                    self.cx().error(
                        &at,
                        format!("`{k}` must be a string (a template), not {}", kind(v)),
                    );
                    ok = false;
                }
            }
        }
        if ok { Ok(out) } else { Err(()) }
    }

    pub(super) fn buttons(&mut self, key: &'static str) -> Result<Vec<Button>, ()> {
        let Some(items) = self.o.opt_array(key) else {
            return if self.o.has(key) {
                Err(())
            } else {
                Ok(Vec::new())
            };
        };
        let base = self.o.at(key);
        let mut out = Vec::new();
        let mut ok = true;
        for (i, item) in items.iter().enumerate() {
            let at = join(&base, i);
            let button = match item {
                Value::String(s) => Some(Button {
                    id: s.clone(),
                    title: Text::Literal(s.clone()),
                }),
                other => (|| {
                    let mut b = Obj::new(other, &at, "button", self.cx())?;
                    let id = b.req_str("id").map(str::to_owned);
                    let title = b.req_str("title");
                    let title_at = b.at("title");
                    b.finish();
                    let title = self.compile(title?, &title_at)?;
                    Some(Button { id: id?, title })
                })(),
            };
            match button {
                Some(b) if out.iter().any(|x: &Button| x.id == b.id) => {
                    self.cx()
                        .error(&at, format!("duplicate button id {:?}", b.id));
                    ok = false;
                }
                Some(b) => out.push(b),
                None => ok = false,
            }
        }
        if ok { Ok(out) } else { Err(()) }
    }

    fn kind(&mut self, type_name: &str) -> Option<NodeKind> {
        let kind = match type_name {
            "send_message" => {
                let text = self.opt_text("text");
                let media = self.media();
                let buttons = self.buttons("buttons");
                let channel = match self.o.opt_str("channel") {
                    None => SendChannel::Event,
                    Some("event") => SendChannel::Event,
                    Some("contact") => SendChannel::Contact,
                    Some("") => {
                        let at = self.o.at("channel");
                        self.cx().error(
                            &at,
                            "`channel` must be \"event\", \"contact\" or a channel type",
                        );
                        return None;
                    }
                    Some(other) => SendChannel::Type(other.to_owned()),
                };
                let to = self.opt_text("to");
                let (text, media, buttons, to) = (text.ok()?, media.ok()?, buttons.ok()?, to.ok()?);
                if text.is_none() && media.is_none() {
                    self.cx()
                        .error(self.o.path(), "send_message needs `text`, `media` or both");
                    return None;
                }
                NodeKind::SendMessage {
                    text,
                    media,
                    buttons,
                    channel,
                    to,
                }
            }
            "send_short" => {
                let shortcut = self.nonempty("shortcut");
                let text = self.text("text", true);
                NodeKind::SendShort {
                    shortcut: shortcut?,
                    text: text?,
                }
            }
            "send_template" => {
                let template = self.nonempty("template");
                let language = self.nonempty("language");
                let parameters = self.text_list("parameters");
                NodeKind::SendTemplate {
                    template: template?,
                    language: language?,
                    parameters: parameters.ok()?,
                }
            }
            "ai_complete" => {
                let model = self.nonempty("model");
                let system = self.opt_text("system");
                let prompt = self.text("prompt", true);
                let result_var = self.name("result_var", "variable name");
                let timeout = self.duration("timeout", Some(Duration::from_secs(60)));
                if let Some(v) = &result_var {
                    self.sets.push((0, v.clone()));
                }
                NodeKind::AiComplete {
                    model: model?,
                    system: system.ok()?,
                    prompt: prompt?,
                    result_var: result_var?,
                    timeout: timeout.ok()??,
                }
            }
            "update_field" => {
                let field = self.name("field", "field name");
                let value = match self.o.get("value") {
                    None | Some(Value::Null) => Ok(None),
                    Some(_) => self.text("value", false).map(Some).ok_or(()),
                };
                NodeKind::UpdateField {
                    field: field?,
                    value: value.ok()?,
                }
            }
            "add_tag" | "remove_tag" => NodeKind::Tag {
                tag: self.nonempty("tag")?,
                add: type_name == "add_tag",
            },
            "assign_session" => {
                let user = self.opt_text("user");
                let team = self.opt_text("team");
                let (user, team) = (user.ok()?, team.ok()?);
                if user.is_none() && team.is_none() {
                    self.cx()
                        .error(self.o.path(), "assign_session needs `user`, `team` or both");
                    return None;
                }
                NodeKind::AssignSession { user, team }
            }
            "unassign_session" => NodeKind::UnassignSession,
            "close_session" => NodeKind::CloseSession {
                message: self.opt_text("message").ok()?,
            },
            "survey_session" => NodeKind::SurveySession {
                survey: self.nonempty("survey")?,
            },
            "start_flow" => self.start_flow()?,
            "publish_event" => {
                let name = self.nonempty("name");
                let fields = self.event_fields();
                NodeKind::PublishEvent {
                    name: name?,
                    fields: fields.ok()?,
                }
            }
            "set_var" => {
                let var = self.name("var", "variable name");
                let value = self.text("value", true);
                if let Some(v) = &var {
                    self.sets.push((0, v.clone()));
                }
                NodeKind::SetVar {
                    var: var?,
                    value: value?,
                }
            }
            "http" => self.http()?,
            "ask" => self.ask()?,
            "wait" => self.wait()?,
            "consent" => {
                let text = self.text("text", true);
                let topic = self.name("topic", "consent topic");
                let timeout = self.duration("timeout", None);
                NodeKind::Consent {
                    text: text?,
                    topic: topic?,
                    timeout: timeout.ok()?,
                }
            }
            "if" => NodeKind::If {
                condition: self.condition("condition")?,
            },
            "switch" => self.switch()?,
            "split" => self.split()?,
            "working_hours" => {
                let hours = match self.o.get("hours") {
                    Some(v) => Some(read_hours(v, &self.o.at("hours"), self.cx())?),
                    None => None,
                };
                NodeKind::WorkingHours { hours }
            }
            _ => {
                let outcome = self.o.opt_str("outcome");
                if self.o.has("outcome") && outcome.is_none() {
                    return None;
                }
                NodeKind::End {
                    outcome: outcome.unwrap_or("completed").to_owned(),
                }
            }
        };
        Some(kind)
    }

    fn text_list(&mut self, key: &'static str) -> Result<Vec<Text>, ()> {
        let Some(items) = self.o.opt_array(key) else {
            return if self.o.has(key) {
                Err(())
            } else {
                Ok(Vec::new())
            };
        };
        let base = self.o.at(key);
        let sources = strings(items, &base, self.cx());
        let ok = sources.len() == items.len();
        let texts: Vec<_> = sources
            .iter()
            .enumerate()
            .map(|(i, s)| self.compile(s, &join(&base, i)))
            .collect();
        let texts = texts.into_iter().collect::<Option<Vec<_>>>().ok_or(())?;
        if ok { Ok(texts) } else { Err(()) }
    }

    fn media(&mut self) -> Result<Option<Media>, ()> {
        let Some(value) = self.o.get("media") else {
            return Ok(None);
        };
        let at = self.o.at("media");
        let mut m = Obj::new(value, &at, "media", self.cx()).ok_or(())?;
        let url = m.req_str("url");
        let mime_type = m.opt_str("mime_type").map(str::to_owned);
        let caption = m.opt_str("caption");
        let (url_at, caption_at) = (m.at("url"), m.at("caption"));
        m.finish();
        let url = self.compile(url.ok_or(())?, &url_at).ok_or(())?;
        let caption = match caption {
            Some(c) => Some(self.compile(c, &caption_at).ok_or(())?),
            None => None,
        };
        Ok(Some(Media {
            url,
            mime_type,
            caption,
        }))
    }

    fn start_flow(&mut self) -> Option<NodeKind> {
        let flow = self.nonempty("flow");
        let wait = match self.o.opt_str("mode") {
            None if !self.o.has("mode") => Some(false),
            Some("fire_and_forget") => Some(false),
            Some("call") => Some(true),
            Some(other) => {
                self.cx().error(
                    &self.o.at("mode"),
                    format!("unknown mode {other:?} (use \"fire_and_forget\" or \"call\")"),
                );
                None
            }
            None => None,
        };
        let params = self.text_map("params");
        let result_var = if self.o.has("result_var") {
            self.name("result_var", "variable name").map(Some)
        } else {
            Some(None)
        };
        let timeout = self.duration("timeout", None);
        let wait = wait?;
        if !wait {
            for key in ["result_var", "timeout"] {
                if self.o.has(key) {
                    self.cx()
                        .error(&self.o.at(key), format!("`{key}` needs mode \"call\""));
                    return None;
                }
            }
        }
        let result_var = result_var?;
        if let Some(v) = &result_var {
            self.sets.push((0, v.clone()));
        }
        Some(NodeKind::StartFlow {
            flow: flow?,
            wait,
            params: params.ok()?,
            result_var,
            timeout: timeout.ok()?,
        })
    }

    fn event_fields(&mut self) -> Result<Vec<(String, FieldValue)>, ()> {
        let Some(map) = self.o.opt_object("fields") else {
            return if self.o.has("fields") {
                Err(())
            } else {
                Ok(Vec::new())
            };
        };
        let base = self.o.at("fields");
        let mut out = Vec::new();
        let mut ok = true;
        for (k, v) in map {
            let at = join(&base, k);
            let value = match v {
                Value::String(s) => self.compile(s, &at).map(FieldValue::Text),
                Value::Number(n) => Some(FieldValue::Number(n.as_f64().unwrap_or(0.0))),
                Value::Bool(b) => Some(FieldValue::Bool(*b)),
                Value::Null => Some(FieldValue::Null),
                other => {
                    self.cx().error(
                        &at,
                        format!(
                            "an event field must be a string, number, boolean or null, not {}",
                            kind(other)
                        ),
                    );
                    None
                }
            };
            match value {
                Some(v) => out.push((k.clone(), v)),
                None => ok = false,
            }
        }
        if ok { Ok(out) } else { Err(()) }
    }

    fn http(&mut self) -> Option<NodeKind> {
        let method = match self.o.opt_str("method") {
            None if !self.o.has("method") => Some("GET".to_owned()),
            Some(m)
                if ["GET", "POST", "PUT", "PATCH", "DELETE"]
                    .contains(&m.to_ascii_uppercase().as_str()) =>
            {
                Some(m.to_ascii_uppercase())
            }
            Some(m) => {
                self.cx().error(
                    &self.o.at("method"),
                    format!("unknown HTTP method {m:?} (use GET, POST, PUT, PATCH or DELETE)"),
                );
                None
            }
            None => None,
        };
        let url = self.text("url", true);
        let headers = self.text_map("headers");
        let body = self.opt_text("body");
        let timeout = self.duration("timeout", Some(Duration::from_secs(10)));
        let response = self.response();
        Some(NodeKind::Http {
            method: method?,
            url: url?,
            headers: headers.ok()?,
            body: body.ok()?,
            timeout: timeout.ok()??,
            response: response.ok()?,
        })
    }

    fn response(&mut self) -> Result<Vec<(String, ResponseField)>, ()> {
        let Some(map) = self.o.opt_object("response") else {
            return if self.o.has("response") {
                Err(())
            } else {
                Ok(Vec::new())
            };
        };
        let base = self.o.at("response");
        let mut out = Vec::new();
        for (var, v) in map {
            let at = join(&base, var);
            let field = match v.as_str() {
                Some("status") => Some(ResponseField::Status),
                Some("body") => Some(ResponseField::Body),
                Some(p) if p.starts_with('/') || p.is_empty() => {
                    Some(ResponseField::Pointer(p.to_owned()))
                }
                _ => None,
            };
            if !is_identifier(var) {
                self.cx().error(
                    &at,
                    format!("invalid variable name {var:?}: use letters, digits and _"),
                );
            } else if let Some(field) = field {
                self.sets.push((0, var.clone()));
                out.push((var.clone(), field));
            } else {
                self.cx().error(&at, "a response field is \"status\", \"body\" or a JSON pointer such as \"/ticket/id\"");
            }
        }
        if out.len() == map.len() {
            Ok(out)
        } else {
            Err(())
        }
    }
}
