//! The Firehose data-transformation Lambda of the traffic analytics: VPC Lattice access-log
//! entries in, one single-line OpenSearch document per Firehose record out.
//!
//! Firehose's contract (Firehose guide, "Required parameters for data transformation") is the
//! point of this crate: every input `recordId` is answered exactly once, in input order, as `Ok`,
//! `Dropped` or `ProcessingFailed`; a failed record keeps its original bytes; nothing a record
//! holds can fail the batch (that would send every record of it to `processing-failed/`); and the
//! response stays under Lambda's 6 MB synchronous payload limit.
//!
//! # Layout
//! - [`config`]: the environment (`SERVICE_NAMES`, and the test-only `TRANSFORM_FAULT`).
//! - [`decode`]: what a record's bytes are: a raw Lattice entry (the direct Lattice → Firehose
//!   path) or a gzip CloudWatch Logs envelope (a log group subscribed to the stream).
//! - [`normalise`]: one entry into the document the index template maps.
//! - [`batch`]: a whole event into Firehose's response, with the response-size guard.
//! - [`handler`]: the invocation: the batch, its X-Ray segment and the failure log lines.

pub mod batch;
pub mod config;
pub mod decode;
pub mod handler;
pub mod normalise;

pub use batch::{transform_batch, BatchCounts, BatchOutcome, RecordFailure, RESPONSE_LIMIT_BYTES};
pub use config::{ConfigError, Fault, ServiceNames, TransformConfig};
