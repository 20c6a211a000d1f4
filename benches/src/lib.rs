//! End-to-end benchmarks and the load generator for Sluice. Micro-benchmarks live
//! next to their crate (e.g. `schemas/benches/codec.rs`); the ones that cross
//! crates or need the real servers (engine throughput against a raw Kafka
//! passthrough, event→action latency) belong here, with results written into
//! `BENCHMARKS.md`. The first arrives with issue #5.
