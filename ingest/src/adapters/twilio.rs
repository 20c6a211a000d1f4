//! Twilio Programmable Messaging webhooks: `POST /v1/{tenant}/twilio`, form-encoded,
//! signed with `X-Twilio-Signature` (base64 HMAC-SHA1 of the public URL followed by
//! every parameter's name and value, sorted by name, keyed with the auth token).
//!
//! The URL is the one Twilio called: `--public-url` (e.g. `https://hooks.example.com`)
//! followed by the request's path and query. Both an incoming message and a status
//! callback are accepted on the same route:
//!
//! | parameters | event | id |
//! |---|---|---|
//! | `SmsStatus`/`MessageStatus` = `received`, `Body`, `NumMedia`, `MediaUrl0` | `message.received` from `From` | `twilio:<MessageSid>` |
//! | `MessageStatus` = `sent` / `delivered` / `read` / `failed` / `undelivered` | `message.<status>` for `To`, with `ErrorCode` | `twilio:<MessageSid>:<status>` |
//! | other statuses (`queued`, `sending`, …) | ignored | |
//!
//! `From`/`To` of `whatsapp:+…` (Twilio's WhatsApp) give channel type `whatsapp` and a
//! `whatsapp:` contact, plain numbers channel type `sms` and `tel:+…`. Twilio sends no
//! timestamp, so `occurred_at` is the time the request arrived.

use axum::http::HeaderMap;
use sluice_schemas::{DeliveryPayload, EventType, Media, MessagePayload, Payload};

use super::{Adapter, Channel, Normalized, header, with_origin};
use crate::{Error, Result, config::TwilioConfig, identity, signature};

const ADAPTER: Adapter = Adapter::Twilio;

/// Parses a form-encoded body into its parameters, in order.
pub fn parse_form(body: &[u8]) -> Vec<(String, String)> {
    url::form_urlencoded::parse(body).into_owned().collect()
}

/// Checks `X-Twilio-Signature` for the public `url` the request was sent to.
pub fn verify(
    config: &TwilioConfig,
    headers: &HeaderMap,
    url: &str,
    params: &[(String, String)],
) -> Result<()> {
    signature::verify_twilio(
        &config.auth_token,
        url,
        params,
        header(headers, "x-twilio-signature"),
    )
}

fn param<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.as_str())
}

fn required<'a>(params: &'a [(String, String)], name: &str) -> Result<&'a str> {
    param(params, name)
        .filter(|value| !value.is_empty())
        .ok_or_else(|| Error::malformed(ADAPTER.as_str(), format!("parameter {name} missing")))
}

/// The channel type and contact URN of a Twilio address.
fn address(raw: &str) -> Result<(&'static str, String)> {
    let urn = if raw.starts_with("whatsapp:") {
        identity::whatsapp_urn(raw).map(|urn| ("whatsapp", urn))
    } else {
        identity::tel_urn(raw).map(|urn| ("sms", urn))
    };
    urn.ok_or_else(|| Error::malformed(ADAPTER.as_str(), format!("{raw:?} is not a phone number")))
}

/// Normalizes one request's parameters for `tenant`, received at `now_ms`.
pub fn normalize(tenant: &str, params: &[(String, String)], now_ms: i64) -> Result<Normalized> {
    let sid = required(params, "MessageSid").or_else(|_| required(params, "SmsSid"))?;
    let status = param(params, "MessageStatus")
        .or_else(|| param(params, "SmsStatus"))
        .unwrap_or("received");
    let from = required(params, "From")?;
    let to = required(params, "To")?;
    let mut out = Normalized::default();
    let delivery_type = match status {
        "received" => None,
        "sent" => Some(EventType::MessageSent),
        "delivered" => Some(EventType::MessageDelivered),
        "read" => Some(EventType::MessageRead),
        "failed" | "undelivered" => Some(EventType::MessageFailed),
        _ => {
            out.ignore(ADAPTER, "message status");
            return Ok(out);
        }
    };
    let Some(event_type) = delivery_type else {
        let (channel_type, urn) = address(from)?;
        let channel = Channel {
            tenant,
            channel_type,
            channel_id: to,
        };
        let event = channel.event(
            format!("twilio:{sid}"),
            &urn,
            EventType::MessageReceived,
            now_ms,
            message_payload(params),
        );
        out.events
            .push(with_origin(event, None, Some(sid.to_owned())));
        return Ok(out);
    };
    let (channel_type, urn) = address(to)?;
    let channel = Channel {
        tenant,
        channel_type,
        channel_id: from,
    };
    let payload = Payload::Delivery(DeliveryPayload {
        message_id: sid.to_owned(),
        action_id: None,
        error_code: param(params, "ErrorCode")
            .filter(|c| !c.is_empty())
            .map(str::to_owned),
        error: param(params, "ErrorMessage")
            .filter(|m| !m.is_empty())
            .map(str::to_owned),
    });
    let event = channel.event(
        format!("twilio:{sid}:{status}"),
        &urn,
        event_type,
        now_ms,
        payload,
    );
    out.events
        .push(with_origin(event, None, Some(sid.to_owned())));
    Ok(out)
}

fn message_payload(params: &[(String, String)]) -> Payload {
    let body = param(params, "Body")
        .filter(|b| !b.is_empty())
        .map(str::to_owned);
    let media = param(params, "NumMedia")
        .and_then(|n| n.parse::<u32>().ok())
        .filter(|n| *n > 0)
        .and_then(|_| param(params, "MediaUrl0"))
        .map(|url| Media {
            url: url.to_owned(),
            mime_type: param(params, "MediaContentType0").map(str::to_owned),
            caption: body.clone(),
        });
    let kind = match &media {
        None => "text",
        Some(media) => match media.mime_type.as_deref().and_then(|m| m.split('/').next()) {
            Some("image") => "image",
            Some("video") => "video",
            Some("audio") => "audio",
            _ => "document",
        },
    };
    let kind = if param(params, "Latitude").is_some() && media.is_none() && body.is_none() {
        "location"
    } else {
        kind
    };
    Payload::Message(MessagePayload {
        text: body,
        kind: kind.into(),
        media,
        reply_payload: param(params, "ButtonPayload").map(str::to_owned),
        edited: false,
    })
}
