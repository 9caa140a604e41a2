//! The Telemetry API subscription, made here rather than by `lambda-extension`, which hard-codes
//! schema `2022-07-01` and its own listener: `PUT /2022-07-01/telemetry` with schema
//! `2022-12-13`, the `platform`, `function` and `extension` streams, and our listener as the
//! destination. 200 is Lambda's answer, 202 a local testing environment's; anything else is a
//! failure the caller logs and survives (the extension then does nothing).

use std::time::Duration;

use serde_json::{json, Value};

use crate::listener::{PORT, SANDBOX_HOST};

/// The Telemetry API's path (its version is still 2022-07-01; the schema is in the body).
pub const TELEMETRY_PATH: &str = "/2022-07-01/telemetry";
/// The record schema asked for.
pub const SCHEMA_VERSION: &str = "2022-12-13";
/// The header naming the registered extension.
pub const EXTENSION_ID_HEADER: &str = "Lambda-Extension-Identifier";
/// How long the subscription call may take (it runs during the function's init).
pub const SUBSCRIBE_TIMEOUT: Duration = Duration::from_secs(2);

/// The subscription request's body.
pub fn subscription_body() -> Value {
    json!({
        "schemaVersion": SCHEMA_VERSION,
        "types": ["platform", "function", "extension"],
        "buffering": {"maxItems": 10000, "maxBytes": 262144, "timeoutMs": 250},
        "destination": {"protocol": "HTTP", "URI": format!("http://{SANDBOX_HOST}:{PORT}")}
    })
}

/// Why the subscription failed.
#[derive(Debug, thiserror::Error)]
pub enum SubscribeError {
    /// No answer.
    #[error("Telemetry API subscription: no answer from {0}: {1}")]
    Unreachable(String, String),
    /// A refusal.
    #[error("Telemetry API subscription answered {status}: {body}")]
    Refused {
        /// The status.
        status: u16,
        /// The body's start.
        body: String,
    },
}

/// Subscribes the extension `extension_id` at `runtime_api` (`host:port`).
pub async fn subscribe(runtime_api: &str, extension_id: &str) -> Result<(), SubscribeError> {
    let url = format!("http://{runtime_api}{TELEMETRY_PATH}");
    let unreachable =
        |e: &dyn std::fmt::Display| SubscribeError::Unreachable(url.clone(), e.to_string());
    let client = reqwest::Client::builder()
        .timeout(SUBSCRIBE_TIMEOUT)
        .build()
        .map_err(|e| unreachable(&e))?;
    let response = client
        .put(&url)
        .header(EXTENSION_ID_HEADER, extension_id)
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(subscription_body().to_string())
        .send()
        .await
        .map_err(|e| unreachable(&e))?;
    let status = response.status().as_u16();
    if status == 200 || status == 202 {
        return Ok(());
    }
    let body = response.text().await.unwrap_or_default();
    Err(SubscribeError::Refused {
        status,
        body: body.chars().take(300).collect(),
    })
}
