//! What loadgen sends orders to: a Lattice service URL, every request SigV4-signed for
//! `vpc-lattice-svcs` (the signing routine the services use, from `lattice_xray`), with
//! credentials from the standard AWS chain or, locally, the local stack's loadgen key.

use std::error::Error as _;
use std::time::{Duration, SystemTime};

use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use aws_smithy_runtime_api::client::identity::Identity;
use bytes::Bytes;
use lattice_xray::lattice_client::sign_for_lattice;

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
        let mut request = http::Request::builder()
            .method("POST")
            .uri(&self.url)
            .header("host", &self.host)
            .header("content-type", "application/json")
            .header("user-agent", concat!("loadgen/", env!("CARGO_PKG_VERSION")))
            .body(body)
            .map_err(|e| signing_error(e.to_string()))?;
        if let Some(provider) = &self.credentials {
            let credentials = provider
                .provide_credentials()
                .await
                .map_err(|e| signing_error(format!("no credentials: {e}")))?;
            sign_for_lattice(
                &mut request,
                &Identity::from(credentials),
                &self.region,
                SystemTime::now(),
            )
            .map_err(|e| signing_error(e.to_string()))?;
        }
        if let Ok(value) = trace_header.parse() {
            request.headers_mut().insert("x-amzn-trace-id", value);
        }
        let request =
            reqwest::Request::try_from(request).map_err(|e| signing_error(e.to_string()))?;
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
