//! The per-process telemetry pipeline: tracer provider, X-Ray exporter, and `tracing` subscriber.
//!
//! One [`Telemetry`] is built at cold start. Spans go through [`InvocationSpanProcessor`]: an
//! invocation's spans are exported together, synchronously, when its segment ends, as one nested
//! document on a non-blocking UDP socket. So every segment of an invocation has left the process
//! before the response is returned, which Lambda requires because it freezes the sandbox right
//! after, and it costs one datagram per request.

use std::sync::Arc;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry::KeyValue;
use opentelemetry_aws::detector::LambdaResourceDetector;
use opentelemetry_sdk::trace::{SdkTracer, SdkTracerProvider};
use opentelemetry_sdk::Resource;

use crate::daemon_address::{DaemonAddress, DAEMON_ADDRESS_ENV, DEFAULT_DAEMON_ADDRESS};
use crate::export::{DaemonSink, ExportStats, SegmentExporter, UdpDaemonSink};
use crate::processor::{InvocationSpanProcessor, OpenInvocations};
use crate::sampling::{RootPinningIdGenerator, XraySampler};
use crate::Error;

/// Lambda sets this to the function's name; segments are named after it.
pub const FUNCTION_NAME_ENV: &str = "AWS_LAMBDA_FUNCTION_NAME";
/// Fraction of traces this process starts itself (no header, no Lambda trace id, or `Sampled=?`).
pub const SAMPLING_RATIO_ENV: &str = "XRAY_SAMPLING_RATIO";

/// Telemetry settings, read once at cold start.
#[derive(Clone, Debug, PartialEq)]
pub struct TelemetryConfig {
    /// Segment name: the Lambda function name.
    pub service_name: String,
    /// Where the X-Ray daemon listens.
    pub daemon: DaemonAddress,
    /// Sampling ratio for traces this process decides itself.
    pub sampling_ratio: f64,
}

impl TelemetryConfig {
    /// Reads `AWS_LAMBDA_FUNCTION_NAME` (required), `AWS_XRAY_DAEMON_ADDRESS` (default
    /// 127.0.0.1:2000, the daemon's documented default) and `XRAY_SAMPLING_RATIO` (default 1).
    pub fn from_env() -> Result<Self, Error> {
        Self::from_lookup(|key| std::env::var(key).ok())
    }

    /// Same as [`Self::from_env`] over any lookup (tests pass a map).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, Error> {
        let service_name = lookup(FUNCTION_NAME_ENV)
            .filter(|name| !name.is_empty())
            .ok_or_else(|| Error::Config {
                variable: FUNCTION_NAME_ENV,
                reason: "must be set to the function name".to_owned(),
            })?;
        let daemon = lookup(DAEMON_ADDRESS_ENV)
            .unwrap_or_else(|| DEFAULT_DAEMON_ADDRESS.to_owned())
            .parse()?;
        let sampling_ratio = match lookup(SAMPLING_RATIO_ENV) {
            None => 1.0,
            Some(raw) => match raw.parse::<f64>() {
                Ok(ratio) if (0.0..=1.0).contains(&ratio) => ratio,
                _ => {
                    return Err(Error::Config {
                        variable: SAMPLING_RATIO_ENV,
                        reason: format!("{raw:?} is not a number between 0 and 1"),
                    })
                }
            },
        };
        Ok(Self {
            service_name,
            daemon,
            sampling_ratio,
        })
    }
}

/// The resource every segment carries: `service.name` (the segment name) plus the Lambda
/// detector's attributes; `cloud.platform = aws_lambda` gives origin `AWS::Lambda::Function`.
pub fn lambda_resource(service_name: &str) -> Resource {
    Resource::builder_empty()
        .with_detector(Box::new(LambdaResourceDetector))
        .with_attributes([
            KeyValue::new("service.name", service_name.to_owned()),
            KeyValue::new("cloud.provider", "aws"),
            KeyValue::new("cloud.platform", "aws_lambda"),
        ])
        .build()
}

/// Which `tracing` spans become subsegments: the handler's own (INFO and up), and the AWS SDK's
/// operation spans, which it opens at DEBUG (see [`crate::aws_call`]). Not the Lambda runtime's
/// per-invocation span: it has no trace context of ours, so it would start a stray trace.
pub fn trace_span_filter() -> tracing_subscriber::filter::Targets {
    use tracing_subscriber::filter::LevelFilter;
    crate::aws_call::SDK_OPERATION_SPAN_TARGETS.iter().fold(
        tracing_subscriber::filter::Targets::new()
            .with_default(LevelFilter::INFO)
            .with_target("lambda_runtime", LevelFilter::OFF),
        |filter, target| filter.with_target(*target, LevelFilter::DEBUG),
    )
}

/// The process-wide tracer and exporter.
#[derive(Clone, Debug)]
pub struct Telemetry {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    provider: SdkTracerProvider,
    tracer: SdkTracer,
    sampler: XraySampler,
    stats: Arc<ExportStats>,
    open: Arc<OpenInvocations>,
    service_name: String,
}

impl Telemetry {
    /// Builds the pipeline over any sink (tests use [`crate::MemorySink`]).
    pub fn with_sink(service_name: &str, sink: impl DaemonSink, sampling_ratio: f64) -> Self {
        let exporter = SegmentExporter::new(sink);
        let stats = exporter.stats();
        let sampler = XraySampler::new(sampling_ratio);
        let open = Arc::new(OpenInvocations::default());
        let provider = SdkTracerProvider::builder()
            .with_id_generator(RootPinningIdGenerator::default())
            .with_sampler(sampler.clone())
            .with_resource(lambda_resource(service_name))
            .with_span_processor(InvocationSpanProcessor::new(exporter, Arc::clone(&open)))
            .build();
        let tracer = provider.tracer("lattice-xray");
        Self {
            inner: Arc::new(Inner {
                provider,
                tracer,
                sampler,
                stats,
                open,
                service_name: service_name.to_owned(),
            }),
        }
    }

    /// Builds the pipeline that sends to the X-Ray daemon over UDP.
    pub fn from_config(config: &TelemetryConfig) -> Result<Self, Error> {
        let sink = UdpDaemonSink::connect(config.daemon.udp_socket_addr()?)
            .map_err(|e| Error::InvalidDaemonAddress(format!("{}: {e}", config.daemon)))?;
        Ok(Self::with_sink(
            &config.service_name,
            sink,
            config.sampling_ratio,
        ))
    }

    /// Installs the global `tracing` subscriber: JSON logs on stdout (CloudWatch Logs in Lambda)
    /// filtered by `RUST_LOG` (default `info`), and `tracing` spans exported as X-Ray subsegments
    /// (filtered by [`trace_span_filter`], not by `RUST_LOG`). Does nothing if a subscriber is
    /// already installed.
    pub fn install_subscriber(&self) {
        use tracing_subscriber::layer::SubscriberExt;
        use tracing_subscriber::util::SubscriberInitExt;
        use tracing_subscriber::Layer as _;
        let log_filter = tracing_subscriber::EnvFilter::try_from_default_env()
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
        let _ = tracing_subscriber::registry()
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .with_current_span(false)
                    .without_time()
                    .with_filter(log_filter),
            )
            .with(
                tracing_opentelemetry::layer()
                    .with_tracer(self.inner.tracer.clone())
                    .with_filter(trace_span_filter()),
            )
            .try_init();
    }

    /// The tracer that starts segments and subsegments.
    pub fn tracer(&self) -> &SdkTracer {
        &self.inner.tracer
    }

    /// Sampling for traces this process starts itself.
    pub fn sampler(&self) -> &XraySampler {
        &self.inner.sampler
    }

    /// Export counters (sent, failed, dropped).
    pub fn stats(&self) -> &ExportStats {
        &self.inner.stats
    }

    /// Invocations whose spans are being held until their segment ends.
    pub fn open_invocations(&self) -> &OpenInvocations {
        &self.inner.open
    }

    /// The segment name.
    pub fn service_name(&self) -> &str {
        &self.inner.service_name
    }

    /// Exports anything still held (spans of invocations that never finished).
    pub fn flush(&self) {
        let _ = self.inner.provider.force_flush();
    }
}
