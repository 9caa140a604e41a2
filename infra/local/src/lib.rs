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
//! - [`stack`]: everything wired together, and the state file other processes read.
//! - [`binaries`]: finding (and building) the service binaries.
//! - [`http_server`]: the accept loop every local HTTP endpoint runs.
//! - [`json_lines`]: the append-only files the stack writes its records to.

pub mod binaries;
pub mod cli;
pub mod dynamodb;
pub mod http_server;
pub mod json_lines;
pub mod lambda;
pub mod lattice;
pub mod stack;
pub mod xray;
