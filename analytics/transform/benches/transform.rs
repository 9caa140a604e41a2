//! The transform's records/s per invocation: one 1 MB batch (the Lambda buffering hint the stack
//! uses) of raw Lattice entries, and the same entries in one-event CloudWatch Logs envelopes.
//! `batch` is the transformation alone; `invocation` adds what the function does around it for
//! every event: parsing Firehose's JSON (base64 data) and writing the response.
//! `cargo bench -p access-log-transform --bench transform`.

use std::io::Write as _;

use access_log_transform::{transform_batch, ServiceNames, RESPONSE_LIMIT_BYTES};
use aws_lambda_events::firehose::{KinesisFirehoseEvent, KinesisFirehoseEventRecord};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

const ENTRY: &str = include_str!("../tests/fixtures/lattice-access-log-entry.json");
const ENVELOPE: &str = include_str!("../tests/fixtures/cloudwatch-logs-envelope.json");
const BATCH_BYTES: usize = 1024 * 1024;

fn batch(data: &[u8]) -> KinesisFirehoseEvent {
    let count = BATCH_BYTES / data.len();
    let mut event = KinesisFirehoseEvent::default();
    event.records = (0..count)
        .map(|i| {
            let mut record = KinesisFirehoseEventRecord::default();
            record.record_id = Some(format!(
                "4954698668313554428650745793632162567570019247115{i:07}"
            ));
            record.data.0 = data.to_vec();
            record
        })
        .collect();
    event
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    let _ = encoder.write_all(bytes);
    encoder.finish().unwrap_or_default()
}

fn bench(c: &mut Criterion) {
    let names = ServiceNames::default();
    let mut group = c.benchmark_group("transform_1MB_batch");
    for (name, data) in [
        ("raw_entries", ENTRY.trim().as_bytes().to_vec()),
        ("cloudwatch_envelopes", gzip(ENVELOPE.as_bytes())),
    ] {
        let event = batch(&data);
        let payload = serde_json::to_vec(&event).unwrap_or_default();
        group.throughput(Throughput::Elements(event.records.len() as u64));
        group.bench_function(format!("batch/{name}"), |b| {
            b.iter(|| transform_batch(&event, &names, RESPONSE_LIMIT_BYTES))
        });
        group.bench_function(format!("invocation/{name}"), |b| {
            b.iter(|| {
                let event: KinesisFirehoseEvent =
                    serde_json::from_slice(&payload).unwrap_or_default();
                let outcome = transform_batch(&event, &names, RESPONSE_LIMIT_BYTES);
                serde_json::to_vec(&outcome.response).unwrap_or_default()
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
