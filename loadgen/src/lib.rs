//! loadgen: drives concurrent orders through VPC Lattice so that traces, Lattice metrics and
//! access logs are produced together, then inspects X-Ray and reports.
//!
//! # Layout
//! - [`cli`]: the command line.
//! - [`app`]: the command line's runs from the laptop (the pipeline, then the report written).
//! - [`pipeline`]: one run, stage by stage (target, drive, inspect, checks, report), for the
//!   laptop and the runner alike.
//! - [`clients`]: the AWS SDK clients (X-Ray, Lambda) for AWS or the local stack.
//! - [`orders`]: seeded order bodies.
//! - [`schedule`]: open-loop start times and stages.
//! - [`driver`]: open and closed loops.
//! - [`partition`]: a run shared out between processes: which order indexes are whose.
//! - [`fanout`]: `--runner F --runners N`: runner invocations at once and in waves, their
//!   reports merged exactly.
//! - [`target`]: signed requests to a Lattice service.
//! - [`segments`]: loadgen's own trace segment per order.
//! - [`stats`]: histograms, statuses, errors, per-second series.
//! - [`hdr`]: the histograms in the report, losslessly encoded, and their exact merge.
//! - [`inspect`]: trace completeness and the service graph from X-Ray.
//! - [`map`]: the service map as a table, Mermaid or DOT.
//! - [`conservation`]: local runs: every unit of stock accounted for, from the inventory table.
//! - [`report`]: the human and JSON reports.
//! - [`html`]: the HTML run report (`--html`, `loadgen report`).
//! - [`runner`]: loadgen as a Lambda in the stack's VPC (`--runner`): the contract between the
//!   laptop and the function, and the invocation.
//! - [`cost`]: what the run or a window cost (`loadgen cost`, a local run's cost section).
//! - [`analytics`]: the traffic-analytics dashboard's questions over OpenSearch (`loadgen analytics`).

pub mod analytics;
pub mod app;
pub mod cli;
pub mod clients;
pub mod connection;
pub mod conservation;
pub mod cost;
pub mod driver;
pub mod fanout;
pub mod hdr;
pub mod html;
pub mod inspect;
pub mod map;
pub mod orders;
pub mod partition;
pub mod pipeline;
pub mod report;
pub mod runner;
pub mod schedule;
pub mod segments;
pub mod stats;
pub mod target;
