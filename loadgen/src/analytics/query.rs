//! The dashboard's questions as OpenSearch request bodies: pure functions of the time window, the
//! bucket interval and `--top`, so tests assert the exact JSON sent.
//!
//! Each question is the one a saved object in `analytics/dashboards/lattice-access.ndjson` asks,
//! on the same fields of `analytics/lattice-access-template.json`: `service` (terms) with the
//! share of `isError` and `duration` percentiles 50/99; `responseClass` per `@timestamp` bucket;
//! `requestPath.keyword` with p99; the slowest requests sorted on `duration`; and `authDenied:
//! true` by `callerPrincipal` and `authDeniedReason`. Every body filters `@timestamp` on the
//! window as Dashboards' time picker does (`range` with `strict_date_optional_time`).

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, TimeDelta, Utc};
use serde_json::{json, Value};

use super::AnalyticsError;

/// The indices Firehose writes (`lattice-access-YYYY-MM-DD`, rotated daily).
pub const INDEX_PATTERN: &str = "lattice-access-*";
/// Services asked for at most (the dashboard shows 10; every service is wanted here).
pub const SERVICES_SIZE: usize = 100;
/// Status classes per time bucket (as the dashboard: 1xx…5xx and one more).
pub const CLASSES_SIZE: usize = 6;
/// Denial reasons per principal (as the dashboard).
pub const REASONS_SIZE: usize = 10;
/// Services and status codes in [`counts_body`]: far more than exist.
pub const COUNTS_SIZE: usize = 1000;
/// Time buckets the automatic interval aims at, at most.
pub const AUTO_BUCKETS: u64 = 60;
/// Fields returned for each slow request.
pub const SLOW_REQUEST_FIELDS: [&str; 9] = [
    "@timestamp",
    "service",
    "requestMethod",
    "requestPath",
    "responseCode",
    "duration",
    "callerRole",
    "callerPrincipal",
    "failureReason",
];

/// A `date_histogram` `fixed_interval`: whole seconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Interval(u64);

/// The intervals [`Interval::auto`] picks from, in seconds.
const NICE_INTERVALS: [u64; 14] = [
    1, 5, 10, 30, 60, 300, 600, 1800, 3600, 10_800, 21_600, 43_200, 86_400, 604_800,
];

impl Interval {
    /// `seconds` long (at least one second).
    pub fn from_secs(seconds: u64) -> Self {
        Self(seconds.max(1))
    }

    /// Its length.
    pub fn as_duration(self) -> Duration {
        Duration::from_secs(self.0)
    }

    /// The shortest round interval giving at most [`AUTO_BUCKETS`] buckets over `span` (as
    /// Dashboards' `auto` does): 1 h → `1m`, 15 min → `30s`, 24 h → `30m`.
    pub fn auto(span: Duration) -> Self {
        let wanted = span.as_secs().div_ceil(AUTO_BUCKETS);
        let seconds = NICE_INTERVALS
            .into_iter()
            .find(|&nice| nice >= wanted)
            .unwrap_or_else(|| wanted.div_ceil(86_400) * 86_400);
        Self(seconds)
    }
}

/// OpenSearch's syntax, in the largest unit that divides it: `30s`, `1m`, `3h`, `1d`.
impl fmt::Display for Interval {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let units = [(86_400, 'd'), (3600, 'h'), (60, 'm')];
        match units.iter().find(|(size, _)| self.0.is_multiple_of(*size)) {
            Some((size, unit)) => write!(f, "{}{unit}", self.0 / size),
            None => write!(f, "{}s", self.0),
        }
    }
}

/// A human duration of whole seconds (`30s`, `5m`, `1h`).
impl FromStr for Interval {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let length = humantime::parse_duration(text).map_err(|e| format!("{text:?}: {e}"))?;
        if length.subsec_nanos() != 0 || length.as_secs() == 0 {
            return Err(format!("{text:?}: use whole seconds, at least 1s"));
        }
        Ok(Self(length.as_secs()))
    }
}

/// The time the questions are asked over, and the width of the time buckets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    /// Start (inclusive).
    pub from: DateTime<Utc>,
    /// End (inclusive).
    pub to: DateTime<Utc>,
    /// Bucket width of the status classes over time.
    pub interval: Interval,
}

impl Window {
    /// `from` to `to`, with the automatic interval.
    pub fn between(from: DateTime<Utc>, to: DateTime<Utc>) -> Result<Self, AnalyticsError> {
        let span = (to - from)
            .to_std()
            .ok()
            .filter(|span| !span.is_zero())
            .ok_or_else(|| {
                AnalyticsError::BadWindow(format!("{} is not before {}", text(from), text(to)))
            })?;
        Ok(Self {
            from,
            to,
            interval: Interval::auto(span),
        })
    }

    /// The `length` before `to`, with the automatic interval.
    pub fn last(length: Duration, to: DateTime<Utc>) -> Result<Self, AnalyticsError> {
        let from = TimeDelta::from_std(length)
            .ok()
            .and_then(|delta| to.checked_sub_signed(delta))
            .ok_or_else(|| AnalyticsError::BadWindow(format!("{length:?} is too long")))?;
        Self::between(from, to)
    }

    /// The same window with buckets of `interval`.
    pub fn with_interval(self, interval: Interval) -> Self {
        Self { interval, ..self }
    }

    /// `@timestamp` within the window, and `more` filters.
    fn query(&self, more: Vec<Value>) -> Value {
        let mut filter = vec![json!({"range": {"@timestamp": {
            "gte": text(self.from),
            "lte": text(self.to),
            "format": "strict_date_optional_time"
        }}})];
        filter.extend(more);
        json!({"bool": {"filter": filter}})
    }
}

/// RFC 3339 UTC with milliseconds, as OpenSearch prints dates.
pub fn text(time: DateTime<Utc>) -> String {
    time.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Requests per service, each service's errors (`isError: true`) and `duration` p50/p99.
pub fn services_body(window: &Window) -> Value {
    json!({
        "size": 0,
        "track_total_hits": true,
        "query": window.query(vec![]),
        "aggs": {"services": {
            "terms": {"field": "service", "size": SERVICES_SIZE, "order": {"_count": "desc"}},
            "aggs": {
                "errors": {"filter": {"term": {"isError": true}}},
                "duration": {"percentiles": {"field": "duration", "percents": [50, 99]}}
            }
        }}
    })
}

/// Requests per `responseClass` per time bucket (empty buckets left out, as the dashboard).
pub fn status_classes_body(window: &Window) -> Value {
    json!({
        "size": 0,
        "query": window.query(vec![]),
        "aggs": {"over_time": {
            "date_histogram": {
                "field": "@timestamp",
                "fixed_interval": window.interval.to_string(),
                "min_doc_count": 1
            },
            "aggs": {"classes": {"terms": {"field": "responseClass", "size": CLASSES_SIZE}}}
        }}
    })
}

/// The `top` most requested paths with their `duration` p99.
pub fn top_paths_body(window: &Window, top: usize) -> Value {
    json!({
        "size": 0,
        "query": window.query(vec![]),
        "aggs": {"paths": {
            "terms": {"field": "requestPath.keyword", "size": top, "order": {"_count": "desc"}},
            "aggs": {"duration": {"percentiles": {"field": "duration", "percents": [99]}}}
        }}
    })
}

/// The `top` slowest requests (`duration` descending, the latest first among equals).
pub fn slowest_body(window: &Window, top: usize) -> Value {
    json!({
        "size": top,
        "track_total_hits": false,
        "query": window.query(vec![]),
        "sort": [{"duration": {"order": "desc"}}, {"@timestamp": {"order": "desc"}}],
        "_source": SLOW_REQUEST_FIELDS
    })
}

/// Requests Lattice denied on its auth policies, by the `top` principals and their reasons.
pub fn denials_body(window: &Window, top: usize) -> Value {
    json!({
        "size": 0,
        "track_total_hits": true,
        "query": window.query(vec![json!({"term": {"authDenied": true}})]),
        "aggs": {"principals": {
            "terms": {"field": "callerPrincipal", "size": top, "order": {"_count": "desc"}},
            "aggs": {"reasons": {
                "terms": {"field": "authDeniedReason", "size": REASONS_SIZE, "order": {"_count": "desc"}}
            }}
        }}
    })
}

/// Every document (no window) by `service` and `responseCode`.
pub fn counts_body() -> Value {
    json!({
        "size": 0,
        "track_total_hits": true,
        "query": {"match_all": {}},
        "aggs": {"services": {
            "terms": {"field": "service", "size": COUNTS_SIZE},
            "aggs": {"codes": {"terms": {"field": "responseCode", "size": COUNTS_SIZE}}}
        }}
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn window() -> Window {
        let at = |t: &str| DateTime::parse_from_rfc3339(t).unwrap().with_timezone(&Utc);
        Window::between(at("2024-08-04T11:00:00Z"), at("2024-08-04T12:00:00Z")).unwrap()
    }

    fn in_window() -> Value {
        json!({"range": {"@timestamp": {"gte": "2024-08-04T11:00:00.000Z",
            "lte": "2024-08-04T12:00:00.000Z", "format": "strict_date_optional_time"}}})
    }

    #[test]
    fn intervals_parse_print_and_follow_the_window() {
        let table = [
            ("30s", "30s"),
            ("1m", "1m"),
            ("90s", "90s"),
            ("2h", "2h"),
            ("1day", "1d"),
        ];
        for (input, shown) in table {
            assert_eq!(input.parse::<Interval>().unwrap().to_string(), shown);
        }
        for bad in ["0s", "1.5s", "soon", ""] {
            assert!(bad.parse::<Interval>().is_err(), "{bad}");
        }
        let auto = |secs| Interval::auto(Duration::from_secs(secs)).to_string();
        let table = [
            (3600, "1m"),
            (900, "30s"),
            (86_400, "30m"),
            (60, "1s"),
            (7 * 86_400, "3h"),
        ];
        for (span, interval) in table {
            assert_eq!(auto(span), interval, "{span}");
        }
        assert_eq!(auto(400 * 86_400), "7d");
        assert_eq!(auto(3000 * 86_400), "50d");
    }

    #[test]
    fn windows_refuse_empty_or_reversed_spans() {
        let w = window();
        assert!(Window::between(w.to, w.from).is_err());
        assert!(Window::between(w.to, w.to).is_err());
        let last = Window::last(Duration::from_secs(900), w.to).unwrap();
        assert_eq!(text(last.from), "2024-08-04T11:45:00.000Z");
        assert_eq!(last.interval.to_string(), "30s");
        assert!(Window::last(Duration::from_secs(u64::MAX), w.to).is_err());
    }

    #[test]
    fn services_body_is_exact() {
        assert_eq!(
            services_body(&window()),
            json!({"size": 0, "track_total_hits": true,
                "query": {"bool": {"filter": [in_window()]}},
                "aggs": {"services": {
                    "terms": {"field": "service", "size": 100, "order": {"_count": "desc"}},
                    "aggs": {"errors": {"filter": {"term": {"isError": true}}},
                        "duration": {"percentiles": {"field": "duration", "percents": [50, 99]}}}}}})
        );
    }

    #[test]
    fn status_classes_body_is_exact() {
        let five = window().with_interval("5m".parse().unwrap());
        assert_eq!(
            status_classes_body(&five),
            json!({"size": 0, "query": {"bool": {"filter": [in_window()]}},
                "aggs": {"over_time": {
                    "date_histogram": {"field": "@timestamp", "fixed_interval": "5m", "min_doc_count": 1},
                    "aggs": {"classes": {"terms": {"field": "responseClass", "size": 6}}}}}})
        );
    }

    #[test]
    fn paths_and_slowest_bodies_are_exact() {
        assert_eq!(
            top_paths_body(&window(), 5),
            json!({"size": 0, "query": {"bool": {"filter": [in_window()]}},
                "aggs": {"paths": {
                    "terms": {"field": "requestPath.keyword", "size": 5, "order": {"_count": "desc"}},
                    "aggs": {"duration": {"percentiles": {"field": "duration", "percents": [99]}}}}}})
        );
        assert_eq!(
            slowest_body(&window(), 3),
            json!({"size": 3, "track_total_hits": false,
                "query": {"bool": {"filter": [in_window()]}},
                "sort": [{"duration": {"order": "desc"}}, {"@timestamp": {"order": "desc"}}],
                "_source": ["@timestamp", "service", "requestMethod", "requestPath", "responseCode",
                    "duration", "callerRole", "callerPrincipal", "failureReason"]})
        );
    }

    #[test]
    fn denials_and_counts_bodies_are_exact() {
        assert_eq!(
            denials_body(&window(), 20),
            json!({"size": 0, "track_total_hits": true,
                "query": {"bool": {"filter": [in_window(), {"term": {"authDenied": true}}]}},
                "aggs": {"principals": {
                    "terms": {"field": "callerPrincipal", "size": 20, "order": {"_count": "desc"}},
                    "aggs": {"reasons": {"terms": {"field": "authDeniedReason", "size": 10,
                        "order": {"_count": "desc"}}}}}}})
        );
        assert_eq!(
            counts_body(),
            json!({"size": 0, "track_total_hits": true, "query": {"match_all": {}},
                "aggs": {"services": {"terms": {"field": "service", "size": 1000},
                    "aggs": {"codes": {"terms": {"field": "responseCode", "size": 1000}}}}}})
        );
    }

    /// Every field a body names is mapped by the template (and aggregatable: not `text`).
    #[test]
    fn every_field_asked_is_in_the_template() {
        let template: Value = serde_json::from_str(super::super::setup::TEMPLATE).unwrap();
        let properties = &template["template"]["mappings"]["properties"];
        let kind = |field: &str| match field.split_once('.') {
            Some((parent, sub)) => properties[parent]["fields"][sub]["type"].clone(),
            None => properties[field]["type"].clone(),
        };
        let aggregated = [
            "service",
            "isError",
            "duration",
            "@timestamp",
            "responseClass",
            "requestPath.keyword",
            "authDenied",
            "callerPrincipal",
            "authDeniedReason",
            "responseCode",
        ];
        for field in aggregated {
            let kind = kind(field);
            assert!(kind.is_string() && kind != "text", "{field}: {kind}");
        }
        for field in SLOW_REQUEST_FIELDS {
            assert!(kind(field).is_string(), "{field}");
        }
    }
}
