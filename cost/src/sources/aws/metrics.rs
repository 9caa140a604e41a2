//! CloudWatch metrics through `GetMetricData`: Lattice's per-service request metrics
//! ([`AwsLatticeMetrics`]), DynamoDB's consumed capacity ([`AwsDynamoDb`]) and the bytes a log
//! group ingested (`AWS/Logs` `IncomingBytes`, for [`super::AwsLambdaReports`]). This module owns
//! the one `GetMetricData` exchange they share: up to [`MAX_QUERIES`] queries per call, every page
//! of `NextToken` followed, every datapoint kept per query id.
//!
//! **Periods.** A metric has one-minute resolution, so the window is widened to whole minutes
//! (`[floor(start), ceil(end))`) and asked as **one period** of that length: a count is the sum of
//! the datapoints answered (one per query when CloudWatch keeps minutes, i.e. for a window that
//! starts within the last 15 days; older data is kept at 5 minutes, then 1 hour, and CloudWatch
//! rounds an older start down to those), and a percentile is the one value CloudWatch computed
//! over the whole window. Percentiles are never averaged or summed: a percentile query answering
//! more than one datapoint is an error.
//!
//! **Lattice** (`AWS/VpcLattice`): the service metrics are published with the dimension sets
//! `Service` and `Service, AvailabilityZone`; this module asks the `Service`-only set, whose
//! percentiles cover every zone (CloudWatch computes them from the raw values), so no per-zone
//! figure is ever combined. The `Service` dimension's value is taken to be the Lattice service id
//! (`svc-…`, [`ServiceMapping::service_id`]). Per service: `TotalRequestCount` (Sum),
//! `RequestTime` p50, p90, p99 (milliseconds), `HTTPCode_1XX_Count` … `HTTPCode_5XX_Count` (Sum);
//! a class Lattice does not publish reads 0. Index 0 of the status classes holds the requests the
//! five classes do not account for (no response at all, or a class Lattice does not publish). A
//! service with no datapoints has 0 requests and no percentiles.
//!
//! **DynamoDB** (`AWS/DynamoDB`): `ConsumedReadCapacityUnits` and `ConsumedWriteCapacityUnits`
//! (Sum, dimension `TableName`) of every table of the [`StackMap`], charged to the service owning
//! it ([`StackMap::by_table`]).

use std::collections::BTreeMap;

use async_trait::async_trait;
use aws_sdk_cloudwatch::types::{
    Dimension, Metric, MetricDataQuery, MetricDataResult, MetricStat, StatusCode,
};
use aws_sdk_cloudwatch::Client;
use chrono::{DateTime, DurationRound, TimeDelta, Utc};

use super::{answer, aws_error, smithy_time, whole_count};
use crate::sources::{
    DynamoDbSource, DynamoDbUnits, LatticeMetrics, LatticeMetricsSource, ServiceMapping,
    SourceError, StackMap, Window,
};

/// The operation, for errors.
pub const OPERATION: &str = "CloudWatch.GetMetricData";
/// Queries one `GetMetricData` call takes at most.
pub const MAX_QUERIES: usize = 500;
/// Lattice's namespace.
pub const LATTICE_NAMESPACE: &str = "AWS/VpcLattice";
/// DynamoDB's namespace.
pub const DYNAMODB_NAMESPACE: &str = "AWS/DynamoDB";
/// CloudWatch Logs' namespace.
pub const LOGS_NAMESPACE: &str = "AWS/Logs";

/// One statistic of one metric, asked under `id`.
#[derive(Clone, Debug, PartialEq)]
pub struct MetricQuery {
    /// The query id (`[a-z][a-zA-Z0-9_]*`).
    pub id: String,
    /// `AWS/VpcLattice`, …
    pub namespace: &'static str,
    /// `TotalRequestCount`, …
    pub metric: &'static str,
    /// Its dimensions, name and value.
    pub dimensions: Vec<(&'static str, String)>,
    /// `Sum`, `p99`, …
    pub stat: &'static str,
}

/// The window as CloudWatch is asked about it: whole minutes, one period.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MetricSpan {
    /// `floor(start)` to the minute.
    pub start: DateTime<Utc>,
    /// `ceil(end)` to the minute.
    pub end: DateTime<Utc>,
    /// `end - start`, seconds: a multiple of 60.
    pub period: i32,
}

impl MetricSpan {
    /// `window` widened to whole minutes.
    pub fn of(window: &Window) -> Result<Self, SourceError> {
        let minute = TimeDelta::minutes(1);
        let start = window
            .start
            .duration_trunc(minute)
            .map_err(|e| answer(OPERATION, format!("window start: {e}")))?;
        let floor = window
            .end
            .duration_trunc(minute)
            .map_err(|e| answer(OPERATION, format!("window end: {e}")))?;
        let end = if floor < window.end {
            floor + minute
        } else {
            floor
        };
        let period = i32::try_from((end - start).num_seconds()).map_err(|_| {
            answer(
                OPERATION,
                format!(
                    "the window {} is too long for one period",
                    window.describe()
                ),
            )
        })?;
        Ok(Self { start, end, period })
    }
}

/// Every datapoint of every query over `span`, by query id: calls of at most [`MAX_QUERIES`]
/// queries, each followed through its `NextToken` pages.
pub async fn fetch(
    client: &Client,
    queries: &[MetricQuery],
    span: &MetricSpan,
) -> Result<BTreeMap<String, Vec<f64>>, SourceError> {
    let mut values: BTreeMap<String, Vec<f64>> =
        queries.iter().map(|q| (q.id.clone(), Vec::new())).collect();
    for chunk in queries.chunks(MAX_QUERIES) {
        let built: Vec<MetricDataQuery> = chunk.iter().map(|q| sdk_query(q, span)).collect();
        let mut token: Option<String> = None;
        loop {
            let output = client
                .get_metric_data()
                .set_metric_data_queries(Some(built.clone()))
                .start_time(smithy_time(span.start))
                .end_time(smithy_time(span.end))
                .set_next_token(token.take())
                .send()
                .await
                .map_err(|e| aws_error(OPERATION, e))?;
            for result in output.metric_data_results() {
                keep(&mut values, result)?;
            }
            match output.next_token() {
                Some(next) => token = Some(next.to_owned()),
                None => break,
            }
        }
    }
    Ok(values)
}

fn sdk_query(query: &MetricQuery, span: &MetricSpan) -> MetricDataQuery {
    let dimensions = query
        .dimensions
        .iter()
        .map(|(name, value)| Dimension::builder().name(*name).value(value).build())
        .collect();
    let metric = Metric::builder()
        .namespace(query.namespace)
        .metric_name(query.metric)
        .set_dimensions(Some(dimensions))
        .build();
    let stat = MetricStat::builder()
        .metric(metric)
        .period(span.period)
        .stat(query.stat)
        .build();
    MetricDataQuery::builder()
        .id(&query.id)
        .metric_stat(stat)
        .return_data(true)
        .build()
}

/// One result's values under its id; a failed or unknown result is an error.
fn keep(
    values: &mut BTreeMap<String, Vec<f64>>,
    result: &MetricDataResult,
) -> Result<(), SourceError> {
    let id = result
        .id()
        .ok_or_else(|| answer(OPERATION, "a result without an Id"))?;
    match result.status_code() {
        Some(StatusCode::Complete) | Some(StatusCode::PartialData) | None => {}
        Some(other) => {
            let messages: Vec<String> = result
                .messages()
                .iter()
                .map(|m| format!("{}: {}", m.code().unwrap_or("-"), m.value().unwrap_or("-")))
                .collect();
            return Err(answer(
                OPERATION,
                format!("query {id} ended {other:?} ({})", messages.join("; ")),
            ));
        }
    }
    let slot = values
        .get_mut(id)
        .ok_or_else(|| answer(OPERATION, format!("a result for {id}, which was not asked")))?;
    slot.extend_from_slice(result.values());
    Ok(())
}

/// The sum of `id`'s datapoints as a count.
pub fn count(values: &BTreeMap<String, Vec<f64>>, id: &str) -> Result<u64, SourceError> {
    let sum: f64 = values.get(id).map(|v| v.iter().sum()).unwrap_or(0.0);
    whole_count(OPERATION, id, sum)
}

/// The sum of `id`'s datapoints (units, which may be fractional).
pub fn total(values: &BTreeMap<String, Vec<f64>>, id: &str) -> f64 {
    values.get(id).map(|v| v.iter().sum()).unwrap_or(0.0)
}

/// `id`'s one datapoint, a percentile; more than one is an error (never averaged).
pub fn single(values: &BTreeMap<String, Vec<f64>>, id: &str) -> Result<Option<f64>, SourceError> {
    match values.get(id).map(Vec::as_slice).unwrap_or(&[]) {
        [] => Ok(None),
        [value] => Ok(Some(*value)),
        many => Err(answer(
            OPERATION,
            format!(
                "{id} answered {} datapoints for one period: a percentile cannot be combined",
                many.len()
            ),
        )),
    }
}

/// Lattice's request metrics, from `AWS/VpcLattice`.
#[derive(Clone, Debug)]
pub struct AwsLatticeMetrics {
    client: Client,
}

impl AwsLatticeMetrics {
    /// Over `client`.
    pub fn new(client: Client) -> Self {
        Self { client }
    }
}

/// The status-class metrics, index 1 to 5.
const STATUS_METRICS: [&str; 5] = [
    "HTTPCode_1XX_Count",
    "HTTPCode_2XX_Count",
    "HTTPCode_3XX_Count",
    "HTTPCode_4XX_Count",
    "HTTPCode_5XX_Count",
];

/// The queries of the service at `index`.
pub fn lattice_queries(index: usize, service: &ServiceMapping) -> Vec<MetricQuery> {
    let query = |suffix: String, metric, stat| MetricQuery {
        id: format!("s{index}_{suffix}"),
        namespace: LATTICE_NAMESPACE,
        metric,
        dimensions: vec![("Service", service.service_id().to_owned())],
        stat,
    };
    let mut queries = vec![
        query("requests".into(), "TotalRequestCount", "Sum"),
        query("p50".into(), "RequestTime", "p50"),
        query("p90".into(), "RequestTime", "p90"),
        query("p99".into(), "RequestTime", "p99"),
    ];
    for (class, metric) in STATUS_METRICS.iter().enumerate() {
        queries.push(query(format!("c{}", class + 1), metric, "Sum"));
    }
    queries
}

fn lattice_metrics_of(
    index: usize,
    values: &BTreeMap<String, Vec<f64>>,
) -> Result<LatticeMetrics, SourceError> {
    let id = |suffix: &str| format!("s{index}_{suffix}");
    let requests = count(values, &id("requests"))?;
    let mut status_classes = [0_u64; 6];
    for (class, slot) in status_classes.iter_mut().enumerate().skip(1) {
        *slot = count(values, &id(&format!("c{class}")))?;
    }
    let classified: u64 = status_classes[1..].iter().sum();
    status_classes[0] = requests.saturating_sub(classified);
    let percentile = |suffix: &str| -> Result<Option<f64>, SourceError> {
        Ok(if requests == 0 {
            None
        } else {
            single(values, &id(suffix))?
        })
    };
    Ok(LatticeMetrics {
        requests,
        p50_ms: percentile("p50")?,
        p90_ms: percentile("p90")?,
        p99_ms: percentile("p99")?,
        status_classes,
    })
}

#[async_trait]
impl LatticeMetricsSource for AwsLatticeMetrics {
    async fn lattice_metrics(
        &self,
        stack: &StackMap,
        window: &Window,
    ) -> Result<BTreeMap<String, LatticeMetrics>, SourceError> {
        let span = MetricSpan::of(window)?;
        let queries: Vec<MetricQuery> = stack
            .services
            .iter()
            .enumerate()
            .flat_map(|(index, service)| lattice_queries(index, service))
            .collect();
        let values = fetch(&self.client, &queries, &span).await?;
        let mut metrics = BTreeMap::new();
        for (index, service) in stack.services.iter().enumerate() {
            metrics.insert(service.name.clone(), lattice_metrics_of(index, &values)?);
        }
        Ok(metrics)
    }
}

/// DynamoDB's consumed capacity, from `AWS/DynamoDB`.
#[derive(Clone, Debug)]
pub struct AwsDynamoDb {
    client: Client,
}

impl AwsDynamoDb {
    /// Over `client`.
    pub fn new(client: Client) -> Self {
        Self { client }
    }
}

/// The stack's tables, each with its two queries (`t<i>_read`, `t<i>_write`).
pub fn dynamodb_queries(stack: &StackMap) -> Vec<(String, [MetricQuery; 2])> {
    let tables = stack.services.iter().flat_map(|s| s.tables.iter());
    tables
        .enumerate()
        .map(|(index, table)| {
            let query = |suffix: &str, metric| MetricQuery {
                id: format!("t{index}_{suffix}"),
                namespace: DYNAMODB_NAMESPACE,
                metric,
                dimensions: vec![("TableName", table.clone())],
                stat: "Sum",
            };
            let pair = [
                query("read", "ConsumedReadCapacityUnits"),
                query("write", "ConsumedWriteCapacityUnits"),
            ];
            (table.clone(), pair)
        })
        .collect()
}

#[async_trait]
impl DynamoDbSource for AwsDynamoDb {
    async fn dynamodb_units(
        &self,
        stack: &StackMap,
        window: &Window,
    ) -> Result<BTreeMap<String, DynamoDbUnits>, SourceError> {
        let span = MetricSpan::of(window)?;
        let tables = dynamodb_queries(stack);
        let queries: Vec<MetricQuery> = tables.iter().flat_map(|(_, q)| q.clone()).collect();
        let values = fetch(&self.client, &queries, &span).await?;
        let mut units: BTreeMap<String, DynamoDbUnits> = BTreeMap::new();
        for (table, [read, write]) in &tables {
            let owner = stack
                .by_table(table)
                .ok_or_else(|| answer(OPERATION, format!("table {table} has no owner")))?;
            let sum = units.entry(owner.name.clone()).or_default();
            sum.read += total(&values, &read.id);
            sum.write += total(&values, &write.id);
        }
        Ok(units)
    }
}

/// The bytes each of `log_groups` ingested over `span` (`AWS/Logs` `IncomingBytes`, Sum), in
/// their order.
pub async fn incoming_bytes(
    client: &Client,
    log_groups: &[String],
    span: &MetricSpan,
) -> Result<Vec<u64>, SourceError> {
    let queries: Vec<MetricQuery> = log_groups
        .iter()
        .enumerate()
        .map(|(index, group)| MetricQuery {
            id: format!("g{index}_bytes"),
            namespace: LOGS_NAMESPACE,
            metric: "IncomingBytes",
            dimensions: vec![("LogGroupName", group.clone())],
            stat: "Sum",
        })
        .collect();
    let values = fetch(client, &queries, span).await?;
    queries.iter().map(|q| count(&values, &q.id)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn a_window_is_widened_to_whole_minutes_and_asked_as_one_period() {
        let at = |h, m, s| Utc.with_ymd_and_hms(2026, 12, 2, h, m, s).unwrap();
        let window = Window::new(at(10, 0, 30), at(10, 59, 10)).unwrap();
        let span = MetricSpan::of(&window).unwrap();
        assert_eq!(
            (span.start, span.end, span.period),
            (at(10, 0, 0), at(11, 0, 0), 3600)
        );
        let aligned = Window::new(at(10, 5, 0), at(10, 10, 0)).unwrap();
        assert_eq!(MetricSpan::of(&aligned).unwrap().period, 300);
    }
}
