//! The Lambda service on loopback: the Runtime API, and the real service binaries run as
//! execution environments.
//!
//! Behaviour follows the Lambda developer guide ("Using the Lambda runtime API", "Lambda
//! execution environment lifecycle"): one process per environment, one invocation at a time per
//! environment, new environments started on demand up to the function's concurrency limit and
//! idle ones reused; a synchronous invoke past the limit is throttled (`TooManyRequestsException`);
//! a timeout fails the invocation with "Task timed out after N seconds" and the environment is
//! shut down; an environment whose process exits is replaced by the next invocation.
//!
//! # Layout
//! - [`runtime_api`]: the Runtime API one environment's process polls.
//! - [`extensions_api`], [`telemetry_api`]: the Extensions and Telemetry APIs on the same address,
//!   for the extensions a function's layer brings; [`platform_records`]: the `platform.*` records.
//! - [`environment`]: one environment's processes, init phase and shutdown.
//! - [`function`]: a function's environments and `invoke`; [`function_log`]: its log group (the
//!   `START`/`END`/`REPORT` lines and the processes' own output).
//! - [`facade`]: the segments Lambda itself sends under Active tracing.
//! - [`invoke_api`]: the Invoke API (`aws-sdk-lambda` with `endpoint_url`).

pub mod environment;
pub mod extensions_api;
pub mod facade;
pub mod function;
pub mod function_log;
pub mod invoke_api;
pub mod platform_records;
pub mod runtime_api;
pub mod telemetry_api;
