//! `CostExplorerBill` against a fake Cost Explorer speaking JSON 1.1 (`X-Amz-Target:
//! AWSInsightsIndexService.*`).

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use lattice_cost::sources::aws::CostExplorerBill;
use lattice_cost::sources::{Bill, BillLine, BillSource, SourceError};
use serde_json::{json, Value};
use support::{cost_explorer, fixture, window, FakeServer, Recorded, Reply};

const DIMENSIONS: &str = "AWSInsightsIndexService.GetDimensionValues";
const COSTS: &str = "AWSInsightsIndexService.GetCostAndUsage";
const TAG: (&str, &str) = ("Project", "lattice-stack");

fn list(name: &str) -> Vec<Value> {
    let Value::Array(pages) = fixture(name) else {
        panic!("{name} is a list of pages");
    };
    pages
}

/// A fake Cost Explorer answering the pages of `GetDimensionValues` for SERVICE and for
/// USAGE_TYPE (told apart by the request's `Dimension`) and of `GetCostAndUsage`, each in turn.
async fn fake(
    service_pages: Vec<Value>,
    usage_type_pages: Vec<Value>,
    cost_pages: Vec<Value>,
) -> FakeServer {
    let next = [(); 3].map(|_| Arc::new(AtomicUsize::new(0)));
    FakeServer::start(move |request: &Recorded, _| {
        let (pages, next) = match (
            request.header("x-amz-target"),
            request.json()["Dimension"].as_str(),
        ) {
            (Some(DIMENSIONS), Some("SERVICE")) => (&service_pages, &next[0]),
            (Some(DIMENSIONS), Some("USAGE_TYPE")) => (&usage_type_pages, &next[1]),
            (Some(COSTS), _) => (&cost_pages, &next[2]),
            other => {
                return Reply::json11_error(400, "UnknownOperationException", &format!("{other:?}"))
            }
        };
        match pages.get(next.fetch_add(1, Ordering::SeqCst)) {
            Some(page) => Reply::json11(page),
            None => Reply::json11_error(400, "ValidationException", "no more pages"),
        }
    })
    .await
}

fn at(time: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(time)
        .unwrap()
        .with_timezone(&Utc)
}

fn bill_source(fake: &FakeServer, today: &str) -> CostExplorerBill {
    let now = at(today);
    CostExplorerBill::with_clock(cost_explorer(&fake.url), Arc::new(move || now))
}

fn line(day: &str, service: &str, usage_type: &str, usd: f64, estimated: bool) -> BillLine {
    BillLine {
        day: day.into(),
        service: service.into(),
        usage_type: usage_type.into(),
        usd,
        estimated,
    }
}

/// The fixtures' pages answered for a window of half days at both ends, today being Dec 3.
async fn billed() -> (FakeServer, Bill) {
    let fake = fake(
        list("aws-ce-get-dimension-values.json"),
        list("aws-ce-get-dimension-values-usage-type.json"),
        list("aws-ce-get-cost-and-usage.json"),
    )
    .await;
    let window = window("2026-11-30T12:00:00Z", "2026-12-03T06:00:00Z");
    let source = bill_source(&fake, "2026-12-03T09:00:00Z");
    let bill = source.bill(&window, TAG).await.unwrap();
    (fake, bill)
}

#[tokio::test]
async fn the_services_and_usage_types_are_discovered_then_the_costs_asked_over_the_complete_days() {
    let (fake, _) = billed().await;
    let requests = fake.requests();
    let asked: Vec<(Option<&str>, Value)> = requests
        .iter()
        .map(|r| (r.header("x-amz-target"), r.json()["Dimension"].clone()))
        .collect();
    let (service, usage_type) = (json!("SERVICE"), json!("USAGE_TYPE"));
    assert_eq!(
        asked,
        vec![
            (Some(DIMENSIONS), service.clone()),
            (Some(DIMENSIONS), service),
            (Some(DIMENSIONS), usage_type.clone()),
            (Some(DIMENSIONS), usage_type),
            (Some(COSTS), Value::Null),
            (Some(COSTS), Value::Null),
        ]
    );
    let json11 = Some("application/x-amz-json-1.1");
    assert!(requests.iter().all(|r| r.header("content-type") == json11));
    // Dec 1 and Dec 2: Nov 30 and Dec 3 are partial, and Dec 3 is today.
    let period = json!({"Start": "2026-12-01", "End": "2026-12-03"});
    let filter = json!({"Tags": {"Key": "Project", "Values": ["lattice-stack"]}});
    let dimension = |name: &str| json!({"TimePeriod": period, "Dimension": name, "Context": "COST_AND_USAGE", "Filter": filter});
    assert_eq!(requests[0].json(), dimension("SERVICE"));
    let mut next = dimension("SERVICE");
    next["NextPageToken"] = json!("dv-2");
    assert_eq!(requests[1].json(), next);
    assert_eq!(requests[2].json(), dimension("USAGE_TYPE"));
    let mut next = dimension("USAGE_TYPE");
    next["NextPageToken"] = json!("ut-2");
    assert_eq!(requests[3].json(), next);
    assert_eq!(
        requests[4].json(),
        json!({
            "TimePeriod": period,
            "Granularity": "DAILY",
            "Filter": filter,
            "Metrics": ["UnblendedCost"],
            "GroupBy": [{"Type": "DIMENSION", "Key": "SERVICE"}, {"Type": "DIMENSION", "Key": "USAGE_TYPE"}]
        })
    );
    assert_eq!(requests[5].json()["NextPageToken"], json!("cu-2"));
    assert_eq!(requests[5].json()["GroupBy"], requests[4].json()["GroupBy"]);
}

#[tokio::test]
async fn every_page_becomes_lines_with_their_days_estimated_flag_and_requests_are_counted() {
    let (_, bill) = billed().await;
    assert_eq!(
        (bill.start_day.as_str(), bill.end_day.as_str()),
        ("2026-12-01", "2026-12-03")
    );
    let seen = [
        "AWS Lambda",
        "AWS X-Ray",
        "Amazon Virtual Private Cloud",
        "AmazonCloudWatch",
    ];
    assert_eq!(bill.services_seen, seen);
    let usage_types = [
        "USE1-Lambda-GB-Second-ARM",
        "USE1-Request",
        "USE1-VendedLog-Bytes",
        "USE1-VpcLattice-ServiceHours",
        "USE1-XRay-TracesStored",
        "USE1-TimedStorage-ByteHrs",
    ];
    assert_eq!(
        bill.usage_types_seen, usage_types,
        "both pages, as answered"
    );
    let expected = [
        (
            "2026-12-01",
            "AWS Lambda",
            "USE1-Lambda-GB-Second-ARM",
            0.0421337,
            false,
        ),
        ("2026-12-01", "AWS Lambda", "USE1-Request", 0.0172, false),
        (
            "2026-12-01",
            "Amazon Virtual Private Cloud",
            "USE1-VpcLattice-ServiceHours",
            1.8,
            false,
        ),
        (
            "2026-12-01",
            "AWS X-Ray",
            "USE1-XRay-TracesStored",
            0.43,
            false,
        ),
        (
            "2026-12-02",
            "AWS Lambda",
            "USE1-Lambda-GB-Second-ARM",
            0.0398,
            true,
        ),
        (
            "2026-12-02",
            "AmazonCloudWatch",
            "USE1-VendedLog-Bytes",
            0.2575,
            true,
        ),
    ];
    let expected: Vec<BillLine> = expected
        .iter()
        .map(|(day, service, usage, usd, estimated)| line(day, service, usage, *usd, *estimated))
        .collect();
    assert_eq!(bill.lines, expected);
    assert_eq!(bill.requests, 6, "each request costs $0.01");
}

#[tokio::test]
async fn today_is_never_billed_and_a_window_without_a_complete_day_is_an_error() {
    let fake = fake(Vec::new(), Vec::new(), Vec::new()).await;
    let source = bill_source(&fake, "2026-12-03T09:00:00Z");
    let inside_a_day = window("2026-12-02T01:00:00Z", "2026-12-02T23:00:00Z");
    let error = source.bill(&inside_a_day, TAG).await.unwrap_err();
    assert_eq!(
        error.to_string(),
        "CostExplorer.GetCostAndUsage answered what the report cannot use: the window 2026-12-02T01:00:00.000Z to 2026-12-02T23:00:00.000Z holds no complete UTC day before today (2026-12-03): Cost Explorer bills by the day; widen the window to a whole day"
    );
    let today_only = window("2026-12-03T00:00:00Z", "2026-12-04T00:00:00Z");
    assert!(source.bill(&today_only, TAG).await.is_err());
    assert!(fake.requests().is_empty(), "nothing is asked (or paid) for");
}

#[tokio::test]
async fn a_day_aligned_window_bills_exactly_its_days() {
    let empty_dimensions = json!({"DimensionValues": [], "ReturnSize": 0, "TotalSize": 0});
    let empty_costs = json!({"ResultsByTime": [
        {"TimePeriod": {"Start": "2026-12-01", "End": "2026-12-02"}, "Total": {}, "Groups": [], "Estimated": true}
    ]});
    let fake = fake(
        vec![empty_dimensions.clone()],
        vec![empty_dimensions],
        vec![empty_costs],
    )
    .await;
    let window = window("2026-12-01T00:00:00Z", "2026-12-02T00:00:00Z");
    let bill = bill_source(&fake, "2026-12-05T00:00:00Z")
        .bill(&window, TAG)
        .await
        .unwrap();
    assert_eq!(
        (bill.start_day.as_str(), bill.end_day.as_str()),
        ("2026-12-01", "2026-12-02")
    );
    assert!(bill.lines.is_empty());
    assert!(bill.usage_types_seen.is_empty());
    assert_eq!(bill.requests, 3);
}

#[tokio::test]
async fn an_http_400_is_an_aws_error() {
    let fake = FakeServer::replying(vec![Reply::json11_error(
        400,
        "DataUnavailableException",
        "Data is not available. Please try to adjust the time period.",
    )])
    .await;
    let window = window("2026-12-01T00:00:00Z", "2026-12-02T00:00:00Z");
    let error = bill_source(&fake, "2026-12-05T00:00:00Z")
        .bill(&window, TAG)
        .await
        .unwrap_err();
    assert!(matches!(
        error,
        SourceError::Aws {
            operation: "CostExplorer.GetDimensionValues",
            ..
        }
    ));
    assert_eq!(
        error.to_string(),
        "CostExplorer.GetDimensionValues: DataUnavailableException: Data is not available. Please try to adjust the time period."
    );
}

#[tokio::test]
async fn a_usage_type_without_its_value_is_an_error_and_no_cost_is_asked() {
    let services =
        json!({"DimensionValues": [{"Value": "AWS Lambda"}], "ReturnSize": 1, "TotalSize": 1});
    let usage_types =
        json!({"DimensionValues": [{"Attributes": {}}], "ReturnSize": 1, "TotalSize": 1});
    let fake = fake(vec![services], vec![usage_types], Vec::new()).await;
    let window = window("2026-12-01T00:00:00Z", "2026-12-02T00:00:00Z");
    let error = bill_source(&fake, "2026-12-05T00:00:00Z")
        .bill(&window, TAG)
        .await
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        "CostExplorer.GetDimensionValues answered what the report cannot use: a USAGE_TYPE value without Value"
    );
    let requests = fake.requests();
    let targets: Vec<Option<&str>> = requests.iter().map(|r| r.header("x-amz-target")).collect();
    assert_eq!(targets, vec![Some(DIMENSIONS), Some(DIMENSIONS)]);
}

#[tokio::test]
async fn an_amount_that_is_not_usd_or_not_a_number_is_an_error() {
    let dimensions =
        json!({"DimensionValues": [{"Value": "AWS Lambda"}], "ReturnSize": 1, "TotalSize": 1});
    let costs = |amount: &str, unit: &str| {
        json!({"ResultsByTime": [{"TimePeriod": {"Start": "2026-12-01", "End": "2026-12-02"}, "Groups": [
            {"Keys": ["AWS Lambda", "USE1-Request"], "Metrics": {"UnblendedCost": {"Amount": amount, "Unit": unit}}}
        ], "Estimated": false}]})
    };
    let window = window("2026-12-01T00:00:00Z", "2026-12-02T00:00:00Z");
    let usage_types =
        json!({"DimensionValues": [{"Value": "USE1-Request"}], "ReturnSize": 1, "TotalSize": 1});
    let euro = fake(
        vec![dimensions.clone()],
        vec![usage_types.clone()],
        vec![costs("1.0", "EUR")],
    )
    .await;
    let error = bill_source(&euro, "2026-12-05T00:00:00Z")
        .bill(&window, TAG)
        .await
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        "CostExplorer.GetCostAndUsage answered what the report cannot use: 2026-12-01 AWS Lambda USE1-Request: unit Some(\"EUR\"), not USD"
    );
    let garbled = fake(
        vec![dimensions],
        vec![usage_types],
        vec![costs("1,5", "USD")],
    )
    .await;
    let error = bill_source(&garbled, "2026-12-05T00:00:00Z")
        .bill(&window, TAG)
        .await
        .unwrap_err();
    assert!(
        error
            .to_string()
            .ends_with("amount \"1,5\" is not a number"),
        "{error}"
    );
}
