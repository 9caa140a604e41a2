//! The report: what the run measured and what inspection found, as text for people and as JSON
//! (`--json FILE`) for machines. The JSON's shape is `report.schema.json` (JSON Schema draft
//! 2020-12) beside this crate; `schema` names its version.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::conservation::StockConservation;
use crate::hdr::EncodedHistograms;

use crate::inspect::Inspection;
use crate::stats::{
    distribution, percentiles, ErrorKind, PercentilePoint, Percentiles, RunStats, SecondStats,
};

/// The report format's version.
pub const SCHEMA: &str = "loadgen-report/5";

/// Request counts.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Requests {
    /// Sent in all (warm-up included).
    pub sent: u64,
    /// Of those, traced (`Sampled=1`): the traces the inspection looks for.
    pub traced: u64,
    /// In the statistics (after warm-up).
    pub measured: u64,
    /// Measured and answered 2xx/3xx.
    pub ok: u64,
    /// Measured and failed.
    pub failed: u64,
    /// Warm-up requests.
    pub warmup: u64,
    /// Open loop: dispatched late.
    pub late: u64,
    /// Open loop: dropped at `--max-inflight`.
    pub dropped: u64,
}

/// One error class.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ErrorCount {
    /// Taxonomy class.
    pub kind: ErrorKind,
    /// HTTP status, when there was one.
    pub status: Option<u16>,
    /// Requests.
    pub count: u64,
}

/// Corrected and uncorrected latency.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Latency {
    /// From the intended start.
    pub corrected: Percentiles,
    /// From the send.
    pub uncorrected: Percentiles,
    /// The whole distributions, as HdrHistogram prints them.
    pub distribution: LatencyDistribution,
}

/// The percentile distributions of both histograms.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LatencyDistribution {
    /// From the intended start.
    pub corrected: Vec<PercentilePoint>,
    /// From the send.
    pub uncorrected: Vec<PercentilePoint>,
}

/// One Lattice service's access-log lines in a local run.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ServiceLog {
    /// Lines.
    pub requests: u64,
    /// Lines per response code.
    pub statuses: BTreeMap<String, u64>,
}

/// Local runs: the stack's own records against loadgen's counts.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct LocalCheck {
    /// Access-log lines per service.
    pub access_log: BTreeMap<String, ServiceLog>,
    /// Whether order's lines equal loadgen's requests, status by status.
    pub agrees: bool,
    /// Every difference found.
    pub disagreements: Vec<String>,
    /// Traces the local X-Ray store evicted (a trace evicted is not "incomplete").
    pub evicted_traces: u64,
    /// Segment documents the local daemon refused.
    pub rejected_documents: u64,
    /// Segment documents the local daemon accepted (loadgen's, the services', the facade's).
    pub accepted_documents: u64,
    /// Documents the local Lambda service's own tracing (the facade) sent.
    pub facade_documents_sent: u64,
    /// The inventory table after the run: is every unit of stock accounted for?
    pub stock: Option<StockConservation>,
    /// The traffic analytics: every access-log line through Firehose into the index.
    pub analytics: Option<AnalyticsCheck>,
    /// The Lambda telemetry (`--telemetry`): a `platform.report` document per invocation.
    #[serde(default)]
    pub telemetry: Option<TelemetryCheck>,
}

/// Local runs with the telemetry extension: what reached the `lambda-*` indices.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct TelemetryCheck {
    /// Invocations per function, as the local Lambda service counted them.
    pub invocations: BTreeMap<String, u64>,
    /// `platform.report` documents per function in `lambda-platform-*`.
    pub reports: BTreeMap<String, u64>,
    /// Of those, how many carry the invocation's `traceId`.
    pub reports_with_trace_id: u64,
    /// Documents in `lambda-function-*` (the functions' log lines).
    pub function_lines: u64,
    /// Log lines the local Lambda service handed to the extensions.
    pub function_lines_emitted: u64,
    /// Time the extensions added to an invocation after the runtime answered
    /// (`platform.report` minus `platform.runtimeDone` duration), ms: p50.
    pub extension_ms_p50: Option<f64>,
    /// The same, p99.
    pub extension_ms_p99: Option<f64>,
    /// Billed milliseconds summed over the reports.
    pub billed_ms: u64,
    /// A report per invocation, each with its trace id, and log lines indexed.
    pub complete: bool,
    /// Every difference found.
    pub disagreements: Vec<String>,
}

/// Local runs with analytics: where every access-log line went, and the index against the log.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct AnalyticsCheck {
    /// Lines the stream received (one per access-log line).
    pub received: u64,
    /// Documents indexed.
    pub indexed: u64,
    /// Dropped by the transform on purpose.
    pub dropped: u64,
    /// In the backup's `processing-failed/`.
    pub processing_failed: u64,
    /// In the backup's failed-documents folder.
    pub failed_documents: u64,
    /// Transform invocations (retries included).
    pub invocations: u64,
    /// Documents in the `lattice-access-*` indices.
    pub documents_in_index: u64,
    /// Documents per service and response code, from the index.
    pub index_counts: BTreeMap<String, BTreeMap<String, u64>>,
    /// Every line accounted for, and the index's counts equal to the access log's.
    pub agrees: bool,
    /// From the last access-log line written to every document searchable, ms (`None`: not
    /// reached within the wait).
    pub lag_ms: Option<u64>,
    /// Every difference found.
    pub disagreements: Vec<String>,
}

/// Why a JSON document is not a report this loadgen reads (each reads after the document's
/// name: "report.json is a loadgen-report/3 report; …").
#[derive(Debug, thiserror::Error)]
pub enum FormatError {
    /// Another version of the format wrote it.
    #[error("is a {0} report; this loadgen reads {SCHEMA}")]
    OtherVersion(String),
    /// No `schema` field: not a loadgen report.
    #[error("is not a loadgen report (no schema)")]
    NoSchema,
    /// This version, with fields missing or malformed.
    #[error("does not hold a whole {SCHEMA} report: {0}")]
    Incomplete(serde_json::Error),
}

/// The whole report.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// [`SCHEMA`].
    pub schema: String,
    /// `annotation.run_id`.
    pub run_id: String,
    /// `annotation.scenario`.
    pub scenario: String,
    /// Where orders went.
    pub target: String,
    /// `open …/s` or `closed C`.
    pub model: String,
    /// RFC 3339.
    pub started_at: String,
    /// RFC 3339.
    pub ended_at: String,
    /// Stopped by Ctrl-C.
    pub interrupted: bool,
    /// Counts.
    pub requests: Requests,
    /// Length of the warm-up, s (its seconds are marked in the series).
    pub warmup_seconds: f64,
    /// Length of the measured part, s.
    pub measured_seconds: f64,
    /// Measured requests per second.
    pub throughput_rps: f64,
    /// Open loop: rate actually dispatched.
    pub dispatched_rps: Option<f64>,
    /// Latency.
    pub latency: Latency,
    /// The latency histograms themselves, losslessly (HdrHistogram's V2 compressed encoding):
    /// reports of runs made apart merge exactly ([`crate::hdr::merge`]).
    pub histograms: EncodedHistograms,
    /// Measured requests per HTTP status.
    pub statuses: BTreeMap<String, u64>,
    /// The error taxonomy.
    pub errors: Vec<ErrorCount>,
    /// Per second, warm-up included.
    pub series: Vec<SecondStats>,
    /// loadgen's own segment documents it could not hand to X-Ray.
    pub segments_not_sent: u64,
    /// X-Ray's view, when inspected.
    pub inspection: Option<Inspection>,
    /// Local runs only.
    pub local: Option<LocalCheck>,
    /// Local runs only: what the run cost.
    #[serde(default)]
    pub cost: Option<CostSection>,
    /// A part of a shared-out run (`--partition`): which part, and when it started.
    #[serde(default)]
    pub part: Option<PartFacts>,
    /// A run through runner functions (`--runner`, `--runners`): each runner's line, the
    /// waves, and every runner that failed or timed out; the figures above are their merge.
    #[serde(default)]
    pub fanout: Option<crate::fanout::FanOut>,
}

/// Which part of a shared-out run a report is, and when it started.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PartFacts {
    /// `K/N`.
    pub partition: String,
    /// The shared start time, RFC 3339.
    pub start_at: String,
    /// How long after it this part's load began, ms.
    pub start_lag_ms: f64,
    /// Open loop: where in the schedule this part started, s (a later wave's).
    pub schedule_from_seconds: f64,
    /// Closed loop: the order index it counted from.
    pub first_index: u64,
    /// Open loop: requests dispatched in the measured part (the parts' rates add up from
    /// these and the spans, not from their `dispatched_rps`).
    pub dispatched_measured: Option<u64>,
    /// Open loop: from the measured part's start to its last dispatch, s.
    pub dispatch_span_seconds: Option<f64>,
}

/// A local run's cost: the `lattice-cost/2` document (`cost/report.schema.json`), or why there is
/// none (the run goes on without it: a cost report must not fail a load run).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CostSection {
    /// The report.
    Report(Box<lattice_cost::document::CostDocument>),
    /// Why it could not be made.
    Unavailable(String),
}

/// The fields [`Report::new`] needs besides the statistics.
#[derive(Clone, Debug)]
pub struct RunFacts {
    /// Run id.
    pub run_id: String,
    /// Scenario.
    pub scenario: String,
    /// Target.
    pub target: String,
    /// Model description.
    pub model: String,
    /// Start.
    pub started_at: std::time::SystemTime,
    /// End.
    pub ended_at: std::time::SystemTime,
    /// Ctrl-C.
    pub interrupted: bool,
    /// Sent in all.
    pub sent: u64,
    /// Traced.
    pub traced: u64,
    /// Warm-up.
    pub warmup: u64,
    /// Late.
    pub late: u64,
    /// Dropped.
    pub dropped: u64,
    /// Warm-up length.
    pub warmup_length: std::time::Duration,
    /// Measured length.
    pub measured_seconds: f64,
    /// Dispatched rate.
    pub dispatched_rps: Option<f64>,
    /// Own documents not sent.
    pub segments_not_sent: u64,
    /// The per-second series.
    pub series: Vec<SecondStats>,
    /// A part of a shared-out run.
    pub part: Option<PartFacts>,
}

impl Report {
    /// A report of `stats` with `facts`.
    pub fn new(facts: RunFacts, stats: &RunStats) -> Self {
        let failed = stats.failures();
        let measured = stats.requests();
        Self {
            schema: SCHEMA.to_owned(),
            run_id: facts.run_id,
            scenario: facts.scenario,
            target: facts.target,
            model: facts.model,
            started_at: humantime::format_rfc3339_millis(facts.started_at).to_string(),
            ended_at: humantime::format_rfc3339_millis(facts.ended_at).to_string(),
            interrupted: facts.interrupted,
            requests: Requests {
                sent: facts.sent,
                traced: facts.traced,
                measured,
                ok: measured - failed,
                failed,
                warmup: facts.warmup,
                late: facts.late,
                dropped: facts.dropped,
            },
            warmup_seconds: facts.warmup_length.as_secs_f64(),
            measured_seconds: facts.measured_seconds,
            throughput_rps: if facts.measured_seconds > 0.0 {
                measured as f64 / facts.measured_seconds
            } else {
                0.0
            },
            dispatched_rps: facts.dispatched_rps,
            latency: Latency {
                corrected: percentiles(&stats.corrected),
                uncorrected: percentiles(&stats.uncorrected),
                distribution: LatencyDistribution {
                    corrected: distribution(&stats.corrected),
                    uncorrected: distribution(&stats.uncorrected),
                },
            },
            histograms: EncodedHistograms::of(stats),
            statuses: stats
                .statuses
                .iter()
                .map(|(k, v)| (k.to_string(), *v))
                .collect(),
            errors: stats
                .errors
                .iter()
                .map(|((kind, status), count)| ErrorCount {
                    kind: *kind,
                    status: *status,
                    count: *count,
                })
                .collect(),
            series: facts.series,
            segments_not_sent: facts.segments_not_sent,
            inspection: None,
            local: None,
            cost: None,
            part: facts.part,
            fanout: None,
        }
    }

    /// A report saved with `--json`, refused when another format version wrote it.
    pub fn read(path: &std::path::Path) -> anyhow::Result<Self> {
        use anyhow::Context as _;
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading the report {}", path.display()))?;
        let value: serde_json::Value = serde_json::from_str(&text)
            .with_context(|| format!("{} is not JSON", path.display()))?;
        Self::from_json(value).map_err(|e| anyhow::anyhow!("{} {e}", path.display()))
    }

    /// The report `value` holds, when it is one of this format version ([`SCHEMA`]).
    pub fn from_json(value: serde_json::Value) -> Result<Self, FormatError> {
        match value.get("schema").and_then(serde_json::Value::as_str) {
            Some(SCHEMA) => serde_json::from_value(value).map_err(FormatError::Incomplete),
            Some(other) => Err(FormatError::OtherVersion(other.to_owned())),
            None => Err(FormatError::NoSchema),
        }
    }

    /// The human report.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "run {} ({}) → {}",
            self.run_id, self.scenario, self.target
        );
        let _ = writeln!(
            out,
            "  {} | {} sent{}, {} measured over {:.1} s: {:.1} req/s{}{}",
            self.model,
            self.requests.sent,
            if self.requests.traced == self.requests.sent {
                String::new()
            } else {
                format!(" ({} traced)", self.requests.traced)
            },
            self.requests.measured,
            self.measured_seconds,
            self.throughput_rps,
            self.dispatched_rps
                .map(|r| format!(" (dispatched {r:.1}/s)"))
                .unwrap_or_default(),
            if self.interrupted {
                " — interrupted by Ctrl-C"
            } else {
                ""
            }
        );
        let _ = writeln!(
            out,
            "  ok {}, failed {}, warm-up {}, late {}, dropped {}",
            self.requests.ok,
            self.requests.failed,
            self.requests.warmup,
            self.requests.late,
            self.requests.dropped
        );
        if let Some(fanout) = &self.fanout {
            out.push_str(&fanout.render());
        }
        let _ = writeln!(
            out,
            "latency (ms)        p50      p90      p95      p99    p99.9      max"
        );
        for (label, p) in [
            ("corrected", &self.latency.corrected),
            ("uncorrected", &self.latency.uncorrected),
        ] {
            let _ = writeln!(
                out,
                "  {label:<12} {:>8.2} {:>8.2} {:>8.2} {:>8.2} {:>8.2} {:>8.2}",
                p.p50_ms, p.p90_ms, p.p95_ms, p.p99_ms, p.p999_ms, p.max_ms
            );
        }
        let _ = writeln!(out, "statuses");
        for (status, count) in &self.statuses {
            let _ = writeln!(out, "  {status}: {count}");
        }
        if !self.errors.is_empty() {
            let _ = writeln!(out, "errors");
            for e in &self.errors {
                let status = e.status.map(|s| format!(" {s}")).unwrap_or_default();
                let _ = writeln!(out, "  {:?}{status}: {}", e.kind, e.count);
            }
        }
        if self.segments_not_sent > 0 {
            let _ = writeln!(
                out,
                "  loadgen segments not handed to X-Ray: {}",
                self.segments_not_sent
            );
        }
        if let Some(inspection) = &self.inspection {
            let _ = writeln!(
                out,
                "X-Ray: {} traces found of {} expected (waited {:.1} s); {} checked, {} complete ({:.1} %)",
                inspection.traces_found,
                inspection.traces_expected,
                inspection.waited_seconds,
                inspection.traces_checked,
                inspection.traces_complete,
                inspection.complete_percent
            );
            for incomplete in &inspection.incomplete {
                let _ = writeln!(
                    out,
                    "  incomplete {}: missing {}",
                    incomplete.trace_id,
                    incomplete.missing.join(", ")
                );
            }
            let _ = writeln!(out, "errors and faults by service (from the traces)");
            for (service, o) in &inspection.by_service {
                let _ = writeln!(
                    out,
                    "  {service:<12} segments {:>7}  error {:>5}  fault {:>5}  throttle {:>5}",
                    o.segments, o.error, o.fault, o.throttle
                );
            }
            let _ = writeln!(out, "service map");
            out.push_str(&inspection.service_map.to_table());
        }
        if let Some(local) = &self.local {
            let _ = writeln!(out, "Lattice access logs (local)");
            for (service, log) in &local.access_log {
                let statuses: Vec<String> = local_statuses(log).into_iter().collect();
                let _ = writeln!(
                    out,
                    "  {service:<12} {:>7} lines  {}",
                    log.requests,
                    statuses.join(" ")
                );
            }
            if local.agrees {
                let _ = writeln!(out, "  order's access log agrees with loadgen's counts");
            }
            for d in &local.disagreements {
                let _ = writeln!(out, "  DISAGREES: {d}");
            }
            if local.evicted_traces > 0 {
                let _ = writeln!(
                    out,
                    "  the local X-Ray store evicted {} traces (capacity reached): missing traces may be evicted, not incomplete",
                    local.evicted_traces
                );
            }
            if local.rejected_documents > 0 {
                let _ = writeln!(
                    out,
                    "  the local daemon refused {} documents",
                    local.rejected_documents
                );
            }
            if let Some(stock) = &local.stock {
                write_stock(&mut out, stock);
            }
            if let Some(analytics) = &local.analytics {
                write_analytics(&mut out, analytics);
            }
            if let Some(telemetry) = &local.telemetry {
                write_telemetry(&mut out, telemetry);
            }
        }
        match &self.cost {
            Some(CostSection::Report(document)) => out.push_str(&crate::cost::text(document)),
            Some(CostSection::Unavailable(why)) => {
                let _ = writeln!(out, "cost report unavailable: {why}");
            }
            None => {}
        }
        out
    }
}

fn write_telemetry(out: &mut String, telemetry: &TelemetryCheck) {
    let _ = writeln!(
        out,
        "Lambda telemetry (Telemetry API → opensearch-telemetry → lambda-platform-*, lambda-function-*)"
    );
    for (function, invocations) in &telemetry.invocations {
        let reports = telemetry.reports.get(function).copied().unwrap_or(0);
        let _ = writeln!(
            out,
            "  {function:<12} {invocations} invocations, {reports} platform.report documents"
        );
    }
    let _ = writeln!(
        out,
        "  {} reports with a trace id, {} of {} function log lines indexed, {} billed ms",
        telemetry.reports_with_trace_id,
        telemetry.function_lines,
        telemetry.function_lines_emitted,
        telemetry.billed_ms
    );
    if let (Some(p50), Some(p99)) = (telemetry.extension_ms_p50, telemetry.extension_ms_p99) {
        let _ = writeln!(
            out,
            "  the extension kept an environment busy {p50:.2} ms (p50), {p99:.2} ms (p99) after the response"
        );
    }
    for d in &telemetry.disagreements {
        let _ = writeln!(out, "  DISAGREES: {d}");
    }
}

fn write_analytics(out: &mut String, analytics: &AnalyticsCheck) {
    let _ = writeln!(
        out,
        "traffic analytics (access log → Firehose → access-log-transform → lattice-access-*)"
    );
    let _ = writeln!(
        out,
        "  {} lines: {} indexed, {} dropped, {} processing-failed, {} failed documents ({} transform invocations)",
        analytics.received,
        analytics.indexed,
        analytics.dropped,
        analytics.processing_failed,
        analytics.failed_documents,
        analytics.invocations
    );
    for (service, statuses) in &analytics.index_counts {
        let statuses: Vec<String> = statuses.iter().map(|(k, v)| format!("{k}:{v}")).collect();
        let _ = writeln!(out, "  {service:<12} {}", statuses.join(" "));
    }
    if analytics.agrees {
        let _ = writeln!(
            out,
            "  {} documents: one per access-log line, the same counts by service and status",
            analytics.documents_in_index
        );
    }
    for d in &analytics.disagreements {
        let _ = writeln!(out, "  DISAGREES: {d}");
    }
    match analytics.lag_ms {
        Some(ms) => {
            let _ = writeln!(
                out,
                "  searchable {:.1} s after the last access-log line",
                ms as f64 / 1000.0
            );
        }
        None => {
            let _ = writeln!(out, "  not all searchable within the wait");
        }
    }
}

fn write_stock(out: &mut String, stock: &StockConservation) {
    let _ = writeln!(out, "stock (the inventory table after the run)");
    let _ = writeln!(
        out,
        "  {} SKUs: initial {} = available {} + held {}{}",
        stock.skus,
        stock.initial_units,
        stock.available_units,
        stock.held_units,
        if stock.imbalances.is_empty() {
            String::new()
        } else {
            format!("  NOT CONSERVED for {} SKUs", stock.imbalances.len())
        }
    );
    for imbalance in stock.imbalances.iter().take(10) {
        let _ = writeln!(
            out,
            "    {}: initial {} != available {} + held {}",
            imbalance.sku, imbalance.initial, imbalance.available, imbalance.held
        );
    }
    let _ = writeln!(
        out,
        "  this run: {} reservations held for {} orders created; {} released ({} before their reservation); {} failed releases",
        stock.reserved_by_run,
        stock.created_orders,
        stock.released_by_run,
        stock.tombstones_by_run,
        stock.failed_releases
    );
    let _ = writeln!(
        out,
        "  {}",
        if stock.conserved {
            "every unit accounted for"
        } else {
            "STOCK NOT ACCOUNTED FOR"
        }
    );
}

fn local_statuses(log: &ServiceLog) -> Vec<String> {
    log.statuses
        .iter()
        .map(|(s, n)| format!("{s}:{n}"))
        .collect()
}
