//! `AwsLambdaReports` against a fake CloudWatch Logs (JSON 1.1) for the reports and a fake
//! CloudWatch (RPCv2 CBOR) for `IncomingBytes`.

mod support;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use lattice_cost::sources::aws::lambda::REPORT_QUERY;
use lattice_cost::sources::aws::AwsLambdaReports;
use lattice_cost::sources::{LambdaReportSource, LambdaSummary, SourceError, StackMap};
use lattice_cost::usage::{LambdaReport, UsageError};
use serde_json::{json, Value};
use support::{cloudwatch, fixture, logs, stack, window, FakeServer, Recorded, Reply};

const START_QUERY: &str = "Logs_20140328.StartQuery";
const GET_QUERY_RESULTS: &str = "Logs_20140328.GetQueryResults";
/// 2026-12-02T10:00Z, 10:30Z, 11:00Z in milliseconds.
const TEN_MS: i64 = 1_796_205_600_000;
const HALF_PAST_MS: i64 = 1_796_207_400_000;
const ELEVEN_MS: i64 = 1_796_209_200_000;

/// A fake Logs: each StartQuery gets the id `q<n>`, and its results are `answer(start body)`.
async fn fake_logs(answer: impl Fn(&Value) -> Value + Send + Sync + 'static) -> FakeServer {
    let started: Arc<Mutex<Vec<Value>>> = Arc::default();
    FakeServer::start(move |request: &Recorded, _| {
        let body = request.json();
        match request.header("x-amz-target") {
            Some(START_QUERY) => {
                let mut started = started.lock().unwrap();
                started.push(body);
                Reply::json11(&json!({"queryId": format!("q{}", started.len() - 1)}))
            }
            Some(GET_QUERY_RESULTS) => {
                let id = body["queryId"].as_str().unwrap_or("q?");
                let index: usize = id[1..].parse().unwrap_or(usize::MAX);
                match started.lock().unwrap().get(index) {
                    Some(start) => Reply::json11(&answer(start)),
                    None => Reply::json11_error(400, "InvalidParameterException", id),
                }
            }
            other => Reply::json11_error(400, "UnknownOperationException", &format!("{other:?}")),
        }
    })
    .await
}

fn reports_source(logs_fake: &FakeServer, metrics_fake: &FakeServer) -> AwsLambdaReports {
    AwsLambdaReports::new(logs(&logs_fake.url), cloudwatch(&metrics_fake.url))
        .with_poll_interval(Duration::from_millis(1))
}

fn empty_results() -> Value {
    json!({"results": [], "statistics": {"bytesScanned": 100.0}, "status": "Complete"})
}

/// The fixture's reports for order, nothing for the others; 40 KiB and 1 KiB ingested by
/// order's and payment's groups.
async fn reported() -> (FakeServer, FakeServer, LambdaSummary) {
    let logs_fake = fake_logs(|start| match start["logGroupName"].as_str() {
        Some("/aws/lambda/order") => fixture("aws-logs-get-query-results-lambda-reports.json"),
        _ => empty_results(),
    })
    .await;
    let bytes = json!({"MetricDataResults": [
        {"Id": "g0_bytes", "Timestamps": [1796205600], "Values": [40960.0], "StatusCode": "Complete"},
        {"Id": "g1_bytes", "Timestamps": [1796205600], "Values": [1024.0], "StatusCode": "Complete"}
    ]});
    let metrics_fake = FakeServer::replying(vec![Reply::cbor(&bytes)]).await;
    let window = window("2026-12-02T10:00:00Z", "2026-12-02T11:00:00Z");
    let source = reports_source(&logs_fake, &metrics_fake);
    let summary = source.lambda_reports(&stack(), &window).await.unwrap();
    (logs_fake, metrics_fake, summary)
}

#[tokio::test]
async fn each_functions_log_group_is_queried_and_its_incoming_bytes_asked() {
    let (logs_fake, metrics_fake, _) = reported().await;
    let starts: Vec<Value> = logs_fake
        .requests()
        .iter()
        .filter(|r| r.header("x-amz-target") == Some(START_QUERY))
        .map(Recorded::json)
        .collect();
    let groups: Vec<&str> = starts
        .iter()
        .map(|s| s["logGroupName"].as_str().unwrap())
        .collect();
    assert_eq!(
        groups,
        [
            "/aws/lambda/order",
            "/aws/lambda/payment",
            "/aws/lambda/inventory"
        ]
    );
    assert_eq!(
        starts[0]["queryString"],
        json!(format!(
            "filter toMillis(@timestamp) >= {TEN_MS} and toMillis(@timestamp) < {ELEVEN_MS}\n| {REPORT_QUERY}"
        ))
    );
    assert_eq!(REPORT_QUERY, "filter @type = \"REPORT\"\n| fields @message");
    let seconds = (starts[0]["startTime"].clone(), starts[0]["endTime"].clone());
    assert_eq!(seconds, (json!(1_796_205_600), json!(1_796_209_200)));

    let metric_body = metrics_fake.requests()[0].cbor();
    let queries = metric_body["MetricDataQueries"].as_array().unwrap();
    assert_eq!(queries.len(), 3);
    assert_eq!(
        queries[2],
        json!({
            "Id": "g2_bytes",
            "MetricStat": {
                "Metric": {
                    "Namespace": "AWS/Logs",
                    "MetricName": "IncomingBytes",
                    "Dimensions": [{"Name": "LogGroupName", "Value": "/aws/lambda/inventory"}]
                },
                "Period": 3600.0,
                "Stat": "Sum"
            },
            "ReturnData": true
        })
    );
}

#[tokio::test]
async fn the_report_lines_parse_as_lambda_wrote_them_and_bytes_are_the_metrics() {
    let (_, _, summary) = reported().await;
    let order = &summary.services["order"];
    let documented = LambdaReport {
        request_id: "8f507cfc-xmpl-4697-b07a-ac58fc914c95".into(),
        billed_ms: 16,
        memory_mb: 128,
        max_memory_used_mb: 56,
        init_ms: Some(130.49),
        trace_id: Some("1-5e34a614-10bdxmplf1fb44f07bc535a1".into()),
        sampled: Some(true),
    };
    let warm = LambdaReport {
        request_id: "3c2a4f1e-xmpl-4b8e-9d7a-1f0e2d3c4b5a".into(),
        billed_ms: 3,
        max_memory_used_mb: 57,
        init_ms: None,
        trace_id: Some("1-5e34a615-20bdxmplf1fb44f07bc535a2".into()),
        ..documented.clone()
    };
    assert_eq!(order.reports, vec![documented, warm]);
    assert_eq!(order.log_bytes, 40_960);
    assert_eq!(summary.services["payment"].log_bytes, 1_024);
    assert_eq!(summary.services["inventory"].log_bytes, 0);
    assert!(summary.services["inventory"].reports.is_empty());
    assert_eq!(summary.bytes_scanned, 3_150 + 100 + 100);
}

fn report_rows(prefix: &str, count: usize) -> Value {
    let rows: Vec<Value> = (0..count)
        .map(|i| {
            json!([{"field": "@message", "value": format!(
                "REPORT RequestId: {prefix}-{i}\tDuration: 1.00 ms\tBilled Duration: 2 ms\tMemory Size: 128 MB\tMax Memory Used: 30 MB\t"
            )}])
        })
        .collect();
    json!({"results": rows, "statistics": {"bytesScanned": (count * 100) as f64}, "status": "Complete"})
}

/// The `[start, end)` milliseconds of a StartQuery's filter.
fn filter_span(start: &Value) -> (i64, i64) {
    let query = start["queryString"].as_str().unwrap();
    let numbers: Vec<i64> = query
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|n| n.parse().ok())
        .filter(|n| *n > 1_000_000_000_000)
        .collect();
    (numbers[0], numbers[1])
}

#[tokio::test]
async fn a_query_answering_the_row_limit_is_asked_again_as_two_halves() {
    let logs_fake = fake_logs(|start| match filter_span(start) {
        (TEN_MS, ELEVEN_MS) => report_rows("full", 10_000),
        (TEN_MS, HALF_PAST_MS) => report_rows("first", 6_000),
        (HALF_PAST_MS, ELEVEN_MS) => report_rows("second", 4_500),
        other => json!({"status": "Failed", "unexpected": format!("{other:?}")}),
    })
    .await;
    let metrics_fake =
        FakeServer::replying(vec![Reply::cbor(&json!({"MetricDataResults": []}))]).await;
    let one = StackMap {
        services: stack().services.into_iter().take(1).collect(),
    };
    let window = window("2026-12-02T10:00:00Z", "2026-12-02T11:00:00Z");
    let summary = reports_source(&logs_fake, &metrics_fake)
        .lambda_reports(&one, &window)
        .await
        .unwrap();

    let spans: Vec<(i64, i64)> = logs_fake
        .requests()
        .iter()
        .filter(|r| r.header("x-amz-target") == Some(START_QUERY))
        .map(|r| filter_span(&r.json()))
        .collect();
    assert_eq!(
        spans,
        vec![
            (TEN_MS, ELEVEN_MS),
            (TEN_MS, HALF_PAST_MS),
            (HALF_PAST_MS, ELEVEN_MS)
        ]
    );
    let reports = &summary.services["order"].reports;
    assert_eq!(
        reports.len(),
        10_500,
        "every invocation of both halves, none of the full answer"
    );
    let prefixes: BTreeMap<&str, usize> = reports.iter().fold(BTreeMap::new(), |mut m, r| {
        *m.entry(r.request_id.split('-').next().unwrap())
            .or_default() += 1;
        m
    });
    assert_eq!(
        prefixes,
        BTreeMap::from([("first", 6_000), ("second", 4_500)])
    );
    assert_eq!(
        summary.bytes_scanned,
        1_000_000 + 600_000 + 450_000,
        "the full answer was billed too"
    );
}

#[tokio::test]
async fn a_report_line_that_does_not_parse_is_an_error_naming_the_field() {
    let logs_fake = fake_logs(|_| {
        json!({"results": [[{"field": "@message", "value": "REPORT RequestId: r1\tDuration: 2 ms"}]], "status": "Complete"})
    })
    .await;
    let metrics_fake =
        FakeServer::replying(vec![Reply::cbor(&json!({"MetricDataResults": []}))]).await;
    let window = window("2026-12-02T10:00:00Z", "2026-12-02T11:00:00Z");
    let error = reports_source(&logs_fake, &metrics_fake)
        .lambda_reports(&stack(), &window)
        .await
        .unwrap_err();
    assert!(
        matches!(
            error,
            SourceError::Usage(UsageError::Malformed {
                field: "Billed Duration",
                ..
            })
        ),
        "{error}"
    );
}

#[tokio::test]
async fn an_http_400_from_get_metric_data_is_an_aws_error() {
    let logs_fake = fake_logs(|_| empty_results()).await;
    let metrics_fake = FakeServer::replying(vec![Reply::cbor_error(
        400,
        "AccessDenied",
        "User is not authorized to perform: cloudwatch:GetMetricData",
    )])
    .await;
    let window = window("2026-12-02T10:00:00Z", "2026-12-02T11:00:00Z");
    let error = reports_source(&logs_fake, &metrics_fake)
        .lambda_reports(&stack(), &window)
        .await
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        "CloudWatch.GetMetricData: AccessDenied: User is not authorized to perform: cloudwatch:GetMetricData"
    );
}
