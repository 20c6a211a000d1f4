//! Messenger and Instagram messaging webhooks: `POST /v1/{tenant}/messenger`, signed
//! with the Meta app secret (`X-Hub-Signature-256`); `GET` is the verification handshake.
//!
//! `object` is `page` (Messenger, contact `messenger:<PSID>`) or `instagram` (contact
//! `instagram:<IGSID>`); the channel is the page or account id (`recipient.id`).
//!
//! | `entry[].messaging[]` | event | id |
//! |---|---|---|
//! | `message` (not an echo): text, attachments, `quick_reply` | `message.received` | `messenger:<mid>` |
//! | `postback` | `message.received`, kind `button`, `reply_payload` = payload | `messenger:postback:<mid or sender:timestamp>` |
//! | `reaction` | `reaction.received` (`removed` on `unreact`) | `messenger:reaction:<mid>:<sender>:<timestamp>` |
//! | `delivery` with `mids` | `message.delivered` per mid | `messenger:<mid>:delivered` |
//! | echoes, reads (watermarks only), referrals, … | ignored | |

use axum::http::HeaderMap;
use serde::Deserialize;
use sluice_schemas::{DeliveryPayload, EventType, Media, MessagePayload, Payload, ReactionPayload};

use super::{Adapter, Channel, Normalized, whatsapp};
use crate::{Error, Result, config::MetaConfig};

const ADAPTER: Adapter = Adapter::Messenger;

/// Checks `X-Hub-Signature-256` with the app secret(s).
pub fn verify(config: &MetaConfig, headers: &HeaderMap, body: &[u8]) -> Result<()> {
    whatsapp::verify_meta(ADAPTER, config, headers, body)
}

#[derive(Deserialize)]
struct Notification {
    object: String,
    #[serde(default)]
    entry: Vec<Entry>,
}

#[derive(Deserialize)]
struct Entry {
    #[serde(default)]
    messaging: Vec<Messaging>,
}

#[derive(Deserialize)]
struct Party {
    id: String,
}

#[derive(Deserialize)]
struct Messaging {
    sender: Party,
    recipient: Party,
    timestamp: Option<i64>,
    message: Option<Message>,
    postback: Option<Postback>,
    reaction: Option<Reaction>,
    delivery: Option<Delivery>,
}

#[derive(Deserialize)]
struct Message {
    mid: String,
    text: Option<String>,
    #[serde(default)]
    is_echo: bool,
    quick_reply: Option<QuickReply>,
    #[serde(default)]
    attachments: Vec<Attachment>,
}

#[derive(Deserialize)]
struct QuickReply {
    payload: String,
}

#[derive(Deserialize)]
struct Attachment {
    #[serde(rename = "type")]
    kind: String,
    payload: Option<AttachmentPayload>,
}

#[derive(Deserialize)]
struct AttachmentPayload {
    url: Option<String>,
}

#[derive(Deserialize)]
struct Postback {
    mid: Option<String>,
    title: Option<String>,
    payload: Option<String>,
}

#[derive(Deserialize)]
struct Reaction {
    mid: String,
    action: String,
    emoji: Option<String>,
    reaction: Option<String>,
}

#[derive(Deserialize)]
struct Delivery {
    #[serde(default)]
    mids: Vec<String>,
}

/// Normalizes one notification for `tenant`; `now_ms` stands in for missing timestamps.
pub fn normalize(tenant: &str, body: &[u8], now_ms: i64) -> Result<Normalized> {
    let notification: Notification = super::parse_json(ADAPTER, body)?;
    let (channel_type, scheme) = match notification.object.as_str() {
        "page" => ("messenger", "messenger"),
        "instagram" => ("instagram", "instagram"),
        other => {
            return Err(Error::malformed(
                ADAPTER.as_str(),
                format!("object {other:?} is neither page nor instagram"),
            ));
        }
    };
    let mut out = Normalized::default();
    for item in notification.entry.iter().flat_map(|entry| &entry.messaging) {
        if item.sender.id.is_empty() || item.recipient.id.is_empty() {
            return Err(Error::malformed(
                ADAPTER.as_str(),
                "sender.id and recipient.id are required",
            ));
        }
        let channel = Channel {
            tenant,
            channel_type,
            channel_id: &item.recipient.id,
        };
        let urn = format!("{scheme}:{}", item.sender.id);
        let at = item.timestamp.unwrap_or(now_ms);
        if let Some(message) = item.message.as_ref().filter(|m| !m.is_echo) {
            let payload = message_payload(message);
            let mut event = channel.event(
                format!("{scheme}:{}", message.mid),
                &urn,
                EventType::MessageReceived,
                at,
                payload,
            );
            set_provider_id(&mut event, &message.mid);
            out.events.push(event);
        } else if let Some(postback) = &item.postback {
            let key = postback
                .mid
                .clone()
                .unwrap_or_else(|| format!("{}:{at}", item.sender.id));
            let payload = Payload::Message(MessagePayload {
                text: postback.title.clone(),
                kind: "button".into(),
                media: None,
                reply_payload: postback.payload.clone(),
                edited: false,
            });
            let id = format!("{scheme}:postback:{key}");
            out.events
                .push(channel.event(id, &urn, EventType::MessageReceived, at, payload));
        } else if let Some(reaction) = &item.reaction {
            let payload = Payload::Reaction(ReactionPayload {
                message_id: reaction.mid.clone(),
                emoji: reaction
                    .emoji
                    .clone()
                    .or_else(|| reaction.reaction.clone())
                    .unwrap_or_default(),
                removed: reaction.action == "unreact",
            });
            let id = format!("{scheme}:reaction:{}:{}:{at}", reaction.mid, item.sender.id);
            out.events
                .push(channel.event(id, &urn, EventType::ReactionReceived, at, payload));
        } else if let Some(delivery) = item.delivery.as_ref().filter(|d| !d.mids.is_empty()) {
            for mid in &delivery.mids {
                let payload = Payload::Delivery(DeliveryPayload {
                    message_id: mid.clone(),
                    action_id: None,
                    error_code: None,
                    error: None,
                });
                let id = format!("{scheme}:{mid}:delivered");
                let mut event = channel.event(id, &urn, EventType::MessageDelivered, at, payload);
                set_provider_id(&mut event, mid);
                out.events.push(event);
            }
        } else {
            out.ignore(ADAPTER, "messaging kind");
        }
    }
    Ok(out)
}

fn set_provider_id(event: &mut sluice_schemas::Event, id: &str) {
    if let Some(origin) = event.origin.as_mut() {
        origin.provider_id = Some(id.to_owned());
    }
}

fn message_payload(message: &Message) -> Payload {
    let attachment = message.attachments.first();
    let kind = match (attachment.map(|a| a.kind.as_str()), &message.quick_reply) {
        (_, Some(_)) => "button",
        (Some("image"), _) => "image",
        (Some("video"), _) => "video",
        (Some("audio"), _) => "audio",
        (Some("file"), _) => "document",
        (Some("location"), _) => "location",
        (Some(_), _) => "document",
        (None, _) => "text",
    };
    let media = attachment
        .and_then(|a| a.payload.as_ref()?.url.clone())
        .map(|url| Media {
            url,
            mime_type: None,
            caption: None,
        });
    Payload::Message(MessagePayload {
        text: message.text.clone(),
        kind: kind.into(),
        media,
        reply_payload: message.quick_reply.as_ref().map(|q| q.payload.clone()),
        edited: false,
    })
}
