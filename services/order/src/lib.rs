//! The order service: `POST /orders` reserves stock at inventory, then charges at payment, both
//! through VPC Lattice; when the charge fails it releases the reservation (a compensating call),
//! so a failed order shows a real saga in its trace.
//!
//! # Layout
//! - [`order`]: the request, its validation, and the totals.
//! - [`ports`]: what order needs from inventory and payment (traits + outcomes).
//! - [`saga`]: reserve → charge → compensate, pure over the ports.
//! - [`lattice_ports`]: the ports as signed, traced Lattice calls.
//! - [`handler`]: routing, annotations, and the one place failures become statuses.
//! - [`config`]: settings read once at cold start.

pub mod config;
pub mod handler;
pub mod lattice_ports;
pub mod order;
pub mod ports;
pub mod saga;

pub use config::OrderConfig;
pub use handler::OrderEndpoint;
