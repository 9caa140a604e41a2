//! `opensearch-telemetry`: a Lambda external extension shipping the function's Telemetry API
//! records to OpenSearch. Everything is in the library; see its `startup` module.

use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    opensearch_telemetry::startup::run().await
}
