//! A proxy in front of a DynamoDB server that can pass requests through, answer them as a
//! throttled DynamoDB does, or hold them past the caller's timeout: the faults no local server
//! emulates. The throttling answer is DynamoDB's documented one (`tests/fixtures/README.md`).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

/// DynamoDB's answer to a throttled request (HTTP 400, awsJson 1.0).
pub const THROTTLED_BODY: &str =
    include_str!("../fixtures/dynamodb-provisioned-throughput-exceeded.json");

/// What the proxy does with each request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Mode {
    /// Forward it.
    Pass = 0,
    /// Answer 400 `ProvisionedThroughputExceededException`.
    Throttle = 1,
    /// Hold it past the caller's timeout, then drop it unforwarded.
    Stall = 2,
}

/// The running proxy.
#[derive(Clone, Debug)]
pub struct DynamoDbProxy {
    /// Where it listens.
    pub addr: SocketAddr,
    mode: Arc<AtomicU8>,
    /// Requests answered as throttled.
    pub throttled: Arc<AtomicU64>,
    /// Requests stalled.
    pub stalled: Arc<AtomicU64>,
}

impl DynamoDbProxy {
    /// A proxy to `upstream` (`http://host:port`), passing requests through until told otherwise.
    pub async fn start(upstream: String, stall: Duration) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let proxy = Self {
            addr: listener.local_addr().unwrap(),
            mode: Arc::new(AtomicU8::new(Mode::Pass as u8)),
            throttled: Arc::default(),
            stalled: Arc::default(),
        };
        let shared = proxy.clone();
        let client = reqwest::Client::new();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let (proxy, client, upstream) = (shared.clone(), client.clone(), upstream.clone());
                tokio::spawn(async move {
                    let service = service_fn(move |request| {
                        let (proxy, client, upstream) =
                            (proxy.clone(), client.clone(), upstream.clone());
                        async move { proxy.answer(request, &client, &upstream, stall).await }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        proxy
    }

    /// `http://127.0.0.1:<port>`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Changes what happens to the next requests.
    pub fn set(&self, mode: Mode) {
        self.mode.store(mode as u8, Ordering::SeqCst);
    }

    async fn answer(
        &self,
        request: hyper::Request<hyper::body::Incoming>,
        client: &reqwest::Client,
        upstream: &str,
        stall: Duration,
    ) -> Result<hyper::Response<Full<Bytes>>, std::convert::Infallible> {
        // The request is read whole first, whatever the answer: an unread body would break the
        // keep-alive connection the SDK reuses for its next attempt.
        let (parts, body) = request.into_parts();
        let body = body
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        let mode = self.mode.load(Ordering::SeqCst);
        if mode == Mode::Throttle as u8 {
            self.throttled.fetch_add(1, Ordering::SeqCst);
            return Ok(hyper::Response::builder()
                .status(400)
                .header("content-type", "application/x-amz-json-1.0")
                .header(
                    "x-amzn-requestid",
                    "THROTTLEDBYTHEPROXY0000000000000000000000000000000",
                )
                .body(Full::new(Bytes::from_static(THROTTLED_BODY.as_bytes())))
                .unwrap());
        }
        if mode == Mode::Stall as u8 {
            // Held, then dropped unanswered: the request never reaches the table.
            self.stalled.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(stall).await;
            return Ok(hyper::Response::builder()
                .status(500)
                .body(Full::new(Bytes::new()))
                .unwrap());
        }
        let mut forward = client.post(upstream).body(body);
        for (name, value) in &parts.headers {
            if name != "host" {
                forward = forward.header(name, value);
            }
        }
        let Ok(response) = forward.send().await else {
            return Ok(hyper::Response::builder()
                .status(502)
                .body(Full::new(Bytes::new()))
                .unwrap());
        };
        let mut answer = hyper::Response::builder().status(response.status().as_u16());
        for (name, value) in response.headers() {
            answer = answer.header(name, value);
        }
        let bytes = response.bytes().await.unwrap_or_default();
        Ok(answer.body(Full::new(bytes)).unwrap())
    }
}
