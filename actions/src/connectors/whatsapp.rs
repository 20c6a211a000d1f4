//! WhatsApp Cloud API: `POST {api_url}/{version}/{phone_number_id}/messages` with a
//! Bearer token and `messaging_product: whatsapp` — text, media by link (image,
//! video, audio, document), interactive reply buttons (at most three, titles up to
//! 20 characters) and approved templates with body parameters and a language.
//! The reply's `messages[0].id` (a `wamid`) is the message id.

use serde_json::{Value, json};

use super::{CallError, Http, OutMessage, address};
use crate::config::WhatsAppConfig;

/// A Cloud API client.
#[derive(Debug, Clone)]
pub(crate) struct WhatsApp {
    pub(crate) http: Http,
    pub(crate) config: WhatsAppConfig,
}

impl WhatsApp {
    /// Sends `message` from phone number id `message.channel_id`.
    pub(crate) async fn send(&self, message: &OutMessage) -> Result<String, CallError> {
        let token = self
            .config
            .token
            .as_ref()
            .ok_or_else(|| CallError::unsupported("whatsapp: no access token configured"))?;
        let body = body(message)?;
        let url = format!(
            "{}/{}/{}/messages",
            self.config.api_url.trim_end_matches('/'),
            self.config.api_version,
            message.channel_id
        );
        let reply = self
            .http
            .call("whatsapp", "whatsapp messages", None, || {
                self.http
                    .client()
                    .post(&url)
                    .bearer_auth(token.expose())
                    .json(&body)
            })
            .await?;
        Ok(reply.json()["messages"][0]["id"]
            .as_str()
            .unwrap_or_default()
            .to_owned())
    }
}

/// The request body for `message`.
pub(crate) fn body(message: &OutMessage) -> Result<Value, CallError> {
    let to = address(&message.to).trim_start_matches('+');
    let mut body = json!({
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": to,
    });
    if let Some(template) = &message.template {
        let parameters: Vec<Value> = template
            .parameters
            .iter()
            .map(|text| json!({ "type": "text", "text": text }))
            .collect();
        let mut spec = json!({ "name": template.name, "language": { "code": template.language } });
        if !parameters.is_empty() {
            spec["components"] = json!([{ "type": "body", "parameters": parameters }]);
        }
        body["type"] = json!("template");
        body["template"] = spec;
        return Ok(body);
    }
    let text = message.text.as_deref().unwrap_or_default();
    if !message.buttons.is_empty() {
        if message.buttons.len() > 3 {
            return Err(CallError::unsupported(format!(
                "whatsapp: interactive messages take at most 3 reply buttons, found {}",
                message.buttons.len()
            )));
        }
        let buttons: Vec<Value> = message
            .buttons
            .iter()
            .map(|b| {
                let title: String = b.title.chars().take(20).collect();
                json!({ "type": "reply", "reply": { "id": b.id, "title": title } })
            })
            .collect();
        body["type"] = json!("interactive");
        body["interactive"] = json!({
            "type": "button",
            "body": { "text": text },
            "action": { "buttons": buttons },
        });
        return Ok(body);
    }
    if let Some(media) = &message.media {
        let kind = match media.mime_type.as_deref().and_then(|m| m.split('/').next()) {
            Some("image") => "image",
            Some("video") => "video",
            Some("audio") => "audio",
            _ => "document",
        };
        let mut object = json!({ "link": media.url });
        if kind != "audio"
            && let Some(caption) = media.caption.as_ref().or(message.text.as_ref())
        {
            object["caption"] = json!(caption);
        }
        body["type"] = json!(kind);
        body[kind] = object;
        return Ok(body);
    }
    if text.is_empty() {
        return Err(CallError::unsupported(
            "whatsapp: the message has neither text, media, buttons nor a template",
        ));
    }
    body["type"] = json!("text");
    body["text"] = json!({ "preview_url": false, "body": text });
    Ok(body)
}
