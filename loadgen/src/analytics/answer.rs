//! The dashboard's answers: typed (serde, so `--json` and the HTML report share one schema) and
//! parsed from OpenSearch's search answers by pure functions, tested on recorded answers.

use std::collections::BTreeMap;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::AnalyticsError;

/// `schema` of [`DashboardAnswers`]; bumped when a field changes meaning or goes.
pub const SCHEMA: &str = "loadgen-analytics/1";

/// Every answer of the dashboard over one window (`loadgen analytics --json`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DashboardAnswers {
    /// [`SCHEMA`].
    pub schema: String,
    /// The index pattern asked.
    pub index: String,
    /// Window start, RFC 3339.
    pub from: String,
    /// Window end, RFC 3339.
    pub to: String,
    /// Bucket width of `status_classes` (`1m`).
    pub interval: String,
    /// Requests (documents) in the window.
    pub requests: u64,
    /// Per service, most requests first.
    pub services: Vec<ServiceAnswer>,
    /// Requests per status class per time bucket, in time order (empty buckets left out).
    pub status_classes: Vec<ClassBucket>,
    /// The most requested paths.
    pub top_paths: Vec<PathAnswer>,
    /// The slowest requests, slowest first.
    pub slowest: Vec<SlowRequest>,
    /// Requests Lattice denied on its auth policies.
    pub denials: Denials,
}

/// One service's requests, errors and latency.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ServiceAnswer {
    /// `service`.
    pub service: String,
    /// Requests.
    pub requests: u64,
    /// Requests with `isError` (status ≥ 400).
    pub errors: u64,
    /// `errors / requests`.
    pub error_rate: f64,
    /// `duration` p50, ms (an estimate, as OpenSearch's; `None` without durations).
    pub p50_ms: Option<f64>,
    /// `duration` p99, ms.
    pub p99_ms: Option<f64>,
}

/// One time bucket of the status classes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClassBucket {
    /// Bucket start, as the engine prints it.
    pub time: String,
    /// Bucket start, epoch ms.
    pub epoch_ms: i64,
    /// Requests in the bucket.
    pub requests: u64,
    /// `responseClass` (`2xx`…) → requests.
    pub classes: BTreeMap<String, u64>,
}

/// One path.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PathAnswer {
    /// `requestPath`.
    pub path: String,
    /// Requests.
    pub requests: u64,
    /// `duration` p99, ms.
    pub p99_ms: Option<f64>,
}

/// One request, as logged (absent fields are `None`: Lattice logged `-`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SlowRequest {
    /// `@timestamp`.
    pub time: Option<String>,
    /// `service`.
    pub service: Option<String>,
    /// `requestMethod`.
    pub method: Option<String>,
    /// `requestPath`.
    pub path: Option<String>,
    /// `responseCode`.
    pub status: Option<u16>,
    /// `duration`, ms.
    pub duration_ms: Option<u64>,
    /// `callerRole`.
    pub caller_role: Option<String>,
    /// `callerPrincipal`.
    pub caller_principal: Option<String>,
    /// `failureReason`.
    pub failure_reason: Option<String>,
}

/// Auth denials (`authDenied: true`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Denials {
    /// All denials in the window.
    pub total: u64,
    /// Per principal, most first.
    pub by_principal: Vec<PrincipalDenials>,
    /// Denials with no `callerPrincipal` (unsigned callers) or beyond `--top` principals.
    pub other: u64,
}

/// One principal's denials.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PrincipalDenials {
    /// `callerPrincipal`.
    pub principal: String,
    /// Denials.
    pub denials: u64,
    /// `authDeniedReason` → denials.
    pub reasons: BTreeMap<String, u64>,
}

// OpenSearch's answer shapes, as far as they are read.

#[derive(Deserialize)]
struct Answer<A> {
    #[serde(default)]
    hits: Hits,
    aggregations: Option<A>,
}

#[derive(Default, Deserialize)]
struct Hits {
    total: Option<Total>,
    #[serde(default)]
    hits: Vec<Hit>,
}

#[derive(Deserialize)]
struct Total {
    value: u64,
}

#[derive(Deserialize)]
struct Hit {
    #[serde(rename = "_source", default)]
    source: Value,
}

#[derive(Deserialize)]
struct Buckets<B> {
    buckets: Vec<B>,
}

#[derive(Deserialize)]
struct Terms<S> {
    key: Value,
    doc_count: u64,
    #[serde(flatten)]
    sub: S,
}

#[derive(Deserialize)]
struct DocCount {
    doc_count: u64,
}

#[derive(Deserialize)]
struct Percentiles {
    values: BTreeMap<String, Option<f64>>,
}

impl Percentiles {
    fn at(&self, percent: &str) -> Option<f64> {
        self.values.get(percent).copied().flatten()
    }
}

#[derive(Deserialize)]
struct ServiceSub {
    errors: DocCount,
    duration: Percentiles,
}

#[derive(Deserialize)]
struct ServicesAggs {
    services: Buckets<Terms<ServiceSub>>,
}

/// Reads `answer` as `A`, naming `what` when it is not.
fn read<A: DeserializeOwned>(what: &str, answer: &Value) -> Result<Answer<A>, AnalyticsError> {
    Answer::<A>::deserialize(answer).map_err(|e| bad(what, e.to_string()))
}

fn bad(what: &str, detail: impl Into<String>) -> AnalyticsError {
    AnalyticsError::BadAnswer {
        what: what.to_owned(),
        detail: detail.into(),
    }
}

fn aggregations<A>(what: &str, answer: Answer<A>) -> Result<(Hits, A), AnalyticsError> {
    match answer.aggregations {
        Some(aggs) => Ok((answer.hits, aggs)),
        None => Err(bad(what, "no aggregations")),
    }
}

/// A terms key as text (keywords are strings; numbers and booleans print as JSON).
fn key_text(key: &Value) -> String {
    match key {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

/// The requests in the window and each service's summary.
pub fn parse_services(answer: &Value) -> Result<(u64, Vec<ServiceAnswer>), AnalyticsError> {
    const WHAT: &str = "requests per service";
    let (hits, aggs) = aggregations(WHAT, read::<ServicesAggs>(WHAT, answer)?)?;
    let total = hits.total.ok_or_else(|| bad(WHAT, "no hits.total"))?.value;
    let services = aggs
        .services
        .buckets
        .into_iter()
        .map(|bucket| ServiceAnswer {
            service: key_text(&bucket.key),
            requests: bucket.doc_count,
            errors: bucket.sub.errors.doc_count,
            error_rate: share(bucket.sub.errors.doc_count, bucket.doc_count),
            p50_ms: bucket.sub.duration.at("50.0"),
            p99_ms: bucket.sub.duration.at("99.0"),
        })
        .collect();
    Ok((total, services))
}

fn share(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 / whole as f64
    }
}

#[derive(Deserialize)]
struct TimeBucket {
    key: i64,
    key_as_string: Option<String>,
    doc_count: u64,
    classes: Buckets<Terms<Empty>>,
}

#[derive(Deserialize)]
struct Empty {}

#[derive(Deserialize)]
struct OverTimeAggs {
    over_time: Buckets<TimeBucket>,
}

/// Requests per status class per time bucket.
pub fn parse_status_classes(answer: &Value) -> Result<Vec<ClassBucket>, AnalyticsError> {
    const WHAT: &str = "status classes over time";
    let (_, aggs) = aggregations(WHAT, read::<OverTimeAggs>(WHAT, answer)?)?;
    let buckets = aggs
        .over_time
        .buckets
        .into_iter()
        .map(|bucket| ClassBucket {
            time: bucket
                .key_as_string
                .unwrap_or_else(|| bucket.key.to_string()),
            epoch_ms: bucket.key,
            requests: bucket.doc_count,
            classes: bucket
                .classes
                .buckets
                .iter()
                .map(|class| (key_text(&class.key), class.doc_count))
                .collect(),
        });
    Ok(buckets.collect())
}

#[derive(Deserialize)]
struct PathSub {
    duration: Percentiles,
}

#[derive(Deserialize)]
struct PathsAggs {
    paths: Buckets<Terms<PathSub>>,
}

/// The most requested paths.
pub fn parse_top_paths(answer: &Value) -> Result<Vec<PathAnswer>, AnalyticsError> {
    const WHAT: &str = "top paths";
    let (_, aggs) = aggregations(WHAT, read::<PathsAggs>(WHAT, answer)?)?;
    let paths = aggs.paths.buckets.into_iter().map(|bucket| PathAnswer {
        path: key_text(&bucket.key),
        requests: bucket.doc_count,
        p99_ms: bucket.sub.duration.at("99.0"),
    });
    Ok(paths.collect())
}

/// The slowest requests, in the engine's order.
pub fn parse_slowest(answer: &Value) -> Result<Vec<SlowRequest>, AnalyticsError> {
    const WHAT: &str = "slowest requests";
    let hits = read::<Value>(WHAT, answer)?.hits.hits;
    let text = |source: &Value, field: &str| source[field].as_str().map(str::to_owned);
    let requests = hits.iter().map(|hit| {
        let source = &hit.source;
        SlowRequest {
            time: text(source, "@timestamp"),
            service: text(source, "service"),
            method: text(source, "requestMethod"),
            path: text(source, "requestPath"),
            status: source["responseCode"]
                .as_u64()
                .and_then(|code| u16::try_from(code).ok()),
            duration_ms: source["duration"].as_u64(),
            caller_role: text(source, "callerRole"),
            caller_principal: text(source, "callerPrincipal"),
            failure_reason: text(source, "failureReason"),
        }
    });
    Ok(requests.collect())
}

#[derive(Deserialize)]
struct ReasonsSub {
    reasons: Buckets<Terms<Empty>>,
}

#[derive(Deserialize)]
struct PrincipalsAggs {
    principals: Buckets<Terms<ReasonsSub>>,
}

/// Denials by principal and reason; `other` is what no principal bucket holds.
pub fn parse_denials(answer: &Value) -> Result<Denials, AnalyticsError> {
    const WHAT: &str = "auth denials";
    let (hits, aggs) = aggregations(WHAT, read::<PrincipalsAggs>(WHAT, answer)?)?;
    let total = hits.total.ok_or_else(|| bad(WHAT, "no hits.total"))?.value;
    let by_principal: Vec<PrincipalDenials> = aggs
        .principals
        .buckets
        .into_iter()
        .map(|bucket| PrincipalDenials {
            principal: key_text(&bucket.key),
            denials: bucket.doc_count,
            reasons: bucket
                .sub
                .reasons
                .buckets
                .iter()
                .map(|reason| (key_text(&reason.key), reason.doc_count))
                .collect(),
        })
        .collect();
    let counted: u64 = by_principal.iter().map(|p| p.denials).sum();
    Ok(Denials {
        total,
        other: total.saturating_sub(counted),
        by_principal,
    })
}

#[derive(Deserialize)]
struct CodesSub {
    codes: Buckets<Terms<Empty>>,
}

#[derive(Deserialize)]
struct CountsAggs {
    services: Buckets<Terms<CodesSub>>,
}

/// `(service, status)` → documents.
pub fn parse_counts(answer: &Value) -> Result<BTreeMap<(String, u16), u64>, AnalyticsError> {
    const WHAT: &str = "counts by service and status";
    let (_, aggs) = aggregations(WHAT, read::<CountsAggs>(WHAT, answer)?)?;
    let mut counts = BTreeMap::new();
    for service in aggs.services.buckets {
        let name = key_text(&service.key);
        for code in service.sub.codes.buckets {
            let status = status_code(&code.key)
                .ok_or_else(|| bad(WHAT, format!("responseCode key {}", code.key)))?;
            counts.insert((name.clone(), status), code.doc_count);
        }
    }
    Ok(counts)
}

/// A `responseCode` terms key: a number (OpenSearch), possibly written as `200.0` or `"200"`.
fn status_code(key: &Value) -> Option<u16> {
    let number = match key {
        Value::String(text) => text.parse::<f64>().ok()?,
        other => other.as_f64()?,
    };
    (number.fract() == 0.0 && (0.0..=f64::from(u16::MAX)).contains(&number))
        .then_some(number as u16)
}

/// `_count`'s answer.
pub fn parse_count(answer: &Value) -> Result<u64, AnalyticsError> {
    answer["count"]
        .as_u64()
        .ok_or_else(|| bad("count", format!("no count in {answer}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Recorded from OpenSearch 2.19 (shape) for [`super::super::query::services_body`].
    fn services_answer() -> Value {
        json!({"took": 3, "timed_out": false,
            "_shards": {"total": 1, "successful": 1, "skipped": 0, "failed": 0},
            "hits": {"total": {"value": 7, "relation": "eq"}, "max_score": null, "hits": []},
            "aggregations": {"services": {"doc_count_error_upper_bound": 0, "sum_other_doc_count": 0,
                "buckets": [
                    {"key": "order", "doc_count": 4, "errors": {"doc_count": 1},
                     "duration": {"values": {"50.0": 120.0, "99.0": 410.5}}},
                    {"key": "payment", "doc_count": 3, "errors": {"doc_count": 0},
                     "duration": {"values": {"50.0": null, "99.0": null}}}]}}})
    }

    #[test]
    fn services_parse_with_rates_and_percentiles() {
        let (total, services) = parse_services(&services_answer()).unwrap();
        assert_eq!(total, 7);
        assert_eq!(
            services,
            vec![
                ServiceAnswer {
                    service: "order".into(),
                    requests: 4,
                    errors: 1,
                    error_rate: 0.25,
                    p50_ms: Some(120.0),
                    p99_ms: Some(410.5)
                },
                ServiceAnswer {
                    service: "payment".into(),
                    requests: 3,
                    errors: 0,
                    error_rate: 0.0,
                    p50_ms: None,
                    p99_ms: None
                },
            ]
        );
    }

    #[test]
    fn status_classes_parse_per_bucket() {
        let answer = json!({"hits": {"total": {"value": 5, "relation": "eq"}, "hits": []},
            "aggregations": {"over_time": {"buckets": [
                {"key_as_string": "2024-08-04T11:28:00.000Z", "key": 1_722_770_880_000i64, "doc_count": 3,
                 "classes": {"doc_count_error_upper_bound": 0, "sum_other_doc_count": 0, "buckets": [
                    {"key": "2xx", "doc_count": 2}, {"key": "5xx", "doc_count": 1}]}},
                {"key": 1_722_770_940_000i64, "doc_count": 2,
                 "classes": {"buckets": [{"key": "4xx", "doc_count": 2}]}}]}}});
        let buckets = parse_status_classes(&answer).unwrap();
        assert_eq!(
            buckets,
            vec![
                ClassBucket {
                    time: "2024-08-04T11:28:00.000Z".into(),
                    epoch_ms: 1_722_770_880_000,
                    requests: 3,
                    classes: BTreeMap::from([("2xx".into(), 2), ("5xx".into(), 1)]),
                },
                ClassBucket {
                    time: "1722770940000".into(),
                    epoch_ms: 1_722_770_940_000,
                    requests: 2,
                    classes: BTreeMap::from([("4xx".into(), 2)]),
                },
            ]
        );
    }

    #[test]
    fn paths_and_slowest_parse() {
        let paths = json!({"hits": {"hits": []}, "aggregations": {"paths": {"buckets": [
            {"key": "/orders", "doc_count": 9, "duration": {"values": {"99.0": 812.0}}}]}}});
        assert_eq!(
            parse_top_paths(&paths).unwrap(),
            vec![PathAnswer {
                path: "/orders".into(),
                requests: 9,
                p99_ms: Some(812.0)
            }]
        );
        let slowest = json!({"hits": {"max_score": null, "hits": [
            {"_index": "lattice-access-2024-08-04", "_id": "a", "_score": null, "sort": [900, 1],
             "_source": {"@timestamp": "2024-08-04T11:28:40Z", "service": "order", "requestMethod": "POST",
                "requestPath": "/orders", "responseCode": 502, "duration": 900,
                "callerRole": "loadgen", "failureReason": "Timeout"}},
            {"_index": "lattice-access-2024-08-04", "_id": "b", "_source": {"duration": 3}}]}});
        let requests = parse_slowest(&slowest).unwrap();
        assert_eq!(requests.len(), 2);
        assert_eq!(
            requests[0],
            SlowRequest {
                time: Some("2024-08-04T11:28:40Z".into()),
                service: Some("order".into()),
                method: Some("POST".into()),
                path: Some("/orders".into()),
                status: Some(502),
                duration_ms: Some(900),
                caller_role: Some("loadgen".into()),
                caller_principal: None,
                failure_reason: Some("Timeout".into()),
            }
        );
        assert_eq!(
            (requests[1].duration_ms, requests[1].path.clone()),
            (Some(3), None)
        );
    }

    #[test]
    fn denials_parse_with_what_no_principal_holds() {
        let answer = json!({"hits": {"total": {"value": 5, "relation": "eq"}, "hits": []},
            "aggregations": {"principals": {"buckets": [
                {"key": "arn:aws:iam::1:role/a", "doc_count": 3, "reasons": {"buckets": [
                    {"key": "AccessDenied", "doc_count": 2}, {"key": "Expired", "doc_count": 1}]}}]}}});
        assert_eq!(
            parse_denials(&answer).unwrap(),
            Denials {
                total: 5,
                by_principal: vec![PrincipalDenials {
                    principal: "arn:aws:iam::1:role/a".into(),
                    denials: 3,
                    reasons: BTreeMap::from([("AccessDenied".into(), 2), ("Expired".into(), 1)]),
                }],
                other: 2,
            }
        );
    }

    #[test]
    fn counts_parse_numeric_keys_in_any_spelling() {
        let answer = json!({"hits": {"total": {"value": 4}}, "aggregations": {"services": {"buckets": [
            {"key": "order", "doc_count": 3, "codes": {"buckets": [
                {"key": 201, "doc_count": 2}, {"key": 502.0, "doc_count": 1}]}},
            {"key": "payment", "doc_count": 1, "codes": {"buckets": [{"key": "402", "doc_count": 1}]}}]}}});
        assert_eq!(
            parse_counts(&answer).unwrap(),
            BTreeMap::from([
                (("order".into(), 201), 2),
                (("order".into(), 502), 1),
                (("payment".into(), 402), 1)
            ])
        );
        let table = [
            (json!(200), Some(200)),
            (json!(200.5), None),
            (json!(-1), None),
            (json!(70000), None),
            (json!("x"), None),
            (json!(true), None),
        ];
        for (key, expected) in table {
            assert_eq!(status_code(&key), expected, "{key}");
        }
    }

    #[test]
    fn answers_without_their_aggregations_are_named() {
        let errors = [
            parse_services(&json!({"hits": {"total": {"value": 1}}})).unwrap_err(),
            parse_status_classes(&json!({"aggregations": {"other": {}}})).unwrap_err(),
            parse_count(&json!({"counted": 3})).unwrap_err(),
        ];
        let shown: Vec<String> = errors.iter().map(ToString::to_string).collect();
        assert_eq!(
            shown,
            [
                "requests per service: unexpected answer: no aggregations",
                "status classes over time: unexpected answer: missing field `over_time`",
                "count: unexpected answer: no count in {\"counted\":3}",
            ]
        );
        assert_eq!(
            parse_count(&json!({"count": 12, "_shards": {}})).unwrap(),
            12
        );
    }
}
