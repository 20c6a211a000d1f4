//! The crate's one error type, and the HTTP status each error answers with.

use axum::http::StatusCode;

/// Whose fault an [`Error`] is, which decides the HTTP status and whether a
/// provider's retry can help.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The request is wrong (signature, payload, tenant); a retry will not help.
    Caller,
    /// Kafka is slow, down or the service is saturated; the provider should retry.
    External,
    /// The configuration is wrong: fix it and restart.
    Config,
}

/// Everything that can go wrong while receiving a webhook or starting the service.
///
/// Messages name the adapter, the tenant or the field involved; they never contain a
/// secret or the request body, so they can be logged and returned to the caller.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The signature or secret token is missing or wrong (401).
    #[error("{adapter}: signature rejected: {reason}")]
    Unauthorized {
        /// The adapter that checked it.
        adapter: &'static str,
        /// Why, without the secret or the expected value.
        reason: String,
    },

    /// The body is not a payload this adapter understands (400).
    #[error("{adapter}: malformed payload: {reason}")]
    Malformed {
        /// The adapter that parsed it.
        adapter: &'static str,
        /// What was wrong, naming the field.
        reason: String,
    },

    /// The tenant, channel or bot has no configuration (404).
    #[error("not found: {0}")]
    NotFound(String),

    /// The Meta verification handshake was refused (403).
    #[error("{adapter}: verification refused: {reason}")]
    Forbidden {
        /// The adapter.
        adapter: &'static str,
        /// Why.
        reason: String,
    },

    /// Too many publishes are in flight on this replica (429).
    #[error("busy: {in_flight} publishes in flight; retry later")]
    Busy {
        /// The configured limit that was reached.
        in_flight: usize,
    },

    /// Kafka did not acknowledge within the publish timeout (503).
    #[error("publishing to {topic} timed out after {millis} ms; retry later")]
    PublishTimeout {
        /// The topic.
        topic: std::sync::Arc<str>,
        /// The timeout that passed.
        millis: u128,
    },

    /// Kafka refused or failed the publish (503).
    #[error("publishing to {topic}: {source}")]
    Publish {
        /// The topic.
        topic: std::sync::Arc<str>,
        /// The bus error.
        #[source]
        source: sluice_infra::Error,
    },

    /// An event could not be encoded (a bug: normalized events must fit the schema).
    #[error("encoding event {id}: {source}")]
    Encode {
        /// The event id.
        id: String,
        /// The codec error.
        #[source]
        source: sluice_schemas::Error,
    },

    /// The configuration file or a secret it names cannot be read or is invalid.
    #[error("ingest config: {0}")]
    Config(String),

    /// Binding or serving the HTTP listener failed.
    #[error("serving webhooks on {addr}: {source}")]
    Serve {
        /// The address.
        addr: std::net::SocketAddr,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },

    /// The shared infrastructure (bus connection, telemetry) failed.
    #[error(transparent)]
    Infra(#[from] sluice_infra::Error),

    /// Registering a metric failed (a bug: duplicate or malformed name).
    #[error("metric registration: {0}")]
    Metrics(#[from] prometheus::Error),
}

impl Error {
    /// A malformed-payload error for `adapter`.
    pub(crate) fn malformed(adapter: &'static str, reason: impl Into<String>) -> Self {
        Error::Malformed {
            adapter,
            reason: reason.into(),
        }
    }

    /// A rejected-signature error for `adapter`.
    pub(crate) fn unauthorized(adapter: &'static str, reason: impl Into<String>) -> Self {
        Error::Unauthorized {
            adapter,
            reason: reason.into(),
        }
    }

    /// Whose fault it is.
    pub fn fault(&self) -> Fault {
        match self {
            Error::Unauthorized { .. }
            | Error::Malformed { .. }
            | Error::NotFound(_)
            | Error::Forbidden { .. } => Fault::Caller,
            Error::Busy { .. } | Error::PublishTimeout { .. } | Error::Publish { .. } => {
                Fault::External
            }
            Error::Encode { .. }
            | Error::Config(_)
            | Error::Serve { .. }
            | Error::Infra(_)
            | Error::Metrics(_) => Fault::Config,
        }
    }

    /// Whether the provider's retry of the same request can succeed.
    pub fn is_retryable(&self) -> bool {
        self.fault() == Fault::External
    }

    /// The HTTP status the webhook answers with.
    pub fn status(&self) -> StatusCode {
        match self {
            Error::Unauthorized { .. } => StatusCode::UNAUTHORIZED,
            Error::Malformed { .. } => StatusCode::BAD_REQUEST,
            Error::NotFound(_) => StatusCode::NOT_FOUND,
            Error::Forbidden { .. } => StatusCode::FORBIDDEN,
            Error::Busy { .. } => StatusCode::TOO_MANY_REQUESTS,
            Error::PublishTimeout { .. } | Error::Publish { .. } => StatusCode::SERVICE_UNAVAILABLE,
            Error::Encode { .. }
            | Error::Config(_)
            | Error::Serve { .. }
            | Error::Infra(_)
            | Error::Metrics(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_follow_the_fault() {
        let cases = [
            (Error::unauthorized("telegram", "x"), 401, false),
            (Error::malformed("stripe", "x"), 400, false),
            (Error::NotFound("tenant acme".into()), 404, false),
            (Error::Busy { in_flight: 1 }, 429, true),
            (
                Error::PublishTimeout {
                    topic: "sluice.events".into(),
                    millis: 5,
                },
                503,
                true,
            ),
        ];
        for (error, status, retry) in cases {
            assert_eq!(error.status().as_u16(), status, "{error}");
            assert_eq!(error.is_retryable(), retry, "{error}");
        }
    }
}
