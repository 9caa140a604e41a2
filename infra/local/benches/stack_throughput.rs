//! End-to-end throughput of the local stack: signed orders through Lattice → order → inventory +
//! payment, tracing on, latency injection and simulated failures off. Prints orders/s, latency,
//! the Lattice hop's own overhead, segments received vs sent, UDP drops and cold starts.
//!
//! `cargo bench -p local-stack --bench stack_throughput` (env: `CONCURRENCY`, default 32;
//! `DURATION_S`, default 20; `WARMUP_S`, default 3; `FACADE=lambda|all`: the Lambda facade
//! samples by Lambda's default rule as on AWS (default), or traces every invocation;
//! `DAEMON=down`: the functions send their documents to a UDP port nobody listens on, to compare
//! latency with the daemon up).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use aws_credential_types::Credentials;
use aws_smithy_runtime_api::client::identity::Identity;
use bytes::Bytes;
use hdrhistogram::Histogram;
use lattice_xray::lattice_client::sign_for_lattice;
use lattice_xray::testing::fresh_root;
use local_stack::lambda::facade::FacadeSampling;
use local_stack::stack::{LocalStack, StackConfig};

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Linux's count of UDP datagrams dropped for a full receive buffer (`/proc/net/snmp`).
fn udp_receive_buffer_errors() -> Option<u64> {
    let snmp = std::fs::read_to_string("/proc/net/snmp").ok()?;
    let mut udp = snmp.lines().filter(|l| l.starts_with("Udp:"));
    let (names, values) = (udp.next()?, udp.next()?);
    let index = names.split_whitespace().position(|n| n == "RcvbufErrors")?;
    values.split_whitespace().nth(index)?.parse().ok()
}

fn main() {
    // `cargo bench` passes --bench; nothing else to parse.
    let concurrency = env_or("CONCURRENCY", 32) as usize;
    let duration = Duration::from_secs(env_or("DURATION_S", 20));
    let warmup = Duration::from_secs(env_or("WARMUP_S", 3));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(run(concurrency, warmup, duration));
}

async fn run(concurrency: usize, warmup: Duration, duration: Duration) {
    let state_dir = std::env::temp_dir().join(format!("stack-throughput-{}", std::process::id()));
    let mut config = StackConfig::ephemeral(state_dir.clone()).without_simulation();
    let facade = std::env::var("FACADE").unwrap_or_else(|_| "lambda".into());
    if facade == "all" {
        config.facade_sampling = FacadeSampling::Always;
    }
    let daemon_down = std::env::var("DAEMON").is_ok_and(|d| d == "down");
    if daemon_down {
        let nobody = std::net::UdpSocket::bind("127.0.0.1:0").expect("a free UDP port");
        config.functions_xray_daemon = Some(nobody.local_addr().expect("its address").to_string());
    }
    config.trace_capacity = 2_000_000;
    config.concurrency = concurrency + 8;
    config.rebuild_binaries = true;
    let stack = Arc::new(LocalStack::start(config).await.expect("stack starts"));
    let key = stack.loadgen_key().expect("loadgen key").clone();
    let identity: Identity = Credentials::new(
        &key.access_key_id,
        &key.secret_access_key,
        None,
        None,
        "bench",
    )
    .into();
    let url = format!("{}/orders", stack.service_url("order").expect("order url"));
    let host = url
        .trim_start_matches("http://")
        .split('/')
        .next()
        .unwrap_or_default()
        .to_owned();
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency)
        .build()
        .expect("client");
    let udp_before = udp_receive_buffer_errors();

    let measuring = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let counter = Arc::new(AtomicU64::new(0));
    let mut workers = Vec::new();
    for worker in 0..concurrency {
        let (client, identity, url, host) =
            (client.clone(), identity.clone(), url.clone(), host.clone());
        let (measuring, stop, counter) = (measuring.clone(), stop.clone(), counter.clone());
        workers.push(tokio::spawn(async move {
            let mut latency = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("bounds");
            let (mut ok, mut failed) = (0u64, 0u64);
            while !stop.load(Ordering::Relaxed) {
                let n = counter.fetch_add(1, Ordering::Relaxed);
                let body = format!(
                    r#"{{"order_id":"b-{worker}-{n}","customer_id":"c-{worker}","items":[{{"sku":"SKU-{:04}","quantity":1,"unit_price":3.5}},{{"sku":"SKU-{:04}","quantity":2,"unit_price":1.25}}]}}"#,
                    n % 100 + 1,
                    (n + 37) % 100 + 1
                );
                let mut request = http::Request::builder()
                    .method("POST")
                    .uri(&url)
                    .header("host", &host)
                    .header("content-type", "application/json")
                    .body(Bytes::from(body))
                    .expect("request");
                let started = Instant::now();
                sign_for_lattice(&mut request, &identity, "us-east-1", SystemTime::now()).expect("sign");
                let header = format!("Root={};Sampled=1", fresh_root());
                request
                    .headers_mut()
                    .insert("x-amzn-trace-id", header.parse().expect("header"));
                let request = reqwest::Request::try_from(request).expect("request");
                let status = match client.execute(request).await {
                    Ok(response) => {
                        let status = response.status().as_u16();
                        let _ = response.bytes().await;
                        status
                    }
                    Err(_) => 0,
                };
                if measuring.load(Ordering::Relaxed) {
                    latency.saturating_record(started.elapsed().as_micros() as u64);
                    if status == 201 {
                        ok += 1;
                    } else {
                        failed += 1;
                    }
                }
            }
            (latency, ok, failed)
        }));
    }
    tokio::time::sleep(warmup).await;
    let hop_before = stack.hop_overhead();
    measuring.store(true, Ordering::Relaxed);
    let started = Instant::now();
    tokio::time::sleep(duration).await;
    measuring.store(false, Ordering::Relaxed);
    let elapsed = started.elapsed();
    stop.store(true, Ordering::Relaxed);
    let mut latency = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("bounds");
    let (mut ok, mut failed) = (0, 0);
    for worker in workers {
        let (h, o, f) = worker.await.expect("worker");
        latency.add(h).expect("same bounds");
        ok += o;
        failed += f;
    }
    // Let the last datagrams land.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let udp_after = udp_receive_buffer_errors();
    let hop = stack.hop_overhead();

    // Segments: every hop's function sends its own segment; the facade two per invocation.
    let invocations: u64 = stack
        .access_log
        .counts()
        .iter()
        .filter(|((_, status), _)| *status < 500)
        .map(|(_, n)| n)
        .sum();
    let all_requests: u64 = stack.access_log.counts().values().sum();
    let mut segments = 0u64;
    for trace in stack.store.trace_ids() {
        for entity in stack.store.entities(&trace).unwrap_or_default() {
            segments += u64::from(entity.is_segment);
        }
    }
    let store = stack.store.stats();
    let daemon = if daemon_down {
        "X-Ray daemon DOWN for the functions"
    } else {
        "X-Ray daemon up"
    };
    println!("local stack, {concurrency} concurrent closed-loop clients, {:.1} s measured after {:.0} s warm-up, {daemon}", elapsed.as_secs_f64(), warmup.as_secs_f64());
    println!(
        "  orders: {ok} ok, {failed} failed -> {:.0} orders/s",
        ok as f64 / elapsed.as_secs_f64()
    );
    println!(
        "  order latency (client): p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        latency.value_at_quantile(0.5) as f64 / 1000.0,
        latency.value_at_quantile(0.99) as f64 / 1000.0,
        latency.max() as f64 / 1000.0
    );
    println!(
        "  Lattice hop overhead over {} requests (whole run): p50 {} us, p99 {} us, max {} us (at warm-up end: {} requests)",
        hop.requests, hop.p50_us, hop.p99_us, hop.max_us, hop_before.requests
    );
    println!("  Lattice requests (whole run): {all_requests}, reaching a function: {invocations}");
    println!(
        "  segments sent {} ({invocations} by the functions, one per invocation, + {} by the Lambda facade, sampling '{facade}'), received {segments}; documents accepted {}, rejected {}, traces evicted {}",
        invocations + stack.facade_documents_sent(),
        stack.facade_documents_sent(),
        store.accepted,
        store.rejected,
        store.evicted_traces
    );
    match (udp_before, udp_after) {
        (Some(b), Some(a)) => println!(
            "  kernel UDP receive-buffer drops during the run: {}",
            a - b
        ),
        _ => println!("  kernel UDP receive-buffer drops: not readable here"),
    }
    for (name, function) in &stack.functions {
        let stats = function.stats();
        let mut inits = stats.init_durations.clone();
        inits.sort();
        let ms = |d: Option<&Duration>| d.map_or(0.0, |d| d.as_secs_f64() * 1000.0);
        println!(
            "  {name:<9} environments {} (lost {}), cold start (init) min {:.1} ms, median {:.1} ms, max {:.1} ms",
            stats.environments_started,
            stats.environments_lost,
            ms(inits.first()),
            ms(inits.get(inits.len() / 2)),
            ms(inits.last())
        );
    }
    if let Ok(stack) = Arc::try_unwrap(stack) {
        stack.shutdown().await;
    }
    let _ = std::fs::remove_dir_all(state_dir);
}
