//! The functions' invocation reports on AWS: Logs Insights over each function's log group
//! (`/aws/lambda/<function_name>`), and the bytes each group ingested.
//!
//! **Reports.** [`REPORT_QUERY`] keeps Lambda's `REPORT` events (`@type = "REPORT"`, a field
//! Insights discovers in Lambda logs) and returns each event's `@message`, which is parsed by
//! [`parse_report_line`], the parser of the local source: the same documented text
//! (`Billed Duration: 16 ms`, `Memory Size: 128 MB`, `Max Memory Used: 56 MB`,
//! `Init Duration: …` on a cold start, the `XRAY TraceId: …` line of a traced invocation) gives
//! the same [`LambdaReport`] locally and on AWS. The discovered fields are not used, on purpose:
//! `@initDuration` is not among the fields AWS documents for Lambda logs (`@requestId`,
//! `@duration`, `@billedDuration`, `@type`, `@maxMemoryUsed`, `@memorySize`, `@xrayTraceId`,
//! `@xraySegmentId`), and `@memorySize` / `@maxMemoryUsed` are bytes whose factor to the
//! report's MB AWS documented as 1024 × 1024 until 2022 and as 1000 × 1000 since (its sample
//! query "Determine the amount of overprovisioned memory"); the report's own text needs neither.
//! Every invocation is counted: the query runs through [`Insights::query_all`], which re-asks a
//! window answering [`super::insights::ROW_LIMIT`] rows as halves.
//!
//! **Log bytes.** The `AWS/Logs` metric `IncomingBytes` (Sum, dimension `LogGroupName`), not a
//! `stats sum(strlen(@message))` query: it is the figure CloudWatch Logs measures at ingestion,
//! the one its ingestion price applies to, it counts every event of the group (`START`, `END`,
//! `REPORT` and the function's own lines) and it costs no scanned bytes. Being a metric, it covers
//! the window widened to whole minutes ([`MetricSpan`]), where the reports cover the window
//! exactly.

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;

use super::insights::{field, Insights, Span};
use super::metrics::{incoming_bytes, MetricSpan};
use crate::sources::{
    LambdaInvocations, LambdaReportSource, LambdaSummary, SourceError, StackMap, Window,
};
use crate::usage::{parse_report_line, LambdaReport};

/// The reports query, after the window's filter.
pub const REPORT_QUERY: &str = "filter @type = \"REPORT\"\n| fields @message";

/// The log group of `function`.
pub fn log_group(function: &str) -> String {
    format!("/aws/lambda/{function}")
}

/// Lambda's reports and log bytes, from CloudWatch Logs.
#[derive(Clone, Debug)]
pub struct AwsLambdaReports {
    insights: Insights,
    cloudwatch: aws_sdk_cloudwatch::Client,
}

impl AwsLambdaReports {
    /// Over `logs` (Insights) and `cloudwatch` (`IncomingBytes`).
    pub fn new(
        logs: aws_sdk_cloudwatchlogs::Client,
        cloudwatch: aws_sdk_cloudwatch::Client,
    ) -> Self {
        Self {
            insights: Insights::new(logs),
            cloudwatch,
        }
    }

    /// Polling running queries every `poll` (tests use a millisecond).
    pub fn with_poll_interval(mut self, poll: Duration) -> Self {
        self.insights = self.insights.with_poll_interval(poll);
        self
    }

    /// The reports of `group` over `window`, and the bytes scanned to find them.
    async fn reports(
        &self,
        group: &str,
        window: &Window,
    ) -> Result<(Vec<LambdaReport>, u64), SourceError> {
        let outcome = self
            .insights
            .query_all(group, Span::of(window), REPORT_QUERY)
            .await?;
        let mut reports = Vec::with_capacity(outcome.rows.len());
        for row in &outcome.rows {
            reports.push(parse_report_line(field(row, "@message")?)?);
        }
        Ok((reports, outcome.bytes_scanned))
    }
}

#[async_trait]
impl LambdaReportSource for AwsLambdaReports {
    async fn lambda_reports(
        &self,
        stack: &StackMap,
        window: &Window,
    ) -> Result<LambdaSummary, SourceError> {
        let groups: Vec<String> = stack
            .services
            .iter()
            .map(|s| log_group(&s.function_name))
            .collect();
        let bytes = incoming_bytes(&self.cloudwatch, &groups, &MetricSpan::of(window)?).await?;
        let mut services = BTreeMap::new();
        let mut bytes_scanned = 0;
        for ((service, group), log_bytes) in stack.services.iter().zip(&groups).zip(bytes) {
            let (reports, scanned) = self.reports(group, window).await?;
            bytes_scanned += scanned;
            services.insert(
                service.name.clone(),
                LambdaInvocations { reports, log_bytes },
            );
        }
        Ok(LambdaSummary {
            services,
            bytes_scanned,
        })
    }
}
