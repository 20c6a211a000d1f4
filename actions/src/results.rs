//! What an action's execution reports back: the events it emits to
//! `sluice.events` (`message.sent` / `message.failed`, `ai.result`,
//! `function.result`, session events, custom events, flow starts) and, for a
//! permanent failure, the reason it goes to `sluice.dlq`.
//!
//! Event ids are derived from the action id (`<action id>/<suffix>`), and the whole
//! [`Outcome`] is stored with the action's dedupe claim before it is published, so
//! a redelivered action re-publishes exactly the same events — which the engine
//! drops by id — instead of executing again.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use sluice_infra::bus::{Delivered, EventBus, Record};
use sluice_schemas::{Action, DeliveryPayload, Event, EventType, Origin, Payload, ResultPayload};

use crate::Result;

/// How an action ended, for metrics and the stored outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Done as asked.
    Success,
    /// The provider refused it or retries ran out; reported back to the flow.
    Failed,
}

impl Status {
    /// The metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Success => "success",
            Status::Failed => "failed",
        }
    }
}

/// Everything an executed action leads to; stored with its claim.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Outcome {
    /// How it ended.
    pub status: Status,
    /// Events to publish to the events topic.
    #[serde(default)]
    pub events: Vec<Event>,
    /// Why the action goes to the dead-letter topic, when it does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dead_letter: Option<DeadLetter>,
}

/// A dead-letter reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeadLetter {
    /// Metric label: `rejected` (a permanent 4xx or an unsupported request),
    /// `exhausted` (retries ran out).
    pub kind: String,
    /// The reason, for the `sluice.error` header.
    pub reason: String,
}

impl Outcome {
    /// Success with these events.
    pub fn success(events: Vec<Event>) -> Self {
        Outcome {
            status: Status::Success,
            events,
            dead_letter: None,
        }
    }

    /// Failure reported by these events, dead-lettered when `dead_letter` is set.
    pub fn failed(events: Vec<Event>, dead_letter: Option<DeadLetter>) -> Self {
        Outcome {
            status: Status::Failed,
            events,
            dead_letter,
        }
    }
}

/// The base of every event an action emits: id `<action id>/<suffix>`, the action's
/// tenant and contact, `chain_depth` as given.
pub fn event_for(
    action: &Action,
    suffix: &str,
    event_type: EventType,
    chain_depth: i32,
    now: i64,
    payload: Payload,
) -> Event {
    Event {
        id: format!("{}/{suffix}", action.id),
        tenant: action.tenant.clone(),
        contact_id: action.contact_id.clone(),
        event_type,
        occurred_at: now,
        session: None,
        origin: None,
        chain_depth,
        payload,
    }
}

/// `message.sent` with the provider's message id.
pub fn message_sent(action: &Action, origin: Origin, message_id: String, now: i64) -> Event {
    let mut event = event_for(
        action,
        "sent",
        EventType::MessageSent,
        action.chain_depth,
        now,
        Payload::Delivery(DeliveryPayload {
            message_id,
            action_id: Some(action.id.clone()),
            error_code: None,
            error: None,
        }),
    );
    event.origin = Some(origin);
    event
}

/// `message.failed` with the reason.
pub fn message_failed(
    action: &Action,
    origin: Origin,
    error_code: Option<String>,
    error: String,
    now: i64,
) -> Event {
    let mut event = event_for(
        action,
        "failed",
        EventType::MessageFailed,
        action.chain_depth,
        now,
        Payload::Delivery(DeliveryPayload {
            message_id: String::new(),
            action_id: Some(action.id.clone()),
            error_code,
            error: Some(error),
        }),
    );
    event.origin = Some(origin);
    event
}

/// `ai.result` / `function.result`, correlated by the action id.
pub fn reply(action: &Action, event_type: EventType, result: ResultPayload, now: i64) -> Event {
    event_for(
        action,
        "result",
        event_type,
        action.chain_depth,
        now,
        Payload::Result(result),
    )
}

/// Publishes outcomes: events to the events topic, dead letters to the DLQ.
#[derive(Clone)]
pub(crate) struct Publisher {
    pub(crate) bus: Arc<dyn EventBus>,
    pub(crate) events_topic: String,
    pub(crate) dlq_topic: String,
}

impl std::fmt::Debug for Publisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Publisher")
            .field("events_topic", &self.events_topic)
            .field("dlq_topic", &self.dlq_topic)
            .finish_non_exhaustive()
    }
}

impl Publisher {
    /// Publishes `outcome` of the action read from `source`.
    pub(crate) async fn publish(&self, outcome: &Outcome, source: &Delivered) -> Result<()> {
        if !outcome.events.is_empty() {
            let records = outcome
                .events
                .iter()
                .map(|event| Ok(Record::new(event.key(), event.encode()?)))
                .collect::<Result<Vec<_>>>()?;
            self.bus.publish(&self.events_topic, records).await?;
        }
        if let Some(dead) = &outcome.dead_letter {
            self.dead_letter(source, &dead.reason).await?;
        }
        Ok(())
    }

    /// Sends the record read from `source` to the DLQ with `reason`.
    pub(crate) async fn dead_letter(&self, source: &Delivered, reason: &str) -> Result<()> {
        let record = Record::new(source.key.clone(), source.payload.clone())
            .with_header("sluice.error", reason)
            .with_header(
                "sluice.source",
                format!(
                    "{}/{}/{}",
                    source.topic, source.position.partition, source.position.offset
                ),
            );
        self.bus.publish(&self.dlq_topic, vec![record]).await?;
        Ok(())
    }
}
