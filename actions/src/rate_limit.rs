//! Per-channel rate limits: a token bucket per sending channel (a Telegram bot, a
//! WhatsApp number) and one per recipient on it (a Telegram chat), from `governor`.
//!
//! Defaults follow the providers' published limits: Telegram about 30 messages a
//! second per bot and one a second per chat; WhatsApp Cloud API 80 a second per
//! business number; SMS 10 a second per sender. All are configurable.

use std::{
    collections::HashMap,
    num::NonZeroU32,
    sync::{Arc, Mutex},
};

use governor::{DefaultDirectRateLimiter, DefaultKeyedRateLimiter, Quota, RateLimiter};
use serde::{Deserialize, Serialize};

use crate::metrics::Metrics;

/// Limits of one channel type, in messages per second (none: unlimited).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct RateLimit {
    /// Per sending channel (bot, number, widget).
    pub per_channel: Option<NonZeroU32>,
    /// Per recipient on one sending channel.
    pub per_recipient: Option<NonZeroU32>,
}

impl RateLimit {
    /// A limit of `per_channel` and `per_recipient` messages a second (0: unlimited).
    pub fn per_second(per_channel: u32, per_recipient: u32) -> Self {
        RateLimit {
            per_channel: NonZeroU32::new(per_channel),
            per_recipient: NonZeroU32::new(per_recipient),
        }
    }
}

/// The default limits by channel type (`telegram`, `whatsapp`, `sms`).
pub fn default_limits() -> HashMap<String, RateLimit> {
    HashMap::from([
        ("telegram".to_owned(), RateLimit::per_second(30, 1)),
        ("telegram_desk".to_owned(), RateLimit::per_second(20, 0)),
        ("whatsapp".to_owned(), RateLimit::per_second(80, 0)),
        ("sms".to_owned(), RateLimit::per_second(10, 0)),
    ])
}

/// The buckets, created on first use.
pub(crate) struct RateLimiters {
    limits: HashMap<String, RateLimit>,
    channels: Mutex<HashMap<String, Arc<DefaultDirectRateLimiter>>>,
    recipients: HashMap<String, DefaultKeyedRateLimiter<String>>,
    metrics: Metrics,
}

impl std::fmt::Debug for RateLimiters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateLimiters")
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

impl RateLimiters {
    pub(crate) fn new(limits: HashMap<String, RateLimit>, metrics: Metrics) -> Self {
        let recipients = limits
            .iter()
            .filter_map(|(channel, limit)| {
                let rate = limit.per_recipient?;
                Some((channel.clone(), RateLimiter::keyed(Quota::per_second(rate))))
            })
            .collect();
        RateLimiters {
            limits,
            channels: Mutex::default(),
            recipients,
            metrics,
        }
    }

    /// Waits until `channel_type`'s buckets allow one more message from
    /// `channel_id` to `recipient`.
    pub(crate) async fn acquire(&self, channel_type: &str, channel_id: &str, recipient: &str) {
        let Some(limit) = self.limits.get(channel_type) else {
            return;
        };
        let mut waited = false;
        if let Some(rate) = limit.per_channel {
            let bucket = {
                let mut channels = self
                    .channels
                    .lock()
                    .unwrap_or_else(|poisoned| poisoned.into_inner());
                Arc::clone(
                    channels
                        .entry(format!("{channel_type}/{channel_id}"))
                        .or_insert_with(|| Arc::new(RateLimiter::direct(Quota::per_second(rate)))),
                )
            };
            if bucket.check().is_err() {
                waited = true;
                bucket.until_ready().await;
            }
        }
        if let Some(bucket) = self.recipients.get(channel_type) {
            let key = format!("{channel_id}/{recipient}");
            if bucket.check_key(&key).is_err() {
                waited = true;
                bucket.until_key_ready(&key).await;
            }
            if bucket.len() > 100_000 {
                bucket.retain_recent();
            }
        }
        if waited {
            self.metrics
                .rate_limit_waits
                .with_label_values(&[channel_type])
                .inc();
        }
    }
}
