//! The embedded local stack: stand-ins for VPC Lattice, the Lambda service and X-Ray that run on
//! loopback, so the real service binaries and loadgen run unchanged with no AWS account.
//!
//! Built so far: the X-Ray side — the daemon's datagram format and document validation, the trace
//! store, the UDP daemon, and the rest-json API. Also the Lambda service (Runtime API, environments, facade
//! segments). Still to come (issue 3): the Lattice proxy and the `up` binary.
//!
//! # Layout
//! - [`xray`]: what the X-Ray daemon and service do with segment documents.
//! - [`lambda`]: the Runtime API and execution environments running the real binaries.
//! - [`lattice`]: VPC Lattice (so far its access-log record).
//! - [`binaries`]: finding (and building) the service binaries.

pub mod binaries;
pub mod lambda;
pub mod lattice;
pub mod xray;
