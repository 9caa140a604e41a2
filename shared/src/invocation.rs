//! One invocation's server segment and the trace context policy that decides its parent.
//!
//! Policy (design.md, "Trace context policy"):
//! 1. `x-amzn-trace-id` with Root and Parent → continue that trace under the caller's subsegment.
//! 2. Root without Parent → keep the Root; our segment is a root of that trace.
//! 3. No usable header → parent under the Lambda function segment (`Context.xray_trace_id`).
//! 4. Nothing at all → a new trace.
//!
//! `Sampled=0` is honoured; `?` (or no decision) is decided here and answered in the response
//! header. When an upstream trace is continued, Lambda's own trace id is kept as metadata so the
//! two traces can be joined. The header's extras (Lineage, …) travel in the OpenTelemetry
//! `Context` as [`IncomingTrace`] so outgoing calls carry them on.

use std::borrow::Cow;
use std::time::SystemTime;

use http::{HeaderMap, Method, Uri};
use opentelemetry::trace::{
    Span, SpanContext, SpanKind, Status, TraceContextExt, TraceFlags, TraceState, Tracer,
};
use opentelemetry::{Context, KeyValue};

use crate::header::{Sampling, SegmentId, TraceHeader, XrayTraceId, TRACE_HEADER};
use crate::sampling::with_pinned_root;
use crate::telemetry::Telemetry;

/// Where an invocation's trace context came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ContextSource {
    /// The request's header had Root and Parent.
    Upstream,
    /// The request's header had a Root but no Parent.
    UpstreamRoot,
    /// No usable header; parented under Lambda's function segment.
    LambdaFunction,
    /// Nothing to continue; a new trace.
    NewTrace,
}

impl ContextSource {
    /// Name recorded in the segment's `xray_context` metadata.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Upstream => "upstream",
            Self::UpstreamRoot => "upstream_root",
            Self::LambdaFunction => "lambda_function",
            Self::NewTrace => "new_trace",
        }
    }
}

/// The trace header an invocation continues, kept in the `Context` for outgoing calls.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IncomingTrace {
    /// Extras to carry on (Lineage, …).
    pub extras: Vec<(String, String)>,
}

/// What a handler's response says about a failure, for the segment's `cause`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ErrorCause {
    /// Short machine-readable kind, e.g. `validation_failed`.
    pub kind: String,
    /// Human-readable message (what the response body says, never internal error text).
    pub message: String,
}

/// The request fields the server segment records.
#[derive(Clone, Copy, Debug)]
pub struct RequestInfo<'a> {
    /// HTTP method.
    pub method: &'a Method,
    /// Request URI (path and query; Lattice puts the service host in the `host` header).
    pub uri: &'a Uri,
    /// Request headers.
    pub headers: &'a HeaderMap,
    /// `Context.xray_trace_id` from the Lambda runtime, when tracing is active.
    pub lambda_trace_id: Option<&'a str>,
}

/// An invocation in progress: its context (current during the handler) and its server segment.
#[derive(Debug)]
pub struct Invocation {
    cx: Context,
    root: XrayTraceId,
    sampled: bool,
}

struct Decision {
    source: ContextSource,
    header: Option<TraceHeader>,
    rejected_header: Option<String>,
}

fn decide(info: &RequestInfo<'_>) -> Decision {
    let raw = info
        .headers
        .get(TRACE_HEADER)
        .map(|v| v.to_str().map_err(|_| "not visible ASCII".to_owned()));
    let mut rejected_header = None;
    if let Some(raw) = raw {
        let parsed = raw.and_then(|s| s.parse::<TraceHeader>().map_err(|e| e.to_string()));
        // A Root X-Ray would refuse (too old, too far ahead) cannot be continued: every document
        // of ours in it would be dropped. Treated like a header that does not parse.
        let parsed = parsed.and_then(|header| {
            if header.root.accepted_at(SystemTime::now()) {
                Ok(header)
            } else {
                Err(format!(
                    "Root {} is outside the time X-Ray accepts (older than 30 days or more than 5 minutes ahead)",
                    header.root
                ))
            }
        });
        match parsed {
            Ok(header) => {
                let source = if header.parent.is_some() {
                    ContextSource::Upstream
                } else {
                    ContextSource::UpstreamRoot
                };
                return Decision {
                    source,
                    header: Some(header),
                    rejected_header: None,
                };
            }
            Err(reason) => rejected_header = Some(reason),
        }
    }
    let lambda = info
        .lambda_trace_id
        .and_then(|id| id.parse::<TraceHeader>().ok())
        .filter(|h| h.parent.is_some());
    Decision {
        source: if lambda.is_some() {
            ContextSource::LambdaFunction
        } else {
            ContextSource::NewTrace
        },
        header: lambda,
        rejected_header,
    }
}

fn first_forwarded_for(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get("x-forwarded-for")?.to_str().ok()?;
    value
        .split(',')
        .next()
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

fn request_url(info: &RequestInfo<'_>) -> String {
    if info.uri.scheme().is_some() {
        return info.uri.to_string();
    }
    let header = |name: &str| info.headers.get(name).and_then(|v| v.to_str().ok());
    let scheme = header("x-forwarded-proto").unwrap_or("https");
    let host = header("host").or(info.uri.host()).unwrap_or("localhost");
    let path = info.uri.path_and_query().map_or("/", |p| p.as_str());
    format!("{scheme}://{host}{path}")
}

impl Invocation {
    /// Decides the context per the policy and starts the server segment.
    pub fn start(telemetry: &Telemetry, info: RequestInfo<'_>) -> Self {
        let decision = decide(&info);
        let tracer = telemetry.tracer();

        let mut attributes = vec![
            KeyValue::new("http.request.method", info.method.as_str().to_owned()),
            KeyValue::new("url.full", request_url(&info)),
        ];
        if let Some(client) = first_forwarded_for(info.headers) {
            attributes.push(KeyValue::new("client.address", client.to_owned()));
        }
        if let Some(agent) = info.headers.get(http::header::USER_AGENT) {
            if let Ok(agent) = agent.to_str() {
                attributes.push(KeyValue::new("user_agent.original", agent.to_owned()));
            }
        }
        let name = format!("{} {}", info.method, info.uri.path());
        let builder = tracer
            .span_builder(name)
            .with_kind(SpanKind::Server)
            .with_attributes(attributes);
        Self::begin(telemetry, builder, decision, info.lambda_trace_id)
    }

    /// Starts the segment of an invocation that is not an HTTP request (an event source such as
    /// Firehose, which carries no trace header): parented under Lambda's function segment when
    /// Lambda tracing is active (policy rule 3), otherwise a new trace (rule 4).
    pub fn start_event(telemetry: &Telemetry, name: &str, lambda_trace_id: Option<&str>) -> Self {
        let headers = HeaderMap::new();
        let info = RequestInfo {
            method: &Method::POST,
            uri: &Uri::from_static("/"),
            headers: &headers,
            lambda_trace_id,
        };
        let decision = decide(&info);
        let builder = telemetry
            .tracer()
            .span_builder(name.to_owned())
            .with_kind(SpanKind::Server);
        Self::begin(telemetry, builder, decision, lambda_trace_id)
    }

    fn begin(
        telemetry: &Telemetry,
        builder: opentelemetry::trace::SpanBuilder,
        decision: Decision,
        lambda_trace_id: Option<&str>,
    ) -> Self {
        let tracer = telemetry.tracer();
        let extras = decision
            .header
            .as_ref()
            .filter(|_| decision.source != ContextSource::LambdaFunction)
            .map(|h| h.extras.clone())
            .unwrap_or_default();

        // Upstream and LambdaFunction headers always carry a Parent (see `decide`); matching on
        // it keeps that a pattern rather than a panic.
        let span = match (&decision.header, decision.source) {
            (
                Some(
                    header @ TraceHeader {
                        parent: Some(parent),
                        ..
                    },
                ),
                ContextSource::Upstream | ContextSource::LambdaFunction,
            ) => {
                let sampled = match header.sampling {
                    Sampling::Sampled => true,
                    Sampling::NotSampled => false,
                    Sampling::Requested => {
                        telemetry.sampler().decide_new_trace(header.root.to_otel())
                    }
                };
                let remote = SpanContext::new(
                    header.root.to_otel(),
                    parent.to_otel(),
                    if sampled {
                        TraceFlags::SAMPLED
                    } else {
                        TraceFlags::default()
                    },
                    true,
                    TraceState::default(),
                );
                let parent_cx = Context::new().with_remote_span_context(remote);
                builder.start_with_context(tracer, &parent_cx)
            }
            (Some(header), _) => {
                let trace_id = header.root.to_otel();
                let sampled = match header.sampling {
                    Sampling::Sampled => true,
                    Sampling::NotSampled => false,
                    Sampling::Requested => telemetry.sampler().decide_new_trace(trace_id),
                };
                with_pinned_root(trace_id, sampled, || {
                    builder.start_with_context(tracer, &Context::new())
                })
            }
            (None, _) => builder.start_with_context(tracer, &Context::new()),
        };

        let span_context = span.span_context().clone();
        if span_context.is_sampled() {
            telemetry.open_invocations().begin(span_context.trace_id());
        }
        let invocation = Self {
            root: XrayTraceId::from_otel(span_context.trace_id()),
            sampled: span_context.is_sampled(),
            cx: Context::new()
                .with_span(span)
                .with_value(IncomingTrace { extras }),
        };

        let mut context_metadata = serde_json::json!({ "source": decision.source.as_str() });
        if let Some(reason) = decision.rejected_header {
            context_metadata["rejected_header"] = serde_json::Value::String(reason);
        }
        let _guard = invocation.cx.clone().attach();
        crate::record_metadata("xray_context", context_metadata);
        if matches!(
            decision.source,
            ContextSource::Upstream | ContextSource::UpstreamRoot
        ) {
            if let Some(lambda) = lambda_trace_id {
                crate::record_metadata("lambda", serde_json::json!({ "trace_id": lambda }));
            }
        }
        invocation
    }

    /// The context to make current while the handler runs.
    pub fn context(&self) -> &Context {
        &self.cx
    }

    /// This invocation's segment id.
    pub fn segment_id(&self) -> SegmentId {
        SegmentId::from_otel(self.cx.span().span_context().span_id())
    }

    /// The response's `x-amzn-trace-id`: the trace and the decision taken (`Sampled=?` answered).
    pub fn response_header(&self) -> String {
        format!(
            "Root={};Sampled={}",
            self.root,
            if self.sampled { "1" } else { "0" }
        )
    }

    /// Records the response and ends the segment, which exports it before this returns.
    /// 4xx marks the segment `error` (429 also `throttle`), 5xx marks it `fault`.
    pub fn finish(self, status: u16, content_length: Option<u64>, cause: Option<&ErrorCause>) {
        let span = self.cx.span();
        span.set_attribute(KeyValue::new(
            "http.response.status_code",
            i64::from(status),
        ));
        if let Some(length) = content_length {
            span.set_attribute(KeyValue::new(
                "http.response.body.size",
                i64::try_from(length).unwrap_or(i64::MAX),
            ));
            // The translator (like the ADOT Go exporter it follows) writes
            // `http.response.content_length` only when this marker accompanies the size.
            span.set_attribute(KeyValue::new("rpc.message.type", "RECEIVED"));
        }
        if status >= 400 {
            let message: Cow<'static, str> = cause
                .map(|c| Cow::Owned(c.message.clone()))
                .unwrap_or(Cow::Borrowed("request failed"));
            if let Some(cause) = cause {
                span.add_event(
                    "exception",
                    vec![
                        KeyValue::new("exception.type", cause.kind.clone()),
                        KeyValue::new("exception.message", cause.message.clone()),
                    ],
                );
            }
            span.set_status(Status::error(message));
        }
        span.end();
    }

    /// Ends an event invocation's segment ([`Self::start_event`]), marked `fault` with the cause
    /// when the invocation failed.
    pub fn finish_event(self, fault: Option<&ErrorCause>) {
        let span = self.cx.span();
        if let Some(cause) = fault {
            span.add_event(
                "exception",
                vec![
                    KeyValue::new("exception.type", cause.kind.clone()),
                    KeyValue::new("exception.message", cause.message.clone()),
                ],
            );
            span.set_status(Status::error(cause.message.clone()));
        }
        span.end();
    }
}
