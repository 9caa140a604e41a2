//! [`Ledger`] on DynamoDB: one item per order, written only under conditions.
//!
//! - Claim: `PutItem {status: PENDING, amount_cents, currency, in_progress_until}` if no item
//!   exists, or if a `PENDING` claim's lease ran out (its holder died mid-charge). On failure the
//!   old item comes back with the error (`ReturnValuesOnConditionCheckFailure = ALL_OLD`, no read
//!   needed) and says what stands: settled, in progress, or another amount.
//! - Settle: `UpdateItem status = CHARGED | DECLINED` guarded by `status = PENDING`, with the TTL
//!   set now that the record is terminal. A guard that fails returns the settlement that stands.
//! - Abandon (gateway fault): `DeleteItem` guarded by `status = PENDING`, so a retry may charge.
//!
//! The gateway is called with the order id as its idempotency key between claim and settle.

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::delete_item::DeleteItemError;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{
    AttributeValue, ReturnConsumedCapacity, ReturnValuesOnConditionCheckFailure,
};
use aws_sdk_dynamodb::Client;
use lattice_xray::aws_call::{classify, AwsCallFailure};
use lattice_xray::clock::{Clock, SystemClock};

use crate::ledger::{Claim, Ledger, LedgerCharge, LedgerError, Settlement};
use crate::table::{
    AMOUNT_CENTS, CURRENCY, DECLINE_REASON, EXPIRES_AT, IN_PROGRESS_UNTIL, PARTITION_KEY,
    PAYMENT_ID, STATUS, STATUS_CHARGED, STATUS_DECLINED, STATUS_PENDING,
};

/// How long a claim holds before another request may take it over: longer than any gateway call
/// within the function's timeout.
pub const CLAIM_LEASE: Duration = Duration::from_secs(30);
/// How long a settled record is kept before TTL may delete it: far longer than any retry.
pub const SETTLED_RECORD_TTL: Duration = Duration::from_secs(30 * 24 * 3600);

/// Charges in one DynamoDB table.
#[derive(Clone, Debug)]
pub struct DynamoLedger<C: Clock = SystemClock> {
    client: Client,
    table: String,
    clock: C,
}

impl DynamoLedger {
    /// A ledger over `table`, through `client` (a traced client: see `lattice_xray::dynamodb`).
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self::with_clock(client, table, SystemClock)
    }
}

fn s(value: &str) -> AttributeValue {
    AttributeValue::S(value.to_owned())
}

fn n(value: i64) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

fn to_error(failure: AwsCallFailure) -> LedgerError {
    if failure.is_transient() {
        LedgerError::Unavailable(failure)
    } else {
        LedgerError::Fault(failure.to_string())
    }
}

/// A stored record, read.
#[derive(Debug, PartialEq, Eq)]
struct Record {
    charge: LedgerCharge,
    settlement: Option<Settlement>,
}

impl Record {
    fn from_item(
        order_id: &str,
        item: &HashMap<String, AttributeValue>,
    ) -> Result<Self, LedgerError> {
        let text = |name: &str| item.get(name).and_then(|v| v.as_s().ok()).cloned();
        let corrupt = |what: &str| LedgerError::Fault(format!("payment record {order_id}: {what}"));
        let amount_cents = item
            .get(AMOUNT_CENTS)
            .and_then(|v| v.as_n().ok())
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| corrupt("no amount"))?;
        let charge = LedgerCharge {
            order_id: order_id.to_owned(),
            amount_cents,
            currency: text(CURRENCY).ok_or_else(|| corrupt("no currency"))?,
        };
        let settlement = match text(STATUS).as_deref() {
            Some(STATUS_PENDING) => None,
            Some(STATUS_CHARGED) => Some(Settlement::Charged {
                payment_id: text(PAYMENT_ID).ok_or_else(|| corrupt("no payment id"))?,
            }),
            Some(STATUS_DECLINED) => Some(Settlement::Declined {
                reason: text(DECLINE_REASON).unwrap_or_default(),
            }),
            _ => return Err(corrupt("no known status")),
        };
        Ok(Self { charge, settlement })
    }
}

impl<C: Clock> DynamoLedger<C> {
    /// A ledger with an injected clock (leases and TTLs).
    pub fn with_clock(client: Client, table: impl Into<String>, clock: C) -> Self {
        Self {
            client,
            table: table.into(),
            clock,
        }
    }
}

impl<C: Clock + Clone> Ledger for DynamoLedger<C> {
    async fn claim(&self, charge: &LedgerCharge) -> Result<Claim, LedgerError> {
        let now = self.clock.now_epoch_seconds();
        let written = self
            .client
            .put_item()
            .table_name(&self.table)
            .item(PARTITION_KEY, s(&charge.order_id))
            .item(STATUS, s(STATUS_PENDING))
            .item(AMOUNT_CENTS, n(charge.amount_cents))
            .item(CURRENCY, s(&charge.currency))
            .item(IN_PROGRESS_UNTIL, n(now + CLAIM_LEASE.as_secs() as i64))
            .condition_expression(
                "attribute_not_exists(#key) OR (#status = :pending AND #until < :now)",
            )
            .expression_attribute_names("#key", PARTITION_KEY)
            .expression_attribute_names("#status", STATUS)
            .expression_attribute_names("#until", IN_PROGRESS_UNTIL)
            .expression_attribute_values(":pending", s(STATUS_PENDING))
            .expression_attribute_values(":now", n(now))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await;
        let error = match written {
            Ok(_) => return Ok(Claim::Claimed),
            Err(error) => error,
        };
        if let SdkError::ServiceError(service) = &error {
            if let PutItemError::ConditionalCheckFailedException(failed) = service.err() {
                let item = failed.item().ok_or_else(|| {
                    LedgerError::Fault("condition failed without the item".into())
                })?;
                let record = Record::from_item(&charge.order_id, item)?;
                return Ok(if record.charge != *charge {
                    Claim::Mismatch
                } else {
                    record.settlement.map_or(Claim::InProgress, Claim::Settled)
                });
            }
        }
        Err(to_error(classify(&error)))
    }

    async fn settle(
        &self,
        order_id: &str,
        settlement: &Settlement,
    ) -> Result<Settlement, LedgerError> {
        let (status, field, value) = match settlement {
            Settlement::Charged { payment_id } => (STATUS_CHARGED, PAYMENT_ID, payment_id),
            Settlement::Declined { reason } => (STATUS_DECLINED, DECLINE_REASON, reason),
        };
        let expires = self.clock.now_epoch_seconds() + SETTLED_RECORD_TTL.as_secs() as i64;
        let updated = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(PARTITION_KEY, s(order_id))
            .update_expression(
                "SET #status = :status, #field = :value, #expires = :expires REMOVE #until",
            )
            .condition_expression("#status = :pending")
            .expression_attribute_names("#status", STATUS)
            .expression_attribute_names("#field", field)
            .expression_attribute_names("#expires", EXPIRES_AT)
            .expression_attribute_names("#until", IN_PROGRESS_UNTIL)
            .expression_attribute_values(":status", s(status))
            .expression_attribute_values(":value", s(value))
            .expression_attribute_values(":expires", n(expires))
            .expression_attribute_values(":pending", s(STATUS_PENDING))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await;
        let error = match updated {
            Ok(_) => return Ok(settlement.clone()),
            Err(error) => error,
        };
        if let SdkError::ServiceError(service) = &error {
            if let UpdateItemError::ConditionalCheckFailedException(failed) = service.err() {
                // Settled already (a claim whose lease ran out was taken over and settled).
                let stood = failed
                    .item()
                    .map(|item| Record::from_item(order_id, item))
                    .transpose()?
                    .and_then(|record| record.settlement);
                return stood.ok_or_else(|| {
                    LedgerError::Fault(format!("the claim on {order_id} was lost before settling"))
                });
            }
        }
        Err(to_error(classify(&error)))
    }

    async fn abandon(&self, order_id: &str) -> Result<(), LedgerError> {
        let deleted = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key(PARTITION_KEY, s(order_id))
            .condition_expression("#status = :pending")
            .expression_attribute_names("#status", STATUS)
            .expression_attribute_values(":pending", s(STATUS_PENDING))
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await;
        match deleted {
            Ok(_) => Ok(()),
            Err(SdkError::ServiceError(service))
                if matches!(
                    service.err(),
                    DeleteItemError::ConditionalCheckFailedException(_)
                ) =>
            {
                Ok(())
            }
            Err(error) => Err(to_error(classify(&error))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_are_read_or_refused() {
        let item = HashMap::from([
            (STATUS.to_owned(), s("CHARGED")),
            (AMOUNT_CENTS.to_owned(), n(4250)),
            (CURRENCY.to_owned(), s("EUR")),
            (PAYMENT_ID.to_owned(), s("pay_1")),
        ]);
        assert_eq!(
            Record::from_item("o", &item).unwrap(),
            Record {
                charge: LedgerCharge {
                    order_id: "o".into(),
                    amount_cents: 4250,
                    currency: "EUR".into()
                },
                settlement: Some(Settlement::Charged {
                    payment_id: "pay_1".into()
                })
            }
        );
        let mut pending = item.clone();
        pending.insert(STATUS.to_owned(), s("PENDING"));
        assert_eq!(Record::from_item("o", &pending).unwrap().settlement, None);
        let mut broken = item;
        broken.remove(AMOUNT_CENTS);
        assert!(matches!(
            Record::from_item("o", &broken),
            Err(LedgerError::Fault(_))
        ));
    }
}
