//! [`Action`]: something a flow run asks the outside world to do (`schemas/action.avsc`).
//!
//! As for the event payload records, struct names equal the Avro record names and fields
//! are in schema order.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::kinds::ActionType;
use crate::scalar::Fields;
use crate::validate::Check;

/// An action: Kafka topic `sluice.actions`, key `tenant/contact_id` ([`Action::key`]), value
/// [`Action::encode`]. Also (de)serializes as JSON with `serde_json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Action {
    /// Deterministic from run id and step: a replay yields the same id; workers execute each
    /// id once.
    pub id: String,
    /// The business the contact belongs to.
    pub tenant: String,
    /// The contact the action is for.
    pub contact_id: String,
    /// The run that asked for it.
    pub run_id: String,
    /// The run's flow.
    pub flow_id: String,
    /// The flow version the run is pinned to.
    pub flow_version: i32,
    /// The node that asked for it.
    pub node_id: String,
    /// What to do.
    #[serde(rename = "type")]
    pub action_type: ActionType,
    /// When the engine made it, Unix milliseconds.
    pub created_at: i64,
    /// Quiet hours: do not execute before this instant, Unix milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_before: Option<i64>,
    /// How many flow-made events led to this action; bounds chains of flows.
    #[serde(default)]
    pub chain_depth: i32,
    /// The rendered details, which must fit [`Action::action_type`] (see
    /// [`Action::validate`]).
    pub payload: ActionPayload,
}

/// The payload union of an action, one variant per branch, in branch order.
///
/// In JSON it is externally tagged: `{"send_message": {...}}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActionPayload {
    /// `message.send`.
    SendMessage(SendMessage),
    /// `message.send_short`.
    SendShort(SendShort),
    /// `message.send_template`.
    SendTemplate(SendTemplate),
    /// `ai.complete`.
    AiComplete(AiComplete),
    /// `http.call`.
    HttpCall(HttpCall),
    /// `contact.update_field`.
    UpdateField(UpdateField),
    /// `contact.tag`.
    Tag(Tag),
    /// `session.assign` / `unassign` / `close` / `survey`.
    SessionChange(SessionChange),
    /// `flow.start`.
    StartFlow(StartFlow),
    /// `event.publish`.
    PublishEvent(PublishEvent),
}

/// `message.send`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SendMessage {
    /// telegram, whatsapp, sms, web, ...
    pub channel_type: String,
    /// The channel to send from.
    pub channel_id: String,
    /// Recipient URN, e.g. `telegram:123`.
    pub to: String,
    /// The session the message belongs to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
    /// The rendered text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// An attachment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media: Option<OutboundMedia>,
    /// Reply buttons.
    #[serde(default)]
    pub buttons: Vec<Button>,
}

/// An attachment of an outgoing message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutboundMedia {
    /// Where the channel fetches it.
    pub url: String,
    /// e.g. `image/png`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mime_type: Option<String>,
    /// The caption.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub caption: Option<String>,
}

/// A reply button.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Button {
    /// Comes back as the message's `reply_payload`.
    pub id: String,
    /// What the contact sees.
    pub title: String,
}

/// `message.send_short`: a canned reply.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SendShort {
    /// telegram, whatsapp, sms, web, ...
    pub channel_type: String,
    /// The channel to send from.
    pub channel_id: String,
    /// Recipient URN.
    pub to: String,
    /// The session the message belongs to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
    /// The canned reply's shortcut.
    pub shortcut: String,
    /// Its rendered text.
    pub text: String,
}

/// `message.send_template`: a WhatsApp approved template.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SendTemplate {
    /// telegram, whatsapp, sms, web, ...
    pub channel_type: String,
    /// The channel to send from.
    pub channel_id: String,
    /// Recipient URN.
    pub to: String,
    /// The template's name.
    pub template: String,
    /// The template's language, e.g. `en_US`.
    pub language: String,
    /// The rendered parameters, in order.
    #[serde(default)]
    pub parameters: Vec<String>,
}

/// `ai.complete`; the reply comes back as an `ai.result` event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AiComplete {
    /// The model to ask.
    pub model: String,
    /// The system prompt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system: Option<String>,
    /// The rendered prompt.
    pub prompt: String,
    /// Give up after this long.
    pub timeout_ms: i64,
}

/// `http.call` (custom function node); the reply comes back as a `function.result` event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HttpCall {
    /// GET, POST, ...
    pub method: String,
    /// The rendered URL.
    pub url: String,
    /// Request headers.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// The rendered body.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    /// Give up after this long.
    pub timeout_ms: i64,
}

/// `contact.update_field`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UpdateField {
    /// The profile field.
    pub field: String,
    /// The new value; none clears the field.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}

/// `contact.tag`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tag {
    /// The tag.
    pub tag: String,
    /// true adds the tag, false removes it.
    pub add: bool,
}

/// `session.assign` / `session.unassign` / `session.close` / `session.survey`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionChange {
    /// The session.
    pub session_id: String,
    /// The agent to assign.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// The team to assign.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub team: Option<String>,
    /// Closing message, or the survey to run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// `flow.start`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StartFlow {
    /// The flow to start.
    pub flow_id: String,
    /// true: the calling run waits for the child's `flow.completed`.
    pub wait: bool,
    /// Parameters for the child run.
    #[serde(default)]
    pub params: BTreeMap<String, String>,
}

/// `event.publish`: a custom event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PublishEvent {
    /// The custom event's name.
    pub name: String,
    /// Its fields.
    #[serde(default)]
    pub fields: Fields,
}

impl ActionPayload {
    /// The variant's name, as in JSON (`send_message`, `tag`, ...).
    pub fn name(&self) -> &'static str {
        match self {
            ActionPayload::SendMessage(_) => "send_message",
            ActionPayload::SendShort(_) => "send_short",
            ActionPayload::SendTemplate(_) => "send_template",
            ActionPayload::AiComplete(_) => "ai_complete",
            ActionPayload::HttpCall(_) => "http_call",
            ActionPayload::UpdateField(_) => "update_field",
            ActionPayload::Tag(_) => "tag",
            ActionPayload::SessionChange(_) => "session_change",
            ActionPayload::StartFlow(_) => "start_flow",
            ActionPayload::PublishEvent(_) => "publish_event",
        }
    }
}

impl ActionType {
    /// The name of the [`ActionPayload`] variant an action of this type carries.
    pub fn payload_name(self) -> &'static str {
        use ActionType::*;
        match self {
            MessageSend => "send_message",
            MessageSendShort => "send_short",
            MessageSendTemplate => "send_template",
            AiComplete => "ai_complete",
            HttpCall => "http_call",
            ContactUpdateField => "update_field",
            ContactTag => "tag",
            SessionAssign | SessionUnassign | SessionClose | SessionSurvey => "session_change",
            FlowStart => "start_flow",
            EventPublish => "publish_event",
        }
    }
}

impl Action {
    /// The Kafka key, `tenant/contact_id`.
    pub fn key(&self) -> String {
        format!("{}/{}", self.tenant, self.contact_id)
    }

    /// Checks what the schema cannot: ids are present, the tenant has no `/`, the payload is
    /// the one [`ActionType::payload_name`] asks for, timeouts are positive, a published
    /// event has a name. The error names the field.
    pub fn validate(&self) -> Result<()> {
        let check = Check::new("action", &self.id);
        check.envelope(&self.id, &self.tenant, &self.contact_id, self.chain_depth)?;
        let expected = self.action_type.payload_name();
        if self.payload.name() != expected {
            return Err(check.fail(
                "payload",
                format!(
                    "{} needs a {expected} payload, found {}",
                    self.action_type,
                    self.payload.name()
                ),
            ));
        }
        match &self.payload {
            ActionPayload::AiComplete(AiComplete { timeout_ms, .. })
            | ActionPayload::HttpCall(HttpCall { timeout_ms, .. })
                if *timeout_ms <= 0 =>
            {
                Err(check.fail(
                    "payload.timeout_ms",
                    format!("must be positive, found {timeout_ms}"),
                ))
            }
            ActionPayload::PublishEvent(p) if p.name.is_empty() => {
                Err(check.fail("payload.name", "a published event needs a name"))
            }
            _ => Ok(()),
        }
    }

    /// Encodes the action for the wire: Avro single-object encoding with the current action
    /// schema's fingerprint.
    pub fn encode(&self) -> Result<Vec<u8>> {
        let mut out = Vec::with_capacity(192);
        self.encode_into(&mut out)?;
        Ok(out)
    }

    /// Like [`Action::encode`], appending to `out`. On error `out` is left as it was.
    pub fn encode_into(&self, out: &mut Vec<u8>) -> Result<()> {
        crate::codec::encode(self, out)
    }

    /// Decodes a single-object encoded action written with the current schema or any older
    /// registered one. Never panics. Does not [`validate`](Self::validate).
    pub fn decode(bytes: &[u8]) -> Result<Action> {
        crate::codec::decode(bytes)
    }

    /// The CRC-64-AVRO (Rabin) fingerprint of the current action schema.
    pub fn schema_fingerprint() -> u64 {
        crate::codec::fingerprint::<Action>()
    }
}
