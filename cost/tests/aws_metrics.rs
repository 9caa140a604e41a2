//! `AwsLatticeMetrics` and `AwsDynamoDb` against a fake CloudWatch speaking Smithy RPCv2 CBOR.

mod support;

use std::collections::BTreeMap;

use lattice_cost::model::Arch;
use lattice_cost::sources::aws::{AwsDynamoDb, AwsLatticeMetrics};
use lattice_cost::sources::{
    DynamoDbSource, LatticeMetrics, LatticeMetricsSource, ServiceMapping, SourceError, StackMap,
};
use serde_json::{json, Value};
use support::{cloudwatch, fixture, stack, window, FakeServer, Reply};

const PATH: &str = "/service/GraniteServiceVersion20100801/operation/GetMetricData";
/// 2026-12-02T10:00:00Z and 11:00:00Z.
const TEN: f64 = 1_796_205_600.0;
const ELEVEN: f64 = 1_796_209_200.0;

fn pages(name: &str) -> Vec<Reply> {
    let Value::Array(pages) = fixture(name) else {
        panic!("{name} is a list of pages");
    };
    pages.iter().map(Reply::cbor).collect()
}

/// A count of `service` summed over every zone, as the adapter asks it.
fn zone_sum(id: &str, metric: &str, service: &str, period: u32) -> Value {
    json!({
        "Id": id,
        "Expression": format!(
            "SUM(SEARCH('{{AWS/VpcLattice,AvailabilityZone,Service}} MetricName=\"{metric}\" Service=\"{service}\"', 'Sum', {period}))"
        ),
        "ReturnData": true
    })
}

/// A percentile of `service` on the `Service`-only dimension set.
fn percentile(id: &str, service: &str, stat: &str, period: f64) -> Value {
    json!({
        "Id": id,
        "MetricStat": {
            "Metric": {
                "Namespace": "AWS/VpcLattice",
                "MetricName": "RequestTime",
                "Dimensions": [{"Name": "Service", "Value": service}]
            },
            "Period": period,
            "Stat": stat
        },
        "ReturnData": true
    })
}

fn ids(queries: &Value) -> Vec<String> {
    queries
        .as_array()
        .expect("a list of queries")
        .iter()
        .map(|q| q["Id"].as_str().expect("an id").to_owned())
        .collect()
}

/// The fixture's two pages answered for a window that is not minute-aligned (asked as 10:00 to
/// 11:00, one period of 3600 s).
async fn lattice_run() -> (FakeServer, BTreeMap<String, LatticeMetrics>) {
    let fake = FakeServer::replying(pages("aws-cloudwatch-get-metric-data-lattice.json")).await;
    let source = AwsLatticeMetrics::new(cloudwatch(&fake.url));
    let window = window("2026-12-02T10:00:30Z", "2026-12-02T10:59:10Z");
    let metrics = source.lattice_metrics(&stack(), &window).await.unwrap();
    (fake, metrics)
}

#[tokio::test]
async fn lattice_counts_are_summed_over_the_zones_and_percentiles_asked_of_the_service_alone() {
    let (fake, _) = lattice_run().await;
    let requests = fake.requests();
    assert_eq!(requests.len(), 2, "two pages");
    for request in &requests {
        assert_eq!(
            (request.method.as_str(), request.path.as_str()),
            ("POST", PATH)
        );
        assert_eq!(request.header("smithy-protocol"), Some("rpc-v2-cbor"));
        assert_eq!(request.header("content-type"), Some("application/cbor"));
    }
    let first = requests[0].cbor();
    assert_eq!(first["StartTime"], json!({"epoch": TEN}));
    assert_eq!(first["EndTime"], json!({"epoch": ELEVEN}));
    assert_eq!(first.get("NextToken"), None);
    let order = "svc-0order0000000000";
    let queries = first["MetricDataQueries"].as_array().unwrap();
    assert_eq!(
        queries[..8],
        [
            zone_sum("s0_requests", "TotalRequestCount", order, 3600),
            zone_sum("s0_c2", "HTTPCode_2XX_Count", order, 3600),
            zone_sum("s0_c3", "HTTPCode_3XX_Count", order, 3600),
            zone_sum("s0_c4", "HTTPCode_4XX_Count", order, 3600),
            zone_sum("s0_c5", "HTTPCode_5XX_Count", order, 3600),
            percentile("s0_p50", order, "p50", 3600.0),
            percentile("s0_p90", order, "p90", 3600.0),
            percentile("s0_p99", order, "p99", 3600.0),
        ]
    );
    let per_service = |i: usize| {
        ["requests", "c2", "c3", "c4", "c5", "p50", "p90", "p99"].map(|s| format!("s{i}_{s}"))
    };
    let expected: Vec<String> = (0..3).flat_map(per_service).collect();
    assert_eq!(
        ids(&first["MetricDataQueries"]),
        expected,
        "8 queries per service"
    );
    assert_eq!(
        queries[16],
        zone_sum(
            "s2_requests",
            "TotalRequestCount",
            "svc-0inventory000000",
            3600
        )
    );
    assert_eq!(
        queries[23],
        percentile("s2_p99", "svc-0inventory000000", "p99", 3600.0)
    );
    let second = requests[1].cbor();
    assert_eq!(second["NextToken"], json!("page-2"));
    assert_eq!(second["MetricDataQueries"], first["MetricDataQueries"]);
}

#[tokio::test]
async fn lattice_metrics_sum_the_pages_and_keep_each_percentile_as_answered() {
    let (_, metrics) = lattice_run().await;
    assert_eq!(
        metrics["order"],
        LatticeMetrics {
            requests: 700 + 500,
            p50_ms: Some(12.5),
            p90_ms: Some(40.0),
            p99_ms: Some(95.25),
            // 1200 requests, 1195 of them in a class: 5 got no response; no 1XX is published.
            status_classes: [5, 0, 1150, 0, 30, 15],
        }
    );
    assert_eq!(metrics["payment"].requests, 400);
    assert_eq!(metrics["payment"].p90_ms, Some(8.5));
    assert_eq!(metrics["payment"].status_classes, [0, 0, 400, 0, 0, 0]);
    assert_eq!(
        metrics["inventory"],
        LatticeMetrics::default(),
        "no datapoints: 0 requests"
    );
}

#[tokio::test]
async fn a_window_without_datapoints_answers_zero_requests_and_no_percentiles() {
    let fake = FakeServer::replying(vec![Reply::cbor(&json!({"MetricDataResults": []}))]).await;
    let source = AwsLatticeMetrics::new(cloudwatch(&fake.url));
    let window = window("2026-12-02T10:00:00Z", "2026-12-02T10:05:00Z");
    let metrics = source.lattice_metrics(&stack(), &window).await.unwrap();
    assert_eq!(metrics.len(), 3);
    assert!(metrics.values().all(|m| *m == LatticeMetrics::default()));
    let body = fake.requests()[0].cbor();
    let queries = &body["MetricDataQueries"];
    assert_eq!(
        queries[0],
        zone_sum(
            "s0_requests",
            "TotalRequestCount",
            "svc-0order0000000000",
            300
        ),
        "the window's one period, in the SEARCH"
    );
    assert_eq!(queries[5]["MetricStat"]["Period"], json!(300.0));
}

#[tokio::test]
async fn percentiles_the_service_alone_set_does_not_answer_are_none_without_an_error() {
    // Lattice answered the zone sums but nothing on the `Service`-only set.
    let page = json!({"MetricDataResults": [
        {"Id": "s0_requests", "Timestamps": [1796205600], "Values": [10.0], "StatusCode": "Complete"},
        {"Id": "s0_c2", "Timestamps": [1796205600], "Values": [10.0], "StatusCode": "Complete"},
        {"Id": "s0_p50", "Timestamps": [], "Values": [], "StatusCode": "Complete"},
        {"Id": "s0_p90", "Timestamps": [], "Values": [], "StatusCode": "Complete"},
        {"Id": "s0_p99", "Timestamps": [], "Values": [], "StatusCode": "Complete"}
    ]});
    let fake = FakeServer::replying(vec![Reply::cbor(&page)]).await;
    let source = AwsLatticeMetrics::new(cloudwatch(&fake.url));
    let window = window("2026-12-02T10:00:00Z", "2026-12-02T11:00:00Z");
    let metrics = source.lattice_metrics(&stack(), &window).await.unwrap();
    assert_eq!(
        metrics["order"],
        LatticeMetrics {
            requests: 10,
            p50_ms: None,
            p90_ms: None,
            p99_ms: None,
            status_classes: [0, 0, 10, 0, 0, 0],
        }
    );
}

#[tokio::test]
async fn a_percentile_answered_as_several_datapoints_is_an_error_never_an_average() {
    let page = json!({"MetricDataResults": [
        {"Id": "s0_requests", "Timestamps": [1796205600], "Values": [10.0], "StatusCode": "Complete"},
        {"Id": "s0_p50", "Timestamps": [1796205600, 1796205660], "Values": [5.0, 7.0], "StatusCode": "Complete"}
    ]});
    let fake = FakeServer::replying(vec![Reply::cbor(&page)]).await;
    let source = AwsLatticeMetrics::new(cloudwatch(&fake.url));
    let window = window("2026-12-02T10:00:00Z", "2026-12-02T11:00:00Z");
    let error = source.lattice_metrics(&stack(), &window).await.unwrap_err();
    assert_eq!(
        error.to_string(),
        "CloudWatch.GetMetricData answered what the report cannot use: s0_p50 answered 2 datapoints for one period: a percentile cannot be combined"
    );
}

#[tokio::test]
async fn an_http_400_is_an_aws_error_naming_the_operation_and_the_code() {
    let fake = FakeServer::replying(vec![Reply::cbor_error(
        400,
        "com.amazonaws.cloudwatch#InvalidParameterValueException",
        "The parameter Period must be a multiple of 60.",
    )])
    .await;
    let source = AwsLatticeMetrics::new(cloudwatch(&fake.url));
    let window = window("2026-12-02T10:00:00Z", "2026-12-02T11:00:00Z");
    let error = source.lattice_metrics(&stack(), &window).await.unwrap_err();
    assert!(matches!(
        error,
        SourceError::Aws {
            operation: "CloudWatch.GetMetricData",
            ..
        }
    ));
    assert_eq!(
        error.to_string(),
        "CloudWatch.GetMetricData: InvalidParameterValueException: The parameter Period must be a multiple of 60."
    );
    assert_eq!(fake.requests().len(), 1, "a client error is not retried");
}

#[tokio::test]
async fn a_failed_result_is_an_error_with_its_messages() {
    let page = json!({"MetricDataResults": [
        {"Id": "s0_requests", "Timestamps": [], "Values": [], "StatusCode": "Forbidden",
         "Messages": [{"Code": "Forbidden", "Value": "not authorized for AWS/VpcLattice"}]}
    ]});
    let fake = FakeServer::replying(vec![Reply::cbor(&page)]).await;
    let source = AwsLatticeMetrics::new(cloudwatch(&fake.url));
    let window = window("2026-12-02T10:00:00Z", "2026-12-02T11:00:00Z");
    let error = source.lattice_metrics(&stack(), &window).await.unwrap_err();
    assert_eq!(
        error.to_string(),
        "CloudWatch.GetMetricData answered what the report cannot use: query s0_requests ended Forbidden (Forbidden: not authorized for AWS/VpcLattice)"
    );
}

#[tokio::test]
async fn a_message_about_the_whole_call_is_an_error_not_a_partial_count() {
    let page = json!({
        "MetricDataResults": [
            {"Id": "s0_requests", "Timestamps": [1796205600], "Values": [10.0], "StatusCode": "Complete"}
        ],
        "Messages": [{"Code": "MaxMetricsExceeded", "Value": "Maximum number of allowed metrics exceeded. Your search may have been limited."}]
    });
    let fake = FakeServer::replying(vec![Reply::cbor(&page)]).await;
    let source = AwsLatticeMetrics::new(cloudwatch(&fake.url));
    let window = window("2026-12-02T10:00:00Z", "2026-12-02T11:00:00Z");
    let error = source.lattice_metrics(&stack(), &window).await.unwrap_err();
    assert_eq!(
        error.to_string(),
        "CloudWatch.GetMetricData answered what the report cannot use: a message about the whole call, whose figures may be incomplete: MaxMetricsExceeded: Maximum number of allowed metrics exceeded. Your search may have been limited."
    );
}

fn services(count: usize) -> StackMap {
    let services = (0..count)
        .map(|i| ServiceMapping {
            name: format!("s{i:02}"),
            service_arn: format!("arn:aws:vpc-lattice:us-east-1:111122223333:service/svc-{i:02}"),
            function_name: format!("f{i:02}"),
            arch: Arch::Arm64,
            tables: Vec::new(),
        })
        .collect();
    StackMap { services }
}

#[tokio::test]
async fn a_call_carries_at_most_50_searches_whole_services_first() {
    let empty = Reply::cbor(&json!({"MetricDataResults": []}));
    let fake = FakeServer::replying(vec![empty; 6]).await;
    let source = AwsLatticeMetrics::new(cloudwatch(&fake.url));
    let window = window("2026-12-02T10:00:00Z", "2026-12-02T11:00:00Z");
    let metrics = source
        .lattice_metrics(&services(56), &window)
        .await
        .unwrap();
    assert_eq!(metrics.len(), 56);
    let calls: Vec<Vec<String>> = fake
        .requests()
        .iter()
        .map(|r| ids(&r.cbor()["MetricDataQueries"]))
        .collect();
    let sizes: Vec<usize> = calls.iter().map(Vec::len).collect();
    // 5 searches and 3 percentiles a service: 10 services (50 searches) a call.
    assert_eq!(sizes, vec![80, 80, 80, 80, 80, 48]);
    assert_eq!(
        (calls[0][79].as_str(), calls[1][0].as_str()),
        ("s9_p99", "s10_requests")
    );
    assert_eq!(calls[5].last().map(String::as_str), Some("s55_p99"));
}

#[tokio::test]
async fn more_than_500_queries_are_asked_in_calls_of_at_most_500() {
    let mut stack = services(1);
    stack.services[0].tables = (0..251).map(|t| format!("table{t}")).collect();
    let empty = Reply::cbor(&json!({"MetricDataResults": []}));
    let fake = FakeServer::replying(vec![empty.clone(), empty]).await;
    let source = AwsDynamoDb::new(cloudwatch(&fake.url));
    let window = window("2026-12-02T10:00:00Z", "2026-12-02T11:00:00Z");
    let units = source.dynamodb_units(&stack, &window).await.unwrap();
    assert_eq!((units["s00"].read, units["s00"].write), (0.0, 0.0));
    let calls: Vec<Vec<String>> = fake
        .requests()
        .iter()
        .map(|r| ids(&r.cbor()["MetricDataQueries"]))
        .collect();
    assert_eq!(calls.iter().map(Vec::len).collect::<Vec<_>>(), vec![500, 2]);
    assert_eq!(calls[1], vec!["t250_read", "t250_write"]);
}

#[tokio::test]
async fn dynamodb_units_are_charged_to_the_service_owning_each_table() {
    let page = json!({"MetricDataResults": [
        {"Id": "t0_read", "Timestamps": [1796205600], "Values": [12.5], "StatusCode": "Complete"},
        {"Id": "t0_write", "Timestamps": [1796205600], "Values": [1200.0], "StatusCode": "Complete"},
        {"Id": "t1_write", "Timestamps": [1796205600], "Values": [400.0], "StatusCode": "Complete"},
        {"Id": "t2_read", "Timestamps": [1796205600], "Values": [800.5], "StatusCode": "Complete"},
        {"Id": "t2_write", "Timestamps": [1796205600], "Values": [300.0], "StatusCode": "Complete"},
        {"Id": "t3_write", "Timestamps": [1796205600], "Values": [300.0], "StatusCode": "Complete"}
    ]});
    let fake = FakeServer::replying(vec![Reply::cbor(&page)]).await;
    let source = AwsDynamoDb::new(cloudwatch(&fake.url));
    let window = window("2026-12-02T10:00:00Z", "2026-12-02T11:00:00Z");
    let units = source.dynamodb_units(&stack(), &window).await.unwrap();

    let body = fake.requests()[0].cbor();
    let queries = body["MetricDataQueries"].as_array().unwrap();
    let asked: Vec<(&str, &str, &str)> = queries
        .iter()
        .map(|q| {
            let metric = &q["MetricStat"]["Metric"];
            assert_eq!(metric["Namespace"], json!("AWS/DynamoDB"));
            assert_eq!(metric["Dimensions"][0]["Name"], json!("TableName"));
            assert_eq!(q["MetricStat"]["Stat"], json!("Sum"));
            (
                q["Id"].as_str().unwrap(),
                metric["MetricName"].as_str().unwrap(),
                metric["Dimensions"][0]["Value"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        asked,
        vec![
            ("t0_read", "ConsumedReadCapacityUnits", "orders"),
            ("t0_write", "ConsumedWriteCapacityUnits", "orders"),
            ("t1_read", "ConsumedReadCapacityUnits", "payments"),
            ("t1_write", "ConsumedWriteCapacityUnits", "payments"),
            ("t2_read", "ConsumedReadCapacityUnits", "inventory"),
            ("t2_write", "ConsumedWriteCapacityUnits", "inventory"),
            ("t3_read", "ConsumedReadCapacityUnits", "reservations"),
            ("t3_write", "ConsumedWriteCapacityUnits", "reservations"),
        ]
    );
    assert_eq!((units["order"].read, units["order"].write), (12.5, 1200.0));
    assert_eq!(
        (units["payment"].read, units["payment"].write),
        (0.0, 400.0)
    );
    assert_eq!(
        (units["inventory"].read, units["inventory"].write),
        (800.5, 600.0)
    );
}
