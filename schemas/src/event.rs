//! [`Event`]: something that happened to one contact (`schemas/event.avsc`).

use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::kinds::EventType;
use crate::payload::{
    CustomPayload, DeliveryPayload, FlowPayload, MessagePayload, PaymentPayload,
    ProfileChangePayload, ReactionPayload, ResultPayload, TimerPayload,
};
use crate::validate::Check;

/// A normalized event about one contact: Kafka topic `sluice.events`, key
/// `tenant/contact_id` ([`Event::key`]), value [`Event::encode`].
///
/// The same type is the JSON form of an event (`sluice dev`'s JSON Lines, the generic ingest
/// endpoint): `serde_json` reads and writes it directly; absent optional fields are omitted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Unique id and idempotency key, derived from the provider's id.
    pub id: String,
    /// The business the contact belongs to.
    pub tenant: String,
    /// The contact, unique within the tenant.
    pub contact_id: String,
    /// What happened.
    #[serde(rename = "type")]
    pub event_type: EventType,
    /// When it happened, Unix milliseconds (`timestamp-millis`).
    pub occurred_at: i64,
    /// The conversation session the event belongs to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session: Option<Session>,
    /// Where the event came from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<Origin>,
    /// How many flow-made events led to this one; bounds chains of flows.
    #[serde(default)]
    pub chain_depth: i32,
    /// The details, which must fit [`Event::event_type`] (see [`Event::validate`]).
    #[serde(default, skip_serializing_if = "Payload::is_none")]
    pub payload: Payload,
}

/// The conversation session an event belongs to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Session {
    /// The session.
    pub id: String,
    /// bot, human, ...
    #[serde(rename = "type")]
    pub session_type: String,
    /// open, assigned, closed, ...
    pub status: String,
    /// telegram, whatsapp, sms, web, ...
    pub channel_type: String,
    /// The channel (bot, phone number, widget) within its type.
    pub channel_id: String,
    /// The agent the session is assigned to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assignee: Option<String>,
    /// The message the session was closed with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub closing_message: Option<String>,
}

/// Where an event came from: the channel identity and the provider's own id.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Origin {
    /// telegram, whatsapp, sms, web, ...
    pub channel_type: String,
    /// The channel within its type.
    pub channel_id: String,
    /// Channel identity, e.g. `telegram:123`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub urn: Option<String>,
    /// The contact's user name on the channel.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// The provider's id for the message or update.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider_id: Option<String>,
}

/// The payload union of an event. Variant order is the Avro union's branch order, which is
/// how apache-avro maps them (`null` is [`Payload::None`], each record a newtype variant).
///
/// In JSON a payload is externally tagged, `{"message": {"kind": "text", ...}}`; no payload
/// is written by leaving the field out (`"none"` is accepted too).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Payload {
    /// No payload (`contact.created`, `contact.blocked`, `session.*`).
    #[default]
    None,
    /// `message.received`.
    Message(MessagePayload),
    /// `message.sent` / `delivered` / `read` / `failed`.
    Delivery(DeliveryPayload),
    /// `reaction.received`.
    Reaction(ReactionPayload),
    /// `payment.received`.
    Payment(PaymentPayload),
    /// `contact.field_updated`.
    ProfileChange(ProfileChangePayload),
    /// `flow.started` / `completed` / `failed`.
    Flow(FlowPayload),
    /// `custom`.
    Custom(CustomPayload),
    /// `function.result` / `ai.result`.
    Result(ResultPayload),
    /// `wait.expired`.
    Timer(TimerPayload),
}

impl Payload {
    /// Whether this is [`Payload::None`].
    pub fn is_none(&self) -> bool {
        matches!(self, Payload::None)
    }

    /// The variant's name, as in JSON (`none`, `message`, `profile_change`, ...).
    pub fn name(&self) -> &'static str {
        match self {
            Payload::None => "none",
            Payload::Message(_) => "message",
            Payload::Delivery(_) => "delivery",
            Payload::Reaction(_) => "reaction",
            Payload::Payment(_) => "payment",
            Payload::ProfileChange(_) => "profile_change",
            Payload::Flow(_) => "flow",
            Payload::Custom(_) => "custom",
            Payload::Result(_) => "result",
            Payload::Timer(_) => "timer",
        }
    }
}

impl EventType {
    /// The name of the [`Payload`] variant an event of this type carries.
    pub fn payload_name(self) -> &'static str {
        use EventType::*;
        match self {
            ContactCreated | ContactBlocked | SessionCreated | SessionReopened | SessionClosed
            | SessionAssigned | SessionUnassigned => "none",
            ContactFieldUpdated => "profile_change",
            MessageReceived => "message",
            MessageSent | MessageDelivered | MessageRead | MessageFailed => "delivery",
            ReactionReceived => "reaction",
            PaymentReceived => "payment",
            FlowStarted | FlowCompleted | FlowFailed => "flow",
            WaitExpired => "timer",
            Custom => "custom",
            FunctionResult | AiResult => "result",
        }
    }

    /// Whether an event of this type must say which session it belongs to.
    pub fn needs_session(self) -> bool {
        use EventType::*;
        matches!(
            self,
            SessionCreated | SessionReopened | SessionClosed | SessionAssigned | SessionUnassigned
        )
    }
}

impl Event {
    /// The Kafka key, `tenant/contact_id`: one contact is always on one partition.
    pub fn key(&self) -> String {
        format!("{}/{}", self.tenant, self.contact_id)
    }

    /// Checks what the schema cannot: ids are present, the tenant has no `/` (it would make
    /// the key ambiguous), the payload is the one [`EventType::payload_name`] asks for,
    /// session events carry their session, custom events their name.
    ///
    /// The error names the field; the engine sends an invalid event to the dead-letter
    /// topic with that message.
    pub fn validate(&self) -> Result<()> {
        let check = Check::new("event", &self.id);
        check.envelope(&self.id, &self.tenant, &self.contact_id, self.chain_depth)?;
        let expected = self.event_type.payload_name();
        if self.payload.name() != expected {
            return Err(check.fail(
                "payload",
                if expected == "none" {
                    format!(
                        "{} carries no payload, found a {} payload",
                        self.event_type,
                        self.payload.name()
                    )
                } else {
                    format!(
                        "{} needs a {expected} payload, found {}",
                        self.event_type,
                        self.payload.name()
                    )
                },
            ));
        }
        if self.event_type.needs_session() && self.session.is_none() {
            return Err(check.fail("session", format!("{} needs a session", self.event_type)));
        }
        match &self.payload {
            Payload::Custom(custom) if custom.name.is_empty() => {
                Err(check.fail("payload.name", "a custom event needs a name"))
            }
            Payload::Payment(payment) if !is_currency_code(&payment.currency) => Err(check.fail(
                "payload.currency",
                format!(
                    "{:?} is not an ISO 4217 code (three capital letters)",
                    payment.currency
                ),
            )),
            _ => Ok(()),
        }
    }

    /// Encodes the event for the wire: Avro single-object encoding with the current event
    /// schema's fingerprint.
    pub fn encode(&self) -> Result<Vec<u8>> {
        let mut out = Vec::with_capacity(192);
        self.encode_into(&mut out)?;
        Ok(out)
    }

    /// Like [`Event::encode`], appending to `out` (reuse one buffer on hot paths). On error
    /// `out` is left as it was.
    pub fn encode_into(&self, out: &mut Vec<u8>) -> Result<()> {
        crate::codec::encode(self, out)
    }

    /// Decodes a single-object encoded event written with the current schema or any older
    /// registered one (resolved to the current schema, defaults filled in). Never panics;
    /// every failure is an [`Error`](crate::Error) that says what was wrong. Does not [`validate`](Self::validate).
    pub fn decode(bytes: &[u8]) -> Result<Event> {
        crate::codec::decode(bytes)
    }

    /// The CRC-64-AVRO (Rabin) fingerprint of the current event schema, as written in the
    /// single-object header.
    pub fn schema_fingerprint() -> u64 {
        crate::codec::fingerprint::<Event>()
    }
}

fn is_currency_code(code: &str) -> bool {
    code.len() == 3 && code.bytes().all(|b| b.is_ascii_uppercase())
}
