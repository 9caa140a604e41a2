//! Service-to-service calls through VPC Lattice: SigV4-signed, traced, with timeouts.
//!
//! Each call is an X-Ray subsegment (namespace `remote`, named after the called service) whose id
//! becomes the `Parent` of the outgoing `X-Amzn-Trace-Id`, so the callee's segment hangs under it
//! and the service map draws an edge. Signing follows Lattice's IAM auth rules: signing name
//! `vpc-lattice-svcs`, and `x-amz-content-sha256: UNSIGNED-PAYLOAD` because Lattice does not
//! support payload signing. The trace header is added after signing (SigV4 excludes
//! `x-amzn-trace-id` anyway), so it never invalidates a signature.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use aws_smithy_runtime_api::client::identity::Identity;
use bytes::Bytes;
use http::{header, HeaderValue, Method};
use opentelemetry::trace::{Span, SpanKind, Status, Tracer};
use opentelemetry::{Context, KeyValue};
use opentelemetry_sdk::trace::SdkTracer;

use crate::credentials::CachedCredentials;
use crate::header::{SegmentId, TraceHeader, XrayTraceId, TRACE_HEADER};
use crate::invocation::IncomingTrace;
use crate::signing::{sign_request, SignedPayload};
use crate::Error;

/// SigV4 signing name of the Lattice data plane.
pub const SIGNING_NAME: &str = crate::signing::LATTICE_SIGNING_NAME;
/// The payload hash Lattice requires.
pub const UNSIGNED_PAYLOAD: &str = "UNSIGNED-PAYLOAD";

/// Source of the signing time (injected so signatures are reproducible in tests).
pub trait SigningClock: Send + Sync + fmt::Debug {
    /// Now.
    fn now(&self) -> SystemTime;
}

/// The system clock.
#[derive(Debug, Default)]
pub struct SystemClock;

impl SigningClock for SystemClock {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }
}

/// Connect and whole-request timeouts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timeouts {
    /// TCP (and TLS) connect.
    pub connect: Duration,
    /// From send to the last byte of the response.
    pub request: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            connect: Duration::from_secs(1),
            request: Duration::from_secs(3),
        }
    }
}

/// An HTTP answer from a Lattice service (any status: statuses are the caller's to interpret).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LatticeResponse {
    /// HTTP status.
    pub status: u16,
    /// Body bytes.
    pub body: Bytes,
}

/// A signed, traced HTTP client for Lattice services.
#[derive(Clone, Debug)]
pub struct LatticeClient {
    http: reqwest::Client,
    credentials: SharedCredentialsProvider,
    region: String,
    tracer: SdkTracer,
    clock: Arc<dyn SigningClock>,
}

impl LatticeClient {
    /// A client signing with `credentials` (cached: see [`CachedCredentials`]) for `region`.
    pub fn new(
        tracer: SdkTracer,
        credentials: impl ProvideCredentials + 'static,
        region: impl Into<String>,
        timeouts: Timeouts,
    ) -> Result<Self, Error> {
        let http = reqwest::Client::builder()
            .connect_timeout(timeouts.connect)
            .timeout(timeouts.request)
            .pool_idle_timeout(Duration::from_secs(30))
            .build()
            .map_err(|e| Error::Config {
                variable: "http client",
                reason: e.to_string(),
            })?;
        Ok(Self {
            http,
            credentials: SharedCredentialsProvider::new(CachedCredentials::new(credentials)),
            region: region.into(),
            tracer,
            clock: Arc::new(SystemClock),
        })
    }

    /// A client with credentials and region from the standard AWS chain (environment in Lambda).
    pub async fn from_aws_config(tracer: SdkTracer, timeouts: Timeouts) -> Result<Self, Error> {
        let config = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
        let credentials = config.credentials_provider().ok_or(Error::Config {
            variable: "AWS credentials",
            reason: "no credentials provider in the AWS config chain".to_owned(),
        })?;
        let region = config.region().ok_or(Error::Config {
            variable: "AWS_REGION",
            reason: "no region in the AWS config chain".to_owned(),
        })?;
        Self::new(tracer, credentials, region.to_string(), timeouts)
    }

    /// Replaces the signing clock.
    pub fn with_clock(mut self, clock: Arc<dyn SigningClock>) -> Self {
        self.clock = clock;
        self
    }

    /// POSTs `body` as JSON to `url` on the Lattice service `service`, as a subsegment of the
    /// current context.
    pub async fn post_json(
        &self,
        service: &str,
        url: &str,
        body: Bytes,
    ) -> Result<LatticeResponse, Error> {
        let call = CallSegment::start(&self.tracer, service, "POST", url);
        let result = self.send(service, url, body, call.trace_header()).await;
        match &result {
            Ok(response) => call.answered(response.status),
            Err(error) => call.failed(error),
        }
        result
    }

    async fn send(
        &self,
        service: &str,
        url: &str,
        body: Bytes,
        trace_header: Option<&str>,
    ) -> Result<LatticeResponse, Error> {
        let mut request = http::Request::builder()
            .method(Method::POST)
            .uri(url)
            .header(header::CONTENT_TYPE, "application/json")
            .body(body)
            .map_err(|e| Error::InvalidUrl(format!("{url}: {e}")))?;
        if let Some(host) = request.uri().authority().map(|a| a.as_str().to_owned()) {
            let value = HeaderValue::from_str(&host)
                .map_err(|e| Error::InvalidUrl(format!("{url}: {e}")))?;
            request.headers_mut().insert(header::HOST, value);
        } else {
            return Err(Error::InvalidUrl(format!("{url}: no host")));
        }
        self.sign(&mut request).await?;
        if let Some(trace_header) = trace_header {
            if let Ok(value) = HeaderValue::from_str(trace_header) {
                request.headers_mut().insert(TRACE_HEADER, value);
            }
        }
        let request = reqwest::Request::try_from(request)
            .map_err(|e| Error::InvalidUrl(format!("{url}: {e}")))?;
        let response = self
            .http
            .execute(request)
            .await
            .map_err(|e| transport_error(service, &e))?;
        let status = response.status().as_u16();
        let body = response
            .bytes()
            .await
            .map_err(|e| transport_error(service, &e))?;
        Ok(LatticeResponse { status, body })
    }

    /// Adds SigV4 headers for Lattice to `request` (which must already carry its `host`).
    pub async fn sign(&self, request: &mut http::Request<Bytes>) -> Result<(), Error> {
        let credentials = self
            .credentials
            .provide_credentials()
            .await
            .map_err(|e| Error::Signing(format!("no credentials: {e}")))?;
        sign_for_lattice(
            request,
            &Identity::from(credentials),
            &self.region,
            self.clock.now(),
        )
    }
}

/// Signs `request` for a Lattice service in `region` at `time`, as Lattice's IAM auth requires
/// (signing name `vpc-lattice-svcs`, `x-amz-content-sha256: UNSIGNED-PAYLOAD`). The request must
/// already carry its `host`. Shared by [`LatticeClient`] and anything else calling Lattice
/// (loadgen, tests).
pub fn sign_for_lattice<B>(
    request: &mut http::Request<B>,
    identity: &Identity,
    region: &str,
    time: SystemTime,
) -> Result<(), Error> {
    sign_request(
        request,
        identity,
        region,
        SIGNING_NAME,
        SignedPayload::Unsigned,
        time,
    )
}

/// One downstream call's subsegment and the trace header that points at it.
#[derive(Debug)]
pub struct CallSegment {
    span: opentelemetry_sdk::trace::Span,
    header: Option<String>,
}

impl CallSegment {
    /// Starts a `remote` subsegment named `service` under the current context.
    pub fn start(tracer: &SdkTracer, service: &str, method: &'static str, url: &str) -> Self {
        let parent_cx = Context::current();
        let span = tracer
            .span_builder(service.to_owned())
            .with_kind(SpanKind::Client)
            .with_attributes([
                KeyValue::new("peer.service", service.to_owned()),
                KeyValue::new("http.request.method", method),
                KeyValue::new("url.full", url.to_owned()),
            ])
            .start_with_context(tracer, &parent_cx);
        let header = outgoing_header(&parent_cx, &span);
        Self { span, header }
    }

    /// The `X-Amzn-Trace-Id` value to send (`Parent` = this subsegment).
    pub fn trace_header(&self) -> Option<&str> {
        self.header.as_deref()
    }

    /// Ends the subsegment with the peer's status (4xx → error, 5xx → fault).
    pub fn answered(mut self, status: u16) {
        self.span.set_attribute(KeyValue::new(
            "http.response.status_code",
            i64::from(status),
        ));
        if status >= 400 {
            self.span
                .set_status(Status::error(format!("answered {status}")));
        }
        self.span.end();
    }

    /// Ends the subsegment as a fault with the error as its cause.
    pub fn failed(mut self, error: &Error) {
        self.span.add_event(
            "exception",
            vec![
                KeyValue::new("exception.type", error.kind()),
                KeyValue::new("exception.message", error.to_string()),
            ],
        );
        self.span.set_status(Status::error(error.to_string()));
        self.span.end();
    }
}

/// The header for a call made as `span` under `parent_cx`: same Root, Parent = the subsegment,
/// the settled sampling decision, and the incoming extras.
fn outgoing_header(parent_cx: &Context, span: &impl Span) -> Option<String> {
    let span_context = span.span_context();
    if !span_context.is_valid() {
        return None;
    }
    let extras = parent_cx
        .get::<IncomingTrace>()
        .map(|incoming| incoming.extras.clone())
        .unwrap_or_default();
    let header = TraceHeader {
        root: XrayTraceId::from_otel(span_context.trace_id()),
        parent: None,
        sampling: crate::header::Sampling::Requested,
        extras,
    };
    Some(
        header
            .for_child(
                SegmentId::from_otel(span_context.span_id()),
                span_context.is_sampled(),
            )
            .to_string(),
    )
}

fn transport_error(service: &str, error: &reqwest::Error) -> Error {
    if error.is_timeout() {
        Error::Timeout {
            service: service.to_owned(),
        }
    } else {
        // The source chain says what failed (refused, DNS, TLS); keep it for logs and the trace.
        let mut detail = error.to_string();
        let mut source = std::error::Error::source(error);
        while let Some(inner) = source {
            detail = format!("{detail}: {inner}");
            source = inner.source();
        }
        Error::Transport {
            service: service.to_owned(),
            detail,
        }
    }
}
