//! The local Lambda service hosting extensions: the real payment binary as the runtime, and a
//! scripted extension (`tests/extensions/scripted.py`, standard-library Python speaking the
//! Extensions and Telemetry APIs as the developer guide gives them) beside it.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use local_stack::binaries::service_binary;
use local_stack::dynamodb::{DynamoDbSetup, StackDynamoDb};
use local_stack::lambda::environment::extension_files;
use local_stack::lambda::function::{Function, FunctionConfig, InvokeError};
use serde_json::{json, Value};

const EVENT: &str =
    include_str!("../../../services/payment/tests/fixtures/lattice-v2-post-payment.json");
const SCRIPT: &str = include_str!("extensions/scripted.py");
const TRACE: &str = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1";

/// A layer directory holding the scripted extension as `extensions/<name>`.
fn layer(dir: &Path, name: &str) -> PathBuf {
    let extensions = dir.join("layer/extensions");
    std::fs::create_dir_all(&extensions).unwrap();
    let file = extensions.join(name);
    std::fs::write(&file, SCRIPT).unwrap();
    let status = std::process::Command::new("chmod")
        .arg("+x")
        .arg(&file)
        .status()
        .unwrap();
    assert!(status.success());
    dir.join("layer")
}

struct Setup {
    function: Arc<Function>,
    out: PathBuf,
    _dir: tempdir::Dir,
    _dynamodb: StackDynamoDb,
}

mod tempdir {
    /// A directory removed when dropped.
    pub struct Dir(pub std::path::PathBuf);
    impl Dir {
        pub fn new(tag: &str) -> Self {
            let path = std::env::temp_dir().join(format!(
                "local-stack-{tag}-{}-{}",
                std::process::id(),
                rand::random::<u32>()
            ));
            std::fs::create_dir_all(&path).unwrap();
            Self(path)
        }
    }
    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// payment (no simulated latency) with the scripted extension, configured by `script`.
async fn payment_with_extension(tag: &str, script: &[(&str, &str)], timeout: Duration) -> Setup {
    let dir = tempdir::Dir::new(tag);
    let out = dir.0.join("extension-out.jsonl");
    let dynamodb = StackDynamoDb::start(&DynamoDbSetup::default())
        .await
        .expect("DynamoDB");
    let mut env: Vec<(String, String)> = vec![
        ("PAYMENT_LATENCY_MS".into(), "0".into()),
        ("PAYMENT_DECLINE_RATE".into(), "0".into()),
        ("PAYMENT_FAULT_RATE".into(), "0".into()),
        ("AWS_XRAY_DAEMON_ADDRESS".into(), "127.0.0.1:9".into()),
        ("AWS_ACCESS_KEY_ID".into(), "local".into()),
        ("AWS_SECRET_ACCESS_KEY".into(), "local".into()),
        ("SCRIPT_OUT".into(), out.display().to_string()),
    ];
    env.extend(
        script
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
    );
    env.extend(dynamodb.function_env());
    let layer = layer(&dir.0, "scripted-extension");
    let function = Function::new(FunctionConfig {
        name: "payment".into(),
        binary: service_binary("payment").expect("payment binary"),
        env,
        memory_mb: 256,
        timeout,
        concurrency: 1,
        region: "eu-west-1".into(),
        account_id: "123456789012".into(),
        xray_daemon: None,
        show_logs: false,
        extensions: extension_files(&layer).unwrap(),
        log: None,
    });
    Setup {
        function: Arc::new(function),
        out,
        _dir: dir,
        _dynamodb: dynamodb,
    }
}

fn event_for(order_id: &str) -> Bytes {
    let mut event: Value = serde_json::from_str(EVENT).unwrap();
    event["body"] =
        json!(json!({"order_id": order_id, "amount": 10.0, "currency": "EUR"}).to_string());
    Bytes::from(event.to_string())
}

fn seen(out: &Path) -> Vec<Value> {
    std::fs::read_to_string(out)
        .unwrap_or_default()
        .lines()
        .filter_map(|line| serde_json::from_str(line).ok())
        .collect()
}

fn entries<'a>(seen: &'a [Value], event: &str) -> Vec<&'a Value> {
    seen.iter().filter(|e| e["event"] == event).collect()
}

/// Every telemetry record the extension's listener got, in order.
fn telemetry(seen: &[Value]) -> Vec<Value> {
    entries(seen, "telemetry")
        .into_iter()
        .flat_map(|e| e["records"].as_array().cloned().unwrap_or_default())
        .collect()
}

fn of_type<'a>(records: &'a [Value], record_type: &str) -> Vec<&'a Value> {
    records
        .iter()
        .filter(|r| r["type"] == record_type)
        .collect()
}

fn epoch_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// Waits until the function's one environment is idle again (its extension called `next`).
async fn wait_idle(function: &Function) {
    let until = Instant::now() + Duration::from_secs(10);
    while function.idle_environments() == 0 && Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Waits until `done` holds for what the extension wrote (up to 10 s).
async fn wait_for(out: &Path, done: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    let until = Instant::now() + Duration::from_secs(10);
    loop {
        let seen = seen(out);
        if done(&seen) || Instant::now() > until {
            return seen;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invocation_answers_at_once_and_ends_when_the_extension_calls_next() {
    let setup = payment_with_extension(
        "invoke",
        &[("SCRIPT_INVOKE_DELAY_MS", "400")],
        Duration::from_secs(5),
    )
    .await;
    let function = &setup.function;
    let first = function
        .invoke(event_for("e-1"), Some(TRACE.into()))
        .await
        .unwrap();
    assert!(first.init_duration.is_some());
    assert!(
        first.duration < Duration::from_millis(300),
        "the response does not wait for the extension: {:?}",
        first.duration
    );
    // Concurrency 1: until the extension calls `next`, the one environment is busy, and an
    // invocation is throttled as on AWS.
    assert_eq!(
        function.invoke(event_for("e-2"), None).await.unwrap_err(),
        InvokeError::Throttled
    );
    let waited = Instant::now();
    wait_idle(function).await;
    assert!(
        waited.elapsed() >= Duration::from_millis(250),
        "the environment was busy until the extension was done: {:?}",
        waited.elapsed()
    );
    let second = function.invoke(event_for("e-2"), None).await.unwrap();
    assert!(second.init_duration.is_none(), "the environment is reused");

    let seen = seen(&setup.out);
    let register = entries(&seen, "register");
    assert_eq!(register.len(), 1);
    assert_eq!(register[0]["status"], 200);
    let body: Value = serde_json::from_str(register[0]["body"].as_str().unwrap()).unwrap();
    assert_eq!(
        body,
        json!({"functionName": "payment", "functionVersion": "$LATEST", "handler": "bootstrap"})
    );
    let invokes = entries(&seen, "INVOKE");
    assert_eq!(invokes.len(), 2);
    let payload = &invokes[0]["payload"];
    assert_eq!(payload["requestId"], first.request_id.as_str());
    assert_eq!(
        payload["invokedFunctionArn"],
        "arn:aws:lambda:eu-west-1:123456789012:function:payment"
    );
    assert_eq!(
        payload["tracing"],
        json!({"type": "X-Amzn-Trace-Id", "value": TRACE})
    );
    let deadline = payload["deadlineMs"].as_u64().unwrap();
    let at = invokes[0]["at_ms"].as_u64().unwrap();
    assert!(
        (4_000..=5_100).contains(&(deadline - at)),
        "deadline = start + the 5 s timeout: {deadline} vs {at}"
    );
    function.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn telemetry_reaches_the_listener_with_measured_platform_records_and_function_lines() {
    let setup = payment_with_extension(
        "telemetry",
        &[
            ("SCRIPT_LISTEN_PORT", "4243"),
            ("SCRIPT_TYPES", "platform,function,extension"),
        ],
        Duration::from_secs(5),
    )
    .await;
    let function = &setup.function;
    let mut request_ids = Vec::new();
    for i in 0..5 {
        let output = function
            .invoke(event_for(&format!("t-{i}")), Some(TRACE.into()))
            .await
            .unwrap();
        request_ids.push(output.request_id);
        wait_idle(function).await;
    }
    let seen = wait_for(&setup.out, |seen| {
        of_type(&telemetry(seen), "platform.report").len() >= 5
    })
    .await;
    let subscribe = entries(&seen, "subscribe");
    assert_eq!(subscribe[0]["status"], 200);
    assert_eq!(subscribe[0]["body"], "OK");
    let records = telemetry(&seen);
    for init in [
        "platform.initStart",
        "platform.telemetrySubscription",
        "platform.extension",
        "platform.initRuntimeDone",
        "platform.initReport",
    ] {
        assert_eq!(of_type(&records, init).len(), 1, "{init}: {records:#?}");
    }
    let reports = of_type(&records, "platform.report");
    assert_eq!(reports.len(), 5);
    let reported: Vec<&str> = reports
        .iter()
        .map(|r| r["record"]["requestId"].as_str().unwrap())
        .collect();
    assert_eq!(
        reported,
        request_ids.iter().map(String::as_str).collect::<Vec<_>>()
    );
    for (i, report) in reports.iter().enumerate() {
        let record = &report["record"];
        let metrics = &record["metrics"];
        assert_eq!(record["status"], "success");
        assert_eq!(record["tracing"]["value"], TRACE);
        assert_eq!(metrics["memorySizeMB"], 256);
        let duration = metrics["durationMs"].as_f64().unwrap();
        let billed = metrics["billedDurationMs"].as_u64().unwrap();
        let init = metrics["initDurationMs"].as_f64();
        assert_eq!(
            init.is_some(),
            i == 0,
            "initDurationMs on the cold start only"
        );
        assert_eq!(
            billed,
            (duration + init.unwrap_or(0.0)).ceil() as u64,
            "billed = duration (+ init), rounded up"
        );
        let memory = metrics["maxMemoryUsedMB"].as_u64().unwrap();
        assert!((1..256).contains(&memory), "measured memory: {memory} MB");
        // Emitted once the invocation is over: after its runtimeDone.
        let done = of_type(&records, "platform.runtimeDone")
            .into_iter()
            .find(|r| r["record"]["requestId"] == record["requestId"])
            .expect("a runtimeDone per report");
        let at = |r: &Value| humantime::parse_rfc3339(r["time"].as_str().unwrap()).unwrap();
        assert!(at(report) >= at(done), "report {i} after its runtimeDone");
        assert!(
            records.iter().position(|r| r == *report) > records.iter().position(|r| r == done),
            "and delivered after it"
        );
    }
    assert_eq!(of_type(&records, "platform.start").len(), 5);
    assert_eq!(of_type(&records, "platform.runtimeDone").len(), 5);
    let lines = of_type(&records, "function");
    assert!(
        lines.iter().all(|l| l["record"].is_string()),
        "function records are the runtime's lines"
    );
    let own = of_type(&records, "extension");
    assert!(
        own.iter()
            .any(|l| l["record"] == "scripted-extension got INVOKE"),
        "the extension's own stdout comes back as extension records: {own:?}"
    );
    let stats = function.telemetry_stats();
    assert_eq!(stats.records_dropped, 0);
    assert_eq!(
        stats.function_lines,
        lines.len() as u64,
        "every function line delivered"
    );
    function.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_sends_the_event_with_a_two_second_deadline_then_kills_what_is_left() {
    let setup = payment_with_extension(
        "shutdown",
        &[("SCRIPT_IGNORE_SHUTDOWN", "1")],
        Duration::from_secs(5),
    )
    .await;
    let function = &setup.function;
    function.invoke(event_for("s-1"), None).await.unwrap();
    wait_idle(function).await;
    let pids = function.idle_environment_pids();
    assert_eq!(pids.len(), 2, "the runtime and the extension");
    let asked = epoch_ms();
    let started = Instant::now();
    function.shutdown().await;
    let took = started.elapsed();
    let seen = seen(&setup.out);
    let shutdown = entries(&seen, "SHUTDOWN");
    assert_eq!(shutdown.len(), 1);
    assert_eq!(shutdown[0]["payload"]["shutdownReason"], "spindown");
    let deadline = shutdown[0]["payload"]["deadlineMs"].as_u64().unwrap();
    assert!(
        (1_900..=2_100).contains(&(deadline - asked)),
        "deadline 2 s away: {}",
        deadline - asked
    );
    assert!(
        took >= Duration::from_millis(1_900) && took < Duration::from_secs(3),
        "an extension ignoring SHUTDOWN gets its 2 s, then is killed: {took:?}"
    );
    for pid in pids {
        assert!(
            !Path::new(&format!("/proc/{pid}")).exists()
                || std::fs::read_to_string(format!("/proc/{pid}/status"))
                    .is_ok_and(|s| s.contains("State:\tZ")),
            "process {pid} is gone"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_extension_that_exits_at_shutdown_ends_it_early() {
    let setup = payment_with_extension("prompt", &[], Duration::from_secs(5)).await;
    setup.function.invoke(event_for("p-1"), None).await.unwrap();
    let started = Instant::now();
    setup.function.shutdown().await;
    assert!(
        started.elapsed() < Duration::from_millis(1_500),
        "no fixed wait: {:?}",
        started.elapsed()
    );
    assert_eq!(entries(&seen(&setup.out), "SHUTDOWN").len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invoke_only_external_extension_gets_no_shutdown() {
    let setup = payment_with_extension(
        "invoke-only",
        &[("SCRIPT_EVENTS", "INVOKE")],
        Duration::from_secs(5),
    )
    .await;
    setup.function.invoke(event_for("i-1"), None).await.unwrap();
    setup.function.shutdown().await;
    let seen = seen(&setup.out);
    assert_eq!(entries(&seen, "INVOKE").len(), 1);
    assert!(entries(&seen, "SHUTDOWN").is_empty());
}
