//! Helpdesk session events: `POST /v1/{tenant}/helpdesk`, signed like the generic
//! endpoint (`X-Sluice-Signature: sha256=<hex>` with the tenant's `helpdesk` secret).
//!
//! Helpdesks (Zendesk, Freshdesk, a home-grown agent UI) differ; their webhook is
//! configured — or a small relay written — to send this shape, one event per request:
//!
//! ```json
//! {"id": "T-88231/assigned/3", "type": "session.assigned", "occurred_at": 1767225600123,
//!  "contact": {"urn": "telegram:1111111"},
//!  "session": {"id": "T-88231", "status": "assigned", "channel_type": "telegram",
//!              "channel_id": "support_bot", "assignee": "agent-7"}}
//! ```
//!
//! - `type`: `session.created`, `session.reopened`, `session.closed`, `session.assigned`
//!   or `session.unassigned`; anything else is 400.
//! - `contact`: `{"urn": …}` (the contact id is derived as everywhere) or `{"id": …}`.
//! - `session.type` defaults to `human`; `closing_message` goes with `session.closed`.
//! - Event id: `helpdesk:<id>` — the helpdesk's own id for this change, stable across its
//!   retries.

use serde::Deserialize;
use sluice_schemas::{Event, EventType, Origin, Payload, Session};

use super::{Adapter, Normalized, parse_json};
use crate::{Error, Result, identity};

const ADAPTER: Adapter = Adapter::Helpdesk;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HelpdeskEvent {
    id: String,
    #[serde(rename = "type")]
    kind: EventType,
    occurred_at: i64,
    contact: ContactRef,
    session: SessionIn,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ContactRef {
    urn: Option<String>,
    id: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SessionIn {
    id: String,
    #[serde(rename = "type", default = "human")]
    session_type: String,
    status: String,
    channel_type: String,
    channel_id: String,
    assignee: Option<String>,
    closing_message: Option<String>,
}

fn human() -> String {
    "human".to_owned()
}

/// Normalizes one helpdesk event for `tenant`.
pub fn normalize(tenant: &str, body: &[u8]) -> Result<Normalized> {
    let input: HelpdeskEvent = parse_json(ADAPTER, body)?;
    if !input.kind.needs_session() {
        return Err(Error::malformed(
            ADAPTER.as_str(),
            format!("type {} is not a session event", input.kind),
        ));
    }
    if input.id.is_empty() || input.session.id.is_empty() {
        return Err(Error::malformed(
            ADAPTER.as_str(),
            "id and session.id must not be empty",
        ));
    }
    let (contact_id, urn) = match (input.contact.urn, input.contact.id) {
        (Some(urn), _) if identity::is_urn(&urn) => (identity::contact_id(tenant, &urn), Some(urn)),
        (None, Some(id)) if !id.is_empty() => (id, None),
        _ => {
            return Err(Error::malformed(
                ADAPTER.as_str(),
                "contact needs a urn (scheme:path) or an id",
            ));
        }
    };
    let session = input.session;
    let event = Event {
        id: format!("helpdesk:{}", input.id),
        tenant: tenant.to_owned(),
        contact_id,
        event_type: input.kind,
        occurred_at: input.occurred_at,
        origin: Some(Origin {
            channel_type: session.channel_type.clone(),
            channel_id: session.channel_id.clone(),
            urn,
            username: None,
            provider_id: Some(input.id),
        }),
        session: Some(Session {
            id: session.id,
            session_type: session.session_type,
            status: session.status,
            channel_type: session.channel_type,
            channel_id: session.channel_id,
            assignee: session.assignee,
            closing_message: session.closing_message,
        }),
        chain_depth: 0,
        payload: Payload::None,
    };
    event
        .validate()
        .map_err(|e| Error::malformed(ADAPTER.as_str(), e.to_string()))?;
    Ok(Normalized {
        events: vec![event],
        ignored: 0,
    })
}
