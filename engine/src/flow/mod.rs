//! The flow language: authoring format, catalogue, compiler and renderers.
//!
//! The authoring guide is `examples/flows/README.md` ("Writing flows"); the format is
//! described by `schemas/flow.schema.json`. This module documents the contract.
//!
//! ## Pipeline
//! [`compile_str`] parses JSON or YAML into a JSON value, [`compile_value`] reads every node,
//! trigger and setting — collecting **all** problems as [`Diagnostic`]s with flow id, node id
//! and JSON pointer — then checks the graph (dangling and unconnected exits, unreachable
//! nodes, loops without a waiting node, variables read before they are set) and builds a
//! [`CompiledFlow`]: nodes in a `Vec` arena addressed by [`NodeIndex`], exits as indices in
//! the order of [`NodeKind::exit_names`], conditions compiled into [`Condition`] trees with
//! typed literals and compiled regexes, templates compiled once into the flow's sandboxed
//! [`Templates`], durations, time zones and cron expressions parsed, and triggers indexed by
//! [`EventType`](sluice_schemas::EventType).
//!
//! ## What gets published
//! `sluice flow compile` writes an artifact (see [`artifact`]) holding the **source** with
//! its content hash and a readable summary. Engines load the source and compile it
//! themselves ([`from_artifact`]): compiled forms hold regexes and template bytecode that
//! are not portable, and compiling a flow takes microseconds, so the source is the
//! versioned, stable format.

mod analysis;
mod artifact;
mod compile;
mod condition;
mod diagnostic;
mod duration;
mod graph;
mod literal;
mod node;
mod operand;
mod params;
mod read_control;
mod read_node;
mod render;
mod schedule;
mod settings;
mod summary;
mod template;
mod trigger;

pub use artifact::{ARTIFACT_FORMAT, artifact, from_artifact};
pub use compile::{Compilation, SourceFormat, compile_str, compile_value};
pub use condition::{CmpOp, Condition, Test};
pub use diagnostic::{Diagnostic, Severity};
pub use duration::{MAX_DURATION, parse_duration};
pub use graph::{CompiledFlow, FlowKind, TriggerId, canonical_json};
pub use literal::{Literal, Money, TimeRef, currency_exponent};
pub use node::{
    AnswerType, Button, ExitRule, FieldValue, Media, Node, NodeIndex, NodeKind, ResponseField,
    SendChannel, WaitSpec, exits,
};
pub use operand::{Operand, ValueType, is_identifier};
pub use read_node::NODE_TYPES;
pub use render::{to_dot, to_mermaid};
pub use schedule::{
    CronSchedule, Hours, TimeRange, WeekdaySet, parse_cron, parse_time_of_day, parse_timezone,
    parse_weekday,
};
pub use settings::{DEFAULT_STEP_LIMIT, FrequencyCap, QuietHours, QuietMode, Settings};
pub use summary::summary;
pub use template::{CONTEXT_VARIABLES, TEMPLATE_FUEL, Templates, Text};
pub use trigger::{EventMatch, Pattern, Reentry, Schedule, Trigger, TriggerKind};
