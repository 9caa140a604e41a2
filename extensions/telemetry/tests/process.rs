//! The real binary, end to end, with no AWS: a fake Extensions and Telemetry API on a loopback
//! address of its own (127.0.0.77, as the local Lambda service gives each environment one), the
//! `local-search` engine as OpenSearch. Registration, the subscription, the listener on the
//! runtime API's host and port 4243, an INVOKE that flushes, and a SHUTDOWN that waits for the
//! late report, flushes, prints one summary line and exits 0.

mod common;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use common::*;
use http_body_util::{BodyExt, Full};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use local_search::{SearchConfig, SearchServer};
use serde_json::{json, Value};
use tokio::sync::{mpsc, Mutex};

const HOST: [u8; 4] = [127, 0, 0, 77];

/// What the fake Extensions API saw.
#[derive(Debug)]
enum Seen {
    Register(Option<String>),
    Subscribe(Option<String>, Value),
    Next,
}

struct FakeLambda {
    seen: mpsc::UnboundedSender<Seen>,
    events: Mutex<mpsc::UnboundedReceiver<Value>>,
}

async fn answer(
    fake: Arc<FakeLambda>,
    request: hyper::Request<hyper::body::Incoming>,
) -> Result<hyper::Response<Full<Bytes>>, Infallible> {
    let header = |name: &str| {
        request
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let path = request.uri().path().to_owned();
    let (name, id) = (
        header("lambda-extension-name"),
        header("lambda-extension-identifier"),
    );
    let body = request
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let mut response = hyper::Response::new(Full::new(Bytes::new()));
    match path.as_str() {
        "/2020-01-01/extension/register" => {
            let _ = fake.seen.send(Seen::Register(name));
            response
                .headers_mut()
                .insert("lambda-extension-identifier", "ext-e2e".parse().unwrap());
            *response.body_mut() = Full::new(Bytes::from_static(
                br#"{"functionName":"order","functionVersion":"$LATEST","handler":"bootstrap"}"#,
            ));
        }
        "/2022-07-01/telemetry" => {
            let _ = fake.seen.send(Seen::Subscribe(
                id,
                serde_json::from_slice(&body).unwrap_or(Value::Null),
            ));
        }
        "/2020-01-01/extension/event/next" => {
            let _ = fake.seen.send(Seen::Next);
            let event = fake.events.lock().await.recv().await.unwrap_or(Value::Null);
            *response.body_mut() = Full::new(Bytes::from(event.to_string()));
        }
        _ => *response.status_mut() = hyper::StatusCode::NOT_FOUND,
    }
    Ok(response)
}

async fn fake_lambda() -> (
    SocketAddr,
    mpsc::UnboundedReceiver<Seen>,
    mpsc::UnboundedSender<Value>,
) {
    let listener = tokio::net::TcpListener::bind(SocketAddr::from((HOST, 0)))
        .await
        .unwrap();
    let address = listener.local_addr().unwrap();
    let (seen, seen_rx) = mpsc::unbounded_channel();
    let (events_tx, events) = mpsc::unbounded_channel();
    let fake = Arc::new(FakeLambda {
        seen,
        events: Mutex::new(events),
    });
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let fake = Arc::clone(&fake);
            let service = service_fn(move |request| answer(Arc::clone(&fake), request));
            tokio::spawn(http1::Builder::new().serve_connection(TokioIo::new(stream), service));
        }
    });
    (address, seen_rx, events_tx)
}

fn epoch_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

async fn post_telemetry(body: Vec<u8>) {
    let status = reqwest::Client::new()
        .post(format!(
            "http://{}.{}.{}.{}:4243/",
            HOST[0], HOST[1], HOST[2], HOST[3]
        ))
        .body(body)
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status.as_u16(), 200);
}

async fn expect(seen: &mut mpsc::UnboundedReceiver<Seen>) -> Seen {
    tokio::time::timeout(Duration::from_secs(10), seen.recv())
        .await
        .unwrap()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_registers_subscribes_ships_and_exits_after_the_last_report() {
    let search = SearchServer::start(SearchConfig {
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        data_dir: None,
        auth: Default::default(),
    })
    .await
    .unwrap();
    let (runtime_api, mut seen, events) = fake_lambda().await;
    let child = Command::new(env!("CARGO_BIN_EXE_opensearch-telemetry"))
        .env_clear()
        .env("AWS_LAMBDA_RUNTIME_API", runtime_api.to_string())
        .env("AWS_LAMBDA_FUNCTION_NAME", "order")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "AKIDLOCAL")
        .env("AWS_SECRET_ACCESS_KEY", "local-secret")
        .env("URL", search.url())
        .env("DISPATCH_MIN_BATCH_SIZE", "1")
        .env("QUEUE_MAX_EVENTS", "lots")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let exited = tokio::task::spawn_blocking(move || child.wait_with_output());

    assert!(
        matches!(expect(&mut seen).await, Seen::Register(Some(name)) if name == "opensearch-telemetry")
    );
    match expect(&mut seen).await {
        Seen::Subscribe(id, body) => {
            assert_eq!(id.as_deref(), Some("ext-e2e"));
            assert_eq!(body["schemaVersion"], "2022-12-13");
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(expect(&mut seen).await, Seen::Next));
    // The listener is up (it starts before the subscription).
    post_telemetry(BATCH.as_bytes().to_vec()).await;
    let trace = json!({"type": "X-Amzn-Trace-Id", "value": "Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=1"});
    let invoke = json!({"eventType": "INVOKE", "deadlineMs": epoch_ms() + 3000, "requestId": "req-1",
                        "invokedFunctionArn": "arn:aws:lambda:us-east-1:123456789012:function:order", "tracing": trace});
    events.send(invoke).unwrap();
    assert!(
        matches!(expect(&mut seen).await, Seen::Next),
        "next called after the INVOKE"
    );
    post_telemetry(function_lines(2)).await;
    events.send(json!({"eventType": "SHUTDOWN", "shutdownReason": "SPINDOWN", "deadlineMs": epoch_ms() + 2000})).unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    post_telemetry(post(&[report("req-1")])).await;

    let output = tokio::time::timeout(Duration::from_secs(5), exited)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(output.status.success(), "{:?}", output.status);
    let stdout = String::from_utf8(output.stdout).unwrap();
    let lines: Vec<&str> = stdout.lines().collect();
    assert!(
        lines
            .iter()
            .all(|l| l.starts_with("[opensearch-telemetry] ")),
        "{stdout}"
    );
    assert_eq!(
        lines,
        [
            "[opensearch-telemetry] QUEUE_MAX_EVENTS=\"lots\" is not valid; using 10000",
            "[opensearch-telemetry] summary: posts=3 events=15 shipped=15 retried=0 failed=0 dropped=0 (posts=0 bytes=0 own_lines=0) malformed=0",
        ]
    );
    reqwest::Client::new()
        .post(format!("{}/_refresh", search.url()))
        .send()
        .await
        .unwrap();
    let count = reqwest::Client::new()
        .post(format!("{}/lambda-*/_count", search.url()))
        .header("content-type", "application/json")
        .body(json!({"query": {"term": {"requestId": "req-1"}}}).to_string())
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let count: Value = serde_json::from_slice(&count).unwrap();
    assert_eq!(count["count"], 1, "the late report was shipped: {count}");
    search.stop().await;
}
