//! The golden test: the cost document of a recorded local run (`fixtures/local-run/`: 12 orders
//! of `loadgen --local --orders 12 --rate 10 --no-analytics --raw-documents --run-id golden-2`,
//! its access log, its functions' log groups and every X-Ray segment document the daemon took),
//! with every figure recomputed here from the raw records and the price table's formulas, not
//! copied from the output.

use std::collections::BTreeMap;
use std::path::PathBuf;

use async_trait::async_trait;
use lattice_cost::document::compose;
use lattice_cost::prices::{self, PriceTable};
use lattice_cost::sources::local::LocalRecords;
use lattice_cost::sources::{
    gather, ServiceMapping, SourceError, Sources, StackMap, TraceCount, TraceSource, Window,
};
use serde_json::Value;

fn fixture(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/local-run")
        .join(path)
}

fn read(path: &str) -> String {
    std::fs::read_to_string(fixture(path)).unwrap()
}

/// The recorded run: its window, run id and services.
fn recorded_run() -> (Window, String, StackMap) {
    let run: Value = serde_json::from_str(&read("run.json")).unwrap();
    let time = |field: &str| {
        chrono::DateTime::parse_from_rfc3339(run["window"][field].as_str().unwrap())
            .unwrap()
            .with_timezone(&chrono::Utc)
    };
    let services: Vec<ServiceMapping> = serde_json::from_value(run["services"].clone()).unwrap();
    (
        Window::new(time("start"), time("end")).unwrap(),
        run["run_id"].as_str().unwrap().to_owned(),
        StackMap { services },
    )
}

/// The recorded run's access log and log groups, with `traces`, asked about `window` for
/// `run_id`.
async fn gather_recorded(
    stack: &StackMap,
    window: &Window,
    run_id: &str,
    traces: &dyn TraceSource,
) -> Result<lattice_cost::sources::Gathered, SourceError> {
    let records = LocalRecords {
        access_log: fixture("access-log.jsonl"),
        lambda_logs: fixture("lambda-logs"),
    };
    let sources = Sources {
        metrics: &records,
        access_log: &records,
        lambda: &records,
        traces,
        dynamodb: &records,
    };
    gather(&sources, stack, window, Some(run_id)).await
}

/// X-Ray as recorded: the segment documents the local daemon accepted.
struct RecordedXray {
    documents: Vec<Value>,
}

impl RecordedXray {
    fn load() -> Self {
        let documents = read("xray-documents.ndjson")
            .lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect();
        Self { documents }
    }
}

/// Each (sub)segment of `document`, depth first.
fn walk<'a>(document: &'a Value, out: &mut Vec<&'a Value>) {
    out.push(document);
    for sub in document["subsegments"].as_array().into_iter().flatten() {
        walk(sub, out);
    }
}

#[async_trait]
impl TraceSource for RecordedXray {
    async fn traces(
        &self,
        _stack: &StackMap,
        _window: &Window,
        run_id: Option<&str>,
    ) -> Result<TraceCount, SourceError> {
        let mut count = TraceCount::default();
        let mut all = Vec::new();
        for document in &self.documents {
            walk(document, &mut all);
        }
        for segment in &all {
            if segment["annotations"]["run_id"].as_str() == run_id {
                count
                    .trace_ids
                    .insert(segment["trace_id"].as_str().unwrap().to_owned());
            }
        }
        for document in &self.documents {
            let in_run = document["trace_id"]
                .as_str()
                .is_some_and(|id| count.trace_ids.contains(id));
            if let (true, Some(header)) =
                (in_run, document["metadata"]["lambda"]["trace_id"].as_str())
            {
                let root = header
                    .split(';')
                    .find_map(|p| p.strip_prefix("Root="))
                    .unwrap();
                count.lambda_trace_ids.insert(root.to_owned());
            }
        }
        count.traces_scanned = count.trace_ids.len() as u64;
        Ok(count)
    }
}

/// What the raw access log says of one service, counted here.
#[derive(Default)]
struct AccessCounts {
    durations: Vec<u64>,
    classes: [u64; 6],
    bytes_in: u64,
    bytes_out: u64,
    log_bytes: u64,
}

fn access_counts(stack: &StackMap) -> BTreeMap<String, AccessCounts> {
    let mut counts: BTreeMap<String, AccessCounts> = BTreeMap::new();
    for line in read("access-log.jsonl").lines() {
        let entry: Value = serde_json::from_str(line).unwrap();
        let service = stack.by_arn(entry["serviceArn"].as_str().unwrap()).unwrap();
        let c = counts.entry(service.name.clone()).or_default();
        c.durations.push(entry["duration"].as_u64().unwrap());
        c.classes[(entry["responseCode"].as_u64().unwrap() / 100) as usize] += 1;
        c.bytes_in += entry["bytesReceived"].as_u64().unwrap();
        c.bytes_out += entry["bytesSent"].as_u64().unwrap();
        c.log_bytes += line.len() as u64;
    }
    counts
}

/// What one function's log group says, counted here: (billed ms × MB per invocation, log
/// bytes, cold starts, peak MB, DynamoDB read and write units).
#[derive(Default)]
struct LogCounts {
    invocations: Vec<(u64, u64)>,
    log_bytes: u64,
    cold: u64,
    peak_mb: u64,
    read_units: f64,
    write_units: f64,
    /// The trace ids of the `XRAY … Sampled: true` lines: Lambda's own recorded traces.
    sampled_traces: std::collections::BTreeSet<String>,
}

fn field_number(report: &str, name: &str, unit: &str) -> Option<u64> {
    let rest = report.split(&format!("{name}: ")).nth(1)?;
    let value = rest.split(unit).next()?.trim();
    value.parse::<f64>().ok().map(|v| v as u64)
}

/// The function's events inside `window` (after it, the stack shut the functions down: their
/// last lines are not the run's).
fn log_counts(function: &str, window: &Window) -> LogCounts {
    let mut c = LogCounts::default();
    let (start, end) = (
        window.start.timestamp_millis(),
        window.end.timestamp_millis(),
    );
    for line in read(&format!("lambda-logs/{function}.jsonl")).lines() {
        let event: Value = serde_json::from_str(line).unwrap();
        if !(start..end).contains(&event["timestamp"].as_i64().unwrap()) {
            continue;
        }
        let message = event["message"].as_str().unwrap();
        c.log_bytes += message.len() as u64;
        if message.starts_with("REPORT ") {
            let billed = field_number(message, "Billed Duration", " ms").unwrap();
            let memory = field_number(message, "Memory Size", " MB").unwrap();
            c.invocations.push((billed, memory));
            c.cold += u64::from(message.contains("Init Duration"));
            c.peak_mb = c
                .peak_mb
                .max(field_number(message, "Max Memory Used", " MB").unwrap());
            if message.contains("\tSampled: true") {
                let xray = message.split("XRAY TraceId: ").nth(1).unwrap();
                let id = xray.split('\t').next().unwrap();
                c.sampled_traces.insert(id.to_owned());
            }
        }
        if message.contains("dynamodb consumed capacity") {
            let line: Value = serde_json::from_str(message).unwrap();
            c.read_units += line["fields"]["read_units"].as_f64().unwrap();
            c.write_units += line["fields"]["write_units"].as_f64().unwrap();
        }
    }
    c
}

/// The nearest-rank percentile of `values`.
fn nearest_rank(values: &[u64], quantile: f64) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_unstable();
    let rank = (quantile * sorted.len() as f64).ceil() as usize;
    sorted[rank.max(1) - 1] as f64
}

fn close(actual: f64, expected: f64, what: &str) {
    let tolerance = 1e-12_f64.max(expected.abs() * 1e-9);
    assert!(
        (actual - expected).abs() <= tolerance,
        "{what}: report {actual}, recomputed {expected}"
    );
}

#[tokio::test]
async fn every_figure_of_a_recorded_local_run_is_recomputed_from_the_raw_records() {
    let (window, run_id, stack) = recorded_run();
    let xray = RecordedXray::load();
    let gathered = gather_recorded(&stack, &window, &run_id, &xray)
        .await
        .unwrap();
    let table = PriceTable::built_in();
    let document = compose(&gathered, &stack, (&window, Some(&run_id)), &table, "local").unwrap();
    let report = &document.report;
    // A saved report reads back whole (`loadgen report --from` draws its cost from it).
    let written = serde_json::to_string(&document).unwrap();
    let read_back: lattice_cost::document::CostDocument = serde_json::from_str(&written).unwrap();
    assert_eq!(read_back, document);

    let price = |line: &str| table.usd(line).unwrap();
    let access = access_counts(&stack);
    let hours = window.seconds() / 3600.0;
    let orders = access["order"].classes[2];
    assert_eq!(orders, 12, "the run's 12 orders were all created");
    assert_eq!(report.orders, orders);
    let own_traces: u64 = stack
        .services
        .iter()
        .map(|s| log_counts(&s.function_name, &window).sampled_traces.len() as u64)
        .sum();
    assert!(
        own_traces > 0,
        "the recorded run has Lambda's own sampled traces"
    );
    assert_eq!(
        document.traces,
        12 + own_traces,
        "one trace per order, and Lambda's own sampled traces"
    );
    assert_eq!(
        document.reports_outside_run, 0,
        "every invocation joins a trace of the run"
    );

    let mut total = 0.0;
    for row in &report.services {
        let a = &access[&row.service];
        let l = log_counts(&row.service, &window);
        let requests = a.durations.len() as u64;
        assert_eq!(row.requests, requests, "{}", row.service);
        assert_eq!((row.bytes_in, row.bytes_out), (a.bytes_in, a.bytes_out));
        for (quantile, value) in [(0.5, row.p50_ms), (0.9, row.p90_ms), (0.99, row.p99_ms)] {
            let expected = nearest_rank(&a.durations, quantile);
            // HDR keeps three significant digits: the value's bucket, within 0.1 %.
            let value = value.unwrap();
            assert!(
                (value - expected).abs() <= expected / 1000.0 + 1.0,
                "{} p{quantile}: {value} vs {expected}",
                row.service
            );
        }
        close(
            row.status_2xx_percent,
            a.classes[2] as f64 * 100.0 / requests as f64,
            "2xx %",
        );
        close(
            row.status_4xx_percent,
            a.classes[4] as f64 * 100.0 / requests as f64,
            "4xx %",
        );
        close(
            row.status_5xx_percent,
            a.classes[5] as f64 * 100.0 / requests as f64,
            "5xx %",
        );
        assert_eq!(
            row.invocations,
            l.invocations.len() as u64,
            "{}",
            row.service
        );
        let gb_seconds: f64 = l
            .invocations
            .iter()
            .map(|&(ms, mb)| ms as f64 / 1000.0 * mb as f64 / 1024.0)
            .sum();
        close(row.billed_gb_seconds, gb_seconds, "GB-s");
        close(
            row.cold_start_percent,
            l.cold as f64 * 100.0 / l.invocations.len() as f64,
            "cold %",
        );
        assert_eq!(u64::from(row.max_memory_used_mb), l.peak_mb);
        assert_eq!(row.memory_mb, 256, "the deployment's memory");
        close(row.dynamodb_read_units, l.read_units, "RRU");
        close(row.dynamodb_write_units, l.write_units, "WRU");

        let cost = &row.cost;
        close(
            cost.lambda_requests,
            l.invocations.len() as f64 * price(prices::LAMBDA_REQUESTS),
            "Lambda requests",
        );
        close(
            cost.lambda_compute,
            gb_seconds * price(prices::LAMBDA_ARM64),
            "Lambda compute",
        );
        close(
            cost.lattice_requests,
            0.0,
            "under 300,000 an hour: no request fee",
        );
        close(
            cost.lattice_data,
            (a.bytes_in + a.bytes_out) as f64 / 1e9 * price(prices::LATTICE_DATA),
            "Lattice GB",
        );
        close(
            cost.lattice_service_hours,
            hours * price(prices::LATTICE_SERVICE_HOUR),
            "service-hours",
        );
        let orders_traces = if row.service == "order" { 12 } else { 0 };
        let traces = orders_traces + l.sampled_traces.len() as u64;
        assert_eq!(row.xray_traces, traces, "{}", row.service);
        close(
            cost.xray,
            traces as f64 * price(prices::XRAY_RECORDED),
            "X-Ray: the orders' on the entry service, Lambda's own on each function",
        );
        close(
            cost.access_logs,
            a.log_bytes as f64 / 1e9 * price(prices::LOGS_VENDED),
            "access logs",
        );
        close(
            cost.lambda_logs,
            l.log_bytes as f64 / 1e9 * price(prices::LOGS_VENDED),
            "Lambda logs",
        );
        close(
            cost.dynamodb,
            l.write_units * price(prices::DYNAMODB_WRITE)
                + l.read_units * price(prices::DYNAMODB_READ),
            "DynamoDB",
        );
        let per_million = row.cost_per_million_requests.unwrap();
        close(
            per_million.total(),
            cost.total() * 1e6 / requests as f64,
            "per 1M requests",
        );
        total += cost.total();
    }
    assert!(
        report.services.iter().all(|row| row.invocations == 12),
        "each service was invoked once per order"
    );
    assert!(
        report
            .services
            .iter()
            .filter(|row| row.dynamodb_write_units > 0.0)
            .count()
            == 2,
        "payment and inventory wrote to their tables"
    );
    close(report.total.total(), total, "window total");
    close(
        report.per_order.total(),
        total / orders as f64,
        "cost per order",
    );

    // The projection: at r orders/s, each service's hour is shared by 3600·r orders; the
    // variable part is the per-order cost without service-hours, plus each service's request fee
    // above its free 300,000 an hour (one request per order to each service here).
    let service_hours = 3.0 * hours * price(prices::LATTICE_SERVICE_HOUR);
    let per_order_variable = (total - service_hours) / orders as f64;
    for point in &report.projection {
        let rate = point.orders_per_second;
        let fixed = 3.0 * price(prices::LATTICE_SERVICE_HOUR) / (3600.0 * rate) * 1e6;
        close(point.fixed, fixed, "fixed part of the projection");
        close(
            point.per_million_orders.lattice_service_hours,
            fixed,
            "service-hours line",
        );
        let billable_share = ((3600.0 * rate - 300_000.0) / (3600.0 * rate)).max(0.0);
        let request_fee = 3.0 * billable_share * price(prices::LATTICE_REQUESTS) * 1e6;
        close(
            point.variable,
            per_order_variable * 1e6 + request_fee,
            "variable part",
        );
    }
    assert_eq!(document.reports_outside_run, 0);
    assert_eq!(document.report_cost.xray_traces_scanned, 12);
}

#[tokio::test]
async fn a_window_with_nothing_in_it_says_which_source_is_empty() {
    let (window, run_id, stack) = recorded_run();
    let xray = RecordedXray::load();
    let day_before = Window::new(
        window.start - chrono::Duration::days(1),
        window.end - chrono::Duration::days(1),
    )
    .unwrap();
    let error = gather_recorded(&stack, &day_before, &run_id, &xray)
        .await
        .unwrap_err();
    assert!(
        error.to_string().starts_with("the Lattice metrics has nothing in the window 2026-12-01T15:51:34.121Z to 2026-12-01T15:51:36.876Z"),
        "{error}"
    );
}

#[tokio::test]
async fn an_unknown_service_in_the_access_log_is_named() {
    let (window, run_id, mut stack) = recorded_run();
    stack.services.retain(|s| s.name != "payment");
    let xray = RecordedXray::load();
    let error = gather_recorded(&stack, &window, &run_id, &xray)
        .await
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        "the access log names a service the report does not know: \
         arn:aws:vpc-lattice:us-east-1:123456789012:service/svc-0fb09f6d2575fe3ba \
         (known: order, inventory); pass its name with the others, or filter the log to the \
         stack's services"
    );
}

/// The recorded X-Ray, changed by `change` (a run traced otherwise).
struct Changed<F: Fn(&mut TraceCount) + Send + Sync> {
    recorded: RecordedXray,
    change: F,
}

#[async_trait]
impl<F: Fn(&mut TraceCount) + Send + Sync> TraceSource for Changed<F> {
    async fn traces(
        &self,
        stack: &StackMap,
        window: &Window,
        run_id: Option<&str>,
    ) -> Result<TraceCount, SourceError> {
        let mut count = self.recorded.traces(stack, window, run_id).await?;
        (self.change)(&mut count);
        Ok(count)
    }
}

async fn gathered_with(
    change: impl Fn(&mut TraceCount) + Send + Sync,
) -> Result<lattice_cost::sources::Gathered, SourceError> {
    let (window, run_id, stack) = recorded_run();
    let xray = Changed {
        recorded: RecordedXray::load(),
        change,
    };
    gather_recorded(&stack, &window, &run_id, &xray).await
}

#[tokio::test]
async fn a_run_not_fully_traced_counts_the_windows_invocations_for_it() {
    // Half the orders untraced (as with --sample-rate 0.5): their invocations cannot be joined.
    let gathered = gathered_with(|count| {
        let kept: Vec<String> = count.trace_ids.iter().take(6).cloned().collect();
        count.trace_ids = kept.into_iter().collect();
        count.lambda_trace_ids.clear();
    })
    .await
    .unwrap();
    assert_eq!(gathered.reports_outside_run, 0);
    for (service, measured) in &gathered.measured {
        assert_eq!(measured.usage.invocations, 12, "{service}");
    }
}

#[tokio::test]
async fn a_fully_traced_run_whose_invocations_join_none_of_its_traces_is_an_error() {
    let error = gathered_with(|count| count.lambda_trace_ids.clear())
        .await
        .unwrap_err();
    assert!(
        error
            .to_string()
            .starts_with("no Lambda report in the window 2026-12-02T15:51:34.121Z to 2026-12-02T15:51:36.876Z joins a trace of run golden-2"),
        "{error}"
    );
}
