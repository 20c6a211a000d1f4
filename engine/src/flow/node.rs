//! Compiled nodes: the catalogue's node types with their parsed parameters, and the named
//! exits each type has. A node's exits are stored in the order [`NodeKind::exit_names`]
//! gives, so the evaluator picks an exit by position (see [`exits`]) without string lookups.

use std::time::Duration;

use chrono::NaiveTime;

use super::condition::Condition;
use super::operand::Operand;
use super::schedule::{Hours, WeekdaySet};
use super::template::Text;

/// Positions of the fixed exits in [`Node::exits`].
pub mod exits {
    /// `next` of every single-exit node.
    pub const NEXT: usize = 0;
    /// `true` of `if`; `open` of `working_hours`.
    pub const TRUE: usize = 0;
    /// `false` of `if`; `closed` of `working_hours`.
    pub const FALSE: usize = 1;
    /// `success` (http, ai), `answered` (ask), `granted` (consent), `completed` (call).
    pub const OK: usize = 0;
    /// `error` (http, ai), `invalid` (ask), `denied` (consent), `failed` (call).
    pub const FAILED: usize = 1;
    /// `timeout` of every waiting node that has one.
    pub const TIMEOUT: usize = 2;
}

/// An index into [`CompiledFlow::nodes`](super::CompiledFlow::nodes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NodeIndex(pub u32);

impl NodeIndex {
    /// As a `usize`, for indexing.
    pub fn get(self) -> usize {
        self.0 as usize
    }
}

/// One node of a compiled flow.
#[derive(Debug, Clone)]
pub struct Node {
    /// The id the author gave it.
    pub id: String,
    /// The type and its parameters.
    pub kind: NodeKind,
    /// One slot per exit, in the order of [`NodeKind::exit_names`]; `None` ends the run
    /// (only optional exits may be unconnected).
    pub exits: Vec<Option<NodeIndex>>,
}

/// A button or quick reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Button {
    /// What comes back as `event.message.reply_payload`.
    pub id: String,
    /// What the contact sees.
    pub title: Text,
}

/// Media attached to a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Media {
    /// Where the file is.
    pub url: Text,
    /// Its MIME type, when known.
    pub mime_type: Option<String>,
    /// A caption.
    pub caption: Option<Text>,
}

/// What an `ask` node accepts as an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnswerType {
    /// Any non-empty text.
    Text,
    /// A number.
    Number,
    /// An e-mail address.
    Email,
    /// A phone number.
    Phone,
    /// One of the choices (by button id or title, case-insensitive).
    Choice,
    /// A date.
    Date,
}

/// What a `wait` node waits for.
#[derive(Debug, Clone, PartialEq)]
pub enum WaitSpec {
    /// A fixed duration.
    For(Duration),
    /// The next time the clock shows `time` on one of `weekdays`, in the contact's zone.
    UntilTime {
        /// The time of day.
        time: NaiveTime,
        /// The allowed days (all by default).
        weekdays: WeekdaySet,
    },
    /// The instant or date held by a variable or profile field (at `time` for a date).
    UntilDate {
        /// Where the date is.
        operand: Operand,
        /// The time of day to use when the value is a date.
        time: Option<NaiveTime>,
    },
    /// The next moment the working hours (the node's own, else the flow's) are open.
    UntilOpen(Option<Hours>),
}

/// A value of a published custom event's field.
#[derive(Debug, Clone, PartialEq)]
pub enum FieldValue {
    /// A rendered text.
    Text(Text),
    /// A constant number.
    Number(f64),
    /// A constant boolean.
    Bool(bool),
    /// Null.
    Null,
}

/// Where an `http` node finds a variable's value in the response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResponseField {
    /// The HTTP status code.
    Status,
    /// The whole body as text.
    Body,
    /// A JSON pointer into the body parsed as JSON (e.g. `/ticket/id`).
    Pointer(String),
}

/// Where a `send_message` goes (its `channel` parameter).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum SendChannel {
    /// `event` (the default): the event's session or origin channel, else the contact's
    /// default channel.
    #[default]
    Event,
    /// `contact`: the contact's default channel, whatever the event (for example to
    /// answer the contact when a manager's reply from a forum topic arrives).
    Contact,
    /// Any other value: that channel type (such as `telegram_desk`, the managers'
    /// forum topic), from the event's channel id.
    Type(String),
}

/// A node's type and parameters.
#[derive(Debug, Clone)]
pub enum NodeKind {
    /// `send_message` → `message.send`.
    SendMessage {
        /// The text.
        text: Option<Text>,
        /// Media attached.
        media: Option<Media>,
        /// Buttons / quick replies.
        buttons: Vec<Button>,
        /// Where it goes instead of the event's channel (see [`SendChannel`]).
        channel: SendChannel,
        /// The recipient address (a URN) instead of the channel's.
        to: Option<Text>,
    },
    /// `send_short` → `message.send_short`: a canned reply.
    SendShort {
        /// The canned reply's shortcut.
        shortcut: String,
        /// Its text.
        text: Text,
    },
    /// `send_template` → `message.send_template` (WhatsApp templates).
    SendTemplate {
        /// The approved template's name.
        template: String,
        /// Its language code.
        language: String,
        /// Its parameters, in order.
        parameters: Vec<Text>,
    },
    /// `ai_complete` → `ai.complete`; waits for `ai.result`.
    AiComplete {
        /// The model.
        model: String,
        /// The system prompt.
        system: Option<Text>,
        /// The prompt.
        prompt: Text,
        /// The variable that receives the completion.
        result_var: String,
        /// How long to wait for the result.
        timeout: Duration,
    },
    /// `update_field` → `contact.update_field` (no value clears the field).
    UpdateField {
        /// The profile field.
        field: String,
        /// The new value.
        value: Option<Text>,
    },
    /// `add_tag` / `remove_tag` → `contact.tag`.
    Tag {
        /// The tag.
        tag: String,
        /// True adds, false removes.
        add: bool,
    },
    /// `assign_session` → `session.assign` (a user, a team, or both).
    AssignSession {
        /// The user.
        user: Option<Text>,
        /// The team.
        team: Option<Text>,
    },
    /// `unassign_session` → `session.unassign`.
    UnassignSession,
    /// `close_session` → `session.close`.
    CloseSession {
        /// The closing message.
        message: Option<Text>,
    },
    /// `survey_session` → `session.survey`.
    SurveySession {
        /// The survey to run.
        survey: String,
    },
    /// `start_flow` → `flow.start`; with `wait`, waits for the child's completion.
    StartFlow {
        /// The child flow's id.
        flow: String,
        /// Call and wait (true) or fire and forget.
        wait: bool,
        /// Parameters: the child's initial variables.
        params: Vec<(String, Text)>,
        /// The variable that receives the child's outputs (wait only).
        result_var: Option<String>,
        /// How long to wait (wait only).
        timeout: Option<Duration>,
    },
    /// `publish_event` → `event.publish`: a custom event.
    PublishEvent {
        /// The custom event's name.
        name: String,
        /// Its fields.
        fields: Vec<(String, FieldValue)>,
    },
    /// `set_var`: sets a run variable to a rendered value (no action).
    SetVar {
        /// The variable.
        var: String,
        /// The value.
        value: Text,
    },
    /// `http` → `http.call`; waits for `function.result`.
    Http {
        /// GET, POST, PUT, PATCH or DELETE.
        method: String,
        /// The URL.
        url: Text,
        /// Request headers.
        headers: Vec<(String, Text)>,
        /// The request body.
        body: Option<Text>,
        /// How long to wait for the result.
        timeout: Duration,
        /// Variables set from the response on success.
        response: Vec<(String, ResponseField)>,
    },
    /// `ask`: sends a question and waits for a validated reply in the same session.
    Ask {
        /// The question.
        text: Text,
        /// What counts as an answer.
        expect: AnswerType,
        /// The choices (`choice` only), also sent as buttons.
        choices: Vec<Button>,
        /// How many invalid answers are asked again before `invalid`.
        retries: u32,
        /// What to say before asking again.
        retry_text: Option<Text>,
        /// The variable that receives the answer.
        var: String,
        /// How long to wait for an answer, counted from delivery.
        timeout: Option<Duration>,
    },
    /// `wait`.
    Wait(WaitSpec),
    /// `consent`: asks for permission with yes/no buttons.
    Consent {
        /// The question.
        text: Text,
        /// What the permission is for (stored as the tag `consent:<topic>` when granted).
        topic: String,
        /// How long to wait for an answer.
        timeout: Option<Duration>,
    },
    /// `if`: `true` / `false`.
    If {
        /// The condition.
        condition: Condition,
    },
    /// `switch`: the first case whose condition holds, else `default`.
    Switch {
        /// Case names and conditions, in order.
        cases: Vec<(String, Condition)>,
    },
    /// `split`: a weighted random branch, chosen by hashing contact and flow.
    Split {
        /// Branch names and weights, in order.
        branches: Vec<(String, u32)>,
    },
    /// `working_hours`: `open` / `closed`.
    WorkingHours {
        /// The node's own hours; `None` uses the flow's settings.
        hours: Option<Hours>,
    },
    /// `end`: finishes the run with an outcome.
    End {
        /// The outcome (default `completed`).
        outcome: String,
    },
}

const NEXT: &[&str] = &["next"];

impl NodeKind {
    /// The type name as written in flows.
    pub fn type_name(&self) -> &'static str {
        match self {
            NodeKind::SendMessage { .. } => "send_message",
            NodeKind::SendShort { .. } => "send_short",
            NodeKind::SendTemplate { .. } => "send_template",
            NodeKind::AiComplete { .. } => "ai_complete",
            NodeKind::UpdateField { .. } => "update_field",
            NodeKind::Tag { add: true, .. } => "add_tag",
            NodeKind::Tag { add: false, .. } => "remove_tag",
            NodeKind::AssignSession { .. } => "assign_session",
            NodeKind::UnassignSession => "unassign_session",
            NodeKind::CloseSession { .. } => "close_session",
            NodeKind::SurveySession { .. } => "survey_session",
            NodeKind::StartFlow { .. } => "start_flow",
            NodeKind::PublishEvent { .. } => "publish_event",
            NodeKind::SetVar { .. } => "set_var",
            NodeKind::Http { .. } => "http",
            NodeKind::Ask { .. } => "ask",
            NodeKind::Wait(_) => "wait",
            NodeKind::Consent { .. } => "consent",
            NodeKind::If { .. } => "if",
            NodeKind::Switch { .. } => "switch",
            NodeKind::Split { .. } => "split",
            NodeKind::WorkingHours { .. } => "working_hours",
            NodeKind::End { .. } => "end",
        }
    }

    /// True for nodes where a run stops and waits for an event or a timer; a loop must
    /// pass through one of these.
    pub fn is_waiting(&self) -> bool {
        matches!(
            self,
            NodeKind::Ask { .. }
                | NodeKind::Wait(_)
                | NodeKind::Consent { .. }
                | NodeKind::Http { .. }
                | NodeKind::AiComplete { .. }
                | NodeKind::StartFlow { wait: true, .. }
        )
    }

    /// The exit names, in slot order.
    pub fn exit_names(&self) -> Vec<&str> {
        let fixed: &[&str] = match self {
            NodeKind::If { .. } => &["true", "false"],
            NodeKind::WorkingHours { .. } => &["open", "closed"],
            NodeKind::Http { .. } | NodeKind::AiComplete { .. } => &["success", "error", "timeout"],
            NodeKind::Ask { .. } => &["answered", "invalid", "timeout"],
            NodeKind::Consent { .. } => &["granted", "denied", "timeout"],
            NodeKind::StartFlow { wait: true, .. } => &["completed", "failed", "timeout"],
            NodeKind::End { .. } => &[],
            NodeKind::Switch { cases } => {
                return cases
                    .iter()
                    .map(|(n, _)| n.as_str())
                    .chain(["default"])
                    .collect();
            }
            NodeKind::Split { branches } => {
                return branches.iter().map(|(n, _)| n.as_str()).collect();
            }
            _ => NEXT,
        };
        fixed.to_vec()
    }

    /// Whether the exit in `slot` must be connected. `next` may be left open (the run ends
    /// there); a `timeout` exit exists only when the node has a timeout.
    pub fn exit_required(&self, slot: usize) -> ExitRule {
        let has_timeout = match self {
            NodeKind::Ask { timeout, .. }
            | NodeKind::Consent { timeout, .. }
            | NodeKind::StartFlow { timeout, .. } => timeout.is_some(),
            _ => true,
        };
        match self {
            NodeKind::Ask { .. }
            | NodeKind::Consent { .. }
            | NodeKind::StartFlow { wait: true, .. }
                if slot == exits::TIMEOUT =>
            {
                if has_timeout {
                    ExitRule::Required
                } else {
                    ExitRule::Forbidden
                }
            }
            NodeKind::If { .. }
            | NodeKind::WorkingHours { .. }
            | NodeKind::Http { .. }
            | NodeKind::AiComplete { .. }
            | NodeKind::Ask { .. }
            | NodeKind::Consent { .. }
            | NodeKind::StartFlow { wait: true, .. }
            | NodeKind::Switch { .. }
            | NodeKind::Split { .. } => ExitRule::Required,
            _ => ExitRule::Optional,
        }
    }
}

/// Whether an exit must, may or must not be connected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitRule {
    /// Must be connected.
    Required,
    /// May be left open: the run ends there.
    Optional,
    /// Does not exist for this configuration (e.g. `timeout` without a timeout).
    Forbidden,
}

impl Node {
    /// The target of the exit with this name, if connected.
    pub fn exit(&self, name: &str) -> Option<NodeIndex> {
        let slot = self.kind.exit_names().iter().position(|n| *n == name)?;
        self.exits.get(slot).copied().flatten()
    }
}
