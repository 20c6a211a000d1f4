//! End-to-end benchmarks and the load generator for Sluice. Micro-benchmarks live
//! next to their crate (e.g. `schemas/benches/codec.rs`); the ones that cross
//! crates or need the real servers belong here, with results written into
//! `BENCHMARKS.md`.
//!
//! The load generator (`src/bin/loadgen.rs`, run by `benches/engine/run.sh`)
//! measures `sluice engine` end to end on the real Kafka and CQL server next to a
//! raw Kafka consume→produce [`passthrough`] on the same broker: maximum throughput
//! (everything produced at once, timed until the last output arrives) and
//! event→output latency percentiles at a fixed rate of half that maximum. Its parts:
//! the events ([`workload`]), the producer ([`producer`]), the output watcher that
//! matches outputs to events ([`tracker`]), the engine process ([`engine`]), the
//! Kafka clients ([`kafka`]) and the printed table ([`report`]).

pub mod engine;
pub mod kafka;
pub mod passthrough;
pub mod producer;
pub mod report;
pub mod tracker;
pub mod workload;
