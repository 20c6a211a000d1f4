//! SMS through a Twilio-style API: `POST {api_url}/2010-04-01/Accounts/{sid}/Messages.json`,
//! form-encoded `To`, `From` (or `MessagingServiceSid` for a channel id starting
//! with `MG`), `Body`, `MediaUrl`, with HTTP basic auth (account SID, auth token).
//! The reply's `sid` is the message id.

use super::{CallError, Http, OutMessage, address};
use crate::config::SmsConfig;

/// An SMS API client.
#[derive(Debug, Clone)]
pub(crate) struct Sms {
    pub(crate) http: Http,
    pub(crate) config: SmsConfig,
}

impl Sms {
    /// Sends `message` from sender `message.channel_id`.
    pub(crate) async fn send(&self, message: &OutMessage) -> Result<String, CallError> {
        let token = self
            .config
            .auth_token
            .as_ref()
            .ok_or_else(|| CallError::unsupported("sms: no auth token configured"))?;
        if message.template.is_some() {
            return Err(CallError::unsupported(
                "sms: template messages are WhatsApp's; send text instead",
            ));
        }
        let sender = if message.channel_id.starts_with("MG") {
            "MessagingServiceSid"
        } else {
            "From"
        };
        let mut form = vec![
            ("To", address(&message.to).to_owned()),
            (sender, message.channel_id.clone()),
        ];
        let text = message
            .text
            .clone()
            .or_else(|| message.media.as_ref().and_then(|m| m.caption.clone()));
        if let Some(text) = text {
            form.push(("Body", text));
        }
        if let Some(media) = &message.media {
            form.push(("MediaUrl", media.url.clone()));
        }
        if form.len() == 2 {
            return Err(CallError::unsupported(
                "sms: the message has neither text nor media",
            ));
        }
        let url = format!(
            "{}/2010-04-01/Accounts/{}/Messages.json",
            self.config.api_url.trim_end_matches('/'),
            self.config.account_sid
        );
        let reply = self
            .http
            .call("sms", "sms Messages.json", None, || {
                self.http
                    .client()
                    .post(&url)
                    .basic_auth(&self.config.account_sid, Some(token.expose()))
                    .form(&form)
            })
            .await?;
        Ok(reply.json()["sid"].as_str().unwrap_or_default().to_owned())
    }
}
