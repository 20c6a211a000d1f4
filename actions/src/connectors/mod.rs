//! One connector per provider, and the HTTP plumbing they share: retries with
//! backoff (see [`crate::retry`]), timeouts, errors that never carry a URL (bot
//! tokens live in Telegram's URLs) and the latency metric.

pub(crate) mod ai;
pub(crate) mod desk;
pub(crate) mod helpdesk;
pub(crate) mod http_function;
pub(crate) mod profile;
pub(crate) mod router;
pub(crate) mod sms;
pub(crate) mod telegram;
pub(crate) mod webhook;
pub(crate) mod whatsapp;

use std::time::{Duration, Instant, SystemTime};

use sluice_schemas::{Button, OutboundMedia};

use crate::{
    metrics::Metrics,
    retry::{RetryPolicy, is_retryable_status, parse_retry_after},
};

/// A message to send, whatever the action type that asked for it.
#[derive(Debug, Clone, Default)]
pub(crate) struct OutMessage {
    pub(crate) channel_type: String,
    pub(crate) channel_id: String,
    pub(crate) to: String,
    pub(crate) text: Option<String>,
    pub(crate) media: Option<OutboundMedia>,
    pub(crate) buttons: Vec<Button>,
    pub(crate) template: Option<Template>,
    pub(crate) session_id: Option<String>,
}

/// A WhatsApp template reference with its rendered body parameters.
#[derive(Debug, Clone)]
pub(crate) struct Template {
    pub(crate) name: String,
    pub(crate) language: String,
    pub(crate) parameters: Vec<String>,
}

/// Why a call failed for good.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CallError {
    /// The provider refused the request (a 4xx other than 408/429), or it cannot
    /// be expressed for this provider: sending it again cannot help.
    pub(crate) permanent: bool,
    /// The time budget ran out (the action's own timeout, or the retry budget).
    pub(crate) timed_out: bool,
    /// The last HTTP status, when there was a response.
    pub(crate) status: Option<u16>,
    /// The provider's error code, when it gives one.
    pub(crate) code: Option<String>,
    /// What went wrong, for `message.failed`, result events and the DLQ header.
    pub(crate) reason: String,
    /// The last response body, when there was one.
    pub(crate) body: Option<String>,
}

impl CallError {
    /// A request this connector cannot make (the user's mistake).
    pub(crate) fn unsupported(reason: impl Into<String>) -> Self {
        CallError {
            permanent: true,
            timed_out: false,
            status: None,
            code: None,
            reason: reason.into(),
            body: None,
        }
    }
}

/// A successful response.
#[derive(Debug, Clone)]
pub(crate) struct Reply {
    pub(crate) status: u16,
    pub(crate) body: String,
}

impl Reply {
    pub(crate) fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or(serde_json::Value::Null)
    }
}

/// The HTTP client every connector uses.
#[derive(Debug, Clone)]
pub(crate) struct Http {
    client: reqwest::Client,
    policy: RetryPolicy,
    metrics: Metrics,
}

impl Http {
    pub(crate) fn new(policy: RetryPolicy, metrics: Metrics) -> crate::Result<Self> {
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(256)
            .connect_timeout(Duration::from_secs(5))
            .user_agent(concat!("sluice-actions/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| crate::Error::HttpClient(e.without_url().to_string()))?;
        Ok(Http {
            client,
            policy,
            metrics,
        })
    }

    pub(crate) fn client(&self) -> &reqwest::Client {
        &self.client
    }

    /// Sends the request `build` makes, again after a backoff while the failure is
    /// transient, within the retry budget and `deadline` (the action's own timeout,
    /// which also caps each attempt). `what` names the call in errors, never a URL.
    pub(crate) async fn call(
        &self,
        channel: &'static str,
        what: &str,
        deadline: Option<Duration>,
        build: impl Fn() -> reqwest::RequestBuilder,
    ) -> Result<Reply, CallError> {
        let started = Instant::now();
        let limit = deadline.unwrap_or(Duration::from_millis(self.policy.budget_ms));
        let mut attempt = 0u32;
        let result = loop {
            attempt += 1;
            let elapsed = started.elapsed();
            let remaining = deadline.map(|d| d.saturating_sub(elapsed));
            let timeout =
                remaining.unwrap_or(Duration::from_millis(self.policy.attempt_timeout_ms));
            if timeout.is_zero() {
                break Err(timed_out(what, None));
            }
            let (error, retry_after) = match build().timeout(timeout).send().await {
                Ok(response) => {
                    let status = response.status().as_u16();
                    let header = response
                        .headers()
                        .get(reqwest::header::RETRY_AFTER)
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| parse_retry_after(v, SystemTime::now()));
                    let body = response.text().await.unwrap_or_default();
                    if (200..300).contains(&status) {
                        break Ok(Reply { status, body });
                    }
                    let retry_after = header.or_else(|| telegram_retry_after(&body));
                    let error = CallError {
                        permanent: !is_retryable_status(status),
                        timed_out: false,
                        status: Some(status),
                        code: provider_code(&body),
                        reason: format!("{what}: HTTP {status}: {}", excerpt(&body)),
                        body: Some(body),
                    };
                    (error, retry_after)
                }
                Err(error) if error.is_timeout() => (timed_out(what, Some(timeout)), None),
                Err(error) => (
                    CallError {
                        permanent: error.is_builder(),
                        timed_out: false,
                        status: None,
                        code: None,
                        reason: format!("{what}: {}", error.without_url()),
                        body: None,
                    },
                    None,
                ),
            };
            if error.permanent || attempt >= self.policy.max_attempts {
                break Err(error);
            }
            let pause = self.policy.backoff(attempt, retry_after);
            if started.elapsed() + pause >= limit {
                break Err(error);
            }
            self.metrics.retries.with_label_values(&[channel]).inc();
            tracing::debug!(channel, what, attempt, ?pause, reason = %error.reason, "retrying");
            tokio::time::sleep(pause).await;
        };
        self.metrics
            .delivery
            .with_label_values(&[channel])
            .observe(started.elapsed().as_secs_f64());
        result
    }
}

fn timed_out(what: &str, after: Option<Duration>) -> CallError {
    CallError {
        permanent: false,
        timed_out: true,
        status: None,
        code: None,
        reason: match after {
            Some(after) => format!("{what}: timed out after {} ms", after.as_millis()),
            None => format!("{what}: timed out"),
        },
        body: None,
    }
}

/// Telegram says how long to wait in the body: `parameters.retry_after`.
fn telegram_retry_after(body: &str) -> Option<Duration> {
    let value: serde_json::Value = serde_json::from_str(body).ok()?;
    value["parameters"]["retry_after"]
        .as_u64()
        .map(Duration::from_secs)
}

/// The provider's error code: Telegram `error_code`, WhatsApp `error.code`,
/// Twilio `code`.
fn provider_code(body: &str) -> Option<String> {
    let value: serde_json::Value = serde_json::from_str(body).ok()?;
    [
        &value["error_code"],
        &value["error"]["code"],
        &value["code"],
    ]
    .into_iter()
    .find_map(|v| match v {
        serde_json::Value::Number(n) => Some(n.to_string()),
        serde_json::Value::String(s) => Some(s.clone()),
        _ => None,
    })
}

/// At most 300 characters of a body, for reasons and logs.
pub(crate) fn excerpt(body: &str) -> &str {
    match body.char_indices().nth(300) {
        Some((end, _)) => &body[..end],
        None => body,
    }
}

/// The address part of a URN: `telegram:123` → `123`, `whatsapp:+4915…` → `+4915…`.
pub(crate) fn address(urn: &str) -> &str {
    urn.split_once(':').map_or(urn, |(_, rest)| rest)
}
