//! DynamoDB clients for the functions, traced, and the one table shape the services use
//! (feature `dynamodb`; order does not need it).
//!
//! Every client gets [`crate::aws_call::AwsCallInterceptor`], so each call is an X-Ray `aws`
//! subsegment with its table, and the endpoint comes from the standard chain
//! (`AWS_ENDPOINT_URL_DYNAMODB` points it at a local server).

use std::time::Duration;

use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
    TimeToLiveSpecification,
};
use aws_sdk_dynamodb::Client;

use crate::aws_call::load_sdk_config;
use crate::Error;

#[cfg(feature = "dynamodb-local")]
pub mod local;

/// The variable bounding each DynamoDB call, in milliseconds.
pub const TIMEOUT_ENV: &str = "DYNAMODB_TIMEOUT_MS";
/// Each DynamoDB call's budget when [`TIMEOUT_ENV`] is unset.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_millis(1000);

/// Reads a required table name from `variable`.
pub fn table_from(
    lookup: &impl Fn(&str) -> Option<String>,
    variable: &'static str,
) -> Result<String, Error> {
    lookup(variable)
        .filter(|name| (3..=255).contains(&name.len()))
        .ok_or_else(|| Error::Config {
            variable,
            reason: "must name the DynamoDB table (3-255 characters)".to_owned(),
        })
}

/// Reads [`TIMEOUT_ENV`] (default [`DEFAULT_TIMEOUT`]).
pub fn timeout_from(lookup: &impl Fn(&str) -> Option<String>) -> Result<Duration, Error> {
    match lookup(TIMEOUT_ENV) {
        None => Ok(DEFAULT_TIMEOUT),
        Some(raw) => match raw.parse::<u64>() {
            Ok(ms) if ms > 0 => Ok(Duration::from_millis(ms)),
            _ => Err(Error::Config {
                variable: TIMEOUT_ENV,
                reason: format!("{raw:?} is not a positive number of milliseconds"),
            }),
        },
    }
}

/// A traced client from the standard AWS configuration chain, each call bounded by `timeout`.
pub async fn traced_client(timeout: Duration) -> Result<Client, Error> {
    let (sdk, interceptor) = load_sdk_config(timeout).await?;
    let config = aws_sdk_dynamodb::config::Builder::from(&sdk)
        .interceptor(interceptor)
        .build();
    Ok(Client::from_conf(config))
}

/// Creates an on-demand table keyed by the string attribute `key`, with TTL on `ttl_attribute`
/// (what `infra/aws/template.yaml` declares for AWS).
pub async fn create_table(
    client: &Client,
    table: &str,
    key: &str,
    ttl_attribute: &str,
) -> Result<(), aws_sdk_dynamodb::Error> {
    client
        .create_table()
        .table_name(table)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name(key)
                .attribute_type(ScalarAttributeType::S)
                .build()?,
        )
        .key_schema(
            KeySchemaElement::builder()
                .attribute_name(key)
                .key_type(KeyType::Hash)
                .build()?,
        )
        .send()
        .await?;
    client
        .update_time_to_live()
        .table_name(table)
        .time_to_live_specification(
            TimeToLiveSpecification::builder()
                .attribute_name(ttl_attribute)
                .enabled(true)
                .build()?,
        )
        .send()
        .await?;
    Ok(())
}
