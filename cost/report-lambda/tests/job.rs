//! The scheduled report end to end with fakes behind every trait: the day it reports on, the
//! key it stores under, the document (valid against cost/report.schema.json), the EMF lines, and
//! what happens when the bill or the store fails.

use std::collections::BTreeMap;
use std::sync::Mutex;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use cost_report::config::Config;
use cost_report::job::{self, JobError, ReportStore, StoreError};
use lattice_cost::model::Arch;
use lattice_cost::prices::PriceTable;
use lattice_cost::sources::{
    AccessLogSource, AccessLogSummary, AccessLogUsage, Bill, BillLine, BillSource, DynamoDbSource,
    DynamoDbUnits, LambdaInvocations, LambdaReportSource, LambdaSummary, LatticeMetrics,
    LatticeMetricsSource, ServiceMapping, SourceError, Sources, StackMap, TraceCount, TraceSource,
    Window,
};
use lattice_cost::usage::LambdaReport;
use serde_json::{json, Value};

const SCHEMA: &str = include_str!("../../report.schema.json");

fn stack() -> StackMap {
    let service = |name: &str, id: &str| ServiceMapping {
        name: name.to_owned(),
        service_arn: format!("arn:aws:vpc-lattice:us-east-1:111122223333:service/svc-{id}"),
        function_name: format!("orders-{name}"),
        arch: Arch::Arm64,
        tables: Vec::new(),
    };
    StackMap {
        services: vec![service("order", "0a"), service("payment", "0b")],
    }
}

fn config() -> Config {
    Config {
        stack: stack(),
        access_log_group: "/aws/vpc-lattice/orders".into(),
        bucket: "reports".into(),
        cost_tag: ("stack".into(), "orders".into()),
        namespace: "LatticeObservability/Cost".into(),
    }
}

/// 1,000 orders on 2026-12-01 between 10:00 and 11:00: each one order and one payment request.
struct Day {
    windows: Mutex<Vec<Window>>,
}

impl Day {
    fn new() -> Self {
        Self {
            windows: Mutex::new(Vec::new()),
        }
    }

    fn seen(&self, window: &Window) {
        self.windows.lock().unwrap().push(*window);
    }
}

const HOUR: u64 = 1_796_119_200 / 3600; // 2026-12-01T10:00:00Z

#[async_trait]
impl LatticeMetricsSource for Day {
    async fn lattice_metrics(
        &self,
        stack: &StackMap,
        window: &Window,
    ) -> Result<BTreeMap<String, LatticeMetrics>, SourceError> {
        self.seen(window);
        Ok(stack
            .services
            .iter()
            .map(|s| {
                let metrics = LatticeMetrics {
                    requests: 1000,
                    p50_ms: Some(12.0),
                    p90_ms: Some(20.0),
                    p99_ms: Some(45.5),
                    status_classes: [0, 0, 1000, 0, 0, 0],
                };
                (s.name.clone(), metrics)
            })
            .collect())
    }
}

#[async_trait]
impl AccessLogSource for Day {
    async fn access_log(
        &self,
        stack: &StackMap,
        _window: &Window,
    ) -> Result<AccessLogSummary, SourceError> {
        let services = stack
            .services
            .iter()
            .map(|s| {
                let usage = AccessLogUsage {
                    requests_by_hour: BTreeMap::from([(HOUR, 1000)]),
                    bytes_in: 500_000,
                    bytes_out: 250_000,
                    log_bytes: 1_560_000,
                };
                (s.name.clone(), usage)
            })
            .collect();
        Ok(AccessLogSummary {
            services,
            bytes_scanned: 3_120_000,
        })
    }
}

#[async_trait]
impl LambdaReportSource for Day {
    async fn lambda_reports(
        &self,
        stack: &StackMap,
        _window: &Window,
    ) -> Result<LambdaSummary, SourceError> {
        let report = |i: u64| LambdaReport {
            request_id: format!("r{i}"),
            billed_ms: 10,
            memory_mb: 128,
            max_memory_used_mb: 30,
            init_ms: (i == 0).then_some(40.0),
            trace_id: None,
            sampled: None,
        };
        let services = stack
            .services
            .iter()
            .map(|s| {
                let invocations = LambdaInvocations {
                    reports: (0..1000).map(report).collect(),
                    log_bytes: 750_000,
                };
                (s.name.clone(), invocations)
            })
            .collect();
        Ok(LambdaSummary {
            services,
            bytes_scanned: 1_000_000,
        })
    }
}

#[async_trait]
impl TraceSource for Day {
    async fn traces(
        &self,
        _stack: &StackMap,
        _window: &Window,
        run_id: Option<&str>,
    ) -> Result<TraceCount, SourceError> {
        assert_eq!(run_id, None, "a daily report is not about one run");
        Ok(TraceCount {
            trace_ids: (0..50).map(|i| format!("1-6b0f0000-{i:024x}")).collect(),
            traces_scanned: 50,
            ..TraceCount::default()
        })
    }
}

#[async_trait]
impl DynamoDbSource for Day {
    async fn dynamodb_units(
        &self,
        _stack: &StackMap,
        _window: &Window,
    ) -> Result<BTreeMap<String, DynamoDbUnits>, SourceError> {
        Ok(BTreeMap::from([(
            "payment".to_owned(),
            DynamoDbUnits {
                read: 0.0,
                write: 2000.0,
            },
        )]))
    }
}

struct FakeBill(Result<Bill, String>);

#[async_trait]
impl BillSource for FakeBill {
    async fn bill(&self, window: &Window, tag: (&str, &str)) -> Result<Bill, SourceError> {
        assert_eq!(tag, ("stack", "orders"));
        assert_eq!(
            window.describe(),
            "2026-12-01T00:00:00.000Z to 2026-12-02T00:00:00.000Z"
        );
        self.0.clone().map_err(|message| SourceError::Aws {
            operation: "CostExplorer.GetCostAndUsage",
            message,
        })
    }
}

fn bill() -> Bill {
    Bill {
        start_day: "2026-12-01".into(),
        end_day: "2026-12-02".into(),
        lines: vec![BillLine {
            day: "2026-12-01".into(),
            service: "AWS Lambda".into(),
            usage_type: "USE1-Lambda-GB-Second-ARM".into(),
            usd: 0.0004,
            estimated: true,
        }],
        services_seen: vec!["AWS Lambda".into()],
        usage_types_seen: vec!["USE1-Lambda-GB-Second-ARM".into()],
        requests: 3,
    }
}

#[derive(Default)]
struct Memory {
    objects: Mutex<Vec<(String, Vec<u8>)>>,
    refuse: bool,
}

#[async_trait]
impl ReportStore for Memory {
    async fn put(&self, key: &str, body: Vec<u8>) -> Result<(), StoreError> {
        if self.refuse {
            return Err(StoreError("AccessDenied".into()));
        }
        self.objects.lock().unwrap().push((key.to_owned(), body));
        Ok(())
    }
}

fn fired() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-12-02T01:15:00Z")
        .unwrap()
        .with_timezone(&Utc)
}

fn sources(day: &Day) -> Sources<'_> {
    Sources {
        metrics: day,
        access_log: day,
        lambda: day,
        traces: day,
        dynamodb: day,
    }
}

#[tokio::test]
async fn yesterday_is_reported_stored_under_its_date_and_published_per_service() {
    let day = Day::new();
    let store = Memory::default();
    let outcome = job::run(
        (&sources(&day), &FakeBill(Ok(bill()))),
        &store,
        &config(),
        &PriceTable::built_in(),
        fired(),
    )
    .await
    .unwrap();
    assert_eq!(outcome.key, "reports/2026/12/01.json");
    assert_eq!(
        day.windows.lock().unwrap()[0].describe(),
        "2026-12-01T00:00:00.000Z to 2026-12-02T00:00:00.000Z"
    );
    let objects = store.objects.lock().unwrap();
    assert_eq!(objects.len(), 1);
    let stored: Value = serde_json::from_slice(&objects[0].1).unwrap();
    let schema: Value = serde_json::from_str(SCHEMA).unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    let problems: Vec<String> = validator
        .iter_errors(&stored)
        .map(|e| format!("{e} at {}", e.instance_path()))
        .collect();
    assert!(problems.is_empty(), "{problems:#?}");
    assert_eq!(stored["origin"], "aws");
    assert_eq!(stored["report"]["orders"], 1000);
    assert_eq!(stored["report_cost"]["cost_explorer_requests"], 3);
    assert_eq!(stored["report_cost"]["cost_explorer_usd"], 0.03);
    assert_eq!(
        stored["report_cost"]["logs_insights_bytes_scanned"],
        4_120_000
    );
    assert_eq!(stored["reconciliation"]["start_day"], "2026-12-01");

    // Payment per 1M requests: 1,000 invocations at 10 ms × 128 MB, 750 kB of Lambda log,
    // 1.56 MB of access log, 750 kB through Lattice, a day of its service-hour, 2,000 WRU.
    let table = PriceTable::built_in();
    let price = |line: &str| table.usd(line).unwrap();
    let payment = 1000.0 * price("lambda.requests")
        + 1000.0 * 0.01 * 0.125 * price("lambda.duration.arm64")
        + 750_000.0 / 1e9 * price("lattice.data_processed")
        + 24.0 * price("lattice.service_hour")
        + 1_560_000.0 / 1e9 * price("logs.ingestion.vended")
        + 750_000.0 / 1e9 * price("logs.ingestion.vended")
        + 2000.0 * price("dynamodb.write_request_units");
    let expected = payment * 1e6 / 1000.0;
    let line = outcome
        .metrics
        .iter()
        .find(|m| m["Service"] == "payment")
        .unwrap();
    let published = line["CostPerMillionRequests"].as_f64().unwrap();
    assert!(
        (published - expected).abs() < 1e-9 * expected,
        "{published} vs {expected}"
    );
    assert_eq!(
        line["_aws"],
        json!({
            "Timestamp": 1_796_169_599_999_i64,
            "CloudWatchMetrics": [{
                "Namespace": "LatticeObservability/Cost",
                "Dimensions": [["Service"]],
                "Metrics": [{"Name": "CostPerMillionRequests", "Unit": "None"}]
            }]
        })
    );
    assert_eq!(outcome.metrics.len(), 2, "one line per service");
}

#[tokio::test]
async fn a_bill_that_cannot_be_read_still_stores_the_days_report_then_fails() {
    let day = Day::new();
    let store = Memory::default();
    let error = job::run(
        (
            &sources(&day),
            &FakeBill(Err("AccessDeniedException: ce:GetCostAndUsage".into())),
        ),
        &store,
        &config(),
        &PriceTable::built_in(),
        fired(),
    )
    .await
    .unwrap_err();
    assert!(matches!(error, JobError::Bill { .. }));
    assert_eq!(
        error.to_string(),
        "the report is stored at reports/2026/12/01.json without its reconciliation: \
         CostExplorer.GetCostAndUsage: AccessDeniedException: ce:GetCostAndUsage"
    );
    let objects = store.objects.lock().unwrap();
    let stored: Value = serde_json::from_slice(&objects[0].1).unwrap();
    assert_eq!(stored["reconciliation"], Value::Null);
}

#[tokio::test]
async fn a_store_that_refuses_fails_the_job() {
    let day = Day::new();
    let store = Memory {
        refuse: true,
        ..Memory::default()
    };
    let error = job::run(
        (&sources(&day), &FakeBill(Ok(bill()))),
        &store,
        &config(),
        &PriceTable::built_in(),
        fired(),
    )
    .await
    .unwrap_err();
    assert_eq!(error.to_string(), "storing the report: AccessDenied");
}
