//! Session actions: `session.assign`, `unassign`, `close` and `survey` are posted
//! to the helpdesk webhook (signed, with the action id as idempotency key), then
//! announced as `session.assigned` / `session.unassigned` / `session.closed`
//! events (a survey as a `custom` event named `session.survey`), and mirrored into
//! the support desk's topic title when the desk is on.
//!
//! The helpdesk may answer with the session's details —
//! `{"session": {"type", "status", "channel_type", "channel_id"}}` — which the
//! event carries; without them the event says `human` / `unknown`.

use serde_json::{Value, json};
use sluice_schemas::{
    Action, ActionType, CustomPayload, EventType, Payload, Session, SessionChange,
};

use super::{CallError, webhook::Signed};
use crate::{config::SignedEndpoint, results::event_for};

/// Posts session changes to the helpdesk.
#[derive(Debug, Clone)]
pub(crate) struct Helpdesk {
    pub(crate) signed: Signed,
    pub(crate) endpoint: Option<SignedEndpoint>,
}

impl Helpdesk {
    /// Tells the helpdesk (when one is configured); returns its answer.
    pub(crate) async fn notify(
        &self,
        action: &Action,
        change: &SessionChange,
    ) -> Result<Value, CallError> {
        let Some(endpoint) = &self.endpoint else {
            return Ok(Value::Null);
        };
        let body = json!({
            "action_id": action.id,
            "type": action.action_type.as_str(),
            "tenant": action.tenant,
            "contact_id": action.contact_id,
            "session_id": change.session_id,
            "user": change.user,
            "team": change.team,
            "message": change.message,
        });
        let reply = self
            .signed
            .post("helpdesk", endpoint, &action.id, &body)
            .await?;
        Ok(reply.json())
    }
}

/// The event announcing a session change.
pub(crate) fn session_event(
    action: &Action,
    change: &SessionChange,
    answer: &Value,
    now: i64,
) -> sluice_schemas::Event {
    let (event_type, status) = match action.action_type {
        ActionType::SessionAssign => (EventType::SessionAssigned, "assigned"),
        ActionType::SessionUnassign => (EventType::SessionUnassigned, "open"),
        ActionType::SessionClose => (EventType::SessionClosed, "closed"),
        _ => (EventType::Custom, "open"),
    };
    let field = |name: &str, default: &str| {
        answer["session"][name]
            .as_str()
            .unwrap_or(default)
            .to_owned()
    };
    let session = Session {
        id: change.session_id.clone(),
        session_type: field("type", "human"),
        status: field("status", status),
        channel_type: field("channel_type", "unknown"),
        channel_id: field("channel_id", "unknown"),
        assignee: change
            .user
            .clone()
            .filter(|_| event_type == EventType::SessionAssigned),
        closing_message: change
            .message
            .clone()
            .filter(|_| event_type == EventType::SessionClosed),
    };
    let payload = if event_type == EventType::Custom {
        let mut fields = sluice_schemas::Fields::new();
        fields.insert("session_id".to_owned(), change.session_id.clone().into());
        if let Some(survey) = &change.message {
            fields.insert("survey".to_owned(), survey.clone().into());
        }
        Payload::Custom(CustomPayload {
            name: "session.survey".to_owned(),
            fields,
        })
    } else {
        Payload::None
    };
    let mut event = event_for(
        action,
        "session",
        event_type,
        action.chain_depth,
        now,
        payload,
    );
    event.session = Some(session);
    event
}
