//! The page's data: what the HTML run report shows, derived from a [`Report`] alone, and embedded
//! in the page as `<script type="application/json" id="page-data">` (the browser check in
//! `loadgen/tests/browser/` reads it, the golden test fixes it). The map's label lines and the
//! charts' points live here, so the drawing code only draws them.
//!
//! Every figure is one of the report's JSON fields, formatted (rounded for display, in the report's
//! units): nothing here is summed or derived.

use serde::Serialize;

use crate::map::{NodeKind, ServiceMap, Traffic};
use crate::report::Report;

/// The page data's version.
pub const PAGE_SCHEMA: &str = "loadgen-page/1";

/// Colour of the corrected (p99, from the intended start) series.
pub const COLOR_CORRECTED: &str = "#d1495b";
/// Colour of the uncorrected (from the send) series and of p50.
pub const COLOR_UNCORRECTED: &str = "#00798c";
/// Colour of the requests-per-second series.
pub const COLOR_REQUESTS: &str = "#30638e";
/// Colour of the failed-requests-per-second series.
pub const COLOR_ERRORS: &str = "#edae49";

/// Everything the page draws.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PageData {
    /// [`PAGE_SCHEMA`].
    pub schema: &'static str,
    /// The run, for the header.
    pub run: RunHeader,
    /// The verdict line.
    pub verdict: Vec<Verdict>,
    /// The service map, when X-Ray was inspected.
    pub map: Option<MapData>,
    /// The charts, in page order.
    pub charts: Vec<Chart>,
}

/// The header's facts.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RunHeader {
    /// Run id.
    pub run_id: String,
    /// Scenario.
    pub scenario: String,
    /// Target.
    pub target: String,
    /// Load model.
    pub model: String,
    /// RFC 3339.
    pub started_at: String,
    /// RFC 3339.
    pub ended_at: String,
    /// Warm-up, s.
    pub warmup_seconds: f64,
    /// Measured part, s.
    pub measured_seconds: f64,
    /// Requests sent (warm-up included).
    pub sent: u64,
    /// Requests measured.
    pub measured: u64,
    /// Measured requests per second.
    pub throughput_rps: f64,
    /// Stopped by Ctrl-C.
    pub interrupted: bool,
}

/// One verdict's state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum VerdictState {
    /// Checked and holds.
    Pass,
    /// Checked and does not hold.
    Fail,
    /// Not checked in this run (the detail says why).
    NotChecked,
}

/// One part of the verdict line.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Verdict {
    /// What was checked.
    pub check: &'static str,
    /// Its outcome.
    pub state: VerdictState,
    /// The figures behind it.
    pub detail: String,
}

/// A node's or an edge's health, X-Ray's colours: the worst outcome it saw.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Health {
    /// No requests counted (X-Ray's client node).
    Idle,
    /// Every request OK.
    Ok,
    /// Some 4xx.
    Error,
    /// Some 429.
    Throttle,
    /// Some 5xx.
    Fault,
}

impl Health {
    /// The health of `traffic`.
    pub fn of(traffic: &Traffic) -> Self {
        if traffic.requests <= 0 {
            Self::Idle
        } else if traffic.fault > 0 {
            Self::Fault
        } else if traffic.throttle > 0 {
            Self::Throttle
        } else if traffic.error > 0 {
            Self::Error
        } else {
            Self::Ok
        }
    }

    /// Its CSS class suffix and legend word.
    pub fn name(self) -> &'static str {
        match self {
            Self::Idle => "idle",
            Self::Ok => "ok",
            Self::Error => "error",
            Self::Throttle => "throttle",
            Self::Fault => "fault",
        }
    }
}

/// A node's share of each outcome, for the bar under its label (X-Ray's ring).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Shares {
    /// OK, percent.
    pub ok: f64,
    /// Error (4xx), percent.
    pub error: f64,
    /// Throttle (429), percent.
    pub throttle: f64,
    /// Fault (5xx), percent.
    pub fault: f64,
}

/// A node on the drawn map.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct MapNode {
    /// `n<X-Ray reference id>` (the SVG's `data-node-id`).
    pub id: String,
    /// Name.
    pub name: String,
    /// X-Ray type.
    #[serde(rename = "type")]
    pub node_type: String,
    /// Its kind.
    pub kind: NodeKind,
    /// Its health.
    pub health: Health,
    /// Outcome shares, when it counted requests.
    pub shares: Option<Shares>,
    /// The text lines drawn in its box.
    pub label: Vec<String>,
}

/// An edge on the drawn map.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct MapEdge {
    /// The caller's [`MapNode::id`].
    pub from: String,
    /// The callee's.
    pub to: String,
    /// Its health.
    pub health: Health,
    /// The text lines of its label.
    pub label: Vec<String>,
}

/// The drawn map.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct MapData {
    /// Nodes, in the report's order.
    pub nodes: Vec<MapNode>,
    /// Edges, in the report's order.
    pub edges: Vec<MapEdge>,
    /// The map holds Lambda's own (facade) traces: the page explains them.
    pub facade_traces: bool,
}

/// How a chart's x values are placed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum XScale {
    /// As they are (seconds of the run).
    Linear,
    /// Percentiles, spread as HdrHistogram plots them: `log10(1 / (1 - p/100))`, so 90 %, 99 %
    /// and 99.9 % are evenly spaced.
    Percentile,
}

/// A shaded stretch of a chart's x axis.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Band {
    /// From x.
    pub from: f64,
    /// To x.
    pub to: f64,
    /// What it marks.
    pub label: String,
}

/// One line of a chart.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Series {
    /// Legend name.
    pub name: String,
    /// `#rrggbb`: its polyline's stroke.
    pub color: &'static str,
    /// `[x, y]`, in the report's units.
    pub points: Vec<[f64; 2]>,
}

/// One chart.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Chart {
    /// The `<figure>`'s id.
    pub id: &'static str,
    /// Its caption.
    pub title: &'static str,
    /// X axis.
    pub x_label: &'static str,
    /// Y axis.
    pub y_label: &'static str,
    /// X placement.
    pub x_scale: XScale,
    /// Shaded stretches.
    pub bands: Vec<Band>,
    /// Lines (a series with no points is left out).
    pub series: Vec<Series>,
}

impl PageData {
    /// The page data of `report`.
    pub fn of(report: &Report) -> Self {
        Self {
            schema: PAGE_SCHEMA,
            run: RunHeader {
                run_id: report.run_id.clone(),
                scenario: report.scenario.clone(),
                target: report.target.clone(),
                model: report.model.clone(),
                started_at: report.started_at.clone(),
                ended_at: report.ended_at.clone(),
                warmup_seconds: report.warmup_seconds,
                measured_seconds: report.measured_seconds,
                sent: report.requests.sent,
                measured: report.requests.measured,
                throughput_rps: report.throughput_rps,
                interrupted: report.interrupted,
            },
            verdict: verdict(report),
            map: report
                .inspection
                .as_ref()
                .map(|inspection| map_data(&inspection.service_map)),
            charts: vec![
                latency_over_time(report),
                requests_over_time(report),
                latency_distribution(report),
            ],
        }
    }

    /// The JSON for the page's `<script type="application/json">`: `<` is escaped as `\u003c`,
    /// so no string in it can close the script element.
    pub fn to_script_json(&self) -> String {
        serde_json::to_string(self)
            .expect("page data is plain data")
            .replace('<', "\\u003c")
    }
}

/// The verdict line: traces complete, access log agreeing, nothing lost.
fn verdict(report: &Report) -> Vec<Verdict> {
    vec![
        traces_verdict(report),
        access_log_verdict(report),
        lost_verdict(report),
    ]
}

fn traces_verdict(report: &Report) -> Verdict {
    const CHECK: &str = "traces complete";
    let Some(i) = &report.inspection else {
        return Verdict {
            check: CHECK,
            state: VerdictState::NotChecked,
            detail: "X-Ray was not inspected".into(),
        };
    };
    let holds = i.traces_checked > 0
        && i.traces_complete == i.traces_checked
        && i.traces_found >= i.traces_expected;
    Verdict {
        check: CHECK,
        state: if holds {
            VerdictState::Pass
        } else {
            VerdictState::Fail
        },
        detail: format!(
            "{} of {} traces found, {} of {} checked complete ({} %)",
            i.traces_found,
            i.traces_expected,
            i.traces_complete,
            i.traces_checked,
            i.complete_percent
        ),
    }
}

fn access_log_verdict(report: &Report) -> Verdict {
    const CHECK: &str = "access log agrees";
    let Some(local) = &report.local else {
        return Verdict {
            check: CHECK,
            state: VerdictState::NotChecked,
            detail: "not a local run: `loadgen analytics` asks the deployed access logs".into(),
        };
    };
    let detail = match (local.agrees, local.access_log.get("order")) {
        (false, _) => local.disagreements.join("; "),
        (true, Some(order)) => format!(
            "order's {} access-log lines, status by status, equal loadgen's requests",
            order.requests
        ),
        (true, None) => "order was invoked directly: not behind Lattice, no log to compare".into(),
    };
    Verdict {
        check: CHECK,
        state: if local.agrees {
            VerdictState::Pass
        } else {
            VerdictState::Fail
        },
        detail,
    }
}

/// Nothing lost: every segment document handed over and accepted, no trace evicted, and, where
/// the run checked them, every unit of stock, every access-log line and every invocation's
/// telemetry accounted for.
fn lost_verdict(report: &Report) -> Verdict {
    const CHECK: &str = "nothing lost";
    let mut found = vec![format!(
        "{} loadgen segment documents not sent",
        report.segments_not_sent
    )];
    let mut holds = report.segments_not_sent == 0;
    if let Some(fanout) = &report.fanout {
        holds &= fanout.complete();
        found.push(format!(
            "runners: {} of {} invocations answered, {} failed, {} timed out",
            fanout.answered,
            fanout.invocations.len(),
            fanout.failed,
            fanout.timed_out
        ));
    }
    if let Some(local) = &report.local {
        holds &= local.rejected_documents == 0 && local.evicted_traces == 0;
        found.push(format!(
            "{} documents accepted, {} refused, {} traces evicted",
            local.accepted_documents, local.rejected_documents, local.evicted_traces
        ));
        if let Some(stock) = &local.stock {
            holds &= stock.conserved;
            found.push(format!(
                "stock: initial {} = available {} + held {}: {}",
                stock.initial_units,
                stock.available_units,
                stock.held_units,
                if stock.conserved {
                    "conserved"
                } else {
                    "NOT conserved"
                }
            ));
        }
        if let Some(analytics) = &local.analytics {
            holds &= analytics.agrees;
            found.push(format!(
                "{} access-log lines: {} indexed, {} dropped, {} processing-failed, {} failed documents",
                analytics.received,
                analytics.indexed,
                analytics.dropped,
                analytics.processing_failed,
                analytics.failed_documents
            ));
        }
        if let Some(telemetry) = &local.telemetry {
            holds &= telemetry.complete;
            let per_function: Vec<String> = telemetry
                .invocations
                .iter()
                .map(|(function, invocations)| {
                    let reports = telemetry
                        .reports
                        .get(function)
                        .map_or_else(|| "no".to_owned(), u64::to_string);
                    format!("{function} {invocations} invocations, {reports} reports")
                })
                .collect();
            found.push(format!("telemetry: {}", per_function.join(", ")));
        }
    }
    Verdict {
        check: CHECK,
        state: if holds {
            VerdictState::Pass
        } else {
            VerdictState::Fail
        },
        detail: found.join("; "),
    }
}

/// A share as the report holds it (rounded to 0.01 % there), with a `%`.
fn percent(value: f64) -> String {
    format!("{value}%")
}

fn node_label(name: &str, node_type: &str, kind: NodeKind, t: &Traffic) -> Vec<String> {
    // X-Ray's client node stands for the callers: it has no statistics of its own.
    if kind == NodeKind::Client {
        return vec![name.to_owned()];
    }
    vec![
        name.to_owned(),
        if node_type.is_empty() {
            "(no type)".to_owned()
        } else {
            node_type.to_owned()
        },
        format!("{} req, fault {}", t.requests, percent(t.fault_percent)),
        format!("avg {:.1} p99 {:.1} ms", t.avg_ms, t.p99_ms),
    ]
}

fn edge_label(t: &Traffic) -> Vec<String> {
    vec![
        format!("{} req", t.requests),
        format!(
            "err {} fault {} thr {}",
            percent(t.error_percent),
            percent(t.fault_percent),
            percent(t.throttle_percent)
        ),
        format!("avg {:.1} p99 {:.1} ms", t.avg_ms, t.p99_ms),
    ]
}

fn shares(t: &Traffic) -> Option<Shares> {
    (t.requests > 0).then_some(Shares {
        ok: t.ok_percent,
        error: t.error_percent,
        throttle: t.throttle_percent,
        fault: t.fault_percent,
    })
}

/// The node id the SVG and the page data share.
pub fn node_id(reference_id: i32) -> String {
    format!("n{reference_id}")
}

fn map_data(map: &ServiceMap) -> MapData {
    MapData {
        nodes: map
            .nodes
            .iter()
            .map(|n| MapNode {
                id: node_id(n.id),
                name: n.name.clone(),
                node_type: n.node_type.clone(),
                kind: n.kind,
                health: Health::of(&n.traffic),
                shares: shares(&n.traffic),
                label: node_label(&n.name, &n.node_type, n.kind, &n.traffic),
            })
            .collect(),
        edges: map
            .edges
            .iter()
            .map(|e| MapEdge {
                from: node_id(e.from_id),
                to: node_id(e.to_id),
                health: Health::of(&e.traffic),
                label: edge_label(&e.traffic),
            })
            .collect(),
        facade_traces: map.nodes.iter().any(|n| n.kind == NodeKind::LambdaService),
    }
}

fn series(name: &str, color: &'static str, points: Vec<[f64; 2]>) -> Option<Series> {
    (!points.is_empty()).then(|| Series {
        name: name.to_owned(),
        color,
        points,
    })
}

/// The warm-up's stretch of a per-second chart, when there was one.
fn warmup_band(report: &Report) -> Vec<Band> {
    let warm: Vec<u64> = report
        .series
        .iter()
        .filter(|s| s.warmup)
        .map(|s| s.second)
        .collect();
    match (warm.first(), warm.last()) {
        (Some(&first), Some(&last)) => vec![Band {
            from: first as f64,
            to: (last + 1) as f64,
            label: format!(
                "warm-up ({} s, not in the statistics)",
                report.warmup_seconds
            ),
        }],
        _ => Vec::new(),
    }
}

fn latency_over_time(report: &Report) -> Chart {
    let answered = || report.series.iter().filter(|s| s.requests > 0);
    Chart {
        id: "latency-over-time",
        title: "Latency over time: p50 and p99 of each second's requests (corrected)",
        x_label: "second of the run",
        y_label: "latency (ms)",
        x_scale: XScale::Linear,
        bands: warmup_band(report),
        series: [
            series(
                "p50",
                COLOR_UNCORRECTED,
                answered().map(|s| [s.second as f64, s.p50_ms]).collect(),
            ),
            series(
                "p99",
                COLOR_CORRECTED,
                answered().map(|s| [s.second as f64, s.p99_ms]).collect(),
            ),
        ]
        .into_iter()
        .flatten()
        .collect(),
    }
}

fn requests_over_time(report: &Report) -> Chart {
    let all = || report.series.iter();
    Chart {
        id: "requests-over-time",
        title: "Requests finished per second, and of them failed",
        x_label: "second of the run",
        y_label: "requests",
        x_scale: XScale::Linear,
        bands: warmup_band(report),
        series: [
            series(
                "requests",
                COLOR_REQUESTS,
                all()
                    .map(|s| [s.second as f64, s.requests as f64])
                    .collect(),
            ),
            series(
                "failed",
                COLOR_ERRORS,
                all().map(|s| [s.second as f64, s.errors as f64]).collect(),
            ),
        ]
        .into_iter()
        .flatten()
        .collect(),
    }
}

fn latency_distribution(report: &Report) -> Chart {
    // 100 % has no place on the percentile axis (1 / (1 - 1)); the maximum is in the table.
    let points = |points: &[crate::stats::PercentilePoint]| -> Vec<[f64; 2]> {
        points
            .iter()
            .filter(|p| p.percentile < 100.0)
            .map(|p| [p.percentile, p.value_ms])
            .collect()
    };
    let distribution = &report.latency.distribution;
    Chart {
        id: "latency-distribution",
        title: "Latency by percentile (HdrHistogram), corrected and uncorrected",
        x_label: "percentile",
        y_label: "latency (ms)",
        x_scale: XScale::Percentile,
        bands: Vec::new(),
        series: [
            series(
                "corrected (from the intended start)",
                COLOR_CORRECTED,
                points(&distribution.corrected),
            ),
            series(
                "uncorrected (from the send)",
                COLOR_UNCORRECTED,
                points(&distribution.uncorrected),
            ),
        ]
        .into_iter()
        .flatten()
        .collect(),
    }
}
