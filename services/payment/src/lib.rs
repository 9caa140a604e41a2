//! The payment service: `POST /payments` charges an order, once.
//!
//! A retried charge for the same `order_id` returns the first answer and never charges twice,
//! because order retries and Lattice may deliver a request more than once. The card gateway is a
//! simulation (seeded latency, declines and faults) behind the [`gateway::Gateway`] port.
//!
//! # Layout
//! - [`charge`]: the request, its validation, and the outcomes.
//! - [`gateway`]: the gateway port and the seeded simulation.
//! - [`ledger`]: first-answer-wins memory of charges, per execution environment.
//! - [`handler`]: routing, status mapping and annotations.
//! - [`config`]: settings read once at cold start.

pub mod charge;
pub mod config;
pub mod gateway;
pub mod handler;
pub mod ledger;

pub use config::PaymentConfig;
pub use handler::PaymentEndpoint;
