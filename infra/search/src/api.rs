//! The REST API: routes (method and path) to the engine, URL parameters checked per route (an
//! unrecognized one is a 400 naming it, as OpenSearch answers), bodies read as JSON, and answers
//! in OpenSearch's JSON. No sockets here: `server` feeds it requests.

use serde_json::{json, Value};

use crate::bulk::{self, Refresh};
use crate::engine::{Engine, ResolveOptions};
use crate::error::{ApiError, ApiResult};
use crate::mapping::Mapping;
use crate::search::{self, SearchRequest, SEARCH_PARAMS};
use crate::store::{SourceDocument, WriteKind};

/// The OpenSearch version this engine answers as.
pub const VERSION_NUMBER: &str = "2.19.0";

/// One request, as the server read it.
pub struct Request<'a> {
    /// `GET`, `PUT`, …
    pub method: &'a str,
    /// The path, percent-decoded.
    pub path: &'a str,
    /// The query parameters.
    pub params: Vec<(String, String)>,
    /// The body (empty when none).
    pub body: &'a [u8],
}

/// One answer.
#[derive(Debug, PartialEq)]
pub struct Reply {
    /// HTTP status.
    pub status: u16,
    /// The body: JSON, or text for `_cat` without `format=json`; `None` for `HEAD`.
    pub body: Option<ReplyBody>,
}

/// A reply's body.
#[derive(Debug, PartialEq)]
pub enum ReplyBody {
    /// JSON.
    Json(Value),
    /// Plain text.
    Text(String),
}

impl Reply {
    fn json(status: u16, value: Value) -> Self {
        Self {
            status,
            body: Some(ReplyBody::Json(value)),
        }
    }

    fn ok(value: Value) -> Self {
        Self::json(200, value)
    }

    fn empty(status: u16) -> Self {
        Self { status, body: None }
    }

    /// The error's reply.
    pub fn error(error: &ApiError) -> Self {
        Self::json(error.status, error.body())
    }
}

/// Parameters every route takes.
const COMMON_PARAMS: &[&str] = &[
    "pretty",
    "human",
    "error_trace",
    "master_timeout",
    "cluster_manager_timeout",
    "timeout",
];

fn check_params(request: &Request<'_>, allowed: &[&str]) -> ApiResult<()> {
    let unknown: Vec<&str> = request
        .params
        .iter()
        .map(|(k, _)| k.as_str())
        .filter(|k| !allowed.contains(k) && !COMMON_PARAMS.contains(k))
        .collect();
    match unknown.as_slice() {
        [] => Ok(()),
        [one] => Err(ApiError::illegal_argument(format!(
            "request [{}] contains unrecognized parameter: [{one}]",
            request.path
        ))),
        many => Err(ApiError::illegal_argument(format!(
            "request [{}] contains unrecognized parameters: [{}]",
            request.path,
            many.join("], [")
        ))),
    }
}

fn param<'r>(request: &'r Request<'_>, name: &str) -> Option<&'r str> {
    request
        .params
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

fn json_body(request: &Request<'_>) -> ApiResult<Option<Value>> {
    if request.body.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    serde_json::from_slice(request.body).map(Some).map_err(|e| {
        ApiError::parsing(format!("Failed to parse the request body as JSON: {e}"))
            .with("line", e.line())
            .with("col", e.column())
    })
}

fn required_body(request: &Request<'_>) -> ApiResult<Value> {
    json_body(request)?.ok_or_else(|| ApiError::parsing("request body is required"))
}

fn resolve_options(request: &Request<'_>) -> ResolveOptions {
    ResolveOptions {
        ignore_unavailable: param(request, "ignore_unavailable") == Some("true"),
        allow_no_indices: param(request, "allow_no_indices") != Some("false"),
    }
}

/// Answers one request.
pub fn handle(engine: &Engine, request: &Request<'_>) -> Reply {
    match route(engine, request) {
        Ok(reply) => reply,
        Err(error) => {
            if request.method == "HEAD" {
                Reply::empty(error.status)
            } else {
                Reply::error(&error)
            }
        }
    }
}

fn route(engine: &Engine, request: &Request<'_>) -> ApiResult<Reply> {
    let segments: Vec<&str> = request.path.split('/').filter(|s| !s.is_empty()).collect();
    let method = request.method;
    match (method, segments.as_slice()) {
        ("GET" | "HEAD", []) => {
            check_params(request, &[])?;
            Ok(Reply::ok(root_info()))
        }
        ("GET", ["_cluster", "health"]) => {
            check_params(request, &["wait_for_status", "level", "local"])?;
            Ok(Reply::ok(cluster_health(engine, None)?))
        }
        ("GET", ["_cluster", "health", expression]) => {
            check_params(request, &["wait_for_status", "level", "local"])?;
            Ok(Reply::ok(cluster_health(engine, Some(expression))?))
        }
        ("GET", ["_cat", "indices"]) => cat_indices(engine, request, ""),
        ("GET", ["_cat", "indices", expression]) => cat_indices(engine, request, expression),
        ("GET", ["_index_template"]) => {
            check_params(request, &["flat_settings", "local"])?;
            Ok(Reply::ok(engine.get_templates(None)?))
        }
        ("GET", ["_index_template", name]) => {
            check_params(request, &["flat_settings", "local"])?;
            Ok(Reply::ok(engine.get_templates(Some(name))?))
        }
        ("HEAD", ["_index_template", name]) => {
            Ok(Reply::empty(if engine.get_templates(Some(name)).is_ok() { 200 } else { 404 }))
        }
        ("PUT" | "POST", ["_index_template", name]) => {
            check_params(request, &["create", "cause"])?;
            let body = required_body(request)?;
            engine.put_template(name, &body)?;
            Ok(Reply::ok(json!({"acknowledged": true})))
        }
        ("DELETE", ["_index_template", name]) => {
            check_params(request, &[])?;
            engine.delete_template(name)?;
            Ok(Reply::ok(json!({"acknowledged": true})))
        }
        ("POST" | "PUT", ["_bulk"]) => bulk_route(engine, request, None),
        ("POST" | "PUT", [index, "_bulk"]) => bulk_route(engine, request, Some(index)),
        ("GET" | "POST", ["_search"]) => search_route(engine, request, "_all", false),
        ("GET" | "POST", [expression, "_search"]) => search_route(engine, request, expression, false),
        ("GET" | "POST", ["_count"]) => search_route(engine, request, "_all", true),
        ("GET" | "POST", [expression, "_count"]) => search_route(engine, request, expression, true),
        ("GET" | "POST", ["_refresh"]) => refresh_route(engine, request, "_all"),
        ("GET" | "POST", [expression, "_refresh"]) => refresh_route(engine, request, expression),
        ("GET", ["_mapping"]) => mapping_route(engine, request, "_all"),
        ("GET", [expression, "_mapping"]) => mapping_route(engine, request, expression),
        ("PUT" | "POST", [index, "_mapping"]) => {
            check_params(request, &[])?;
            let update = Mapping::parse(&required_body(request)?)?;
            engine.index(index)?.put_mapping(&update)?;
            Ok(Reply::ok(json!({"acknowledged": true})))
        }
        ("GET", [expression, "_settings"]) => {
            check_params(request, &["flat_settings", "include_defaults"])?;
            let mut out = serde_json::Map::new();
            for index in engine.resolve(expression, resolve_options(request))? {
                out.insert(index.name().to_owned(), json!({"settings": index.settings_json()}));
            }
            Ok(Reply::ok(Value::Object(out)))
        }
        ("POST", [index, "_doc"]) => write_route(engine, request, index, None, WriteKind::Index),
        ("PUT" | "POST", [index, "_doc", id]) => {
            let kind = if param(request, "op_type") == Some("create") {
                WriteKind::Create
            } else {
                WriteKind::Index
            };
            write_route(engine, request, index, Some(id), kind)
        }
        ("PUT" | "POST", [index, "_create", id]) => {
            write_route(engine, request, index, Some(id), WriteKind::Create)
        }
        ("DELETE", [index, "_doc", id]) => write_route(engine, request, index, Some(id), WriteKind::Delete),
        ("GET" | "HEAD", [index, "_doc", id]) => get_route(engine, request, index, id),
        ("PUT", [index]) if !index.starts_with('_') => {
            check_params(request, &["wait_for_active_shards", "include_type_name"])?;
            let body = json_body(request)?;
            let created = engine.create_index(index, body.as_ref())?;
            Ok(Reply::ok(json!({"acknowledged": true, "shards_acknowledged": true, "index": created.name()})))
        }
        ("HEAD", [expression]) if !expression.starts_with('_') => {
            let found = engine
                .resolve(expression, ResolveOptions::default())
                .map(|v| !v.is_empty())
                .unwrap_or(false);
            Ok(Reply::empty(if found { 200 } else { 404 }))
        }
        ("GET", [expression]) if !expression.starts_with('_') => {
            check_params(request, &["flat_settings", "include_defaults", "ignore_unavailable", "allow_no_indices", "expand_wildcards"])?;
            let mut out = serde_json::Map::new();
            for index in engine.resolve(expression, resolve_options(request))? {
                out.insert(
                    index.name().to_owned(),
                    json!({"aliases": {}, "mappings": index.mapping().to_json(), "settings": index.settings_json()}),
                );
            }
            Ok(Reply::ok(Value::Object(out)))
        }
        ("DELETE", [expression]) if !expression.starts_with('_') => {
            check_params(request, &["ignore_unavailable", "allow_no_indices", "expand_wildcards"])?;
            engine.delete_indices(expression)?;
            Ok(Reply::ok(json!({"acknowledged": true})))
        }
        _ => Err(ApiError::illegal_argument(format!(
            "no handler found for uri [{}] and method [{method}] (this engine serves the subset of OpenSearch's REST API listed in infra/search/README.md)",
            request.path
        ))),
    }
}

fn root_info() -> Value {
    json!({
        "name": "local-search",
        "cluster_name": "local-stack",
        "cluster_uuid": "local-stack-search",
        "version": {
            "distribution": "opensearch",
            "number": VERSION_NUMBER,
            "build_type": "local-search",
            "build_hash": env!("CARGO_PKG_VERSION"),
            "build_date": "2026-12-01T00:00:00Z",
            "build_snapshot": false,
            "lucene_version": "tantivy-0.27",
            "minimum_wire_compatibility_version": "7.10.0",
            "minimum_index_compatibility_version": "7.0.0"
        },
        "tagline": "The OpenSearch Project: https://opensearch.org/"
    })
}

fn cluster_health(engine: &Engine, expression: Option<&str>) -> ApiResult<Value> {
    let indices = match expression {
        Some(expression) => engine.resolve(expression, ResolveOptions::default())?,
        None => engine.indices(),
    };
    let primaries: u32 = indices.iter().map(|i| i.settings().number_of_shards).sum();
    let unassigned: u32 = indices
        .iter()
        .map(|i| i.settings().number_of_shards * i.settings().number_of_replicas)
        .sum();
    let total = primaries + unassigned;
    let percent = if total == 0 {
        100.0
    } else {
        f64::from(primaries) * 100.0 / f64::from(total)
    };
    Ok(json!({
        "cluster_name": "local-stack",
        "status": if unassigned > 0 { "yellow" } else { "green" },
        "timed_out": false,
        "number_of_nodes": 1,
        "number_of_data_nodes": 1,
        "discovered_master": true,
        "discovered_cluster_manager": true,
        "active_primary_shards": primaries,
        "active_shards": primaries,
        "relocating_shards": 0,
        "initializing_shards": 0,
        "unassigned_shards": unassigned,
        "delayed_unassigned_shards": 0,
        "number_of_pending_tasks": 0,
        "number_of_in_flight_fetch": 0,
        "task_max_waiting_in_queue_millis": 0,
        "active_shards_percent_as_number": percent
    }))
}

/// `_cat`'s human sizes: `208b`, `1.2kb`, `3.4mb`.
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["b", "kb", "mb", "gb", "tb"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes}b")
    } else {
        let text = format!("{value:.1}");
        format!("{}{}", text.trim_end_matches(".0"), UNITS[unit])
    }
}

fn cat_indices(engine: &Engine, request: &Request<'_>, expression: &str) -> ApiResult<Reply> {
    check_params(
        request,
        &[
            "format",
            "bytes",
            "v",
            "h",
            "s",
            "health",
            "expand_wildcards",
        ],
    )?;
    if let Some(h) = param(request, "h") {
        return Err(ApiError::illegal_argument(format!(
            "[_cat/indices] column selection h=[{h}] is not served"
        )));
    }
    let size = |bytes: u64| match param(request, "bytes") {
        Some("b") => bytes.to_string(),
        Some("kb") => (bytes / 1024).to_string(),
        Some("mb") => (bytes / 1024 / 1024).to_string(),
        None => human_size(bytes),
        Some(other) => other.to_owned(),
    };
    let rows: Vec<Value> = engine
        .resolve(expression, ResolveOptions::default())?
        .iter()
        .map(|index| {
            let settings = index.settings();
            let store = index.store_size();
            json!({
                "health": if settings.number_of_replicas > 0 { "yellow" } else { "green" },
                "status": "open",
                "index": index.name(),
                "uuid": index.uuid(),
                "pri": settings.number_of_shards.to_string(),
                "rep": settings.number_of_replicas.to_string(),
                "docs.count": search::all_count(index).to_string(),
                "docs.deleted": index.deleted_count().to_string(),
                "store.size": size(store),
                "pri.store.size": size(store),
            })
        })
        .collect();
    match param(request, "format") {
        Some("json") => Ok(Reply::ok(Value::Array(rows))),
        None | Some("txt") | Some("text") => {
            let columns = [
                "health",
                "status",
                "index",
                "uuid",
                "pri",
                "rep",
                "docs.count",
                "docs.deleted",
                "store.size",
                "pri.store.size",
            ];
            let mut text = String::new();
            if param(request, "v").is_some() {
                text.push_str(&columns.join(" "));
                text.push('\n');
            }
            for row in rows {
                let cells: Vec<&str> = columns
                    .iter()
                    .map(|c| row[*c].as_str().unwrap_or_default())
                    .collect();
                text.push_str(&cells.join(" "));
                text.push('\n');
            }
            Ok(Reply {
                status: 200,
                body: Some(ReplyBody::Text(text)),
            })
        }
        Some(other) => Err(ApiError::illegal_argument(format!(
            "[_cat] format [{other}] is not served (json and text are)"
        ))),
    }
}

fn bulk_route(engine: &Engine, request: &Request<'_>, index: Option<&str>) -> ApiResult<Reply> {
    check_params(request, &["refresh", "wait_for_active_shards"])?;
    let refresh = Refresh::parse(param(request, "refresh"))?;
    Ok(Reply::ok(bulk::bulk(engine, index, request.body, refresh)?))
}

fn search_route(
    engine: &Engine,
    request: &Request<'_>,
    expression: &str,
    count: bool,
) -> ApiResult<Reply> {
    check_params(request, SEARCH_PARAMS)?;
    let body = json_body(request)?;
    let indices = engine.resolve(expression, resolve_options(request))?;
    let response = if count {
        let parsed = SearchRequest::parse_count(body.as_ref(), &request.params)?;
        search::count(&indices, &parsed)?
    } else {
        let parsed = SearchRequest::parse(body.as_ref(), &request.params)?;
        search::search(&indices, &parsed)?
    };
    Ok(Reply::ok(response))
}

fn refresh_route(engine: &Engine, request: &Request<'_>, expression: &str) -> ApiResult<Reply> {
    check_params(
        request,
        &["ignore_unavailable", "allow_no_indices", "expand_wildcards"],
    )?;
    let indices = engine.resolve(expression, resolve_options(request))?;
    for index in &indices {
        index.refresh()?;
    }
    let shards = indices.len();
    Ok(Reply::ok(
        json!({"_shards": {"total": shards * 2, "successful": shards, "failed": 0}}),
    ))
}

fn mapping_route(engine: &Engine, request: &Request<'_>, expression: &str) -> ApiResult<Reply> {
    check_params(
        request,
        &[
            "ignore_unavailable",
            "allow_no_indices",
            "expand_wildcards",
            "local",
        ],
    )?;
    let mut out = serde_json::Map::new();
    for index in engine.resolve(expression, resolve_options(request))? {
        out.insert(
            index.name().to_owned(),
            json!({"mappings": index.mapping().to_json()}),
        );
    }
    Ok(Reply::ok(Value::Object(out)))
}

fn write_route(
    engine: &Engine,
    request: &Request<'_>,
    index: &str,
    id: Option<&str>,
    kind: WriteKind,
) -> ApiResult<Reply> {
    check_params(request, &["refresh", "op_type", "wait_for_active_shards"])?;
    let refresh = Refresh::parse(param(request, "refresh"))?;
    let store = match kind {
        WriteKind::Delete => engine.index(index)?,
        _ => engine.index_for_write(index)?,
    };
    let source = match kind {
        WriteKind::Delete => None,
        _ => match required_body(request)? {
            Value::Object(object) => Some(object),
            _ => {
                return Err(ApiError::parsing(
                    "the document source must be a JSON object",
                ))
            }
        },
    };
    let document = source.as_ref().map(|fields| SourceDocument {
        fields,
        raw: Some(request.body),
    });
    let outcome = store.write(kind, id, document)?;
    if refresh != Refresh::No {
        store.refresh()?;
    }
    let mut body = bulk::outcome_json(
        index,
        store.settings().number_of_replicas,
        &outcome,
        refresh == Refresh::Now,
    );
    if let Some(object) = body.as_object_mut() {
        object.remove("status");
    }
    Ok(Reply::json(outcome.status, body))
}

fn get_route(engine: &Engine, request: &Request<'_>, index: &str, id: &str) -> ApiResult<Reply> {
    check_params(
        request,
        &[
            "realtime",
            "refresh",
            "_source",
            "_source_includes",
            "_source_excludes",
        ],
    )?;
    let store = engine.index(index)?;
    let found = store.get(id)?;
    if request.method == "HEAD" {
        return Ok(Reply::empty(if found.is_some() { 200 } else { 404 }));
    }
    let filter = match param(request, "_source") {
        Some(value) => crate::source_filter::SourceFilter::parse_param(value),
        None => crate::source_filter::SourceFilter::All,
    };
    let filter = request
        .params
        .iter()
        .filter(|(k, _)| k == "_source_includes" || k == "_source_excludes")
        .fold(filter, |f, (k, v)| f.with_param(k, v));
    Ok(match found {
        Some(document) => {
            let mut body = json!({
                "_index": index, "_id": document.id, "_version": document.version,
                "_seq_no": document.seq_no, "_primary_term": 1, "found": true,
            });
            if let Some(source) = filter.apply(&document.source) {
                body["_source"] = source;
            }
            Reply::ok(body)
        }
        None => Reply::json(404, json!({"_index": index, "_id": id, "found": false})),
    })
}
