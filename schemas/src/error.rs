//! The crate's one error type.

/// Whose fault an [`Error`] is, which tells the caller what to do with it.
///
/// No error of this crate is helped by a retry: decoding and validation are pure functions
/// of the bytes or the value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The input is bad (undecodable bytes, an invalid event, an unknown name). The engine
    /// sends such a message to the dead-letter topic with the error's message as the reason.
    Input,
    /// A bug in Sluice: a value does not fit its own schema.
    Internal,
}

/// Everything that can go wrong while encoding, decoding or validating wire data.
///
/// Messages start with what was being handled (`event`, `action`) and name the field, the
/// type or the fingerprint that was wrong, so they can be used as a dead-letter reason as is.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The message does not start with the Avro single-object marker `C3 01`.
    #[error("{what}: bad magic {found:02x?}, expected [c3, 01] (Avro single-object encoding)")]
    BadMagic {
        /// `event` or `action`.
        what: &'static str,
        /// The first (at most two) bytes of the message.
        found: Vec<u8>,
    },

    /// The header names a writer schema this build does not know.
    #[error(
        "{what}: unknown writer schema fingerprint {fingerprint:#018x} \
         (known: {known}); register the schema in schemas/history/"
    )]
    UnknownFingerprint {
        /// `event` or `action`.
        what: &'static str,
        /// The CRC-64-AVRO fingerprint found in the header.
        fingerprint: u64,
        /// The fingerprints this build can read, for the log.
        known: String,
    },

    /// The message ends before the header or the datum is complete.
    #[error("{what}: truncated after {len} bytes: {detail}")]
    Truncated {
        /// `event` or `action`.
        what: &'static str,
        /// Length of the whole message.
        len: usize,
        /// What was being read when the bytes ran out.
        detail: String,
    },

    /// The datum is complete but more bytes follow it.
    #[error("{what}: {trailing} trailing bytes after the datum (message is {len} bytes)")]
    TrailingBytes {
        /// `event` or `action`.
        what: &'static str,
        /// How many bytes follow the datum.
        trailing: usize,
        /// Length of the whole message.
        len: usize,
    },

    /// The bytes do not form a datum of the writer schema (bad union index, invalid UTF-8,
    /// unknown event type, a value that does not resolve to the current schema, ...).
    #[error("{what}: invalid datum at byte {offset} of {len}: {reason}")]
    Decode {
        /// `event` or `action`.
        what: &'static str,
        /// Where in the message decoding stopped.
        offset: usize,
        /// Length of the whole message.
        len: usize,
        /// apache-avro's message, without its schema dump.
        reason: String,
        /// The underlying error.
        #[source]
        source: apache_avro::Error,
    },

    /// A value could not be written with its own schema: a bug in this crate.
    #[error("{what}: cannot encode: {source}")]
    Encode {
        /// `event` or `action`.
        what: &'static str,
        /// The underlying error.
        #[source]
        source: apache_avro::Error,
    },

    /// A string is not a canonical event type (see DESIGN.md, "Canonical names").
    #[error("unknown event type {0:?}")]
    UnknownEventType(String),

    /// A string is not a canonical action type (see DESIGN.md, "Canonical names").
    #[error("unknown action type {0:?}")]
    UnknownActionType(String),

    /// [`schema_text`](crate::schema_text) was asked for a schema that does not exist.
    #[error("unknown schema {name:?}; known: {known}")]
    UnknownSchema {
        /// The name asked for.
        name: String,
        /// The names that exist.
        known: String,
    },

    /// A decoded value breaks a rule the schema cannot express (payload does not fit the
    /// type, empty id, ...).
    #[error("{what} {id:?}: invalid field `{field}`: {reason}")]
    Invalid {
        /// `event` or `action`.
        what: &'static str,
        /// The id of the event or action.
        id: String,
        /// The offending field, as named in the schema (`payload`, `session`, `tenant`...).
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
}

impl Error {
    /// Whose fault the error is: [`Fault::Input`] goes to the dead-letter topic,
    /// [`Fault::Internal`] is a bug to report.
    pub fn fault(&self) -> Fault {
        match self {
            Error::Encode { .. } => Fault::Internal,
            _ => Fault::Input,
        }
    }

    /// Whether retrying the same operation can succeed: never, for this crate.
    pub fn is_retryable(&self) -> bool {
        false
    }
}

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
