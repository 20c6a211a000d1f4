//! WhatsApp Cloud API webhooks: `POST /v1/{tenant}/whatsapp`, signed with the Meta app
//! secret (`X-Hub-Signature-256`), and Meta's verification handshake on `GET`.
//!
//! A notification batches `entry[].changes[]`; only `field: messages` is modelled.
//!
//! | in `value` | event | id |
//! |---|---|---|
//! | `messages[]` text / media / location / contacts | `message.received` | `whatsapp:<wamid>` |
//! | `messages[]` `interactive` (`button_reply`, `list_reply`) | `message.received`, kind `interactive`, `reply_payload` = the reply id | `whatsapp:<wamid>` |
//! | `messages[]` `button` (template quick reply) | `message.received`, kind `button`, `reply_payload` = payload | `whatsapp:<wamid>` |
//! | `messages[]` `reaction` | `reaction.received` (`removed` when the emoji is absent) | `whatsapp:<wamid>` |
//! | `statuses[]` sent / delivered / read / failed | `message.<status>`, the first error's code and title | `whatsapp:<wamid>:<status>` |
//!
//! Contact: `whatsapp:<wa_id digits>`; channel: the business `phone_number_id`. A status's
//! `biz_opaque_callback_data` becomes the delivery's `action_id`: the action worker sends
//! the action id there so results correlate. Media URLs are `whatsapp-media:<media id>`.

use axum::http::HeaderMap;
use serde::Deserialize;
use sluice_schemas::{DeliveryPayload, EventType, Media, MessagePayload, Payload, ReactionPayload};

use super::{Adapter, Channel, Normalized, header, parse_json, secs_to_ms, with_origin};
use crate::{Error, Result, config::MetaConfig, identity, signature};

const ADAPTER: Adapter = Adapter::Whatsapp;

/// Checks `X-Hub-Signature-256` with the app secret(s).
pub fn verify(config: &MetaConfig, headers: &HeaderMap, body: &[u8]) -> Result<()> {
    verify_meta(ADAPTER, config, headers, body)
}

pub(crate) fn verify_meta(
    adapter: Adapter,
    config: &MetaConfig,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<()> {
    signature::verify_sha256_header(
        adapter.as_str(),
        &config.app_secret.0,
        body,
        header(headers, "x-hub-signature-256"),
    )
}

/// Meta's subscription handshake: answers `hub.challenge` when `hub.mode` is `subscribe`
/// and `hub.verify_token` is the configured token.
pub fn handshake(
    adapter: Adapter,
    config: &MetaConfig,
    mode: Option<&str>,
    token: Option<&str>,
    challenge: Option<&str>,
) -> Result<String> {
    let forbidden = |reason: &str| Error::Forbidden {
        adapter: adapter.as_str(),
        reason: reason.to_owned(),
    };
    let expected = config
        .verify_token
        .as_ref()
        .ok_or_else(|| forbidden("no verify_token configured"))?;
    if mode != Some("subscribe") {
        return Err(forbidden("hub.mode is not subscribe"));
    }
    signature::verify_token(adapter.as_str(), expected, token)
        .map_err(|_| forbidden("hub.verify_token does not match"))?;
    challenge
        .map(str::to_owned)
        .ok_or_else(|| forbidden("hub.challenge missing"))
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
    changes: Vec<Change>,
}

#[derive(Deserialize)]
struct Change {
    field: String,
    value: Value,
}

#[derive(Deserialize)]
struct Value {
    metadata: Option<Metadata>,
    #[serde(default)]
    contacts: Vec<Contact>,
    #[serde(default)]
    messages: Vec<Message>,
    #[serde(default)]
    statuses: Vec<Status>,
}

#[derive(Deserialize)]
struct Metadata {
    phone_number_id: String,
}

#[derive(Deserialize)]
struct Contact {
    wa_id: Option<String>,
    profile: Option<Profile>,
}

#[derive(Deserialize)]
struct Profile {
    name: Option<String>,
}

#[derive(Deserialize)]
struct Message {
    from: String,
    id: String,
    timestamp: String,
    #[serde(rename = "type")]
    kind: String,
    text: Option<Text>,
    image: Option<MediaRef>,
    video: Option<MediaRef>,
    audio: Option<MediaRef>,
    document: Option<MediaRef>,
    sticker: Option<MediaRef>,
    location: Option<Location>,
    interactive: Option<Interactive>,
    button: Option<Button>,
    reaction: Option<Reaction>,
}

#[derive(Deserialize)]
struct Text {
    body: String,
}

#[derive(Deserialize)]
struct MediaRef {
    id: String,
    mime_type: Option<String>,
    caption: Option<String>,
}

#[derive(Deserialize)]
struct Location {
    latitude: f64,
    longitude: f64,
    name: Option<String>,
}

#[derive(Deserialize)]
struct Interactive {
    button_reply: Option<Reply>,
    list_reply: Option<Reply>,
}

#[derive(Deserialize)]
struct Reply {
    id: String,
    title: String,
}

#[derive(Deserialize)]
struct Button {
    payload: Option<String>,
    text: Option<String>,
}

#[derive(Deserialize)]
struct Reaction {
    message_id: String,
    emoji: Option<String>,
}

#[derive(Deserialize)]
struct Status {
    id: String,
    status: String,
    timestamp: String,
    recipient_id: String,
    biz_opaque_callback_data: Option<String>,
    #[serde(default)]
    errors: Vec<StatusError>,
}

#[derive(Deserialize)]
struct StatusError {
    code: Option<i64>,
    title: Option<String>,
    message: Option<String>,
    error_data: Option<ErrorData>,
}

#[derive(Deserialize)]
struct ErrorData {
    details: Option<String>,
}

fn timestamp(raw: &str) -> Result<i64> {
    let secs = raw.parse::<i64>().map_err(|_| {
        Error::malformed(
            ADAPTER.as_str(),
            format!("timestamp {raw:?} is not a number"),
        )
    })?;
    secs_to_ms(ADAPTER, secs)
}

fn urn(wa_id: &str) -> Result<String> {
    identity::whatsapp_urn(wa_id).ok_or_else(|| {
        Error::malformed(
            ADAPTER.as_str(),
            format!("{wa_id:?} is not an E.164 number"),
        )
    })
}

/// Normalizes one notification for `tenant`.
pub fn normalize(tenant: &str, body: &[u8]) -> Result<Normalized> {
    let notification: Notification = parse_json(ADAPTER, body)?;
    if notification.object != "whatsapp_business_account" {
        return Err(Error::malformed(
            ADAPTER.as_str(),
            format!(
                "object {:?} is not whatsapp_business_account",
                notification.object
            ),
        ));
    }
    let mut out = Normalized::default();
    for change in notification.entry.iter().flat_map(|entry| &entry.changes) {
        if change.field != "messages" {
            out.ignore(ADAPTER, "change field");
            continue;
        }
        let value = &change.value;
        let phone_id = value
            .metadata
            .as_ref()
            .map(|m| m.phone_number_id.as_str())
            .ok_or_else(|| Error::malformed(ADAPTER.as_str(), "value.metadata missing"))?;
        let channel = Channel {
            tenant,
            channel_type: "whatsapp",
            channel_id: phone_id,
        };
        for message in &value.messages {
            let name = value
                .contacts
                .iter()
                .find(|c| c.wa_id.as_deref() == Some(message.from.as_str()))
                .and_then(|c| c.profile.as_ref()?.name.clone());
            message_event(&channel, message, name, &mut out)?;
        }
        for status in &value.statuses {
            status_event(&channel, status, &mut out)?;
        }
    }
    Ok(out)
}

fn message_event(
    channel: &Channel<'_>,
    message: &Message,
    name: Option<String>,
    out: &mut Normalized,
) -> Result<()> {
    let urn = urn(&message.from)?;
    let at = timestamp(&message.timestamp)?;
    let id = format!("whatsapp:{}", message.id);
    let (event_type, payload) = match message_payload(message) {
        Some(found) => found,
        None => {
            out.ignore(ADAPTER, "message type");
            return Ok(());
        }
    };
    let event = channel.event(id, &urn, event_type, at, payload);
    out.events
        .push(with_origin(event, name, Some(message.id.clone())));
    Ok(())
}

fn message_payload(message: &Message) -> Option<(EventType, Payload)> {
    let received =
        |kind: &str, text: Option<String>, media: Option<Media>, reply: Option<String>| {
            Some((
                EventType::MessageReceived,
                Payload::Message(MessagePayload {
                    text,
                    kind: kind.into(),
                    media,
                    reply_payload: reply,
                    edited: false,
                }),
            ))
        };
    let media = |kind: &str, media: &MediaRef| {
        received(
            kind,
            media.caption.clone(),
            Some(Media {
                url: format!("whatsapp-media:{}", media.id),
                mime_type: media.mime_type.clone(),
                caption: media.caption.clone(),
            }),
            None,
        )
    };
    match message.kind.as_str() {
        "text" => received(
            "text",
            Some(message.text.as_ref()?.body.clone()),
            None,
            None,
        ),
        "image" => media("image", message.image.as_ref()?),
        "video" => media("video", message.video.as_ref()?),
        "audio" => media("audio", message.audio.as_ref()?),
        "document" => media("document", message.document.as_ref()?),
        "sticker" => media("sticker", message.sticker.as_ref()?),
        "location" => {
            let location = message.location.as_ref()?;
            let text = match &location.name {
                Some(name) => format!("{},{} {name}", location.latitude, location.longitude),
                None => format!("{},{}", location.latitude, location.longitude),
            };
            received("location", Some(text), None, None)
        }
        "interactive" => {
            let interactive = message.interactive.as_ref()?;
            let reply = interactive
                .button_reply
                .as_ref()
                .or(interactive.list_reply.as_ref())?;
            received(
                "interactive",
                Some(reply.title.clone()),
                None,
                Some(reply.id.clone()),
            )
        }
        "button" => {
            let button = message.button.as_ref()?;
            received("button", button.text.clone(), None, button.payload.clone())
        }
        "reaction" => {
            let reaction = message.reaction.as_ref()?;
            let (emoji, removed) = match &reaction.emoji {
                Some(emoji) if !emoji.is_empty() => (emoji.clone(), false),
                _ => (String::new(), true),
            };
            Some((
                EventType::ReactionReceived,
                Payload::Reaction(ReactionPayload {
                    message_id: reaction.message_id.clone(),
                    emoji,
                    removed,
                }),
            ))
        }
        _ => None,
    }
}

fn status_event(channel: &Channel<'_>, status: &Status, out: &mut Normalized) -> Result<()> {
    let event_type = match status.status.as_str() {
        "sent" => EventType::MessageSent,
        "delivered" => EventType::MessageDelivered,
        "read" => EventType::MessageRead,
        "failed" => EventType::MessageFailed,
        _ => {
            out.ignore(ADAPTER, "status");
            return Ok(());
        }
    };
    let urn = urn(&status.recipient_id)?;
    let at = timestamp(&status.timestamp)?;
    let first_error = status.errors.first();
    let payload = Payload::Delivery(DeliveryPayload {
        message_id: status.id.clone(),
        action_id: status.biz_opaque_callback_data.clone(),
        error_code: first_error
            .and_then(|e| e.code)
            .map(|code| code.to_string()),
        error: first_error.and_then(|e| {
            let title = e.title.clone().or_else(|| e.message.clone())?;
            Some(
                match e.error_data.as_ref().and_then(|d| d.details.as_ref()) {
                    Some(details) if *details != title => format!("{title}: {details}"),
                    _ => title,
                },
            )
        }),
    });
    let id = format!("whatsapp:{}:{}", status.id, status.status);
    let event = channel.event(id, &urn, event_type, at, payload);
    out.events
        .push(with_origin(event, None, Some(status.id.clone())));
    Ok(())
}
