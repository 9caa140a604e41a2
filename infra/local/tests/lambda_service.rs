//! The real payment binary run as Lambda execution environments through the local Runtime API.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use local_stack::binaries::service_binary;
use local_stack::dynamodb::{DynamoDbSetup, StackDynamoDb};
use local_stack::lambda::function::{Function, FunctionConfig, InvokeError, InvokeOutput};
use local_stack::lambda::function_log::FunctionLog;
use serde_json::{json, Value};

const EVENT: &str =
    include_str!("../../../services/payment/tests/fixtures/lattice-v2-post-payment.json");

/// The payment function over its own DynamoDB (kept alive by the caller).
async fn payment(
    latency_ms: &str,
    timeout: Duration,
    concurrency: usize,
) -> (Function, StackDynamoDb) {
    payment_logged(latency_ms, timeout, concurrency, None).await
}

/// [`payment`], writing its log group to `log`.
async fn payment_logged(
    latency_ms: &str,
    timeout: Duration,
    concurrency: usize,
    log: Option<Arc<FunctionLog>>,
) -> (Function, StackDynamoDb) {
    let dynamodb = StackDynamoDb::start(&DynamoDbSetup::default())
        .await
        .expect("DynamoDB");
    let mut env = vec![
        ("PAYMENT_LATENCY_MS".into(), latency_ms.into()),
        ("PAYMENT_DECLINE_RATE".into(), "0".into()),
        ("PAYMENT_FAULT_RATE".into(), "0".into()),
        // A daemon address nobody listens on: telemetry must not matter.
        ("AWS_XRAY_DAEMON_ADDRESS".into(), "127.0.0.1:9".into()),
        ("AWS_ACCESS_KEY_ID".into(), "local".into()),
        ("AWS_SECRET_ACCESS_KEY".into(), "local".into()),
    ];
    env.extend(dynamodb.function_env());
    let function = Function::new(FunctionConfig {
        name: "payment".into(),
        binary: service_binary("payment").expect("payment binary"),
        env,
        memory_mb: 128,
        timeout,
        concurrency,
        region: "eu-west-1".into(),
        account_id: "123456789012".into(),
        xray_daemon: None,
        show_logs: false,
        extensions: Vec::new(),
        log,
    });
    (function, dynamodb)
}

fn event_for(order_id: &str) -> Bytes {
    let mut event: Value = serde_json::from_str(EVENT).unwrap();
    event["body"] =
        json!(json!({"order_id": order_id, "amount": 10.0, "currency": "EUR"}).to_string());
    Bytes::from(event.to_string())
}

#[tokio::test]
async fn cold_then_warm_invocations_answer_in_lattice_format() {
    let (function, _dynamodb) = payment("0", Duration::from_secs(3), 2).await;
    let first = function
        .invoke(
            event_for("o-1"),
            Some(
                "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=0".into(),
            ),
        )
        .await
        .unwrap();
    assert!(
        first.init_duration.is_some(),
        "first invocation is a cold start"
    );
    let answer: Value = serde_json::from_slice(&first.payload).unwrap();
    assert_eq!(answer["statusCode"], 200);
    assert_eq!(answer["isBase64Encoded"], false);
    let body: Value = serde_json::from_str(answer["body"].as_str().unwrap()).unwrap();
    assert_eq!(body["order_id"], "o-1");
    assert_eq!(body["status"], "approved");

    let second = function.invoke(event_for("o-2"), None).await.unwrap();
    assert!(
        second.init_duration.is_none(),
        "the idle environment is reused"
    );
    assert_ne!(first.request_id, second.request_id);
    let stats = function.stats();
    assert_eq!(stats.environments_started, 1);
    assert_eq!(function.idle_environments(), 1);
}

#[tokio::test]
async fn the_log_group_holds_start_end_and_a_report_per_invocation_around_the_functions_lines() {
    let dir = std::env::temp_dir().join(format!("lambda-log-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let log = Arc::new(FunctionLog::open(&dir, "payment").unwrap());
    let (function, _dynamodb) =
        payment_logged("0", Duration::from_secs(3), 1, Some(Arc::clone(&log))).await;
    let header = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1";
    let first = function
        .invoke(event_for("o-1"), Some(header.into()))
        .await
        .unwrap();
    let second = function.invoke(event_for("o-2"), None).await.unwrap();
    function.shutdown().await;
    log.flush();
    let text = std::fs::read_to_string(dir.join("payment.jsonl")).unwrap();
    let messages: Vec<String> = text
        .lines()
        .map(|line| {
            serde_json::from_str::<Value>(line).unwrap()["message"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    let lambda_lines: Vec<&String> = messages
        .iter()
        .filter(|m| {
            ["START ", "END ", "REPORT "]
                .iter()
                .any(|p| m.starts_with(p))
        })
        .collect();
    assert_eq!(lambda_lines.len(), 6, "{messages:#?}");
    let (id1, id2) = (&first.request_id, &second.request_id);
    assert_eq!(
        *lambda_lines[0],
        format!("START RequestId: {id1} Version: $LATEST")
    );
    assert_eq!(*lambda_lines[1], format!("END RequestId: {id1}"));
    let cold = lambda_lines[2];
    assert!(
        cold.starts_with(&format!("REPORT RequestId: {id1}\tDuration: ")),
        "{cold}"
    );
    assert!(
        cold.contains("\tMemory Size: 128 MB\tMax Memory Used: "),
        "{cold}"
    );
    assert!(cold.contains("\tInit Duration: "), "a cold start: {cold}");
    assert!(
        cold.ends_with("\nXRAY TraceId: 1-5759e988-bd862e3fe1be46a994272793\tSegmentId: 53995c3f42cd8ad8\tSampled: true\t"),
        "{cold}"
    );
    let billed: u64 = cold
        .split("Billed Duration: ")
        .nth(1)
        .and_then(|rest| rest.split(" ms").next())
        .and_then(|ms| ms.parse().ok())
        .unwrap();
    let init = first.init_duration.unwrap();
    assert!(
        billed as f64 >= (first.duration + init).as_secs_f64() * 1000.0,
        "billed {billed} ms covers duration {:?} + init {init:?}",
        first.duration
    );
    assert_eq!(
        *lambda_lines[3],
        format!("START RequestId: {id2} Version: $LATEST")
    );
    let warm = lambda_lines[5];
    assert!(
        !warm.contains("Init Duration") && !warm.contains("XRAY"),
        "{warm}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Invokes `function` once per order id, all at once; the outcomes in the ids' order.
async fn invoke_at_once(
    function: &Arc<Function>,
    order_ids: impl IntoIterator<Item = String>,
) -> Vec<Result<InvokeOutput, InvokeError>> {
    let calls: Vec<_> = order_ids
        .into_iter()
        .map(|id| {
            let function = Arc::clone(function);
            tokio::spawn(async move { function.invoke(event_for(&id), None).await })
        })
        .collect();
    let mut outcomes = Vec::new();
    for call in calls {
        outcomes.push(call.await.unwrap());
    }
    outcomes
}

#[tokio::test]
async fn past_the_concurrency_limit_is_throttled() {
    let (function, _dynamodb) = payment("300", Duration::from_secs(3), 2).await;
    let function = Arc::new(function);
    let mut ok = 0;
    let mut throttled = 0;
    for outcome in invoke_at_once(&function, (0..3).map(|i| format!("c-{i}"))).await {
        match outcome {
            Ok(_) => ok += 1,
            Err(InvokeError::Throttled) => throttled += 1,
            Err(other) => panic!("unexpected {other}"),
        }
    }
    assert_eq!((ok, throttled), (2, 1));
    assert_eq!(function.stats().environments_started, 2);
}

#[tokio::test]
async fn a_waiting_invocation_takes_an_environment_freed_before_its_own_init_slot() {
    // One init slot; a warm invocation answers far faster than an environment starts.
    let (function, _dynamodb) = payment("0", Duration::from_secs(3), 3).await;
    let function = Arc::new(function.with_init_slots(1));
    function.invoke(event_for("w-0"), None).await.unwrap();
    let mut cold = 0;
    for outcome in invoke_at_once(&function, (1..4).map(|i| format!("w-{i}"))).await {
        let output = outcome.expect("no throttling, no failure");
        cold += usize::from(output.init_duration.is_some());
    }
    // Of the three, one took the warm environment, one got the init slot and started a second,
    // and the third took the warm one back when its first invocation ended, well before a third
    // environment could have started.
    assert_eq!(function.stats().environments_started, 2);
    assert_eq!(cold, 1);
}

#[tokio::test]
async fn timeout_fails_like_lambda_and_recycles_the_environment() {
    let (function, _dynamodb) = payment("1000", Duration::from_millis(200), 1).await;
    let error = function.invoke(event_for("slow"), None).await.unwrap_err();
    assert_eq!(
        error,
        InvokeError::Timeout("Task timed out after 0.20 seconds".into())
    );
    assert_eq!(
        function.idle_environments(),
        0,
        "a timed-out environment is not reused"
    );
    assert_eq!(function.stats().environments_lost, 1);
    for _ in 0..100 {
        if function.process_ids().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(
        function.process_ids().is_empty(),
        "the timed-out process was killed"
    );
}

#[tokio::test]
async fn killed_environment_fails_the_invocation_and_is_replaced() {
    let (function, _dynamodb) = payment("1500", Duration::from_secs(5), 1).await;
    let function = Arc::new(function);
    let running = {
        let function = Arc::clone(&function);
        tokio::spawn(async move { function.invoke(event_for("doomed"), None).await })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    // Kill this function's environment from outside, as a crash would.
    let pids = function.process_ids();
    assert_eq!(pids.len(), 1);
    let status = std::process::Command::new("kill")
        .args(["-KILL", &pids[0].to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    match running.await.unwrap() {
        Err(InvokeError::EnvironmentExited(why)) => assert!(why.contains("signal"), "{why}"),
        other => panic!("expected the environment to exit, got {other:?}"),
    }
    let recovered = function.invoke(event_for("after"), None).await.unwrap();
    assert!(
        recovered.init_duration.is_some(),
        "a new environment was started"
    );
    assert_eq!(function.stats().environments_started, 2);
}

#[tokio::test]
async fn an_event_the_function_cannot_read_is_a_function_error() {
    let (function, _dynamodb) = payment("0", Duration::from_secs(3), 1).await;
    let error = function
        .invoke(Bytes::from_static(b"{\"not\":\"lattice\"}"), None)
        .await
        .unwrap_err();
    match error {
        InvokeError::Function { body, .. } => {
            let body: Value = serde_json::from_slice(&body).unwrap();
            assert!(
                body["errorType"].is_string() && body["errorMessage"].is_string(),
                "{body}"
            );
        }
        other => panic!("expected a function error, got {other:?}"),
    }
    assert!(
        function.invoke(event_for("fine"), None).await.is_ok(),
        "the environment survives a function error"
    );
}
