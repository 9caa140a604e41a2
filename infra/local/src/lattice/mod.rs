//! VPC Lattice on loopback: one service network whose services each listen on their own port and
//! forward to a LAMBDA target group (V2 events), with SigV4 auth, auth policies, access logs and
//! `AWS/VpcLattice` metrics.
//!
//! # Layout
//! - [`network`]: ids and ARNs of the network, services, listeners and target groups.
//! - [`credentials`]: the local key store (access key → principal).
//! - signature verification: the `sigv4-verify` crate (shared with the search engine).
//! - [`policy`]: auth policies and Lattice's three-policy decision.
//! - [`event`]: the V2 event and the function's response.
//! - [`access_log`]: the access-log record and its writer.
//! - [`metrics`]: per-minute metrics as Embedded Metric Format lines.
//! - [`proxy`]: the listeners tying it together.

pub mod access_log;
pub mod credentials;
pub mod event;
pub mod metrics;
pub mod network;
pub mod policy;
pub mod proxy;
