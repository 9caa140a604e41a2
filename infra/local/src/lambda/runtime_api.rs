//! The Runtime API of one execution environment, as `lambda_runtime` polls it:
//! `GET /2018-06-01/runtime/invocation/next`, `POST …/invocation/{id}/response`,
//! `POST …/invocation/{id}/error`, `POST …/init/error`. Each environment gets its own listener, so
//! an invocation handed to an environment can only be taken by that environment's process.
//!
//! The same address (`AWS_LAMBDA_RUNTIME_API`) serves the environment's Extensions API
//! ([`super::extensions_api`]) and Telemetry API ([`super::telemetry_api`]), as on AWS.

use crate::http_server::serve;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Method, Request, Response, StatusCode};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot, Notify};
use tokio::task::JoinHandle;

use super::extensions_api::{self, ExtensionsApi};
use super::telemetry_api::{self, TelemetryApi};

const PREFIX: &str = "/2018-06-01/runtime";

/// One invocation handed to an environment.
#[derive(Debug)]
pub struct Invocation {
    /// `Lambda-Runtime-Aws-Request-Id`.
    pub request_id: String,
    /// The event.
    pub event: Bytes,
    /// `Lambda-Runtime-Deadline-Ms` (epoch ms).
    pub deadline_ms: u64,
    /// `Lambda-Runtime-Invoked-Function-Arn`.
    pub function_arn: String,
    /// `Lambda-Runtime-Trace-Id`, when tracing is active.
    pub trace_id: Option<String>,
    /// Where the outcome goes.
    pub reply: oneshot::Sender<Outcome>,
}

/// How an invocation ended, as the process reported it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// `POST …/response`.
    Response(Bytes),
    /// `POST …/error`: the function failed (`Lambda-Runtime-Function-Error-Type` and the body).
    FunctionError {
        /// The error type header, e.g. `unhandled`.
        error_type: String,
        /// The error document (`{"errorType","errorMessage"}`).
        body: Bytes,
    },
}

#[derive(Debug)]
struct State {
    next: tokio::sync::Mutex<mpsc::Receiver<Invocation>>,
    in_flight: Mutex<HashMap<String, oneshot::Sender<Outcome>>>,
    started: Instant,
    init_duration: Mutex<Option<std::time::Duration>>,
    init_error: Mutex<Option<Bytes>>,
    ready: Notify,
    extensions: Arc<ExtensionsApi>,
    telemetry: Arc<TelemetryApi>,
}

/// A running Runtime API for one environment.
#[derive(Debug)]
pub struct RuntimeApi {
    /// `host:port` for `AWS_LAMBDA_RUNTIME_API`.
    pub addr: SocketAddr,
    state: Arc<State>,
    task: JoinHandle<()>,
}

impl Drop for RuntimeApi {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl RuntimeApi {
    /// Starts a listener on `ip` (a loopback address); invocations sent on the returned sender
    /// are served to the process polling it.
    pub async fn start(
        ip: IpAddr,
        extensions: Arc<ExtensionsApi>,
        telemetry: Arc<TelemetryApi>,
    ) -> std::io::Result<(Self, mpsc::Sender<Invocation>)> {
        let listener = TcpListener::bind(SocketAddr::new(ip, 0)).await?;
        let addr = listener.local_addr()?;
        let (tx, rx) = mpsc::channel(1);
        let state = Arc::new(State {
            next: tokio::sync::Mutex::new(rx),
            in_flight: Mutex::default(),
            started: Instant::now(),
            init_duration: Mutex::default(),
            init_error: Mutex::default(),
            ready: Notify::new(),
            extensions,
            telemetry,
        });
        let served = Arc::clone(&state);
        let task = serve(listener, move |request, _| {
            let state = Arc::clone(&served);
            async move { route(&state, request).await }
        });
        Ok((Self { addr, state, task }, tx))
    }

    /// Time from start until the process first asked for work (its init duration), once known.
    pub fn init_duration(&self) -> Option<std::time::Duration> {
        *self
            .state
            .init_duration
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }

    /// Waits until the process has initialised (first `next`) or reported an init error.
    pub async fn ready(&self) {
        if self.init_duration().is_some() || self.init_error().is_some() {
            return;
        }
        self.state.ready.notified().await;
    }

    /// The body of `POST /init/error`, if the process reported one.
    pub fn init_error(&self) -> Option<Bytes> {
        self.state
            .init_error
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

fn reply(status: StatusCode, body: &'static str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *response.status_mut() = status;
    response
}

async fn route(state: &State, request: Request<hyper::body::Incoming>) -> Response<Full<Bytes>> {
    let path = request.uri().path().to_owned();
    if let Some(rest) = path.strip_prefix(extensions_api::PREFIX) {
        let method = request.method().as_str().to_owned();
        let (parts, body) = request.into_parts();
        let body = body
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        return state
            .extensions
            .route(&method, rest, &parts.headers, body)
            .await;
    }
    if path == telemetry_api::PATH {
        if request.method() != Method::PUT {
            return reply(StatusCode::METHOD_NOT_ALLOWED, "{}");
        }
        let (parts, body) = request.into_parts();
        let body = body
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        return state.telemetry.subscribe(&parts.headers, &body);
    }
    let Some(rest) = path.strip_prefix(PREFIX) else {
        return reply(StatusCode::NOT_FOUND, "{}");
    };
    let method = request.method().clone();
    let error_type = request
        .headers()
        .get("lambda-runtime-function-error-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("unhandled")
        .to_owned();
    let body = request
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    match (method, rest) {
        (Method::GET, "/invocation/next") => next(state).await,
        (Method::POST, "/init/error") => {
            *state.init_error.lock().unwrap_or_else(|p| p.into_inner()) = Some(body);
            state.ready.notify_waiters();
            reply(StatusCode::ACCEPTED, r#"{"status":"OK"}"#)
        }
        (Method::POST, rest) => {
            let Some((id, kind)) = rest
                .strip_prefix("/invocation/")
                .and_then(|r| r.rsplit_once('/'))
            else {
                return reply(StatusCode::NOT_FOUND, "{}");
            };
            let outcome = match kind {
                "response" => Outcome::Response(body),
                "error" => Outcome::FunctionError { error_type, body },
                _ => return reply(StatusCode::NOT_FOUND, "{}"),
            };
            let sender = state
                .in_flight
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(id);
            match sender {
                Some(sender) => {
                    let _ = sender.send(outcome);
                    reply(StatusCode::ACCEPTED, r#"{"status":"OK"}"#)
                }
                // Lambda answers 400 InvalidStateTransition for an unknown or finished request id.
                None => reply(
                    StatusCode::BAD_REQUEST,
                    r#"{"errorType":"InvalidStateTransition","errorMessage":"unknown or finished request id"}"#,
                ),
            }
        }
        _ => reply(StatusCode::NOT_FOUND, "{}"),
    }
}

async fn next(state: &State) -> Response<Full<Bytes>> {
    {
        let mut init = state
            .init_duration
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if init.is_none() {
            *init = Some(state.started.elapsed());
            state.ready.notify_waiters();
        }
    }
    let invocation = state.next.lock().await.recv().await;
    let Some(invocation) = invocation else {
        // The environment is shutting down. Lambda never answers this `next`: the runtime is
        // stopped where it waits (the environment kills its process). Answering it instead made
        // lambda_runtime panic on the missing request id, into the function's log.
        return std::future::pending().await;
    };
    state
        .in_flight
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(invocation.request_id.clone(), invocation.reply);
    let mut response = Response::new(Full::new(invocation.event));
    let headers = response.headers_mut();
    let mut set = |name: &'static str, value: &str| {
        if let Ok(value) = value.parse() {
            headers.insert(name, value);
        }
    };
    set("lambda-runtime-aws-request-id", &invocation.request_id);
    set(
        "lambda-runtime-deadline-ms",
        &invocation.deadline_ms.to_string(),
    );
    set(
        "lambda-runtime-invoked-function-arn",
        &invocation.function_arn,
    );
    if let Some(trace_id) = &invocation.trace_id {
        set("lambda-runtime-trace-id", trace_id);
    }
    response
}
