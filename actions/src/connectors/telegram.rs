//! Telegram Bot API: `sendMessage` (text, inline keyboard for buttons,
//! `message_thread_id` inside forum topics), `sendPhoto` / `sendVideo` /
//! `sendAudio` / `sendDocument` for media, by URL.
//!
//! Requests are `POST {api_url}/bot{token}/{method}` with a JSON body; replies are
//! `{"ok": true, "result": {...}}`, or `{"ok": false, "error_code", "description",
//! "parameters": {"retry_after"}}` — the HTTP client honours `retry_after`. The
//! token is in the path, so errors never carry the URL.

use serde_json::{Value, json};
use sluice_schemas::identity::parse_telegram_topic;

use super::{CallError, Http, OutMessage, address};
use crate::config::TelegramConfig;

/// A Bot API client.
#[derive(Debug, Clone)]
pub(crate) struct Telegram {
    pub(crate) http: Http,
    pub(crate) config: TelegramConfig,
}

impl Telegram {
    fn token(&self, channel_id: &str) -> Result<&str, CallError> {
        self.config
            .tokens
            .get(channel_id)
            .or(self.config.token.as_ref())
            .map(|t| t.expose())
            .ok_or_else(|| {
                CallError::unsupported(format!("telegram: no bot token for channel {channel_id:?}"))
            })
    }

    /// Calls Bot API `method` as the bot of `channel_id`; returns `result`.
    pub(crate) async fn call(
        &self,
        channel_id: &str,
        method: &str,
        body: &Value,
    ) -> Result<Value, CallError> {
        let token = self.token(channel_id)?;
        let url = format!(
            "{}/bot{token}/{method}",
            self.config.api_url.trim_end_matches('/')
        );
        let reply = self
            .http
            .call("telegram", &format!("telegram {method}"), None, || {
                self.http.client().post(&url).json(body)
            })
            .await?;
        let value = reply.json();
        if value["ok"].as_bool() != Some(true) {
            return Err(CallError {
                permanent: true,
                timed_out: false,
                status: Some(reply.status),
                code: value["error_code"].as_i64().map(|c| c.to_string()),
                reason: format!(
                    "telegram {method}: {}",
                    value["description"]
                        .as_str()
                        .unwrap_or("reply without ok: true")
                ),
                body: Some(reply.body),
            });
        }
        Ok(value["result"].clone())
    }

    /// Sends `message` to `chat` (a chat id, or the address of the message's URN),
    /// inside forum topic `thread` when given. A message addressed to a forum topic
    /// (`telegram-topic:<chat>:<thread>`) goes to that chat with `message_thread_id`.
    /// Returns the message id.
    pub(crate) async fn send(
        &self,
        message: &OutMessage,
        chat: Option<Value>,
        thread: Option<i64>,
    ) -> Result<String, CallError> {
        let (chat, thread) = match (chat, parse_telegram_topic(&message.to)) {
            (None, Some((topic_chat, topic_thread))) => {
                (Some(json!(topic_chat)), thread.or(Some(topic_thread)))
            }
            (chat, _) => (chat, thread),
        };
        let chat_id = chat.unwrap_or_else(|| chat_id(address(&message.to)));
        let mut body = json!({ "chat_id": chat_id });
        if let Some(thread) = thread {
            body["message_thread_id"] = json!(thread);
        }
        if !message.buttons.is_empty() {
            let row: Vec<Value> = message
                .buttons
                .iter()
                .map(|b| json!({ "text": b.title, "callback_data": b.id }))
                .collect();
            body["reply_markup"] = json!({ "inline_keyboard": [row] });
        }
        let method = match &message.media {
            Some(media) => {
                let (method, field) = media_method(media.mime_type.as_deref());
                body[field] = json!(media.url);
                if let Some(caption) = media.caption.as_ref().or(message.text.as_ref()) {
                    body["caption"] = json!(caption);
                }
                method
            }
            None => {
                let text = message.text.as_deref().unwrap_or_default();
                if text.is_empty() {
                    return Err(CallError::unsupported(
                        "telegram sendMessage: the message has neither text nor media",
                    ));
                }
                body["text"] = json!(text);
                "sendMessage"
            }
        };
        let result = self.call(&message.channel_id, method, &body).await?;
        Ok(result["message_id"]
            .as_i64()
            .map(|id| id.to_string())
            .unwrap_or_default())
    }
}

/// A numeric chat id as a JSON number, anything else (`@channelname`) as a string.
pub(crate) fn chat_id(address: &str) -> Value {
    address
        .parse::<i64>()
        .map_or_else(|_| json!(address), |id| json!(id))
}

fn media_method(mime_type: Option<&str>) -> (&'static str, &'static str) {
    match mime_type.and_then(|m| m.split('/').next()) {
        Some("image") => ("sendPhoto", "photo"),
        Some("video") => ("sendVideo", "video"),
        Some("audio") => ("sendAudio", "audio"),
        _ => ("sendDocument", "document"),
    }
}
