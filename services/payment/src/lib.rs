//! The payment service: `POST /payments` charges an order, once.
//!
//! A retried charge for the same `order_id` returns the first answer and never charges twice,
//! because order retries and Lattice may deliver a request more than once; the ledger of charges
//! lives in DynamoDB, so every execution environment sees it. The card gateway is a
//! simulation (seeded latency, declines and faults) behind the [`gateway::Gateway`] port.
//!
//! # Layout
//! - [`charge`]: the request, its validation, and the outcomes.
//! - [`gateway`]: the gateway port and the seeded simulation.
//! - [`ledger`]: the ledger port (claim, settle, abandon); its in-memory adapter for unit tests
//!   (feature `memory-store`).
//! - [`dynamo`]: the ledger on DynamoDB (what every function uses).
//! - [`table`]: the payments table's schema.
//! - [`handler`]: routing, status mapping and annotations.
//! - [`config`]: settings read once at cold start.

pub mod charge;
pub mod config;
pub mod dynamo;
pub mod gateway;
pub mod handler;
pub mod ledger;
pub mod table;

pub use config::PaymentConfig;
pub use handler::PaymentEndpoint;
