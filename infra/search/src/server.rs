//! The HTTP side: a hyper HTTP/1.1 server on a TCP port, authentication (HTTP basic with a
//! configured user, and SigV4 for service `es` checked by `sigv4-verify`; both off by default, as
//! a local domain's security is), `http.max_content_length` (100 MB, 413 above), and the
//! background refresh that makes writes searchable every `refresh_interval`.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use base64::Engine as _;
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::json;
use sigv4_verify::Verifier;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::api::{self, Reply, ReplyBody, Request};
use crate::engine::Engine;
use crate::error::ApiError;

/// OpenSearch's default `http.max_content_length`.
pub const MAX_CONTENT_LENGTH: usize = 100 * 1024 * 1024;
/// How often dirty indices are checked against their `refresh_interval`.
const REFRESH_TICK: Duration = Duration::from_millis(100);

/// Who may call.
#[derive(Clone, Debug, Default)]
pub struct Auth {
    /// HTTP basic: user and password.
    pub basic: Option<(String, String)>,
    /// SigV4 (service `es`).
    pub sigv4: Option<Verifier>,
}

/// How to run the engine.
#[derive(Clone, Debug)]
pub struct SearchConfig {
    /// Where to listen.
    pub listen: SocketAddr,
    /// Data folder; `None` keeps everything in memory.
    pub data_dir: Option<PathBuf>,
    /// Authentication.
    pub auth: Auth,
}

/// Why the engine did not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The port.
    #[error("search engine: cannot listen on {0}: {1}")]
    Listen(SocketAddr, std::io::Error),
    /// The data folder.
    #[error("search engine: {0}")]
    Open(ApiError),
}

/// A running engine.
pub struct SearchServer {
    address: SocketAddr,
    engine: Arc<Engine>,
    accept: JoinHandle<()>,
    refresher: JoinHandle<()>,
}

impl SearchServer {
    /// Opens the data folder and starts listening.
    pub async fn start(config: SearchConfig) -> Result<Self, StartError> {
        let data_dir = config.data_dir.clone();
        let engine = tokio::task::spawn_blocking(move || Engine::open(data_dir))
            .await
            .map_err(|e| StartError::Open(ApiError::internal(e.to_string())))?
            .map_err(StartError::Open)?;
        let engine = Arc::new(engine);
        let listener = TcpListener::bind(config.listen)
            .await
            .map_err(|e| StartError::Listen(config.listen, e))?;
        let address = listener
            .local_addr()
            .map_err(|e| StartError::Listen(config.listen, e))?;
        let auth = Arc::new(config.auth);
        let accept = tokio::spawn(accept_loop(listener, engine.clone(), auth));
        let refresher = tokio::spawn(refresh_loop(engine.clone()));
        Ok(Self {
            address,
            engine,
            accept,
            refresher,
        })
    }

    /// The address it listens on.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    /// The engine (for in-process use).
    pub fn engine(&self) -> &Arc<Engine> {
        &self.engine
    }

    /// Stops listening and commits every index.
    pub async fn stop(self) {
        self.accept.abort();
        self.refresher.abort();
        let engine = self.engine;
        let _ = tokio::task::spawn_blocking(move || engine.flush()).await;
    }
}

async fn refresh_loop(engine: Arc<Engine>) {
    let mut tick = tokio::time::interval(REFRESH_TICK);
    loop {
        tick.tick().await;
        let engine = engine.clone();
        let _ = tokio::task::spawn_blocking(move || engine.refresh_due()).await;
    }
}

async fn accept_loop(listener: TcpListener, engine: Arc<Engine>, auth: Arc<Auth>) {
    while let Ok((stream, _peer)) = listener.accept().await {
        let _ = stream.set_nodelay(true);
        let (engine, auth) = (engine.clone(), auth.clone());
        tokio::spawn(async move {
            let service = service_fn(move |request| {
                let (engine, auth) = (engine.clone(), auth.clone());
                async move { Ok::<_, Infallible>(serve(request, engine, auth).await) }
            });
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

fn respond(reply: Reply, pretty: bool) -> Response<Full<Bytes>> {
    let status = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let (content_type, body) = match reply.body {
        None => ("application/json; charset=UTF-8", Bytes::new()),
        Some(ReplyBody::Json(value)) => {
            let text = if pretty {
                serde_json::to_vec_pretty(&value)
            } else {
                serde_json::to_vec(&value)
            };
            (
                "application/json; charset=UTF-8",
                Bytes::from(text.unwrap_or_default()),
            )
        }
        Some(ReplyBody::Text(text)) => ("text/plain; charset=UTF-8", Bytes::from(text)),
    };
    let mut response = Response::new(Full::new(body));
    *response.status_mut() = status;
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static(content_type),
    );
    response
}

fn too_large(length: usize) -> Reply {
    Reply::error(&ApiError::new(
        413,
        "content_too_long_exception",
        format!("request body is [{length}] bytes or more, larger than http.max_content_length [{MAX_CONTENT_LENGTH}]"),
    ))
}

async fn serve(
    request: http::Request<Incoming>,
    engine: Arc<Engine>,
    auth: Arc<Auth>,
) -> Response<Full<Bytes>> {
    let (parts, body) = request.into_parts();
    let declared = parts
        .headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if let Some(length) = declared.filter(|l| *l > MAX_CONTENT_LENGTH) {
        return respond(too_large(length), false);
    }
    let body = match Limited::new(body, MAX_CONTENT_LENGTH).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => return respond(too_large(MAX_CONTENT_LENGTH + 1), false),
    };
    if let Some(encoding) = parts.headers.get(http::header::CONTENT_ENCODING) {
        let error = ApiError::illegal_argument(format!(
            "Content-Encoding [{}] is not served: send the body uncompressed",
            encoding.to_str().unwrap_or("?")
        ));
        return respond(Reply::error(&error), false);
    }
    let path_and_query = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "/".to_owned());
    if let Some(denied) = authenticate(
        &auth,
        parts.method.as_str(),
        &path_and_query,
        &parts.headers,
        &body,
    ) {
        return denied;
    }
    let path = percent_encoding::percent_decode_str(parts.uri.path())
        .decode_utf8_lossy()
        .into_owned();
    let params: Vec<(String, String)> = parts
        .uri
        .query()
        .map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
        .unwrap_or_default();
    let pretty = params.iter().any(|(k, v)| k == "pretty" && v != "false");
    let method = parts.method.as_str().to_owned();
    let reply = tokio::task::spawn_blocking(move || {
        api::handle(
            &engine,
            &Request {
                method: &method,
                path: &path,
                params,
                body: &body,
            },
        )
    })
    .await
    .unwrap_or_else(|e| Reply::error(&ApiError::internal(format!("request failed: {e}"))));
    respond(reply, pretty)
}

/// `None` when the caller may pass; otherwise the refusal.
fn authenticate(
    auth: &Auth,
    method: &str,
    path_and_query: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> Option<Response<Full<Bytes>>> {
    if auth.basic.is_none() && auth.sigv4.is_none() {
        return None;
    }
    let authorization = headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if let (Some((user, password)), Some(encoded)) =
        (&auth.basic, authorization.strip_prefix("Basic "))
    {
        let expected =
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        if encoded.trim() == expected {
            return None;
        }
    }
    if let Some(verifier) = &auth.sigv4 {
        if authorization.starts_with("AWS4-HMAC-SHA256") {
            return match verifier.verify(method, path_and_query, headers, body, SystemTime::now()) {
                Ok(sigv4_verify::Caller::Principal(_)) => None,
                Ok(sigv4_verify::Caller::Anonymous) => {
                    Some(sigv4_denied("Missing Authentication Token".into()))
                }
                Err(error) => Some(sigv4_denied(error.to_string())),
            };
        }
    }
    if auth.basic.is_some() {
        let mut response = Response::new(Full::new(Bytes::from_static(b"Unauthorized")));
        *response.status_mut() = StatusCode::UNAUTHORIZED;
        response.headers_mut().insert(
            http::header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"OpenSearch Security\""),
        );
        return Some(response);
    }
    Some(sigv4_denied("Missing Authentication Token".into()))
}

/// Amazon OpenSearch Service's refusal of a bad signature: 403 `{"message": …}`.
fn sigv4_denied(message: String) -> Response<Full<Bytes>> {
    let body = serde_json::to_vec(&json!({ "message": message })).unwrap_or_default();
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = StatusCode::FORBIDDEN;
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}
