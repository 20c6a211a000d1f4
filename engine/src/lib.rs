//! The flow engine: what flows are and how contacts move through them.
//!
//! Today this crate holds the flow language ([`flow`]): the authoring format (JSON, YAML
//! accepted, described by `schemas/flow.schema.json`), the catalogue of triggers, nodes and
//! conditions, and the compiler that turns a definition into an immutable
//! [`CompiledFlow`](flow::CompiledFlow) — nodes in an arena, exits as indices, conditions,
//! regexes, templates, durations and time zones pre-parsed, triggers indexed by event type —
//! or into the complete list of [`Diagnostic`](flow::Diagnostic)s, each naming its flow, node
//! and JSON path. The evaluator (issue #4) runs compiled flows per contact without I/O.

mod error;
pub mod flow;

pub use error::{Error, Result};
