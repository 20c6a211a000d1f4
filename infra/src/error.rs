//! The crate's one error type.

/// Who is at fault when an [`Error`] happens, so that callers can decide whether to
/// report, retry or give up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The configuration or the input given to us is wrong; retrying will not help.
    User,
    /// A server we depend on (Kafka, the CQL store) failed or is unreachable.
    External,
    /// A bug or a broken invariant in Sluice itself.
    Internal,
}

/// Errors of the bus, the store and the telemetry endpoint. Each message names
/// the thing involved: the URL, the topic and partition, the table.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A backend URL or setting is malformed.
    #[error("invalid backend url {url:?}: {reason}")]
    Config {
        /// The URL as given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The URL asks for a backend this binary was built without.
    #[error(
        "backend {scheme}:// is not compiled into this binary; rebuild with the `{feature}` feature"
    )]
    NotCompiled {
        /// The URL scheme.
        scheme: String,
        /// The cargo feature that provides it.
        feature: &'static str,
    },
    /// A Kafka operation failed.
    #[cfg(feature = "kafka")]
    #[error("kafka: {operation}: {source}")]
    Kafka {
        /// What we were doing, naming the topic (and partition) involved.
        operation: String,
        /// The client's error.
        #[source]
        source: rdkafka::error::KafkaError,
    },
    /// A CQL operation failed.
    #[error("cql: {operation}: {message}")]
    Cql {
        /// What we were doing, naming the table or keyspace involved.
        operation: String,
        /// The driver's error, rendered.
        message: String,
        /// Whether retrying the same operation later can succeed.
        retryable: bool,
    },
    /// The embedded file store failed.
    #[error("file store: {operation}: {message}")]
    File {
        /// What we were doing, naming the file.
        operation: String,
        /// The storage engine's error, rendered.
        message: String,
    },
    /// A topic was used that the bus does not know.
    #[error("bus: unknown topic {0:?}; create it with ensure_topics first")]
    UnknownTopic(String),
    /// The telemetry HTTP endpoint could not start.
    #[error("telemetry: cannot serve on {addr}: {source}")]
    Serve {
        /// The address we tried to bind.
        addr: std::net::SocketAddr,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A metric could not be registered (a bug: duplicate or malformed name).
    #[error("telemetry: metric registration: {0}")]
    Metrics(#[from] prometheus::Error),
}

impl Error {
    /// Who is at fault.
    pub fn fault(&self) -> Fault {
        match self {
            Error::Config { .. } | Error::NotCompiled { .. } | Error::UnknownTopic(_) => {
                Fault::User
            }
            #[cfg(feature = "kafka")]
            Error::Kafka { .. } => Fault::External,
            Error::Cql { .. } | Error::Serve { .. } | Error::File { .. } => Fault::External,
            Error::Metrics(_) => Fault::Internal,
        }
    }

    /// Whether the same operation may succeed if tried again later.
    pub fn is_retryable(&self) -> bool {
        match self {
            #[cfg(feature = "kafka")]
            Error::Kafka { source, .. } => source
                .rdkafka_error_code()
                .is_none_or(|code| !is_fatal_kafka_code(code)),
            Error::Cql { retryable, .. } => *retryable,
            Error::Serve { .. } => true,
            _ => false,
        }
    }

    pub(crate) fn config(url: &str, reason: impl Into<String>) -> Self {
        Error::Config {
            url: url.to_owned(),
            reason: reason.into(),
        }
    }
}

#[cfg(feature = "kafka")]
fn is_fatal_kafka_code(code: rdkafka::types::RDKafkaErrorCode) -> bool {
    use rdkafka::types::RDKafkaErrorCode as C;
    matches!(
        code,
        C::Fatal
            | C::InvalidConfig
            | C::TopicAuthorizationFailed
            | C::ClusterAuthorizationFailed
            | C::GroupAuthorizationFailed
            | C::MessageSizeTooLarge
            | C::InvalidMessage
            | C::UnknownTopic
    )
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
