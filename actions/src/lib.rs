//! Action workers: consume `sluice.actions` and carry each action out once —
//! messages through channel APIs (Telegram, including a forum-topic support desk;
//! WhatsApp Cloud API, templates included; Twilio-style SMS; signed webhooks for
//! web chat and custom channels), AI chat completions, custom HTTP functions,
//! profile writes and session changes, custom events and flow starts — with rate
//! limits, retries, and results reported back to the flows as events.
//!
//! # Layout
//!
//! [`ActionsConfig::build`] returns a [`Worker`]; its loop (`worker.rs`) polls,
//! decodes, keeps each contact's actions in order, parks what must wait and commits
//! each partition up to its lowest unfinished action (`offsets.rs`). `dispatch.rs`
//! runs one action: a permit of its connector's semaphore, the once-only claim
//! ([`dedupe`]), the connector (`connectors/`), the recorded [`Outcome`], the
//! published result events ([`results`]).
//!
//! # Each action once: the guarantee as built
//!
//! For every action id, in order:
//!
//! 1. **Claim** in the dedupe store: a lightweight transaction
//!    (`INSERT … IF NOT EXISTS`, owner and lease expiry). A claim that is done is
//!    not executed again; one that another worker holds is parked until its lease
//!    ends; one whose lease ran out (its worker died) is taken over, again by a
//!    conditional update, so two workers never both win.
//! 2. **Call** the provider, with the action id as `Idempotency-Key` wherever the
//!    provider takes one (signed webhooks, the helpdesk, the CRM, custom functions).
//! 3. **Record** the outcome — including the exact result events — with the claim.
//!    When the store fails here (an outage), the worker keeps the provider's answer
//!    and retries recording and publishing it — never the call.
//! 4. **Publish** the result events (ids derived from the action id) and, for a
//!    permanent failure, the dead letter.
//! 5. **Commit** the offset, once everything below it in its partition is finished.
//!
//! What each crash window means:
//!
//! | worker dies … | on redelivery | effect at the provider |
//! |---|---|---|
//! | before 1, or after 1 and before 2 | lease runs out, another worker executes | once |
//! | during 2, or after 2 and before 3 | lease runs out, another worker executes again | once where the provider honours the idempotency key; **twice** for Telegram, WhatsApp and SMS, which have none |
//! | after 3 and before 4 | found done; events re-published from the record | once; events once (engine drops ids it has seen) |
//! | after 4 and before 5 | found done; events re-published | once |
//!
//! So: exactly once for providers with idempotency keys; at most one duplicate, and
//! only when a worker dies in the milliseconds between a provider's answer and the
//! claim's update, for those without. A worker alive past its lease (a provider
//! hanging longer than the retry policy's worst case) could race the taker-over;
//! the lease defaults to that worst case plus 30 s. Records expire after 7 days
//! (the table's TTL), far beyond any redelivery.
//!
//! # Waiting
//!
//! An action whose `not_before` (quiet hours) lies ahead is parked in memory
//! without blocking other contacts or partitions; it holds its partition's
//! committed offset below it, so after a restart it is read again (and the actions
//! behind it are skipped as done). Actions of one contact run in order, so a parked
//! action delays that contact's later ones.

mod config;
mod connectors;
pub mod dedupe;
mod dispatch;
mod error;
mod metrics;
mod offsets;
mod rate_limit;
pub mod results;
pub mod retry;
mod stores;
mod worker;

pub use config::{
    ActionsConfig, AiConfig, Secret, SignedEndpoint, SmsConfig, TelegramConfig, WhatsAppConfig,
};
pub use connectors::{
    desk::{CqlTopics, MemoryTopics, Topic, TopicStore},
    profile::{CqlProfiles, MemoryProfiles, Profile, ProfileChange, ProfileStore},
    webhook::{SIGNATURE_HEADER, signature},
};
pub use error::{Error, Fault, Result};
pub use metrics::Metrics;
pub use rate_limit::{RateLimit, default_limits};
pub use results::Outcome;
pub use stores::Stores;
pub use worker::Worker;
