//! The crate's one error type.

/// Everything that can go wrong in the shared crate.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum Error {
    /// An `X-Amzn-Trace-Id` value that does not follow the header grammar.
    #[error("invalid trace header: {0}")]
    InvalidTraceHeader(String),
    /// An `AWS_XRAY_DAEMON_ADDRESS` that cannot be used.
    #[error("invalid X-Ray daemon address: {0}")]
    InvalidDaemonAddress(String),
    /// An annotation key X-Ray would refuse.
    #[error("invalid annotation key {0:?}: must match ^[A-Za-z0-9_]{{1,500}}$")]
    InvalidAnnotationKey(String),
    /// A missing or malformed setting.
    #[error("configuration: {variable}: {reason}")]
    Config {
        /// The variable (or component) at fault.
        variable: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// A downstream URL that cannot be requested.
    #[error("invalid URL {0}")]
    InvalidUrl(String),
    /// SigV4 signing failed (no credentials, bad parameters).
    #[error("signing failed: {0}")]
    Signing(String),
    /// The downstream call did not finish within the request timeout.
    #[error("{service} did not answer in time")]
    Timeout {
        /// The called Lattice service.
        service: String,
    },
    /// The downstream call failed below HTTP (refused, reset, DNS, TLS).
    #[error("{service} unreachable: {detail}")]
    Transport {
        /// The called Lattice service.
        service: String,
        /// What failed.
        detail: String,
    },
}

impl Error {
    /// Short kind for a segment's `cause.exceptions[].type`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::InvalidTraceHeader(_) => "InvalidTraceHeader",
            Self::InvalidDaemonAddress(_) => "InvalidDaemonAddress",
            Self::InvalidAnnotationKey(_) => "InvalidAnnotationKey",
            Self::Config { .. } => "Config",
            Self::InvalidUrl(_) => "InvalidUrl",
            Self::Signing(_) => "Signing",
            Self::Timeout { .. } => "Timeout",
            Self::Transport { .. } => "Transport",
        }
    }
}
