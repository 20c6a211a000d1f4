//! Ingest: the front door for channel webhooks (Telegram, WhatsApp, Messenger and
//! Instagram, Twilio SMS, Stripe, a helpdesk) and a generic JSON endpoint.
//!
//! For every request it verifies the provider's signature ([`signature`]), normalizes
//! the payload into [`sluice_schemas::Event`]s ([`adapters`]) with deterministic contact
//! ids ([`identity`]) and event ids derived from the provider's ids, and publishes them
//! to `sluice.events` ([`publish`]), answering 200 only once Kafka acknowledged them.
//! Stateless: any replica serves any request.
//!
//! ```no_run
//! # async fn run() -> sluice_ingest::Result<()> {
//! use sluice_infra::{bus::{self, TopicSpec, topics}, telemetry::Telemetry};
//! use sluice_ingest::{Ingest, IngestConfig, IngestSettings};
//!
//! let config = IngestConfig::load("ingest.yaml".as_ref())?;
//! let telemetry = Telemetry::new("ingest")?;
//! let bus = bus::connect("kafka://127.0.0.1:9092").await?;
//! let ingest = Ingest::new(config, IngestSettings::default(), bus, &telemetry)?;
//! let events = TopicSpec::sluice_topics(12, 3).remove(0);
//! assert_eq!(events.name, topics::EVENTS);
//! let (_addr, server) = ingest.serve(events, std::future::pending()).await?;
//! # let _ = server.await;
//! # Ok(())
//! # }
//! ```

pub mod adapters;
pub mod config;
mod dedupe;
mod error;
pub mod identity;
pub mod metrics;
pub mod publish;
mod server;
pub mod signature;

pub use config::{IngestConfig, IngestSettings, Secret};
pub use error::{Error, Fault, Result};
pub use server::Ingest;
