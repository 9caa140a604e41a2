//! VPC Lattice on loopback. So far: the access log record. Still to come (issue 3): listeners,
//! SigV4 verification, auth policies, V2 events, and metrics.
//!
//! # Layout
//! - [`access_log`]: one access-log entry, exactly as Lattice writes it.

pub mod access_log;
