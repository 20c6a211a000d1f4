//! One module per provider. Each verifies the provider's signature (`verify`) and turns a
//! verified body into normalized [`Event`]s (`normalize`), a pure function of the body,
//! the tenant, the channel and the request time — no I/O, so each is tested with the
//! providers' published example payloads.
//!
//! Event ids are derived from the provider's ids, so a provider's retry of the same
//! update yields the same event id, which the engine drops if it applied it already.

pub mod generic;
pub mod helpdesk;
pub mod meta;
pub mod stripe;
pub mod telegram;
pub mod twilio;
pub mod whatsapp;

use axum::http::HeaderMap;
use sluice_schemas::{Event, EventType, Origin, Payload};

use crate::identity;

/// The adapters, as they appear in routes and metric labels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Adapter {
    /// Telegram Bot API updates.
    Telegram,
    /// WhatsApp Cloud API notifications.
    Whatsapp,
    /// Messenger and Instagram messaging.
    Messenger,
    /// Twilio SMS (and Twilio WhatsApp).
    Twilio,
    /// Stripe events.
    Stripe,
    /// Helpdesk session events.
    Helpdesk,
    /// The generic event endpoint.
    Events,
}

impl Adapter {
    /// Every adapter.
    pub const ALL: [Adapter; 7] = [
        Adapter::Telegram,
        Adapter::Whatsapp,
        Adapter::Messenger,
        Adapter::Twilio,
        Adapter::Stripe,
        Adapter::Helpdesk,
        Adapter::Events,
    ];

    /// The name used in routes, logs and metric labels.
    pub const fn as_str(self) -> &'static str {
        match self {
            Adapter::Telegram => "telegram",
            Adapter::Whatsapp => "whatsapp",
            Adapter::Messenger => "messenger",
            Adapter::Twilio => "twilio",
            Adapter::Stripe => "stripe",
            Adapter::Helpdesk => "helpdesk",
            Adapter::Events => "events",
        }
    }
}

/// What a verified payload became: events to publish, and how many parts of it were
/// deliberately ignored (update kinds Sluice does not model). An all-ignored payload is
/// answered 200 so that the provider stops retrying it.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Normalized {
    /// The events, in the order the provider listed them.
    pub events: Vec<Event>,
    /// How many updates or entries were ignored.
    pub ignored: usize,
}

impl Normalized {
    pub(crate) fn ignore(&mut self, adapter: Adapter, what: &str) {
        tracing::debug!(adapter = adapter.as_str(), what, "ignoring update");
        self.ignored += 1;
    }
}

/// Where a provider's events come from: tenant and channel.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Channel<'a> {
    pub(crate) tenant: &'a str,
    pub(crate) channel_type: &'static str,
    pub(crate) channel_id: &'a str,
}

impl Channel<'_> {
    /// An event about the contact behind `urn`, with the origin filled in.
    pub(crate) fn event(
        &self,
        id: String,
        urn: &str,
        event_type: EventType,
        occurred_at: i64,
        payload: Payload,
    ) -> Event {
        Event {
            id,
            tenant: self.tenant.to_owned(),
            contact_id: identity::contact_id(self.tenant, urn),
            event_type,
            occurred_at,
            session: None,
            origin: Some(Origin {
                channel_type: self.channel_type.to_owned(),
                channel_id: self.channel_id.to_owned(),
                urn: Some(urn.to_owned()),
                username: None,
                provider_id: None,
            }),
            chain_depth: 0,
            payload,
        }
    }
}

/// Sets the origin's user name and provider id.
pub(crate) fn with_origin(
    mut event: Event,
    username: Option<String>,
    provider_id: Option<String>,
) -> Event {
    if let Some(origin) = event.origin.as_mut() {
        origin.username = username;
        origin.provider_id = provider_id;
    }
    event
}

/// A header's value as text, when present and visible ASCII.
pub(crate) fn header<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers.get(name).and_then(|value| value.to_str().ok())
}

/// Parses a JSON body into `T`, naming the adapter and serde's path in the error.
pub(crate) fn parse_json<'a, T: serde::Deserialize<'a>>(
    adapter: Adapter,
    body: &'a [u8],
) -> crate::Result<T> {
    serde_json::from_slice(body)
        .map_err(|e| crate::Error::malformed(adapter.as_str(), format!("invalid JSON: {e}")))
}

/// Unix seconds (as the providers send them) to milliseconds, refusing nonsense.
pub(crate) fn secs_to_ms(adapter: Adapter, secs: i64) -> crate::Result<i64> {
    // 2001-09-09 .. 2286-11-20: anything else is not a webhook timestamp.
    if (1_000_000_000..10_000_000_000).contains(&secs) {
        Ok(secs * 1000)
    } else {
        Err(crate::Error::malformed(
            adapter.as_str(),
            format!("timestamp {secs} is not Unix seconds"),
        ))
    }
}
