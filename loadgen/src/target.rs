//! What loadgen sends orders to: a Lattice service URL, every request SigV4-signed for
//! `vpc-lattice-svcs` (the signing routine the services use, from `lattice_xray`), with
//! credentials from the standard AWS chain or, locally, the local stack's loadgen key.

use std::error::Error as _;
use std::time::{Duration, SystemTime};

use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use aws_smithy_runtime_api::client::identity::Identity;
use bytes::Bytes;
use lattice_xray::lattice_client::sign_for_lattice;
use local_stack::lattice::event::{Identity as CallerIdentity, LatticeEventV2, RequestContext};

use crate::stats::ErrorKind;

/// A failed send.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SendError {
    /// Its kind.
    pub kind: ErrorKind,
    /// What happened.
    pub detail: String,
}

/// A Lattice service endpoint.
#[derive(Clone, Debug)]
pub struct LatticeTarget {
    client: reqwest::Client,
    url: String,
    /// Parsed once: the request path signs `uri` and sends to `parsed` (no URL parsing per order).
    uri: http::Uri,
    parsed: reqwest::Url,
    host: String,
    credentials: Option<SharedCredentialsProvider>,
    region: String,
}

impl LatticeTarget {
    /// Orders POSTed to `url`, signed with `credentials` for `region` (unsigned when `None`:
    /// services with `AuthType: NONE`, and measuring loadgen itself).
    pub fn new(
        url: &str,
        credentials: Option<SharedCredentialsProvider>,
        region: &str,
        timeout: Duration,
        connections: usize,
    ) -> anyhow::Result<Self> {
        let parsed: http::Uri = url.parse()?;
        let host = parsed
            .authority()
            .ok_or_else(|| anyhow::anyhow!("{url}: no host"))?
            .as_str()
            .to_owned();
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(Duration::from_secs(3))
            .pool_max_idle_per_host(connections)
            .build()?;
        Ok(Self {
            client,
            url: url.to_owned(),
            uri: parsed.clone(),
            parsed: reqwest::Url::parse(url)?,
            host,
            credentials,
            region: region.to_owned(),
        })
    }

    /// The URL orders go to.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Signs and sends one order; the HTTP status, or why there was none.
    pub async fn send(&self, body: Bytes, trace_header: &str) -> Result<u16, SendError> {
        let signing_error = |detail: String| SendError {
            kind: ErrorKind::Other,
            detail,
        };
        // The head alone is signed (Lattice takes UNSIGNED-PAYLOAD), then sent with the body.
        let mut head = http::Request::builder()
            .method("POST")
            .uri(self.uri.clone())
            .header("host", &self.host)
            .header(
                http::header::CONTENT_TYPE,
                http::HeaderValue::from_static("application/json"),
            )
            .header(
                http::header::USER_AGENT,
                http::HeaderValue::from_static(concat!("loadgen/", env!("CARGO_PKG_VERSION"))),
            )
            .body(())
            .map_err(|e| signing_error(e.to_string()))?;
        if let Some(provider) = &self.credentials {
            let credentials = provider
                .provide_credentials()
                .await
                .map_err(|e| signing_error(format!("no credentials: {e}")))?;
            sign_for_lattice(
                &mut head,
                &Identity::from(credentials),
                &self.region,
                SystemTime::now(),
            )
            .map_err(|e| signing_error(e.to_string()))?;
        }
        if let Ok(value) = trace_header.parse() {
            head.headers_mut().insert("x-amzn-trace-id", value);
        }
        let mut request = reqwest::Request::new(reqwest::Method::POST, self.parsed.clone());
        *request.headers_mut() = head.into_parts().0.headers;
        *request.body_mut() = Some(body.into());
        let response = self.client.execute(request).await.map_err(classify)?;
        let status = response.status().as_u16();
        // Read the body so the connection is reused.
        response.bytes().await.map_err(classify)?;
        Ok(status)
    }
}

fn classify(error: reqwest::Error) -> SendError {
    let mut chain = error.to_string();
    let mut source = error.source();
    while let Some(inner) = source {
        chain.push_str(": ");
        chain.push_str(&inner.to_string());
        source = inner.source();
    }
    let lower = chain.to_ascii_lowercase();
    let kind = if error.is_timeout() {
        ErrorKind::Timeout
    } else if lower.contains("certificate") || lower.contains("tls") || lower.contains("handshake")
    {
        ErrorKind::Tls
    } else if error.is_connect() {
        ErrorKind::Connect
    } else {
        ErrorKind::Other
    };
    SendError {
        kind,
        detail: chain,
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
#[derive(Clone, Debug)]
pub enum Target {
    /// A Lattice service URL.
    Lattice(LatticeTarget),
    /// The order function invoked directly.
    Lambda(LambdaTarget),
}

impl Target {
    /// Sends one order.
    pub async fn send(&self, body: Bytes, trace_header: &str) -> Result<u16, SendError> {
        match self {
            Self::Lattice(t) => t.send(body, trace_header).await,
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
