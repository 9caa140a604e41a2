//! The AWS implementations of the sources: each one asks the documented API of the service that
//! holds its numbers, through the AWS SDK for Rust, and nothing else. This module owns the
//! clients' construction and what the adapters share (turning an SDK error into a
//! [`SourceError`], time conversions); each submodule owns one API.
//!
//! | module | API | sources |
//! |---|---|---|
//! | [`metrics`] | CloudWatch `GetMetricData` (Smithy RPCv2 CBOR) | [`AwsLatticeMetrics`], [`AwsDynamoDb`], and the Lambda log groups' `IncomingBytes` |
//! | [`insights`] | CloudWatch Logs Insights `StartQuery` / `GetQueryResults` (JSON 1.1) | [`AwsAccessLog`] |
//! | [`lambda`] | Logs Insights over `/aws/lambda/<function>`, `IncomingBytes` | [`AwsLambdaReports`] |
//! | [`xray`] | X-Ray `GetTraceSummaries` (REST-JSON) | [`XrayTraces`], also the local stack's |
//! | [`bill`] | Cost Explorer `GetDimensionValues` / `GetCostAndUsage` (JSON 1.1) | [`CostExplorerBill`] |
//!
//! Every adapter takes its SDK client from the caller, so the command and the scheduled Lambda
//! build them from the environment ([`AwsClients::from_config`]) and the tests point them at a
//! fake of the wire format (`endpoint_url`). An SDK error becomes [`SourceError::Aws`] naming the
//! operation and the service's error code and message; an answer the report cannot use (a failed
//! query, a missing field, a number that is not one) becomes [`SourceError::Answer`].

pub mod bill;
pub mod insights;
pub mod lambda;
pub mod metrics;
pub mod xray;

pub use bill::CostExplorerBill;
pub use insights::AwsAccessLog;
pub use lambda::AwsLambdaReports;
pub use metrics::{AwsDynamoDb, AwsLatticeMetrics};
pub use xray::XrayTraces;

use aws_sdk_cloudwatch::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use chrono::{DateTime, Utc};

use super::{SourceError, Sources};

/// The Region Cost Explorer answers in: its endpoint is `ce.us-east-1.amazonaws.com` whatever
/// the Region of the stack.
pub const COST_EXPLORER_REGION: &str = "us-east-1";

/// The four clients the AWS sources use.
#[derive(Clone, Debug)]
pub struct AwsClients {
    /// CloudWatch (metrics).
    pub cloudwatch: aws_sdk_cloudwatch::Client,
    /// CloudWatch Logs (Insights).
    pub logs: aws_sdk_cloudwatchlogs::Client,
    /// X-Ray.
    pub xray: aws_sdk_xray::Client,
    /// Cost Explorer, in [`COST_EXPLORER_REGION`].
    pub cost_explorer: aws_sdk_costexplorer::Client,
}

impl AwsClients {
    /// The clients of `config` (`aws_config::load_defaults`), Cost Explorer's in its own Region.
    pub fn from_config(config: &aws_config::SdkConfig) -> Self {
        let cost_explorer = aws_sdk_costexplorer::config::Builder::from(config)
            .region(aws_sdk_costexplorer::config::Region::new(
                COST_EXPLORER_REGION,
            ))
            .build();
        Self {
            cloudwatch: aws_sdk_cloudwatch::Client::new(config),
            logs: aws_sdk_cloudwatchlogs::Client::new(config),
            xray: aws_sdk_xray::Client::new(config),
            cost_explorer: aws_sdk_costexplorer::Client::from_conf(cost_explorer),
        }
    }
}

/// The five sources of a deployed stack over one set of clients: what `loadgen cost --stack-map`
/// and the scheduled report both ask.
#[derive(Clone, Debug)]
pub struct AwsSources {
    /// Lattice's metrics.
    pub metrics: AwsLatticeMetrics,
    /// The access log through Logs Insights.
    pub access_log: AwsAccessLog,
    /// The functions' reports.
    pub lambda: AwsLambdaReports,
    /// X-Ray.
    pub traces: XrayTraces,
    /// DynamoDB's metrics.
    pub dynamodb: AwsDynamoDb,
}

impl AwsSources {
    /// Over `clients`, the access log in `access_log_group`.
    pub fn new(clients: &AwsClients, access_log_group: &str) -> Self {
        Self {
            metrics: AwsLatticeMetrics::new(clients.cloudwatch.clone()),
            access_log: AwsAccessLog::new(clients.logs.clone(), access_log_group),
            lambda: AwsLambdaReports::new(clients.logs.clone(), clients.cloudwatch.clone()),
            traces: XrayTraces::new(clients.xray.clone()),
            dynamodb: AwsDynamoDb::new(clients.cloudwatch.clone()),
        }
    }

    /// As the [`Sources`] a report asks.
    pub fn sources(&self) -> Sources<'_> {
        Sources {
            metrics: &self.metrics,
            access_log: &self.access_log,
            lambda: &self.lambda,
            traces: &self.traces,
            dynamodb: &self.dynamodb,
        }
    }
}

/// An SDK error as [`SourceError::Aws`]: the service's code and message when it answered, the
/// whole error chain otherwise (no connection, a timeout).
pub(crate) fn aws_error<E>(operation: &'static str, error: SdkError<E>) -> SourceError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let message = match error.code() {
        Some(code) => format!("{code}: {}", error.message().unwrap_or("(no message)")),
        None => DisplayErrorContext(&error).to_string(),
    };
    SourceError::Aws { operation, message }
}

/// [`SourceError::Answer`] for `operation`.
pub(crate) fn answer(operation: &'static str, message: impl Into<String>) -> SourceError {
    SourceError::Answer {
        operation,
        message: message.into(),
    }
}

/// `time` as the SDK's timestamp (millisecond precision, as the APIs keep it).
pub(crate) fn smithy_time(time: DateTime<Utc>) -> aws_smithy_types::DateTime {
    aws_smithy_types::DateTime::from_millis(time.timestamp_millis())
}

/// A count an API answered as a number (`12`, `1.2E4`): finite, whole after rounding, not
/// negative; anything else is an error naming `what`.
pub(crate) fn whole_count(
    operation: &'static str,
    what: &str,
    value: f64,
) -> Result<u64, SourceError> {
    let rounded = value.round();
    if !value.is_finite() || rounded < 0.0 || rounded > u64::MAX as f64 {
        return Err(answer(operation, format!("{what} is {value}, not a count")));
    }
    Ok(rounded as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_config::{BehaviorVersion, Region};

    #[test]
    fn cost_explorer_is_asked_in_us_east_1_whatever_the_stacks_region() {
        let config = aws_config::SdkConfig::builder()
            .region(Region::new("eu-west-1"))
            .behavior_version(BehaviorVersion::latest())
            .build();
        let clients = AwsClients::from_config(&config);
        let region = |r: Option<&Region>| r.map(|r| r.as_ref().to_owned());
        assert_eq!(
            region(clients.cost_explorer.config().region()).as_deref(),
            Some("us-east-1")
        );
        assert_eq!(
            region(clients.cloudwatch.config().region()).as_deref(),
            Some("eu-west-1")
        );
        assert_eq!(
            region(clients.logs.config().region()).as_deref(),
            Some("eu-west-1")
        );
    }

    #[test]
    fn counts_are_whole_finite_and_not_negative() {
        assert_eq!(whole_count("Op", "n", 12.0).unwrap(), 12);
        assert_eq!(whole_count("Op", "n", 1.2e4).unwrap(), 12_000);
        assert_eq!(whole_count("Op", "n", 2.4999).unwrap(), 2);
        for bad in [-1.0, f64::NAN, f64::INFINITY, 1e30] {
            let error = whole_count("Op", "n", bad).unwrap_err();
            assert!(error.to_string().contains("not a count"), "{bad}: {error}");
        }
    }
}
