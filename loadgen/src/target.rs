//! What loadgen sends orders to: a Lattice service URL, every request SigV4-signed for
//! `vpc-lattice-svcs` (the signing routine the services use, from `lattice_xray`), with
//! credentials from the standard AWS chain or, locally, the local stack's loadgen key.

use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use aws_credential_types::provider::SharedCredentialsProvider;
use aws_smithy_runtime_api::client::identity::Identity;
use bytes::Bytes;
use http::HeaderValue;
use http_body_util::Full;
use lattice_xray::credentials::CachedCredentials;
use lattice_xray::lattice_client::sign_for_lattice;
use local_stack::lattice::event::{Identity as CallerIdentity, LatticeEventV2, RequestContext};

use crate::connection::{self, Connection, Connector, ExchangeError, OutgoingRequest};
use crate::stats::ErrorKind;

/// How long a connect (TCP and TLS) may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

const TRACE_HEADER: http::HeaderName = http::HeaderName::from_static("x-amzn-trace-id");

const USER_AGENT: HeaderValue =
    HeaderValue::from_static(concat!("loadgen/", env!("CARGO_PKG_VERSION")));

/// A failed send.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SendError {
    /// Its kind.
    pub kind: ErrorKind,
    /// What happened.
    pub detail: String,
}

/// A Lattice service endpoint.
#[derive(Debug)]
pub struct LatticeTarget {
    connector: Connector,
    url: String,
    /// Parsed once: where connections go (`uri`), what the request line and the signature name
    /// (`path`, origin form) and the `host` header; no URL work per order.
    uri: http::Uri,
    path: http::Uri,
    host: HeaderValue,
    credentials: Option<CachedCredentials>,
    region: String,
    timeout: Duration,
    /// Connections between open-loop requests (closed-loop workers keep their own).
    idle: Mutex<Vec<Connection>>,
}

impl LatticeTarget {
    /// Orders POSTed to `url`, signed with `credentials` (fetched once and reused until shortly
    /// before they expire) for `region` (unsigned when `None`:
    /// services with `AuthType: NONE`, and measuring loadgen itself); each request, connect
    /// included, may take `timeout`.
    pub fn new(
        url: &str,
        credentials: Option<SharedCredentialsProvider>,
        region: &str,
        timeout: Duration,
    ) -> anyhow::Result<Self> {
        let uri: http::Uri = url.parse()?;
        let host = uri
            .authority()
            .ok_or_else(|| anyhow::anyhow!("{url}: no host"))?
            .as_str()
            .parse()?;
        let path = uri
            .path_and_query()
            .map_or("/", http::uri::PathAndQuery::as_str)
            .parse()?;
        Ok(Self {
            connector: connection::connector()?,
            url: url.to_owned(),
            uri,
            path,
            host,
            credentials: credentials.map(CachedCredentials::new),
            region: region.to_owned(),
            timeout,
            idle: Mutex::new(Vec::new()),
        })
    }

    /// The URL orders go to.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The request for one order, signed when the target has credentials.
    async fn request(&self, body: Bytes, trace_header: &str) -> Result<OutgoingRequest, SendError> {
        let signing_error = |detail: String| SendError {
            kind: ErrorKind::Other,
            detail,
        };
        // Room for every header it will carry, signature included: no regrowth per request.
        let mut headers = http::HeaderMap::with_capacity(12);
        headers.insert(http::header::HOST, self.host.clone());
        headers.insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        headers.insert(http::header::USER_AGENT, USER_AGENT);
        let mut request = http::Request::new(Full::new(body));
        *request.method_mut() = http::Method::POST;
        *request.uri_mut() = self.path.clone();
        *request.headers_mut() = headers;
        if let Some(provider) = &self.credentials {
            let credentials = provider
                .credentials()
                .await
                .map_err(|e| signing_error(format!("no credentials: {e}")))?;
            // Lattice takes UNSIGNED-PAYLOAD: the head alone is signed.
            sign_for_lattice(
                &mut request,
                &Identity::from(credentials),
                &self.region,
                SystemTime::now(),
            )
            .map_err(|e| signing_error(e.to_string()))?;
        }
        if let Ok(value) = HeaderValue::from_str(trace_header) {
            request.headers_mut().insert(TRACE_HEADER, value);
        }
        Ok(request)
    }

    /// Signs and sends one order on `connection` (opened first when `None`, and left `None`
    /// when it cannot be used again); the HTTP status, or why there was none.
    pub async fn send(
        &self,
        connection: &mut Option<Connection>,
        body: Bytes,
        trace_header: &str,
    ) -> Result<u16, SendError> {
        let request = self.request(body, trace_header).await?;
        match tokio::time::timeout(self.timeout, self.exchange(connection, request)).await {
            Ok(answer) => answer,
            Err(_) => {
                *connection = None;
                Err(SendError {
                    kind: ErrorKind::Timeout,
                    detail: format!("no answer within {:?}", self.timeout),
                })
            }
        }
    }

    /// [`send`](Self::send) on a connection from the idle list (or a new one), put back after a
    /// complete answer: for open-loop requests, which have no worker to keep one.
    pub async fn send_pooled(&self, body: Bytes, trace_header: &str) -> Result<u16, SendError> {
        let mut connection = self.idle.lock().unwrap_or_else(|p| p.into_inner()).pop();
        let answer = self.send(&mut connection, body, trace_header).await;
        if let Some(connection) = connection {
            self.idle
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(connection);
        }
        answer
    }

    async fn exchange(
        &self,
        slot: &mut Option<Connection>,
        mut request: OutgoingRequest,
    ) -> Result<u16, SendError> {
        loop {
            let reused = slot.is_some();
            let connection = match slot {
                Some(connection) => connection,
                None => slot.insert(self.connect().await?),
            };
            match connection.exchange(request).await {
                Ok(status) => {
                    if connection.is_finished() {
                        *slot = None;
                    }
                    return Ok(status.as_u16());
                }
                // The server closed a kept-alive connection before this request was written:
                // once more on a new one, as every HTTP client does.
                Err(ExchangeError::NotSent(unsent, _)) if reused => {
                    *slot = None;
                    request = *unsent;
                }
                Err(ExchangeError::NotSent(_, detail) | ExchangeError::Failed(detail)) => {
                    *slot = None;
                    return Err(SendError {
                        kind: ErrorKind::Other,
                        detail,
                    });
                }
            }
        }
    }

    async fn connect(&self) -> Result<Connection, SendError> {
        match tokio::time::timeout(
            CONNECT_TIMEOUT,
            Connection::open(&self.connector, &self.uri),
        )
        .await
        {
            Ok(Ok(connection)) => Ok(connection),
            Ok(Err(error)) => Err(SendError {
                kind: error.kind,
                detail: error.detail,
            }),
            Err(_) => Err(SendError {
                kind: ErrorKind::Connect,
                detail: format!(
                    "connect to {} timed out after {CONNECT_TIMEOUT:?}",
                    self.uri
                ),
            }),
        }
    }
}

/// The order Lambda invoked directly (`--lambda FUNCTION`) with aws-sdk-lambda: the event is the
/// local stack's Lattice V2 event type, so the same handler path runs, and the trace header
/// travels in its headers.
#[derive(Clone, Debug)]
pub struct LambdaTarget {
    client: aws_sdk_lambda::Client,
    function: String,
    label: String,
    region: String,
}

impl LambdaTarget {
    /// Invokes `function` with `client`.
    pub fn new(client: aws_sdk_lambda::Client, function: &str, region: &str) -> Self {
        Self {
            client,
            function: function.to_owned(),
            label: format!("lambda:{function}"),
            region: region.to_owned(),
        }
    }

    fn event(&self, body: &Bytes, trace_header: &str) -> LatticeEventV2 {
        let now_us = SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_micros());
        let header = |value: &str| vec![value.to_owned()];
        LatticeEventV2 {
            version: "2.0".into(),
            path: "/orders".into(),
            method: "POST".into(),
            headers: [
                ("content-type".to_owned(), header("application/json")),
                (
                    "user-agent".to_owned(),
                    header(concat!("loadgen/", env!("CARGO_PKG_VERSION"))),
                ),
                ("x-amzn-trace-id".to_owned(), header(trace_header)),
            ]
            .into(),
            query_string_parameters: Default::default(),
            body: Some(String::from_utf8_lossy(body).into_owned()),
            is_base64_encoded: false,
            // Not through Lattice: the context says so instead of inventing ARNs.
            request_context: RequestContext {
                service_network_arn: "-".into(),
                service_arn: "-".into(),
                target_group_arn: "-".into(),
                identity: CallerIdentity {
                    identity_type: Some("DIRECT_INVOKE".into()),
                    ..CallerIdentity::default()
                },
                region: self.region.clone(),
                time_epoch: now_us.to_string(),
            },
        }
    }

    /// Invokes once; the response's `statusCode`, or why there was none.
    pub async fn send(&self, body: Bytes, trace_header: &str) -> Result<u16, SendError> {
        use aws_sdk_lambda::primitives::Blob;
        let payload =
            serde_json::to_vec(&self.event(&body, trace_header)).map_err(|e| SendError {
                kind: ErrorKind::Other,
                detail: e.to_string(),
            })?;
        let output = self
            .client
            .invoke()
            .function_name(&self.function)
            .payload(Blob::new(payload))
            .send()
            .await
            .map_err(|e| {
                let service = e.as_service_error();
                let kind = if service.is_some_and(|s| s.is_too_many_requests_exception()) {
                    ErrorKind::Throttled
                } else if matches!(e, aws_sdk_lambda::error::SdkError::TimeoutError(_)) {
                    ErrorKind::Timeout
                } else if matches!(e, aws_sdk_lambda::error::SdkError::DispatchFailure(_)) {
                    ErrorKind::Connect
                } else {
                    ErrorKind::Other
                };
                SendError {
                    kind,
                    detail: aws_sdk_lambda::error::DisplayErrorContext(&e).to_string(),
                }
            })?;
        if let Some(error) = output.function_error() {
            return Err(SendError {
                kind: ErrorKind::FunctionError,
                detail: format!(
                    "FunctionError {error}: {}",
                    output
                        .payload()
                        .map(|p| String::from_utf8_lossy(p.as_ref()).into_owned())
                        .unwrap_or_default()
                ),
            });
        }
        let status = output
            .payload()
            .and_then(|p| serde_json::from_slice::<serde_json::Value>(p.as_ref()).ok())
            .and_then(|v| v.get("statusCode").and_then(serde_json::Value::as_u64))
            .and_then(|s| u16::try_from(s).ok());
        status.ok_or_else(|| SendError {
            kind: ErrorKind::Other,
            detail: "the function's answer has no statusCode".into(),
        })
    }
}

/// Where orders go.
#[derive(Debug)]
pub enum Target {
    /// A Lattice service URL.
    Lattice(Box<LatticeTarget>),
    /// The order function invoked directly.
    Lambda(LambdaTarget),
}

impl Target {
    /// Sends one order on the caller's own `connection` (a closed-loop worker's; the Lambda
    /// target has its SDK client's and leaves it `None`).
    pub async fn send(
        &self,
        connection: &mut Option<Connection>,
        body: Bytes,
        trace_header: &str,
    ) -> Result<u16, SendError> {
        match self {
            Self::Lattice(t) => t.send(connection, body, trace_header).await,
            Self::Lambda(t) => t.send(body, trace_header).await,
        }
    }

    /// Sends one order on any idle connection (open-loop requests).
    pub async fn send_pooled(&self, body: Bytes, trace_header: &str) -> Result<u16, SendError> {
        match self {
            Self::Lattice(t) => t.send_pooled(body, trace_header).await,
            Self::Lambda(t) => t.send(body, trace_header).await,
        }
    }

    /// The URL (or `lambda:<function>`) for reports and segments.
    pub fn url(&self) -> &str {
        match self {
            Self::Lattice(t) => t.url(),
            Self::Lambda(t) => &t.label,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpStream};

    const CREATED: &[u8] = b"HTTP/1.1 201 Created\r\ncontent-length: 11\r\n\r\n{\"ok\":true}";

    /// What the test server does after reading a request.
    #[derive(Clone, Copy)]
    enum Then {
        /// Answers 201 and keeps the connection.
        Answer,
        /// Answers 201 and closes (no `Connection: close`: the client learns from the FIN).
        AnswerAndClose,
        /// Closes without answering.
        Hang,
        /// Never answers, keeps the connection open.
        Silence,
    }

    #[derive(Default)]
    struct Seen {
        connections: usize,
        /// Each request's head as received.
        heads: Vec<String>,
    }

    async fn read_request(stream: &mut TcpStream) -> Option<String> {
        let mut data = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            if let Some(end) = data.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&data[..end]).into_owned();
                let length: usize = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length: "))
                    .map_or(0, |n| n.parse().unwrap());
                while data.len() < end + 4 + length {
                    let n = stream.read(&mut buf).await.ok()?;
                    if n == 0 {
                        return None;
                    }
                    data.extend_from_slice(&buf[..n]);
                }
                return Some(head);
            }
            let n = stream.read(&mut buf).await.ok()?;
            if n == 0 {
                return None;
            }
            data.extend_from_slice(&buf[..n]);
        }
    }

    /// A server doing `then` for every request; the URL of its `/orders`.
    async fn server(then: Then) -> (String, Arc<Mutex<Seen>>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/orders", listener.local_addr().unwrap());
        let seen = Arc::new(Mutex::new(Seen::default()));
        let record = Arc::clone(&seen);
        tokio::spawn(async move {
            loop {
                let (mut stream, _) = listener.accept().await.unwrap();
                record.lock().unwrap().connections += 1;
                let record = Arc::clone(&record);
                tokio::spawn(async move {
                    while let Some(head) = read_request(&mut stream).await {
                        record.lock().unwrap().heads.push(head);
                        match then {
                            Then::Answer => stream.write_all(CREATED).await.unwrap(),
                            Then::AnswerAndClose => {
                                stream.write_all(CREATED).await.unwrap();
                                return;
                            }
                            Then::Hang => return,
                            Then::Silence => std::future::pending::<()>().await,
                        }
                    }
                });
            }
        });
        (url, seen)
    }

    fn target(url: &str, credentials: Option<SharedCredentialsProvider>) -> LatticeTarget {
        LatticeTarget::new(url, credentials, "us-east-1", Duration::from_millis(500)).unwrap()
    }

    const HEADER: &str =
        "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1";

    #[tokio::test]
    async fn orders_go_in_origin_form_with_exact_headers_on_one_kept_connection() {
        let (url, seen) = server(Then::Answer).await;
        let target = target(&url, None);
        let mut connection = None;
        for _ in 0..3 {
            let status = target
                .send(&mut connection, Bytes::from_static(b"{\"a\":1}"), HEADER)
                .await;
            assert_eq!(status, Ok(201));
        }
        let seen = seen.lock().unwrap();
        assert_eq!(seen.connections, 1, "kept alive");
        let authority = url
            .trim_start_matches("http://")
            .trim_end_matches("/orders");
        let mut head: Vec<String> = seen.heads[0].lines().map(str::to_ascii_lowercase).collect();
        assert_eq!(head.remove(0), "post /orders http/1.1");
        head.sort();
        assert_eq!(
            head,
            [
                "content-length: 7".to_owned(),
                "content-type: application/json".to_owned(),
                format!("host: {authority}"),
                format!("user-agent: loadgen/{}", env!("CARGO_PKG_VERSION")),
                format!("x-amzn-trace-id: {}", HEADER.to_ascii_lowercase()),
            ]
        );
    }

    #[tokio::test]
    async fn signed_orders_carry_a_lattice_sigv4_signature() {
        let (url, seen) = server(Then::Answer).await;
        let credentials = SharedCredentialsProvider::new(aws_credential_types::Credentials::new(
            "AKIDTEST",
            "secret",
            Some("session-token".into()),
            None,
            "test",
        ));
        let target = target(&url, Some(credentials));
        assert_eq!(
            target
                .send(&mut None, Bytes::from_static(b"{}"), HEADER)
                .await,
            Ok(201)
        );
        let head = seen.lock().unwrap().heads[0].to_ascii_lowercase();
        let authorization = head
            .lines()
            .find_map(|l| l.strip_prefix("authorization: "))
            .expect("signed");
        assert!(
            authorization.starts_with("aws4-hmac-sha256 credential=akidtest/")
                && authorization.contains("/us-east-1/vpc-lattice-svcs/aws4_request"),
            "{authorization}"
        );
        assert!(
            head.contains("x-amz-content-sha256: unsigned-payload"),
            "{head}"
        );
        assert!(
            head.contains("x-amz-security-token: session-token"),
            "{head}"
        );
    }

    #[tokio::test]
    async fn a_connection_the_server_closed_is_replaced_without_failing_the_order() {
        let (url, seen) = server(Then::AnswerAndClose).await;
        let target = target(&url, None);
        let mut connection = None;
        for _ in 0..3 {
            assert_eq!(
                target
                    .send(&mut connection, Bytes::from_static(b"{}"), HEADER)
                    .await,
                Ok(201)
            );
            // Time for the FIN to arrive before the next order.
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let seen = seen.lock().unwrap();
        assert_eq!((seen.connections, seen.heads.len()), (3, 3));
    }

    #[tokio::test]
    async fn failures_are_classified_and_spend_the_connection() {
        let (url, _) = server(Then::Hang).await;
        let mut connection = None;
        let failed = target(&url, None)
            .send(&mut connection, Bytes::from_static(b"{}"), HEADER)
            .await
            .unwrap_err();
        assert_eq!(failed.kind, ErrorKind::Other, "{failed:?}");
        assert!(connection.is_none());

        let (url, _) = server(Then::Silence).await;
        let mut connection = None;
        let timed_out = target(&url, None)
            .send(&mut connection, Bytes::from_static(b"{}"), HEADER)
            .await
            .unwrap_err();
        assert_eq!(
            timed_out,
            SendError {
                kind: ErrorKind::Timeout,
                detail: "no answer within 500ms".into()
            }
        );
        assert!(connection.is_none());

        // Nothing listens on a port just released.
        let closed = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/orders", closed.local_addr().unwrap());
        drop(closed);
        let refused = target(&url, None)
            .send(&mut None, Bytes::from_static(b"{}"), HEADER)
            .await
            .unwrap_err();
        assert_eq!(refused.kind, ErrorKind::Connect, "{refused:?}");
    }

    #[tokio::test]
    async fn open_loop_requests_share_idle_connections() {
        let (url, seen) = server(Then::Answer).await;
        let target = Arc::new(target(&url, None));
        for _ in 0..5 {
            assert_eq!(
                target.send_pooled(Bytes::from_static(b"{}"), HEADER).await,
                Ok(201)
            );
        }
        let concurrent: Vec<_> = (0..4)
            .map(|_| {
                let target = Arc::clone(&target);
                tokio::spawn(
                    async move { target.send_pooled(Bytes::from_static(b"{}"), HEADER).await },
                )
            })
            .collect();
        for request in concurrent {
            assert_eq!(request.await.unwrap(), Ok(201));
        }
        let seen = seen.lock().unwrap();
        assert_eq!(seen.heads.len(), 9);
        assert!(
            (1..=4).contains(&seen.connections),
            "{} connections for 9 requests, at most 4 at once",
            seen.connections
        );
    }
}
