//! The payments table: its schema, shared by the local stack and the adapter tests
//! (`infra/aws/template.yaml` declares the same for AWS).

use aws_sdk_dynamodb::Client;

/// The table's only key attribute.
pub const PARTITION_KEY: &str = "order_id";
/// `PENDING`, `CHARGED` or `DECLINED`.
pub const STATUS: &str = "status";
/// Amount in minor units.
pub const AMOUNT_CENTS: &str = "amount_cents";
/// ISO 4217 code.
pub const CURRENCY: &str = "currency";
/// Until when a `PENDING` claim holds (epoch seconds); another request may take it over after.
pub const IN_PROGRESS_UNTIL: &str = "in_progress_until";
/// The payment id (`CHARGED`).
pub const PAYMENT_ID: &str = "payment_id";
/// Why the issuer declined (`DECLINED`).
pub const DECLINE_REASON: &str = "decline_reason";
/// The TTL attribute, epoch seconds; set on terminal records only.
pub const EXPIRES_AT: &str = "expires_at";
/// A claimed, unsettled charge.
pub const STATUS_PENDING: &str = "PENDING";
/// Money taken.
pub const STATUS_CHARGED: &str = "CHARGED";
/// Declined.
pub const STATUS_DECLINED: &str = "DECLINED";

/// Creates the table (on-demand, TTL on [`EXPIRES_AT`]).
pub async fn create(client: &Client, table: &str) -> Result<(), aws_sdk_dynamodb::Error> {
    lattice_xray::dynamodb::create_table(client, table, PARTITION_KEY, EXPIRES_AT).await
}
