//! Routes each action to its connector and turns what happened into an
//! [`Outcome`]: the events to emit and, for a permanent failure, the dead letter.

use std::sync::Arc;

use sluice_schemas::{
    Action, ActionPayload, ActionType, CustomPayload, Event, EventType, Fields, FlowPayload,
    Origin, Payload, ResultPayload, Scalar, identity::LINK_IDENTITY,
};

use super::{
    CallError, Http, OutMessage, Template,
    ai::Ai,
    desk::{Desk, DeskError, DeskStatus},
    helpdesk::{Helpdesk, session_event},
    http_function::HttpFunction,
    profile::{ProfileChange, ProfileStore},
    sms::Sms,
    telegram::Telegram,
    webhook::Signed,
    whatsapp::WhatsApp,
};
use crate::{
    Result,
    config::{ActionsConfig, SignedEndpoint},
    rate_limit::RateLimiters,
    results::{DeadLetter, Outcome, event_for, message_failed, message_sent, reply},
};

/// Every connector, built once per worker.
pub(crate) struct Connectors {
    pub(crate) limits: RateLimiters,
    telegram: Telegram,
    desk: Option<Desk>,
    whatsapp: WhatsApp,
    sms: Sms,
    signed: Signed,
    webhook: Option<SignedEndpoint>,
    crm: Option<SignedEndpoint>,
    ai: Ai,
    function: HttpFunction,
    helpdesk: Helpdesk,
    profiles: Arc<dyn ProfileStore>,
}

/// The connector an action goes through: the unit of bounded concurrency.
pub(crate) fn channel_of(action: &Action) -> &'static str {
    let channel_type = match &action.payload {
        ActionPayload::SendMessage(p) => p.channel_type.as_str(),
        ActionPayload::SendShort(p) => p.channel_type.as_str(),
        ActionPayload::SendTemplate(p) => p.channel_type.as_str(),
        ActionPayload::AiComplete(_) => return "ai",
        ActionPayload::HttpCall(_) => return "function",
        ActionPayload::UpdateField(_) | ActionPayload::Tag(_) => return "profile",
        ActionPayload::SessionChange(_) => return "helpdesk",
        ActionPayload::StartFlow(_) | ActionPayload::PublishEvent(_) => return "events",
    };
    match channel_type {
        "telegram" => "telegram",
        "telegram_desk" => "telegram_desk",
        "whatsapp" => "whatsapp",
        "sms" => "sms",
        _ => "webhook",
    }
}

/// Every connector name [`channel_of`] returns.
pub(crate) const CHANNELS: &[&str] = &[
    "telegram",
    "telegram_desk",
    "whatsapp",
    "sms",
    "webhook",
    "ai",
    "function",
    "profile",
    "helpdesk",
    "events",
];

fn out_message(payload: &ActionPayload) -> Option<OutMessage> {
    Some(match payload {
        ActionPayload::SendMessage(p) => OutMessage {
            channel_type: p.channel_type.clone(),
            channel_id: p.channel_id.clone(),
            to: p.to.clone(),
            text: p.text.clone(),
            media: p.media.clone(),
            buttons: p.buttons.clone(),
            template: None,
            session_id: p.session_id.clone(),
        },
        ActionPayload::SendShort(p) => OutMessage {
            channel_type: p.channel_type.clone(),
            channel_id: p.channel_id.clone(),
            to: p.to.clone(),
            text: Some(p.text.clone()),
            session_id: p.session_id.clone(),
            ..OutMessage::default()
        },
        ActionPayload::SendTemplate(p) => OutMessage {
            channel_type: p.channel_type.clone(),
            channel_id: p.channel_id.clone(),
            to: p.to.clone(),
            template: Some(Template {
                name: p.template.clone(),
                language: p.language.clone(),
                parameters: p.parameters.clone(),
            }),
            ..OutMessage::default()
        },
        _ => return None,
    })
}

fn dead_letter(error: &CallError) -> Option<DeadLetter> {
    Some(DeadLetter {
        kind: if error.permanent {
            "rejected"
        } else {
            "exhausted"
        }
        .to_owned(),
        reason: error.reason.clone(),
    })
}

impl Connectors {
    pub(crate) fn new(
        config: &ActionsConfig,
        http: Http,
        limits: RateLimiters,
        stores: &crate::Stores,
    ) -> Self {
        let telegram = Telegram {
            http: http.clone(),
            config: config.telegram.clone(),
        };
        let signed = Signed { http: http.clone() };
        Connectors {
            limits,
            desk: config.telegram.support_chat_id.map(|chat_id| Desk {
                telegram: telegram.clone(),
                chat_id,
                topics: Arc::clone(&stores.topics),
            }),
            telegram,
            whatsapp: WhatsApp {
                http: http.clone(),
                config: config.whatsapp.clone(),
            },
            sms: Sms {
                http: http.clone(),
                config: config.sms.clone(),
            },
            webhook: config.webhook.clone(),
            crm: config.crm.clone(),
            ai: Ai {
                http: http.clone(),
                config: config.ai.clone(),
            },
            function: HttpFunction { http },
            helpdesk: Helpdesk {
                signed: signed.clone(),
                endpoint: config.helpdesk.clone(),
            },
            signed,
            profiles: Arc::clone(&stores.profiles),
        }
    }

    /// Carries `action` out. An `Err` is our own infrastructure failing (the
    /// profile or topic store): the worker tries the action again later.
    pub(crate) async fn execute(&self, action: &Action, now: fn() -> i64) -> Result<Outcome> {
        if let Some(message) = out_message(&action.payload) {
            return self.send(action, &message, now).await;
        }
        match &action.payload {
            ActionPayload::AiComplete(request) => {
                let result = match self.ai.complete(request).await {
                    Ok(text) => ResultPayload {
                        action_id: action.id.clone(),
                        status: "success".to_owned(),
                        status_code: None,
                        body: Some(text),
                        error: None,
                    },
                    Err(e) => ResultPayload {
                        action_id: action.id.clone(),
                        status: if e.timed_out { "timeout" } else { "error" }.to_owned(),
                        status_code: e.status.map(i32::from),
                        body: None,
                        error: Some(e.reason),
                    },
                };
                Ok(result_outcome(action, EventType::AiResult, result, now()))
            }
            ActionPayload::HttpCall(request) => {
                let result = self.function.call(&action.id, request).await;
                Ok(result_outcome(
                    action,
                    EventType::FunctionResult,
                    result,
                    now(),
                ))
            }
            ActionPayload::UpdateField(p) => {
                let change = ProfileChange::Field {
                    field: p.field.clone(),
                    value: p.value.clone(),
                };
                self.profile(action, change).await
            }
            ActionPayload::Tag(p) => {
                let change = ProfileChange::Tag {
                    tag: p.tag.clone(),
                    add: p.add,
                };
                self.profile(action, change).await
            }
            ActionPayload::SessionChange(change) => {
                let answer = match self.helpdesk.notify(action, change).await {
                    Ok(answer) => answer,
                    Err(e) => return Ok(Outcome::failed(Vec::new(), dead_letter(&e))),
                };
                let status = match action.action_type {
                    ActionType::SessionAssign => Some(DeskStatus::InProgress),
                    ActionType::SessionClose => Some(DeskStatus::Resolved),
                    ActionType::SessionUnassign => Some(DeskStatus::New),
                    _ => None,
                };
                if let (Some(desk), Some(status)) = (&self.desk, status) {
                    // Titles are edited by the default bot (`telegram.token`).
                    match desk
                        .set_status(&action.tenant, &action.contact_id, "", status)
                        .await
                    {
                        Ok(()) => {}
                        Err(DeskError::Store(e)) => return Err(e),
                        Err(DeskError::Call(e)) => {
                            tracing::warn!(action_id = %action.id, reason = %e.reason, "support desk title not updated");
                        }
                    }
                }
                Ok(Outcome::success(vec![session_event(
                    action,
                    change,
                    &answer,
                    now(),
                )]))
            }
            ActionPayload::StartFlow(p) => {
                let payload = Payload::Flow(FlowPayload {
                    flow_id: p.flow_id.clone(),
                    flow_version: 0,
                    run_id: format!("{}/run", action.id),
                    parent_run_id: p.wait.then(|| action.run_id.clone()),
                    outcome: None,
                    error: None,
                    outputs: p.params.clone(),
                });
                let depth = action.chain_depth.saturating_add(1);
                Ok(Outcome::success(vec![event_for(
                    action,
                    "flow",
                    EventType::FlowStarted,
                    depth,
                    now(),
                    payload,
                )]))
            }
            ActionPayload::PublishEvent(p) => {
                let payload = Payload::Custom(CustomPayload {
                    name: p.name.clone(),
                    fields: p.fields.clone(),
                });
                let depth = action.chain_depth.saturating_add(1);
                Ok(Outcome::success(vec![event_for(
                    action,
                    "event",
                    EventType::Custom,
                    depth,
                    now(),
                    payload,
                )]))
            }
            // Messages were handled above.
            ActionPayload::SendMessage(_)
            | ActionPayload::SendShort(_)
            | ActionPayload::SendTemplate(_) => Ok(Outcome::success(Vec::new())),
        }
    }

    async fn send(
        &self,
        action: &Action,
        message: &OutMessage,
        now: fn() -> i64,
    ) -> Result<Outcome> {
        self.limits
            .acquire(&message.channel_type, &message.channel_id, &message.to)
            .await;
        // Events besides the delivery report (the desk's identity link).
        let mut extra = Vec::new();
        let sent = match message.channel_type.as_str() {
            "telegram" if message.template.is_some() => Err(CallError::unsupported(
                "telegram: template messages are WhatsApp's",
            )),
            "telegram" => self.telegram.send(message, None, None).await,
            "telegram_desk" => match &self.desk {
                None => Err(CallError::unsupported(
                    "telegram_desk: no support chat configured",
                )),
                Some(desk) => match desk
                    .mirror(&action.tenant, &action.contact_id, message)
                    .await
                {
                    Ok((id, created)) => {
                        extra.extend(created.map(|urn| link_identity(action, urn, now())));
                        Ok(id)
                    }
                    Err(DeskError::Call(e)) => Err(e),
                    Err(DeskError::Store(e)) => return Err(e),
                },
            },
            "whatsapp" => self.whatsapp.send(message).await,
            "sms" => self.sms.send(message).await,
            other => match &self.webhook {
                Some(endpoint) => self.signed.send(endpoint, action, message).await,
                None => Err(CallError::unsupported(format!(
                    "channel type {other:?} has no connector and no webhook is configured"
                ))),
            },
        };
        let origin = Origin {
            channel_type: message.channel_type.clone(),
            channel_id: message.channel_id.clone(),
            urn: Some(message.to.clone()),
            username: None,
            provider_id: None,
        };
        Ok(match sent {
            Ok(message_id) => {
                let origin = Origin {
                    provider_id: Some(message_id.clone()),
                    ..origin
                };
                let mut events = vec![message_sent(action, origin, message_id, now())];
                events.extend(extra);
                Outcome::success(events)
            }
            Err(error) => Outcome::failed(
                vec![message_failed(
                    action,
                    origin,
                    error.code.clone(),
                    error.reason.clone(),
                    now(),
                )],
                dead_letter(&error),
            ),
        })
    }

    async fn profile(&self, action: &Action, change: ProfileChange) -> Result<Outcome> {
        let Some(crm) = &self.crm else {
            self.profiles
                .apply(
                    &action.tenant,
                    &action.contact_id,
                    &change,
                    action.created_at,
                )
                .await?;
            return Ok(Outcome::success(Vec::new()));
        };
        let mut body = serde_json::json!({
            "action_id": action.id,
            "tenant": action.tenant,
            "contact_id": action.contact_id,
            "at": action.created_at,
        });
        match &change {
            ProfileChange::Field { field, value } => {
                body["field"] = serde_json::json!(field);
                body["value"] = serde_json::json!(value);
            }
            ProfileChange::Tag { tag, add } => {
                body["tag"] = serde_json::json!(tag);
                body["add"] = serde_json::json!(add);
            }
        }
        Ok(
            match self.signed.post("crm", crm, &action.id, &body).await {
                Ok(_) => Outcome::success(Vec::new()),
                Err(e) => Outcome::failed(Vec::new(), dead_letter(&e)),
            },
        )
    }
}

/// `contact.link_identity {urn}` for the action's contact: the desk opened a forum
/// topic for it, so the topic's messages (a manager's reply) belong to it.
fn link_identity(action: &Action, urn: String, now: i64) -> Event {
    let mut fields = Fields::new();
    fields.insert("urn".to_owned(), Scalar::String(urn));
    event_for(
        action,
        "link",
        EventType::Custom,
        action.chain_depth.saturating_add(1),
        now,
        Payload::Custom(CustomPayload {
            name: LINK_IDENTITY.to_owned(),
            fields,
        }),
    )
}

fn result_outcome(
    action: &Action,
    event_type: EventType,
    result: ResultPayload,
    now: i64,
) -> Outcome {
    let failed = result.status != "success";
    let event = reply(action, event_type, result, now);
    if failed {
        Outcome::failed(vec![event], None)
    } else {
        Outcome::success(vec![event])
    }
}
