//! The engine's one error type.

use crate::flow::Diagnostic;

/// Everything that can go wrong in the engine crate.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The user's mistake: a flow definition that does not compile. Every problem is listed;
    /// retrying the same definition cannot help.
    #[error("flow {flow_id} has {} error(s); first: {}", errors.len(), errors.first().map(ToString::to_string).unwrap_or_default())]
    InvalidFlow {
        /// The flow's id as written (empty when it had none).
        flow_id: String,
        /// Every error (warnings are not included).
        errors: Vec<Diagnostic>,
    },
    /// A template failed while rendering (for example it ran out of fuel, or a filter was
    /// given a wrong argument). The user's mistake in the flow or the data; no retry helps.
    #[error("flow {flow_id}: template {template} failed: {message}")]
    Template {
        /// The flow that holds the template.
        flow_id: String,
        /// The template's name: node id and parameter path.
        template: String,
        /// What minijinja said.
        message: String,
    },
}

/// The engine's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
