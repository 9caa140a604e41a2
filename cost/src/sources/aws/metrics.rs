//! CloudWatch metrics through `GetMetricData`: Lattice's per-service request metrics
//! ([`AwsLatticeMetrics`]), DynamoDB's consumed capacity ([`AwsDynamoDb`]) and the bytes a log
//! group ingested (`AWS/Logs` `IncomingBytes`, for [`super::AwsLambdaReports`]). This module owns
//! the one `GetMetricData` exchange they share: calls of at most [`MAX_QUERIES`] queries and
//! [`MAX_SEARCHES`] `SEARCH` expressions, every page of `NextToken` followed, every datapoint kept
//! per query id; a message about the whole call (`Messages`, e.g. "Maximum number of allowed
//! metrics exceeded", after which CloudWatch answers what it could) is an error, never a silent
//! undercount.
//!
//! **Periods.** A metric has one-minute resolution, so the window is widened to whole minutes
//! (`[floor(start), ceil(end))`) and asked as **one period** of that length: a count is the sum of
//! the datapoints answered (one per query when CloudWatch keeps minutes, i.e. for a window that
//! starts within the last 15 days; older data is kept at 5 minutes, then 1 hour, and CloudWatch
//! rounds an older start down to those), and a percentile is the one value CloudWatch computed
//! over the whole window. Percentiles are never averaged or summed: a percentile query answering
//! more than one datapoint is an error.
//!
//! **Lattice** (`AWS/VpcLattice`). The VPC Lattice User Guide ("CloudWatch metrics for Amazon VPC
//! Lattice") lists the service metrics with the dimensions `Service` and `AvailabilityZone`, and
//! that set, `{AvailabilityZone, Service}`, is the one this project has settled on (the template's
//! dashboard and `infra/aws/src/checks.rs` use it). A `Service`-only set is not confirmed: only a
//! deployment (`aws cloudwatch list-metrics --namespace AWS/VpcLattice`) shows which sets exist.
//! So the two kinds of figure are asked differently:
//!
//! - **Counts** — `TotalRequestCount`, `HTTPCode_2XX_Count`, `HTTPCode_3XX_Count`,
//!   `HTTPCode_4XX_Count`, `HTTPCode_5XX_Count` (the classes Lattice publishes; there is no 1XX
//!   count, so index 1 of the status classes reads 0) — are summed over every zone by CloudWatch
//!   itself, one metric-math query each ([`zone_sum`]):
//!   `SUM(SEARCH('{AWS/VpcLattice,AvailabilityZone,Service} MetricName="TotalRequestCount"
//!   Service="svc-…"', 'Sum', <period>))`. The schema in braces takes only metrics published with
//!   exactly that dimension set, `Service="…"` is an exact match on the dimension's value, and the
//!   period is the window's one period. A sum over zones is exact, and the request count's source
//!   of truth is this summed `TotalRequestCount`; index 0 of the status classes holds the requests
//!   the four classes do not account for (no response at all).
//! - **Percentiles** — `RequestTime` p50, p90, p99 (milliseconds) — cannot be combined across
//!   zones (an average of per-zone p99s is no p99), so they are asked on the `Service`-only set,
//!   where, if Lattice publishes it, CloudWatch computed them over every zone's raw values. When
//!   that set answers no datapoint the percentile is `None`, with no error (the report prints
//!   "-"), and so it is for a service without requests.
//!
//! What the CloudWatch User Guide says of `SEARCH` that matters here ("CloudWatch search
//! expression syntax", "Use search expressions in graphs", "CloudWatch service quotas", the
//! `GetMetricData` reference): it finds only metrics that reported data within the **past two
//! weeks** (a stack idle for longer reads 0 requests, whatever window is asked); its query is at
//! most 1,024 characters; `"`, `\`, `(` and `)` are escaped with a backslash in an exact match
//! ([`exact_match`]); every time series a `SEARCH` matches counts toward the 500 metrics one call
//! may retrieve, beside the 500 queries ([`MAX_QUERIES`]); a graph holds at most 100 search
//! expressions. A call therefore carries at most [`MAX_SEARCHES`] of them: with up to 9 zones per
//! Region, their series and the call's other metrics stay under 500. The `Service` dimension's
//! value is taken to be the Lattice service id (`svc-…`, [`ServiceMapping::service_id`]). A
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
/// Queries one `GetMetricData` call takes at most (the `GetMetricData` reference).
pub const MAX_QUERIES: usize = 500;
/// `SEARCH` expressions one call carries at most here: each may match a series per zone, and a
/// call retrieves at most 500 metrics in all (see the module's documentation).
pub const MAX_SEARCHES: usize = 50;
/// Lattice's namespace.
pub const LATTICE_NAMESPACE: &str = "AWS/VpcLattice";
/// DynamoDB's namespace.
pub const DYNAMODB_NAMESPACE: &str = "AWS/DynamoDB";
/// CloudWatch Logs' namespace.
pub const LOGS_NAMESPACE: &str = "AWS/Logs";

/// One query of a `GetMetricData` call, answered under `id` (always with `ReturnData: true`:
/// nothing is asked that is not read).
#[derive(Clone, Debug, PartialEq)]
pub struct MetricQuery {
    /// The query id (`[a-z][a-zA-Z0-9_]*`).
    pub id: String,
    /// What it asks.
    pub ask: Ask,
}

/// What one query asks.
#[derive(Clone, Debug, PartialEq)]
pub enum Ask {
    /// One statistic of the metric published with exactly these dimensions, over the span's one
    /// period (`MetricStat`).
    Stat {
        /// `AWS/VpcLattice`, …
        namespace: &'static str,
        /// `RequestTime`, …
        metric: &'static str,
        /// Its dimensions, name and value.
        dimensions: Vec<(&'static str, String)>,
        /// `Sum`, `p99`, …
        stat: &'static str,
    },
    /// A metric-math expression (`Expression`), here `SUM(SEARCH(…))`, whose `SEARCH` names its
    /// own period.
    Expression(String),
}

impl Ask {
    /// Whether it is a `SEARCH` (a call carries at most [`MAX_SEARCHES`]).
    fn searches(&self) -> bool {
        matches!(self, Ask::Expression(text) if text.contains("SEARCH("))
    }
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
    for chunk in calls(queries) {
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
            if let Some(message) = output.messages().first() {
                return Err(answer(
                    OPERATION,
                    format!(
                        "a message about the whole call, whose figures may be incomplete: {}: {}",
                        message.code().unwrap_or("-"),
                        message.value().unwrap_or("-")
                    ),
                ));
            }
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

/// `queries` in calls of at most [`MAX_QUERIES`] queries and [`MAX_SEARCHES`] searches, in
/// their order (no query refers to another, so any split is valid).
pub fn calls(queries: &[MetricQuery]) -> Vec<&[MetricQuery]> {
    let mut calls = Vec::new();
    let (mut first, mut searches) = (0, 0);
    for (index, query) in queries.iter().enumerate() {
        let search = usize::from(query.ask.searches());
        if index - first == MAX_QUERIES || searches + search > MAX_SEARCHES {
            calls.push(&queries[first..index]);
            (first, searches) = (index, 0);
        }
        searches += search;
    }
    if first < queries.len() {
        calls.push(&queries[first..]);
    }
    calls
}

fn sdk_query(query: &MetricQuery, span: &MetricSpan) -> MetricDataQuery {
    let built = MetricDataQuery::builder().id(&query.id).return_data(true);
    match &query.ask {
        Ask::Stat {
            namespace,
            metric,
            dimensions,
            stat,
        } => {
            let dimensions = dimensions
                .iter()
                .map(|(name, value)| Dimension::builder().name(*name).value(value).build())
                .collect();
            let metric = Metric::builder()
                .namespace(*namespace)
                .metric_name(*metric)
                .set_dimensions(Some(dimensions))
                .build();
            let stat = MetricStat::builder()
                .metric(metric)
                .period(span.period)
                .stat(*stat)
                .build();
            built.metric_stat(stat).build()
        }
        Ask::Expression(text) => built.expression(text).build(),
    }
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

/// The status-class metrics Lattice publishes, with their index in
/// [`LatticeMetrics::status_classes`] (there is no `HTTPCode_1XX_Count`).
pub const STATUS_METRICS: [(usize, &str); 4] = [
    (2, "HTTPCode_2XX_Count"),
    (3, "HTTPCode_3XX_Count"),
    (4, "HTTPCode_4XX_Count"),
    (5, "HTTPCode_5XX_Count"),
];

/// The percentiles of `RequestTime` asked, by query-id suffix.
const PERCENTILES: [&str; 3] = ["p50", "p90", "p99"];

/// `text` as an exact match inside a `SEARCH` term: `"`, `\`, `(` and `)` escaped with a
/// backslash, as the CloudWatch User Guide says.
pub fn exact_match(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '"' | '\\' | '(' | ')') {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}

/// The count `metric` of Lattice service `service_id`, summed over every Availability Zone:
/// `SUM(SEARCH('{AWS/VpcLattice,AvailabilityZone,Service} MetricName="…" Service="…"', 'Sum',
/// period))`.
pub fn zone_sum(metric: &str, service_id: &str, period: i32) -> String {
    format!(
        "SUM(SEARCH('{{{LATTICE_NAMESPACE},AvailabilityZone,Service}} MetricName=\"{}\" Service=\"{}\"', 'Sum', {period}))",
        exact_match(metric),
        exact_match(service_id)
    )
}

/// The queries of the service at `index` over `span`: its counts summed over the zones
/// (`s<i>_requests`, `s<i>_c2` … `s<i>_c5`), then its percentiles on the `Service`-only set
/// (`s<i>_p50`, `s<i>_p90`, `s<i>_p99`).
pub fn lattice_queries(
    index: usize,
    service: &ServiceMapping,
    span: &MetricSpan,
) -> Vec<MetricQuery> {
    let id = service.service_id();
    let counted = |suffix: String, metric: &str| MetricQuery {
        id: format!("s{index}_{suffix}"),
        ask: Ask::Expression(zone_sum(metric, id, span.period)),
    };
    let mut queries = vec![counted("requests".into(), "TotalRequestCount")];
    for (class, metric) in STATUS_METRICS {
        queries.push(counted(format!("c{class}"), metric));
    }
    for stat in PERCENTILES {
        queries.push(MetricQuery {
            id: format!("s{index}_{stat}"),
            ask: Ask::Stat {
                namespace: LATTICE_NAMESPACE,
                metric: "RequestTime",
                dimensions: vec![("Service", id.to_owned())],
                stat,
            },
        });
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
    for (class, _) in STATUS_METRICS {
        status_classes[class] = count(values, &id(&format!("c{class}")))?;
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
            .flat_map(|(index, service)| lattice_queries(index, service, &span))
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
                ask: Ask::Stat {
                    namespace: DYNAMODB_NAMESPACE,
                    metric,
                    dimensions: vec![("TableName", table.clone())],
                    stat: "Sum",
                },
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
            ask: Ask::Stat {
                namespace: LOGS_NAMESPACE,
                metric: "IncomingBytes",
                dimensions: vec![("LogGroupName", group.clone())],
                stat: "Sum",
            },
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

    #[test]
    fn an_exact_match_escapes_quotes_backslashes_and_parentheses() {
        let cases = [
            ("svc-0123456789abcdef0", "svc-0123456789abcdef0"),
            ("a\"b", "a\\\"b"),
            ("a\\b", "a\\\\b"),
            ("f(x)", "f\\(x\\)"),
            ("", ""),
        ];
        for (text, escaped) in cases {
            assert_eq!(exact_match(text), escaped, "{text}");
        }
    }

    #[test]
    fn a_count_is_summed_over_the_zones_of_its_exact_dimension_set() {
        assert_eq!(
            zone_sum("HTTPCode_5XX_Count", "svc-0abc", 3600),
            "SUM(SEARCH('{AWS/VpcLattice,AvailabilityZone,Service} MetricName=\"HTTPCode_5XX_Count\" Service=\"svc-0abc\"', 'Sum', 3600))"
        );
    }

    fn query(id: usize, search: bool) -> MetricQuery {
        let ask = if search {
            Ask::Expression(zone_sum("TotalRequestCount", "svc-1", 60))
        } else {
            Ask::Expression("m1 * 2".into())
        };
        MetricQuery {
            id: format!("q{id}"),
            ask,
        }
    }

    #[test]
    fn calls_hold_at_most_500_queries_and_50_searches_in_order() {
        let sizes = |queries: &[MetricQuery]| -> Vec<usize> {
            calls(queries).iter().map(|call| call.len()).collect()
        };
        let plain: Vec<MetricQuery> = (0..1001).map(|i| query(i, false)).collect();
        assert_eq!(sizes(&plain), vec![500, 500, 1]);
        // One search in every other query: the 51st search opens the second call.
        let mixed: Vec<MetricQuery> = (0..120).map(|i| query(i, i % 2 == 0)).collect();
        assert_eq!(sizes(&mixed), vec![100, 20]);
        assert_eq!(calls(&mixed)[1][0].id, "q100");
        assert!(calls(&[]).is_empty());
        assert_eq!(sizes(&plain[..500]), vec![500]);
    }
}
