//! The flow engine: what flows are and how contacts move through them.
//!
//! Today this crate holds the flow language ([`flow`]): the authoring format (JSON, YAML
//! accepted, described by `schemas/flow.schema.json`), the catalogue of triggers, nodes and
//! conditions, and the compiler that turns a definition into an immutable
//! [`CompiledFlow`](flow::CompiledFlow) — nodes in an arena, exits as indices, conditions,
//! regexes, templates, durations and time zones pre-parsed, triggers indexed by event type —
//! or into the complete list of [`Diagnostic`](flow::Diagnostic)s, each naming its flow, node
//! and JSON path. The evaluator ([`eval`]) runs compiled flows per contact without I/O; the
//! embedded runtime ([`runtime`]) feeds it events and durable timers on a wall or virtual
//! clock, and [`scenario`] runs flow authors' scenario files (`sluice flow test`) on it.

pub mod catalog;
mod error;
pub mod eval;
pub mod flow;
pub mod runtime;
pub mod scenario;
pub mod service;

pub use error::{Error, Result};
