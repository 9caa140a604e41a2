//! What the stack costs (issue 17): the price table and the cost model. The report built on them
//! (sources, per-service tables, recommendations) is the rest of that issue.
//!
//! # Layout
//! - [`prices`]: the versioned list-price table (`cost/prices/*.json`), read and validated, so a
//!   missing or zero price is an error naming the line, never a silent zero.
//! - [`usage`]: raw records (access-log entries, `REPORT` lines, `platform.report` records) into
//!   usage per service, naming what cannot be attributed.
//! - [`traffic`]: each service's latency distribution, status classes, cold starts and peak
//!   memory.
//! - [`model`]: the attribution formulas, usage into dollars line by line, and the projection of
//!   cost per 1M orders at a steady request rate (fixed service-hours vs variable cost).

pub mod model;
pub mod prices;
pub mod traffic;
pub mod usage;
