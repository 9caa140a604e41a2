//! Cost per 1M requests per service as CloudWatch embedded metric format lines: one JSON object
//! per service on stdout, which CloudWatch Logs turns into the metric `CostPerMillionRequests`
//! (dimension `Service`, USD, unit `None`), timestamped at the end of the reported day.
//!
//! Format: the EMF specification (docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/
//! CloudWatch_Embedded_Metric_Format_Specification.html): `_aws.Timestamp` (epoch ms),
//! `_aws.CloudWatchMetrics[].{Namespace, Dimensions, Metrics[].{Name, Unit}}`, and the dimension
//! and metric values as top-level members. Three services make three custom metrics
//! ($0.30 each a month at list price).

use lattice_cost::report::CostReport;
use serde_json::{json, Value};

/// The metric's name.
pub const METRIC: &str = "CostPerMillionRequests";

/// One EMF document per service with requests in `report`.
pub fn lines(report: &CostReport, namespace: &str, timestamp_ms: i64) -> Vec<Value> {
    report
        .services
        .iter()
        .filter_map(|row| {
            let per_million = row.cost_per_million_requests?;
            Some(json!({
                "_aws": {
                    "Timestamp": timestamp_ms,
                    "CloudWatchMetrics": [{
                        "Namespace": namespace,
                        "Dimensions": [["Service"]],
                        "Metrics": [{"Name": METRIC, "Unit": "None"}],
                    }],
                },
                "Service": row.service,
                METRIC: per_million.total(),
            }))
        })
        .collect()
}
