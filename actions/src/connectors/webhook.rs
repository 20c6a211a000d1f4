//! Signed JSON webhooks: web chat and custom channels (every channel type without
//! a connector of its own), and the helpdesk and CRM endpoints.
//!
//! Each request is a `POST` of a JSON body with
//! - `Idempotency-Key: <action id>` — a receiver that keeps the keys it has seen
//!   turns a redelivery (a worker that died after sending, before recording it)
//!   into a no-op;
//! - `X-Sluice-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`
//!   when a secret is configured; the receiver recomputes it and rejects old `t`.

use std::time::{SystemTime, UNIX_EPOCH};

use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;
use sluice_schemas::Action;

use super::{CallError, Http, OutMessage, Reply};
use crate::config::SignedEndpoint;

/// The header carrying the signature.
pub const SIGNATURE_HEADER: &str = "x-sluice-signature";

/// `t=<timestamp>,v1=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>`.
pub fn signature(secret: &[u8], timestamp: u64, body: &[u8]) -> String {
    // HMAC accepts keys of any length.
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).unwrap_or_else(|_| unreachable!());
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!(
        "t={timestamp},v1={}",
        hex::encode(mac.finalize().into_bytes())
    )
}

/// Posts signed JSON.
#[derive(Debug, Clone)]
pub(crate) struct Signed {
    pub(crate) http: Http,
}

impl Signed {
    /// POSTs `body` to `endpoint` for `action_id`.
    pub(crate) async fn post(
        &self,
        channel: &'static str,
        endpoint: &SignedEndpoint,
        action_id: &str,
        body: &Value,
    ) -> Result<Reply, CallError> {
        let bytes = serde_json::to_vec(body).unwrap_or_default();
        let what = format!("{channel} webhook");
        self.http
            .call(channel, &what, None, || {
                let mut request = self
                    .http
                    .client()
                    .post(&endpoint.url)
                    .header(reqwest::header::CONTENT_TYPE, "application/json")
                    .header("idempotency-key", action_id)
                    .body(bytes.clone());
                if let Some(secret) = &endpoint.secret {
                    let now = SystemTime::now()
                        .duration_since(UNIX_EPOCH)
                        .map_or(0, |d| d.as_secs());
                    request = request.header(
                        SIGNATURE_HEADER,
                        signature(secret.expose().as_bytes(), now, &bytes),
                    );
                }
                request
            })
            .await
    }

    /// Sends a chat message through the channel's webhook; the reply's
    /// `message_id` (the action id when it has none) is the message id.
    pub(crate) async fn send(
        &self,
        endpoint: &SignedEndpoint,
        action: &Action,
        message: &OutMessage,
    ) -> Result<String, CallError> {
        let mut body = json!({
            "action_id": action.id,
            "tenant": action.tenant,
            "contact_id": action.contact_id,
            "channel_type": message.channel_type,
            "channel_id": message.channel_id,
            "to": message.to,
        });
        if let Some(session) = &message.session_id {
            body["session_id"] = json!(session);
        }
        if let Some(text) = &message.text {
            body["text"] = json!(text);
        }
        if let Some(media) = &message.media {
            body["media"] = json!(media);
        }
        if !message.buttons.is_empty() {
            body["buttons"] = json!(message.buttons);
        }
        if let Some(template) = &message.template {
            body["template"] = json!({
                "name": template.name,
                "language": template.language,
                "parameters": template.parameters,
            });
        }
        let reply = self.post("webhook", endpoint, &action.id, &body).await?;
        Ok(reply.json()["message_id"]
            .as_str()
            .map_or_else(|| action.id.clone(), str::to_owned))
    }
}
