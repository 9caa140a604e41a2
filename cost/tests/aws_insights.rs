//! `AwsAccessLog` against a fake CloudWatch Logs speaking JSON 1.1 (`X-Amz-Target:
//! Logs_20140328.*`).

mod support;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use lattice_cost::sources::aws::insights::ACCESS_LOG_QUERY;
use lattice_cost::sources::aws::AwsAccessLog;
use lattice_cost::sources::{AccessLogSource, AccessLogUsage, SourceError};
use lattice_cost::usage::UsageError;
use serde_json::{json, Value};
use support::{fixture, logs, stack, window, FakeServer, Recorded, Reply};

const GROUP: &str = "/aws/vendedlogs/vpc-lattice/lattice-stack";
const START_QUERY: &str = "Logs_20140328.StartQuery";
const GET_QUERY_RESULTS: &str = "Logs_20140328.GetQueryResults";
/// 2026-12-02T10:00Z and 11:00Z as clock hours.
const HOUR_10: u64 = 1_796_205_600 / 3600;
const HOUR_11: u64 = HOUR_10 + 1;

/// A fake Logs answering StartQuery with `q-1` and GetQueryResults with `pages` in turn (the
/// last one again when polled further).
async fn fake_logs(pages: Vec<Value>) -> FakeServer {
    let polls = Arc::new(AtomicUsize::new(0));
    FakeServer::start(
        move |request: &Recorded, _| match request.header("x-amz-target") {
            Some(START_QUERY) => Reply::json11(&json!({"queryId": "q-1"})),
            Some(GET_QUERY_RESULTS) => {
                let poll = polls.fetch_add(1, Ordering::SeqCst);
                Reply::json11(&pages[poll.min(pages.len() - 1)])
            }
            other => Reply::json11_error(400, "UnknownOperationException", &format!("{other:?}")),
        },
    )
    .await
}

fn source(fake: &FakeServer) -> AwsAccessLog {
    AwsAccessLog::new(logs(&fake.url), GROUP).with_poll_interval(Duration::from_millis(1))
}

fn pages() -> Vec<Value> {
    let Value::Array(pages) = fixture("aws-logs-get-query-results-access-log.json") else {
        panic!("a list of pages");
    };
    pages
}

#[tokio::test]
async fn the_access_log_query_keeps_the_window_to_the_millisecond_and_counts_by_hour() {
    let fake = fake_logs(pages()).await;
    let window = window("2026-12-02T10:00:30.250Z", "2026-12-02T11:20:10.500Z");
    let summary = source(&fake).access_log(&stack(), &window).await.unwrap();

    let requests = fake.requests();
    let targets: Vec<&str> = requests
        .iter()
        .filter_map(|r| r.header("x-amz-target"))
        .collect();
    assert_eq!(
        targets,
        vec![START_QUERY, GET_QUERY_RESULTS, GET_QUERY_RESULTS]
    );
    assert_eq!(
        requests[0].header("content-type"),
        Some("application/x-amz-json-1.1")
    );
    assert_eq!(
        requests[0].json(),
        json!({
            "logGroupName": GROUP,
            // Whole seconds covering the window; the filter keeps it exactly.
            "startTime": 1_796_205_630,
            "endTime": 1_796_210_411,
            "queryString": format!(
                "filter toMillis(@timestamp) >= 1796205630250 and toMillis(@timestamp) < 1796210410500\n| {ACCESS_LOG_QUERY}"
            ),
            "limit": 10000
        })
    );
    assert_eq!(requests[1].json(), json!({"queryId": "q-1"}));
    assert!(ACCESS_LOG_QUERY.starts_with("filter ispresent(serviceArn)\n| stats count(*) as requests, sum(bytesReceived) as bytesIn, sum(bytesSent) as bytesOut, sum(strlen(@message)) as logBytes by serviceArn, bin(1h) as hour"));

    assert_eq!(summary.bytes_scanned, 2_492_000);
    assert_eq!(
        summary.services["order"],
        AccessLogUsage {
            requests_by_hour: BTreeMap::from([(HOUR_10, 1000), (HOUR_11, 200)]),
            bytes_in: 324_000,
            bytes_out: 2_992_800,
            log_bytes: 1_872_000,
        }
    );
    assert_eq!(
        summary.services["payment"].requests_by_hour,
        BTreeMap::from([(HOUR_10, 400)])
    );
    assert_eq!(summary.services["inventory"], AccessLogUsage::default());
}

#[tokio::test]
async fn a_window_with_no_entries_answers_empty_usage_for_every_service() {
    let complete =
        json!({"results": [], "statistics": {"bytesScanned": 0.0}, "status": "Complete"});
    let fake = fake_logs(vec![complete]).await;
    let window = window("2026-12-02T10:00:00Z", "2026-12-02T11:00:00Z");
    let summary = source(&fake).access_log(&stack(), &window).await.unwrap();
    assert_eq!(summary.services.len(), 3);
    assert!(summary
        .services
        .values()
        .all(|u| *u == AccessLogUsage::default()));
    assert_eq!(summary.bytes_scanned, 0);
    let start = fake.requests()[0].json();
    assert_eq!(
        (start["startTime"].clone(), start["endTime"].clone()),
        (json!(1_796_205_600), json!(1_796_209_200))
    );
}

#[tokio::test]
async fn an_entry_of_a_service_outside_the_stack_is_an_error_naming_its_arn() {
    let stranger = "arn:aws:vpc-lattice:us-east-1:111122223333:service/svc-0stranger00000000";
    let complete = json!({"results": [[
        {"field": "serviceArn", "value": stranger},
        {"field": "hour", "value": "2026-12-02 10:00:00.000"},
        {"field": "requests", "value": "3"},
        {"field": "bytesIn", "value": "1"},
        {"field": "bytesOut", "value": "1"},
        {"field": "logBytes", "value": "1"}
    ]], "statistics": {"bytesScanned": 10.0}, "status": "Complete"});
    let fake = fake_logs(vec![complete]).await;
    let window = window("2026-12-02T10:00:00Z", "2026-12-02T11:00:00Z");
    let error = source(&fake)
        .access_log(&stack(), &window)
        .await
        .unwrap_err();
    match error {
        SourceError::Usage(UsageError::UnknownService { arn, known }) => {
            assert_eq!(arn, stranger);
            assert_eq!(known, "order, payment, inventory");
        }
        other => panic!("not UnknownService: {other}"),
    }
}

#[tokio::test]
async fn a_failed_query_is_an_answer_error() {
    let running = json!({"results": [], "status": "Running"});
    let failed = json!({"results": [], "status": "Failed"});
    let fake = fake_logs(vec![running, failed]).await;
    let window = window("2026-12-02T10:00:00Z", "2026-12-02T11:00:00Z");
    let error = source(&fake)
        .access_log(&stack(), &window)
        .await
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        "CloudWatchLogs.GetQueryResults answered what the report cannot use: query q-1 ended Failed: Logs Insights gave no result"
    );
    for status in ["Cancelled", "Timeout"] {
        let fake = fake_logs(vec![json!({"status": status})]).await;
        let error = source(&fake)
            .access_log(&stack(), &window)
            .await
            .unwrap_err();
        assert!(
            error
                .to_string()
                .contains(&format!("query q-1 ended {status}")),
            "{error}"
        );
    }
}

#[tokio::test]
async fn an_http_400_from_start_query_is_an_aws_error() {
    let fake = FakeServer::replying(vec![Reply::json11_error(
        400,
        "ResourceNotFoundException",
        "Log group '/aws/vendedlogs/vpc-lattice/lattice-stack' does not exist",
    )])
    .await;
    let window = window("2026-12-02T10:00:00Z", "2026-12-02T11:00:00Z");
    let error = source(&fake)
        .access_log(&stack(), &window)
        .await
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        "CloudWatchLogs.StartQuery: ResourceNotFoundException: Log group '/aws/vendedlogs/vpc-lattice/lattice-stack' does not exist"
    );
}

#[tokio::test]
async fn a_count_that_is_not_a_number_is_an_error() {
    let complete = json!({"results": [[
        {"field": "serviceArn", "value": "arn:aws:vpc-lattice:us-east-1:111122223333:service/svc-0order0000000000"},
        {"field": "hour", "value": "2026-12-02 10:00:00.000"},
        {"field": "requests", "value": "many"},
        {"field": "bytesIn", "value": "1"},
        {"field": "bytesOut", "value": "1"},
        {"field": "logBytes", "value": "1"}
    ]], "status": "Complete"});
    let fake = fake_logs(vec![complete]).await;
    let window = window("2026-12-02T10:00:00Z", "2026-12-02T11:00:00Z");
    let error = source(&fake)
        .access_log(&stack(), &window)
        .await
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        "CloudWatchLogs.GetQueryResults answered what the report cannot use: requests is \"many\", not a number"
    );
}
