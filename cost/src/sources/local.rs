//! The local stack's records as sources: its access log (`access-log.jsonl`, Lattice's entry
//! format) and its functions' log groups (`lambda-logs/<function>.jsonl`, CloudWatch Logs events
//! whose messages are the function's lines and Lambda's `START`/`END`/`REPORT` lines). X-Ray is
//! asked through its API, by the same adapter as on AWS ([`super::aws`]).
//!
//! Windows: access-log `startTime`s have whole seconds, so an entry belongs to a window when its
//! second does, both ends taken down to their second (`[floor(start), floor(end))`: windows that
//! follow each other share no second); log events carry milliseconds and are compared as they
//! are. A missing log group is an error (a wrong function name must not read as no invocations). Log bytes are the events' message bytes (what
//! CloudWatch Logs ingests; its per-event overhead is left out, as the price table says).
//!
//! DynamoDB units: the services ask DynamoDB for `ReturnConsumedCapacity: TOTAL` and log what it
//! answers (one `dynamodb consumed capacity` line per call, [`CONSUMED_CAPACITY_MESSAGE`]); the
//! local source sums those lines. On AWS the same figure comes from `AWS/DynamoDB` metrics.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use serde_json::Value;

use super::{
    AccessLogSource, AccessLogSummary, AccessLogUsage, DynamoDbSource, DynamoDbUnits,
    LambdaInvocations, LambdaReportSource, LambdaSummary, LatticeMetrics, LatticeMetricsSource,
    SourceError, StackMap, Window,
};
use crate::usage::{parse_report_line, Measured, UsageBuilder, UsageError};

/// The message of the services' consumed-capacity log lines (`lattice_xray`'s DynamoDB calls).
pub const CONSUMED_CAPACITY_MESSAGE: &str = "dynamodb consumed capacity";

/// The files of one local stack.
#[derive(Clone, Debug)]
pub struct LocalRecords {
    /// `access-log.jsonl`.
    pub access_log: PathBuf,
    /// The folder of `<function>.jsonl` log groups.
    pub lambda_logs: PathBuf,
}

impl LocalRecords {
    /// The records under a stack's state folder, where `local-stack` writes them.
    pub fn in_state_dir(state_dir: &Path) -> Self {
        Self {
            access_log: state_dir.join("access-log.jsonl"),
            lambda_logs: state_dir.join("lambda-logs"),
        }
    }

    /// The access log's entries in `window`, read into usage per service.
    async fn access_entries(
        &self,
        stack: &StackMap,
        window: &Window,
    ) -> Result<BTreeMap<String, Measured>, SourceError> {
        let text = read(&self.access_log).await?;
        let services = stack
            .services
            .iter()
            .map(|s| (s.service_arn.clone(), s.name.clone()))
            .collect();
        let mut builder = UsageBuilder::new(services);
        let (from, to) = whole_seconds(window);
        for line in text.lines().filter(|line| !line.trim().is_empty()) {
            let start = serde_json::from_str::<Value>(line)
                .ok()
                .and_then(|entry| entry["startTime"].as_str().map(str::to_owned))
                .and_then(|time| DateTime::parse_from_rfc3339(&time).ok())
                .ok_or_else(|| UsageError::Malformed {
                    what: "an access-log entry",
                    field: "startTime",
                    excerpt: line.chars().take(120).collect(),
                })?;
            if (from..to).contains(&start.with_timezone(&Utc)) {
                builder.add_access_entry(line)?;
            }
        }
        Ok(builder.into_measured())
    }

    /// The messages of `function`'s log group's events in `window`.
    async fn log_events(
        &self,
        function: &str,
        window: &Window,
    ) -> Result<Vec<String>, SourceError> {
        let path = self.lambda_logs.join(format!("{function}.jsonl"));
        let text = read(&path).await?;
        let (start, end) = (
            window.start.timestamp_millis(),
            window.end.timestamp_millis(),
        );
        let mut messages = Vec::new();
        for line in text.lines().filter(|line| !line.trim().is_empty()) {
            let event: Value =
                serde_json::from_str(line).map_err(|_| malformed_event(&path, line))?;
            let (Some(timestamp), Some(message)) =
                (event["timestamp"].as_i64(), event["message"].as_str())
            else {
                return Err(malformed_event(&path, line));
            };
            if (start..end).contains(&timestamp) {
                messages.push(message.to_owned());
            }
        }
        Ok(messages)
    }
}

#[async_trait]
impl LatticeMetricsSource for LocalRecords {
    async fn lattice_metrics(
        &self,
        stack: &StackMap,
        window: &Window,
    ) -> Result<BTreeMap<String, LatticeMetrics>, SourceError> {
        let measured = self.access_entries(stack, window).await?;
        Ok(measured
            .into_iter()
            .map(|(name, m)| {
                let traffic = &m.traffic;
                let metrics = LatticeMetrics {
                    requests: traffic.requests(),
                    p50_ms: traffic.latency_at(0.5),
                    p90_ms: traffic.latency_at(0.9),
                    p99_ms: traffic.latency_at(0.99),
                    status_classes: traffic.status_classes,
                };
                (name, metrics)
            })
            .collect())
    }
}

#[async_trait]
impl AccessLogSource for LocalRecords {
    async fn access_log(
        &self,
        stack: &StackMap,
        window: &Window,
    ) -> Result<AccessLogSummary, SourceError> {
        let measured = self.access_entries(stack, window).await?;
        let services = measured
            .into_iter()
            .map(|(name, m)| {
                let usage = AccessLogUsage {
                    requests_by_hour: m.usage.requests_by_hour,
                    bytes_in: m.traffic.bytes_in,
                    bytes_out: m.traffic.bytes_out,
                    log_bytes: m.usage.access_log_bytes,
                };
                (name, usage)
            })
            .collect();
        Ok(AccessLogSummary {
            services,
            bytes_scanned: 0,
        })
    }
}

#[async_trait]
impl LambdaReportSource for LocalRecords {
    async fn lambda_reports(
        &self,
        stack: &StackMap,
        window: &Window,
    ) -> Result<LambdaSummary, SourceError> {
        let mut services = BTreeMap::new();
        for service in &stack.services {
            let messages = self.log_events(&service.function_name, window).await?;
            let mut invocations = LambdaInvocations {
                log_bytes: messages.iter().map(|m| m.len() as u64).sum(),
                ..LambdaInvocations::default()
            };
            for message in messages.iter().filter(|m| m.starts_with("REPORT ")) {
                invocations.reports.push(parse_report_line(message)?);
            }
            services.insert(service.name.clone(), invocations);
        }
        Ok(LambdaSummary {
            services,
            bytes_scanned: 0,
        })
    }
}

#[async_trait]
impl DynamoDbSource for LocalRecords {
    async fn dynamodb_units(
        &self,
        stack: &StackMap,
        window: &Window,
    ) -> Result<BTreeMap<String, DynamoDbUnits>, SourceError> {
        let mut units: BTreeMap<String, DynamoDbUnits> = BTreeMap::new();
        for service in &stack.services {
            for message in self.log_events(&service.function_name, window).await? {
                let Some(call) = consumed_capacity(&message)? else {
                    continue;
                };
                let owner = stack.by_table(&call.table).ok_or_else(|| {
                    SourceError::Usage(UsageError::UnknownTable {
                        table: call.table.clone(),
                        known: stack.names(),
                    })
                })?;
                let sum = units.entry(owner.name.clone()).or_default();
                sum.read += call.read;
                sum.write += call.write;
            }
        }
        Ok(units)
    }
}

/// One call's consumed capacity, from a service's log line.
struct ConsumedCapacity {
    table: String,
    read: f64,
    write: f64,
}

/// A `dynamodb consumed capacity` line (tracing-subscriber's JSON: the event's fields under
/// `fields`); `Ok(None)` for any other line, an error for such a line without its table or units.
fn consumed_capacity(message: &str) -> Result<Option<ConsumedCapacity>, UsageError> {
    if !message.contains(CONSUMED_CAPACITY_MESSAGE) {
        return Ok(None);
    }
    let Ok(line) = serde_json::from_str::<Value>(message) else {
        return Ok(None);
    };
    let fields = &line["fields"];
    if fields["message"] != CONSUMED_CAPACITY_MESSAGE {
        return Ok(None);
    }
    units_of(fields)
        .map(Some)
        .ok_or_else(|| UsageError::Malformed {
            what: "a consumed-capacity line",
            field: "table, read_units and write_units",
            excerpt: message.chars().take(120).collect(),
        })
}

fn units_of(fields: &Value) -> Option<ConsumedCapacity> {
    Some(ConsumedCapacity {
        table: fields["table"].as_str()?.to_owned(),
        read: fields["read_units"].as_f64()?,
        write: fields["write_units"].as_f64()?,
    })
}

/// `window`'s ends taken down to their second.
fn whole_seconds(window: &Window) -> (DateTime<Utc>, DateTime<Utc>) {
    let second = TimeDelta::seconds(1);
    let floor = |at: DateTime<Utc>| at.duration_trunc(second).unwrap_or(at);
    (floor(window.start), floor(window.end))
}

async fn read(path: &Path) -> Result<String, SourceError> {
    tokio::fs::read_to_string(path)
        .await
        .map_err(|source| io_error(path, source))
}

fn io_error(path: &Path, source: std::io::Error) -> SourceError {
    SourceError::Io {
        what: format!("reading {}", path.display()),
        source,
    }
}

fn malformed_event(path: &Path, line: &str) -> SourceError {
    SourceError::Usage(UsageError::Malformed {
        what: "a log event (want {\"timestamp\": ms, \"message\": text})",
        field: "timestamp and message",
        excerpt: format!(
            "{}: {}",
            path.display(),
            line.chars().take(100).collect::<String>()
        ),
    })
}
