//! A fake AWS endpoint for the adapters' tests: an HTTP/1 server on `127.0.0.1:0` that records
//! every request (method, path, headers, body) and answers what the test's handler says, plus
//! the SDK clients pointed at it with static test credentials, and CBOR helpers for CloudWatch's
//! Smithy RPCv2 CBOR (timestamps are tag 1 over epoch seconds).
#![allow(dead_code)]

use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// One request as the fake received it.
#[derive(Clone, Debug)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Recorded {
    /// The value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as JSON.
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("a JSON body")
    }

    /// The body as CBOR, shown as JSON: a tag-1 timestamp becomes `{"epoch": seconds}`.
    pub fn cbor(&self) -> Value {
        let value: ciborium::Value =
            ciborium::from_reader(self.body.as_slice()).expect("a CBOR body");
        cbor_to_json(&value)
    }
}

/// What the fake answers.
#[derive(Clone, Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub body: Vec<u8>,
}

impl Reply {
    /// A JSON 1.1 answer (CloudWatch Logs, Cost Explorer).
    pub fn json11(body: &Value) -> Self {
        Self {
            status: 200,
            headers: vec![("content-type", "application/x-amz-json-1.1".into())],
            body: body.to_string().into_bytes(),
        }
    }

    /// A JSON 1.1 error: `__type` names it, as AWS's JSON protocols do.
    pub fn json11_error(status: u16, kind: &str, message: &str) -> Self {
        Self {
            status,
            ..Self::json11(&json!({"__type": kind, "message": message}))
        }
    }

    /// A REST-JSON answer (X-Ray).
    pub fn rest_json(body: &Value) -> Self {
        Self {
            status: 200,
            headers: vec![("content-type", "application/json".into())],
            body: body.to_string().into_bytes(),
        }
    }

    /// A REST-JSON error: the `x-amzn-errortype` header names it.
    pub fn rest_json_error(status: u16, kind: &str, message: &str) -> Self {
        let mut reply = Self::rest_json(&json!({"message": message}));
        reply.status = status;
        reply.headers.push(("x-amzn-errortype", kind.into()));
        reply
    }

    /// An RPCv2 CBOR answer (CloudWatch) of `body`, converted by [`json_to_cbor`].
    pub fn cbor(body: &Value) -> Self {
        let mut bytes = Vec::new();
        ciborium::into_writer(&json_to_cbor(None, body), &mut bytes).expect("CBOR encodes");
        Self {
            status: 200,
            headers: vec![
                ("content-type", "application/cbor".into()),
                ("smithy-protocol", "rpc-v2-cbor".into()),
            ],
            body: bytes,
        }
    }

    /// An RPCv2 CBOR error: `__type` names it.
    pub fn cbor_error(status: u16, kind: &str, message: &str) -> Self {
        Self {
            status,
            ..Self::cbor(&json!({"__type": kind, "message": message}))
        }
    }
}

type Handler = Arc<dyn Fn(&Recorded, usize) -> Reply + Send + Sync>;

/// A running fake; stops when dropped.
pub struct FakeServer {
    pub url: String,
    recorded: Arc<Mutex<Vec<Recorded>>>,
    task: JoinHandle<()>,
}

impl Drop for FakeServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FakeServer {
    /// Serves `handler`, told each request and its index (0 for the first).
    pub async fn start(
        handler: impl Fn(&Recorded, usize) -> Reply + Send + Sync + 'static,
    ) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("address"));
        let recorded = Arc::new(Mutex::new(Vec::new()));
        let handler: Handler = Arc::new(handler);
        let shared = Arc::clone(&recorded);
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let (handler, recorded) = (Arc::clone(&handler), Arc::clone(&shared));
                tokio::spawn(async move {
                    let service = service_fn(move |request| {
                        answer(Arc::clone(&handler), Arc::clone(&recorded), request)
                    });
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Self {
            url,
            recorded,
            task,
        }
    }

    /// Answers `replies` in order, then 500s.
    pub async fn replying(replies: Vec<Reply>) -> Self {
        Self::start(move |_, index| {
            replies.get(index).cloned().unwrap_or(Reply {
                status: 500,
                headers: Vec::new(),
                body: b"no more replies scripted".to_vec(),
            })
        })
        .await
    }

    /// The requests so far, in order.
    pub fn requests(&self) -> Vec<Recorded> {
        self.recorded.lock().expect("lock").clone()
    }
}

async fn answer(
    handler: Handler,
    recorded: Arc<Mutex<Vec<Recorded>>>,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let (parts, body) = request.into_parts();
    let body = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let request = Recorded {
        method: parts.method.to_string(),
        path: parts.uri.path().to_owned(),
        headers: parts
            .headers
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_str().unwrap_or("").to_owned()))
            .collect(),
        body: body.to_vec(),
    };
    let index = {
        let mut all = recorded.lock().expect("lock");
        all.push(request.clone());
        all.len() - 1
    };
    let reply = handler(&request, index);
    let mut response = Response::new(Full::new(Bytes::from(reply.body)));
    *response.status_mut() = hyper::StatusCode::from_u16(reply.status).expect("a status");
    for (name, value) in reply.headers {
        response
            .headers_mut()
            .insert(name, value.parse().expect("a header value"));
    }
    Ok(response)
}

/// CBOR as JSON, for assertions: tag 1 (epoch seconds) becomes `{"epoch": seconds}`.
pub fn cbor_to_json(value: &ciborium::Value) -> Value {
    use ciborium::Value as C;
    match value {
        C::Integer(i) => json!(i128::from(*i) as f64),
        C::Float(f) => json!(f),
        C::Text(t) => json!(t),
        C::Bool(b) => json!(b),
        C::Null => Value::Null,
        C::Array(items) => Value::Array(items.iter().map(cbor_to_json).collect()),
        C::Map(pairs) => Value::Object(
            pairs
                .iter()
                .map(|(k, v)| (k.as_text().unwrap_or("?").to_owned(), cbor_to_json(v)))
                .collect(),
        ),
        C::Tag(1, inner) => json!({"epoch": cbor_to_json(inner)}),
        other => json!(format!("{other:?}")),
    }
}

/// JSON as CloudWatch's CBOR: `Timestamps` items become tag-1 epoch seconds and `Values` items
/// doubles (the SDK reads them so), other numbers integers when whole.
pub fn json_to_cbor(key: Option<&str>, value: &Value) -> ciborium::Value {
    use ciborium::Value as C;
    match value {
        Value::Null => C::Null,
        Value::Bool(b) => C::Bool(*b),
        Value::String(s) => C::Text(s.clone()),
        Value::Number(n) => match (key, n.as_i64()) {
            (Some("Timestamps"), _) => C::Tag(1, Box::new(C::Float(n.as_f64().unwrap_or(0.0)))),
            (Some("Values"), _) | (_, None) => C::Float(n.as_f64().unwrap_or(0.0)),
            (_, Some(i)) => C::Integer(i.into()),
        },
        Value::Array(items) => C::Array(items.iter().map(|v| json_to_cbor(key, v)).collect()),
        Value::Object(map) => C::Map(
            map.iter()
                .map(|(k, v)| (C::Text(k.clone()), json_to_cbor(Some(k), v)))
                .collect(),
        ),
    }
}

/// A fixture of `cost/tests/fixtures`.
pub fn fixture(name: &str) -> Value {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).expect("the fixture exists");
    serde_json::from_str(&text).expect("the fixture is JSON")
}

const REGION: &str = "us-east-1";

/// The shared SDK configuration of the test clients: `url` as the endpoint, a test key.
fn sdk_config(url: &str) -> aws_config::SdkConfig {
    use aws_sdk_xray::config::{BehaviorVersion, Credentials, Region, SharedCredentialsProvider};
    aws_config::SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(REGION))
        .credentials_provider(SharedCredentialsProvider::new(Credentials::new(
            "AKIDTEST",
            "test-secret",
            None,
            None,
            "test",
        )))
        .endpoint_url(url)
        .build()
}

pub fn cloudwatch(url: &str) -> aws_sdk_cloudwatch::Client {
    aws_sdk_cloudwatch::Client::new(&sdk_config(url))
}

pub fn logs(url: &str) -> aws_sdk_cloudwatchlogs::Client {
    aws_sdk_cloudwatchlogs::Client::new(&sdk_config(url))
}

pub fn xray(url: &str) -> aws_sdk_xray::Client {
    aws_sdk_xray::Client::new(&sdk_config(url))
}

pub fn cost_explorer(url: &str) -> aws_sdk_costexplorer::Client {
    aws_sdk_costexplorer::Client::new(&sdk_config(url))
}

/// The test stack: order (entry, owns `orders`), payment (owns `payments`), inventory (owns
/// `inventory` and `reservations`).
pub fn stack() -> lattice_cost::sources::StackMap {
    use lattice_cost::model::Arch;
    use lattice_cost::sources::{ServiceMapping, StackMap};
    let service = |name: &str, id: &str, tables: &[&str]| ServiceMapping {
        name: name.into(),
        service_arn: format!("arn:aws:vpc-lattice:us-east-1:111122223333:service/{id}"),
        function_name: name.into(),
        arch: Arch::Arm64,
        tables: tables.iter().map(|t| (*t).to_owned()).collect(),
    };
    StackMap {
        services: vec![
            service("order", "svc-0order0000000000", &["orders"]),
            service("payment", "svc-0payment00000000", &["payments"]),
            service(
                "inventory",
                "svc-0inventory000000",
                &["inventory", "reservations"],
            ),
        ],
    }
}

/// `[start, end)` from RFC 3339 times.
pub fn window(start: &str, end: &str) -> lattice_cost::sources::Window {
    let parse = |t: &str| {
        chrono::DateTime::parse_from_rfc3339(t)
            .expect("an RFC 3339 time")
            .with_timezone(&chrono::Utc)
    };
    lattice_cost::sources::Window::new(parse(start), parse(end)).expect("a window")
}
