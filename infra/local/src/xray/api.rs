//! The X-Ray API on TCP, rest-json as `aws-sdk-xray` speaks it (all operations are `POST` with a
//! JSON body; timestamps are epoch seconds; errors carry `x-amzn-errortype`). Implemented:
//! `/TraceSegments` (PutTraceSegments), `/Traces` (BatchGetTraces), `/TraceSummaries`
//! (GetTraceSummaries, with the filter subset of [`super::filter`]), `/ServiceGraph`,
//! `/TraceGraph`, `/GetSamplingRules` and `/SamplingTargets` (Lambda's default rule: 1 request
//! per second reservoir, then 5 %).

use crate::http_server::serve;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Request, Response, StatusCode};
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use super::document::validate_document;
use super::filter::FilterExpression;
use super::graph::service_graph;
use super::store::TraceStore;
use super::summary::{matches, summarize, trace_duration, trace_start};

/// Summaries per page, as X-Ray pages them.
pub const SUMMARY_PAGE: usize = 100;

/// A running API server.
#[derive(Debug)]
pub struct XrayApi {
    /// Where it listens.
    pub addr: SocketAddr,
    task: JoinHandle<()>,
}

impl Drop for XrayApi {
    fn drop(&mut self) {
        self.task.abort();
    }
}

struct ApiError {
    status: StatusCode,
    kind: &'static str,
    message: String,
}

fn invalid(message: impl Into<String>) -> ApiError {
    ApiError {
        status: StatusCode::BAD_REQUEST,
        kind: "InvalidRequestException",
        message: message.into(),
    }
}

fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

fn time_field(body: &Value, key: &str) -> Result<f64, ApiError> {
    body.get(key)
        .and_then(Value::as_f64)
        .ok_or_else(|| invalid(format!("{key} is required (epoch seconds)")))
}

impl XrayApi {
    /// Binds `addr` (port 0 for any) and serves `store`.
    pub async fn start(addr: SocketAddr, store: Arc<TraceStore>) -> std::io::Result<Self> {
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let task = serve(listener, move |request, _| {
            let store = Arc::clone(&store);
            async move { handle(&store, request).await }
        });
        Ok(Self { addr, task })
    }
}

async fn handle(
    store: &TraceStore,
    request: Request<hyper::body::Incoming>,
) -> Response<Full<Bytes>> {
    let path = request.uri().path().to_owned();
    let is_post = request.method() == hyper::Method::POST;
    let body = match request.into_body().collect().await {
        Ok(body) => body.to_bytes(),
        Err(_) => Bytes::new(),
    };
    let result = if !is_post {
        Err(ApiError {
            status: StatusCode::METHOD_NOT_ALLOWED,
            kind: "InvalidRequestException",
            message: "use POST".into(),
        })
    } else {
        match serde_json::from_slice::<Value>(if body.is_empty() { b"{}" } else { &body }) {
            Err(e) => Err(invalid(format!("body is not JSON: {e}"))),
            Ok(body) => route(store, &path, &body),
        }
    };
    let (status, kind, payload) = match result {
        Ok(value) => (StatusCode::OK, None, value),
        Err(error) => (
            error.status,
            Some(error.kind),
            json!({"message": error.message}),
        ),
    };
    let mut response = Response::new(Full::new(Bytes::from(payload.to_string())));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        hyper::header::CONTENT_TYPE,
        "application/json".parse().expect("static"),
    );
    if let Some(kind) = kind {
        headers.insert("x-amzn-errortype", kind.parse().expect("static"));
    }
    response
}

fn route(store: &TraceStore, path: &str, body: &Value) -> Result<Value, ApiError> {
    match path {
        "/TraceSegments" => put_trace_segments(store, body),
        "/Traces" => batch_get_traces(store, body),
        "/TraceSummaries" => get_trace_summaries(store, body),
        "/ServiceGraph" => {
            let (start, end) = (time_field(body, "StartTime")?, time_field(body, "EndTime")?);
            let traces = store
                .scan(0)
                .map(|(_, _, entities)| entities)
                .filter(|entities| (start..=end).contains(&trace_start(entities)));
            Ok(
                json!({"StartTime": start, "EndTime": end, "Services": service_graph(traces, start, end), "ContainsOldGroupVersions": false}),
            )
        }
        "/TraceGraph" => {
            let ids = trace_ids(body)?;
            let traces = ids.iter().filter_map(|id| store.entities(id));
            Ok(json!({"Services": service_graph(traces, 0.0, now())}))
        }
        "/GetSamplingRules" => Ok(json!({"SamplingRuleRecords": [{
            "SamplingRule": {"RuleName": "Default", "RuleARN": "arn:aws:xray:us-east-1:000000000000:sampling-rule/Default",
                             "ResourceARN": "*", "Priority": 10000, "FixedRate": 0.05, "ReservoirSize": 1,
                             "ServiceName": "*", "ServiceType": "*", "Host": "*", "HTTPMethod": "*", "URLPath": "*",
                             "Version": 1, "Attributes": {}},
            "CreatedAt": 0.0, "ModifiedAt": 0.0}]})),
        "/SamplingTargets" => {
            let targets: Vec<Value> = body
                .get("SamplingStatisticsDocuments")
                .and_then(Value::as_array)
                .map(|docs| {
                    docs.iter()
                        .filter_map(|d| d.get("RuleName").cloned())
                        .map(|rule| json!({"RuleName": rule, "FixedRate": 0.05, "ReservoirQuota": 1, "ReservoirQuotaTTL": now() + 10.0, "Interval": 10}))
                        .collect()
                })
                .unwrap_or_default();
            Ok(
                json!({"SamplingTargetDocuments": targets, "LastRuleModification": 0.0, "UnprocessedStatistics": []}),
            )
        }
        other => Err(ApiError {
            status: StatusCode::NOT_FOUND,
            kind: "InvalidRequestException",
            message: format!("no operation at {other}"),
        }),
    }
}

fn trace_ids(body: &Value) -> Result<Vec<String>, ApiError> {
    body.get("TraceIds")
        .and_then(Value::as_array)
        .map(|ids| {
            ids.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .ok_or_else(|| invalid("TraceIds is required"))
}

fn put_trace_segments(store: &TraceStore, body: &Value) -> Result<Value, ApiError> {
    let documents = body
        .get("TraceSegmentDocuments")
        .and_then(Value::as_array)
        .ok_or_else(|| invalid("TraceSegmentDocuments is required"))?;
    let mut unprocessed = Vec::new();
    for raw in documents {
        let parsed = raw
            .as_str()
            .ok_or_else(|| "not a string".to_owned())
            .and_then(|s| {
                serde_json::from_str::<serde_json::Map<String, Value>>(s).map_err(|e| e.to_string())
            })
            .and_then(|doc| {
                let id = doc.get("id").cloned().unwrap_or(Value::Null);
                validate_document(doc).map_err(|e| {
                    store.reject(&e);
                    format!("{id}: {e}")
                })
            });
        match parsed {
            Ok(document) => {
                store.insert(document);
            }
            Err(message) => {
                unprocessed.push(json!({"ErrorCode": "InvalidSegment", "Message": message}))
            }
        }
    }
    Ok(json!({"UnprocessedTraceSegments": unprocessed}))
}

fn batch_get_traces(store: &TraceStore, body: &Value) -> Result<Value, ApiError> {
    let mut traces = Vec::new();
    let mut unprocessed = Vec::new();
    for id in trace_ids(body)? {
        match (store.documents(&id), store.entities(&id)) {
            (Some(documents), Some(entities)) => {
                let segments: Vec<Value> = documents
                    .iter()
                    .map(|d| json!({"Id": d.get("id"), "Document": Value::Object(d.clone()).to_string()}))
                    .collect();
                let duration = trace_duration(&entities);
                traces.push(json!({"Id": id, "Duration": duration, "LimitExceeded": false, "Segments": segments}));
            }
            _ => unprocessed.push(Value::String(id)),
        }
    }
    Ok(json!({"Traces": traces, "UnprocessedTraceIds": unprocessed}))
}

fn get_trace_summaries(store: &TraceStore, body: &Value) -> Result<Value, ApiError> {
    let (start, end) = (time_field(body, "StartTime")?, time_field(body, "EndTime")?);
    let filter: FilterExpression = body
        .get("FilterExpression")
        .and_then(Value::as_str)
        .unwrap_or("")
        .parse()
        .map_err(|e: super::filter::FilterError| invalid(e.to_string()))?;
    // The token is the store's sequence number of the first trace the next page looks at: a page
    // costs the traces it scans, and traces arriving meanwhile join the end of the listing.
    let from: u64 = match body.get("NextToken").and_then(Value::as_str) {
        None => 0,
        Some(token) => token.parse().map_err(|_| invalid("bad NextToken"))?,
    };
    let mut page = Vec::new();
    let mut processed = 0_u64;
    let mut next = None;
    for (sequence, id, entities) in store.scan(from) {
        if !(start..=end).contains(&trace_start(&entities)) {
            continue;
        }
        if page.len() == SUMMARY_PAGE {
            next = Some(sequence);
            break;
        }
        processed += 1;
        if matches(&entities, &filter) {
            page.push(summarize(&id, &entities));
        }
    }
    let mut answer = json!({"TraceSummaries": page, "ApproximateTime": now(), "TracesProcessedCount": processed});
    if let Some(next) = next {
        answer["NextToken"] = json!(next.to_string());
    }
    Ok(answer)
}
