//! Aggregations, computed by tantivy's Elasticsearch-compatible aggregation engine and answered in
//! OpenSearch's format.
//!
//! tantivy takes the request JSON almost as OpenSearch does; what is done here:
//! - field names become paths of the exact side (`serviceName` → `kw.serviceName`); a `text`
//!   field is refused as OpenSearch refuses it (no fielddata);
//! - `filter` takes the query DSL (compiled by `query`, handed to tantivy as a query builder);
//! - `filters` becomes one `filter` per bucket, reassembled into `{"buckets": {name: …}}`;
//! - `date_histogram`: `calendar_interval` of minutes, hours, days and weeks (Monday-aligned) maps
//!   to tantivy's `fixed_interval`; months, quarters and years (uneven lengths) are computed as a
//!   `range` over the calendar buckets and answered as histogram buckets; `format` and the
//!   field's own format set `key_as_string`, as OpenSearch prints it.
//!
//! Served types: `terms`, `date_histogram`, `histogram`, `range`, `filter`, `filters`; `avg`,
//! `sum`, `min`, `max`, `stats`, `extended_stats`, `value_count`, `cardinality`, `percentiles`,
//! `top_hits`. Any other is refused by name.

use std::collections::BTreeMap;

use chrono::{Datelike, Months, NaiveDate, TimeZone, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use tantivy::aggregation::agg_req::Aggregations;
use tantivy::aggregation::bucket::QueryBuilder;
use tantivy::query::Query;
use tantivy::schema::Schema;
use tantivy::tokenizer::TokenizerManager;

use crate::date::DateFormat;
use crate::error::{ApiError, ApiResult};
use crate::fields::{ExactKind, Resolver, Target};
use crate::mapping::Mapping;
use crate::store::{Fields, EXACT};

/// Separates a `filters` aggregation's name from its bucket's in the rewritten request.
const FILTERS_SEPARATOR: char = '\u{1f}';

/// What to do to tantivy's result for one aggregation.
#[derive(Clone, Debug)]
enum Post {
    Plain {
        children: BTreeMap<String, Post>,
    },
    DateHistogram {
        format: DateFormat,
        children: BTreeMap<String, Post>,
    },
    /// A calendar month/quarter/year histogram computed as a keyed range.
    Calendar {
        format: DateFormat,
        children: BTreeMap<String, Post>,
    },
    Filters {
        keyed: bool,
        buckets: Vec<String>,
        children: BTreeMap<String, Post>,
    },
    /// A `range` over a date field: bounds given in ms or as dates, answered in ms with
    /// `from_as_string` / `to_as_string`.
    DateRange {
        format: DateFormat,
        children: BTreeMap<String, Post>,
    },
    /// `value_count`, `cardinality`: OpenSearch answers whole numbers.
    Integer,
    /// A metric over a date field: tantivy answers nanoseconds, OpenSearch milliseconds and
    /// `value_as_string`.
    DateValue {
        format: DateFormat,
    },
}

/// A request ready for tantivy and how to shape its answer.
pub struct Plan {
    /// tantivy's request.
    pub request: Aggregations,
    post: BTreeMap<String, Post>,
}

/// The span of a date field under the query, for calendar histograms.
pub type DateBounds<'a> = &'a dyn Fn(&str) -> ApiResult<Option<(i64, i64)>>;

/// Rewrites an OpenSearch `aggs` object for tantivy.
pub fn plan(resolver: &Resolver<'_>, aggs: &Value, bounds: DateBounds<'_>) -> ApiResult<Plan> {
    let object = aggs
        .as_object()
        .ok_or_else(|| ApiError::parsing("[aggs] must be an object"))?;
    let (request, post) = rewrite_level(resolver, object, bounds)?;
    let request: Aggregations = serde_json::from_value(Value::Object(request))
        .map_err(|e| ApiError::parsing(format!("aggregation request not served: {e}")))?;
    Ok(Plan { request, post })
}

fn rewrite_level(
    resolver: &Resolver<'_>,
    aggs: &Map<String, Value>,
    bounds: DateBounds<'_>,
) -> ApiResult<(Map<String, Value>, BTreeMap<String, Post>)> {
    let mut request = Map::new();
    let mut post = BTreeMap::new();
    for (name, body) in aggs {
        if name.contains(FILTERS_SEPARATOR) || name.contains('>') || name.contains('[') {
            return Err(ApiError::parsing(format!(
                "Invalid aggregation name [{name}]. Aggregation names can contain any character except '[', ']', and '>'"
            )));
        }
        let body = body.as_object().ok_or_else(|| {
            ApiError::parsing(format!(
                "Expected [START_OBJECT] under aggregation [{name}]"
            ))
        })?;
        let mut kind = None;
        let mut sub = None;
        for (key, value) in body {
            match key.as_str() {
                "aggs" | "aggregations" => sub = Some(value),
                "meta" => {
                    return Err(ApiError::parsing(format!(
                        "[meta] on aggregation [{name}] is not served"
                    )))
                }
                _ if kind.is_some() => {
                    return Err(ApiError::parsing(format!(
                        "Found two aggregation type definitions in [{name}]: [{}] and [{key}]",
                        kind.map(|(k, _): (&String, &Value)| k.as_str())
                            .unwrap_or_default()
                    )))
                }
                _ => kind = Some((key, value)),
            }
        }
        let (kind, params) = kind.ok_or_else(|| {
            ApiError::parsing(format!("Missing definition for aggregation [{name}]"))
        })?;
        let (sub_request, children) = match sub {
            Some(Value::Object(sub)) => rewrite_level(resolver, sub, bounds)?,
            Some(_) => {
                return Err(ApiError::parsing(format!(
                    "[aggs] of [{name}] must be an object"
                )))
            }
            None => (Map::new(), BTreeMap::new()),
        };
        let with_sub = |mut agg: Map<String, Value>| {
            if !sub_request.is_empty() {
                agg.insert("aggs".into(), Value::Object(sub_request.clone()));
            }
            Value::Object(agg)
        };
        match kind.as_str() {
            "filters" => {
                let (keyed, filters) = filters_of(name, params)?;
                let mut buckets = Vec::new();
                for (bucket, query) in filters {
                    let mut agg = Map::new();
                    agg.insert("filter".into(), dsl_filter(resolver, &query));
                    request.insert(format!("{name}{FILTERS_SEPARATOR}{bucket}"), with_sub(agg));
                    buckets.push(bucket);
                }
                post.insert(
                    name.clone(),
                    Post::Filters {
                        keyed,
                        buckets,
                        children,
                    },
                );
            }
            "filter" => {
                let mut agg = Map::new();
                agg.insert("filter".into(), dsl_filter(resolver, params));
                request.insert(name.clone(), with_sub(agg));
                post.insert(name.clone(), Post::Plain { children });
            }
            "date_histogram" => {
                let (agg, entry) = date_histogram(resolver, name, params, children, bounds)?;
                request.insert(name.clone(), with_sub(agg));
                post.insert(name.clone(), entry);
            }
            "terms" | "histogram" | "range" | "avg" | "sum" | "min" | "max" | "stats"
            | "extended_stats" | "value_count" | "cardinality" | "percentiles" | "top_hits" => {
                let mut params = params
                    .as_object()
                    .cloned()
                    .ok_or_else(|| ApiError::parsing(format!("[{kind}] of [{name}] must be an object")))?;
                let mut entry = Post::Plain { children };
                if let Some(field) = params.get("field").and_then(Value::as_str) {
                    let (path, field_kind) = aggregatable(resolver, field)?;
                    params.insert("field".into(), json!(format!("{EXACT}.{path}")));
                    if let (Some(ExactKind::Date(format)), "min" | "max" | "avg" | "sum") =
                        (field_kind, kind.as_str())
                    {
                        entry = Post::DateValue { format };
                    }
                }
                if kind == "range" {
                    if let Post::Plain { children } = entry {
                        entry = match resolver.target(params["field"].as_str().unwrap_or_default().trim_start_matches("kw.")) {
                            Target::Exact { kind: ExactKind::Date(format), .. } => {
                                date_range_bounds(resolver, &mut params, &format)?;
                                Post::DateRange { format, children }
                            }
                            _ => Post::Plain { children },
                        };
                    }
                }
                if matches!(kind.as_str(), "value_count" | "cardinality") {
                    entry = Post::Integer;
                }
                let mut agg = Map::new();
                agg.insert(kind.clone(), Value::Object(params));
                request.insert(name.clone(), with_sub(agg));
                post.insert(name.clone(), entry);
            }
            other => {
                return Err(ApiError::parsing(format!(
                    "Unknown aggregation type [{other}] (this engine serves terms, date_histogram, histogram, range, filter, filters, avg, sum, min, max, stats, extended_stats, value_count, cardinality, percentiles, top_hits)"
                ))
                .with("line", 1)
                .with("col", 1))
            }
        }
    }
    Ok((request, post))
}

/// The exact-side path of an aggregatable field, and its kind (`None` when unmapped).
fn aggregatable(resolver: &Resolver<'_>, field: &str) -> ApiResult<(String, Option<ExactKind>)> {
    match resolver.target(field) {
        Target::Exact { path, kind } => Ok((path, Some(kind))),
        Target::Unmapped => Ok((field.to_owned(), None)),
        Target::Text { .. } => Err(ApiError::illegal_argument(format!(
            "Text fields are not optimised for operations that require per-document field data like aggregations and sorting, so these operations are disabled by default. Please use a keyword field instead. Alternatively, set fielddata=true on [{field}] in order to load field data by uninverting the inverted index. Note that this can use significant memory."
        ))),
        Target::Object { .. } | Target::Id => Err(ApiError::illegal_argument(format!(
            "Field [{field}] of type [object] is not supported for aggregation"
        ))),
    }
}

fn filters_of(name: &str, params: &Value) -> ApiResult<(bool, Vec<(String, Value)>)> {
    let filters = params
        .get("filters")
        .ok_or_else(|| ApiError::parsing(format!("[filters] of [{name}] requires [filters]")))?;
    if let Some(key) = params
        .as_object()
        .and_then(|o| o.keys().find(|k| k.as_str() != "filters"))
    {
        return Err(ApiError::parsing(format!(
            "[filters] does not support [{key}]"
        )));
    }
    match filters {
        Value::Object(named) => Ok((
            true,
            named.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        )),
        Value::Array(anonymous) => Ok((
            false,
            anonymous
                .iter()
                .enumerate()
                .map(|(i, v)| (format!("{i:05}"), v.clone()))
                .collect(),
        )),
        _ => Err(ApiError::parsing("[filters] must be an object or an array")),
    }
}

fn date_histogram(
    resolver: &Resolver<'_>,
    name: &str,
    params: &Value,
    children: BTreeMap<String, Post>,
    bounds: DateBounds<'_>,
) -> ApiResult<(Map<String, Value>, Post)> {
    let mut params = params.as_object().cloned().ok_or_else(|| {
        ApiError::parsing(format!("[date_histogram] of [{name}] must be an object"))
    })?;
    let field = params
        .get("field")
        .and_then(Value::as_str)
        .ok_or_else(|| ApiError::parsing(format!("[date_histogram] of [{name}] requires [field]")))?
        .to_owned();
    let (path, kind) = aggregatable(resolver, &field)?;
    let field_format = match kind {
        Some(ExactKind::Date(format)) => format,
        _ => DateFormat::default(),
    };
    let format = match params.remove("format") {
        Some(Value::String(spec)) => DateFormat::parse(&spec).map_err(ApiError::parsing)?,
        Some(other) => {
            return Err(ApiError::parsing(format!(
                "[format] must be a string, got {other}"
            )))
        }
        None => field_format,
    };
    if params.contains_key("interval") {
        return Err(ApiError::parsing(
            "[interval] on [date_histogram] was removed; use [fixed_interval] or [calendar_interval]",
        ));
    }
    params.insert("field".into(), json!(format!("{EXACT}.{path}")));
    let mut agg = Map::new();
    if let Some(calendar) = params.remove("calendar_interval") {
        let unit = calendar_unit(&calendar)?;
        match unit {
            'm' | 'h' | 'd' => {
                params.insert("fixed_interval".into(), json!(format!("1{unit}")));
            }
            'w' => {
                // Weeks start on Monday; the epoch was a Thursday.
                params.insert("fixed_interval".into(), json!("7d"));
                params.insert("offset".into(), json!("-3d"));
            }
            _ => {
                let ranges = calendar_ranges(bounds(&field)?, unit);
                let mut range = Map::new();
                range.insert("field".into(), json!(format!("{EXACT}.{path}")));
                range.insert("ranges".into(), Value::Array(ranges));
                range.insert("keyed".into(), json!(false));
                agg.insert("range".into(), Value::Object(range));
                return Ok((agg, Post::Calendar { format, children }));
            }
        }
    }
    agg.insert("date_histogram".into(), Value::Object(params));
    Ok((agg, Post::DateHistogram { format, children }))
}

fn calendar_unit(value: &Value) -> ApiResult<char> {
    let text = value.as_str().unwrap_or_default();
    Ok(match text {
        "minute" | "1m" => 'm',
        "hour" | "1h" => 'h',
        "day" | "1d" => 'd',
        "week" | "1w" => 'w',
        "month" | "1M" => 'M',
        "quarter" | "1q" => 'q',
        "year" | "1y" => 'y',
        _ => {
            return Err(ApiError::illegal_argument(format!(
                "The supplied interval [{text}] could not be parsed as a calendar interval."
            )))
        }
    })
}

/// Calendar buckets from the month/quarter/year holding `min` through the one holding `max`.
fn calendar_ranges(bounds: Option<(i64, i64)>, unit: char) -> Vec<Value> {
    let Some((min, max)) = bounds else {
        return Vec::new();
    };
    let start = Utc
        .timestamp_millis_opt(min)
        .single()
        .unwrap_or_default()
        .date_naive();
    let months = match unit {
        'q' => 3,
        'y' => 12,
        _ => 1,
    };
    let first_month = match unit {
        'y' => 1,
        'q' => (start.month0() / 3) * 3 + 1,
        _ => start.month(),
    };
    let mut from = NaiveDate::from_ymd_opt(start.year(), first_month, 1)
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc())
        .unwrap_or_default();
    let mut ranges = Vec::new();
    while from.timestamp_millis() <= max && ranges.len() < 10_000 {
        let Some(to) = from.checked_add_months(Months::new(months)) else {
            break;
        };
        // tantivy's range aggregation reads date bounds in nanoseconds.
        ranges.push(json!({"from": from.timestamp_millis() as f64 * 1e6, "to": to.timestamp_millis() as f64 * 1e6}));
        from = to;
    }
    ranges
}

/// A date `range`'s bounds (epoch ms or date strings with date math) → nanoseconds for tantivy.
fn date_range_bounds(
    resolver: &Resolver<'_>,
    params: &mut Map<String, Value>,
    format: &DateFormat,
) -> ApiResult<()> {
    let Some(Value::Array(ranges)) = params.get_mut("ranges") else {
        return Ok(());
    };
    for range in ranges.iter_mut() {
        for key in ["from", "to"] {
            let Some(bound) = range.get(key).cloned() else {
                continue;
            };
            let millis = match &bound {
                Value::String(text) => {
                    crate::date::date_math(text, resolver.now_millis, format, false)
                        .map_err(ApiError::parsing)?
                }
                Value::Number(n) => n.as_f64().unwrap_or_default() as i64,
                _ => {
                    return Err(ApiError::parsing(format!(
                        "[range] bound [{bound}] cannot be read"
                    )))
                }
            };
            range[key] = json!(millis as f64 * 1e6);
        }
    }
    Ok(())
}

/// A `filter` aggregation's query, for tantivy's query-builder hook.
fn dsl_filter(resolver: &Resolver<'_>, query: &Value) -> Value {
    json!({
        "type": "opensearch_dsl",
        "query": query,
        "mapping": resolver.mapping.to_json(),
        "now_millis": resolver.now_millis,
    })
}

/// The query DSL inside a `filter` aggregation, compiled for each segment from the mapping.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct OpensearchDsl {
    query: Value,
    mapping: Value,
    now_millis: i64,
}

#[typetag::serde(name = "opensearch_dsl")]
impl QueryBuilder for OpensearchDsl {
    fn build_query(
        &self,
        schema: &Schema,
        tokenizers: &TokenizerManager,
    ) -> tantivy::Result<Box<dyn Query>> {
        let invalid = |e: ApiError| tantivy::TantivyError::InvalidArgument(e.reason);
        let mapping = Mapping::parse(&self.mapping).map_err(invalid)?;
        let analyzer = tokenizers
            .get("default")
            .ok_or_else(|| tantivy::TantivyError::InvalidArgument("no default tokenizer".into()))?;
        let resolver = Resolver {
            mapping: &mapping,
            fields: Fields::from_schema(schema)?,
            analyzer,
            now_millis: self.now_millis,
        };
        crate::query::compile(&resolver, &self.query).map_err(invalid)
    }

    fn box_clone(&self) -> Box<dyn QueryBuilder> {
        Box::new(self.clone())
    }
}

/// tantivy's final result → OpenSearch's `aggregations` object.
pub fn shape(plan: &Plan, result: Value) -> Value {
    let Value::Object(result) = result else {
        return json!({});
    };
    Value::Object(shape_level(&plan.post, result))
}

fn shape_level(
    post: &BTreeMap<String, Post>,
    mut result: Map<String, Value>,
) -> Map<String, Value> {
    let mut out = Map::new();
    for (name, entry) in post {
        match entry {
            Post::Filters {
                keyed,
                buckets,
                children,
            } => {
                let shaped: Vec<(String, Value)> = buckets
                    .iter()
                    .map(|bucket| {
                        let value = result
                            .remove(&format!("{name}{FILTERS_SEPARATOR}{bucket}"))
                            .unwrap_or_else(|| json!({"doc_count": 0}));
                        (bucket.clone(), shape_bucket(children, value))
                    })
                    .collect();
                let buckets = if *keyed {
                    Value::Object(shaped.into_iter().collect())
                } else {
                    Value::Array(shaped.into_iter().map(|(_, v)| v).collect())
                };
                out.insert(name.clone(), json!({ "buckets": buckets }));
            }
            Post::Plain { children } => {
                if let Some(value) = result.remove(name) {
                    out.insert(name.clone(), shape_agg(children, value));
                }
            }
            Post::DateHistogram { format, children } => {
                if let Some(mut value) = result.remove(name) {
                    if let Some(buckets) = value.get_mut("buckets").and_then(Value::as_array_mut) {
                        for bucket in buckets.iter_mut() {
                            let key = bucket
                                .get("key")
                                .and_then(Value::as_f64)
                                .unwrap_or_default();
                            if let Some(object) = bucket.as_object_mut() {
                                object.insert(
                                    "key_as_string".into(),
                                    json!(format.format(key as i64)),
                                );
                                object.insert("key".into(), json!(key as i64));
                            }
                        }
                    }
                    out.insert(name.clone(), shape_agg(children, value));
                }
            }
            Post::DateRange { format, children } => {
                if let Some(mut value) = result.remove(name) {
                    if let Some(buckets) = value.get_mut("buckets").and_then(Value::as_array_mut) {
                        for bucket in buckets.iter_mut() {
                            for key in ["from", "to"] {
                                if let Some(nanos) = bucket.get(key).and_then(Value::as_f64) {
                                    let millis = (nanos / 1e6).round();
                                    bucket[key] = json!(millis);
                                    bucket[format!("{key}_as_string")] =
                                        json!(format.format(millis as i64));
                                }
                            }
                            let from = bucket
                                .get("from_as_string")
                                .and_then(Value::as_str)
                                .unwrap_or("*")
                                .to_owned();
                            let to = bucket
                                .get("to_as_string")
                                .and_then(Value::as_str)
                                .unwrap_or("*")
                                .to_owned();
                            bucket["key"] = json!(format!("{from}-{to}"));
                        }
                    }
                    out.insert(name.clone(), shape_agg(children, value));
                }
            }
            Post::Integer => {
                if let Some(mut value) = result.remove(name) {
                    if let Some(n) = value.get("value").and_then(Value::as_f64) {
                        value["value"] = json!(n.round() as u64);
                    }
                    out.insert(name.clone(), value);
                }
            }
            Post::DateValue { format } => {
                if let Some(mut value) = result.remove(name) {
                    if let Some(nanos) = value.get("value").and_then(Value::as_f64) {
                        let millis = (nanos / 1e6).round();
                        value["value"] = json!(millis);
                        value["value_as_string"] = json!(format.format(millis as i64));
                    }
                    out.insert(name.clone(), value);
                }
            }
            Post::Calendar { format, children } => {
                let value = result
                    .remove(name)
                    .unwrap_or_else(|| json!({"buckets": []}));
                out.insert(name.clone(), calendar_buckets(format, children, value));
            }
        }
    }
    out
}

fn shape_agg(children: &BTreeMap<String, Post>, mut value: Value) -> Value {
    if children.is_empty() {
        return value;
    }
    if let Some(buckets) = value.get_mut("buckets") {
        match buckets {
            Value::Array(items) => {
                for item in items.iter_mut() {
                    *item = shape_bucket(children, std::mem::take(item));
                }
            }
            Value::Object(keyed) => {
                for item in keyed.values_mut() {
                    *item = shape_bucket(children, std::mem::take(item));
                }
            }
            _ => {}
        }
        return value;
    }
    // A single-bucket aggregation (filter): its sub-aggregations sit beside doc_count.
    shape_bucket(children, value)
}

fn shape_bucket(children: &BTreeMap<String, Post>, bucket: Value) -> Value {
    let Value::Object(mut bucket) = bucket else {
        return bucket;
    };
    let names: Vec<String> = bucket
        .keys()
        .filter(|k| children.contains_key(k.as_str()) || k.contains(FILTERS_SEPARATOR))
        .cloned()
        .collect();
    let mut subs = Map::new();
    for name in names {
        if let Some(value) = bucket.remove(&name) {
            subs.insert(name, value);
        }
    }
    let shaped = shape_level(children, subs);
    bucket.extend(shaped);
    Value::Object(bucket)
}

/// A calendar range result as date-histogram buckets, trimmed of empty buckets at either end
/// (OpenSearch spans the first to the last non-empty bucket).
fn calendar_buckets(format: &DateFormat, children: &BTreeMap<String, Post>, value: Value) -> Value {
    let ranges = value
        .get("buckets")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let mut buckets: Vec<Value> = ranges
        .into_iter()
        .filter(|bucket| bucket.get("from").is_some() && bucket.get("to").is_some())
        .map(|bucket| {
            let from = (bucket
                .get("from")
                .and_then(Value::as_f64)
                .unwrap_or_default()
                / 1e6)
                .round() as i64;
            let Value::Object(mut object) = shape_bucket(children, bucket) else {
                return Value::Null;
            };
            for key in ["from", "to", "from_as_string", "to_as_string", "key"] {
                object.remove(key);
            }
            let mut ordered = Map::new();
            ordered.insert("key_as_string".into(), json!(format.format(from)));
            ordered.insert("key".into(), json!(from));
            ordered.extend(object);
            Value::Object(ordered)
        })
        .collect();
    let empty = |b: &Value| b.get("doc_count").and_then(Value::as_u64) == Some(0);
    while buckets.first().is_some_and(empty) {
        buckets.remove(0);
    }
    while buckets.last().is_some_and(empty) {
        buckets.pop();
    }
    json!({ "buckets": buckets })
}

/// The date fields a request's calendar histograms need bounds for.
pub fn calendar_fields(aggs: &Value, out: &mut Vec<String>) {
    let Some(object) = aggs.as_object() else {
        return;
    };
    for body in object.values() {
        if let Some(histogram) = body.get("date_histogram") {
            let calendar = histogram.get("calendar_interval").and_then(Value::as_str);
            if matches!(
                calendar,
                Some("month" | "1M" | "quarter" | "1q" | "year" | "1y")
            ) {
                if let Some(field) = histogram.get("field").and_then(Value::as_str) {
                    out.push(field.to_owned());
                }
            }
        }
        for key in ["aggs", "aggregations"] {
            if let Some(sub) = body.get(key) {
                calendar_fields(sub, out);
            }
        }
    }
}
