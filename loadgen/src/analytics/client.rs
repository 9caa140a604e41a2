//! The HTTP side: one client for a local engine and an Amazon OpenSearch Service domain alike,
//! differing only in how requests are authenticated (none, HTTP basic, or SigV4 for `es` with the
//! payload's SHA-256 in `x-amz-content-sha256`, which OpenSearch Service requires on requests
//! with bodies), and one place (`judge`) that turns statuses and error bodies into
//! [`AnalyticsError`]s.
//!
//! It runs on hyper-util's pooled client over loadgen's TLS connector
//! ([`connection::connector`]): a handful of requests, where pooling costs nothing that matters.

use std::fmt;
use std::time::{Duration, SystemTime};

use aws_credential_types::provider::SharedCredentialsProvider;
use aws_smithy_runtime_api::client::identity::Identity;
use base64::Engine as _;
use bytes::Bytes;
use http::{header, HeaderValue, Method, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use lattice_xray::credentials::CachedCredentials;
use lattice_xray::signing::sign_for_opensearch;
use serde_json::Value;

use super::AnalyticsError;
use crate::connection::{self, error_chain, Connector};

/// How long one request may take unless told otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

const USER_AGENT: HeaderValue =
    HeaderValue::from_static(concat!("loadgen-analytics/", env!("CARGO_PKG_VERSION")));

/// How requests are authenticated.
#[derive(Clone)]
pub enum SearchAuth {
    /// Nothing (a local engine without auth).
    None,
    /// HTTP basic (the security plugin's internal users, or a local engine with `--basic-auth`).
    Basic {
        /// User.
        user: String,
        /// Password.
        password: String,
    },
    /// SigV4 for service `es`.
    SigV4 {
        /// Where credentials come from (cached until shortly before they expire).
        credentials: SharedCredentialsProvider,
        /// The domain's Region.
        region: String,
    },
}

/// The password stays out of logs.
impl fmt::Debug for SearchAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::None => f.write_str("None"),
            Self::Basic { user, .. } => write!(f, "Basic({user}:***)"),
            Self::SigV4 { region, .. } => write!(f, "SigV4({region})"),
        }
    }
}

#[derive(Debug)]
enum Signer {
    None,
    Basic(HeaderValue),
    SigV4 {
        credentials: CachedCredentials,
        region: String,
    },
}

/// A request body and its media type.
#[derive(Clone, Debug)]
pub(crate) enum Payload {
    None,
    Json(Bytes),
    Ndjson(Bytes),
}

impl Payload {
    fn bytes(&self) -> &[u8] {
        match self {
            Self::None => &[],
            Self::Json(bytes) | Self::Ndjson(bytes) => bytes,
        }
    }
}

/// A search endpoint and how to authenticate to it.
#[derive(Debug)]
pub struct AnalyticsClient {
    endpoint: String,
    http: Client<Connector, Full<Bytes>>,
    signer: Signer,
    timeout: Duration,
}

impl AnalyticsClient {
    /// A client for `endpoint` (`http(s)://HOST[:PORT]`, a path prefix allowed), each request
    /// limited to [`DEFAULT_TIMEOUT`].
    pub fn new(endpoint: &str, auth: SearchAuth) -> Result<Self, AnalyticsError> {
        let endpoint = endpoint.trim_end_matches('/').to_owned();
        let uri: http::Uri = endpoint
            .parse()
            .map_err(|_| AnalyticsError::BadEndpoint(endpoint.clone()))?;
        let scheme_ok = matches!(uri.scheme_str(), Some("http" | "https"));
        if !scheme_ok || uri.host().is_none() || uri.query().is_some() {
            return Err(AnalyticsError::BadEndpoint(endpoint));
        }
        let connector = connection::connector().map_err(|e| AnalyticsError::Transport {
            endpoint: endpoint.clone(),
            detail: format!("TLS setup: {e}"),
        })?;
        Ok(Self {
            http: Client::builder(TokioExecutor::new()).build(connector),
            signer: signer(auth),
            endpoint,
            timeout: DEFAULT_TIMEOUT,
        })
    }

    /// The same client with requests limited to `timeout`.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The endpoint, without a trailing `/`.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// Sends one request (path and query from the endpoint's root) and judges the answer:
    /// 2xx JSON, or the error its status and body say (`index` names a missing index).
    pub(crate) async fn call(
        &self,
        what: &str,
        method: Method,
        path: &str,
        payload: Payload,
        index: Option<&str>,
    ) -> Result<Value, AnalyticsError> {
        let mut request = build_request(&self.endpoint, method, path, &payload)?;
        self.authenticate(&mut request, payload.bytes()).await?;
        let answered = tokio::time::timeout(self.timeout, self.exchange(request)).await;
        let (status, body) = answered.map_err(|_| AnalyticsError::Timeout {
            endpoint: self.endpoint.clone(),
            after: self.timeout,
        })??;
        judge(what, index, status, &body)
    }

    async fn exchange(
        &self,
        request: http::Request<Full<Bytes>>,
    ) -> Result<(StatusCode, Bytes), AnalyticsError> {
        let response = self.http.request(request).await.map_err(|error| {
            let detail = error_chain(&error);
            let endpoint = self.endpoint.clone();
            if error.is_connect() {
                AnalyticsError::Unreachable { endpoint, detail }
            } else {
                AnalyticsError::Transport { endpoint, detail }
            }
        })?;
        let status = response.status();
        let body =
            response
                .into_body()
                .collect()
                .await
                .map_err(|error| AnalyticsError::Transport {
                    endpoint: self.endpoint.clone(),
                    detail: error_chain(&error),
                })?;
        Ok((status, body.to_bytes()))
    }

    async fn authenticate(
        &self,
        request: &mut http::Request<Full<Bytes>>,
        body: &[u8],
    ) -> Result<(), AnalyticsError> {
        match &self.signer {
            Signer::None => Ok(()),
            Signer::Basic(value) => {
                request
                    .headers_mut()
                    .insert(header::AUTHORIZATION, value.clone());
                Ok(())
            }
            Signer::SigV4 {
                credentials,
                region,
            } => {
                let credentials = credentials
                    .credentials()
                    .await
                    .map_err(|e| AnalyticsError::Signing(format!("no AWS credentials: {e}")))?;
                let identity = Identity::from(credentials);
                sign_for_opensearch(request, body, &identity, region, SystemTime::now())
                    .map_err(|e| AnalyticsError::Signing(e.to_string()))
            }
        }
    }
}

fn signer(auth: SearchAuth) -> Signer {
    match auth {
        SearchAuth::None => Signer::None,
        SearchAuth::Basic { user, password } => {
            let token =
                base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
            match HeaderValue::from_str(&format!("Basic {token}")) {
                Ok(mut value) => {
                    value.set_sensitive(true);
                    Signer::Basic(value)
                }
                // Base64 is always a valid header value.
                Err(_) => Signer::None,
            }
        }
        SearchAuth::SigV4 {
            credentials,
            region,
        } => Signer::SigV4 {
            credentials: CachedCredentials::new(credentials),
            region,
        },
    }
}

/// The request for `path` (origin form, from the endpoint's root) with `payload`, an explicit
/// `host` (the authority without a default port, as SigV4 canonicalises it) and media type.
pub(crate) fn build_request(
    endpoint: &str,
    method: Method,
    path: &str,
    payload: &Payload,
) -> Result<http::Request<Full<Bytes>>, AnalyticsError> {
    let url = format!("{endpoint}{path}");
    let uri: http::Uri = url
        .parse()
        .map_err(|_| AnalyticsError::BadEndpoint(url.clone()))?;
    let host = host_header(&uri).ok_or_else(|| AnalyticsError::BadEndpoint(url.clone()))?;
    let mut request = http::Request::new(Full::new(Bytes::copy_from_slice(payload.bytes())));
    *request.method_mut() = method;
    *request.uri_mut() = uri;
    let headers = request.headers_mut();
    headers.insert(header::HOST, host);
    headers.insert(header::USER_AGENT, USER_AGENT);
    headers.insert(header::ACCEPT, HeaderValue::from_static("application/json"));
    let media = match payload {
        Payload::None => None,
        Payload::Json(_) => Some("application/json"),
        Payload::Ndjson(_) => Some("application/x-ndjson"),
    };
    if let Some(media) = media {
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(media));
    }
    Ok(request)
}

fn host_header(uri: &http::Uri) -> Option<HeaderValue> {
    let host = uri.host()?;
    let default_port = match uri.scheme_str() {
        Some("https") => 443,
        _ => 80,
    };
    let text = match uri.port_u16() {
        Some(port) if port != default_port => format!("{host}:{port}"),
        _ => host.to_owned(),
    };
    HeaderValue::from_str(&text).ok()
}

/// The answer of `what`: a 2xx body's JSON, or the error its status and body say.
pub(crate) fn judge(
    what: &str,
    index: Option<&str>,
    status: StatusCode,
    body: &[u8],
) -> Result<Value, AnalyticsError> {
    if status.is_success() {
        return serde_json::from_slice(body).map_err(|e| AnalyticsError::BadAnswer {
            what: what.to_owned(),
            detail: format!("not JSON ({e})"),
        });
    }
    let reason = reason_of(status, body);
    Err(match (status.as_u16(), index) {
        (401, _) => AnalyticsError::Unauthorized { reason },
        (403, _) => AnalyticsError::Forbidden { reason },
        (404, Some(index)) if reason.starts_with("index_not_found_exception") => {
            AnalyticsError::IndexMissing {
                index: index.to_owned(),
                reason,
            }
        }
        (code, _) => AnalyticsError::Refused {
            what: what.to_owned(),
            status: code,
            reason,
        },
    })
}

/// Longest reason quoted from a body that is not OpenSearch's error JSON.
const REASON_LIMIT: usize = 300;

/// The reason an error body gives: OpenSearch's `error.type: error.reason`, Amazon OpenSearch
/// Service's `message`, or the text itself (shortened).
pub(crate) fn reason_of(status: StatusCode, body: &[u8]) -> String {
    if let Ok(json) = serde_json::from_slice::<Value>(body) {
        if let Some(reason) = opensearch_reason(&json) {
            return reason;
        }
    }
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.is_empty() {
        return status
            .canonical_reason()
            .unwrap_or("no reason given")
            .to_owned();
    }
    match text.char_indices().nth(REASON_LIMIT) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}

fn opensearch_reason(json: &Value) -> Option<String> {
    match json.get("error") {
        Some(Value::String(text)) => return Some(text.clone()),
        Some(error @ Value::Object(_)) => {
            let reason = error["reason"].as_str().unwrap_or("no reason given");
            return Some(match error["type"].as_str() {
                Some(kind) => format!("{kind}: {reason}"),
                None => reason.to_owned(),
            });
        }
        _ => {}
    }
    ["message", "Message"]
        .iter()
        .find_map(|key| json.get(*key).and_then(Value::as_str))
        .map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    use aws_credential_types::Credentials;
    use serde_json::json;
    use sigv4_verify::{Caller, PrincipalKey, SigningRules, Verifier};

    #[test]
    fn requests_carry_host_and_media_type() {
        let table = [
            (
                "https://search-x.us-east-1.es.amazonaws.com",
                "search-x.us-east-1.es.amazonaws.com",
            ),
            ("https://search-x.example:443", "search-x.example"),
            ("http://127.0.0.1:9200", "127.0.0.1:9200"),
            ("http://localhost:80", "localhost"),
        ];
        for (endpoint, host) in table {
            let payload = Payload::Json(Bytes::from_static(b"{}"));
            let request = build_request(endpoint, Method::POST, "/a/_search", &payload).unwrap();
            assert_eq!(request.headers()[header::HOST], host, "{endpoint}");
            assert_eq!(request.headers()[header::CONTENT_TYPE], "application/json");
            assert_eq!(request.uri().path(), "/a/_search");
        }
        let bulk = Payload::Ndjson(Bytes::from_static(b"{}\n"));
        let request = build_request("http://h", Method::POST, "/_bulk", &bulk).unwrap();
        assert_eq!(
            request.headers()[header::CONTENT_TYPE],
            "application/x-ndjson"
        );
        let get = build_request("http://h", Method::GET, "/", &Payload::None).unwrap();
        assert_eq!(get.headers().get(header::CONTENT_TYPE), None);
        assert!(build_request("http://h", Method::GET, "/a b", &Payload::None).is_err());
    }

    #[test]
    fn endpoints_must_be_http_urls() {
        for bad in ["search.example", "ftp://h", "https://", "http://h/?q=1", ""] {
            assert!(
                matches!(
                    AnalyticsClient::new(bad, SearchAuth::None),
                    Err(AnalyticsError::BadEndpoint(_))
                ),
                "{bad}"
            );
        }
        let client = AnalyticsClient::new("https://h.example/prefix/", SearchAuth::None).unwrap();
        assert_eq!(client.endpoint(), "https://h.example/prefix");
    }

    /// The signature is the one the local engine's verifier (the same rules as OpenSearch
    /// Service: payload hash checked against the body) accepts, and the hash is sent.
    #[test]
    fn signatures_cover_the_payload_hash() {
        let key = PrincipalKey {
            principal: "arn:aws:iam::111122223333:role/dashboards".into(),
            access_key_id: "AKIDANALYTICS0000001".into(),
            secret_access_key: "analytics-secret".into(),
        };
        let verifier = Verifier::new(
            HashMap::from([(key.access_key_id.clone(), key.clone())]),
            "eu-west-1",
            SigningRules::opensearch(),
        );
        let identity: Identity =
            Credentials::new(&key.access_key_id, &key.secret_access_key, None, None, "t").into();
        let body = b"{}";
        let payload = Payload::Json(Bytes::from_static(body));
        let endpoint = "https://search-d.eu-west-1.es.amazonaws.com";
        let mut request = build_request(
            endpoint,
            Method::POST,
            "/lattice-access-*/_search",
            &payload,
        )
        .unwrap();
        let now = SystemTime::now();
        sign_for_opensearch(&mut request, body, &identity, "eu-west-1", now).unwrap();
        assert_eq!(
            request.headers()["x-amz-content-sha256"],
            "44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
        );
        let authorization = request.headers()[header::AUTHORIZATION].to_str().unwrap();
        assert!(authorization.starts_with("AWS4-HMAC-SHA256 Credential=AKIDANALYTICS0000001/"));
        assert!(
            authorization.contains("/eu-west-1/es/aws4_request"),
            "{authorization}"
        );
        let path = request.uri().path_and_query().unwrap().as_str();
        let verified = verifier.verify("POST", path, request.headers(), body, now);
        assert_eq!(verified.unwrap(), Caller::Principal(key.principal.clone()));
        // Another body under the same signature is refused.
        assert!(verifier
            .verify("POST", path, request.headers(), b"{ }", now)
            .is_err());
    }

    #[test]
    fn statuses_and_bodies_become_errors() {
        let missing = json!({"error": {"root_cause": [], "type": "index_not_found_exception",
            "reason": "no such index [lattice-access-*]", "index": "lattice-access-*"}, "status": 404});
        let table: [(u16, Vec<u8>, Option<&str>, &str); 7] = [
            (401, b"Unauthorized".to_vec(), None,
                "the search endpoint refused the credentials (401): Unauthorized"),
            (403, br#"{"message":"The security token included in the request is invalid."}"#.to_vec(), None,
                "the search endpoint denied access (403): The security token included in the request is invalid."),
            (404, missing.to_string().into_bytes(), Some("lattice-access-*"),
                "no lattice-access-* index yet: index_not_found_exception: no such index [lattice-access-*]"),
            (404, missing.to_string().into_bytes(), None,
                "template: refused with 404: index_not_found_exception: no such index [lattice-access-*]"),
            (400, br#"{"error":{"type":"parsing_exception","reason":"Unknown aggregation type [x]"},"status":400}"#.to_vec(), None,
                "template: refused with 400: parsing_exception: Unknown aggregation type [x]"),
            (502, Vec::new(), None, "template: refused with 502: Bad Gateway"),
            (500, "é".repeat(400).into_bytes(), None, ""),
        ];
        for (status, body, index, shown) in table {
            let status = StatusCode::from_u16(status).unwrap();
            let error = judge("template", index, status, &body)
                .unwrap_err()
                .to_string();
            if shown.is_empty() {
                assert!(error.ends_with(&format!("{}…", "é".repeat(300))), "{error}");
            } else {
                assert_eq!(error, shown);
            }
        }
        assert_eq!(
            judge("x", None, StatusCode::OK, b"{\"a\":1}").unwrap(),
            json!({"a": 1})
        );
        let not_json = judge("x", None, StatusCode::OK, b"<html>").unwrap_err();
        assert!(
            not_json
                .to_string()
                .starts_with("x: unexpected answer: not JSON"),
            "{not_json}"
        );
    }

    #[test]
    fn basic_auth_is_encoded_and_hidden() {
        let auth = SearchAuth::Basic {
            user: "admin".into(),
            password: "secret".into(),
        };
        assert_eq!(format!("{auth:?}"), "Basic(admin:***)");
        let Signer::Basic(value) = signer(auth) else {
            panic!("basic")
        };
        assert_eq!(value, "Basic YWRtaW46c2VjcmV0");
        assert!(value.is_sensitive());
    }
}
