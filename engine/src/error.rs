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
    /// A stored contact state could not be read (corrupt, or written by an
    /// incompatible version). Ours or the store's fault; retrying will not help.
    #[error("contact state: {0}")]
    State(String),
    /// The state or timer store failed (see the inner error for whose fault it is
    /// and whether a retry can help).
    #[error("store: {0}")]
    Store(#[source] sluice_infra::Error),
    /// The event bus failed.
    #[error("bus: {0}")]
    Bus(#[source] sluice_infra::Error),
    /// The evaluator produced an action that cannot be encoded: a bug in Sluice.
    #[error("action {0}: cannot encode: {1}")]
    Action(String, String),
    /// A scenario file (`sluice flow test`) is unreadable or invalid: the user's
    /// mistake, named with the file and the step.
    #[error("scenario {file}: {message}")]
    Scenario {
        /// The scenario file.
        file: String,
        /// What is wrong, naming the step or field.
        message: String,
    },
    /// A flow submit was refused: its version is not newer than the newest recorded one,
    /// or the same version was recorded with different content, or the tenant name is
    /// malformed. The user's mistake; submitting again unchanged cannot help.
    #[error("flow {tenant}/{flow_id} v{version}: {reason}")]
    FlowRefused {
        /// The tenant the flow was submitted for.
        tenant: String,
        /// The flow's id.
        flow_id: String,
        /// The submitted version.
        version: u32,
        /// Why it was refused.
        reason: String,
    },
}

/// The engine's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
