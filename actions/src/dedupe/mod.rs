//! Once-only execution: a claim per action id, with a lease, and the outcome once it
//! is done.
//!
//! A worker *claims* an action before it calls anyone. The claim succeeds when no
//! one holds the action, or when the previous holder's lease ran out without the
//! action being marked done (that worker died, or stalled past its lease). A worker
//! that finishes *completes* the claim with the outcome, which a later delivery of
//! the same action finds and reuses instead of executing again. Rows expire by TTL
//! (the CQL table's `default_time_to_live`, seven days), long after any redelivery.

pub(crate) mod cql;
mod memory;

use std::time::Duration;

use async_trait::async_trait;

pub use cql::CqlDedupe;
pub use memory::MemoryDedupe;

use crate::Result;

/// What [`DedupeStore::claim`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// The caller holds the action until `lease_until` (Unix ms) and must execute it.
    Acquired {
        /// 1 for the first claim, more when an expired lease was taken over.
        attempt: i32,
    },
    /// The action was done before; `outcome` is what its executor recorded.
    Done {
        /// The recorded outcome (see [`crate::results::Outcome`]).
        outcome: String,
    },
    /// Another worker holds an unexpired lease; look again after `until` (Unix ms).
    Held {
        /// The lease holder.
        owner: String,
        /// When its lease ends, Unix milliseconds.
        until: i64,
    },
}

/// The store behind once-only execution, keyed by action id.
#[async_trait]
pub trait DedupeStore: Send + Sync {
    /// Claims `action_id` for `owner` until `now + lease` (see [`Claim`]). A claim
    /// `owner` already holds is renewed (re-entrant): the worker serializes the
    /// actions of one contact, so it never runs one action twice at a time.
    async fn claim(&self, action_id: &str, owner: &str, now: i64, lease: Duration)
    -> Result<Claim>;

    /// Records that `owner` finished `action_id` with `outcome`. Returns false when
    /// the claim had been taken over by another worker meanwhile (its lease ran out);
    /// the outcome is recorded anyway only if nobody completed the action before.
    async fn complete(&self, action_id: &str, owner: &str, outcome: &str) -> Result<bool>;
}

pub(crate) fn lease_end(now: i64, lease: Duration) -> i64 {
    now.saturating_add(i64::try_from(lease.as_millis()).unwrap_or(i64::MAX))
}
