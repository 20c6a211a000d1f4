//! What Sluice's services share, and nothing they don't: the event bus and the
//! state store — each a small trait with an in-memory backend (for `sluice dev`
//! and unit tests) and a real one (Apache Kafka through `rdkafka`, ScyllaDB or
//! any CQL cluster through `scylla`) — and the `/metrics`, `/healthz`, `/readyz`
//! endpoint every service exposes.
//!
//! Backends are chosen by URL (`memory://`, `kafka://host:9092`,
//! `cql://host:9042/keyspace`) and handed out as `Arc<dyn …>`, so the embedded
//! and the distributed deployments run the same code above this crate.
//! Dependencies point one way: services depend on this crate, never the reverse.

pub mod bus;
#[cfg(feature = "cql")]
pub mod cql;
mod error;
pub mod store;
pub mod telemetry;
#[cfg(feature = "test-util")]
pub mod testing;

pub use error::{Error, Fault, Result};
