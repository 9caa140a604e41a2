//! X-Ray tracing for Rust Lambdas behind VPC Lattice.
//!
//! Lattice neither creates nor forwards X-Ray context, so every service must continue the trace
//! from the `X-Amzn-Trace-Id` header its caller sent, record its own segment, and inject the
//! header into the calls it makes. This crate does that on top of `tracing`,
//! `tracing-opentelemetry`, the OpenTelemetry SDK and `opentelemetry-aws` (id generator,
//! span→segment translator, Lambda resource detector). What those crates lack is written here and
//! named in the owning module's docs: Root-without-Parent continuation ([`sampling`]), header
//! extras kept verbatim ([`header`]), namespaced metadata and a sink that can send amended
//! documents ([`export`]).
//!
//! # Layout
//! - [`header`]: the `X-Amzn-Trace-Id` grammar (parse/print).
//! - [`daemon_address`]: `AWS_XRAY_DAEMON_ADDRESS` (both forms).
//! - [`sampling`]: trace-id pinning and the sampler that honours callers' decisions.
//! - [`export`]: spans → segment documents → UDP datagrams (or memory, in tests).
//! - [`processor`]: holds an invocation's spans until its segment ends, then exports them.
//! - [`telemetry`]: the per-process pipeline and `tracing` subscriber.
//! - [`invocation`]: the trace context policy and one request's server segment.
//! - [`annotation`]: typed annotations and namespaced metadata.
//! - [`lattice_client`]: SigV4-signed, traced calls to other Lattice services.
//! - [`signing`]: SigV4 for the HTTP APIs called by hand (Lattice, OpenSearch Service).
//! - `dynamodb` (feature `dynamodb`): traced DynamoDB clients and the services' table shape.
//! - [`clock`]: wall-clock time for stored records, injectable.
//! - [`aws_call`]: AWS SDK calls (DynamoDB) as `aws` subsegments, and how to read their failures.
//! - [`consumed_capacity`]: the DynamoDB units each call consumed, logged for the cost report.
//! - [`api`]: JSON bodies and error responses shared by the services.
//! - [`serve`]: running an [`Endpoint`] under `lambda_http` with all of the above.

pub mod annotation;
pub mod api;
pub mod aws_call;
pub mod clock;
pub mod consumed_capacity;
pub mod credentials;
pub mod daemon_address;
#[cfg(feature = "dynamodb")]
pub mod dynamodb;
mod error;
pub mod export;
pub mod header;
pub mod invocation;
pub mod lattice_client;
pub mod processor;
pub mod sampling;
pub mod serve;
pub mod signing;
pub mod simulation;
pub mod telemetry;
#[cfg(feature = "test-support")]
pub mod testing;

pub use annotation::{annotate, annotate_dynamic, keys, record_metadata, AnnotationKey};
pub use api::{json_response, read_json, ApiError};
pub use error::Error;
pub use export::{MemorySink, UdpDaemonSink};
pub use header::{TraceHeader, TRACE_HEADER};
pub use invocation::{ContextSource, ErrorCause, Invocation, RequestInfo};
pub use lattice_client::{LatticeClient, LatticeResponse, Timeouts};
pub use serve::{handle_traced, run, Endpoint};
pub use telemetry::{Telemetry, TelemetryConfig};

/// Re-exported so services and tests name the same types the crate uses.
pub use lambda_http;
