//! The records of the [`Payload`](crate::Payload) union of an event (`schemas/event.avsc`).
//!
//! Struct names equal the Avro record names (apache-avro's schema-aware deserializer checks
//! them) and fields are declared in schema order (its serializer buffers fields that arrive
//! out of order). Optional fields are omitted from JSON when absent and default when missing.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::scalar::Fields;

/// `message.received`: what the contact sent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MessagePayload {
    /// The text, or the caption of a media message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// text, image, video, audio, document, sticker, location, contact, interactive, button.
    pub kind: String,
    /// The attachment, when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media: Option<Media>,
    /// The id of the button or list entry the contact chose.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_payload: Option<String>,
    /// The contact edited an earlier message.
    #[serde(default)]
    pub edited: bool,
}

/// An attachment of a received message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Media {
    /// Where to fetch it.
    pub url: String,
    /// e.g. `image/jpeg`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mime_type: Option<String>,
    /// The caption the contact wrote.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub caption: Option<String>,
}

/// `message.sent` / `message.delivered` / `message.read` / `message.failed`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeliveryPayload {
    /// The provider's message id.
    pub message_id: String,
    /// The action that sent the message, when Sluice sent it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action_id: Option<String>,
    /// The provider's error code (`message.failed`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_code: Option<String>,
    /// The provider's error message (`message.failed`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// `reaction.received`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReactionPayload {
    /// The message reacted to.
    pub message_id: String,
    /// The reaction.
    pub emoji: String,
    /// The contact took the reaction back.
    #[serde(default)]
    pub removed: bool,
}

/// `payment.received`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PaymentPayload {
    /// The provider's payment id.
    pub payment_id: String,
    /// Amount in the currency's minor units (cents).
    pub amount_minor: i64,
    /// ISO 4217 code, e.g. `EUR`.
    pub currency: String,
    /// What was paid for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// `contact.field_updated`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProfileChangePayload {
    /// The profile field.
    pub field: String,
    /// Its value before, if it had one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub old: Option<String>,
    /// Its value now, if it still has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub new: Option<String>,
}

/// `flow.started` / `flow.completed` / `flow.failed`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FlowPayload {
    /// The flow.
    pub flow_id: String,
    /// The version the run is pinned to.
    pub flow_version: i32,
    /// The run.
    pub run_id: String,
    /// The run that called this one as a sub-flow.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_run_id: Option<String>,
    /// How the run ended (`flow.completed`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<String>,
    /// Why the run failed (`flow.failed`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Values the run hands back to its caller.
    #[serde(default)]
    pub outputs: BTreeMap<String, String>,
}

/// `custom`: an event named by the business, with JSON-like fields.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CustomPayload {
    /// The custom event's name, what flow triggers match on.
    pub name: String,
    /// Its fields.
    #[serde(default)]
    pub fields: Fields,
}

/// `function.result` / `ai.result`: the reply to the action that asked.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResultPayload {
    /// The action this replies to.
    pub action_id: String,
    /// `success`, `error` or `timeout`.
    pub status: String,
    /// The HTTP status, for `function.result`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_code: Option<i32>,
    /// The response body or the completion.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    /// What went wrong.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// `wait.expired`: a durable timer fired.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TimerPayload {
    /// The run that waits.
    pub run_id: String,
    /// The node it waits in.
    pub node_id: String,
    /// When the timer was due, Unix milliseconds.
    pub due_at: i64,
}
