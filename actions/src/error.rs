//! The crate's one error type.

/// Who is at fault when an [`Error`] happens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The configuration or the action is wrong; retrying will not help.
    User,
    /// A system we depend on (a provider, Kafka, the CQL store) failed.
    External,
    /// A bug or a broken invariant in Sluice itself.
    Internal,
}

/// Errors of the action workers. Messages name the thing involved: the action id,
/// the channel, the provider's URL path, the table.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A setting is missing or malformed.
    #[error("actions config: {0}")]
    Config(String),
    /// The bus, the CQL session or the telemetry endpoint failed.
    #[error(transparent)]
    Infra(#[from] sluice_infra::Error),
    /// An action or event could not be encoded or decoded.
    #[error(transparent)]
    Schema(#[from] sluice_schemas::Error),
    /// A CQL statement of this crate failed.
    #[error("cql: {operation}: {message}")]
    Cql {
        /// What we were doing, naming the table.
        operation: String,
        /// The driver's error, rendered.
        message: String,
    },
    /// The HTTP client could not be built.
    #[error("http client: {0}")]
    HttpClient(String),
    /// A metric could not be registered (a bug: duplicate or malformed name).
    #[error("metrics: {0}")]
    Metrics(#[from] prometheus::Error),
    /// A stored outcome could not be read back (a bug, or a newer worker's format).
    #[error("dedupe: action {action_id}: stored outcome unreadable: {message}")]
    Outcome {
        /// The action.
        action_id: String,
        /// What serde_json said.
        message: String,
    },
}

impl Error {
    /// Who is at fault.
    pub fn fault(&self) -> Fault {
        match self {
            Error::Config(_) => Fault::User,
            Error::Infra(e) => match e.fault() {
                sluice_infra::Fault::User => Fault::User,
                sluice_infra::Fault::External => Fault::External,
                sluice_infra::Fault::Internal => Fault::Internal,
            },
            Error::Schema(_) | Error::Metrics(_) | Error::Outcome { .. } => Fault::Internal,
            Error::Cql { .. } | Error::HttpClient(_) => Fault::External,
        }
    }

    /// Whether trying the same operation again later may succeed. The worker keeps
    /// an action whose processing failed this way and tries it again after a pause.
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Infra(e) => e.is_retryable(),
            Error::Cql { .. } => true,
            _ => false,
        }
    }

    pub(crate) fn cql(operation: impl Into<String>, error: impl std::fmt::Display) -> Self {
        Error::Cql {
            operation: operation.into(),
            message: error.to_string(),
        }
    }
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
