//! The engine's numbers on documents shaped like VPC Lattice access-log entries (the 35-field
//! fixture, varied): `_bulk` indexing rate, a `terms` on service with `percentiles` on duration,
//! `date_histogram` × `terms`, a filtered count, peak RSS and disk per million documents. Prints
//! numbers; asserts nothing.
//!
//!   cargo bench -p local-search --bench search_engine              # 1,000,000 documents
//!   DOCS=200000 cargo bench -p local-search --bench search_engine
//!
//! Requests go through the engine's REST dispatcher in process (NDJSON parsing, mapping, tantivy,
//! the response JSON), not through a socket: the HTTP layer adds one copy of the body.

use std::time::{Duration, Instant};

use local_search::api::{handle, ReplyBody, Request};
use local_search::Engine;
use serde_json::{json, Value};

const BATCH: usize = 5_000;
const SERVICES: [&str; 8] = [
    "order",
    "payment",
    "inventory",
    "catalog",
    "cart",
    "shipping",
    "search",
    "auth",
];
const CODES: [u16; 6] = [200, 200, 200, 201, 404, 503];

fn call(engine: &Engine, method: &str, path: &str, body: &[u8]) -> Value {
    let reply = handle(
        engine,
        &Request {
            method,
            path,
            params: Vec::new(),
            body,
        },
    );
    assert!(reply.status < 300, "{method} {path}: {}", reply.status);
    match reply.body {
        Some(ReplyBody::Json(value)) => value,
        _ => Value::Null,
    }
}

/// A deterministic pseudo-random stream (no dependency needed for a benchmark's data).
struct Stream(u64);

impl Stream {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

fn batch(template: &Value, start: usize, count: usize, random: &mut Stream) -> Vec<u8> {
    let day_start = 1_796_083_200_000u64; // 2026-12-01T00:00:00Z
    let mut out = Vec::with_capacity(count * 1_400);
    for i in start..start + count {
        let mut entry = template.clone();
        let service = SERVICES[(random.next() % SERVICES.len() as u64) as usize];
        let code = CODES[(random.next() % CODES.len() as u64) as usize];
        // Log-normal-ish durations: mostly tens of ms, a tail to seconds.
        let duration = 2
            + (random.next() % 40)
                * (1 + random.next() % 4)
                * (1 + random.next().is_multiple_of(100) as u64 * 30);
        let at = day_start + (i as u64 * 86_400_000 / 1_000_000) % 86_400_000;
        let seconds = at / 1000;
        entry["serviceName"] = json!(service);
        entry["serviceArn"] = json!(format!(
            "arn:aws:vpc-lattice:us-east-1:123456789012:service/svc-{service}"
        ));
        entry["responseCode"] = json!(code);
        entry["duration"] = json!(duration);
        entry["requestToTargetDuration"] = json!(duration.saturating_sub(1));
        entry["bytesSent"] = json!(200 + random.next() % 5000);
        entry["sourceIpPort"] = json!(format!(
            "10.0.{}.{}:{}",
            random.next() % 256,
            random.next() % 256,
            1024 + random.next() % 60000
        ));
        entry["requestPath"] = json!(format!("/{service}/{}", random.next() % 1000));
        entry["startTime"] = json!(format!(
            "2026-12-01T{:02}:{:02}:{:02}Z",
            (seconds / 3600) % 24,
            (seconds / 60) % 60,
            seconds % 60
        ));
        out.extend_from_slice(b"{\"index\":{}}\n");
        serde_json::to_writer(&mut out, &entry).unwrap();
        out.push(b'\n');
    }
    out
}

fn peak_rss_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

fn timed(engine: &Engine, name: &str, body: Value, runs: usize) -> Value {
    let text = body.to_string();
    let mut times = Vec::new();
    let mut last = Value::Null;
    for _ in 0..runs {
        let started = Instant::now();
        last = call(engine, "POST", "/lattice-access-*/_search", text.as_bytes());
        times.push(started.elapsed());
    }
    times.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "{name}: p50 {:.1} ms, min {:.1} ms, max {:.1} ms ({runs} runs)",
        ms(times[runs / 2]),
        ms(times[0]),
        ms(times[runs - 1])
    );
    last
}

fn main() {
    let docs: usize = std::env::var("DOCS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open(Some(dir.path().to_owned())).unwrap();
    let template: Value = serde_json::from_str(include_str!(
        "../tests/fixtures/lattice-access-template.json"
    ))
    .unwrap();
    call(
        &engine,
        "PUT",
        "/_index_template/lattice-access",
        template.to_string().as_bytes(),
    );
    let entry: Value = serde_json::from_str(include_str!(
        "../tests/fixtures/lattice-access-log-entry.json"
    ))
    .unwrap();

    let mut random = Stream(0x9e37_79b9_7f4a_7c15);
    let mut indexing = Duration::ZERO;
    let mut bytes = 0usize;
    let mut start = 0;
    while start < docs {
        let count = BATCH.min(docs - start);
        let body = batch(&entry, start, count, &mut random);
        bytes += body.len();
        let started = Instant::now();
        let answer = call(&engine, "POST", "/lattice-access-2026.12.01/_bulk", &body);
        indexing += started.elapsed();
        assert_eq!(answer["errors"], json!(false));
        start += count;
    }
    let started = Instant::now();
    call(&engine, "POST", "/lattice-access-2026.12.01/_refresh", b"");
    let refresh = started.elapsed();
    let total = indexing + refresh;
    println!(
        "_bulk: {docs} documents ({:.0} MB of NDJSON) in {:.1} s + refresh {:.1} s = {:.0} docs/s",
        bytes as f64 / 1e6,
        indexing.as_secs_f64(),
        refresh.as_secs_f64(),
        docs as f64 / total.as_secs_f64()
    );
    let count = call(&engine, "GET", "/lattice-access-2026.12.01/_count", b"");
    assert_eq!(count["count"], json!(docs));

    let terms = timed(
        &engine,
        "terms(serviceName) + percentiles(duration)",
        json!({"size": 0, "aggs": {"by_service": {
        "terms": {"field": "serviceName", "size": 10},
        "aggs": {"latency": {"percentiles": {"field": "duration", "percents": [50, 90, 99]}}}}}}),
        11,
    );
    let first = &terms["aggregations"]["by_service"]["buckets"][0];
    println!(
        "  e.g. {} → {} docs, p99 {} ms",
        first["key"], first["doc_count"], first["latency"]["values"]["99.0"]
    );
    timed(
        &engine,
        "date_histogram(1h) x terms(serviceName)",
        json!({"size": 0, "aggs": {"per_hour": {
        "date_histogram": {"field": "startTime", "fixed_interval": "1h"},
        "aggs": {"by_service": {"terms": {"field": "serviceName"}}}}}}),
        11,
    );
    timed(
        &engine,
        "filtered 5xx in 15 min + top 10 by duration",
        json!({"size": 10,
        "query": {"bool": {"filter": [{"range": {"responseCode": {"gte": 500}}},
            {"range": {"startTime": {"gte": "2026-12-01T12:00:00Z", "lt": "2026-12-01T12:15:00Z"}}}]}},
        "sort": [{"duration": "desc"}]}),
        11,
    );

    let disk = local_search::store::folder_size(dir.path());
    println!(
        "disk: {:.0} MB for {docs} documents ({:.0} MB per million)",
        disk as f64 / 1e6,
        disk as f64 / 1e6 * 1_000_000.0 / docs as f64
    );
    println!("peak RSS: {:.0} MB", peak_rss_mb());
}
