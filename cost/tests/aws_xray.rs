//! `XrayTraces` against a fake X-Ray speaking REST-JSON (`POST /TraceSummaries`), as the local
//! stack's X-Ray API does.

mod support;

use std::collections::BTreeSet;

use lattice_cost::sources::aws::XrayTraces;
use lattice_cost::sources::{SourceError, TraceSource};
use serde_json::{json, Value};
use support::{fixture, stack, window, xray, FakeServer, Reply};

/// 2026-12-02T10:00Z and 11:00Z, epoch seconds.
const TEN: f64 = 1_796_205_600.0;
const ELEVEN: f64 = 1_796_209_200.0;

fn pages() -> Vec<Reply> {
    let Value::Array(pages) = fixture("aws-xray-get-trace-summaries.json") else {
        panic!("a list of pages");
    };
    pages.iter().map(Reply::rest_json).collect()
}

/// `BatchGetTraces`' answer for the three traces of [`pages`] (the API reference's shape: each
/// segment's `Document` is the segment as a JSON string), in two pages; the second trace's
/// service segment recorded the Lambda trace it ran under.
fn batch_pages() -> Vec<Reply> {
    let segment = |id: &str, lambda: Option<&str>| {
        let mut document =
            json!({"id": id, "name": "order", "trace_id": "1-692eb8a1-1a1b2c3d4e5f60718293a4b6"});
        if let Some(header) = lambda {
            document["metadata"] = json!({"lambda": {"trace_id": header}});
        }
        json!({"Id": id, "Document": document.to_string()})
    };
    vec![
        Reply::rest_json(&json!({
            "Traces": [
                {"Id": "1-692eb8a0-0a1b2c3d4e5f60718293a4b5", "Duration": 0.1, "Segments": [segment("5a0a0a0a0a0a0a0a", None)]},
                {"Id": "1-692eb8a1-1a1b2c3d4e5f60718293a4b6", "Duration": 0.1, "Segments": [
                    segment("5b0b0b0b0b0b0b0b", Some("Root=1-692eb8a1-ffff0000ffff0000ffff0000;Parent=6c0c0c0c0c0c0c0c;Sampled=0"))
                ]}
            ],
            "UnprocessedTraceIds": [],
            "NextToken": "more"
        })),
        Reply::rest_json(&json!({
            "Traces": [
                {"Id": "1-692eb8a2-2a1b2c3d4e5f60718293a4b7", "Duration": 0.1, "Segments": [
                    segment("5d0d0d0d0d0d0d0d", Some("Root=1-692eb8a2-eeee0000eeee0000eeee0000;Parent=7e0e0e0e0e0e0e0e;Sampled=1"))
                ]}
            ],
            "UnprocessedTraceIds": []
        })),
    ]
}

#[tokio::test]
async fn the_runs_traces_are_asked_by_trace_start_time_and_every_page_is_counted() {
    let mut replies = pages();
    replies.extend(batch_pages());
    let fake = FakeServer::replying(replies).await;
    let source = XrayTraces::new(xray(&fake.url));
    let window = window("2026-12-02T10:00:00Z", "2026-12-02T11:00:00Z");
    let count = source
        .traces(&stack(), &window, Some("run-42"))
        .await
        .unwrap();

    let mut requests = fake.requests();
    assert_eq!(requests.len(), 4);
    let batches = requests.split_off(2);
    for request in &batches {
        assert_eq!(
            (request.method.as_str(), request.path.as_str()),
            ("POST", "/Traces")
        );
    }
    assert_eq!(
        batches[0].json(),
        json!({"TraceIds": [
            "1-692eb8a0-0a1b2c3d4e5f60718293a4b5",
            "1-692eb8a1-1a1b2c3d4e5f60718293a4b6",
            "1-692eb8a2-2a1b2c3d4e5f60718293a4b7"
        ]})
    );
    assert_eq!(batches[1].json()["NextToken"], json!("more"));
    assert_eq!(
        count.lambda_trace_ids,
        BTreeSet::from([
            "1-692eb8a1-ffff0000ffff0000ffff0000".to_owned(),
            "1-692eb8a2-eeee0000eeee0000eeee0000".to_owned(),
        ])
    );
    for request in &requests {
        assert_eq!(
            (request.method.as_str(), request.path.as_str()),
            ("POST", "/TraceSummaries")
        );
        assert_eq!(request.header("content-type"), Some("application/json"));
    }
    let first = requests[0].json();
    assert_eq!(first["StartTime"].as_f64(), Some(TEN));
    assert_eq!(first["EndTime"].as_f64(), Some(ELEVEN));
    assert_eq!(first["TimeRangeType"], json!("TraceId"));
    assert_eq!(
        first["FilterExpression"],
        json!("annotation.run_id = \"run-42\"")
    );
    assert_eq!(first.get("NextToken"), None);
    let second = requests[1].json();
    assert_eq!(second["NextToken"], json!("page-2"));
    assert_eq!(second["FilterExpression"], first["FilterExpression"]);

    assert_eq!(
        count.trace_ids,
        BTreeSet::from([
            "1-692eb8a0-0a1b2c3d4e5f60718293a4b5".to_owned(),
            "1-692eb8a1-1a1b2c3d4e5f60718293a4b6".to_owned(),
            "1-692eb8a2-2a1b2c3d4e5f60718293a4b7".to_owned(),
        ])
    );
    assert_eq!(
        count.traces_scanned,
        120 + 45 + 3,
        "summaries scanned, then 3 read"
    );
}

#[tokio::test]
async fn without_a_run_id_each_function_is_asked_and_the_ids_united() {
    let page = |ids: &[&str], processed: u64| {
        let summaries: Vec<Value> = ids.iter().map(|id| json!({"Id": id})).collect();
        json!({"TraceSummaries": summaries, "ApproximateTime": TEN, "TracesProcessedCount": processed})
    };
    let fake = FakeServer::replying(vec![
        Reply::rest_json(&page(&["1-a-1", "1-a-2"], 7)),
        Reply::rest_json(&page(&["1-a-2", "1-b-1"], 5)),
        Reply::rest_json(&page(&[], 0)),
    ])
    .await;
    let source = XrayTraces::new(xray(&fake.url));
    let window = window("2026-12-02T10:00:00.500Z", "2026-12-02T10:00:01.250Z");
    let count = source.traces(&stack(), &window, None).await.unwrap();
    let filters: Vec<Value> = fake
        .requests()
        .iter()
        .map(|r| r.json()["FilterExpression"].clone())
        .collect();
    assert_eq!(
        filters,
        [
            json!("service(\"order\")"),
            json!("service(\"payment\")"),
            json!("service(\"inventory\")")
        ]
    );
    assert_eq!(
        count.trace_ids,
        BTreeSet::from(["1-a-1".to_owned(), "1-a-2".to_owned(), "1-b-1".to_owned()]),
        "a trace through two functions is one trace"
    );
    assert_eq!(count.traces_scanned, 12);
    assert!(
        count.lambda_trace_ids.is_empty(),
        "no traces are read without a run"
    );
    let body = fake.requests()[0].json();
    assert_eq!(body["StartTime"].as_f64(), Some(TEN + 0.5));
    assert_eq!(body["EndTime"].as_f64(), Some(TEN + 1.25));
}

#[tokio::test]
async fn an_answer_without_its_processed_count_is_an_error() {
    let fake = FakeServer::replying(vec![Reply::rest_json(&json!({"TraceSummaries": []}))]).await;
    let source = XrayTraces::new(xray(&fake.url));
    let window = window("2026-12-02T10:00:00Z", "2026-12-02T11:00:00Z");
    let error = source
        .traces(&stack(), &window, Some("run-42"))
        .await
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        "XRay.GetTraceSummaries answered what the report cannot use: the answer has no TracesProcessedCount"
    );
}

#[tokio::test]
async fn a_window_longer_than_six_hours_is_asked_in_consecutive_spans() {
    let page = |count: u64| json!({"TraceSummaries": [], "TracesProcessedCount": count});
    let fake = FakeServer::replying(vec![
        Reply::rest_json(&page(10)),
        Reply::rest_json(&page(20)),
        Reply::rest_json(&page(30)),
    ])
    .await;
    let source = XrayTraces::new(xray(&fake.url));
    let window = window("2026-12-02T00:00:00Z", "2026-12-02T13:00:00Z");
    let count = source
        .traces(&stack(), &window, Some("run-42"))
        .await
        .unwrap();
    assert_eq!(count.traces_scanned, 60);
    let midnight = TEN - 10.0 * 3600.0;
    let spans: Vec<(f64, f64)> = fake
        .requests()
        .iter()
        .map(|r| {
            let body = r.json();
            (
                body["StartTime"].as_f64().unwrap(),
                body["EndTime"].as_f64().unwrap(),
            )
        })
        .collect();
    let hour = 3600.0;
    assert_eq!(
        spans,
        vec![
            (midnight, midnight + 6.0 * hour),
            (midnight + 6.0 * hour, midnight + 12.0 * hour),
            (midnight + 12.0 * hour, midnight + 13.0 * hour),
        ]
    );
}

#[tokio::test]
async fn an_http_400_is_an_aws_error_with_x_rays_error_type() {
    let fake = FakeServer::replying(vec![Reply::rest_json_error(
        400,
        "InvalidRequestException",
        "Invalid filter expression",
    )])
    .await;
    let source = XrayTraces::new(xray(&fake.url));
    let window = window("2026-12-02T10:00:00Z", "2026-12-02T11:00:00Z");
    let error = source
        .traces(&stack(), &window, Some("run-42"))
        .await
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        "XRay.GetTraceSummaries: InvalidRequestException: Invalid filter expression"
    );
}

#[tokio::test]
async fn a_run_id_that_cannot_be_quoted_is_refused_before_any_call() {
    let fake = FakeServer::replying(Vec::new()).await;
    let source = XrayTraces::new(xray(&fake.url));
    let window = window("2026-12-02T10:00:00Z", "2026-12-02T11:00:00Z");
    let error = source
        .traces(&stack(), &window, Some("run\" OR 1"))
        .await
        .unwrap_err();
    assert!(matches!(
        error,
        SourceError::Answer {
            operation: "XRay.GetTraceSummaries",
            ..
        }
    ));
    assert!(error.to_string().contains("cannot be quoted"), "{error}");
    assert!(fake.requests().is_empty());
}
