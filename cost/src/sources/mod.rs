//! Where the report's numbers come from: one trait per source, each with a local implementation
//! ([`local`], the local stack's files) and an AWS one ([`aws`], the documented APIs), and
//! [`gather`], which asks every source about one window and joins the answers into usage and
//! performance per service.
//!
//! | source | trait | locally | on AWS |
//! |---|---|---|---|
//! | requests, latency, statuses | [`LatticeMetricsSource`] | the access log's entries | `GetMetricData` on `AWS/VpcLattice` |
//! | bytes, requests per clock hour, log bytes | [`AccessLogSource`] | the access log | Logs Insights over the access-log group |
//! | Lambda reports, log bytes | [`LambdaReportSource`] | the local Lambda service's function logs | Logs Insights over the functions' log groups |
//! | traces recorded | [`TraceSource`] | the local X-Ray API | X-Ray `GetTraceSummaries` (one adapter: the local API is X-Ray's) |
//! | DynamoDB units | [`DynamoDbSource`] | the functions' `consumed_capacity` log lines | `GetMetricData` on `AWS/DynamoDB` |
//! | the bill | [`BillSource`] | none: nothing is billed locally | Cost Explorer `GetCostAndUsage` |
//!
//! A source that answers nothing for a service answers an empty row, and [`gather`] turns "no
//! data at all" into an error naming the source and the window, never a silent zero.

pub mod aws;
pub mod local;

use std::collections::{BTreeMap, BTreeSet};

use async_trait::async_trait;
use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};

pub use crate::traffic::LatticeMetrics;

use crate::model::Arch;
use crate::usage::{LambdaReport, Measured, UsageError};

/// A time window, `[start, end)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    /// Its first instant.
    pub start: DateTime<Utc>,
    /// The first instant after it.
    pub end: DateTime<Utc>,
}

impl Window {
    /// `[start, end)`; an error when `end` is not after `start`.
    pub fn new(start: DateTime<Utc>, end: DateTime<Utc>) -> Result<Self, SourceError> {
        if end <= start {
            return Err(SourceError::EmptyWindow(format!(
                "{} to {}",
                start.to_rfc3339_opts(SecondsFormat::Secs, true),
                end.to_rfc3339_opts(SecondsFormat::Secs, true)
            )));
        }
        Ok(Self { start, end })
    }

    /// Its length in seconds.
    pub fn seconds(&self) -> f64 {
        (self.end - self.start).num_milliseconds() as f64 / 1000.0
    }

    /// Whether `at` falls in it.
    pub fn contains(&self, at: DateTime<Utc>) -> bool {
        self.start <= at && at < self.end
    }

    /// `2026-12-02T10:00:00Z to 2026-12-02T11:00:00Z`, for messages.
    pub fn describe(&self) -> String {
        format!(
            "{} to {}",
            self.start.to_rfc3339_opts(SecondsFormat::Millis, true),
            self.end.to_rfc3339_opts(SecondsFormat::Millis, true)
        )
    }
}

/// One service of the stack, as the sources know it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceMapping {
    /// Its name in the report (`order`).
    pub name: String,
    /// The Lattice service's ARN (the access log's `serviceArn`).
    pub service_arn: String,
    /// Its function's name (the log group is `/aws/lambda/<name>`).
    pub function_name: String,
    /// Its function's architecture.
    pub arch: Arch,
    /// The DynamoDB tables it owns, if any.
    #[serde(default)]
    pub tables: Vec<String>,
}

impl ServiceMapping {
    /// The Lattice service id, the last part of its ARN (`svc-…`): the `Service` dimension's
    /// value in `AWS/VpcLattice`.
    pub fn service_id(&self) -> &str {
        self.service_arn
            .rsplit('/')
            .next()
            .unwrap_or(&self.service_arn)
    }
}

/// The stack the report is about.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StackMap {
    /// Its services, the entry service first.
    pub services: Vec<ServiceMapping>,
}

impl StackMap {
    /// The service whose ARN is `arn`.
    pub fn by_arn(&self, arn: &str) -> Option<&ServiceMapping> {
        self.services.iter().find(|s| s.service_arn == arn)
    }

    /// The service whose function is `function`.
    pub fn by_function(&self, function: &str) -> Option<&ServiceMapping> {
        self.services.iter().find(|s| s.function_name == function)
    }

    /// The service owning `table`.
    pub fn by_table(&self, table: &str) -> Option<&ServiceMapping> {
        self.services
            .iter()
            .find(|s| s.tables.iter().any(|t| t == table))
    }

    /// The service names, comma-separated, for messages.
    pub fn names(&self) -> String {
        let names: Vec<&str> = self.services.iter().map(|s| s.name.as_str()).collect();
        names.join(", ")
    }
}

/// Why a source could not answer.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// The window is empty or reversed.
    #[error("the window {0} is empty: its end must come after its start")]
    EmptyWindow(String),
    /// A record could not be read or attributed.
    #[error(transparent)]
    Usage(#[from] UsageError),
    /// A file could not be read.
    #[error("{what}: {source}")]
    Io {
        /// What was being read.
        what: String,
        /// Why it failed.
        source: std::io::Error,
    },
    /// An AWS API call failed.
    #[error("{operation}: {message}")]
    Aws {
        /// `CloudWatch.GetMetricData`, …
        operation: &'static str,
        /// The service's error, as the SDK gives it.
        message: String,
    },
    /// An AWS answer the adapter cannot use (a query that failed, a missing field).
    #[error("{operation} answered what the report cannot use: {message}")]
    Answer {
        /// The operation.
        operation: &'static str,
        /// What was wrong.
        message: String,
    },
    /// A run id none of whose traces any Lambda report joins.
    #[error("no Lambda report in the window {window} joins a trace of run {run_id}: was the run in the window, and were its orders traced?")]
    NoJoin {
        /// The run.
        run_id: String,
        /// The window.
        window: String,
    },
    /// No source had anything in the window.
    #[error("{source_name} has nothing in the window {window}: nothing to report (was the load run in it?)")]
    NoData {
        /// The source.
        source_name: &'static str,
        /// The window.
        window: String,
    },
}

/// Source: Lattice's per-service request metrics.
#[async_trait]
pub trait LatticeMetricsSource: Send + Sync {
    /// Each service's metrics over `window`, by service name.
    async fn lattice_metrics(
        &self,
        stack: &StackMap,
        window: &Window,
    ) -> Result<BTreeMap<String, LatticeMetrics>, SourceError>;
}

/// What the access log says of one service.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct AccessLogUsage {
    /// Requests by clock hour (epoch seconds / 3600): the unit of Lattice's request fee.
    pub requests_by_hour: BTreeMap<u64, u64>,
    /// `bytesReceived` summed.
    pub bytes_in: u64,
    /// `bytesSent` summed.
    pub bytes_out: u64,
    /// Bytes of access log the service's entries make (what the log group ingests).
    pub log_bytes: u64,
}

/// The access log over a window.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct AccessLogSummary {
    /// By service name.
    pub services: BTreeMap<String, AccessLogUsage>,
    /// Bytes the source scanned to answer (Logs Insights bills them; 0 locally).
    pub bytes_scanned: u64,
}

/// Source: the Lattice access log.
#[async_trait]
pub trait AccessLogSource: Send + Sync {
    /// The access log's usage over `window`.
    async fn access_log(
        &self,
        stack: &StackMap,
        window: &Window,
    ) -> Result<AccessLogSummary, SourceError>;
}

/// One service's Lambda reports.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LambdaInvocations {
    /// One per invocation.
    pub reports: Vec<LambdaReport>,
    /// Bytes the function logged (every line: START, END, REPORT and its own).
    pub log_bytes: u64,
}

/// The Lambda reports over a window.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LambdaSummary {
    /// By service name.
    pub services: BTreeMap<String, LambdaInvocations>,
    /// Bytes the source scanned to answer (Logs Insights bills them; 0 locally).
    pub bytes_scanned: u64,
}

/// Source: the functions' invocation reports.
#[async_trait]
pub trait LambdaReportSource: Send + Sync {
    /// Each function's reports over `window`.
    async fn lambda_reports(
        &self,
        stack: &StackMap,
        window: &Window,
    ) -> Result<LambdaSummary, SourceError>;
}

/// The traces recorded.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct TraceCount {
    /// Their ids (`1-…-…`).
    pub trace_ids: BTreeSet<String>,
    /// Traces retrieved to count them (X-Ray bills retrieval; `GetTraceSummaries` scans).
    pub traces_scanned: u64,
    /// With a run id: the Lambda service's own trace ids (`1-…-…`) that the run's segments
    /// recorded (`metadata.lambda.trace_id`, the shared crate's trace-context policy). Lattice
    /// invokes a function under Lambda's own trace, which is the one its `REPORT` line's `XRAY
    /// TraceId` names; this is how an invocation joins the order it served.
    pub lambda_trace_ids: BTreeSet<String>,
}

/// Source: X-Ray.
#[async_trait]
pub trait TraceSource: Send + Sync {
    /// The traces of `window` that pass through `stack`'s services, only those annotated
    /// `run_id` when given.
    async fn traces(
        &self,
        stack: &StackMap,
        window: &Window,
        run_id: Option<&str>,
    ) -> Result<TraceCount, SourceError>;
}

/// DynamoDB request units.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct DynamoDbUnits {
    /// Read request units.
    pub read: f64,
    /// Write request units.
    pub write: f64,
}

/// Source: DynamoDB's consumed capacity.
#[async_trait]
pub trait DynamoDbSource: Send + Sync {
    /// Units consumed over `window`, by the name of the service owning the table.
    async fn dynamodb_units(
        &self,
        stack: &StackMap,
        window: &Window,
    ) -> Result<BTreeMap<String, DynamoDbUnits>, SourceError>;
}

/// One day, service and usage type of the bill.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct BillLine {
    /// The UTC day, `YYYY-MM-DD`.
    pub day: String,
    /// Cost Explorer's SERVICE value (`AWS Lambda`).
    pub service: String,
    /// Its USAGE_TYPE value (`USE1-Lambda-GB-Second-ARM`).
    pub usage_type: String,
    /// `UnblendedCost`, USD.
    pub usd: f64,
    /// Cost Explorer marked the day estimated (not final).
    pub estimated: bool,
}

/// The bill over complete UTC days.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Bill {
    /// The first day, `YYYY-MM-DD`.
    pub start_day: String,
    /// The day after the last, `YYYY-MM-DD` (Cost Explorer's exclusive end).
    pub end_day: String,
    /// Its lines.
    pub lines: Vec<BillLine>,
    /// The SERVICE values `GetDimensionValues` offered for the period.
    pub services_seen: Vec<String>,
    /// The USAGE_TYPE values `GetDimensionValues` offered for the period.
    #[serde(default)]
    pub usage_types_seen: Vec<String>,
    /// Cost Explorer requests made (each costs $0.01).
    pub requests: u64,
}

/// Source: what was billed.
#[async_trait]
pub trait BillSource: Send + Sync {
    /// The bill of the complete UTC days inside `window`, for resources tagged `tag = value`.
    async fn bill(&self, window: &Window, tag: (&str, &str)) -> Result<Bill, SourceError>;
}

/// The sources one report asks.
pub struct Sources<'a> {
    /// Requests, latency, statuses.
    pub metrics: &'a dyn LatticeMetricsSource,
    /// Bytes and hourly requests.
    pub access_log: &'a dyn AccessLogSource,
    /// Lambda reports.
    pub lambda: &'a dyn LambdaReportSource,
    /// Traces.
    pub traces: &'a dyn TraceSource,
    /// DynamoDB units.
    pub dynamodb: &'a dyn DynamoDbSource,
}

/// Everything the sources said about a window.
#[derive(Clone, Debug)]
pub struct Gathered {
    /// Usage and performance by service name.
    pub measured: BTreeMap<String, Measured>,
    /// The traces recorded.
    pub traces: TraceCount,
    /// Bytes Logs Insights scanned for this report (its own cost).
    pub bytes_scanned: u64,
    /// Lambda reports left out because their trace is not one of the run's.
    pub reports_outside_run: u64,
}

/// Asks every source about `window` and joins the answers per service. With `run_id`, Lambda
/// reports are joined per trace when every order of the run was traced: only invocations whose
/// trace is one of the run's, or the Lambda trace one of its segments recorded, count; when some
/// were not, the window's reports stand for the run's ([`Join`]).
pub async fn gather(
    sources: &Sources<'_>,
    stack: &StackMap,
    window: &Window,
    run_id: Option<&str>,
) -> Result<Gathered, SourceError> {
    let metrics = sources.metrics.lattice_metrics(stack, window).await?;
    let access = sources.access_log.access_log(stack, window).await?;
    let lambda = sources.lambda.lambda_reports(stack, window).await?;
    let traces = sources.traces.traces(stack, window, run_id).await?;
    let dynamodb = sources.dynamodb.dynamodb_units(stack, window).await?;
    let describe = window.describe();
    if metrics.values().all(|m| m.requests == 0) {
        return Err(no_data("the Lattice metrics", &describe));
    }
    if access
        .services
        .values()
        .all(|a| a.requests_by_hour.is_empty())
    {
        return Err(no_data("the access log", &describe));
    }
    if lambda.services.values().all(|l| l.reports.is_empty()) {
        return Err(no_data("the Lambda reports", &describe));
    }
    let join = run_join(stack, &metrics, &traces, run_id);
    let mut reports_outside_run = 0;
    let mut measured = BTreeMap::new();
    for service in &stack.services {
        let name = service.name.as_str();
        let mut entry = Measured::default();
        if let Some(m) = metrics.get(name) {
            entry.traffic.set_metrics(m);
        }
        if let Some(a) = access.services.get(name) {
            add_access(&mut entry, a);
        }
        if let Some(l) = lambda.services.get(name) {
            reports_outside_run += add_reports(&mut entry, l, service, (&traces, join));
        }
        if let Some(units) = dynamodb.get(name) {
            entry.usage.dynamodb_read_units = units.read;
            entry.usage.dynamodb_write_units = units.write;
        }
        measured.insert(name.to_owned(), entry);
    }
    if let Some(run_id) = run_id {
        if measured.values().all(|m| m.usage.invocations == 0) {
            return Err(SourceError::NoJoin {
                run_id: run_id.to_owned(),
                window: describe,
            });
        }
    }
    Ok(Gathered {
        measured,
        traces,
        bytes_scanned: access.bytes_scanned + lambda.bytes_scanned,
        reports_outside_run,
    })
}

fn add_access(entry: &mut Measured, access: &AccessLogUsage) {
    entry.usage.requests_by_hour = access.requests_by_hour.clone();
    entry.usage.lattice_bytes = access.bytes_in + access.bytes_out;
    entry.usage.access_log_bytes = access.log_bytes;
    entry.traffic.bytes_in = access.bytes_in;
    entry.traffic.bytes_out = access.bytes_out;
}

/// How reports are joined to a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Join {
    /// No run: every report in the window counts.
    Window,
    /// Every order of the run was traced: a report counts when it joins one of its traces.
    PerTrace,
    /// Some orders were not traced (`--sample-rate` below 1): their invocations cannot be joined
    /// (nothing recorded them), so every report in the window counts, the run's window standing
    /// for the run.
    Untraced,
}

/// The join for `run_id`: per trace when the run has a trace for every request the entry service
/// took.
fn run_join(
    stack: &StackMap,
    metrics: &BTreeMap<String, LatticeMetrics>,
    traces: &TraceCount,
    run_id: Option<&str>,
) -> Join {
    let Some(_) = run_id else {
        return Join::Window;
    };
    let entry_requests = stack
        .services
        .first()
        .and_then(|entry| metrics.get(&entry.name))
        .map_or(0, |m| m.requests);
    if traces.trace_ids.len() as u64 >= entry_requests {
        Join::PerTrace
    } else {
        Join::Untraced
    }
}

/// Adds the reports of `service` that count, and Lambda's own sampled traces among them; returns
/// how many were left out.
fn add_reports(
    entry: &mut Measured,
    invocations: &LambdaInvocations,
    service: &ServiceMapping,
    (traces, join): (&TraceCount, Join),
) -> u64 {
    entry.usage.lambda_log_bytes = invocations.log_bytes;
    let mut own_traces = BTreeSet::new();
    let mut left_out = 0;
    for report in &invocations.reports {
        if join == Join::PerTrace && !joins(report, traces) {
            left_out += 1;
            continue;
        }
        entry
            .usage
            .add_invocation(report.billed_ms, report.memory_mb, service.arch);
        entry.traffic.add_report(
            report.init_ms.is_some(),
            report.max_memory_used_mb,
            report.memory_mb,
        );
        // Without a run the trace source counted every trace of the stack's functions, Lambda's
        // own among them; with one, only the run's.
        if let (Some(id), Some(true), false) =
            (&report.trace_id, report.sampled, join == Join::Window)
        {
            if !traces.trace_ids.contains(id) {
                own_traces.insert(id.clone());
            }
        }
    }
    entry.usage.lambda_traces = own_traces.len() as u64;
    left_out
}

/// Whether `report` joins one of the counted traces: its trace is one of them, or it ran under
/// the Lambda trace one of their segments recorded.
fn joins(report: &LambdaReport, traces: &TraceCount) -> bool {
    report
        .trace_id
        .as_ref()
        .is_some_and(|id| traces.trace_ids.contains(id) || traces.lambda_trace_ids.contains(id))
}

fn no_data(source_name: &'static str, window: &str) -> SourceError {
    SourceError::NoData {
        source_name,
        window: window.to_owned(),
    }
}
