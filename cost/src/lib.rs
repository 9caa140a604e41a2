//! What the stack costs (issue 17): the price table, the cost model, usage from raw records and
//! the report's figures, and the sources they come from, locally and on AWS.
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
//! - [`recommend`]: recommendations from explicit, cited rules, each with its monthly saving.
//! - [`render`]: the report as text.
//! - [`document`]: the whole report as one JSON document (`cost/report.schema.json`).
//! - [`reconcile`]: the model's figures beside what Cost Explorer billed, drift per service.
//! - [`sources`]: one trait per source of numbers (Lattice metrics, the access log, Lambda
//!   reports, X-Ray, DynamoDB, the bill), each with a local and an AWS implementation.
//! - [`report`]: the figures of the report: rows per service, cost per order, the projection,
//!   the free tiers.

pub mod document;
pub mod model;
pub mod prices;
pub mod recommend;
pub mod reconcile;
pub mod render;
pub mod report;
pub mod sources;
pub mod traffic;
pub mod usage;
