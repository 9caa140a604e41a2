//! One HTTP call to OpenSearch, behind the [`Backend`] trait so the dispatch logic is tested
//! against scripted answers and the real client against a real engine. [`HttpBackend`] is
//! reqwest with the request built as an `http::Request` first, so [`Auth`] can sign exactly the
//! bytes sent. Every call is bounded by the caller's remaining budget, the authentication (a
//! Secrets Manager fetch) included.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{header, HeaderValue, Method, Uri};

use crate::auth::{Auth, AuthError, BoxFuture};
use crate::say::OnceLog;

/// An answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reply {
    /// The HTTP status.
    pub status: u16,
    /// The body.
    pub body: Bytes,
}

/// Why a call got no answer. Every kind is worth another try later.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BackendError {
    /// No answer within the budget.
    #[error("no answer in time")]
    Timeout,
    /// No connection.
    #[error("unreachable: {0}")]
    Unreachable(String),
    /// The connection failed during the exchange.
    #[error("transport: {0}")]
    Transport(String),
    /// Authentication could not be prepared.
    #[error("authentication: {0}")]
    Auth(#[from] AuthError),
    /// The endpoint and path do not form a URL.
    #[error("bad URL: {0}")]
    BadUrl(String),
}

impl BackendError {
    /// A short name of the kind, for once-per-kind lines.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Timeout => "timeout",
            Self::Unreachable(_) => "unreachable",
            Self::Transport(_) => "transport",
            Self::Auth(_) => "auth",
            Self::BadUrl(_) => "bad url",
        }
    }
}

/// A body with its media type.
#[derive(Clone, Debug)]
pub struct Payload {
    /// `Content-Type`.
    pub content_type: &'static str,
    /// The bytes.
    pub bytes: Bytes,
}

/// Something that answers OpenSearch API calls.
pub trait Backend: Send + Sync {
    /// `method path` with `payload`, answered within `timeout`.
    fn call<'a>(
        &'a self,
        method: Method,
        path: &'a str,
        payload: Option<Payload>,
        timeout: Duration,
    ) -> BoxFuture<'a, Result<Reply, BackendError>>;
}

/// `backend.call(…)`, bounded by `budget` whatever the backend does with its timeout.
pub async fn call_within(
    backend: &dyn Backend,
    method: Method,
    path: &str,
    payload: Option<Payload>,
    budget: Duration,
) -> Result<Reply, BackendError> {
    tokio::time::timeout(budget, backend.call(method, path, payload, budget))
        .await
        .unwrap_or(Err(BackendError::Timeout))
}

/// OpenSearch over HTTP(S).
pub struct HttpBackend {
    endpoint: String,
    http: reqwest::Client,
    auth: Auth,
    log: Arc<OnceLog>,
}

impl HttpBackend {
    /// Calls to `endpoint` (no trailing `/`), authenticated by `auth`.
    pub fn new(endpoint: impl Into<String>, auth: Auth, log: Arc<OnceLog>) -> Result<Self, String> {
        let http = reqwest::Client::builder()
            // Lambda freezes the environment between invocations; a connection idle longer than
            // the domain keeps it would fail the next flush's first call.
            .pool_idle_timeout(Duration::from_secs(20))
            .build()
            .map_err(|e| e.to_string())?;
        Ok(Self {
            endpoint: endpoint.into().trim_end_matches('/').to_owned(),
            http,
            auth,
            log,
        })
    }

    async fn exchange(
        &self,
        method: Method,
        path: &str,
        payload: Option<Payload>,
    ) -> Result<Reply, BackendError> {
        let mut request = build_request(&self.endpoint, method, path, payload)?;
        self.auth.apply(&mut request, &self.log).await?;
        let request =
            reqwest::Request::try_from(request).map_err(|e| BackendError::BadUrl(e.to_string()))?;
        let response = self.http.execute(request).await.map_err(transport_error)?;
        let status = response.status().as_u16();
        let body = response.bytes().await.map_err(transport_error)?;
        Ok(Reply { status, body })
    }
}

impl Backend for HttpBackend {
    fn call<'a>(
        &'a self,
        method: Method,
        path: &'a str,
        payload: Option<Payload>,
        timeout: Duration,
    ) -> BoxFuture<'a, Result<Reply, BackendError>> {
        Box::pin(async move {
            tokio::time::timeout(timeout, self.exchange(method, path, payload))
                .await
                .unwrap_or(Err(BackendError::Timeout))
        })
    }
}

/// The request for `path` on `endpoint`, with an explicit `host` (SigV4 signs it) and the body.
pub fn build_request(
    endpoint: &str,
    method: Method,
    path: &str,
    payload: Option<Payload>,
) -> Result<http::Request<Bytes>, BackendError> {
    let url = format!("{endpoint}{path}");
    let uri: Uri = url.parse().map_err(|_| BackendError::BadUrl(url.clone()))?;
    let host = host_header(&uri).ok_or_else(|| BackendError::BadUrl(url.clone()))?;
    let (content_type, body) = match payload {
        Some(payload) => (Some(payload.content_type), payload.bytes),
        None => (None, Bytes::new()),
    };
    let mut request = http::Request::new(body);
    *request.method_mut() = method;
    *request.uri_mut() = uri;
    let headers = request.headers_mut();
    headers.insert(header::HOST, host);
    headers.insert(header::ACCEPT, HeaderValue::from_static("application/json"));
    if let Some(content_type) = content_type {
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    }
    Ok(request)
}

/// `host[:port]`, without the scheme's default port (as SigV4 canonicalises the host).
fn host_header(uri: &Uri) -> Option<HeaderValue> {
    let host = uri.host()?;
    let default_port = match uri.scheme_str() {
        Some("https") => 443,
        _ => 80,
    };
    let value = match uri.port_u16() {
        Some(port) if port != default_port => format!("{host}:{port}"),
        _ => host.to_owned(),
    };
    HeaderValue::from_str(&value).ok()
}

fn transport_error(error: reqwest::Error) -> BackendError {
    let mut detail = error.to_string();
    let mut source = std::error::Error::source(&error);
    while let Some(cause) = source {
        detail.push_str(": ");
        detail.push_str(&cause.to_string());
        source = cause.source();
    }
    if error.is_timeout() {
        BackendError::Timeout
    } else if error.is_connect() {
        BackendError::Unreachable(detail)
    } else {
        BackendError::Transport(detail)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_carry_host_without_the_default_port_and_the_media_type() {
        let payload = Payload {
            content_type: "application/x-ndjson",
            bytes: Bytes::from_static(b"x\n"),
        };
        let request = build_request(
            "https://search-x.us-east-1.es.amazonaws.com:443",
            Method::POST,
            "/_bulk",
            Some(payload),
        )
        .unwrap();
        assert_eq!(
            request.headers()[header::HOST],
            "search-x.us-east-1.es.amazonaws.com"
        );
        assert_eq!(
            request.headers()[header::CONTENT_TYPE],
            "application/x-ndjson"
        );
        assert_eq!(request.uri().path(), "/_bulk");
        let local = build_request(
            "http://127.0.0.1:9200",
            Method::GET,
            "/_index_template/t",
            None,
        )
        .unwrap();
        assert_eq!(local.headers()[header::HOST], "127.0.0.1:9200");
        assert!(!local.headers().contains_key(header::CONTENT_TYPE));
        assert!(matches!(
            build_request("not a url", Method::GET, "/", None),
            Err(BackendError::BadUrl(_))
        ));
    }
}
