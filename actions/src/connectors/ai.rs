//! AI chat completion against an OpenAI-compatible API:
//! `POST {api_url}/v1/chat/completions` with `Authorization: Bearer <key>` and
//! `{"model", "messages": [{"role": "system"}, {"role": "user"}]}`; the answer is
//! `choices[0].message.content`. The action's `timeout_ms` bounds all attempts.

use std::time::Duration;

use serde_json::{Value, json};
use sluice_schemas::AiComplete;

use super::{CallError, Http};
use crate::config::AiConfig;

/// A chat completion client.
#[derive(Debug, Clone)]
pub(crate) struct Ai {
    pub(crate) http: Http,
    pub(crate) config: AiConfig,
}

impl Ai {
    /// The completion's text.
    pub(crate) async fn complete(&self, request: &AiComplete) -> Result<String, CallError> {
        let model = if request.model.is_empty() {
            self.config.default_model.as_str()
        } else {
            request.model.as_str()
        };
        let mut messages = Vec::new();
        if let Some(system) = &request.system {
            messages.push(json!({ "role": "system", "content": system }));
        }
        messages.push(json!({ "role": "user", "content": request.prompt }));
        let body = json!({ "model": model, "messages": messages });
        let url = format!(
            "{}/v1/chat/completions",
            self.config.api_url.trim_end_matches('/')
        );
        let deadline = Duration::from_millis(u64::try_from(request.timeout_ms).unwrap_or(1));
        let reply = self
            .http
            .call("ai", "ai chat completion", Some(deadline), || {
                let builder = self.http.client().post(&url).json(&body);
                match &self.config.api_key {
                    Some(key) => builder.bearer_auth(key.expose()),
                    None => builder,
                }
            })
            .await?;
        let value: Value = reply.json();
        value["choices"][0]["message"]["content"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| CallError {
                permanent: true,
                timed_out: false,
                status: Some(reply.status),
                code: None,
                reason: "ai chat completion: reply has no choices[0].message.content".to_owned(),
                body: Some(reply.body),
            })
    }
}
