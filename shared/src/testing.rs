//! Test support shared by every crate's tests (feature `test-support`): Lattice V2 requests from
//! fixtures, fresh trace ids, and a fake Lattice peer on loopback that records what it received.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use lambda_http::{Context, Request, RequestExt};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

use crate::header::XrayTraceId;

/// Parses a Lattice V2 event (JSON) into the request `lambda_http` hands a handler.
pub fn lattice_request(event_json: &str) -> Request {
    lambda_http::request::from_str(event_json).expect("fixture is a valid Lattice V2 event")
}

/// Adds an `x-amzn-trace-id` header.
pub fn with_trace_header(mut request: Request, value: &str) -> Request {
    request.headers_mut().insert(
        crate::TRACE_HEADER,
        HeaderValue::from_str(value).expect("visible ASCII"),
    );
    request
}

/// Attaches a Lambda invocation context carrying `xray_trace_id`.
pub fn with_lambda_trace_id(request: Request, trace_id: &str) -> Request {
    let mut context = Context::default();
    context.request_id = "8476a536-e9f4-11e8-9739-2dfe598c3fcd".to_owned();
    context.xray_trace_id = Some(trace_id.to_owned());
    request.with_lambda_context(context)
}

/// A trace id stamped with the current time (X-Ray refuses ids older than 30 days), unique per call.
pub fn fresh_root() -> XrayTraceId {
    static COUNTER: AtomicU64 = AtomicU64::new(1);
    let epoch = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0) as u128;
    let unique = u128::from(COUNTER.fetch_add(1, Ordering::Relaxed));
    XrayTraceId(epoch << 96 | 0x00c0_ffee_0000_0000_0000_0000 | unique)
}

/// What a [`FakePeer`] received.
#[derive(Clone, Debug)]
pub struct ReceivedRequest {
    /// Method.
    pub method: http::Method,
    /// Path and query.
    pub path: String,
    /// Headers as received.
    pub headers: HeaderMap,
    /// Body.
    pub body: Bytes,
}

/// How a [`FakePeer`] answers.
#[derive(Clone, Debug)]
pub struct ScriptedAnswer {
    /// Status to return.
    pub status: StatusCode,
    /// JSON body to return.
    pub body: String,
    /// How long to wait before answering.
    pub delay: Duration,
}

impl ScriptedAnswer {
    /// Answers `status` with `body` at once.
    pub fn new(status: u16, body: &str) -> Self {
        Self {
            status: StatusCode::from_u16(status).expect("valid status"),
            body: body.to_owned(),
            delay: Duration::ZERO,
        }
    }

    /// Waits `delay` before answering.
    pub fn delayed(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }
}

/// An HTTP server on 127.0.0.1:0 that records each request and answers from a script.
#[derive(Debug)]
pub struct FakePeer {
    /// Where it listens.
    pub addr: SocketAddr,
    received: mpsc::UnboundedReceiver<ReceivedRequest>,
}

impl FakePeer {
    /// Starts a peer answering `answer` to every request.
    pub async fn start(answer: ScriptedAnswer) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind loopback");
        let addr = listener.local_addr().expect("local addr");
        let (tx, received) = mpsc::unbounded_channel();
        let script = Arc::new(answer);
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let tx = tx.clone();
                let script = Arc::clone(&script);
                tokio::spawn(async move {
                    let service =
                        service_fn(move |request: hyper::Request<hyper::body::Incoming>| {
                            let tx = tx.clone();
                            let script = Arc::clone(&script);
                            async move {
                                let (parts, body) = request.into_parts();
                                let body = body
                                    .collect()
                                    .await
                                    .map(|b| b.to_bytes())
                                    .unwrap_or_default();
                                let _ = tx.send(ReceivedRequest {
                                    method: parts.method,
                                    path: parts
                                        .uri
                                        .path_and_query()
                                        .map_or("/".into(), |p| p.to_string()),
                                    headers: parts.headers,
                                    body,
                                });
                                let answer = ScriptedAnswer::clone(&script);
                                tokio::time::sleep(answer.delay).await;
                                let mut response =
                                    hyper::Response::new(Full::new(Bytes::from(answer.body)));
                                *response.status_mut() = answer.status;
                                response.headers_mut().insert(
                                    http::header::CONTENT_TYPE,
                                    HeaderValue::from_static("application/json"),
                                );
                                Ok::<_, Infallible>(response)
                            }
                        });
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Self { addr, received }
    }

    /// `http://127.0.0.1:<port><path>`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// The next request received (waits up to 5 s).
    pub async fn next_request(&mut self) -> ReceivedRequest {
        tokio::time::timeout(Duration::from_secs(5), self.received.recv())
            .await
            .expect("peer received a request within 5 s")
            .expect("peer channel open")
    }
}

/// Every (sub)segment in `documents`, nested subsegments pulled out the way X-Ray reads them:
/// each gets its enclosing document's `trace_id`, its parent's `id` as `parent_id`, and
/// `"type": "subsegment"`; the `subsegments` arrays are removed.
pub fn flatten_segments(documents: &[serde_json::Value]) -> Vec<serde_json::Value> {
    fn walk(
        doc: &serde_json::Value,
        trace_id: &serde_json::Value,
        out: &mut Vec<serde_json::Value>,
    ) {
        let mut own = doc.clone();
        let children = own
            .as_object_mut()
            .and_then(|o| o.remove("subsegments"))
            .and_then(|c| c.as_array().cloned())
            .unwrap_or_default();
        out.push(own);
        for child in children {
            let mut child = child;
            child["trace_id"] = trace_id.clone();
            child["parent_id"] = doc["id"].clone();
            child["type"] = serde_json::Value::from("subsegment");
            walk(&child, trace_id, out);
        }
    }
    let mut out = Vec::new();
    for doc in documents {
        walk(doc, &doc["trace_id"], &mut out);
    }
    out
}
