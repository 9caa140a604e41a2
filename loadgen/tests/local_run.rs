//! loadgen end to end on the embedded local stack: a few hundred orders, every trace complete,
//! the access log agreeing with loadgen's counts, and the JSON report valid against its schema.

use clap::Parser;
use loadgen::cli::Cli;
use loadgen::map::NodeKind;
use loadgen::report::CostSection;
use serde_json::Value;

const SCHEMA: &str = include_str!("../report.schema.json");
/// The cost document's schema (`report.cost.report`).
const COST_SCHEMA: &str = include_str!("../../cost/report.schema.json");
/// AWS's X-Ray segment document schema v1.0.0 (provenance: shared/tests/fixtures/README.md).
const SEGMENT_SCHEMA: &str =
    include_str!("../../shared/tests/fixtures/xray-segmentdocument-schema-v1.0.0.json");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_local_run_has_complete_traces_and_agrees_with_the_access_log() {
    let json = std::env::temp_dir().join(format!("loadgen-report-{}.json", std::process::id()));
    let map = std::env::temp_dir().join(format!("loadgen-map-{}.mmd", std::process::id()));
    let page = std::env::temp_dir().join(format!("loadgen-page-{}.html", std::process::id()));
    let cli = Cli::try_parse_from([
        "loadgen",
        "--local",
        "--no-build",
        "--quiet",
        "--orders",
        "300",
        "--concurrency",
        "8",
        "--run-id",
        "e2e-run",
        "--scenario",
        "e2e",
        "--wait",
        "30s",
        "--json",
        json.to_str().unwrap(),
        "--map-file",
        map.to_str().unwrap(),
        "--html",
        page.to_str().unwrap(),
        "--raw-documents",
    ])
    .unwrap();
    let report = loadgen::app::run(cli.run).await.expect("the run completes");

    assert_eq!(report.requests.sent, 300);
    assert_eq!(report.requests.measured, 300);
    // The report's histograms, losslessly: the same requests and percentiles.
    let (corrected, uncorrected) = loadgen::hdr::merge([&report.histograms]).unwrap();
    assert_eq!((corrected.len(), uncorrected.len()), (300, 300));
    assert_eq!(
        loadgen::stats::percentiles(&corrected),
        report.latency.corrected
    );
    assert_eq!(
        loadgen::stats::percentiles(&uncorrected),
        report.latency.uncorrected
    );
    assert_eq!(report.statuses.values().sum::<u64>(), 300);
    let inspection = report.inspection.as_ref().expect("inspected");
    assert_eq!(inspection.traces_found, 300);
    assert_eq!(inspection.traces_checked, 300);
    assert_eq!(
        inspection.complete_percent, 100.0,
        "{:#?}",
        inspection.incomplete
    );
    assert_eq!(inspection.by_service["loadgen"].segments, 300);
    assert_eq!(inspection.by_service["order"].segments, 300);
    let edge = |from: &str, to: &str| {
        inspection
            .service_map
            .edges
            .iter()
            .find(|e| e.from == from && e.to == to)
            .map(|e| e.traffic.requests)
    };
    assert_eq!(edge("loadgen", "order"), Some(300));
    assert!(edge("order", "inventory").is_some_and(|n| n >= 300));
    // The tables are on the map, each behind the service that owns it.
    assert!(edge("inventory", "inventory (DynamoDB table)").is_some_and(|n| n >= 300));
    assert!(edge("payment", "payments (DynamoDB table)").is_some_and(|n| n >= 2 * 290));
    // Lambda's own sampled traces: client → order (AWS::Lambda) → order (AWS::Lambda::Function).
    let graph = &inspection.service_map;
    let node = |name: &str, kind: NodeKind| {
        let found: Vec<_> = graph
            .nodes
            .iter()
            .filter(|n| n.name == name && n.kind == kind)
            .collect();
        assert_eq!(found.len(), 1, "{name} {kind:?}: {:#?}", graph.nodes);
        found[0].id
    };
    let (facade, function) = (
        node("order", NodeKind::LambdaService),
        node("order", NodeKind::LambdaFunction),
    );
    let by_id = |from: i32, to: i32| {
        graph
            .edges
            .iter()
            .find(|e| e.from_id == from && e.to_id == to)
            .map(|e| e.traffic.requests)
    };
    // No node calls itself (the transform's own segment under Lambda's is one node).
    assert!(
        graph.edges.iter().all(|e| e.from_id != e.to_id),
        "{:#?}",
        graph.edges
    );
    let facade_traces =
        by_id(node("client", NodeKind::Client), facade).expect("client → AWS::Lambda");
    assert!(facade_traces >= 1);
    assert_eq!(by_id(facade, function), Some(facade_traces));
    assert_eq!(
        node("loadgen", NodeKind::Loadgen),
        graph
            .edges
            .iter()
            .find(|e| e.to_id == function && e.from == "loadgen")
            .unwrap()
            .from_id
    );
    // The slowest traces, slowest first, as X-Ray's summaries give them (no HTTP status: the
    // root, loadgen's segment, holds its call in a subsegment).
    assert_eq!(inspection.slowest.len(), 10);
    assert!(inspection
        .slowest
        .windows(2)
        .all(|w| w[0].duration_ms >= w[1].duration_ms));
    assert!(inspection
        .slowest
        .iter()
        .all(|t| t.duration_ms > 0.0 && t.response_time_ms.is_some()));
    // The series holds every request; the distribution climbs to all 300.
    assert_eq!(report.series.iter().map(|s| s.requests).sum::<u64>(), 300);
    assert!(report
        .series
        .iter()
        .all(|s| !s.warmup && s.p50_ms <= s.p99_ms));
    let last = report.latency.distribution.corrected.last().unwrap();
    assert_eq!((last.percentile, last.count), (100.0, 300));
    assert_eq!(last.value_ms, report.latency.corrected.max_ms);
    let local = report.local.as_ref().expect("local checks");
    assert!(local.agrees, "{:#?}", local.disagreements);
    assert_eq!(local.access_log["order"].requests, 300);
    assert_eq!(local.evicted_traces, 0);

    // The traffic analytics: one document per access-log line, with the log's counts.
    let analytics = local
        .analytics
        .as_ref()
        .expect("analytics are on with --local");
    assert!(analytics.agrees, "{:#?}", analytics.disagreements);
    let lines: u64 = local.access_log.values().map(|log| log.requests).sum();
    assert_eq!(
        (
            analytics.received,
            analytics.indexed,
            analytics.documents_in_index
        ),
        (lines, lines, lines),
        "{analytics:#?}"
    );
    assert_eq!(
        analytics.dropped + analytics.processing_failed + analytics.failed_documents,
        0
    );
    for (service, log) in &local.access_log {
        assert_eq!(analytics.index_counts[service], log.statuses, "{service}");
    }
    assert!(analytics.lag_ms.is_some(), "{analytics:#?}");

    // Every unit of stock accounted for, read back from the inventory table.
    let stock = local.stock.as_ref().expect("the stock check");
    let created = report.statuses.get("201").copied().unwrap_or(0);
    assert_eq!(
        (stock.skus, stock.created_orders, stock.reserved_by_run),
        (100, created, created),
        "{stock:#?}"
    );
    assert!(stock.imbalances.is_empty(), "{stock:#?}");
    assert_eq!(stock.failed_releases, 0);
    assert_eq!(
        stock.initial_units,
        stock.available_units + stock.held_units
    );
    assert!(stock.conserved);

    // What the run cost: every invocation joined to the run's traces, every request counted.
    let Some(CostSection::Report(cost)) = &report.cost else {
        panic!("no cost report: {:?}", report.cost);
    };
    assert_eq!(cost.run_id.as_deref(), Some("e2e-run"));
    let traces: u64 = cost.report.services.iter().map(|row| row.xray_traces).sum();
    assert_eq!(cost.traces, traces, "every recorded trace charged once");
    assert_eq!(
        cost.reports_outside_run, 0,
        "every REPORT joins a trace of the run"
    );
    assert_eq!(cost.report.orders, created);
    let row = |name: &str| {
        cost.report
            .services
            .iter()
            .find(|row| row.service == name)
            .unwrap()
    };
    for (service, log) in &local.access_log {
        assert_eq!(row(service).requests, log.requests, "{service}");
        assert_eq!(
            row(service).invocations,
            log.requests,
            "{service}: one invocation per Lattice request"
        );
    }
    assert!(
        row("order").xray_traces >= 300,
        "the orders' 300, and Lambda's own"
    );
    assert_eq!(
        row("order").cost.xray,
        row("order").xray_traces as f64 * 5e-6,
        "$5 per 1M traces"
    );
    assert!(
        row("payment").dynamodb_write_units >= created as f64,
        "{:?}",
        row("payment")
    );
    assert!(
        row("inventory").dynamodb_write_units >= created as f64,
        "{:?}",
        row("inventory")
    );
    assert!(row("order").billed_gb_seconds > 0.0 && row("order").cold_start_percent > 0.0);
    let cost_schema: Value = serde_json::from_str(COST_SCHEMA).unwrap();
    let cost_validator = jsonschema::validator_for(&cost_schema).unwrap();
    let written_cost: Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    let errors: Vec<String> = cost_validator
        .iter_errors(&written_cost["cost"]["report"])
        .map(|e| format!("{e} at {}", e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "{errors:#?}");

    // The JSON file is the report, and valid against the published schema.
    let written: Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    assert_eq!(written, serde_json::to_value(&report).unwrap());
    // ...and reads back whole, cost included (`loadgen report --from`).
    let read_back: loadgen::report::Report = serde_json::from_value(written.clone()).unwrap();
    assert_eq!(read_back, report);
    let schema: Value = serde_json::from_str(SCHEMA).unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    let errors: Vec<String> = validator
        .iter_errors(&written)
        .map(|e| e.to_string())
        .collect();
    assert!(errors.is_empty(), "{errors:#?}");
    // ...and the schema is strict enough to catch a report missing a field.
    let mut broken = written.clone();
    broken["requests"]
        .as_object_mut()
        .unwrap()
        .remove("dropped");
    assert!(!validator.is_valid(&broken));
    let mut broken = written.clone();
    broken["local"]["stock"]
        .as_object_mut()
        .unwrap()
        .remove("conserved");
    assert!(!validator.is_valid(&broken));
    // The HTML page is drawn from the same report.
    let html = std::fs::read_to_string(&page).unwrap();
    assert_eq!(
        loadgen::html::embedded_data(&html).unwrap(),
        serde_json::to_value(loadgen::html::PageData::of(&report)).unwrap()
    );
    let mermaid = std::fs::read_to_string(&map).unwrap();
    assert!(
        mermaid.starts_with("graph LR\n")
            && mermaid.contains(&format!("n{} -->", node("loadgen", NodeKind::Loadgen))),
        "{mermaid}"
    );

    // Every document the run produced - loadgen's, the three services', the Lambda facade's - as
    // the daemon received it, against AWS's segment document schema.
    let raw = std::env::temp_dir().join("loadgen-e2e-run/xray-documents.ndjson");
    let segment_schema: Value = serde_json::from_str(SEGMENT_SCHEMA).unwrap();
    let segment_validator = jsonschema::draft4::new(&segment_schema).unwrap();
    let mut by_origin = std::collections::BTreeMap::<String, u64>::new();
    let text = std::fs::read_to_string(&raw).unwrap();
    for line in text.lines() {
        let document: Value = serde_json::from_str(line).unwrap();
        let errors: Vec<String> = segment_validator
            .iter_errors(&document)
            .map(|e| format!("{} at {}", e, e.instance_path()))
            .collect();
        assert!(errors.is_empty(), "{errors:#?}\n{document}");
        let origin = format!(
            "{} {}",
            document["name"].as_str().unwrap_or("?"),
            document["origin"].as_str().unwrap_or("-")
        );
        *by_origin.entry(origin).or_default() += 1;
    }
    for (kind, at_least) in [
        ("loadgen -", 300),
        ("order AWS::Lambda::Function", 300),
        ("inventory AWS::Lambda::Function", 300),
        ("payment AWS::Lambda::Function", 290),
        ("order AWS::Lambda", 1),
    ] {
        assert!(
            by_origin.get(kind).is_some_and(|n| *n >= at_least),
            "{kind}: {by_origin:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invoking_the_order_function_directly_keeps_the_trace_whole() {
    let cli = Cli::try_parse_from([
        "loadgen",
        "--local",
        "--no-build",
        "--quiet",
        "--lambda",
        "order",
        "--no-simulation",
        "--orders",
        "60",
        "--concurrency",
        "4",
        "--run-id",
        "e2e-lambda",
        "--wait",
        "30s",
    ])
    .unwrap();
    let report = loadgen::app::run(cli.run).await.expect("the run completes");
    assert_eq!(report.target, "lambda:order");
    assert_eq!(report.statuses.get("201"), Some(&60), "{:?}", report.errors);
    let inspection = report.inspection.as_ref().expect("inspected");
    assert_eq!(inspection.traces_found, 60);
    assert_eq!(
        inspection.complete_percent, 100.0,
        "{:#?}",
        inspection.incomplete
    );
    // Not through Lattice: order's access log is empty, payment's and inventory's are not.
    let local = report.local.as_ref().unwrap();
    assert!(!local.access_log.contains_key("order"));
    assert_eq!(local.access_log["payment"].requests, 60);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn traces_evicted_by_a_full_store_are_reported_as_evicted() {
    let cli = Cli::try_parse_from([
        "loadgen",
        "--local",
        "--no-build",
        "--quiet",
        "--no-simulation",
        "--orders",
        "200",
        "--concurrency",
        "4",
        "--trace-capacity",
        "50",
        "--run-id",
        "e2e-evicted",
        "--wait",
        "5s",
    ])
    .unwrap();
    let report = loadgen::app::run(cli.run).await.expect("the run completes");
    let inspection = report.inspection.as_ref().unwrap();
    let local = report.local.as_ref().unwrap();
    // 200 orders' traces (and the facade's) through a store of 50: most are evicted whole...
    assert!(local.evicted_traces >= 150, "{local:?}");
    assert!(inspection.traces_found <= 50, "{inspection:?}");
    // ...and none of what is left is called incomplete; the report says why traces are missing.
    assert!(
        inspection.incomplete.is_empty(),
        "{:?}",
        inspection.incomplete
    );
    assert_eq!(inspection.complete_percent, 100.0);
    assert!(local.agrees, "{:?}", local.disagreements);
    let text = report.render();
    assert!(
        text.contains(&format!(
            "the local X-Ray store evicted {} traces (capacity reached): missing traces may be evicted, not incomplete",
            local.evicted_traces
        )),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_sampled_orders_are_traced_anywhere() {
    let cli = Cli::try_parse_from([
        "loadgen",
        "--local",
        "--no-build",
        "--quiet",
        "--no-simulation",
        "--orders",
        "120",
        "--concurrency",
        "4",
        "--sample-rate",
        "0.25",
        "--seed",
        "5",
        "--run-id",
        "e2e-sampled",
        "--wait",
        "30s",
        "--raw-documents",
    ])
    .unwrap();
    let report = loadgen::app::run(cli.run).await.expect("the run completes");
    // Which orders are traced is drawn from the seed: the report counts exactly those.
    let orders = loadgen::orders::OrderGenerator::new(5, "e2e-sampled").with_sample_rate(0.25);
    let traced = (0..120).filter(|&i| orders.order(i).traced).count() as u64;
    assert!((15..50).contains(&traced), "{traced}");
    assert_eq!(report.requests.traced, traced);
    // Every order is served; only the traced ones are in X-Ray, each complete.
    assert_eq!(
        report.statuses.get("201"),
        Some(&120),
        "{:?}",
        report.errors
    );
    let inspection = report.inspection.as_ref().expect("inspected");
    assert_eq!(inspection.traces_found, traced);
    assert_eq!(
        inspection.complete_percent, 100.0,
        "{:#?}",
        inspection.incomplete
    );
    // Sampled=0 reached every service: none recorded an untraced order. (The Lambda service's
    // own traces - a new trace per sampled invocation, by its own rule - are apart from these.)
    let raw = std::env::temp_dir().join("loadgen-e2e-sampled/xray-documents.ndjson");
    let documents: Vec<Value> = std::fs::read_to_string(&raw)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    let traces_of = |keep: &dyn Fn(&Value) -> bool| -> std::collections::BTreeSet<String> {
        documents
            .iter()
            .filter(|d| keep(d))
            .map(|d| d["trace_id"].as_str().unwrap().to_owned())
            .collect()
    };
    let loadgen_traces = traces_of(&|d| d["name"] == "loadgen");
    let lambda_service_traces = traces_of(&|d| d["origin"] == "AWS::Lambda");
    assert_eq!(loadgen_traces.len() as u64, traced);
    for service in ["order", "inventory", "payment"] {
        let in_order_traces = documents
            .iter()
            .filter(|d| d["name"] == service)
            .filter(|d| loadgen_traces.contains(d["trace_id"].as_str().unwrap()))
            .count() as u64;
        assert_eq!(in_order_traces, traced, "{service}");
    }
    let stray: Vec<&Value> = documents
        .iter()
        .filter(|d| {
            let trace = d["trace_id"].as_str().unwrap();
            !loadgen_traces.contains(trace) && !lambda_service_traces.contains(trace)
        })
        .collect();
    assert!(stray.is_empty(), "recorded for untraced orders: {stray:#?}");
    let local = report.local.as_ref().unwrap();
    assert_eq!(local.access_log["order"].requests, 120);
    assert!(local.agrees, "{:?}", local.disagreements);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_local_run_with_the_telemetry_extension_has_a_report_per_invocation() {
    let cli = Cli::try_parse_from([
        "loadgen",
        "--local",
        "--no-build",
        "--quiet",
        "--no-simulation",
        "--no-analytics",
        "--telemetry",
        "--orders",
        "40",
        "--concurrency",
        "4",
        "--run-id",
        "e2e-telemetry",
        "--wait",
        "30s",
    ])
    .unwrap();
    let report = loadgen::app::run(cli.run).await.expect("the run completes");
    assert_eq!(report.statuses.get("201"), Some(&40), "{:?}", report.errors);
    let telemetry = report
        .local
        .as_ref()
        .and_then(|local| local.telemetry.as_ref())
        .expect("the telemetry check ran");
    assert!(telemetry.complete, "{:#?}", telemetry.disagreements);
    // Each order: order, then inventory's reserve and payment's charge.
    for function in ["order", "payment", "inventory"] {
        assert_eq!(telemetry.invocations[function], 40, "{function}");
        assert_eq!(telemetry.reports[function], 40, "{function}");
    }
    assert_eq!(telemetry.reports_with_trace_id, 120);
    assert_eq!(telemetry.function_lines, telemetry.function_lines_emitted);
    assert!(
        telemetry.billed_ms >= 120,
        "at least 1 ms billed per invocation"
    );
    assert!(telemetry.extension_ms_p50.is_some() && telemetry.extension_ms_p99.is_some());
    let text = report.render();
    assert!(text.contains("Lambda telemetry"), "{text}");
}
