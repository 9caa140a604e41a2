//! The HTTP server Lambda POSTs telemetry to: hyper 1, HTTP/1, on the fixed port [`PORT`] (the
//! subscription names `http://sandbox.localdomain:4243`). Written here rather than taken from
//! `lambda-extension`, whose listener binds `0.0.0.0`, re-binds inside its accept loop, parses a
//! batch into one typed `Vec` (one unknown record type answers 400 for all of it) and answers only
//! after the processor ran. This one reads the body (at most [`MAX_POST_BYTES`], 413 above),
//! pushes it into the [`PostQueue`] and answers 200 at once, before any parsing.
//!
//! Where it binds ([`listen_address`]): the address of `sandbox.localdomain` when that resolves
//! (in Lambda), otherwise the host of `AWS_LAMBDA_RUNTIME_API` (a loopback address; locally every
//! execution environment has its own `127.x.y.z`, so the fixed port does not collide).

use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{header, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Empty, Limited};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::queue::PostQueue;

/// The port of the subscription's destination.
pub const PORT: u16 = 4243;
/// The host Lambda resolves for extensions.
pub const SANDBOX_HOST: &str = "sandbox.localdomain";
/// The largest POST read (Lambda sends at most `2 * maxBytes` plus metadata: 512 KiB here).
pub const MAX_POST_BYTES: usize = 4 * 1024 * 1024;
/// How long the `sandbox.localdomain` lookup may take before the runtime API host is used.
const LOOKUP_TIMEOUT: Duration = Duration::from_millis(500);

/// Where to listen: `sandbox.localdomain`'s address, else `runtime_api`'s host, on `port`.
pub async fn listen_address(runtime_api: Option<&str>, port: u16) -> Option<SocketAddr> {
    if let Some(ip) = resolve(&format!("{SANDBOX_HOST}:{port}")).await {
        return Some(SocketAddr::new(ip, port));
    }
    let ip = resolve(runtime_api?).await?;
    Some(SocketAddr::new(ip, port))
}

/// The first address `host_port` resolves to, within [`LOOKUP_TIMEOUT`].
async fn resolve(host_port: &str) -> Option<IpAddr> {
    let lookup = tokio::net::lookup_host(host_port.to_owned());
    let mut addresses = tokio::time::timeout(LOOKUP_TIMEOUT, lookup)
        .await
        .ok()?
        .ok()?;
    addresses.next().map(|address| address.ip())
}

/// A running listener.
#[derive(Debug)]
pub struct Listener {
    address: SocketAddr,
    task: JoinHandle<()>,
}

impl Listener {
    /// Binds `address` and serves in the background, queueing every POST into `queue`.
    pub async fn start(address: SocketAddr, queue: Arc<PostQueue>) -> std::io::Result<Self> {
        let listener = TcpListener::bind(address).await?;
        let address = listener.local_addr()?;
        let task = tokio::spawn(accept_loop(listener, queue));
        Ok(Self { address, task })
    }

    /// The bound address (the real port when started on port 0).
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// Stops accepting.
    pub fn stop(self) {
        self.task.abort();
    }
}

async fn accept_loop(listener: TcpListener, queue: Arc<PostQueue>) {
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            // Out of descriptors or an aborted handshake: not fatal; pause so it cannot spin.
            Err(_) => {
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let queue = Arc::clone(&queue);
        tokio::spawn(async move {
            let service = service_fn(move |request| answer(request, Arc::clone(&queue)));
            // A connection Lambda drops mid-request is its business: it retries the POST.
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

type Answer = Response<Empty<Bytes>>;

async fn answer(request: Request<Incoming>, queue: Arc<PostQueue>) -> Result<Answer, Infallible> {
    if request.method() != Method::POST {
        return Ok(status(StatusCode::METHOD_NOT_ALLOWED));
    }
    if declared_length(&request).is_some_and(|len| len > MAX_POST_BYTES as u64) {
        return Ok(status(StatusCode::PAYLOAD_TOO_LARGE));
    }
    let body = match Limited::new(request.into_body(), MAX_POST_BYTES)
        .collect()
        .await
    {
        Ok(body) => body.to_bytes(),
        Err(error) if error.is::<http_body_util::LengthLimitError>() => {
            return Ok(status(StatusCode::PAYLOAD_TOO_LARGE));
        }
        Err(_) => return Ok(status(StatusCode::BAD_REQUEST)),
    };
    // Queued or dropped for want of room (counted): either way Lambda must not resend it.
    queue.push(body);
    Ok(status(StatusCode::OK))
}

fn declared_length(request: &Request<Incoming>) -> Option<u64> {
    request
        .headers()
        .get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .parse()
        .ok()
}

fn status(code: StatusCode) -> Answer {
    let mut response = Response::new(Empty::new());
    *response.status_mut() = code;
    response
}
