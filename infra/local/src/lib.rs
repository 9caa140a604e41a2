//! The embedded local stack: stand-ins for VPC Lattice, the Lambda service and X-Ray that run on
//! loopback, so the real service binaries and loadgen run unchanged with no AWS account.
//!
//! Start it all with [`stack::LocalStack::start`] (the `local-stack up` binary does) or use the
//! parts on their own.
//!
//! # Layout
//! - [`xray`]: what the X-Ray daemon and service do with segment documents.
//! - [`lambda`]: the Runtime API and execution environments running the real binaries.
//! - [`lattice`]: VPC Lattice: listeners, SigV4, auth policies, V2 events, access logs, metrics.
//! - [`dynamodb`]: the DynamoDB server (embedded dynoxide, or external), tables and stock.
//! - [`firehose`]: the delivery stream the access log is subscribed to: the real transform
//!   binary as processor, the search engine as destination, a folder as the S3 backup.
//! - [`search`]: the search engine (`local-search`, OpenSearch's REST API) the analytics use.
//! - [`stack`]: everything wired together, and the state file other processes read.
//! - [`binaries`]: finding (and building) the service binaries.
//! - [`layers`]: layer directories of extensions (the telemetry extension's).
//! - [`http_server`]: the accept loop every local HTTP endpoint runs.
//! - [`json_lines`]: the append-only files the stack writes its records to.

pub mod binaries;
#[cfg(feature = "stack")]
pub mod cli;
#[cfg(feature = "stack")]
pub mod dynamodb;
#[cfg(feature = "stack")]
pub mod firehose;
pub mod http_server;
pub mod json_lines;
pub mod lambda;
pub mod lattice;
pub mod layers;
#[cfg(feature = "stack")]
pub mod search;
#[cfg(feature = "stack")]
pub mod stack;
pub mod xray;
