//! The real telemetry extension (`extensions/telemetry`, binary `opensearch-telemetry`) under the
//! local Lambda service, beside the real payment function, shipping to the stack's search engine.

use std::collections::BTreeSet;
use std::net::TcpListener as StdListener;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use local_stack::layers::telemetry_layer;
use local_stack::stack::{LocalStack, StackConfig};
use serde_json::{json, Value};

const EVENT: &str =
    include_str!("../../../services/payment/tests/fixtures/lattice-v2-post-payment.json");

fn event_for(order_id: &str) -> Bytes {
    let mut event: Value = serde_json::from_str(EVENT).unwrap();
    event["body"] =
        json!(json!({"order_id": order_id, "amount": 10.0, "currency": "EUR"}).to_string());
    Bytes::from(event.to_string())
}

fn trace_root(i: usize) -> String {
    format!("1-5759e988-{i:024x}")
}

/// A stack with the telemetry extension on every service function; `env` overrides the
/// functions' environment (e.g. `URL`, the extension's backend).
async fn stack_with_telemetry(tag: &str, env: &[(&str, &str)]) -> LocalStack {
    let dir = std::env::temp_dir().join(format!("telemetry-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let mut config = StackConfig::ephemeral(dir.clone()).without_simulation();
    config.extensions_layer = Some(telemetry_layer(&dir, false).expect("the extension binary"));
    config
        .service_env
        .extend(env.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
    LocalStack::start(config).await.expect("the stack")
}

/// Invokes payment `n` times, one after another, each with its own trace; the request ids, and
/// each invocation's time from the previous answer to its own (the wait for an idle environment
/// included: that is where a held environment shows).
async fn invoke_payment(stack: &LocalStack, n: usize) -> (Vec<String>, Vec<Duration>) {
    let payment = Arc::clone(&stack.functions["payment"]);
    let mut ids = Vec::new();
    let mut latencies = Vec::new();
    for i in 0..n {
        // The environment is busy until the extension calls next; waiting for it keeps to one
        // environment (as a steady trickle does on AWS).
        let started = Instant::now();
        let until = started + Duration::from_secs(3);
        while i > 0 && payment.idle_environments() == 0 && Instant::now() < until {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        let header = format!("Root={};Parent=53995c3f42cd8ad8;Sampled=1", trace_root(i));
        let output = payment
            .invoke(event_for(&format!("x-{i}")), Some(header))
            .await
            .expect("the function answers whatever the telemetry backend does");
        latencies.push(started.elapsed());
        let answer: Value = serde_json::from_slice(&output.payload).unwrap();
        assert_eq!(answer["statusCode"], 200, "{answer}");
        ids.push(output.request_id);
    }
    (ids, latencies)
}

async fn search(stack: &LocalStack, index: &str, body: Value) -> Value {
    let client = reqwest::Client::new();
    let url = &stack.state.search.url;
    client
        .post(format!("{url}/{index}/_refresh"))
        .send()
        .await
        .unwrap();
    let answer = client
        .post(format!("{url}/{index}/_search"))
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    serde_json::from_slice(&answer).unwrap()
}

fn hits(answer: &Value) -> Vec<Value> {
    answer["hits"]["hits"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .map(|hit| hit["_source"].clone())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_invocation_has_its_report_and_every_log_line_is_indexed() {
    let stack = stack_with_telemetry("ship", &[]).await;
    let (request_ids, _) = invoke_payment(&stack, 20).await;
    stack.shut_down_functions().await;
    let payment = &stack.functions["payment"];
    assert_eq!(payment.stats().invocations, 20);

    let reports = hits(
        &search(
            &stack,
            "lambda-platform-*",
            json!({"size": 100, "query": {"bool": {"filter": [
                {"term": {"type": "platform.report"}},
                {"term": {"function": "payment"}},
            ]}}}),
        )
        .await,
    );
    assert_eq!(reports.len(), 20, "one platform.report per invocation");
    let reported: BTreeSet<&str> = reports
        .iter()
        .map(|r| r["requestId"].as_str().unwrap())
        .collect();
    let invoked: BTreeSet<&str> = request_ids.iter().map(String::as_str).collect();
    assert_eq!(reported, invoked);
    let traces: BTreeSet<&str> = reports
        .iter()
        .map(|r| r["traceId"].as_str().unwrap())
        .collect();
    let sent: BTreeSet<String> = (0..20).map(trace_root).collect();
    assert_eq!(
        traces,
        sent.iter().map(String::as_str).collect(),
        "each report joined to its X-Ray trace"
    );
    let cold: Vec<&Value> = reports
        .iter()
        .filter(|r| r["initDurationMs"].is_number())
        .collect();
    assert_eq!(cold.len(), 1, "one cold start");
    for report in &reports {
        assert_eq!(report["status"], "success");
        assert_eq!(report["memorySizeMB"], 256, "the deployment's memory");
        // In whole microseconds, the reported precision: a float sum of two 3-decimal
        // figures can land a hair above the integer it should be.
        let micros = |field: &str| {
            report[field]
                .as_f64()
                .map_or(0, |ms| (ms * 1e3).round() as u64)
        };
        assert_eq!(
            report["billedDurationMs"].as_u64().unwrap(),
            (micros("durationMs") + micros("initDurationMs")).div_ceil(1_000),
            "billed = duration + init, rounded up to the millisecond: {report}"
        );
        assert!(report["maxMemoryUsedMB"].as_u64().unwrap() > 0);
    }

    let lines = payment.telemetry_stats().function_lines;
    assert!(lines > 0, "payment logs a line per request at least");
    let indexed = search(&stack, "lambda-function-*", json!({"size": 0})).await;
    assert_eq!(
        indexed["hits"]["total"]["value"].as_u64(),
        Some(lines),
        "every function log line in the function index"
    );
    stack.shutdown().await;
}

/// The extension's summary line at shutdown, parsed into its `key=value` counts.
fn summary(stack: &LocalStack, function: &str) -> Option<std::collections::HashMap<String, u64>> {
    let line = stack.functions[function]
        .extension_lines()
        .into_iter()
        .rev()
        .find(|l| l.starts_with("[opensearch-telemetry] summary:"))?;
    Some(
        line.split_whitespace()
            .filter_map(|pair| pair.trim_matches(['(', ')']).split_once('='))
            .filter_map(|(k, v)| Some((k.to_owned(), v.parse().ok()?)))
            .collect(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backend_that_is_down_costs_the_function_nothing_and_the_loss_is_counted() {
    // Nothing listens on the port: every connection is refused.
    let port = StdListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}");
    let stack =
        stack_with_telemetry("down", &[("URL", &url), ("DISPATCH_MIN_BATCH_SIZE", "5")]).await;
    invoke_payment(&stack, 30).await;
    let started = Instant::now();
    stack.shut_down_functions().await;
    assert!(
        started.elapsed() < Duration::from_millis(2_500),
        "the shutdown flush is bounded by the 2 s deadline: {:?}",
        started.elapsed()
    );
    let counts = summary(&stack, "payment").expect("the extension's summary line");
    assert_eq!(counts["shipped"], 0);
    assert!(counts["events"] > 0, "{counts:?}");
    assert_eq!(
        counts["dropped"] + counts["own_lines"],
        counts["events"],
        "every record is accounted for: lost (counted) or the extension's own line: {counts:?}"
    );
    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backend_that_never_answers_never_holds_an_invocation() {
    // Accepts connections and never answers.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", silent.local_addr().unwrap());
    let held = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((stream, _)) = silent.accept().await {
            open.push(stream);
        }
    });
    let stack = stack_with_telemetry(
        "silent",
        &[
            ("URL", &url),
            ("DISPATCH_MIN_BATCH_SIZE", "1"),
            ("DISPATCH_TIMEOUT_MS", "5000"),
        ],
    )
    .await;
    let (_, latencies) = invoke_payment(&stack, 10).await;
    let slowest = latencies.iter().max().copied().unwrap_or_default();
    // One after another, so every invocation after the first meets the same environment. A
    // flush awaited before the extension's `next` would hold it for the 5 s timeout and the
    // next invocation would wait that long; the background flush holds nothing.
    assert!(
        slowest < Duration::from_millis(2_500),
        "slowest invocation {slowest:?}: an invocation waited for the extension's flush"
    );
    stack.shut_down_functions().await;
    let counts = summary(&stack, "payment").expect("the extension's summary line");
    assert_eq!(counts["shipped"], 0, "{counts:?}");
    stack.shutdown().await;
    held.abort();
}
