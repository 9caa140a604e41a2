//! The traffic analytics, end to end with the real binaries: every access-log line the stack
//! writes goes through the emulated Firehose stream and the real `access-log-transform` function
//! into the search engine, exactly once, or into a backup folder with Firehose's record format;
//! never nowhere.

mod support;

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use local_stack::firehose::bucket::{OPENSEARCH_FAILED, PROCESSING_FAILED};
use local_stack::firehose::{FirehoseSetup, FirehoseStats};
use local_stack::stack::LocalStack;
use serde_json::{json, Value};

fn setup() -> FirehoseSetup {
    FirehoseSetup {
        buffer_interval: Duration::from_millis(200),
        retry_duration: Duration::from_secs(1),
        ..FirehoseSetup::default()
    }
}

async fn start(test: &str, setup: FirehoseSetup) -> LocalStack {
    support::start(test, &[], |config| config.analytics = Some(setup)).await
}

/// Five signed orders and one unsigned request (denied by the auth policy).
async fn traffic(stack: &LocalStack) {
    let url = format!("{}/orders", stack.service_url("order").unwrap());
    let key = stack.loadgen_key().unwrap();
    for i in 0..5 {
        let request = support::request(
            &url,
            &support::order(&format!("an-{i}")),
            Some(key),
            SystemTime::now(),
            None,
        );
        assert_eq!(support::send(request).await.0, 201);
    }
    let unsigned = support::request(&url, &support::order("an-x"), None, SystemTime::now(), None);
    assert_eq!(support::send(unsigned).await.0, 403);
}

async fn drained(stack: &LocalStack) -> FirehoseStats {
    let stream = stack.firehose.as_ref().expect("analytics on");
    let stats = stream.drain(Duration::from_secs(30)).await;
    assert_eq!(stats.accounted(), stats.received, "{stats:?}");
    stats
}

async fn search(stack: &LocalStack, body: Value) -> Value {
    let url = format!("{}/lattice-access-*/_search", stack.state.search.url);
    let client = reqwest::Client::new();
    let _ = client
        .post(format!("{}/_refresh", stack.state.search.url))
        .send()
        .await;
    let response = client
        .post(url)
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    serde_json::from_str(&response.text().await.unwrap()).unwrap()
}

/// (service name, status) → lines, from the access log itself.
fn log_counts(stack: &LocalStack) -> BTreeMap<(String, u64), u64> {
    let names: BTreeMap<&str, &str> = stack
        .state
        .services
        .iter()
        .map(|(n, s)| (s.service_arn.as_str(), n.as_str()))
        .collect();
    let mut counts = BTreeMap::new();
    for line in support::access_log(stack) {
        let name = names[line["serviceArn"].as_str().unwrap()].to_owned();
        *counts
            .entry((name, line["responseCode"].as_u64().unwrap()))
            .or_default() += 1;
    }
    counts
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_access_log_line_is_one_document_with_the_log_s_counts() {
    let stack = start("analytics-e2e", setup()).await;
    traffic(&stack).await;
    let stats = drained(&stack).await;
    let expected = log_counts(&stack);
    let lines: u64 = expected.values().sum();
    // order ×6 (one denied), payment ×5, inventory ×5.
    assert_eq!(lines, 16);
    assert_eq!((stats.received, stats.indexed), (16, 16), "{stats:?}");
    assert_eq!(
        stats.dropped + stats.processing_failed + stats.failed_documents,
        0
    );

    let answer = search(
        &stack,
        json!({"size": 0, "track_total_hits": true, "aggs": {
        "service": {"terms": {"field": "service", "size": 10},
            "aggs": {"status": {"terms": {"field": "responseCode", "size": 10}}}}}}),
    )
    .await;
    assert_eq!(answer["hits"]["total"]["value"], lines);
    let mut indexed = BTreeMap::new();
    for service in answer["aggregations"]["service"]["buckets"]
        .as_array()
        .unwrap()
    {
        for status in service["status"]["buckets"].as_array().unwrap() {
            indexed.insert(
                (
                    service["key"].as_str().unwrap().to_owned(),
                    status["key"].as_u64().unwrap(),
                ),
                status["doc_count"].as_u64().unwrap(),
            );
        }
    }
    assert_eq!(indexed, expected);

    let denied = search(&stack, json!({"query": {"term": {"authDenied": true}}})).await;
    let hits = denied["hits"]["hits"].as_array().unwrap();
    assert_eq!(hits.len(), 1);
    let document = &hits[0]["_source"];
    assert_eq!(document["service"], "order");
    assert_eq!(document["responseCode"], 403);
    assert_eq!(document["responseClass"], "4xx");
    assert_eq!(document["isError"], true);
    assert!(
        document.get("targetIpPort").is_none() && document.get("target").is_none(),
        "{document}"
    );
    let index = hits[0]["_index"].as_str().unwrap();
    let today = humantime::format_rfc3339_seconds(SystemTime::now()).to_string();
    assert_eq!(index, format!("lattice-access-{}", &today[..10]));

    let payment = search(
        &stack,
        json!({"query": {"term": {"service": "payment"}}, "size": 1}),
    )
    .await;
    let document = &payment["hits"]["hits"][0]["_source"];
    assert_eq!(document["callerRole"], "order-function");
    assert_eq!(document["responseClass"], "2xx");
    assert!(
        document["source"]["ip"].is_string() && document["source"]["port"].is_u64(),
        "{document}"
    );
    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transform_that_breaks_the_contract_sends_the_batch_to_processing_failed() {
    for (fault, code) in [
        ("omit-record", "Lambda.MissingRecordId"),
        ("duplicate-record", "Lambda.DuplicatedRecordId"),
        ("malformed-response", "Lambda.JsonProcessingException"),
    ] {
        let mut broken = setup();
        broken.transform_env = vec![("TRANSFORM_FAULT".into(), fault.into())];
        broken.processor_retries = 2;
        let stack = start(&format!("analytics-{fault}"), broken).await;
        traffic(&stack).await;
        let stats = drained(&stack).await;
        assert_eq!(
            (stats.indexed, stats.processing_failed),
            (0, 16),
            "{fault}: {stats:?}"
        );
        // Each batch: the first invocation and two retries.
        assert_eq!(stats.failed_invocations, stats.invocations, "{fault}");
        assert_eq!(stats.invocations % 3, 0, "{fault}: {stats:?}");
        let records = stack
            .firehose
            .as_ref()
            .unwrap()
            .bucket()
            .records(PROCESSING_FAILED);
        assert_eq!(records.len(), 16, "{fault}");
        let log_lines: Vec<String> = support::access_log(&stack)
            .iter()
            .map(Value::to_string)
            .collect();
        for record in &records {
            assert_eq!(record["errorCode"], code, "{fault}");
            assert_eq!(record["attemptsMade"], 3);
            assert!(record["lambdaArn"]
                .as_str()
                .unwrap()
                .ends_with(":function:access-log-transform:$LATEST"));
            let raw = base64::Engine::decode(
                &base64::engine::general_purpose::STANDARD,
                record["rawData"].as_str().unwrap(),
            )
            .unwrap();
            let line: Value = serde_json::from_slice(&raw).unwrap();
            assert!(log_lines.contains(&line.to_string()), "{line}");
        }
        stack.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_document_the_mapping_rejects_lands_in_the_failed_documents_folder() {
    let stack = start("analytics-mapping", setup()).await;
    let stream = stack.firehose.as_ref().unwrap();
    let entry: Value =
        serde_json::from_str(include_str!("fixtures/lattice-access-log-entry.json")).unwrap();
    let mut slow = entry.clone();
    slow["duration"] = json!("slow");
    stream.put(entry.to_string().into_bytes());
    stream.put(slow.to_string().into_bytes());
    stream.put(b"not an access log".to_vec());
    let stats = drained(&stack).await;
    assert_eq!(
        (
            stats.indexed,
            stats.failed_documents,
            stats.processing_failed
        ),
        (1, 1, 1),
        "{stats:?}"
    );
    let failed = stream.bucket().records(OPENSEARCH_FAILED);
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0]["errorCode"], "mapper_parsing_exception");
    assert!(failed[0]["esIndexName"]
        .as_str()
        .unwrap()
        .starts_with("lattice-access-"));
    let raw = base64::Engine::decode(
        &base64::engine::general_purpose::STANDARD,
        failed[0]["rawData"].as_str().unwrap(),
    )
    .unwrap();
    let document: Value = serde_json::from_slice(&raw).unwrap();
    assert_eq!(document["duration"], "slow");
    let transform_failed = stream.bucket().records(PROCESSING_FAILED);
    assert_eq!(transform_failed[0]["errorCode"], "Lambda.ProcessingFailed");
    assert_eq!(transform_failed[0]["rawData"], "bm90IGFuIGFjY2VzcyBsb2c=");
    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_search_engine_down_documents_are_retried_then_backed_up_and_requests_unharmed() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let mut down = setup();
    down.destination_url = Some(dead);
    let stack = start("analytics-down", down).await;
    traffic(&stack).await; // asserts every order still answered 201
    let stats = drained(&stack).await;
    assert_eq!(
        (stats.indexed, stats.failed_documents),
        (0, 16),
        "{stats:?}"
    );
    assert!(
        stats.bulk_requests >= 2 * stats.invocations,
        "retried: {stats:?}"
    );
    let failed = stack
        .firehose
        .as_ref()
        .unwrap()
        .bucket()
        .records(OPENSEARCH_FAILED);
    assert_eq!(failed.len(), 16);
    assert!(failed
        .iter()
        .all(|r| r["errorCode"] == "OS.ConnectionFailed" && r["attemptsMade"].as_u64() >= Some(2)));
    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stream_signs_for_an_engine_that_requires_sigv4_and_logs_in_to_one_that_requires_basic()
{
    let entry = include_str!("fixtures/lattice-access-log-entry.json")
        .trim()
        .as_bytes()
        .to_vec();
    for (test, sigv4, basic) in [
        ("analytics-sigv4", true, None),
        (
            "analytics-basic",
            false,
            Some(("firehose".to_owned(), "local-only".to_owned())),
        ),
    ] {
        let stack = support::start(test, &[], |config| {
            config.analytics = Some(setup());
            config.search.sigv4 = sigv4;
            config.search.basic_auth = basic.clone();
        })
        .await;
        let stream = stack.firehose.as_ref().unwrap();
        stream.put(entry.clone());
        let stats = drained(&stack).await;
        assert_eq!(
            (stats.indexed, stats.failed_documents),
            (1, 0),
            "{test}: {stats:?}"
        );
        let anonymous = reqwest::get(format!(
            "{}/lattice-access-*/_count",
            stack.state.search.url
        ))
        .await
        .unwrap();
        assert_eq!(
            anonymous.status().as_u16(),
            if sigv4 { 403 } else { 401 },
            "{test}"
        );
        stack.shutdown().await;
    }
}
