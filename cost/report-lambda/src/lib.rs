//! The scheduled cost report (issue 17, `CostReport=true` in infra/aws/template.yaml): once a day
//! EventBridge invokes it; it reports on the UTC day before the event, with the same sources,
//! formulas and document as `loadgen cost --stack-map … --reconcile …`, then
//! - writes the `lattice-cost/2` document to S3, `reports/YYYY/MM/DD.json`;
//! - prints one CloudWatch embedded-metric-format (EMF) line per service with its cost per 1M
//!   requests, which CloudWatch Logs turns into metrics (no `PutMetricData` call, no permission).
//!
//! # Layout
//! - [`config`]: the function's environment.
//! - [`job`]: one report: the window, the sources, the document, the store, the metrics (pure
//!   logic behind the sources' traits and [`job::ReportStore`]).
//! - [`emf`]: the EMF lines.
//! - [`s3`]: [`job::ReportStore`] on S3.

pub mod config;
pub mod emf;
pub mod job;
pub mod s3;
