//! AWS SDK calls as X-Ray `aws` subsegments, and what a failed call means for the caller.
//!
//! The Rust SDK already opens one `tracing` span per operation (`DynamoDB.UpdateItem`, level
//! DEBUG, with `rpc.system = "aws-api"`, `rpc.service`, `rpc.method`). opentelemetry-aws's
//! translator turns such a span into a subsegment named after the service with
//! `namespace: "aws"` and `aws.operation`, as the X-Ray segment spec describes an AWS SDK call.
//! What the span lacks, [`AwsCallInterceptor`] (one SDK interceptor) adds to it while the call
//! runs: `aws.region`, the table names (`aws.dynamodb.table_names`, which the translator writes
//! as `aws.table_name` and `aws.table_names`), and afterwards `http.response.status_code`,
//! `aws.request_id` and, for a failed call, an error status with the service's error code as the
//! exception, so the subsegment gets X-Ray's error (4xx), throttle (429) or fault (5xx, or no
//! answer at all) flag and its cause. No segment is written by hand here.
//!
//! [`crate::Telemetry::install_subscriber`] lets exactly the SDK's operation spans through to the
//! OpenTelemetry layer ([`SDK_OPERATION_SPAN_TARGETS`]); the orchestrator's inner DEBUG spans
//! (`try_op`, `try_attempt`, …) stay disabled, so the operation span is the current span whenever
//! an interceptor hook runs.
//!
//! [`classify`] reads a failed call the way a caller must answer it: throttled, conflicting, timed
//! out or unreachable calls are worth a retry later (HTTP 503), anything else the service refused
//! is a fault of ours.
//!
//! After a successful DynamoDB call it also logs the capacity the call consumed
//! ([`crate::consumed_capacity`]).

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::context::{
    BeforeSerializationInterceptorContextRef, BeforeTransmitInterceptorContextRef,
    FinalizerInterceptorContextRef,
};
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_runtime_api::http::Response as HttpResponse;
use aws_smithy_types::config_bag::ConfigBag;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use opentelemetry::trace::Status;
use opentelemetry::{Array, KeyValue, StringValue, Value};
use serde::Deserialize;
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// `tracing` targets of the SDK operation spans that become `aws` subsegments.
pub const SDK_OPERATION_SPAN_TARGETS: &[&str] = &["aws_sdk_dynamodb"];

/// The response header carrying the AWS request id.
pub const REQUEST_ID_HEADER: &str = "x-amzn-requestid";

/// Adds what an X-Ray `aws` subsegment needs to the SDK's own operation span.
#[derive(Clone, Debug)]
pub struct AwsCallInterceptor {
    region: Arc<str>,
}

impl AwsCallInterceptor {
    /// An interceptor for clients of `region`.
    pub fn new(region: impl Into<Arc<str>>) -> Self {
        Self {
            region: region.into(),
        }
    }
}

/// The SDK's operation span, if it is the current span (it is, unless a `RUST_LOG` enabled the
/// orchestrator's inner spans; then the call is left unannotated rather than mis-annotated).
fn operation_span() -> Option<tracing::Span> {
    let span = tracing::Span::current();
    let is_operation = span.metadata().is_some_and(|meta| {
        SDK_OPERATION_SPAN_TARGETS
            .iter()
            .any(|target| meta.target().starts_with(target))
    });
    is_operation.then_some(span)
}

impl Intercept for AwsCallInterceptor {
    fn name(&self) -> &'static str {
        "lattice_xray::AwsCallInterceptor"
    }

    fn read_before_execution(
        &self,
        _context: &BeforeSerializationInterceptorContextRef<'_>,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if let Some(span) = operation_span() {
            span.set_attribute("aws.region", self.region.to_string());
        }
        Ok(())
    }

    fn read_after_serialization(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let Some(span) = operation_span() else {
            return Ok(());
        };
        let tables = context
            .request()
            .body()
            .bytes()
            .map(dynamodb_table_names)
            .unwrap_or_default();
        if !tables.is_empty() {
            let names = tables.into_iter().map(StringValue::from).collect();
            span.set_attribute(
                "aws.dynamodb.table_names",
                Value::Array(Array::String(names)),
            );
        }
        Ok(())
    }

    fn read_after_execution(
        &self,
        context: &FinalizerInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let response = context.response();
        log_consumed_capacity(context, cfg);
        let Some(span) = operation_span() else {
            return Ok(());
        };
        if let Some(response) = response {
            span.set_attribute(
                "http.response.status_code",
                i64::from(response.status().as_u16()),
            );
            if let Some(id) = response.headers().get(REQUEST_ID_HEADER) {
                span.set_attribute("aws.request_id", id.to_owned());
            }
        }
        if let Some(Err(error)) = context.output_or_error() {
            let answered = response
                .and_then(|r| r.body().bytes())
                .and_then(ServiceErrorBody::parse);
            let (kind, message) = match answered {
                Some(body) => (body.code, body.message),
                None => (
                    Cow::Borrowed(unanswered_kind(error)),
                    Cow::Owned(error.to_string()),
                ),
            };
            span.set_status(Status::error(format!("{kind}: {message}")));
            span.add_event(
                "exception",
                vec![
                    KeyValue::new("exception.type", kind.into_owned()),
                    KeyValue::new("exception.message", message.into_owned()),
                ],
            );
        }
        Ok(())
    }
}

/// A successful DynamoDB call's consumed capacity, logged (see [`crate::consumed_capacity`]).
/// The operation comes from the SDK's own [`Metadata`] in the config bag (the request itself has
/// gone to the HTTP client by now).
fn log_consumed_capacity(context: &FinalizerInterceptorContextRef<'_>, cfg: &ConfigBag) {
    let Some(Ok(_)) = context.output_or_error() else {
        return;
    };
    let Some(operation) = cfg
        .load::<Metadata>()
        .filter(|metadata| metadata.service() == "DynamoDB")
    else {
        return;
    };
    if let Some(body) = context.response().and_then(|r| r.body().bytes()) {
        let units = crate::consumed_capacity::from_response(operation.name(), body);
        crate::consumed_capacity::log(&units);
    }
}

fn unanswered_kind<E>(
    error: &aws_smithy_runtime_api::client::orchestrator::OrchestratorError<E>,
) -> &'static str {
    if error.is_timeout_error() {
        "Timeout"
    } else if error.is_connector_error() {
        "ConnectionFailure"
    } else {
        "ClientError"
    }
}

/// The awsJson error body: `{"__type": "com.amazonaws.dynamodb.v20120810#Code", "message": …}`.
#[derive(Debug, PartialEq, Eq)]
struct ServiceErrorBody<'a> {
    code: Cow<'a, str>,
    message: Cow<'a, str>,
}

impl<'a> ServiceErrorBody<'a> {
    fn parse(body: &'a [u8]) -> Option<Self> {
        #[derive(Deserialize)]
        struct Raw<'a> {
            #[serde(rename = "__type", borrow)]
            kind: Cow<'a, str>,
            #[serde(alias = "Message", borrow, default)]
            message: Option<Cow<'a, str>>,
        }
        let raw: Raw<'a> = serde_json::from_slice(body).ok()?;
        let code = match raw.kind {
            Cow::Borrowed(kind) => Cow::Borrowed(kind.rsplit('#').next().unwrap_or(kind)),
            Cow::Owned(kind) => Cow::Owned(kind.rsplit('#').next().unwrap_or(&kind).to_owned()),
        };
        Some(Self {
            code,
            message: raw.message.unwrap_or_default(),
        })
    }
}

/// The tables a DynamoDB request names, in order of first appearance: `TableName`, the tables of
/// `TransactItems` and the keys of `RequestItems`.
pub fn dynamodb_table_names(body: &[u8]) -> Vec<String> {
    #[derive(Deserialize)]
    #[serde(rename_all = "PascalCase")]
    struct Request {
        table_name: Option<String>,
        #[serde(default)]
        transact_items: Vec<std::collections::HashMap<String, Action>>,
        #[serde(default)]
        request_items: serde_json::Map<String, serde_json::Value>,
    }
    #[derive(Deserialize)]
    #[serde(rename_all = "PascalCase")]
    struct Action {
        table_name: Option<String>,
    }
    let Ok(request) = serde_json::from_slice::<Request>(body) else {
        return Vec::new();
    };
    let mut names: Vec<String> = Vec::new();
    let mut push = |name: String| {
        if !names.contains(&name) {
            names.push(name);
        }
    };
    request.table_name.into_iter().for_each(&mut push);
    for item in request.transact_items {
        item.into_values()
            .filter_map(|action| action.table_name)
            .for_each(&mut push);
    }
    request.request_items.into_iter().for_each(|(k, _)| push(k));
    names
}

/// The shared AWS configuration for a function's SDK clients, read once at cold start
/// (credentials, Region, and `AWS_ENDPOINT_URL_<SERVICE>` endpoints from the standard chain),
/// with `timeout` as each call's whole budget (connect included; retries share it), and the
/// interceptor to add to each client's config.
///
/// Retries: the standard strategy's 3 attempts, but backing off from [`RETRY_INITIAL_BACKOFF`]
/// instead of 1 s, so that a throttled or conflicting call is retried within a request's budget of
/// about a second rather than timing out while it waits.
pub async fn load_sdk_config(
    timeout: std::time::Duration,
) -> Result<(aws_config::SdkConfig, AwsCallInterceptor), crate::Error> {
    let timeouts = aws_config::timeout::TimeoutConfig::builder()
        .connect_timeout(timeout)
        .operation_attempt_timeout(timeout)
        .operation_timeout(timeout)
        .build();
    let retries = aws_config::retry::RetryConfig::standard()
        .with_max_attempts(RETRY_ATTEMPTS)
        .with_initial_backoff(RETRY_INITIAL_BACKOFF);
    let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .timeout_config(timeouts)
        .retry_config(retries)
        .load()
        .await;
    let region = config.region().ok_or(crate::Error::Config {
        variable: "AWS_REGION",
        reason: "no region in the AWS config chain".to_owned(),
    })?;
    let interceptor = AwsCallInterceptor::new(region.to_string());
    Ok((config, interceptor))
}

/// Attempts per SDK call (the standard strategy's default).
pub const RETRY_ATTEMPTS: u32 = 3;
/// The first retry's backoff ceiling (it doubles per attempt, with full jitter).
pub const RETRY_INITIAL_BACKOFF: std::time::Duration = std::time::Duration::from_millis(20);

/// How a caller should read a failed AWS call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AwsCallFailure {
    /// The service throttled the call (a retry later may pass).
    Throttled {
        /// The service's error code.
        code: String,
    },
    /// The call conflicted with another in flight (a retry may pass).
    Conflict {
        /// The service's error code.
        code: String,
    },
    /// No answer in time.
    Timeout,
    /// The endpoint could not be reached, or hung up.
    Unreachable {
        /// What the connector said.
        detail: String,
    },
    /// The service failed on its side (5xx).
    ServiceFault {
        /// The service's error code.
        code: String,
    },
    /// The service refused the call (misconfiguration or a bug of ours: not worth a retry).
    Rejected {
        /// The service's error code.
        code: String,
        /// The service's message.
        message: String,
    },
}

impl AwsCallFailure {
    /// Whether the caller should answer "unavailable, retry later" (503) rather than a fault.
    pub fn is_transient(&self) -> bool {
        !matches!(self, Self::Rejected { .. })
    }

    /// A short machine-readable kind for segment causes and logs.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Throttled { .. } => "throttled",
            Self::Conflict { .. } => "conflict",
            Self::Timeout => "timeout",
            Self::Unreachable { .. } => "unreachable",
            Self::ServiceFault { .. } => "service_fault",
            Self::Rejected { .. } => "rejected",
        }
    }
}

impl fmt::Display for AwsCallFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Throttled { code } => write!(f, "throttled ({code})"),
            Self::Conflict { code } => write!(f, "conflicting request in flight ({code})"),
            Self::Timeout => f.write_str("no answer in time"),
            Self::Unreachable { detail } => write!(f, "endpoint unreachable: {detail}"),
            Self::ServiceFault { code } => write!(f, "service fault ({code})"),
            Self::Rejected { code, message } => write!(f, "refused ({code}): {message}"),
        }
    }
}

/// Error codes that mean "throttled" across AWS services (DynamoDB answers them with HTTP 400).
const THROTTLING_CODES: &[&str] = &[
    "ThrottlingException",
    "Throttling",
    "ProvisionedThroughputExceededException",
    "RequestLimitExceeded",
    "TooManyRequestsException",
];
/// Error codes that mean "another request on the same items is in flight".
const CONFLICT_CODES: &[&str] = &[
    "TransactionConflictException",
    "TransactionInProgressException",
];

/// Reads a failed SDK call (any service whose errors carry AWS error metadata).
pub fn classify<E: ProvideErrorMetadata>(error: &SdkError<E, HttpResponse>) -> AwsCallFailure {
    match error {
        SdkError::TimeoutError(_) => AwsCallFailure::Timeout,
        SdkError::DispatchFailure(failure) => {
            if failure.is_timeout() {
                AwsCallFailure::Timeout
            } else {
                AwsCallFailure::Unreachable {
                    detail: failure
                        .as_connector_error()
                        .map_or_else(|| "dispatch failed".to_owned(), ToString::to_string),
                }
            }
        }
        SdkError::ResponseError(_) => AwsCallFailure::Unreachable {
            detail: "the response could not be read".to_owned(),
        },
        SdkError::ServiceError(service) => {
            let code = service.err().code().unwrap_or("Unknown").to_owned();
            let status = service.raw().status().as_u16();
            if THROTTLING_CODES.contains(&code.as_str()) || status == 429 {
                AwsCallFailure::Throttled { code }
            } else if CONFLICT_CODES.contains(&code.as_str()) {
                AwsCallFailure::Conflict { code }
            } else if status >= 500 {
                AwsCallFailure::ServiceFault { code }
            } else {
                let message = service.err().message().unwrap_or_default().to_owned();
                AwsCallFailure::Rejected { code, message }
            }
        }
        _ => AwsCallFailure::Rejected {
            code: "ClientError".to_owned(),
            message: "the request could not be built".to_owned(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_names_of_every_request_shape() {
        let cases: &[(&str, &[&str])] = &[
            (
                r#"{"TableName":"inventory","Key":{"pk":{"S":"SKU#1"}}}"#,
                &["inventory"],
            ),
            (
                r#"{"TransactItems":[{"Update":{"TableName":"inventory"}},{"Put":{"TableName":"inventory"}},{"ConditionCheck":{"TableName":"audit"}}],"ClientRequestToken":"t"}"#,
                &["inventory", "audit"],
            ),
            (r#"{"RequestItems":{"a":[],"b":[]}}"#, &["a", "b"]),
            (r#"{}"#, &[]),
            ("not json", &[]),
            (r#"{"TableName":7}"#, &[]),
        ];
        for (body, expected) in cases {
            assert_eq!(dynamodb_table_names(body.as_bytes()), *expected, "{body}");
        }
    }

    #[test]
    fn service_error_bodies() {
        let body = br#"{"__type":"com.amazonaws.dynamodb.v20120810#ConditionalCheckFailedException","message":"The conditional request failed"}"#;
        assert_eq!(
            ServiceErrorBody::parse(body),
            Some(ServiceErrorBody {
                code: "ConditionalCheckFailedException".into(),
                message: "The conditional request failed".into()
            })
        );
        let upper = br#"{"__type":"ThrottlingException","Message":"Rate exceeded"}"#;
        assert_eq!(
            ServiceErrorBody::parse(upper).map(|b| (b.code, b.message)),
            Some(("ThrottlingException".into(), "Rate exceeded".into()))
        );
        assert_eq!(ServiceErrorBody::parse(b"<html>"), None);
        assert_eq!(ServiceErrorBody::parse(br#"{"message":"x"}"#), None);
    }
}
