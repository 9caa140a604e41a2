//! Events per second through what the extension does to every record: parse a POST body,
//! build the documents (views, `_id`, source) and write the `_bulk` body. One body of
//! 1,000 records, as an invocation's POST of a busy function holds: the documented batch of
//! tests/fixtures (platform records and text lines) and JSON log lines, each made distinct.
//! `parse_body_only` and `ids_only` are two of its steps alone, to show where the time goes.
//! `cargo bench -p opensearch-telemetry --bench ship`.

use std::hint::black_box;
use std::sync::Arc;

use chrono::Utc;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use opensearch_telemetry::bulk;
use opensearch_telemetry::config::Indices;
use opensearch_telemetry::counters::Counters;
use opensearch_telemetry::documents::DocumentContext;
use opensearch_telemetry::ids::IdMinter;
use opensearch_telemetry::intake::Intake;
use opensearch_telemetry::pending::Pending;
use opensearch_telemetry::records::parse_body;
use serde_json::{json, Value};

const BATCH: &str = include_str!("../tests/fixtures/telemetry-batch.json");
const JSON_LOGS: &str = include_str!("../tests/fixtures/function-json-log.json");
const RECORDS: usize = 1000;

fn body() -> Vec<u8> {
    let mut templates: Vec<Value> = serde_json::from_str(BATCH).unwrap_or_default();
    templates.extend(serde_json::from_str::<Vec<Value>>(JSON_LOGS).unwrap_or_default());
    let records: Vec<Value> = (0..RECORDS)
        .map(|i| {
            let mut record = templates[i % templates.len()].clone();
            record["time"] = json!(format!(
                "2026-12-01T10:{:02}:{:02}.{:03}Z",
                i / 3600 % 60,
                i / 60 % 60,
                i % 1000
            ));
            record
        })
        .collect();
    Value::Array(records).to_string().into_bytes()
}

fn bench(c: &mut Criterion) {
    let body = body();
    let context = DocumentContext {
        extension_id: "0c2d4b3e-1b8f-4f3a-9f0e-6d1e2a7b9c10".into(),
        function_name: "order".into(),
        function_version: Some("$LATEST".into()),
        indices: Indices::default(),
    };
    let intake = Intake::new(context, Arc::new(Counters::new()));
    let mut group = c.benchmark_group("ship");
    group.throughput(Throughput::Elements(RECORDS as u64));
    group.bench_function("parse_documents_bulk_body", |b| {
        b.iter(|| {
            let mut pending = Pending::new(10_000);
            intake.ingest(black_box(&body), &mut pending, Utc::now());
            let documents = pending.take_all();
            black_box(bulk::body(&documents))
        })
    });
    group.bench_function("parse_documents", |b| {
        b.iter(|| {
            let mut pending = Pending::new(10_000);
            intake.ingest(black_box(&body), &mut pending, Utc::now());
            black_box(pending.len())
        })
    });
    group.bench_function("parse_body_only", |b| {
        b.iter(|| black_box(parse_body(black_box(&body)).map(|p| p.records.len())))
    });
    let records = parse_body(&body).map(|p| p.records).unwrap_or_default();
    group.bench_function("ids_only", |b| {
        b.iter(|| {
            let mut ids = IdMinter::new("0c2d4b3e-1b8f-4f3a-9f0e-6d1e2a7b9c10", &body);
            records.iter().map(|r| ids.mint(r).len()).sum::<usize>()
        })
    });
    group.finish();
    let mut pending = Pending::new(10_000);
    intake.ingest(&body, &mut pending, Utc::now());
    let documents = pending.take_all();
    println!(
        "one POST: {} bytes, {} records -> {} documents, _bulk body {} bytes",
        body.len(),
        RECORDS,
        documents.len(),
        bulk::body(&documents).len()
    );
}

criterion_group!(benches, bench);
criterion_main!(benches);
