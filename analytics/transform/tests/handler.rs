//! The invocation around the batch: its X-Ray segment, and the test-only contract breaks.

use std::io::Write as _;

use access_log_transform::handler::Transform;
use access_log_transform::{Fault, TransformConfig};
use aws_lambda_events::firehose::{KinesisFirehoseEvent, KinesisFirehoseEventRecord};
use lattice_xray::testing::fresh_root;
use lattice_xray::{MemorySink, Telemetry};
use serde_json::{json, Value};

const ENTRY: &str = include_str!("fixtures/lattice-access-log-entry.json");
const CONTROL: &str = include_str!("fixtures/cloudwatch-logs-control-message.json");

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

fn event() -> KinesisFirehoseEvent {
    let datas = [
        ENTRY.trim().as_bytes().to_vec(),
        gzip(CONTROL.as_bytes()),
        b"garbage".to_vec(),
        ENTRY.trim().as_bytes().to_vec(),
    ];
    let mut event = KinesisFirehoseEvent::default();
    event.invocation_id = Some("inv-1".into());
    event.records = datas
        .into_iter()
        .enumerate()
        .map(|(i, data)| {
            let mut record = KinesisFirehoseEventRecord::default();
            record.record_id = Some(format!("r{i}"));
            record.data.0 = data;
            record
        })
        .collect();
    event
}

fn run_under(root: &str, fault: Option<Fault>) -> (Value, Vec<Value>) {
    let sink = MemorySink::default();
    let telemetry = Telemetry::with_sink("access-log-transform", sink.clone(), 1.0);
    let config = TransformConfig {
        fault,
        ..TransformConfig::default()
    };
    let response = Transform::new(config, telemetry).handle(
        &event(),
        Some(&format!("Root={root};Parent=53995c3f42cd8ad8;Sampled=1")),
    );
    (response, sink.documents())
}

fn run(fault: Option<Fault>) -> (Value, Vec<Value>) {
    run_under(&fresh_root().to_string(), fault)
}

fn ids_and_results(response: &Value) -> Vec<(String, String)> {
    response["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["recordId"].as_str().unwrap().to_owned(),
                r["result"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[test]
fn each_batch_has_one_segment_under_lambda_s_with_its_counts() {
    let root = fresh_root().to_string();
    let (response, documents) = run_under(&root, None);
    assert_eq!(
        ids_and_results(&response),
        [
            ("r0", "Ok"),
            ("r1", "Dropped"),
            ("r2", "ProcessingFailed"),
            ("r3", "Ok")
        ]
        .map(|(id, result)| (id.to_owned(), result.to_owned()))
    );
    assert_eq!(documents.len(), 1);
    let segment = &documents[0];
    assert_eq!(segment["name"], "access-log-transform");
    assert_eq!(segment["trace_id"], root.as_str());
    assert_eq!(segment["parent_id"], "53995c3f42cd8ad8");
    assert_eq!(
        segment["annotations"],
        json!({"records": 4, "ok": 2, "dropped": 1, "failed": 1})
    );
    let firehose = &segment["metadata"]["firehose"];
    assert_eq!(firehose["invocationId"], "inv-1");
    assert_eq!(
        firehose["failures"],
        json!([{"recordId": "r2", "reason": "neither a JSON access-log entry nor a gzip CloudWatch Logs envelope"}])
    );
    assert!(segment.get("fault").is_none(), "{segment}");
}

#[test]
fn the_test_only_faults_break_the_contract_as_named() {
    let ids = |response: &Value| -> Vec<String> {
        ids_and_results(response)
            .into_iter()
            .map(|(id, _)| id)
            .collect()
    };
    let (omitted, _) = run(Some(Fault::OmitRecord));
    assert_eq!(ids(&omitted), ["r0", "r1", "r2"]);
    let (duplicated, _) = run(Some(Fault::DuplicateRecord));
    assert_eq!(ids(&duplicated), ["r0", "r0", "r1", "r2", "r3"]);
    let (malformed, _) = run(Some(Fault::MalformedResponse));
    assert_eq!(malformed, json!({"records": "not a list"}));
}
