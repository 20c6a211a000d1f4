//! The generic endpoint for systems without an adapter: `POST /v1/{tenant}/events`, one
//! [`Event`] in its JSON form (`schemas/README.md`) or an array of them, signed with
//! `X-Sluice-Signature: sha256=<hex>` (HMAC-SHA256 of the raw body with the tenant's
//! `events` secret).
//!
//! - Each event's `tenant` must be the tenant of the path (it may be left out and is then
//!   filled in): a tenant's secret cannot write into another tenant's contacts.
//! - `contact_id` may be given, or left out when `origin.urn` is set: it is then derived
//!   from the URN exactly as the channel adapters derive it, so upstream events land on
//!   the same contact as the channel's (`identity::contact_id`).
//! - Every event must pass [`Event::validate`]; the first invalid one rejects the whole
//!   request with 400 naming its index, id and field — nothing of it is published.
//! - The event's own `id` is its idempotency key; resend the same id to retry.

use serde_json::Value;
use sluice_schemas::Event;

use super::{Adapter, Normalized};
use crate::{Error, Result, identity};

const ADAPTER: Adapter = Adapter::Events;

/// The largest number of events one request may carry.
pub const MAX_BATCH: usize = 1000;

/// Normalizes a body holding one event or an array of events for `tenant`.
pub fn normalize(tenant: &str, body: &[u8]) -> Result<Normalized> {
    let value: Value = super::parse_json(ADAPTER, body)?;
    let items = match value {
        Value::Array(items) => items,
        single @ Value::Object(_) => vec![single],
        _ => {
            return Err(Error::malformed(
                ADAPTER.as_str(),
                "expected an event object or an array of events",
            ));
        }
    };
    if items.is_empty() || items.len() > MAX_BATCH {
        return Err(Error::malformed(
            ADAPTER.as_str(),
            format!(
                "a batch holds 1 to {MAX_BATCH} events, found {}",
                items.len()
            ),
        ));
    }
    let mut out = Normalized::default();
    out.events.reserve(items.len());
    for (index, item) in items.into_iter().enumerate() {
        let event = event(tenant, item).map_err(|reason| {
            Error::malformed(ADAPTER.as_str(), format!("event [{index}]: {reason}"))
        })?;
        if event.tenant != tenant {
            return Err(Error::Forbidden {
                adapter: ADAPTER.as_str(),
                reason: format!(
                    "event [{index}] ({}) belongs to tenant {:?}, not {tenant:?}",
                    event.id, event.tenant
                ),
            });
        }
        out.events.push(event);
    }
    Ok(out)
}

fn event(tenant: &str, mut item: Value) -> Result<Event, String> {
    let object = item
        .as_object_mut()
        .ok_or_else(|| "not a JSON object".to_owned())?;
    object
        .entry("tenant")
        .or_insert_with(|| Value::String(tenant.to_owned()));
    let has_contact = object
        .get("contact_id")
        .and_then(Value::as_str)
        .is_some_and(|c| !c.is_empty());
    if !has_contact {
        let urn = object
            .get("origin")
            .and_then(|origin| origin.get("urn"))
            .and_then(Value::as_str)
            .ok_or_else(|| "needs contact_id, or origin.urn to derive it from".to_owned())?;
        if !identity::is_urn(urn) {
            return Err(format!("origin.urn {urn:?} is not scheme:path"));
        }
        let contact = identity::contact_id(tenant, urn);
        object.insert("contact_id".to_owned(), Value::String(contact));
    }
    let event: Event = serde_json::from_value(item).map_err(|e| e.to_string())?;
    event.validate().map_err(|e| e.to_string())?;
    Ok(event)
}
