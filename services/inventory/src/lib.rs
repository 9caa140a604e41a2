//! The inventory service: reserve stock for an order, and release it again.
//!
//! `POST /reservations` holds stock for every line of an order or for none (409 when a SKU is
//! short, 404 when one is unknown); `POST /reservations/{order_id}/release` gives it back (the
//! order saga's compensation). Both are idempotent per `order_id`, and a release that overtakes
//! its reservation leaves a tombstone that refuses the late reservation. Stock and reservations
//! live in DynamoDB, so every execution environment sees the same state.
//!
//! # Layout
//! - [`reservation`]: requests, validation and answers.
//! - [`store`]: the stock store port and its outcomes.
//! - [`dynamo`]: the port on DynamoDB (what every function uses).
//! - [`table`]: the table's schema, seeding and contents.
//! - `memory`: the port in one process's memory (feature `memory-store`, for unit tests only).
//! - [`handler`]: routing, simulated latency/faults, status mapping and annotations.
//! - [`config`]: settings read once at cold start.

pub mod config;
pub mod dynamo;
pub mod handler;
#[cfg(feature = "memory-store")]
pub mod memory;
pub mod reservation;
pub mod store;
pub mod table;

pub use config::InventoryConfig;
pub use handler::InventoryEndpoint;
