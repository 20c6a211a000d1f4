//! Configuration: per-tenant channel secrets (a file) and the server's settings (flags).
//!
//! The file is YAML (`.yaml`, `.yml`) or JSON (`.json`), given by `--config` /
//! `SLUICE_INGEST_CONFIG`. Every secret is one of
//!
//! - `{env: NAME}`: the value of environment variable `NAME`,
//! - `{file: /path}`: the contents of a file (trailing newline trimmed) — the way
//!   Kubernetes mounts a Secret,
//! - a plain string: the value itself (handy for development; keep real secrets out of
//!   the file).
//!
//! A list of secrets is accepted wherever a signature is checked, so a secret can be
//! rotated without downtime. Secrets are resolved once, at start-up; a missing variable
//! or file fails the start with its name. They are never logged (`Debug` prints
//! `Secret(***)`).
//!
//! ```yaml
//! tenants:
//!   acme:
//!     telegram:
//!       bots:
//!         support_bot:                       # POST /v1/acme/telegram/support_bot
//!           secret_token: {env: ACME_TELEGRAM_SECRET}
//!           managers_chat_id: -1001234567890  # forum supergroup of the support team
//!     whatsapp: {app_secret: {file: /run/secrets/acme/meta-app-secret}, verify_token: {env: ACME_META_VERIFY}}
//!     messenger: {app_secret: {file: /run/secrets/acme/meta-app-secret}}
//!     twilio: {auth_token: {env: ACME_TWILIO_TOKEN}}
//!     stripe: {signing_secret: [{env: ACME_STRIPE_OLD}, {env: ACME_STRIPE_NEW}]}
//!     helpdesk: {secret: {env: ACME_HELPDESK_SECRET}}
//!     events: {secret: {env: ACME_EVENTS_SECRET}}
//! ```

use std::{collections::BTreeMap, fmt, net::SocketAddr, path::Path, time::Duration};

use serde::{Deserialize, Deserializer};

use crate::error::{Error, Result};

/// A secret value. Its `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a value.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The value, for computing or comparing a signature.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

#[derive(Deserialize)]
#[serde(untagged)]
enum SecretSource {
    Value(String),
    Env { env: String },
    File { file: String },
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = match SecretSource::deserialize(deserializer)? {
            SecretSource::Value(value) => value,
            SecretSource::Env { env } => std::env::var(&env).map_err(|_| {
                serde::de::Error::custom(format!("environment variable {env} is not set"))
            })?,
            SecretSource::File { file } => std::fs::read_to_string(&file)
                .map_err(|e| serde::de::Error::custom(format!("reading secret file {file}: {e}")))?
                .trim_end_matches(['\n', '\r'])
                .to_owned(),
        };
        if value.is_empty() {
            return Err(serde::de::Error::custom("a secret must not be empty"));
        }
        Ok(Secret(value))
    }
}

/// One secret or several (accepted during a rotation).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Secrets(pub Vec<Secret>);

impl<'de> Deserialize<'de> for Secrets {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum OneOrMany {
            Many(Vec<Secret>),
            One(Secret),
        }
        match OneOrMany::deserialize(deserializer)? {
            OneOrMany::Many(many) if many.is_empty() => {
                Err(serde::de::Error::custom("at least one secret is needed"))
            }
            OneOrMany::Many(many) => Ok(Secrets(many)),
            OneOrMany::One(one) => Ok(Secrets(vec![one])),
        }
    }
}

/// The configuration file: every tenant and its channels.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IngestConfig {
    /// Tenants by name (the `{tenant}` path segment).
    #[serde(default)]
    pub tenants: BTreeMap<String, TenantConfig>,
}

/// One tenant's channels. A channel that is absent answers 404.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TenantConfig {
    /// Telegram bots.
    pub telegram: Option<TelegramConfig>,
    /// WhatsApp Cloud API (Meta app).
    pub whatsapp: Option<MetaConfig>,
    /// Messenger and Instagram messaging (Meta app).
    pub messenger: Option<MetaConfig>,
    /// Twilio SMS.
    pub twilio: Option<TwilioConfig>,
    /// Stripe events.
    pub stripe: Option<StripeConfig>,
    /// Helpdesk session events.
    pub helpdesk: Option<HmacConfig>,
    /// The generic event endpoint.
    pub events: Option<HmacConfig>,
}

/// A tenant's Telegram bots, by the `{bot}` path segment.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TelegramConfig {
    /// Bots by name.
    pub bots: BTreeMap<String, TelegramBot>,
}

/// One Telegram bot.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TelegramBot {
    /// The `secret_token` given to `setWebhook`, sent back in
    /// `X-Telegram-Bot-Api-Secret-Token`.
    pub secret_token: Secret,
    /// The support team's forum supergroup: messages in its topics are manager replies.
    #[serde(default)]
    pub managers_chat_id: Option<i64>,
}

/// A Meta app (WhatsApp, Messenger, Instagram).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetaConfig {
    /// The app secret that signs `X-Hub-Signature-256`.
    pub app_secret: Secrets,
    /// The token Meta's verification handshake (`GET ?hub.verify_token=`) must present.
    #[serde(default)]
    pub verify_token: Option<Secret>,
}

/// A Twilio account.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TwilioConfig {
    /// The auth token that signs `X-Twilio-Signature`.
    pub auth_token: Secret,
}

/// A Stripe webhook endpoint.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StripeConfig {
    /// The endpoint's signing secret(s) (`whsec_…`).
    pub signing_secret: Secrets,
}

/// An endpoint signed with `X-Sluice-Signature: sha256=<hex>`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HmacConfig {
    /// The shared secret(s).
    pub secret: Secrets,
}

impl IngestConfig {
    /// Reads the file at `path`: JSON when it ends in `.json`, YAML otherwise.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::Config(format!("reading {}: {e}", path.display())))?;
        let parsed = if path.extension().is_some_and(|ext| ext == "json") {
            Self::from_json(&text)
        } else {
            Self::from_yaml(&text)
        };
        parsed.map_err(|e| Error::Config(format!("{}: {e}", path.display())))
    }

    /// Parses YAML text.
    pub fn from_yaml(text: &str) -> Result<Self> {
        let config: Self =
            serde_saphyr::from_str(text).map_err(|e| Error::Config(e.to_string()))?;
        config.check()
    }

    /// Parses JSON text.
    pub fn from_json(text: &str) -> Result<Self> {
        let config: Self = serde_json::from_str(text).map_err(|e| Error::Config(e.to_string()))?;
        config.check()
    }

    fn check(self) -> Result<Self> {
        for name in self.tenants.keys() {
            if name.is_empty() || name.contains('/') {
                return Err(Error::Config(format!(
                    "tenant name {name:?} must be non-empty and contain no '/'"
                )));
            }
        }
        Ok(self)
    }

    /// The tenant, or 404.
    pub fn tenant(&self, tenant: &str) -> Result<&TenantConfig> {
        self.tenants
            .get(tenant)
            .ok_or_else(|| Error::NotFound(format!("tenant {tenant:?}")))
    }
}

/// A channel of a tenant, or 404 naming both.
pub(crate) fn channel<'a, T>(tenant: &str, name: &str, channel: Option<&'a T>) -> Result<&'a T> {
    channel.ok_or_else(|| Error::NotFound(format!("channel {name} of tenant {tenant:?}")))
}

/// How the HTTP server behaves (flags and environment variables of `sluice ingest`).
#[derive(Debug, Clone)]
pub struct IngestSettings {
    /// Where webhooks are received.
    pub listen: SocketAddr,
    /// Largest accepted body; larger ones get 413.
    pub body_limit: usize,
    /// How long a request waits for Kafka's acknowledgement before answering 503.
    pub publish_timeout: Duration,
    /// Publishes in flight on this replica beyond which requests get 429.
    pub max_in_flight: usize,
    /// The public base URL providers call (`https://hooks.example.com`), which Twilio
    /// signs; without it the URL is rebuilt from `X-Forwarded-Proto` and `Host`.
    pub public_url: Option<String>,
    /// How many recently published event ids are remembered to drop provider retries.
    pub dedupe_capacity: usize,
    /// How far a Stripe signature's timestamp may be from now.
    pub stripe_tolerance: Duration,
    /// How often readiness is re-checked when no publish succeeded recently.
    pub probe_interval: Duration,
    /// Where events are published.
    pub events_topic: String,
}

impl Default for IngestSettings {
    fn default() -> Self {
        IngestSettings {
            listen: SocketAddr::from(([0, 0, 0, 0], 8080)),
            body_limit: 1024 * 1024,
            publish_timeout: Duration::from_secs(5),
            max_in_flight: 10_000,
            public_url: None,
            dedupe_capacity: 100_000,
            stripe_tolerance: Duration::from_secs(300),
            probe_interval: Duration::from_secs(5),
            events_topic: sluice_infra::bus::topics::EVENTS.to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_come_from_values_env_and_files() {
        let dir = std::env::temp_dir().join(format!("sluice-ingest-cfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("token");
        std::fs::write(&file, "from-file\n").unwrap();
        let var = "SLUICE_INGEST_TEST_SECRET_FROM_ENV";
        // Reading an unset variable fails the load with its name.
        let missing = IngestConfig::from_yaml(&format!(
            "tenants: {{acme: {{twilio: {{auth_token: {{env: {var}_UNSET}}}}}}}}"
        ))
        .unwrap_err()
        .to_string();
        assert!(missing.contains(&format!("{var}_UNSET")), "{missing}");
        let yaml = format!(
            "tenants:\n  acme:\n    twilio: {{auth_token: {{file: {}}}}}\n    events: {{secret: [old, new]}}\n    telegram:\n      bots:\n        b1: {{secret_token: s3cr3t-v4lue, managers_chat_id: -100}}\n",
            file.display()
        );
        let config = IngestConfig::from_yaml(&yaml).unwrap();
        let acme = config.tenant("acme").unwrap();
        assert_eq!(
            acme.twilio.as_ref().unwrap().auth_token.expose(),
            "from-file"
        );
        assert_eq!(acme.events.as_ref().unwrap().secret.0.len(), 2);
        let bot = &acme.telegram.as_ref().unwrap().bots["b1"];
        assert_eq!(bot.managers_chat_id, Some(-100));
        assert!(!format!("{bot:?}").contains("s3cr3t"));
        assert!(config.tenant("other").is_err());
    }

    #[test]
    fn json_works_and_bad_tenants_are_refused() {
        let config = IngestConfig::from_json(
            r#"{"tenants":{"acme":{"stripe":{"signing_secret":"whsec_1"}}}}"#,
        )
        .unwrap();
        assert!(config.tenants["acme"].stripe.is_some());
        assert!(IngestConfig::from_json(r#"{"tenants":{"a/b":{}}}"#).is_err());
        assert!(IngestConfig::from_json(r#"{"tenants":{"a":{"telegarm":{}}}}"#).is_err());
    }
}
