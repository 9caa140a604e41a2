//! The page's HTML, section by section, written with maud (its `html!` escapes every value):
//! the header and verdict, the drawn map, the charts, then the tables: latency, statuses and
//! the error taxonomy, errors and faults per service, the slowest traces, and when the run has
//! them, the local stack's records, the traffic analytics, the telemetry and the cost.
//!
//! Each figure is a report field, formatted; the page data (`#page-data`) is the same
//! [`PageData`] the map and charts were drawn from.

use maud::{html, Markup, PreEscaped, DOCTYPE};

use lattice_cost::document::CostDocument;
use lattice_cost::model::CostLines;
use lattice_cost::render::{usd, LINE_NAMES};

use super::data::{Chart, PageData, VerdictState, XScale};
use super::{charts, map_svg};
use crate::fanout::{FanOut, Outcome};
use crate::inspect::Inspection;
use crate::map::FACADE_NOTE;
use crate::report::{AnalyticsCheck, CostSection, LocalCheck, Report, TelemetryCheck};
use crate::stats::ErrorKind;

/// The page's style sheet.
const STYLE: &str = include_str!("style.css");

/// The whole page.
pub fn page(report: &Report, data: &PageData) -> String {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { "loadgen run " (report.run_id) }
                style { (PreEscaped(STYLE)) }
            }
            body {
                (header(report, data))
                (map_section(report, data))
                section #time {
                    h2 { "Over time" }
                    @for chart in data.charts.iter().filter(|c| c.x_scale == XScale::Linear) {
                        (chart_figure(chart))
                    }
                }
                (latency_section(report, data))
                (outcomes_section(report))
                @if let Some(fanout) = &report.fanout {
                    (runners_section(fanout))
                }
                @if let Some(inspection) = &report.inspection {
                    (traces_section(inspection))
                }
                @if let Some(local) = &report.local {
                    (local_section(local))
                }
                @match &report.cost {
                    Some(CostSection::Report(document)) => (cost_section(document)),
                    Some(CostSection::Unavailable(why)) => section #cost {
                        h2 { "Cost" }
                        p.note { "No cost report for this run: " (why) }
                    },
                    None => {}
                }
                footer {
                    "Written by loadgen from a " code { (report.schema) } " report. Every figure on this page is a field of the run's JSON report (" code { "--json" } "), rounded for display; the page data is in " code { "#page-data" } "."
                }
                script type="application/json" id="page-data" { (PreEscaped(data.to_script_json())) }
            }
        }
    }
    .into_string()
}

fn header(report: &Report, data: &PageData) -> Markup {
    let run = &data.run;
    html! {
        header {
            h1 { "Run " code { (run.run_id) } }
            dl.facts {
                dt { "target" } dd { (run.target) }
                dt { "scenario" } dd { (run.scenario) }
                dt { "model" } dd { (run.model) }
                dt { "window" } dd { (run.started_at) " to " (run.ended_at) }
                dt { "duration" } dd { (run.warmup_seconds) " s warm-up, " (format!("{:.1}", run.measured_seconds)) " s measured" }
                dt { "orders" } dd { (run.sent) " sent, " (run.measured) " measured, " (report.requests.ok) " ok, " (report.requests.failed) " failed" }
                dt { "throughput" } dd {
                    (format!("{:.1}", run.throughput_rps)) " req/s"
                    @if let Some(rate) = report.dispatched_rps { " (dispatched " (format!("{rate:.1}")) "/s)" }
                }
            }
            @if run.interrupted {
                p.warning { "Interrupted by Ctrl-C: the figures are those of what ran." }
            }
            ul.verdict {
                @for v in &data.verdict {
                    @let (class, mark) = match v.state {
                        VerdictState::Pass => ("pass", "✔"),
                        VerdictState::Fail => ("fail", "✘"),
                        VerdictState::NotChecked => ("not-checked", "–"),
                    };
                    li class=(class) {
                        span.mark { (mark) } " " strong { (v.check) } ": " (v.detail)
                    }
                }
            }
        }
    }
}

fn map_section(report: &Report, data: &PageData) -> Markup {
    html! {
        section #map {
            h2 { "Service map" }
            @match (&data.map, &report.inspection) {
                (Some(map), Some(inspection)) => {
                    figure.map {
                        @match map_svg::svg(map) {
                            Ok(svg) => (PreEscaped(svg)),
                            Err(why) => p.warning { "The map could not be drawn: " (why) ". The table below holds it." },
                        }
                        figcaption {
                            "X-Ray's service graph over the run's window (GetServiceGraph), laid out left to right. Each node shows its requests, fault share, average and p99 response time; the bar under it, its share of OK, error, throttle and fault."
                        }
                    }
                    @if map.facade_traces {
                        p.note { (FACADE_NOTE.trim()) }
                    }
                    details {
                        summary { "The map as a table" }
                        pre { (inspection.service_map.to_table()) }
                    }
                }
                _ => p.note { "X-Ray was not inspected in this run (--no-inspect): no map." },
            }
        }
    }
}

fn chart_figure(chart: &Chart) -> Markup {
    let drawn = charts::svg(chart);
    html! {
        figure.chart id=(chart.id) {
            @match &drawn {
                Ok(svg) => (PreEscaped(svg)),
                Err(why) => p.warning { "The chart could not be drawn: " (why) },
            }
            figcaption {
                (chart.title)
                @if chart.series.is_empty() { " (no data in this run)" }
                span.keys {
                    @for series in &chart.series {
                        span.key { span.key-line style={ "background:" (series.color) } {} (series.name) }
                    }
                    @for band in &chart.bands {
                        span.key { span.key-line.band {} "shaded: " (band.label) }
                    }
                }
            }
        }
    }
}

fn latency_section(report: &Report, data: &PageData) -> Markup {
    let rows = [
        (
            "corrected (from the intended start)",
            &report.latency.corrected,
        ),
        ("uncorrected (from the send)", &report.latency.uncorrected),
    ];
    html! {
        section #latency {
            h2 { "Latency" }
            @for chart in data.charts.iter().filter(|c| c.x_scale == XScale::Percentile) {
                (chart_figure(chart))
            }
            table {
                thead { tr { th { "ms" } th { "requests" } th { "mean" } th { "p50" } th { "p90" } th { "p95" } th { "p99" } th { "p99.9" } th { "max" } } }
                tbody {
                    @for (name, p) in rows {
                        tr {
                            th { (name) }
                            td { (p.count) }
                            @for value in [p.mean_ms, p.p50_ms, p.p90_ms, p.p95_ms, p.p99_ms, p.p999_ms, p.max_ms] {
                                td { (format!("{value:.2}")) }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn outcomes_section(report: &Report) -> Markup {
    let r = &report.requests;
    html! {
        section #outcomes {
            h2 { "Requests, statuses and errors" }
            div.panels {
                table {
                    caption { "Requests" }
                    tbody {
                        @for (name, value) in [("sent", r.sent), ("traced", r.traced), ("warm-up", r.warmup), ("measured", r.measured), ("ok", r.ok), ("failed", r.failed), ("late (open loop)", r.late), ("dropped at --max-inflight", r.dropped)] {
                            tr { th { (name) } td { (value) } }
                        }
                        @if report.segments_not_sent > 0 {
                            tr.bad { th { "loadgen segments not sent" } td { (report.segments_not_sent) } }
                        }
                    }
                }
                table {
                    caption { "Measured requests by HTTP status" }
                    tbody {
                        @for (status, count) in &report.statuses {
                            tr { th { (status) } td { (count) } }
                        }
                    }
                }
                table {
                    caption { "The error taxonomy" }
                    @if report.errors.is_empty() {
                        tbody { tr { td { "no errors" } } }
                    } @else {
                        thead { tr { th { "class" } th { "status" } th { "requests" } } }
                        tbody {
                            @for e in &report.errors {
                                tr {
                                    th { (kind_name(e.kind)) }
                                    td { @if let Some(s) = e.status { (s) } @else { "-" } }
                                    td { (e.count) }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// `--runners`: every runner invocation, the failed and timed-out ones named.
fn runners_section(fanout: &FanOut) -> Markup {
    html! {
        section #runners {
            h2 { "Runners" }
            p.note {
                (fanout.runners) " × " code { (fanout.function) }
                @if fanout.waves > 1 { ", in " (fanout.waves) " consecutive waves" }
                ". The figures on this page are the answering runners' requests merged: their histograms added, not their percentiles averaged."
            }
            @if !fanout.complete() {
                p.bad { (fanout.failed) " failed and " (fanout.timed_out) " timed out of " (fanout.invocations.len()) " invocations: their requests are not in these figures." }
            }
            table {
                thead { tr { th { "wave" } th { "part" } th { "outcome" } th { "sent" } th { "measured" } th { "failed" } th { "p50 ms" } th { "p99 ms" } th { "start lag ms" } } }
                tbody {
                    @for line in &fanout.invocations {
                        @let bad = line.outcome != Outcome::Answered;
                        tr class=[bad.then_some("bad")] {
                            td { (line.wave) }
                            td { (line.partition) }
                            @match &line.figures {
                                Some(f) => {
                                    td { "answered" }
                                    td { (f.sent) } td { (f.measured) } td { (f.failed) }
                                    td { (format!("{:.2}", f.p50_ms)) } td { (format!("{:.2}", f.p99_ms)) }
                                    td { (format!("{:.1}", f.start_lag_ms)) }
                                },
                                None => {
                                    td { @if line.outcome == Outcome::TimedOut { "timed out" } @else { "failed" } }
                                    td colspan="6" { (line.message.as_deref().unwrap_or("")) }
                                },
                            }
                        }
                    }
                }
            }
        }
    }
}

/// An error class as the JSON names it (`client4xx`, `auth_denied`).
fn kind_name(kind: ErrorKind) -> String {
    match serde_json::to_value(kind) {
        Ok(serde_json::Value::String(name)) => name,
        _ => format!("{kind:?}"),
    }
}

fn flag(on: bool) -> &'static str {
    if on {
        "yes"
    } else {
        ""
    }
}

fn traces_section(inspection: &Inspection) -> Markup {
    html! {
        section #traces {
            h2 { "Traces" }
            p {
                (inspection.traces_found) " traces found of " (inspection.traces_expected) " expected (waited "
                (format!("{:.1}", inspection.waited_seconds)) " s); " (inspection.traces_checked) " checked, "
                (inspection.traces_complete) " complete (" (inspection.complete_percent) " %)."
            }
            div.panels {
                table {
                    caption { "Errors and faults per service, from the traces' segments" }
                    thead { tr { th { "service" } th { "segments" } th { "error" } th { "fault" } th { "throttle" } } }
                    tbody {
                        @for (service, o) in &inspection.by_service {
                            tr { th { (service) } td { (o.segments) } td { (o.error) } td { (o.fault) } td { (o.throttle) } }
                        }
                    }
                }
                table.wide {
                    caption { "The slowest traces" }
                    thead { tr { th { "trace id" } th { "duration ms" } th { "response ms" } th { "status" } th { "fault" } th { "error" } th { "throttle" } } }
                    tbody {
                        @for t in &inspection.slowest {
                            tr {
                                td { code { (t.trace_id) } }
                                td { (t.duration_ms) }
                                td { @if let Some(ms) = t.response_time_ms { (ms) } @else { "-" } }
                                td { @if let Some(s) = t.status { (s) } @else { "-" } }
                                td { (flag(t.fault)) } td { (flag(t.error)) } td { (flag(t.throttle)) }
                            }
                        }
                    }
                }
            }
            @if !inspection.incomplete.is_empty() {
                table.wide {
                    caption { "Incomplete traces (the first ones)" }
                    thead { tr { th { "trace id" } th { "missing" } } }
                    tbody {
                        @for i in &inspection.incomplete {
                            tr.bad { td { code { (i.trace_id) } } td { (i.missing.join(", ")) } }
                        }
                    }
                }
            }
        }
    }
}

fn local_section(local: &LocalCheck) -> Markup {
    html! {
        section #local {
            h2 { "The local stack's records" }
            div.panels {
                table {
                    caption { "Lattice access logs" }
                    thead { tr { th { "service" } th { "lines" } th { "by status" } } }
                    tbody {
                        @for (service, log) in &local.access_log {
                            tr {
                                th { (service) } td { (log.requests) }
                                td { @for (status, n) in &log.statuses { span.pair { (status) ": " (n) } " " } }
                            }
                        }
                    }
                }
                table {
                    caption { "X-Ray documents" }
                    tbody {
                        tr { th { "accepted by the daemon" } td { (local.accepted_documents) } }
                        tr { th { "of them, Lambda's own (facade)" } td { (local.facade_documents_sent) } }
                        tr { th { "refused" } td { (local.rejected_documents) } }
                        tr { th { "traces evicted from the store" } td { (local.evicted_traces) } }
                    }
                }
                @if let Some(stock) = &local.stock {
                    table {
                        caption { "Stock (the inventory table after the run)" }
                        tbody {
                            tr { th { "SKUs" } td { (stock.skus) } }
                            tr { th { "initial units" } td { (stock.initial_units) } }
                            tr { th { "available + held" } td { (stock.available_units) " + " (stock.held_units) } }
                            tr { th { "held for this run's orders" } td { (stock.reserved_by_run) " for " (stock.created_orders) " orders" } }
                            tr { th { "released (before their reservation)" } td { (stock.released_by_run) " (" (stock.tombstones_by_run) ")" } }
                            tr { th { "failed releases" } td { (stock.failed_releases) } }
                            tr class=(if stock.conserved { "good" } else { "bad" }) {
                                th { "every unit accounted for" } td { (if stock.conserved { "yes" } else { "NO" }) }
                            }
                        }
                    }
                }
            }
            @for d in &local.disagreements { p.warning { "Disagrees: " (d) } }
            @if let Some(analytics) = &local.analytics { (analytics_section(analytics)) }
            @if let Some(telemetry) = &local.telemetry { (telemetry_section(telemetry)) }
        }
    }
}

fn analytics_section(a: &AnalyticsCheck) -> Markup {
    html! {
        h3 #analytics { "Traffic analytics (access log → Firehose → access-log-transform → lattice-access-*)" }
        div.panels {
            table {
                caption { "Where every access-log line went" }
                tbody {
                    tr { th { "received by the stream" } td { (a.received) } }
                    tr { th { "indexed" } td { (a.indexed) } }
                    tr { th { "dropped by the transform" } td { (a.dropped) } }
                    tr { th { "processing-failed" } td { (a.processing_failed) } }
                    tr { th { "failed documents" } td { (a.failed_documents) } }
                    tr { th { "transform invocations" } td { (a.invocations) } }
                    tr { th { "documents in the indices" } td { (a.documents_in_index) } }
                    tr { th { "searchable after the last line" }
                         td { @if let Some(ms) = a.lag_ms { (ms) " ms" } @else { "not within the wait" } } }
                }
            }
            table {
                caption { "Documents per service and status, from the index" }
                thead { tr { th { "service" } th { "by status" } } }
                tbody {
                    @for (service, statuses) in &a.index_counts {
                        tr { th { (service) } td { @for (status, n) in statuses { span.pair { (status) ": " (n) } " " } } }
                    }
                }
            }
        }
        @for d in &a.disagreements { p.warning { "Disagrees: " (d) } }
    }
}

fn telemetry_section(t: &TelemetryCheck) -> Markup {
    let functions: std::collections::BTreeSet<&String> =
        t.invocations.keys().chain(t.reports.keys()).collect();
    html! {
        h3 #telemetry { "Lambda telemetry (Telemetry API → lambda-platform-*, lambda-function-*)" }
        div.panels {
            table {
                caption { "Invocations and their platform.report documents" }
                thead { tr { th { "function" } th { "invocations" } th { "reports" } } }
                tbody {
                    @for function in functions {
                        tr {
                            th { (function) }
                            td { @if let Some(n) = t.invocations.get(function) { (n) } @else { "-" } }
                            td { @if let Some(n) = t.reports.get(function) { (n) } @else { "-" } }
                        }
                    }
                }
            }
            table {
                caption { "Telemetry" }
                tbody {
                    tr { th { "reports with the invocation's trace id" } td { (t.reports_with_trace_id) } }
                    tr { th { "function log lines indexed / emitted" } td { (t.function_lines) " / " (t.function_lines_emitted) } }
                    tr { th { "billed ms" } td { (t.billed_ms) } }
                    @if let (Some(p50), Some(p99)) = (t.extension_ms_p50, t.extension_ms_p99) {
                        tr { th { "time the extension added, p50 / p99 ms" } td { (format!("{p50:.2}")) " / " (format!("{p99:.2}")) } }
                    }
                }
            }
        }
        @for d in &t.disagreements { p.warning { "Disagrees: " (d) } }
    }
}

fn lines_row(name: &str, lines: &CostLines) -> Markup {
    html! {
        tr {
            th { (name) }
            @for value in lines.values() { td { (usd(value)) } }
            td.total { (usd(lines.total())) }
        }
    }
}

fn cost_section(document: &CostDocument) -> Markup {
    let report = &document.report;
    html! {
        section #cost {
            h2 { "Cost" }
            p.headline {
                "Cost per order, end to end: " strong { (usd(report.per_order.total())) }
                " (" (report.orders) " orders in " (format!("{:.0}", report.window_seconds)) " s, "
                (report.region) " list prices as of " (report.prices_as_of) ", " (document.origin) " data)"
            }
            table.wide.money {
                caption { "By service and billing line" }
                thead { tr { th { "" } @for name in LINE_NAMES { th { (name) } } th { "total" } } }
                tbody {
                    @for row in &report.services { (lines_row(&row.service, &row.cost)) }
                    (lines_row("all services", &report.total))
                    (lines_row("per order", &report.per_order))
                }
            }
            div.panels {
                table {
                    caption { "Per service" }
                    thead { tr { th { "service" } th { "requests" } th { "p99 ms" } th { "invocations" } th { "billed GB-s" } th { "cold starts" } th { "per 1M requests" } } }
                    tbody {
                        @for row in &report.services {
                            tr {
                                th { (row.service) } td { (row.requests) }
                                td { @if let Some(p99) = row.p99_ms { (p99) } @else { "-" } }
                                td { (row.invocations) } td { (format!("{:.4}", row.billed_gb_seconds)) }
                                td { (format!("{:.1}", row.cold_start_percent)) " %" }
                                td { @if let Some(per) = &row.cost_per_million_requests { (usd(per.total())) } @else { "-" } }
                            }
                        }
                    }
                }
                table {
                    caption { "Per 1M orders at a steady rate" }
                    thead { tr { th { "orders/s" } th { "fixed" } th { "variable" } th { "total" } } }
                    tbody {
                        @for point in &report.projection {
                            tr {
                                th { (point.orders_per_second) } td { (usd(point.fixed)) } td { (usd(point.variable)) }
                                td { (usd(point.per_million_orders.total())) }
                            }
                        }
                    }
                }
            }
            @if !document.recommendations.is_empty() {
                h3 { "Recommendations" }
                ul {
                    @for r in &document.recommendations {
                        li {
                            @if let Some(service) = &r.service { strong { (service) } ": " }
                            (r.advice) " (saves " (usd(r.saving_low_usd_per_month)) " to " (usd(r.saving_high_usd_per_month)) " a month; " (r.source) ")"
                        }
                    }
                }
            }
            details {
                summary { "Assumptions and free tiers" }
                ul { @for a in &report.assumptions { li { (a) } } }
                ul { @for f in &report.free_tiers { li { (f.line) ": " (f.units_per_month) " a month free (worth " (usd(f.worth_usd_per_month)) ")" } } }
            }
            p.note {
                @let c = &document.report_cost;
                "Making this cost report cost: Logs Insights " (usd(c.logs_insights_usd)) " (" (c.logs_insights_bytes_scanned) " bytes scanned), X-Ray "
                (usd(c.xray_usd)) " (" (c.xray_traces_scanned) " traces scanned), Cost Explorer " (usd(c.cost_explorer_usd)) " (" (c.cost_explorer_requests) " requests)."
            }
        }
    }
}
