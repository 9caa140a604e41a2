//! The inventory service: reserve stock for an order, and release it again.
//!
//! `POST /reservations` holds stock for every line of an order or for none (409 when any SKU is
//! short); `POST /reservations/{order_id}/release` gives it back (the order saga's compensation).
//! Both are idempotent per `order_id`. Stock is a seeded simulation held per execution
//! environment, not a database: the README says so.
//!
//! # Layout
//! - [`reservation`]: requests, validation and answers.
//! - [`stock`]: the seeded catalog and all-or-nothing reservations.
//! - [`handler`]: routing, simulated latency/faults, status mapping and annotations.
//! - [`config`]: settings read once at cold start.

pub mod config;
pub mod handler;
pub mod reservation;
pub mod stock;

pub use config::InventoryConfig;
pub use handler::InventoryEndpoint;
