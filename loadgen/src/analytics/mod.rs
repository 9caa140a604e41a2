//! Traffic analytics: the questions the OpenSearch Dashboards saved objects
//! (`analytics/dashboards/lattice-access.ndjson`) ask of the `lattice-access-*` indices, asked by
//! loadgen itself and printed, against a local engine (`local-search`) or an Amazon OpenSearch
//! Service domain with the same code; and `--setup`, which installs what the indices need.
//!
//! Why it is here: Dashboards cannot run on a machine without AWS, and a run's check should read
//! the same answers a person reads on the dashboard. So the questions are data (request bodies
//! built by pure functions), the answers are typed (one serde schema for the text report, `--json`
//! and the HTML report), and the only thing that differs between a local engine and a domain is
//! how a request is authenticated.
//!
//! # Layout
//! - [`query`]: the time window, the bucket interval and every request body.
//! - [`answer`]: the typed answers and their parsers.
//! - [`client`]: HTTP, authentication (none, basic, SigV4 `es`) and errors from statuses.
//! - [`questions`]: the async calls: search, counts, the dashboard.
//! - [`setup`]: the index template and the Firehose writer role (`--setup`).
//! - [`render`]: the answers as text.
//! - [`command`]: `loadgen analytics` from its options.
//! - [`local_run`]: a `--local` run's check: one document per access-log line, the same counts.
//! - [`telemetry_run`]: a `--local --telemetry` run's check: one `platform.report` document per
//!   invocation, in the telemetry extension's `lambda-*` indices on the same engine.
//! - [`error`]: why a call failed ([`AnalyticsError`]).

pub mod answer;
pub mod client;
pub mod command;
pub mod error;
pub mod local_run;
pub mod query;
pub mod questions;
pub mod render;
pub mod setup;
pub mod telemetry_run;

pub use answer::DashboardAnswers;
pub use client::{AnalyticsClient, SearchAuth};
pub use command::run;
pub use error::AnalyticsError;
pub use query::{Interval, Window, INDEX_PATTERN};
pub use render::render_text;
