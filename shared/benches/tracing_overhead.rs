//! Cost of tracing one order request: the server segment, two remote subsegments (inventory and
//! payment, with their trace headers), six annotations and one metadata namespace, exported
//! through the real UDP sink to a socket on loopback, against the same handler untraced.
//!
//! Run: `cargo bench -p lattice-xray --bench tracing_overhead`. Figures are in the README.

use std::hint::black_box;
use std::net::UdpSocket;
use std::thread;

use criterion::{criterion_group, criterion_main, Criterion};
use http::{HeaderMap, Method, Uri};
use lattice_xray::lattice_client::CallSegment;
use lattice_xray::{
    annotate, keys, record_metadata, Invocation, RequestInfo, Telemetry, TelemetryConfig,
};
use serde_json::json;

/// Counts datagrams and bytes instead of sending them.
#[derive(Debug, Default)]
struct CountingSink {
    bytes: std::sync::atomic::AtomicUsize,
}

impl lattice_xray::export::DaemonSink for CountingSink {
    fn send(&self, datagram: &[u8]) -> std::io::Result<()> {
        self.bytes
            .fetch_add(datagram.len(), std::sync::atomic::Ordering::Relaxed);
        Ok(())
    }
}

/// The handler's own work, identical in both benchmarks: build the order answer.
fn handler_work(order_id: &str) -> String {
    json!({"order_id": order_id, "status": "created", "payment_id": "pay_7", "total": 45.48,
           "currency": "USD", "item_count": 2})
    .to_string()
}

fn traced_request(
    telemetry: &Telemetry,
    headers: &HeaderMap,
    method: &Method,
    uri: &Uri,
) -> String {
    let invocation = Invocation::start(
        telemetry,
        RequestInfo {
            method,
            uri,
            headers,
            lambda_trace_id: None,
        },
    );
    let guard = invocation.context().clone().attach();
    annotate(&keys::ORDER_ID, "ord-1");
    annotate(&keys::CUSTOMER_ID, "cust-42");
    annotate(&keys::ITEM_COUNT, 2u32);
    annotate(&keys::ORDER_TOTAL, 45.48);
    record_metadata(
        "order",
        json!({"items": [{"sku": "SKU-0001", "quantity": 2, "unit_price": 19.99},
                                              {"sku": "SKU-0002", "quantity": 1, "unit_price": 5.5}]}),
    );
    for (service, url) in [
        ("inventory", "https://inventory.example/reservations"),
        ("payment", "https://payment.example/payments"),
    ] {
        let call = CallSegment::start(telemetry.tracer(), service, "POST", url);
        black_box(call.trace_header());
        call.answered(200);
    }
    annotate(&keys::INVENTORY_STATUS, "reserved");
    annotate(&keys::PAYMENT_STATUS, "approved");
    let body = handler_work("ord-1");
    drop(guard);
    invocation.finish(201, Some(body.len() as u64), None);
    body
}

fn bench(c: &mut Criterion) {
    let daemon = UdpSocket::bind("127.0.0.1:0").unwrap();
    let address = daemon.local_addr().unwrap();
    thread::spawn(move || {
        let mut buf = vec![0u8; 65_536];
        while daemon.recv(&mut buf).is_ok() {}
    });
    let config = TelemetryConfig::from_lookup(|key| match key {
        "AWS_LAMBDA_FUNCTION_NAME" => Some("order".to_owned()),
        "AWS_XRAY_DAEMON_ADDRESS" => Some(address.to_string()),
        _ => None,
    })
    .unwrap();
    let telemetry = Telemetry::from_config(&config).unwrap();
    let mut headers = HeaderMap::new();
    // X-Ray (and the translator) refuse trace ids older than 30 days: stamp the Root with now.
    let epoch = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let header =
        format!("Root=1-{epoch:08x}-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1");
    headers.insert("x-amzn-trace-id", header.parse().unwrap());
    headers.insert("x-forwarded-for", "10.0.2.100".parse().unwrap());
    headers.insert("host", "order.example".parse().unwrap());
    headers.insert("user-agent", "loadgen/0.1.0".parse().unwrap());
    let method = Method::POST;
    let uri: Uri = "/orders".parse().unwrap();

    let mut group = c.benchmark_group("order_request");
    group.bench_function("untraced", |b| {
        b.iter(|| black_box(handler_work(black_box("ord-1"))))
    });
    group.bench_function("traced", |b| {
        b.iter(|| black_box(traced_request(&telemetry, &headers, &method, &uri)))
    });
    // Nobody listening: loopback answers each datagram with ICMP port-unreachable, so every
    // other send fails fast (ECONNREFUSED); the request must cost no more than with a daemon.
    let closed_port = UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let down_config = TelemetryConfig::from_lookup(|key| match key {
        "AWS_LAMBDA_FUNCTION_NAME" => Some("order".to_owned()),
        "AWS_XRAY_DAEMON_ADDRESS" => Some(closed_port.to_string()),
        _ => None,
    })
    .unwrap();
    let daemon_down = Telemetry::from_config(&down_config).unwrap();
    group.bench_function("traced_daemon_down", |b| {
        b.iter(|| black_box(traced_request(&daemon_down, &headers, &method, &uri)))
    });

    // Same work into memory: separates our CPU cost from the three sendto(2) calls.
    let in_memory = Telemetry::with_sink("order", CountingSink::default(), 1.0);
    group.bench_function("traced_no_syscall", |b| {
        b.iter(|| black_box(traced_request(&in_memory, &headers, &method, &uri)))
    });
    group.finish();

    let stats = telemetry.stats();
    let sent = stats.sent.load(std::sync::atomic::Ordering::Relaxed);
    let dropped = stats
        .untranslatable
        .load(std::sync::atomic::Ordering::Relaxed);
    println!("datagrams sent: {sent}, untranslatable spans: {dropped}");
    assert!(
        sent > 0 && dropped == 0,
        "the traced benchmark must export every span"
    );
}

criterion_group!(benches, bench);
criterion_main!(benches);
