//! Records of the documented shapes (tests/fixtures) into documents: every field asserted.

mod common;

use std::sync::Arc;

use chrono::{TimeZone, Utc};
use common::*;
use opensearch_telemetry::counters::Counters;
use opensearch_telemetry::documents::{build, Built, Document};
use opensearch_telemetry::intake::Intake;
use opensearch_telemetry::pending::Pending;
use opensearch_telemetry::records::parse_body;
use serde_json::{json, Value};

fn now() -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 1, 10, 0, 0).unwrap()
}

/// The documents of one POST `body`, and the counters.
fn documents(body: &[u8]) -> (Vec<Document>, Arc<Counters>) {
    let counters = Arc::new(Counters::new());
    let intake = Intake::new(context(), Arc::clone(&counters));
    let mut pending = Pending::new(1000);
    intake.ingest(body, &mut pending, now());
    (pending.take_all(), counters)
}

fn only(body: &[u8]) -> (String, Value) {
    let (documents, _) = documents(body);
    assert_eq!(documents.len(), 1);
    (documents[0].index.clone(), documents[0].source_value())
}

fn batch_record(kind: &str) -> Vec<u8> {
    let records: Vec<Value> = serde_json::from_str(BATCH).unwrap();
    let index = records.iter().position(|r| r["type"] == kind).unwrap();
    post_of(BATCH, index)
}

fn raw(fixture: &str, index: usize) -> Value {
    let records: Vec<Value> = serde_json::from_str(fixture).unwrap();
    records[index]["record"].clone()
}

#[test]
fn a_report_lifts_its_metrics_trace_id_and_status() {
    let (index, source) = only(&batch_record("platform.report"));
    assert_eq!(index, "lambda-platform-2022-10-21");
    let records: Vec<Value> = serde_json::from_str(BATCH).unwrap();
    let record = records
        .iter()
        .find(|r| r["type"] == "platform.report")
        .unwrap()["record"]
        .clone();
    assert_eq!(
        source,
        json!({
            "@timestamp": "2022-10-21T14:05:05.766Z",
            "type": "platform.report",
            "function": "order",
            "functionVersion": "$LATEST",
            "requestId": "459921b5-681c-4a96-beb0-81e0aa586026",
            "traceId": "1-6352a70e-1e2c502e358361800241fd45",
            "status": "success",
            "durationMs": 2599.4,
            "billedDurationMs": 2600,
            "memorySizeMB": 128,
            "maxMemoryUsedMB": 94,
            "initDurationMs": 549.04,
            "record": record
        })
    );
}

#[test]
fn a_start_carries_its_version_and_trace_id() {
    let (_, source) = only(&batch_record("platform.start"));
    assert_eq!(source["functionVersion"], "$LATEST");
    assert_eq!(source["traceId"], "1-6352a70e-1e2c502e358361800241fd45");
    assert_eq!(source["requestId"], "459921b5-681c-4a96-beb0-81e0aa586026");
    assert_eq!(source["@timestamp"], "2022-10-21T14:05:03.165Z");
}

#[test]
fn runtime_done_and_init_records_lift_their_fields() {
    let (_, done) = only(&batch_record("platform.runtimeDone"));
    assert_eq!(done["status"], "success");
    assert_eq!(done["durationMs"], json!(2599.0));
    assert_eq!(done["producedBytes"], json!(8));
    assert_eq!(done["traceId"], "1-6352a70e-1e2c502e358361800241fd45");
    let (_, start) = only(&batch_record("platform.initStart"));
    assert_eq!(
        (
            start["initializationType"].as_str(),
            start["phase"].as_str()
        ),
        (Some("on-demand"), Some("init"))
    );
    assert_eq!(start["@timestamp"], "2022-10-19T13:52:15.636Z");
    let (_, runtime_done) = only(&batch_record("platform.initRuntimeDone"));
    assert_eq!(runtime_done["status"], "success");
    let (_, report) = only(&batch_record("platform.initReport"));
    assert_eq!(report["durationMs"], json!(500.0));
    assert_eq!(report["phase"], "init");
    assert!(report.get("requestId").is_none());
}

#[test]
fn logs_dropped_counts_are_lifted() {
    let (index, source) = only(LOGS_DROPPED.as_bytes());
    assert_eq!(index, "lambda-platform-2022-10-12");
    assert_eq!(source["droppedBytes"], json!(12345));
    assert_eq!(source["droppedRecords"], json!(123));
    assert_eq!(
        source["reason"],
        "Some logs were dropped because the downstream consumer is slower than the logs production rate"
    );
    assert_eq!(source["record"], raw(LOGS_DROPPED, 0));
}

#[test]
fn a_json_function_line_gives_json_level_and_request_id() {
    let (index, source) = only(&post_of(JSON_LOGS, 1));
    assert_eq!(index, "lambda-function-2023-11-28");
    let line = raw(JSON_LOGS, 1).as_str().unwrap().to_owned();
    assert_eq!(
        source,
        json!({
            "@timestamp": "2023-11-28T12:00:09.124Z",
            "type": "function",
            "function": "order",
            "message": line,
            "level": "WARN",
            "requestId": "79b4f56e-95b1-4643-9700-2807f4e68189",
            "json": serde_json::from_str::<Value>(&line).unwrap()
        })
    );
}

#[test]
fn the_json_log_format_object_gives_its_message_and_json() {
    let (_, source) = only(&post_of(JSON_LOGS, 0));
    assert_eq!(source["message"], "reserved 3 items");
    assert_eq!(source["level"], "INFO");
    assert_eq!(source["requestId"], "79b4f56e-95b1-4643-9700-2807f4e68189");
    assert_eq!(source["json"], raw(JSON_LOGS, 0));
}

#[test]
fn a_text_line_is_kept_as_printed_without_json() {
    let (_, source) = only(&post_of(JSON_LOGS, 2));
    assert_eq!(
        source,
        json!({
            "@timestamp": "2023-11-28T12:00:09.125Z",
            "type": "function",
            "function": "order",
            "message": "2023-11-28T12:00:09.125Z\t79b4f56e-95b1-4643-9700-2807f4e68189\tINFO\tplain text line\n"
        })
    );
}

#[test]
fn an_unknown_type_passes_through_unchanged() {
    let (index, source) = only(RESTORE_START.as_bytes());
    assert_eq!(index, "lambda-platform-2022-10-12");
    assert_eq!(source["type"], "platform.restoreStart");
    assert_eq!(source["record"], raw(RESTORE_START, 0));
    let future = post(&[
        json!({"time": "2026-12-01T09:00:00Z", "type": "telemetry.future", "record": "opaque"}),
    ]);
    let (index, source) = only(&future);
    assert_eq!(index, "lambda-platform-2026-12-01");
    assert_eq!(
        source,
        json!({"@timestamp": "2026-12-01T09:00:00Z", "type": "telemetry.future", "function": "order", "record": "opaque"})
    );
}

#[test]
fn every_record_of_the_documented_batch_is_one_document_in_its_index() {
    let (documents, counters) = documents(BATCH.as_bytes());
    let records: Vec<Value> = serde_json::from_str(BATCH).unwrap();
    assert_eq!(documents.len(), records.len());
    for (document, record) in documents.iter().zip(&records) {
        let source = document.source_value();
        assert_eq!(source["type"], record["type"]);
        let prefix = match record["type"].as_str().unwrap() {
            "function" => "lambda-function-",
            "extension" => "lambda-extension-",
            _ => "lambda-platform-",
        };
        assert!(document.index.starts_with(prefix), "{}", document.index);
    }
    // The crate's `record: true` examples: not text, kept as their JSON.
    assert_eq!(documents[1].source_value()["message"], "true");
    let summary = counters.summary();
    assert_eq!(
        (summary.events, summary.malformed, summary.own_lines),
        (12, 0, 0)
    );
}

#[test]
fn our_own_extension_lines_are_dropped_and_counted() {
    let body = post(&[
        json!({"time": "2026-12-01T10:00:00Z", "type": "extension", "record": "[opensearch-telemetry] summary: posts=1"}),
        json!({"time": "2026-12-01T10:00:00Z", "type": "extension", "record": {"message": "[opensearch-telemetry] x"}}),
        json!({"time": "2026-12-01T10:00:00Z", "type": "extension", "record": "another extension [opensearch-telemetry]"}),
        json!({"time": "2026-12-01T10:00:00Z", "type": "function", "record": "[opensearch-telemetry] printed by the function"}),
    ]);
    let (documents, counters) = documents(&body);
    assert_eq!(documents.len(), 2);
    assert_eq!(
        documents[0].source_value()["message"],
        "another extension [opensearch-telemetry]"
    );
    assert_eq!(documents[1].source_value()["type"], "function");
    assert_eq!(counters.summary().own_lines, 2);
}

#[test]
fn the_daily_index_is_the_utc_day_of_the_record() {
    let body =
        post(&[json!({"time": "2026-12-02T01:30:00+02:00", "type": "function", "record": "x"})]);
    let (index, source) = only(&body);
    assert_eq!(index, "lambda-function-2026-12-01");
    assert_eq!(source["@timestamp"], "2026-12-01T23:30:00Z");
}

#[test]
fn a_missing_or_invalid_time_is_the_arrival_time() {
    let body = post(&[
        json!({"time": "yesterday", "type": "function", "record": "x"}),
        json!({"type": "function", "record": "y"}),
    ]);
    let (documents, _) = documents(&body);
    for document in documents {
        assert_eq!(document.index, "lambda-function-2026-12-01");
        assert_eq!(
            document.source_value()["@timestamp"],
            "2026-12-01T10:00:00Z"
        );
    }
}

#[test]
fn a_body_that_is_not_an_array_is_counted_malformed() {
    let (documents, counters) = documents(b"{\"type\":\"function\"}");
    assert!(documents.is_empty());
    assert_eq!(counters.summary().malformed, 1);
}

#[test]
fn ids_are_deterministic_across_deliveries_and_distinct_across_environments() {
    let (first, _) = documents(BATCH.as_bytes());
    let (again, _) = documents(BATCH.as_bytes());
    let ids = |docs: &[Document]| docs.iter().map(|d| d.id.clone()).collect::<Vec<_>>();
    assert_eq!(ids(&first), ids(&again));
    let unique: std::collections::HashSet<_> = ids(&first).into_iter().collect();
    assert_eq!(unique.len(), first.len());
    let parsed = parse_body(BATCH.as_bytes()).unwrap();
    let mut other = context();
    other.extension_id = "another-environment".into();
    let record = parsed.records[0].clone();
    let Built::Document(elsewhere) = build(&other, record, "x".into(), now()) else {
        panic!()
    };
    assert_eq!(elsewhere.id, "x", "build keeps the id it is given");
    let mut minted =
        opensearch_telemetry::ids::IdMinter::new("another-environment", BATCH.as_bytes());
    assert_ne!(minted.mint(&parsed.records[0]), first[0].id);
}
