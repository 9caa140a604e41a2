//! A Lambda external extension that ships the function's telemetry (platform, function and
//! extension records of the Telemetry API) to OpenSearch over `_bulk`, without ever slowing the
//! function or failing it: flushes run beside the function, never in front of the extension's
//! `next`, so a slow or down backend costs the invocation nothing.
//!
//! The design answers the defects of the Python OpenSearch telemetry sample and the limits of the
//! `lambda-extension` crate (see `shared/facts/telemetry-api.md`): the crate is used for register
//! and next only; the Telemetry API subscription (schema 2022-12-13) and the listener are ours, so
//! an unknown record type never rejects a batch and a POST is answered before it is parsed.
//! Nothing is called before registration; the OpenSearch credentials are fetched on the first
//! flush; every document has a deterministic `_id`, so re-deliveries and retries never duplicate.
//!
//! # Layout
//! - [`config`]: the environment (`URL`, `DISPATCH_MIN_BATCH_SIZE`, the index names, …), invalid
//!   values falling back to defaults with one line each.
//! - [`say`]: everything printed: the `[opensearch-telemetry]` prefix and once-per-kind lines.
//! - [`counters`]: the counts of the shutdown summary.
//! - [`queue`]: the byte-bounded inbox between the listener and the processing.
//! - [`listener`]: the HTTP server Lambda POSTs telemetry to (port 4243), and where it binds.
//! - [`subscribe`]: the Telemetry API subscription call.
//! - [`records`]: a POST body into records, and lenient typed views of the ones we index.
//! - [`ids`]: canonical JSON and the deterministic `_id`.
//! - [`documents`]: one record into one OpenSearch document (index, `_id`, source).
//! - [`pending`]: documents waiting to be shipped, bounded by `QUEUE_MAX_EVENTS`.
//! - [`intake`]: queued POSTs through records and documents into [`pending`].
//! - [`templates`]: the three index templates and their installation.
//! - [`auth`]: SigV4 (`es`) or HTTP basic from a Secrets Manager secret.
//! - [`backend`]: one HTTP call to OpenSearch, behind a trait so tests fake it.
//! - [`bulk`]: the `_bulk` body and what its answer means for each document.
//! - [`dispatch`]: one flush: retries with full-jitter backoff inside a deadline, and the breaker.
//! - [`shipper`]: the background task INVOKE-time flushes run in, one at a time.
//! - [`shutdown`]: the time budgets and the wait for the last report.
//! - [`extension`]: the events processor: what INVOKE and SHUTDOWN do.
//! - [`startup`]: the order of the init steps, for `main`.

pub mod auth;
pub mod backend;
pub mod bulk;
pub mod config;
pub mod counters;
pub mod dispatch;
pub mod documents;
pub mod extension;
pub mod ids;
pub mod intake;
pub mod listener;
pub mod pending;
pub mod queue;
pub mod records;
pub mod say;
pub mod shipper;
pub mod shutdown;
pub mod startup;
pub mod subscribe;
pub mod templates;

pub use config::Config;
pub use counters::{Counters, Summary};
pub use extension::TelemetryExtension;
