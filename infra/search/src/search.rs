//! `_search` and `_count` over one or more indices: the request body and URL parameters, the
//! collection (hits, total, aggregations) per index, the merge across indices, and OpenSearch's
//! response (`took`, `_shards`, `hits.total {value, relation}`, `hits.hits[]` with `_source`
//! filtering and `sort` values, `aggregations`).

use std::sync::Arc;
use std::time::Instant;

use serde_json::{json, Map, Value};
use tantivy::aggregation::intermediate_agg_result::IntermediateAggregationResults;
use tantivy::aggregation::{
    AggContextParams, AggregationLimitsGuard, DistributedAggregationCollector,
};
use tantivy::collector::{Count, TopDocs};
use tantivy::query::{AllQuery, Query};
use tantivy::{DocAddress, Searcher};

use crate::aggs::{self, Plan};
use crate::error::{ApiError, ApiResult};
use crate::fields::Resolver;
use crate::query;
use crate::sort::{self, SortField, SortKey};
use crate::source_filter::SourceFilter;
use crate::store::{now_millis, IndexStore};

/// OpenSearch's default `track_total_hits`.
const DEFAULT_TRACK_TOTAL_HITS: u64 = 10_000;
/// OpenSearch's `index.max_result_window`.
const MAX_RESULT_WINDOW: usize = 10_000;

/// A parsed search request.
#[derive(Debug)]
pub struct SearchRequest {
    query: Value,
    from: usize,
    size: usize,
    sort: Vec<SortField>,
    source: SourceFilter,
    /// `None`: no total; `Some(u64::MAX)`: exact.
    track_total_hits: Option<u64>,
    aggs: Option<Value>,
    version: bool,
    seq_no_primary_term: bool,
    /// `rest_total_hits_as_int`.
    total_as_int: bool,
}

/// URL parameters `_search` serves.
pub const SEARCH_PARAMS: &[&str] = &[
    "q",
    "size",
    "from",
    "sort",
    "_source",
    "_source_includes",
    "_source_excludes",
    "track_total_hits",
    "rest_total_hits_as_int",
    "version",
    "seq_no_primary_term",
    "ignore_unavailable",
    "allow_no_indices",
    "expand_wildcards",
    "typed_keys",
    "timeout",
    "default_operator",
    "df",
];

fn number_param(name: &str, value: &str) -> ApiResult<usize> {
    value.parse().map_err(|_| {
        ApiError::illegal_argument(format!(
            "Failed to parse int parameter [{name}] with value [{value}]"
        ))
    })
}

fn body_number(name: &str, value: &Value) -> ApiResult<usize> {
    value.as_u64().map(|n| n as usize).ok_or_else(|| {
        ApiError::parsing(format!(
            "[{name}] must be a non-negative integer, got [{value}]"
        ))
    })
}

fn bool_of(name: &str, value: &Value) -> ApiResult<bool> {
    match value {
        Value::Bool(b) => Ok(*b),
        Value::String(s) if s == "true" || s.is_empty() => Ok(true),
        Value::String(s) if s == "false" => Ok(false),
        other => Err(ApiError::illegal_argument(format!(
            "Failed to parse value [{other}] as only [true] or [false] are allowed for [{name}]"
        ))),
    }
}

fn track_total(value: &Value) -> ApiResult<Option<u64>> {
    match value {
        Value::Bool(true) => Ok(Some(u64::MAX)),
        Value::Bool(false) => Ok(None),
        Value::Number(n) => n
            .as_u64()
            .map(Some)
            .ok_or_else(|| ApiError::illegal_argument("[track_total_hits] must be positive")),
        Value::String(s) => match s.as_str() {
            "true" => Ok(Some(u64::MAX)),
            "false" => Ok(None),
            n => n.parse().map(Some).map_err(|_| {
                ApiError::illegal_argument(format!("[track_total_hits] cannot read [{n}]"))
            }),
        },
        other => Err(ApiError::parsing(format!(
            "[track_total_hits] cannot read [{other}]"
        ))),
    }
}

impl SearchRequest {
    /// Reads the body (may be empty) and URL parameters.
    pub fn parse(body: Option<&Value>, params: &[(String, String)]) -> ApiResult<Self> {
        let mut request = SearchRequest {
            query: json!({"match_all": {}}),
            from: 0,
            size: 10,
            sort: Vec::new(),
            source: SourceFilter::All,
            track_total_hits: Some(DEFAULT_TRACK_TOTAL_HITS),
            aggs: None,
            version: false,
            seq_no_primary_term: false,
            total_as_int: false,
        };
        if let Some(body) = body {
            request.apply_body(body)?;
        }
        request.apply_params(params)?;
        if request.from.saturating_add(request.size) > MAX_RESULT_WINDOW {
            return Err(ApiError::illegal_argument(format!(
                "Result window is too large, from + size must be less than or equal to: [{MAX_RESULT_WINDOW}] but was [{}]. See the scroll api for a more efficient way to request large data sets. This limit can be set by changing the [index.max_result_window] index level setting.",
                request.from.saturating_add(request.size)
            )));
        }
        Ok(request)
    }

    fn apply_body(&mut self, body: &Value) -> ApiResult<()> {
        let object = body
            .as_object()
            .ok_or_else(|| ApiError::parsing("request body must be an object"))?;
        for (key, value) in object {
            match key.as_str() {
                "query" => self.query = value.clone(),
                "from" => self.from = body_number(key, value)?,
                "size" => self.size = body_number(key, value)?,
                "sort" => self.sort = sort::parse_sort(value)?,
                "_source" => self.source = SourceFilter::parse(value)?,
                "track_total_hits" => self.track_total_hits = track_total(value)?,
                "aggs" | "aggregations" => self.aggs = Some(value.clone()),
                "version" => self.version = bool_of(key, value)?,
                "seq_no_primary_term" => self.seq_no_primary_term = bool_of(key, value)?,
                "timeout" => {}
                other => {
                    return Err(ApiError::parsing(format!(
                        "Unknown key for a {} in [{other}].",
                        if value.is_object() {
                            "START_OBJECT"
                        } else {
                            "VALUE"
                        }
                    ))
                    .with("line", 1)
                    .with("col", 1))
                }
            }
        }
        Ok(())
    }

    fn apply_params(&mut self, params: &[(String, String)]) -> ApiResult<()> {
        let mut default_operator = None;
        let mut default_field = None;
        let mut q = None;
        for (key, value) in params {
            match key.as_str() {
                "q" => q = Some(value.clone()),
                "df" => default_field = Some(value.clone()),
                "default_operator" => default_operator = Some(value.clone()),
                "size" => self.size = number_param(key, value)?,
                "from" => self.from = number_param(key, value)?,
                "sort" => self.sort = sort::parse_sort_param(value)?,
                "_source" => self.source = SourceFilter::parse_param(value),
                "_source_includes" | "_source_excludes" => {
                    self.source = self.source.with_param(key, value);
                }
                "track_total_hits" => self.track_total_hits = track_total(&json!(value))?,
                "rest_total_hits_as_int" => self.total_as_int = bool_of(key, &json!(value))?,
                "version" => self.version = bool_of(key, &json!(value))?,
                "seq_no_primary_term" => self.seq_no_primary_term = bool_of(key, &json!(value))?,
                _ => {}
            }
        }
        if let Some(q) = q {
            let mut query_string = json!({"query": q});
            if let Some(df) = default_field {
                query_string["default_field"] = json!(df);
            }
            if let Some(op) = default_operator {
                query_string["default_operator"] = json!(op);
            }
            self.query = json!({"query_string": query_string});
        }
        Ok(())
    }

    /// A `_count` request: only `query` in the body.
    pub fn parse_count(body: Option<&Value>, params: &[(String, String)]) -> ApiResult<Self> {
        if let Some(object) = body.and_then(Value::as_object) {
            if let Some(key) = object.keys().find(|k| k.as_str() != "query") {
                return Err(ApiError::parsing(format!(
                    "request does not support [{key}]"
                )));
            }
        }
        let mut request = Self::parse(body, params)?;
        request.size = 0;
        request.aggs = None;
        request.track_total_hits = Some(u64::MAX);
        Ok(request)
    }
}

fn resolver<'m>(
    index: &IndexStore,
    mapping: &'m crate::mapping::Mapping,
    now: i64,
) -> ApiResult<Resolver<'m>> {
    let analyzer = index
        .tantivy()
        .tokenizers()
        .get("default")
        .ok_or_else(|| ApiError::internal("the default tokenizer is missing"))?;
    Ok(Resolver {
        mapping,
        fields: index.fields(),
        analyzer,
        now_millis: now,
    })
}

/// One index's part of the answer.
struct IndexPart {
    index: Arc<IndexStore>,
    searcher: Searcher,
    count: usize,
    /// (score, sort key, address), best first.
    hits: Vec<(Option<f32>, Option<SortKey>, DocAddress)>,
    aggs: Option<IntermediateAggregationResults>,
    integral: Vec<bool>,
}

/// Runs `request` over `indices` and answers OpenSearch's search response.
pub fn search(indices: &[Arc<IndexStore>], request: &SearchRequest) -> ApiResult<Value> {
    let started = Instant::now();
    let now = now_millis();
    let wanted = request.from.saturating_add(request.size);
    let calendar_bounds = calendar_bounds(indices, request, now)?;
    let bounds = |field: &str| -> ApiResult<Option<(i64, i64)>> {
        Ok(calendar_bounds
            .iter()
            .find(|(f, _)| f == field)
            .and_then(|(_, b)| *b))
    };
    let mut parts = Vec::new();
    let mut final_plan: Option<Plan> = None;
    for index in indices {
        let mapping = index.mapping();
        let resolver = resolver(index, &mapping, now)?;
        let query = query::compile(&resolver, &request.query)?;
        let plan = match &request.aggs {
            Some(aggs) => Some(aggs::plan(&resolver, aggs, &bounds)?),
            None => None,
        };
        let part = collect(
            index,
            &resolver,
            query.as_ref(),
            request,
            wanted,
            plan.as_ref(),
        )?;
        if final_plan.is_none() {
            final_plan = plan;
        }
        parts.push(part);
    }
    respond(parts, request, final_plan, started)
}

fn collect(
    index: &Arc<IndexStore>,
    resolver: &Resolver<'_>,
    query: &dyn Query,
    request: &SearchRequest,
    wanted: usize,
    plan: Option<&Plan>,
) -> ApiResult<IndexPart> {
    let searcher = index.searcher();
    let agg_collector = plan.map(|plan| {
        DistributedAggregationCollector::from_aggs(
            plan.request.clone(),
            AggContextParams::new(
                AggregationLimitsGuard::default(),
                index.tantivy().tokenizers().clone(),
            ),
        )
    });
    let by_score = request.sort.is_empty() || request.sort == [SortField::Score];
    let aggregation_error = |e: tantivy::TantivyError| match e {
        tantivy::TantivyError::InvalidArgument(reason) => ApiError::illegal_argument(reason),
        tantivy::TantivyError::AggregationError(e) => ApiError::illegal_argument(e.to_string()),
        tantivy::TantivyError::FieldNotFound(field) => {
            ApiError::illegal_argument(format!("field [{field}] not found"))
        }
        other => ApiError::from(other),
    };
    if by_score {
        let top = (wanted > 0).then(|| TopDocs::with_limit(wanted).order_by_score());
        let (count, hits, aggs) = searcher
            .search(query, &(Count, top, agg_collector))
            .map_err(aggregation_error)?;
        return Ok(IndexPart {
            index: index.clone(),
            searcher,
            count,
            hits: hits
                .unwrap_or_default()
                .into_iter()
                .map(|(score, address)| (Some(score), None, address))
                .collect(),
            aggs,
            integral: Vec::new(),
        });
    }
    let columns = sort::columns(resolver, &request.sort)?;
    let integral = columns.iter().map(|c| c.integral).collect();
    let top =
        (wanted > 0).then(|| TopDocs::with_limit(wanted).order_by(sort::key_computer(columns)));
    let (count, hits, aggs) = searcher
        .search(query, &(Count, top, agg_collector))
        .map_err(aggregation_error)?;
    Ok(IndexPart {
        index: index.clone(),
        searcher,
        count,
        hits: hits
            .unwrap_or_default()
            .into_iter()
            .map(|(key, address)| (None, Some(key), address))
            .collect(),
        aggs,
        integral,
    })
}

/// A field and its (min, max) in epoch ms, when it has values.
type FieldSpan = (String, Option<(i64, i64)>);

/// Min and max of each calendar histogram's field under the query, across the indices.
fn calendar_bounds(
    indices: &[Arc<IndexStore>],
    request: &SearchRequest,
    now: i64,
) -> ApiResult<Vec<FieldSpan>> {
    let mut fields = Vec::new();
    if let Some(aggs) = &request.aggs {
        aggs::calendar_fields(aggs, &mut fields);
    }
    let mut out = Vec::new();
    for field in fields {
        let mut span: Option<(i64, i64)> = None;
        for index in indices {
            let mapping = index.mapping();
            let resolver = resolver(index, &mapping, now)?;
            let query = query::compile(&resolver, &request.query)?;
            let request_json =
                json!({"min": {"min": {"field": field}}, "max": {"max": {"field": field}}});
            let no_bounds = |_: &str| Ok(None);
            let plan = aggs::plan(&resolver, &request_json, &no_bounds)?;
            let collector = tantivy::aggregation::AggregationCollector::from_aggs(
                plan.request.clone(),
                AggContextParams::new(
                    AggregationLimitsGuard::default(),
                    index.tantivy().tokenizers().clone(),
                ),
            );
            let result = index.searcher().search(query.as_ref(), &collector)?;
            let result = aggs::shape(&plan, serde_json::to_value(result).unwrap_or_default());
            let min = result["min"]["value"].as_f64();
            let max = result["max"]["value"].as_f64();
            if let (Some(min), Some(max)) = (min, max) {
                let (min, max) = (min as i64, max as i64);
                span = Some(span.map_or((min, max), |(a, b)| (a.min(min), b.max(max))));
            }
        }
        out.push((field, span));
    }
    Ok(out)
}

fn total_json(count: usize, request: &SearchRequest) -> Option<Value> {
    let limit = request.track_total_hits?;
    let count = count as u64;
    if request.total_as_int {
        return Some(json!(count.min(limit)));
    }
    Some(if count > limit {
        json!({"value": limit, "relation": "gte"})
    } else {
        json!({"value": count, "relation": "eq"})
    })
}

fn respond(
    mut parts: Vec<IndexPart>,
    request: &SearchRequest,
    plan: Option<Plan>,
    started: Instant,
) -> ApiResult<Value> {
    let count: usize = parts.iter().map(|p| p.count).sum();
    // Merge the indices' best hits.
    let mut merged: Vec<(usize, Option<f32>, Option<SortKey>, DocAddress)> = Vec::new();
    for (i, part) in parts.iter_mut().enumerate() {
        for (score, key, address) in part.hits.drain(..) {
            merged.push((i, score, key, address));
        }
    }
    merged.sort_by(|a, b| match (&a.2, &b.2) {
        (Some(x), Some(y)) => y.partial_cmp(x).unwrap_or(std::cmp::Ordering::Equal),
        _ => b.1.partial_cmp(&a.1).unwrap_or(std::cmp::Ordering::Equal),
    });
    let sorted = !request.sort.is_empty() && request.sort != [SortField::Score];
    let mut max_score: Option<f32> = None;
    let mut hits = Vec::new();
    for (i, score, key, address) in merged.into_iter().skip(request.from).take(request.size) {
        let part = &parts[i];
        let document: tantivy::TantivyDocument = part.searcher.doc(address)?;
        let stored = part.index.stored(&document);
        let mut hit = Map::new();
        hit.insert("_index".into(), json!(part.index.name()));
        hit.insert("_id".into(), json!(stored.id));
        if request.version {
            hit.insert("_version".into(), json!(stored.version));
        }
        if request.seq_no_primary_term {
            hit.insert("_seq_no".into(), json!(stored.seq_no));
            hit.insert("_primary_term".into(), json!(1));
        }
        if sorted {
            hit.insert("_score".into(), Value::Null);
        } else if let Some(score) = score {
            max_score = Some(max_score.map_or(score, |m: f32| m.max(score)));
            hit.insert("_score".into(), json!(score));
        }
        if let Some(source) = request.source.apply(&stored.source) {
            hit.insert("_source".into(), source);
        }
        if let Some(key) = key {
            let values: Vec<Value> = key
                .values
                .iter()
                .zip(&part.integral)
                .map(|(value, integral)| value.to_json(*integral))
                .collect();
            hit.insert("sort".into(), Value::Array(values));
        }
        hits.push(Value::Object(hit));
    }
    let mut hits_json = Map::new();
    if let Some(total) = total_json(count, request) {
        hits_json.insert("total".into(), total);
    }
    hits_json.insert(
        "max_score".into(),
        max_score.map_or(Value::Null, |s| json!(s)),
    );
    hits_json.insert("hits".into(), Value::Array(hits));
    let shards = parts.len();
    let mut response = json!({
        "took": started.elapsed().as_millis() as u64,
        "timed_out": false,
        "_shards": {"total": shards, "successful": shards, "skipped": 0, "failed": 0},
        "hits": Value::Object(hits_json),
    });
    if let Some(plan) = plan {
        let mut merged: Option<IntermediateAggregationResults> = None;
        for part in parts {
            if let Some(aggs) = part.aggs {
                match &mut merged {
                    None => merged = Some(aggs),
                    Some(into) => into.merge_fruits(aggs)?,
                }
            }
        }
        let result = match merged {
            Some(merged) => merged
                .into_final_result(plan.request.clone(), AggregationLimitsGuard::default())
                .map_err(|e| ApiError::illegal_argument(e.to_string()))?,
            None => IntermediateAggregationResults::default()
                .into_final_result(plan.request.clone(), AggregationLimitsGuard::default())
                .map_err(|e| ApiError::illegal_argument(e.to_string()))?,
        };
        let result = serde_json::to_value(result).map_err(|e| ApiError::internal(e.to_string()))?;
        response["aggregations"] = aggs::shape(&plan, result);
    }
    Ok(response)
}

/// `_count`'s response.
pub fn count(indices: &[Arc<IndexStore>], request: &SearchRequest) -> ApiResult<Value> {
    let response = search(indices, request)?;
    let shards = indices.len();
    Ok(json!({
        "count": response["hits"]["total"]["value"],
        "_shards": {"total": shards, "successful": shards, "skipped": 0, "failed": 0},
    }))
}

/// A match-all count, for `_cat/indices`.
pub fn all_count(index: &IndexStore) -> u64 {
    index
        .searcher()
        .search(&AllQuery, &Count)
        .unwrap_or_default() as u64
}
