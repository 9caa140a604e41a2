//! The Telemetry API (2022-07-01) of one execution environment: subscriptions, and delivery of
//! the environment's records to each subscriber's HTTP listener.
//!
//! Follows the Lambda developer guide ("Lambda Telemetry API" and its reference):
//! - `PUT /2022-07-01/telemetry` with `Lambda-Extension-Identifier`, validated as documented
//!   (schema versions `2022-07-01`, `2022-12-13`, `2025-01-29`; types `platform`, `function`,
//!   `extension`; buffering `maxItems` 1,000–10,000, `maxBytes` 262,144–1,048,576, `timeoutMs`
//!   25–30,000, the ranges every published table accepts; destination `HTTP` to
//!   `http://sandbox.localdomain:<port>`, never port 9001). A bad request answers 400
//!   `{"errorType":"ValidationError",…}`; a good one 200 `OK`.
//! - Records are `{time, type, record}`, POSTed as a JSON array once `maxItems` or `maxBytes` is
//!   reached or `timeoutMs` after the first buffered record, one POST at a time per subscriber.
//!   A failed POST is retried with backoff. A subscriber that falls behind loses records: past
//!   four times its buffering limits new records are dropped, and the next batch starts with a
//!   `platform.logsDropped` record saying how many and how many bytes.
//!
//! `sandbox.localdomain` is the environment's own address: here each environment has its own
//! loopback address (see [`super::function`]), so every extension can listen on the same fixed
//! port, as it does in its own sandbox on AWS.
//!
//! The delivery client is hyper's HTTP/1 connection API over one kept-alive connection per
//! subscriber (no pooling client needed for one peer).

use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::{HeaderMap, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use super::extensions_api::ExtensionsApi;

/// The subscription path.
pub const PATH: &str = "/2022-07-01/telemetry";
/// The host name a destination URI names the sandbox by.
pub const SANDBOX_HOST: &str = "sandbox.localdomain";
/// The Runtime API's port on AWS, which a listener may not use.
pub const RESERVED_PORT: u16 = 9001;
/// How long one POST to a listener may take before it counts as failed.
pub const POST_TIMEOUT: Duration = Duration::from_secs(5);
/// A subscriber's backlog, in multiples of its buffering limits, before records are dropped.
pub const BACKLOG_FACTOR: usize = 4;
/// The reason `platform.logsDropped` gives (the guide's example).
pub const DROPPED_REASON: &str =
    "Consumer seems to have fallen behind as it has not acknowledged receipt of logs.";

const SCHEMA_VERSIONS: [&str; 3] = ["2022-07-01", "2022-12-13", "2025-01-29"];

/// The three streams a subscription chooses from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecordKind {
    /// `platform.*` records.
    Platform,
    /// The function's own lines.
    Function,
    /// The extensions' lines.
    Extension,
}

impl RecordKind {
    fn parse(name: &str) -> Option<Self> {
        match name {
            "platform" => Some(Self::Platform),
            "function" => Some(Self::Function),
            "extension" => Some(Self::Extension),
            _ => None,
        }
    }
}

/// A subscription's buffering.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Buffering {
    /// Records per POST at most.
    pub max_items: usize,
    /// Bytes buffered before a POST.
    pub max_bytes: usize,
    /// Time from the first buffered record to the POST.
    pub timeout: Duration,
}

impl Default for Buffering {
    /// The documented defaults.
    fn default() -> Self {
        Self {
            max_items: 10_000,
            max_bytes: 262_144,
            timeout: Duration::from_millis(1_000),
        }
    }
}

/// Counters over every subscriber (of every environment of a function: they share them).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TelemetryStats {
    /// `function` records (the runtime's lines) handed to at least one subscriber.
    pub function_lines: u64,
    /// POSTs a listener accepted.
    pub posts: u64,
    /// Records in those POSTs (`platform.logsDropped` included).
    pub records_delivered: u64,
    /// Records dropped because a listener fell behind.
    pub records_dropped: u64,
    /// POSTs that failed (and were retried).
    pub failed_posts: u64,
}

#[derive(Default)]
struct Backlog {
    records: VecDeque<Bytes>,
    bytes: usize,
    first_at: Option<Instant>,
    dropped_records: u64,
    dropped_bytes: u64,
    immediate: bool,
    closed: bool,
}

struct Subscriber {
    extension_id: String,
    kinds: Vec<RecordKind>,
    buffering: Buffering,
    destination: SocketAddr,
    path: String,
    backlog: Mutex<Backlog>,
    wake: Notify,
}

impl Subscriber {
    fn backlog(&self) -> std::sync::MutexGuard<'_, Backlog> {
        self.backlog.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn push(&self, record: &Bytes, stats: &Mutex<TelemetryStats>) {
        let mut backlog = self.backlog();
        if backlog.closed {
            return;
        }
        let full = backlog.records.len() >= BACKLOG_FACTOR * self.buffering.max_items
            || backlog.bytes + record.len() > BACKLOG_FACTOR * self.buffering.max_bytes;
        if full {
            backlog.dropped_records += 1;
            backlog.dropped_bytes += record.len() as u64;
            stats
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .records_dropped += 1;
            return;
        }
        let first = backlog.records.is_empty();
        backlog.records.push_back(record.clone());
        backlog.bytes += record.len();
        backlog.first_at.get_or_insert_with(Instant::now);
        let due = backlog.immediate
            || backlog.records.len() >= self.buffering.max_items
            || backlog.bytes >= self.buffering.max_bytes;
        drop(backlog);
        // The first record starts the delivery task's timeout; a due batch goes at once.
        if first || due {
            self.wake.notify_one();
        }
    }

    /// The next batch when one is due, or how long until one is (None: nothing buffered).
    fn take_due(&self) -> Result<Bytes, Option<Duration>> {
        let mut backlog = self.backlog();
        let Some(first_at) = backlog.first_at else {
            return Err(None);
        };
        let waited = first_at.elapsed();
        let due = backlog.immediate
            || backlog.closed
            || waited >= self.buffering.timeout
            || backlog.records.len() >= self.buffering.max_items
            || backlog.bytes >= self.buffering.max_bytes;
        if !due {
            return Err(Some(self.buffering.timeout - waited));
        }
        let mut batch = Vec::new();
        if backlog.dropped_records > 0 {
            batch.push(record_bytes(
                "platform.logsDropped",
                &json!({
                    "droppedBytes": backlog.dropped_bytes,
                    "droppedRecords": backlog.dropped_records,
                    "reason": DROPPED_REASON,
                }),
            ));
            backlog.dropped_records = 0;
            backlog.dropped_bytes = 0;
        }
        let mut bytes = 0;
        while let Some(record) = backlog.records.front() {
            let fits = batch.is_empty() || bytes + record.len() <= self.buffering.max_bytes;
            if batch.len() >= self.buffering.max_items || !fits {
                break;
            }
            bytes += record.len();
            if let Some(record) = backlog.records.pop_front() {
                batch.push(record);
            }
        }
        backlog.bytes -= bytes.min(backlog.bytes);
        backlog.first_at = if backlog.records.is_empty() {
            None
        } else {
            Some(Instant::now())
        };
        Ok(json_array(&batch))
    }
}

fn json_array(records: &[Bytes]) -> Bytes {
    let mut body =
        Vec::with_capacity(records.iter().map(Bytes::len).sum::<usize>() + records.len() + 2);
    body.push(b'[');
    for (i, record) in records.iter().enumerate() {
        if i > 0 {
            body.push(b',');
        }
        body.extend_from_slice(record);
    }
    body.push(b']');
    Bytes::from(body)
}

/// One record as it goes on the wire: `{"time","type","record"}`.
pub fn record_bytes(record_type: &str, record: &Value) -> Bytes {
    let time = humantime::format_rfc3339_millis(SystemTime::now()).to_string();
    Bytes::from(json!({"time": time, "type": record_type, "record": record}).to_string())
}

/// One environment's Telemetry API.
pub struct TelemetryApi {
    sandbox: IpAddr,
    extensions: Arc<ExtensionsApi>,
    subscribers: Mutex<Vec<Arc<Subscriber>>>,
    /// The records of the init phase, replayed to each subscriber (extensions subscribe during
    /// init, after its first records); `None` once init is over.
    init_records: Mutex<Option<Vec<(RecordKind, Bytes)>>>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
    stats: Arc<Mutex<TelemetryStats>>,
}

impl std::fmt::Debug for TelemetryApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TelemetryApi")
            .field("sandbox", &self.sandbox)
            .finish_non_exhaustive()
    }
}

impl Drop for TelemetryApi {
    fn drop(&mut self) {
        for task in self
            .tasks
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .drain(..)
        {
            task.abort();
        }
    }
}

type HttpResponse = Response<Full<Bytes>>;

fn answer(status: StatusCode, body: String) -> HttpResponse {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response
}

fn invalid(message: impl std::fmt::Display) -> HttpResponse {
    answer(
        StatusCode::BAD_REQUEST,
        json!({"errorType": "ValidationError", "errorMessage": message.to_string()}).to_string(),
    )
}

impl TelemetryApi {
    /// The API of the environment whose address is `sandbox`, counting into `stats`.
    pub fn new(
        sandbox: IpAddr,
        extensions: Arc<ExtensionsApi>,
        stats: Arc<Mutex<TelemetryStats>>,
    ) -> Self {
        Self {
            sandbox,
            extensions,
            subscribers: Mutex::default(),
            init_records: Mutex::new(Some(Vec::new())),
            tasks: Mutex::default(),
            stats,
        }
    }

    /// Counters so far.
    pub fn stats(&self) -> TelemetryStats {
        *self.stats.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether anyone subscribed to `kind`.
    pub fn wants(&self, kind: RecordKind) -> bool {
        self.subscribers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .any(|s| s.kinds.contains(&kind))
    }

    /// Hands one record to every subscriber of `kind`.
    pub fn emit(&self, kind: RecordKind, record_type: &str, record: &Value) {
        // Lock order, here and in `replace_subscription`: init records, then subscribers.
        let mut init_records = self
            .init_records
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let subscribers: Vec<Arc<Subscriber>> = self
            .subscribers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .filter(|s| s.kinds.contains(&kind))
            .cloned()
            .collect();
        if subscribers.is_empty() && init_records.is_none() {
            return;
        }
        let bytes = record_bytes(record_type, record);
        if let Some(init_records) = init_records.as_mut() {
            init_records.push((kind, bytes.clone()));
        }
        drop(init_records);
        if kind == RecordKind::Function && !subscribers.is_empty() {
            self.stats
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .function_lines += 1;
        }
        for subscriber in subscribers {
            subscriber.push(&bytes, &self.stats);
        }
    }

    /// The init phase is over: later subscribers get only later records.
    pub fn end_init(&self) {
        *self
            .init_records
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = None;
    }

    /// From now on sends every record at once, without waiting for the buffering timeout (the
    /// environment is shutting down), starting with what is buffered.
    pub fn flush_now(&self) {
        for subscriber in self
            .subscribers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
        {
            subscriber.backlog().immediate = true;
            subscriber.wake.notify_one();
        }
    }

    /// Serves `PUT /2022-07-01/telemetry`.
    pub fn subscribe(&self, headers: &HeaderMap, body: &[u8]) -> HttpResponse {
        let id = headers
            .get("lambda-extension-identifier")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let Some(name) = self.extensions.name_of(&id) else {
            return answer(
                StatusCode::FORBIDDEN,
                json!({"errorType": "Extension.UnknownExtensionIdentifier",
                       "errorMessage": format!("Unknown extension {id}")})
                .to_string(),
            );
        };
        let request: Value = match serde_json::from_slice(body) {
            Ok(request) => request,
            Err(e) => return invalid(format!("invalid JSON: {e}")),
        };
        let subscription = match self.validate(&id, &request) {
            Ok(subscription) => Arc::new(subscription),
            Err(message) => return invalid(message),
        };
        let types: Vec<Value> = request["types"].as_array().cloned().unwrap_or_default();
        self.replace_subscription(subscription);
        self.emit(
            RecordKind::Platform,
            "platform.telemetrySubscription",
            &json!({"name": name, "state": "Subscribed", "types": types}),
        );
        answer(StatusCode::OK, "OK".to_owned())
    }

    fn replace_subscription(&self, subscriber: Arc<Subscriber>) {
        let task = tokio::spawn(deliver(Arc::clone(&subscriber), Arc::clone(&self.stats)));
        let init_records = self
            .init_records
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        for (kind, record) in init_records.iter().flatten() {
            if subscriber.kinds.contains(kind) {
                subscriber.push(record, &self.stats);
            }
        }
        let mut subscribers = self
            .subscribers
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        for old in subscribers
            .iter()
            .filter(|s| s.extension_id == subscriber.extension_id)
        {
            old.backlog().closed = true;
            old.wake.notify_one();
        }
        subscribers.retain(|s| s.extension_id != subscriber.extension_id);
        subscribers.push(subscriber);
        drop(subscribers);
        drop(init_records);
        self.tasks
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(task);
    }

    fn validate(&self, id: &str, request: &Value) -> Result<Subscriber, String> {
        let schema = request["schemaVersion"].as_str().unwrap_or_default();
        if !SCHEMA_VERSIONS.contains(&schema) {
            return Err(format!(
                "schemaVersion must be one of {SCHEMA_VERSIONS:?}, got {:?}",
                request["schemaVersion"]
            ));
        }
        let kinds = parse_types(&request["types"])?;
        let buffering = parse_buffering(&request["buffering"])?;
        let (destination, path) = self.parse_destination(&request["destination"])?;
        Ok(Subscriber {
            extension_id: id.to_owned(),
            kinds,
            buffering,
            destination,
            path,
            backlog: Mutex::default(),
            wake: Notify::new(),
        })
    }

    fn parse_destination(&self, destination: &Value) -> Result<(SocketAddr, String), String> {
        if destination["protocol"].as_str() != Some("HTTP") {
            return Err("destination.protocol must be HTTP".to_owned());
        }
        let uri: http::Uri = destination["URI"]
            .as_str()
            .ok_or("destination.URI is required")?
            .parse()
            .map_err(|e| format!("destination.URI: {e}"))?;
        if uri.scheme_str() != Some("http") {
            return Err("destination.URI must be an http:// URI".to_owned());
        }
        let host = uri.host().unwrap_or_default();
        let ip = if host == SANDBOX_HOST {
            self.sandbox
        } else {
            host.parse::<IpAddr>()
                .ok()
                .filter(|ip| *ip == self.sandbox)
                .ok_or_else(|| format!("destination.URI must name {SANDBOX_HOST}, got {host}"))?
        };
        let port = uri.port_u16().unwrap_or(80);
        if port == RESERVED_PORT {
            return Err(format!("destination port {RESERVED_PORT} is reserved"));
        }
        let path = uri
            .path_and_query()
            .map_or_else(|| "/".to_owned(), |p| p.as_str().to_owned());
        Ok((SocketAddr::new(ip, port), path))
    }
}

fn parse_types(types: &Value) -> Result<Vec<RecordKind>, String> {
    let types = types
        .as_array()
        .filter(|t| !t.is_empty())
        .ok_or("types must be a non-empty array")?;
    types
        .iter()
        .map(|t| {
            t.as_str().and_then(RecordKind::parse).ok_or_else(|| {
                format!("unknown type {t}: expected platform, function or extension")
            })
        })
        .collect()
}

fn parse_buffering(buffering: &Value) -> Result<Buffering, String> {
    let mut parsed = Buffering::default();
    if buffering.is_null() {
        return Ok(parsed);
    }
    let field = |name: &str, low: u64, high: u64| -> Result<Option<u64>, String> {
        match &buffering[name] {
            Value::Null => Ok(None),
            value => value
                .as_u64()
                .filter(|v| (low..=high).contains(v))
                .map(Some)
                .ok_or_else(|| {
                    format!("buffering.{name} must be an integer in {low}..={high}, got {value}")
                }),
        }
    };
    if let Some(items) = field("maxItems", 1_000, 10_000)? {
        parsed.max_items = items as usize;
    }
    if let Some(bytes) = field("maxBytes", 262_144, 1_048_576)? {
        parsed.max_bytes = bytes as usize;
    }
    if let Some(ms) = field("timeoutMs", 25, 30_000)? {
        parsed.timeout = Duration::from_millis(ms);
    }
    Ok(parsed)
}

/// One subscriber's delivery loop: wait for a due batch, POST it until the listener takes it.
async fn deliver(subscriber: Arc<Subscriber>, stats: Arc<Mutex<TelemetryStats>>) {
    let mut connection: Option<SendRequest<Full<Bytes>>> = None;
    loop {
        let batch = match subscriber.take_due() {
            Ok(batch) => batch,
            Err(wait) => {
                if subscriber.backlog().closed {
                    return;
                }
                match wait {
                    Some(wait) => {
                        tokio::select! {
                            () = subscriber.wake.notified() => {}
                            () = tokio::time::sleep(wait) => {}
                        }
                    }
                    None => subscriber.wake.notified().await,
                }
                continue;
            }
        };
        let records = count_records(&batch);
        let mut backoff = Duration::from_millis(50);
        loop {
            match post(&mut connection, &subscriber, batch.clone()).await {
                Ok(()) => {
                    let mut stats = stats.lock().unwrap_or_else(PoisonError::into_inner);
                    stats.posts += 1;
                    stats.records_delivered += records;
                    break;
                }
                Err(_) => {
                    connection = None;
                    stats
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .failed_posts += 1;
                    if subscriber.backlog().closed {
                        return;
                    }
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(1));
                }
            }
        }
    }
}

fn count_records(batch: &[u8]) -> u64 {
    serde_json::from_slice::<Vec<serde::de::IgnoredAny>>(batch).map_or(0, |r| r.len() as u64)
}

async fn post(
    connection: &mut Option<SendRequest<Full<Bytes>>>,
    subscriber: &Subscriber,
    body: Bytes,
) -> Result<(), String> {
    let attempt = async {
        let sender = match connection {
            Some(sender) if !sender.is_closed() => sender,
            _ => connection.insert(connect(subscriber.destination).await?),
        };
        sender.ready().await.map_err(|e| e.to_string())?;
        let request = Request::post(subscriber.path.as_str())
            .header(
                hyper::header::HOST,
                format!("{SANDBOX_HOST}:{}", subscriber.destination.port()),
            )
            .header(hyper::header::CONTENT_TYPE, "application/json")
            .body(Full::new(body))
            .map_err(|e| e.to_string())?;
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| e.to_string())?;
        let status = response.status();
        let _ = response.into_body().collect().await;
        if status.is_success() {
            Ok(())
        } else {
            Err(format!("listener answered {status}"))
        }
    };
    tokio::time::timeout(POST_TIMEOUT, attempt)
        .await
        .map_err(|_| "listener timed out".to_owned())?
}

async fn connect(addr: SocketAddr) -> Result<SendRequest<Full<Bytes>>, String> {
    let stream = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
    let _ = stream.set_nodelay(true);
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| e.to_string())?;
    tokio::spawn(connection);
    Ok(sender)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lambda::extensions_api::tests::{api, body, register};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    async fn subscribed(port: u16, buffering: Value) -> (TelemetryApi, String) {
        let extensions = Arc::new(api(&["telemetry"]));
        let (_, headers, _) = register(&extensions, "telemetry", r#"["INVOKE"]"#).await;
        let id = headers["lambda-extension-identifier"]
            .to_str()
            .unwrap()
            .to_owned();
        let telemetry = TelemetryApi::new(IpAddr::from([127, 0, 0, 1]), extensions, Arc::default());
        let request = json!({
            "schemaVersion": "2022-12-13",
            "types": ["platform", "function"],
            "buffering": buffering,
            "destination": {"protocol": "HTTP", "URI": format!("http://sandbox.localdomain:{port}")},
        });
        let (status, _, _) = body(subscribe(&telemetry, &id, &request)).await;
        assert_eq!(status, StatusCode::OK);
        (telemetry, id)
    }

    fn subscribe(telemetry: &TelemetryApi, id: &str, request: &Value) -> HttpResponse {
        let mut headers = HeaderMap::new();
        headers.insert("lambda-extension-identifier", id.parse().unwrap());
        telemetry.subscribe(&headers, request.to_string().as_bytes())
    }

    #[tokio::test]
    async fn subscriptions_are_validated_as_documented() {
        let (telemetry, id) = subscribed(4243, Value::Null).await;
        let good = json!({
            "schemaVersion": "2022-12-13",
            "types": ["platform"],
            "buffering": {"maxItems": 10000, "maxBytes": 262144, "timeoutMs": 1000},
            "destination": {"protocol": "HTTP", "URI": "http://sandbox.localdomain:4243"},
        });
        let mut cases = Vec::new();
        for (path, value) in [
            ("/schemaVersion", json!("2021-01-01")),
            ("/types", json!([])),
            ("/types", json!(["platform", "metrics"])),
            ("/buffering/maxItems", json!(999)),
            ("/buffering/maxBytes", json!(2_000_000)),
            ("/buffering/timeoutMs", json!(24)),
            ("/destination/protocol", json!("TCP")),
            (
                "/destination/URI",
                json!("https://sandbox.localdomain:4243"),
            ),
            ("/destination/URI", json!("http://sandbox.localdomain:9001")),
            ("/destination/URI", json!("http://example.com:4243")),
        ] {
            let mut request = good.clone();
            *request.pointer_mut(path).unwrap() = value.clone();
            let (status, _, answer) = body(subscribe(&telemetry, &id, &request)).await;
            cases.push((path, value, status, answer["errorType"].clone()));
        }
        for (path, value, status, error_type) in cases {
            assert_eq!(
                (status, error_type),
                (StatusCode::BAD_REQUEST, json!("ValidationError")),
                "{path} = {value}"
            );
        }
        let (status, _, _) = body(subscribe(&telemetry, "unknown", &good)).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        let (status, _, _) = body(subscribe(&telemetry, &id, &good)).await;
        assert_eq!(status, StatusCode::OK);
    }

    /// Reads one HTTP request (headers and a Content-Length body) and returns its body.
    async fn read_request(stream: &mut TcpStream) -> Vec<u8> {
        let mut buffer = Vec::new();
        let mut chunk = [0u8; 65_536];
        loop {
            let n = stream.read(&mut chunk).await.unwrap();
            assert!(n > 0, "connection closed mid-request");
            buffer.extend_from_slice(&chunk[..n]);
            let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") else {
                continue;
            };
            let head = String::from_utf8_lossy(&buffer[..end]).to_lowercase();
            let length: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .map_or(0, |v| v.trim().parse().unwrap());
            if buffer.len() >= end + 4 + length {
                return buffer[end + 4..end + 4 + length].to_vec();
            }
        }
    }

    #[tokio::test]
    async fn a_listener_that_falls_behind_loses_records_and_is_told_how_many() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (telemetry, _) = subscribed(
            port,
            json!({"maxItems": 1000, "maxBytes": 1048576, "timeoutMs": 25}),
        )
        .await;
        let (mut stream, _) = listener.accept().await.unwrap();
        let first = read_request(&mut stream).await;
        // The replayed subscription record came alone; now hold the next POST unanswered.
        let first: Vec<Value> = serde_json::from_slice(&first).unwrap();
        assert_eq!(first[0]["type"], "platform.telemetrySubscription");
        stream
            .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
            .await
            .unwrap();
        for i in 0..1000 {
            telemetry.emit(
                RecordKind::Function,
                "function",
                &json!(format!("line {i}")),
            );
        }
        let held = read_request(&mut stream).await;
        assert_eq!(
            serde_json::from_slice::<Vec<Value>>(&held).unwrap().len(),
            1000
        );
        // While that POST is unanswered, 4 × maxItems more fit; the 1,000 after them are dropped.
        for i in 1000..6000 {
            telemetry.emit(
                RecordKind::Function,
                "function",
                &json!(format!("line {i}")),
            );
        }
        assert_eq!(telemetry.stats().records_dropped, 1000);
        stream
            .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
            .await
            .unwrap();
        let next: Vec<Value> = serde_json::from_slice(&read_request(&mut stream).await).unwrap();
        assert_eq!(next[0]["type"], "platform.logsDropped");
        assert_eq!(next[0]["record"]["droppedRecords"], 1000);
        assert_eq!(next[0]["record"]["reason"], DROPPED_REASON);
        assert!(next[0]["record"]["droppedBytes"].as_u64().unwrap() > 10_000);
        assert_eq!(
            next[1]["record"], "line 1000",
            "the oldest kept record follows"
        );
        assert_eq!(
            next.len(),
            1000,
            "maxItems records a POST, logsDropped among them"
        );
    }
}
