//! One keep-alive HTTP/1.1 connection (plain or TLS) owned by one caller and driven inside the
//! caller's own task: hyper's `client::conn::http1`, with no connection task and no pool.
//!
//! A pooled client (reqwest, hyper-util's legacy client) runs every connection as a task of its
//! own and hands each request and response between tasks, and so between threads. Measured
//! against a trivial endpoint on 2 vCPUs, that hand-off, the wake-ups it causes and the pool's
//! per-request bookkeeping were most of loadgen's cost (README, "loadgen against wrk and hey").
//! Here the caller's future polls the connection itself while it waits for its answer, so a
//! request, its response and its body are read on the thread that sent them.

use std::future::Future as _;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1;
use hyper_rustls::{HttpsConnector, MaybeHttpsStream};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tower_service::Service;

use crate::stats::ErrorKind;

/// Opens plain TCP or TLS (rustls with the platform's verifier, as reqwest and the AWS SDK do)
/// by the URL's scheme.
pub type Connector = HttpsConnector<HttpConnector>;

type Stream = MaybeHttpsStream<TokioIo<TcpStream>>;

/// A request as sent.
pub type OutgoingRequest = http::Request<Full<Bytes>>;

/// A connector for `http://` and `https://` URLs, with `TCP_NODELAY`.
pub fn connector() -> Result<Connector, rustls::Error> {
    let mut http = HttpConnector::new();
    http.set_nodelay(true);
    // The connector refuses `https` URLs on a plain connector unless told otherwise.
    http.enforce_http(false);
    Ok(hyper_rustls::HttpsConnectorBuilder::new()
        .try_with_platform_verifier()?
        .https_or_http()
        .enable_http1()
        .wrap_connector(http))
}

/// Why an exchange failed.
#[derive(Debug)]
pub enum ExchangeError {
    /// The connection closed before the request was written: it can go on a fresh connection.
    NotSent(Box<OutgoingRequest>, String),
    /// The request was (or may have been) sent and got no complete answer; the connection is
    /// spent.
    Failed(String),
}

/// A failed connect: its kind (TLS or TCP) and the error chain.
#[derive(Debug)]
pub struct ConnectError {
    /// [`ErrorKind::Tls`] or [`ErrorKind::Connect`].
    pub kind: ErrorKind,
    /// The whole error chain.
    pub detail: String,
}

/// One open connection.
#[derive(Debug)]
pub struct Connection {
    sender: http1::SendRequest<Full<Bytes>>,
    /// `None` once it has completed: the connection is over and can send nothing more.
    driver: Option<http1::Connection<Stream, Full<Bytes>>>,
}

/// `error` and all its sources, `: `-separated.
pub fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut chain = error.to_string();
    let mut source = error.source();
    while let Some(inner) = source {
        chain.push_str(": ");
        chain.push_str(&inner.to_string());
        source = inner.source();
    }
    chain
}

impl Connection {
    /// Connects to `uri`'s host (TLS for `https`) and does the HTTP/1.1 handshake.
    pub async fn open(connector: &Connector, uri: &http::Uri) -> Result<Self, ConnectError> {
        let mut connector = connector.clone();
        let connected = async {
            std::future::poll_fn(|cx| connector.poll_ready(cx)).await?;
            connector.call(uri.clone()).await
        };
        let stream = connected.await.map_err(|error| {
            let detail = error_chain(error.as_ref());
            let lower = detail.to_ascii_lowercase();
            let tls = ["certificate", "tls", "handshake", "invalid dns name"];
            ConnectError {
                kind: if tls.iter().any(|word| lower.contains(word)) {
                    ErrorKind::Tls
                } else {
                    ErrorKind::Connect
                },
                detail,
            }
        })?;
        let (sender, driver) = http1::handshake(stream)
            .await
            .map_err(|error| ConnectError {
                kind: ErrorKind::Connect,
                detail: error_chain(&error),
            })?;
        Ok(Self {
            sender,
            driver: Some(driver),
        })
    }

    /// Sends `request`, reads the whole answer and returns its status, polling the connection
    /// meanwhile.
    pub async fn exchange(
        &mut self,
        request: OutgoingRequest,
    ) -> Result<http::StatusCode, ExchangeError> {
        let Self { sender, driver } = self;
        let Some(running) = driver.as_mut() else {
            return Err(ExchangeError::NotSent(
                Box::new(request),
                "connection closed".into(),
            ));
        };
        // The connection first: a close (or `Connection: close`) that arrived since the last
        // answer is read here, before anything is written.
        let ready = tokio::select! {
            biased;
            ended = &mut *running => {
                *driver = None;
                let why = ended.err().map_or_else(|| "connection closed".to_owned(), |e| error_chain(&e));
                return Err(ExchangeError::NotSent(Box::new(request), why));
            }
            ready = sender.ready() => ready,
        };
        if let Err(error) = ready {
            return Err(ExchangeError::NotSent(
                Box::new(request),
                error_chain(&error),
            ));
        }
        let answer = async {
            let response = match sender.try_send_request(request).await {
                Ok(response) => response,
                Err(mut error) => {
                    let why = error_chain(error.error());
                    return Err(match error.take_message() {
                        Some(request) => ExchangeError::NotSent(Box::new(request), why),
                        None => ExchangeError::Failed(why),
                    });
                }
            };
            let status = response.status();
            let mut body = response.into_body();
            while let Some(frame) = body.frame().await {
                frame.map_err(|error| ExchangeError::Failed(error_chain(&error)))?;
            }
            Ok(status)
        };
        let mut answer = std::pin::pin!(answer);
        let answered = tokio::select! {
            biased;
            answer = &mut answer => Some(answer),
            _ = &mut *running => None,
        };
        let answer = match answered {
            Some(answer) => answer,
            None => {
                // The connection is over, but what it read before is handed on: dropping it
                // ends the response's channels, so the answer is whole or fails, never waits.
                *driver = None;
                answer.await
            }
        };
        if let Some(running) = driver.as_mut() {
            // Polled once more now the answer is in: hyper settles the connection back to idle,
            // or sees that it is over, only when polled; and only an idle connection notices a
            // close before the next request is written.
            let ended = std::future::poll_fn(|cx| {
                std::task::Poll::Ready(std::pin::Pin::new(&mut *running).poll(cx).is_ready())
            })
            .await;
            if ended {
                *driver = None;
            }
        }
        answer
    }

    /// The connection is over (closed by the server, or `Connection: close`): open another.
    pub fn is_finished(&self) -> bool {
        self.driver.is_none() || self.sender.is_closed()
    }
}
