//! The workers' configuration: topics and group, concurrency, leases, retries,
//! rate limits, and each provider's base URL and credentials. The binary fills it
//! from flags and environment variables; [`ActionsConfig::build`] returns the
//! running [`Worker`](crate::Worker).

use std::{collections::HashMap, sync::Arc, time::Duration};

use serde::{Deserialize, Serialize};
use sluice_infra::{bus::EventBus, telemetry::Telemetry};

use crate::{
    Result,
    rate_limit::{RateLimit, default_limits},
    retry::RetryPolicy,
    stores::Stores,
    worker::Worker,
};

/// A credential: serialized as is, never shown by `Debug` (and so never logged).
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(pub String);

impl Secret {
    /// The secret itself, for the one place that sends it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// Telegram Bot API.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct TelegramConfig {
    /// Base URL, `https://api.telegram.org`.
    pub api_url: String,
    /// The bot token used when a channel has none of its own.
    pub token: Option<Secret>,
    /// Bot tokens by channel id.
    pub tokens: HashMap<String, Secret>,
    /// Support desk: the managers' forum supergroup (chat id) that gets one topic per contact.
    pub support_chat_id: Option<i64>,
}

impl Default for TelegramConfig {
    fn default() -> Self {
        TelegramConfig {
            api_url: "https://api.telegram.org".to_owned(),
            token: None,
            tokens: HashMap::new(),
            support_chat_id: None,
        }
    }
}

/// WhatsApp Cloud API; a channel id is the business phone number id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct WhatsAppConfig {
    /// Base URL, `https://graph.facebook.com`.
    pub api_url: String,
    /// Graph API version, e.g. `v21.0`.
    pub api_version: String,
    /// System-user access token (Bearer).
    pub token: Option<Secret>,
}

impl Default for WhatsAppConfig {
    fn default() -> Self {
        WhatsAppConfig {
            api_url: "https://graph.facebook.com".to_owned(),
            api_version: "v21.0".to_owned(),
            token: None,
        }
    }
}

/// A Twilio-style SMS API; a channel id is the sender (a number, or a messaging
/// service id starting with `MG`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct SmsConfig {
    /// Base URL, `https://api.twilio.com`.
    pub api_url: String,
    /// Account SID (the basic-auth user).
    pub account_sid: String,
    /// Auth token (the basic-auth password).
    pub auth_token: Option<Secret>,
}

impl Default for SmsConfig {
    fn default() -> Self {
        SmsConfig {
            api_url: "https://api.twilio.com".to_owned(),
            account_sid: String::new(),
            auth_token: None,
        }
    }
}

/// An HTTP endpoint Sluice posts JSON to, signed with HMAC-SHA256 (web chat and
/// custom channels, the helpdesk, a CRM).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedEndpoint {
    /// Where to POST.
    pub url: String,
    /// The HMAC key; unsigned when absent.
    pub secret: Option<Secret>,
}

/// An OpenAI-compatible chat completion API.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct AiConfig {
    /// Base URL; requests go to `{api_url}/v1/chat/completions`.
    pub api_url: String,
    /// Bearer key.
    pub api_key: Option<Secret>,
    /// The model used when an action names none.
    pub default_model: String,
}

impl Default for AiConfig {
    fn default() -> Self {
        AiConfig {
            api_url: "https://api.openai.com".to_owned(),
            api_key: None,
            default_model: "gpt-4o-mini".to_owned(),
        }
    }
}

/// Everything the action workers need to know.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ActionsConfig {
    /// Consumer group.
    pub group: String,
    /// Where actions are read.
    pub actions_topic: String,
    /// Where result events are written.
    pub events_topic: String,
    /// Where dead letters are written.
    pub dlq_topic: String,
    /// This worker's name in dedupe leases (default: host, pid and a random suffix).
    pub worker_id: Option<String>,
    /// Records asked for per poll.
    pub batch_size: usize,
    /// How long one poll waits for records, milliseconds.
    pub poll_timeout_ms: u64,
    /// Actions read but not finished (parked ones included) before polling pauses.
    pub max_in_flight: usize,
    /// Concurrent calls per connector (telegram, whatsapp, sms, webhook, ai, ...).
    pub channel_concurrency: usize,
    /// How long a claim keeps other workers off an action, milliseconds (default:
    /// the retry policy's worst case plus 30 s).
    pub lease_ms: Option<u64>,
    /// Retries towards providers.
    pub retry: RetryPolicy,
    /// Rate limits by channel type.
    pub rate_limits: HashMap<String, RateLimit>,
    /// Telegram Bot API.
    pub telegram: TelegramConfig,
    /// WhatsApp Cloud API.
    pub whatsapp: WhatsAppConfig,
    /// SMS.
    pub sms: SmsConfig,
    /// Web chat and custom channels: every channel type without its own connector.
    pub webhook: Option<SignedEndpoint>,
    /// AI chat completion.
    pub ai: AiConfig,
    /// Helpdesk webhook for session actions (none: sessions live in Sluice only).
    pub helpdesk: Option<SignedEndpoint>,
    /// CRM webhook for profile writes (none: the `contact_profile` table).
    pub crm: Option<SignedEndpoint>,
}

impl Default for ActionsConfig {
    fn default() -> Self {
        use sluice_infra::bus::topics;
        ActionsConfig {
            group: "sluice-actions".to_owned(),
            actions_topic: topics::ACTIONS.to_owned(),
            events_topic: topics::EVENTS.to_owned(),
            dlq_topic: topics::DLQ.to_owned(),
            worker_id: None,
            batch_size: 500,
            poll_timeout_ms: 100,
            max_in_flight: 10_000,
            channel_concurrency: 64,
            lease_ms: None,
            retry: RetryPolicy::default(),
            rate_limits: default_limits(),
            telegram: TelegramConfig::default(),
            whatsapp: WhatsAppConfig::default(),
            sms: SmsConfig::default(),
            webhook: None,
            ai: AiConfig::default(),
            helpdesk: None,
            crm: None,
        }
    }
}

impl ActionsConfig {
    /// The claim lease in effect.
    pub fn lease(&self) -> Duration {
        self.lease_ms.map_or_else(
            || self.retry.worst_case() + Duration::from_secs(30),
            Duration::from_millis,
        )
    }

    /// The worker id in effect.
    pub fn worker_id(&self) -> String {
        self.worker_id.clone().unwrap_or_else(|| {
            let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "worker".to_owned());
            format!(
                "{host}-{}-{:08x}",
                std::process::id(),
                rand::random::<u32>()
            )
        })
    }

    /// Builds the worker on `bus` and `stores`, registering its metrics with
    /// `telemetry`. Call [`Worker::run`] to start it.
    pub async fn build(
        self,
        bus: Arc<dyn EventBus>,
        stores: Stores,
        telemetry: &Telemetry,
    ) -> Result<Worker> {
        Worker::new(self, bus, stores, telemetry).await
    }
}
