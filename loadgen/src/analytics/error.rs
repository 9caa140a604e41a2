//! Why an analytics call failed: one enum, each variant a message a person can act on (the
//! endpoint, the credentials, the index, or the question the engine refused and its reason).

use std::time::Duration;

/// Why `loadgen analytics` (or a call of [`AnalyticsClient`](super::AnalyticsClient)) failed.
#[derive(Debug, thiserror::Error)]
pub enum AnalyticsError {
    /// The endpoint is not an `http://` or `https://` URL with a host.
    #[error("search endpoint {0:?}: expected http(s)://HOST[:PORT]")]
    BadEndpoint(String),
    /// No TCP (or TLS) connection to the endpoint.
    #[error("cannot reach the search endpoint {endpoint}: {detail}")]
    Unreachable {
        /// The endpoint.
        endpoint: String,
        /// The connect error chain.
        detail: String,
    },
    /// The endpoint took longer than the timeout.
    #[error("no answer from the search endpoint {endpoint} within {after:?}")]
    Timeout {
        /// The endpoint.
        endpoint: String,
        /// The timeout.
        after: Duration,
    },
    /// 401: the credentials were refused (or none were sent to an endpoint that needs them).
    #[error("the search endpoint refused the credentials (401): {reason}")]
    Unauthorized {
        /// The body's reason.
        reason: String,
    },
    /// 403: authenticated (or not) but not allowed, as Amazon OpenSearch Service answers an
    /// unsigned or badly signed request, or a principal its access policy does not name.
    #[error("the search endpoint denied access (403): {reason}")]
    Forbidden {
        /// The body's reason.
        reason: String,
    },
    /// No index matches the pattern: nothing has been delivered yet.
    #[error("no {index} index yet: {reason}")]
    IndexMissing {
        /// The index or pattern asked.
        index: String,
        /// The engine's reason.
        reason: String,
    },
    /// The engine refused a request (a query it does not serve, a bad template, …).
    #[error("{what}: refused with {status}: {reason}")]
    Refused {
        /// Which request (`requests per service`, `index template`, …).
        what: String,
        /// HTTP status.
        status: u16,
        /// The engine's `type: reason`.
        reason: String,
    },
    /// A 2xx answer that is not what OpenSearch answers.
    #[error("{what}: unexpected answer: {detail}")]
    BadAnswer {
        /// Which request.
        what: String,
        /// What did not parse.
        detail: String,
    },
    /// The connection failed after it was made.
    #[error("search endpoint {endpoint}: {detail}")]
    Transport {
        /// The endpoint.
        endpoint: String,
        /// The error chain.
        detail: String,
    },
    /// No credentials or region to sign with, or signing failed.
    #[error("SigV4: {0}")]
    Signing(String),
    /// The local stack's state could not be read.
    #[error("local stack: {0}")]
    LocalStack(String),
    /// The options do not describe a time window.
    #[error("time window: {0}")]
    BadWindow(String),
    /// `--firehose-role-arn` is not an IAM role ARN.
    #[error("--firehose-role-arn {0:?} is not an IAM role ARN (arn:aws:iam::ACCOUNT:role/NAME)")]
    BadRoleArn(String),
    /// Not an index name or pattern.
    #[error("{0:?} is not an index name or pattern")]
    BadIndex(String),
    /// `--basic-auth` is not `USER:PASSWORD`.
    #[error("--basic-auth: expected USER:PASSWORD")]
    BadBasicAuth,
}
