//! The HTML run report from a fixed report: the golden test of its page data, the page around it,
//! and `loadgen report --from … --html …` through the real binary.
//!
//! `fixtures/report-local-demo.json` is the JSON report of a real run of the README's demo
//! (`loadgen --local --json …`, see `fixtures/README.md`); `fixtures/page-data-local-demo.json`
//! is its page data, checked by hand against the report when it was written. Run with
//! `UPDATE_GOLDEN=1` to rewrite it after a deliberate change, and read the diff.

use std::path::{Path, PathBuf};
use std::process::Command;

use loadgen::html::{self, PageData};
use loadgen::report::Report;
use serde_json::Value;

const SCHEMA: &str = include_str!("../report.schema.json");

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn demo() -> Report {
    Report::read(&fixture("report-local-demo.json")).unwrap()
}

#[test]
fn the_fixture_is_a_valid_report() {
    let schema: Value = serde_json::from_str(SCHEMA).unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    let written: Value =
        serde_json::from_slice(&std::fs::read(fixture("report-local-demo.json")).unwrap()).unwrap();
    let errors: Vec<String> = validator
        .iter_errors(&written)
        .map(|e| format!("{e} at {}", e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "{errors:#?}");
    // It reads back whole, its histograms too: every measured request, the same percentiles.
    assert_eq!(serde_json::to_value(demo()).unwrap(), written);
    let report = demo();
    let (corrected, _) = loadgen::hdr::merge([&report.histograms]).unwrap();
    assert_eq!(corrected.len(), report.requests.measured);
    assert_eq!(
        loadgen::stats::percentiles(&corrected),
        report.latency.corrected
    );
}

#[test]
fn the_page_data_of_the_demo_report_is_the_golden_one() {
    let data = serde_json::to_value(PageData::of(&demo())).unwrap();
    let golden = fixture("page-data-local-demo.json");
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        let mut text = serde_json::to_string_pretty(&data).unwrap();
        text.push('\n');
        std::fs::write(&golden, text).unwrap();
    }
    let want: Value = serde_json::from_slice(&std::fs::read(&golden).unwrap()).unwrap();
    assert_eq!(data, want, "page data differs from {}", golden.display());
}

#[test]
fn the_page_embeds_its_data_and_draws_each_node_edge_and_series() {
    let report = demo();
    let page = html::page(&report);
    let data = PageData::of(&report);
    assert_eq!(
        html::embedded_data(&page).unwrap(),
        serde_json::to_value(&data).unwrap()
    );
    let map = data.map.as_ref().unwrap();
    assert_eq!(page.matches("<g class=\"node ").count(), map.nodes.len());
    assert_eq!(page.matches("<g class=\"edge ").count(), map.edges.len());
    for node in &map.nodes {
        assert_eq!(
            page.matches(&format!("data-node-id=\"{}\"", node.id))
                .count(),
            1,
            "{}",
            node.id
        );
    }
    for chart in &data.charts {
        let open = format!("<figure class=\"chart\" id=\"{}\">", chart.id);
        let start = page.find(&open).unwrap_or_else(|| panic!("{open}"));
        let figure = &page[start..start + page[start..].find("</figure>").unwrap()];
        assert!(!chart.series.is_empty(), "{}", chart.id);
        for series in &chart.series {
            // One polyline of the series' colour, a point per value.
            let stroke = format!("stroke=\"{}\"", series.color.to_uppercase());
            let lines: Vec<&str> = figure
                .split("<polyline")
                .skip(1)
                .filter(|p| p.contains(&stroke))
                .collect();
            assert_eq!(lines.len(), 1, "{} {}", chart.id, series.name);
            let points = lines[0].split("points=\"").nth(1).unwrap();
            let points = &points[..points.find('"').unwrap()];
            assert_eq!(
                points.split_whitespace().count(),
                series.points.len(),
                "{} {}",
                chart.id,
                series.name
            );
        }
    }
    // Self-contained: nothing the browser would fetch (the run's target URL is only text).
    for fetching in ["<link", " src=", " href=", "@import", "<iframe", "<object"] {
        assert!(!page.contains(fetching), "{fetching}");
    }
    let references: Vec<&str> = page
        .match_indices("url(")
        .filter_map(|(i, _)| page.get(i..i + 5))
        .filter(|u| *u != "url(#")
        .collect();
    assert!(references.is_empty(), "{references:?}");
}

#[test]
fn the_header_names_the_run_and_its_verdict() {
    let report = demo();
    let page = html::page(&report);
    assert!(page.contains(&format!("<title>loadgen run {}</title>", report.run_id)));
    assert!(page.contains(&format!("<dd>{}</dd>", report.target)));
    let data = PageData::of(&report);
    let checks: Vec<&str> = data.verdict.iter().map(|v| v.check).collect();
    assert_eq!(
        checks,
        ["traces complete", "access log agrees", "nothing lost"]
    );
    for v in &data.verdict {
        assert!(page.contains(&html::escape(&v.detail)), "{}", v.detail);
    }
    // The recorded demo passed all three.
    assert_eq!(page.matches("<li class=\"pass\">").count(), 3);
    assert_eq!(
        data.verdict[1].detail,
        format!(
            "order's {} access-log lines, status by status, equal loadgen's requests",
            report.local.as_ref().unwrap().access_log["order"].requests
        )
    );
}

#[test]
fn telemetry_incomplete_traces_and_a_missing_cost_report_are_shown() {
    let mut report = demo();
    let local = report.local.as_mut().unwrap();
    local.telemetry = Some(loadgen::report::TelemetryCheck {
        invocations: [("order".to_owned(), 7), ("payment".to_owned(), 5)].into(),
        reports: [("order".to_owned(), 7), ("inventory".to_owned(), 2)].into(),
        reports_with_trace_id: 9,
        function_lines: 40,
        function_lines_emitted: 41,
        extension_ms_p50: Some(0.25),
        extension_ms_p99: Some(1.5),
        billed_ms: 1234,
        complete: false,
        disagreements: vec!["payment: 5 invocations, no platform.report".into()],
    });
    report.inspection.as_mut().unwrap().incomplete = vec![loadgen::inspect::Incomplete {
        trace_id: "1-00000000-000000000000000000000001".into(),
        missing: vec!["payment".into(), "order > inventory".into()],
    }];
    report.cost = Some(loadgen::report::CostSection::Unavailable(
        "no Lambda report in the window".into(),
    ));
    let page = html::page(&report);
    // Every function either list names, with "-" where the other has none.
    assert!(
        page.contains("<tr><th>order</th><td>7</td><td>7</td></tr>"),
        "order row"
    );
    assert!(
        page.contains("<tr><th>payment</th><td>5</td><td>-</td></tr>"),
        "payment row"
    );
    assert!(
        page.contains("<tr><th>inventory</th><td>-</td><td>2</td></tr>"),
        "inventory row"
    );
    assert!(page.contains("<td>40 / 41</td>") && page.contains("<td>0.25 / 1.50</td>"));
    assert!(page.contains("Disagrees: payment: 5 invocations, no platform.report"));
    assert!(page.contains(
        "<tr class=\"bad\"><td><code>1-00000000-000000000000000000000001</code></td><td>payment, order &gt; inventory</td></tr>"
    ));
    assert!(page.contains("No cost report for this run: no Lambda report in the window"));
    let data = PageData::of(&report);
    assert_eq!(serde_json::to_value(data.verdict[2].state).unwrap(), "fail");
    assert!(
        data.verdict[2].detail.ends_with(
            "telemetry: order 7 invocations, 7 reports, payment 5 invocations, no reports"
        ),
        "{}",
        data.verdict[2].detail
    );
}

#[test]
fn a_file_that_is_not_a_whole_report_is_refused_with_the_reason() {
    let dir = std::env::temp_dir().join(format!("loadgen-read-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let write = |name: &str, text: &str| {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    };
    let error = |path: &Path| format!("{:#}", Report::read(path).unwrap_err());
    let text = write("text.json", "run run-1 (steady)");
    assert!(
        error(&text).ends_with("text.json is not JSON: expected value at line 1 column 1"),
        "{}",
        error(&text)
    );
    let other = write("other.json", r#"{"traces": []}"#);
    assert!(error(&other).ends_with("other.json is not a loadgen report (no schema)"));
    let truncated = write(
        "truncated.json",
        &format!(
            r#"{{"schema": "{}", "run_id": "r"}}"#,
            loadgen::report::SCHEMA
        ),
    );
    assert!(
        error(&truncated).contains(
            "truncated.json does not hold a whole loadgen-report/5 report: missing field"
        ),
        "{}",
        error(&truncated)
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn text_in_the_report_cannot_break_out_of_the_page() {
    let mut report = demo();
    report.run_id = "</script><script>alert(1)</script>".into();
    report.target = "<img src=x onerror=alert(1)>".into();
    let page = html::page(&report);
    assert!(!page.contains("<script>alert(1)"));
    assert!(!page.contains("<img src=x"));
    assert_eq!(page.matches("<script").count(), 1, "only the page data");
    let data = html::embedded_data(&page).unwrap();
    assert_eq!(data["run"]["run_id"], report.run_id.as_str());
}

#[test]
fn a_run_not_inspected_has_no_map_and_says_so() {
    let mut report = demo();
    report.inspection = None;
    let data = PageData::of(&report);
    assert!(data.map.is_none());
    assert_eq!(
        serde_json::to_value(&data.verdict[0]).unwrap(),
        serde_json::json!({"check": "traces complete", "state": "not_checked", "detail": "X-Ray was not inspected"})
    );
    let page = html::page(&report);
    assert!(!page.contains("id=\"service-map\""));
    assert_eq!(html::embedded_data(&page).unwrap()["map"], Value::Null);
}

#[test]
fn the_warm_up_is_shaded_on_the_per_second_charts() {
    let mut report = demo();
    for second in report.series.iter_mut().take(3) {
        second.warmup = true;
    }
    report.warmup_seconds = 3.0;
    let data = PageData::of(&report);
    for id in ["latency-over-time", "requests-over-time"] {
        let chart = data.charts.iter().find(|c| c.id == id).unwrap();
        assert_eq!(
            serde_json::to_value(&chart.bands).unwrap(),
            serde_json::json!([{"from": 0.0, "to": 3.0, "label": "warm-up (3 s, not in the statistics)"}]),
            "{id}"
        );
    }
    let page = html::page(&report);
    assert_eq!(
        page.matches("shaded: warm-up (3 s, not in the statistics)")
            .count(),
        2
    );
}

#[test]
fn a_lost_document_fails_the_verdict() {
    let mut report = demo();
    report.local.as_mut().unwrap().rejected_documents = 2;
    let data = PageData::of(&report);
    let lost = &data.verdict[2];
    assert_eq!(serde_json::to_value(lost.state).unwrap(), "fail");
    assert!(lost.detail.contains(", 2 refused,"), "{}", lost.detail);
}

#[test]
fn loadgen_report_writes_the_page_of_a_saved_report() {
    let dir = std::env::temp_dir().join(format!("loadgen-html-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let page = dir.join("page.html");
    let out = Command::new(env!("CARGO_BIN_EXE_loadgen"))
        .args(["report", "--from"])
        .arg(fixture("report-local-demo.json"))
        .arg("--html")
        .arg(&page)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.starts_with(&format!("run {}", demo().run_id)),
        "{stdout}"
    );
    assert!(stdout.contains("HTML report written to"), "{stdout}");
    assert_eq!(std::fs::read_to_string(&page).unwrap(), html::page(&demo()));

    // A report of another format version is refused, by name.
    let old = dir.join("old.json");
    let mut value: Value =
        serde_json::from_slice(&std::fs::read(fixture("report-local-demo.json")).unwrap()).unwrap();
    value["schema"] = "loadgen-report/2".into();
    std::fs::write(&old, value.to_string()).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_loadgen"))
        .args(["report", "--from"])
        .arg(&old)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "is a loadgen-report/2 report; this loadgen reads {}",
            loadgen::report::SCHEMA
        )),
        "{stderr}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn loadgen_inspect_refuses_html_rather_than_writing_nothing() {
    let out = Command::new(env!("CARGO_BIN_EXE_loadgen"))
        .args([
            "inspect",
            "--run-id",
            "run-1",
            "--html",
            "/nonexistent/page.html",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("--html draws a run's report, and `loadgen inspect` has only X-Ray's view"),
        "{stderr}"
    );
}
