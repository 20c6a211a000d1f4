//! `sluice actions`: flags → [`ActionsConfig`], then the worker until SIGINT/SIGTERM.

use std::{collections::HashMap, time::Duration};

use anyhow::Context;
use clap::Args;
use sluice_actions::{
    ActionsConfig, AiConfig, RateLimit, Secret, SignedEndpoint, SmsConfig, Stores, TelegramConfig,
    WhatsAppConfig, default_limits,
};
use sluice_infra::{bus, bus::topics, telemetry::Telemetry};

use super::CommonArgs;

#[derive(Debug, Args)]
pub(crate) struct ActionsArgs {
    #[command(flatten)]
    common: CommonArgs,

    /// Store for dedupe claims, the contact profile and forum topics: `cql://…` or `memory://`.
    #[arg(
        long,
        env = "SLUICE_STORE",
        default_value = "cql://127.0.0.1:9042/sluice"
    )]
    store: String,

    /// Consumer group.
    #[arg(long, env = "SLUICE_ACTIONS_GROUP", default_value = "sluice-actions")]
    group: String,
    /// Topic actions are read from.
    #[arg(long, env = "SLUICE_ACTIONS_TOPIC", default_value = topics::ACTIONS)]
    actions_topic: String,
    /// Topic result events are written to.
    #[arg(long, env = "SLUICE_EVENTS_TOPIC", default_value = topics::EVENTS)]
    events_topic: String,
    /// Dead-letter topic.
    #[arg(long, env = "SLUICE_DLQ_TOPIC", default_value = topics::DLQ)]
    dlq_topic: String,
    /// Create missing topics with this many partitions (replication 1; for development).
    #[arg(long, env = "SLUICE_CREATE_TOPICS", value_name = "PARTITIONS")]
    create_topics: Option<i32>,
    /// This worker's name in dedupe leases (default: host, pid, random suffix).
    #[arg(long, env = "SLUICE_WORKER_ID")]
    worker_id: Option<String>,
    /// Claim lease in milliseconds (default: the retry budget's worst case + 30 s).
    #[arg(long, env = "SLUICE_ACTIONS_LEASE_MS")]
    lease_ms: Option<u64>,
    /// Concurrent calls per connector.
    #[arg(long, env = "SLUICE_ACTIONS_CONCURRENCY", default_value_t = 64)]
    concurrency: usize,
    /// Actions in flight before polling slows down.
    #[arg(long, env = "SLUICE_ACTIONS_MAX_IN_FLIGHT", default_value_t = 10_000)]
    max_in_flight: usize,
    /// Rate limit overrides, `channel_type=PER_CHANNEL[/PER_RECIPIENT]` messages a
    /// second, comma-separated (0 = unlimited). Defaults: telegram=30/1,
    /// telegram_desk=20, whatsapp=80, sms=10.
    #[arg(long, env = "SLUICE_RATE_LIMITS", value_delimiter = ',')]
    rate_limit: Vec<String>,

    /// Telegram Bot API base URL.
    #[arg(
        long,
        env = "SLUICE_TELEGRAM_API_URL",
        default_value = "https://api.telegram.org"
    )]
    telegram_api_url: String,
    /// Telegram bot token (all channels).
    #[arg(long, env = "SLUICE_TELEGRAM_TOKEN", hide_env_values = true)]
    telegram_token: Option<String>,
    /// Support desk: the managers' forum supergroup chat id.
    #[arg(long, env = "SLUICE_TELEGRAM_SUPPORT_CHAT")]
    telegram_support_chat: Option<i64>,
    /// WhatsApp Cloud API base URL.
    #[arg(
        long,
        env = "SLUICE_WHATSAPP_API_URL",
        default_value = "https://graph.facebook.com"
    )]
    whatsapp_api_url: String,
    /// WhatsApp Graph API version.
    #[arg(long, env = "SLUICE_WHATSAPP_API_VERSION", default_value = "v21.0")]
    whatsapp_api_version: String,
    /// WhatsApp access token.
    #[arg(long, env = "SLUICE_WHATSAPP_TOKEN", hide_env_values = true)]
    whatsapp_token: Option<String>,
    /// SMS API base URL (Twilio-style).
    #[arg(
        long,
        env = "SLUICE_SMS_API_URL",
        default_value = "https://api.twilio.com"
    )]
    sms_api_url: String,
    /// SMS account SID.
    #[arg(long, env = "SLUICE_SMS_ACCOUNT_SID", default_value = "")]
    sms_account_sid: String,
    /// SMS auth token.
    #[arg(long, env = "SLUICE_SMS_AUTH_TOKEN", hide_env_values = true)]
    sms_auth_token: Option<String>,
    /// Webhook for web chat and custom channels.
    #[arg(long, env = "SLUICE_WEBHOOK_URL")]
    webhook_url: Option<String>,
    /// HMAC-SHA256 key signing webhook, helpdesk and CRM requests.
    #[arg(long, env = "SLUICE_WEBHOOK_SECRET", hide_env_values = true)]
    webhook_secret: Option<String>,
    /// OpenAI-compatible API base URL.
    #[arg(
        long,
        env = "SLUICE_AI_API_URL",
        default_value = "https://api.openai.com"
    )]
    ai_api_url: String,
    /// AI API key.
    #[arg(long, env = "SLUICE_AI_API_KEY", hide_env_values = true)]
    ai_api_key: Option<String>,
    /// Model used when an action names none.
    #[arg(long, env = "SLUICE_AI_MODEL", default_value = "gpt-4o-mini")]
    ai_model: String,
    /// Helpdesk webhook for session actions.
    #[arg(long, env = "SLUICE_HELPDESK_URL")]
    helpdesk_url: Option<String>,
    /// CRM webhook for profile writes (instead of the contact_profile table).
    #[arg(long, env = "SLUICE_CRM_URL")]
    crm_url: Option<String>,
}

fn rate_limits(overrides: &[String]) -> anyhow::Result<HashMap<String, RateLimit>> {
    let mut limits = default_limits();
    for spec in overrides.iter().filter(|s| !s.is_empty()) {
        let parse = || -> Option<(String, RateLimit)> {
            let (channel, rates) = spec.split_once('=')?;
            let (per_channel, per_recipient) = rates.split_once('/').unwrap_or((rates, "0"));
            Some((
                channel.trim().to_owned(),
                RateLimit::per_second(
                    per_channel.trim().parse().ok()?,
                    per_recipient.trim().parse().ok()?,
                ),
            ))
        };
        let (channel, limit) = parse()
            .with_context(|| format!("--rate-limit {spec:?}: expected channel_type=N[/M]"))?;
        limits.insert(channel, limit);
    }
    Ok(limits)
}

impl ActionsArgs {
    fn config(&self) -> anyhow::Result<ActionsConfig> {
        let secret = |s: &Option<String>| s.clone().map(Secret);
        let signed = |url: &Option<String>| {
            url.clone().map(|url| SignedEndpoint {
                url,
                secret: secret(&self.webhook_secret),
            })
        };
        Ok(ActionsConfig {
            group: self.group.clone(),
            actions_topic: self.actions_topic.clone(),
            events_topic: self.events_topic.clone(),
            dlq_topic: self.dlq_topic.clone(),
            worker_id: self.worker_id.clone(),
            lease_ms: self.lease_ms,
            channel_concurrency: self.concurrency,
            max_in_flight: self.max_in_flight,
            rate_limits: rate_limits(&self.rate_limit)?,
            telegram: TelegramConfig {
                api_url: self.telegram_api_url.clone(),
                token: secret(&self.telegram_token),
                tokens: HashMap::new(),
                support_chat_id: self.telegram_support_chat,
            },
            whatsapp: WhatsAppConfig {
                api_url: self.whatsapp_api_url.clone(),
                api_version: self.whatsapp_api_version.clone(),
                token: secret(&self.whatsapp_token),
            },
            sms: SmsConfig {
                api_url: self.sms_api_url.clone(),
                account_sid: self.sms_account_sid.clone(),
                auth_token: secret(&self.sms_auth_token),
            },
            webhook: signed(&self.webhook_url),
            ai: AiConfig {
                api_url: self.ai_api_url.clone(),
                api_key: secret(&self.ai_api_key),
                default_model: self.ai_model.clone(),
            },
            helpdesk: signed(&self.helpdesk_url),
            crm: signed(&self.crm_url),
            ..ActionsConfig::default()
        })
    }
}

pub(crate) async fn run(args: ActionsArgs) -> anyhow::Result<()> {
    let config = args.config()?;
    let telemetry = Telemetry::new("actions")?;
    let bus = bus::connect(&args.common.bus).await?;
    let stores = Stores::connect(&args.store).await?;
    let worker = config.build(bus, stores, &telemetry).await?;
    if let Some(partitions) = args.create_topics {
        worker.ensure_topics(partitions, 1).await?;
    } else if args.common.bus.starts_with("memory://") {
        worker.ensure_topics(8, 1).await?;
    }
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let (addr, server) = telemetry
        .serve(args.common.metrics_addr, async {
            let _ = stopped.await;
        })
        .await?;
    tracing::info!(%addr, bus = %args.common.bus, store = %args.store, "sluice actions starting");
    worker
        .run(shutdown_signal(), Duration::from_secs(20))
        .await?;
    let _ = stop.send(());
    let _ = server.await;
    Ok(())
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}
