//! Politeness towards providers: exponential backoff with full jitter, `Retry-After`
//! (seconds or an HTTP date) honoured, a per-action budget of attempts and time.
//!
//! What is retried: HTTP 408, 429 and 5xx, connection failures and timeouts. Every
//! other 4xx is permanent: the request itself is wrong and sending it again cannot
//! help.

use std::time::{Duration, SystemTime};

use rand::Rng;
use serde::{Deserialize, Serialize};

/// How often and how long a call is retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct RetryPolicy {
    /// Attempts in all, the first included.
    pub max_attempts: u32,
    /// Backoff before the second attempt; doubles for each further one.
    pub base_backoff_ms: u64,
    /// Ceiling of one backoff.
    pub max_backoff_ms: u64,
    /// No attempt starts later than this after the first one (the retry budget).
    pub budget_ms: u64,
    /// Timeout of one HTTP attempt, unless the action brings its own.
    pub attempt_timeout_ms: u64,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 5,
            base_backoff_ms: 200,
            max_backoff_ms: 10_000,
            budget_ms: 30_000,
            attempt_timeout_ms: 10_000,
        }
    }
}

impl RetryPolicy {
    /// The pause before attempt `attempt + 1` (after `attempt` failed), with full
    /// jitter: uniform in `[0, min(max, base · 2^(attempt-1))]`. A server's
    /// `Retry-After` replaces it (capped at the budget).
    pub fn backoff(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        if let Some(after) = retry_after {
            return after.min(Duration::from_millis(self.budget_ms));
        }
        let exp = self
            .base_backoff_ms
            .saturating_mul(1u64 << attempt.saturating_sub(1).min(30));
        let ceiling = exp.min(self.max_backoff_ms).max(1);
        Duration::from_millis(rand::rng().random_range(0..=ceiling))
    }

    /// The worst-case time one call may take with all its retries: what a claim's
    /// lease must outlast.
    pub fn worst_case(&self) -> Duration {
        Duration::from_millis(
            self.budget_ms
                .saturating_add(self.attempt_timeout_ms)
                .saturating_add(self.max_backoff_ms),
        )
    }
}

/// Whether an HTTP status is worth another attempt.
pub fn is_retryable_status(status: u16) -> bool {
    status == 408 || status == 429 || (500..=599).contains(&status)
}

/// Parses a `Retry-After` header value: delay seconds or an HTTP date.
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_reads_seconds_and_http_dates() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_767_225_600);
        assert_eq!(parse_retry_after("3", now), Some(Duration::from_secs(3)));
        let later = httpdate::fmt_http_date(now + Duration::from_secs(7));
        assert_eq!(parse_retry_after(&later, now), Some(Duration::from_secs(7)));
        let past = httpdate::fmt_http_date(now - Duration::from_secs(7));
        assert_eq!(parse_retry_after(&past, now), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("soon", now), None);
    }

    #[test]
    fn backoff_grows_is_capped_and_jittered() {
        let policy = RetryPolicy::default();
        for attempt in 1..20 {
            let pause = policy.backoff(attempt, None);
            let cap = (200u64 << (attempt - 1).min(30)).min(10_000);
            assert!(
                pause <= Duration::from_millis(cap),
                "attempt {attempt}: {pause:?}"
            );
        }
        assert_eq!(
            policy.backoff(1, Some(Duration::from_secs(2))),
            Duration::from_secs(2)
        );
        assert_eq!(
            policy.backoff(1, Some(Duration::from_secs(3600))),
            Duration::from_millis(policy.budget_ms)
        );
    }

    #[test]
    fn only_transient_statuses_are_retried() {
        for status in [408, 429, 500, 502, 503, 504] {
            assert!(is_retryable_status(status), "{status}");
        }
        for status in [200, 400, 401, 403, 404, 409, 422] {
            assert!(!is_retryable_status(status), "{status}");
        }
    }
}
