//! [`StockStore`] on DynamoDB: one table, stock rows and reservation rows, all-or-nothing
//! transactions.
//!
//! Items (table [`crate::table`]):
//! - `pk = "SKU#<sku>"`: `available` (N).
//! - `pk = "RES#<order_id>"`: `status` (`RESERVED` | `RELEASED`), `lines` (M, sku → N),
//!   `created_at` (N), and `expires_at` (N, TTL) once released: only terminal records expire,
//!   because a TTL delete gives no stock back.
//!
//! Reserve is one `TransactWriteItems`: a conditional decrement per SKU
//! (`attribute_exists(pk) AND available >= :q`) plus the reservation put
//! (`attribute_not_exists(pk)`), every condition asking for the old item on failure, so the
//! cancellation reasons say which SKU was short, unknown, or that the order was seen before.
//! Release reads the reservation (consistently), then one transaction gives each line back and
//! flips the status, guarded by `status = RESERVED`: exactly once. No reservation → a tombstone
//! (`RELEASED`, no lines), so a reserve that arrives after its release is refused.
//! Each transaction has a deterministic `ClientRequestToken` (UUIDv5 of the table and
//! `reserve:`/`release:` + order id, 36 characters) and parameters that depend on the request alone (no timestamps), so a
//! retry after a lost answer is a replay, not a second effect. DynamoDB answers a replay within
//! its 10-minute token window with success and no side effect, even when the reservation was
//! released in between: such a late duplicate is told "reserved" while the stock stays released
//! (nothing is held, nothing is lost). After the window, it is refused as released.

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    AttributeValue, CancellationReason, Put, ReturnConsumedCapacity,
    ReturnValuesOnConditionCheckFailure, TransactWriteItem, Update,
};
use aws_sdk_dynamodb::Client;
use lattice_xray::aws_call::{classify, AwsCallFailure};

use crate::reservation::ReservationLine;
use lattice_xray::clock::{Clock, SystemClock};

use crate::store::{
    merge_lines, units, ConflictReason, MergedLine, ReleaseResult, ReserveResult, Shortage,
    StockStore, StoreError,
};
use crate::table::{
    reservation_key, sku_key, AVAILABLE, CREATED_AT, EXPIRES_AT, LINES, PARTITION_KEY, STATUS,
    STATUS_RELEASED, STATUS_RESERVED,
};

/// How long a released reservation (or tombstone) is kept before TTL may delete it.
pub const TERMINAL_RECORD_TTL: Duration = Duration::from_secs(7 * 24 * 3600);
/// Attempts of a transaction that conflicted with another one on the same items (a hot SKU:
/// DynamoDB cancels concurrent transactions on one item with `TransactionConflict`).
const CONFLICT_ATTEMPTS: u32 = 6;
/// The first conflict retry waits up to this long; the ceiling doubles per attempt.
const CONFLICT_BACKOFF: Duration = Duration::from_millis(10);
/// Attempts of a release whose reservation appeared while it wrote its tombstone.
const TOMBSTONE_ATTEMPTS: u32 = 3;

/// Namespace of the transactions' idempotency tokens (a fixed random UUID).
const TOKEN_NAMESPACE: uuid::Uuid =
    uuid::Uuid::from_u128(0x6f1c_2b0e_93d4_4c55_a1e7_0d2f_8b4a_c913);

/// The idempotency token of one saga step for one order in one table: 36 characters, DynamoDB's
/// limit. Tokens are scoped to the account and Region, not the table, so the table is part of it.
pub fn request_token(table: &str, step: &str, order_id: &str) -> String {
    let name = format!("{table}/{step}:{order_id}");
    uuid::Uuid::new_v5(&TOKEN_NAMESPACE, name.as_bytes()).to_string()
}

/// Stock and reservations in one DynamoDB table.
#[derive(Clone, Debug)]
pub struct DynamoStockStore<C: Clock = SystemClock> {
    client: Client,
    table: String,
    clock: C,
}

impl DynamoStockStore {
    /// A store over `table`, through `client` (built with [`lattice_xray::aws_call`]'s
    /// interceptor, so every call is a subsegment).
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self::with_clock(client, table, SystemClock)
    }
}

/// A reservation row as stored.
#[derive(Debug, PartialEq, Eq)]
struct StoredReservation {
    released: bool,
    lines: Vec<ReservationLine>,
}

impl StoredReservation {
    fn from_item(item: &HashMap<String, AttributeValue>) -> Result<Self, StoreError> {
        let corrupt = |what: &str| StoreError::Fault(format!("reservation item: {what}"));
        let released = match item
            .get(STATUS)
            .and_then(|v| v.as_s().ok())
            .map(String::as_str)
        {
            Some(STATUS_RESERVED) => false,
            Some(STATUS_RELEASED) => true,
            _ => return Err(corrupt("no known status")),
        };
        let mut lines = Vec::new();
        if let Some(map) = item.get(LINES) {
            let map = map.as_m().map_err(|_| corrupt("lines is not a map"))?;
            for (sku, quantity) in map {
                let quantity = quantity
                    .as_n()
                    .ok()
                    .and_then(|n| n.parse::<u32>().ok())
                    .ok_or_else(|| corrupt("a quantity is not a number"))?;
                lines.push(ReservationLine {
                    sku: sku.clone(),
                    quantity,
                });
            }
        }
        lines.sort_by(|a, b| a.sku.cmp(&b.sku));
        Ok(Self { released, lines })
    }
}

/// A request's lines as the reservation stores them: merged per SKU, sorted by SKU.
fn stored_lines(merged: &[MergedLine]) -> Vec<ReservationLine> {
    let mut lines: Vec<ReservationLine> = merged
        .iter()
        .map(|m| ReservationLine {
            sku: m.sku.clone(),
            quantity: m.quantity,
        })
        .collect();
    lines.sort_by(|a, b| a.sku.cmp(&b.sku));
    lines
}

fn number(n: impl ToString) -> AttributeValue {
    AttributeValue::N(n.to_string())
}

fn build_error(e: aws_sdk_dynamodb::error::BuildError) -> StoreError {
    StoreError::Fault(format!("building a request: {e}"))
}

fn unavailable_or_fault(failure: AwsCallFailure) -> StoreError {
    if failure.is_transient() {
        StoreError::Unavailable(failure)
    } else {
        StoreError::Fault(failure.to_string())
    }
}

/// What a cancelled transaction's reasons say, beyond "a condition failed".
fn transient_reason(reasons: &[CancellationReason]) -> Option<AwsCallFailure> {
    reasons.iter().find_map(|r| match r.code() {
        Some("TransactionConflict") => Some(AwsCallFailure::Conflict {
            code: "TransactionConflict".to_owned(),
        }),
        Some(code @ ("ThrottlingError" | "ProvisionedThroughputExceeded")) => {
            Some(AwsCallFailure::Throttled {
                code: code.to_owned(),
            })
        }
        _ => None,
    })
}

/// A cancelled transaction none of whose conditions failed: retry a conflict, report a throttle,
/// and call anything else a fault.
fn cancelled_for_other_reasons<T>(
    reasons: &[CancellationReason],
) -> Result<Attempt<T>, StoreError> {
    match transient_reason(reasons) {
        Some(failure @ AwsCallFailure::Conflict { .. }) => Ok(Attempt::Retry(failure)),
        Some(failure) => Err(StoreError::Unavailable(failure)),
        None => Err(StoreError::Fault(format!(
            "transaction cancelled for no known reason: {:?}",
            reasons
                .iter()
                .map(CancellationReason::code)
                .collect::<Vec<_>>()
        ))),
    }
}

fn condition_failed(reason: Option<&CancellationReason>) -> bool {
    reason.and_then(CancellationReason::code) == Some("ConditionalCheckFailed")
}

/// The outcome of one transaction attempt.
enum Attempt<T> {
    Done(T),
    Retry(AwsCallFailure),
}

impl<C: Clock> DynamoStockStore<C> {
    /// A store with an injected clock (for the TTL of terminal records).
    pub fn with_clock(client: Client, table: impl Into<String>, clock: C) -> Self {
        Self {
            client,
            table: table.into(),
            clock,
        }
    }

    fn expires_at(&self) -> AttributeValue {
        number(self.clock.now_epoch_seconds() + TERMINAL_RECORD_TTL.as_secs() as i64)
    }

    /// Runs `attempt` until it is done or has conflicted [`CONFLICT_ATTEMPTS`] times (the same
    /// token each time, so a retry of a transaction that did commit is a replay), backing off
    /// with full jitter so that the transactions that collided do not collide again.
    async fn with_conflict_retries<T, F, Fut>(
        &self,
        order_id: &str,
        mut attempt: F,
    ) -> Result<T, StoreError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<Attempt<T>, StoreError>>,
    {
        let mut last = None;
        for i in 0..CONFLICT_ATTEMPTS {
            if i > 0 {
                tokio::time::sleep(conflict_backoff(order_id, i)).await;
            }
            match attempt().await? {
                Attempt::Done(value) => return Ok(value),
                Attempt::Retry(failure) => last = Some(failure),
            }
        }
        Err(StoreError::Unavailable(last.unwrap_or(
            AwsCallFailure::Conflict {
                code: "TransactionConflict".to_owned(),
            },
        )))
    }

    async fn get_reservation(
        &self,
        order_id: &str,
    ) -> Result<Option<StoredReservation>, StoreError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(PARTITION_KEY, reservation_key(order_id))
            .consistent_read(true)
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await
            .map_err(|e| unavailable_or_fault(classify(&e)))?;
        output.item().map(StoredReservation::from_item).transpose()
    }

    fn reserve_items(
        &self,
        order_id: &str,
        merged: &[MergedLine],
    ) -> Result<Vec<TransactWriteItem>, StoreError> {
        let mut items = Vec::with_capacity(merged.len() + 1);
        for line in merged {
            let update = Update::builder()
                .table_name(&self.table)
                .key(PARTITION_KEY, sku_key(&line.sku))
                .update_expression("SET #available = #available - :q")
                .condition_expression("attribute_exists(#pk) AND #available >= :q")
                .expression_attribute_names("#available", AVAILABLE)
                .expression_attribute_names("#pk", PARTITION_KEY)
                .expression_attribute_values(":q", number(line.quantity))
                .return_values_on_condition_check_failure(
                    ReturnValuesOnConditionCheckFailure::AllOld,
                )
                .build()
                .map_err(build_error)?;
            items.push(TransactWriteItem::builder().update(update).build());
        }
        let lines = merged
            .iter()
            .map(|m| (m.sku.clone(), number(m.quantity)))
            .collect();
        let put = Put::builder()
            .table_name(&self.table)
            .item(PARTITION_KEY, reservation_key(order_id))
            .item(STATUS, AttributeValue::S(STATUS_RESERVED.to_owned()))
            .item(LINES, AttributeValue::M(lines))
            .condition_expression("attribute_not_exists(#pk)")
            .expression_attribute_names("#pk", PARTITION_KEY)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .build()
            .map_err(build_error)?;
        items.push(TransactWriteItem::builder().put(put).build());
        Ok(items)
    }

    async fn try_reserve(
        &self,
        order_id: &str,
        lines: &[ReservationLine],
        merged: &[MergedLine],
        items: Vec<TransactWriteItem>,
    ) -> Result<Attempt<ReserveResult>, StoreError> {
        let sent = self
            .client
            .transact_write_items()
            .set_transact_items(Some(items))
            .client_request_token(request_token(&self.table, "reserve", order_id))
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await;
        let error = match sent {
            Ok(_) => {
                return Ok(Attempt::Done(ReserveResult::Reserved {
                    units: units(lines),
                }))
            }
            Err(error) => error,
        };
        let Some(service) = error.as_service_error() else {
            return Err(unavailable_or_fault(classify(&error)));
        };
        match service {
            TransactWriteItemsError::TransactionCanceledException(cancelled) => {
                let reasons = cancelled.cancellation_reasons();
                let reservation = reasons.get(merged.len());
                if condition_failed(reservation) {
                    let stored = reservation
                        .and_then(CancellationReason::item)
                        .map(StoredReservation::from_item)
                        .transpose()?;
                    return Ok(Attempt::Done(replayed(stored, merged, lines)));
                }
                for (line, reason) in merged.iter().zip(reasons) {
                    if condition_failed(Some(reason)) {
                        return Ok(Attempt::Done(ReserveResult::Short(shortage(line, reason))));
                    }
                }
                cancelled_for_other_reasons(reasons)
            }
            TransactWriteItemsError::IdempotentParameterMismatchException(_) => {
                // The token was used for other lines (or other stock rows): say what stands.
                let stored = self.get_reservation(order_id).await?;
                Ok(Attempt::Done(replayed(stored, merged, lines)))
            }
            TransactWriteItemsError::TransactionInProgressException(_) => {
                Ok(Attempt::Retry(AwsCallFailure::Conflict {
                    code: "TransactionInProgressException".to_owned(),
                }))
            }
            _ => Err(unavailable_or_fault(classify(&error))),
        }
    }

    async fn write_tombstone(&self, order_id: &str) -> Result<bool, StoreError> {
        let now = self.clock.now_epoch_seconds();
        let written = self
            .client
            .put_item()
            .table_name(&self.table)
            .item(PARTITION_KEY, reservation_key(order_id))
            .item(STATUS, AttributeValue::S(STATUS_RELEASED.to_owned()))
            .item(LINES, AttributeValue::M(HashMap::new()))
            .item(CREATED_AT, number(now))
            .item(EXPIRES_AT, self.expires_at())
            .condition_expression("attribute_not_exists(#pk)")
            .expression_attribute_names("#pk", PARTITION_KEY)
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await;
        match written {
            Ok(_) => Ok(true),
            Err(SdkError::ServiceError(e))
                if matches!(e.err(), PutItemError::ConditionalCheckFailedException(_)) =>
            {
                Ok(false)
            }
            Err(e) => Err(unavailable_or_fault(classify(&e))),
        }
    }

    fn release_items(
        &self,
        order_id: &str,
        lines: &[ReservationLine],
    ) -> Result<Vec<TransactWriteItem>, StoreError> {
        let mut items = Vec::with_capacity(lines.len() + 1);
        for line in lines {
            let update = Update::builder()
                .table_name(&self.table)
                .key(PARTITION_KEY, sku_key(&line.sku))
                .update_expression("SET #available = #available + :q")
                .condition_expression("attribute_exists(#pk)")
                .expression_attribute_names("#available", AVAILABLE)
                .expression_attribute_names("#pk", PARTITION_KEY)
                .expression_attribute_values(":q", number(line.quantity))
                .build()
                .map_err(build_error)?;
            items.push(TransactWriteItem::builder().update(update).build());
        }
        let update = Update::builder()
            .table_name(&self.table)
            .key(PARTITION_KEY, reservation_key(order_id))
            .update_expression("SET #status = :released, #expires = :expires")
            .condition_expression("#status = :reserved")
            .expression_attribute_names("#status", STATUS)
            .expression_attribute_names("#expires", EXPIRES_AT)
            .expression_attribute_values(":released", AttributeValue::S(STATUS_RELEASED.into()))
            .expression_attribute_values(":reserved", AttributeValue::S(STATUS_RESERVED.into()))
            .expression_attribute_values(":expires", self.expires_at())
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .build()
            .map_err(build_error)?;
        items.push(TransactWriteItem::builder().update(update).build());
        Ok(items)
    }

    async fn try_release(
        &self,
        order_id: &str,
        lines: &[ReservationLine],
    ) -> Result<Attempt<ReleaseResult>, StoreError> {
        let released = units(lines);
        let sent = self
            .client
            .transact_write_items()
            .set_transact_items(Some(self.release_items(order_id, lines)?))
            .client_request_token(request_token(&self.table, "release", order_id))
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await;
        let error = match sent {
            Ok(_) => return Ok(Attempt::Done(ReleaseResult::Released { units: released })),
            Err(error) => error,
        };
        match error.as_service_error() {
            Some(TransactWriteItemsError::TransactionCanceledException(cancelled)) => {
                let reasons = cancelled.cancellation_reasons();
                if condition_failed(reasons.get(lines.len())) {
                    // Someone else released it between our read and our write.
                    return Ok(Attempt::Done(ReleaseResult::AlreadyReleased {
                        units: released,
                    }));
                }
                if let Some(i) = (0..lines.len()).find(|&i| condition_failed(reasons.get(i))) {
                    return Err(StoreError::Fault(format!(
                        "reserved SKU {} is no longer in the table",
                        lines[i].sku
                    )));
                }
                cancelled_for_other_reasons(reasons)
            }
            Some(TransactWriteItemsError::TransactionInProgressException(_)) => {
                Ok(Attempt::Retry(AwsCallFailure::Conflict {
                    code: "TransactionInProgressException".to_owned(),
                }))
            }
            _ => Err(unavailable_or_fault(classify(&error))),
        }
    }
}

/// The wait before conflict retry `attempt` (1-based) of `order_id`: uniform in
/// `0..CONFLICT_BACKOFF * 2^(attempt - 1)`, drawn from a hash of the order and the attempt, so
/// the orders that collided spread apart, deterministically (no clock or RNG in the adapter).
fn conflict_backoff(order_id: &str, attempt: u32) -> Duration {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    (order_id, attempt).hash(&mut hasher);
    let ceiling = CONFLICT_BACKOFF.as_micros() as u64 * (1 << (attempt - 1).min(10));
    Duration::from_micros(hasher.finish() % ceiling.max(1))
}

/// The answer to a reserve whose order id was seen before.
fn replayed(
    stored: Option<StoredReservation>,
    merged: &[MergedLine],
    lines: &[ReservationLine],
) -> ReserveResult {
    match stored {
        Some(StoredReservation {
            released: false,
            lines: held,
        }) if held == stored_lines(merged) => ReserveResult::AlreadyReserved {
            units: units(lines),
        },
        Some(StoredReservation { released: true, .. }) => {
            ReserveResult::Conflict(ConflictReason::Released)
        }
        _ => ReserveResult::Conflict(ConflictReason::OtherLines),
    }
}

/// A SKU's failed decrement: unknown when there was no item, short otherwise.
fn shortage(line: &MergedLine, reason: &CancellationReason) -> Shortage {
    let available = reason
        .item()
        .and_then(|item| item.get(AVAILABLE))
        .and_then(|v| v.as_n().ok())
        .and_then(|n| n.parse::<u32>().ok());
    match available {
        Some(available) => Shortage::Insufficient {
            line: line.line,
            sku: line.sku.clone(),
            requested: line.quantity,
            available,
        },
        None => Shortage::UnknownSku {
            line: line.line,
            sku: line.sku.clone(),
        },
    }
}

impl<C: Clock + Clone> StockStore for DynamoStockStore<C> {
    async fn reserve(
        &self,
        order_id: &str,
        lines: &[ReservationLine],
    ) -> Result<ReserveResult, StoreError> {
        let merged = merge_lines(lines);
        let items = self.reserve_items(order_id, &merged)?;
        self.with_conflict_retries(order_id, || {
            self.try_reserve(order_id, lines, &merged, items.clone())
        })
        .await
    }

    async fn release(&self, order_id: &str) -> Result<ReleaseResult, StoreError> {
        for _ in 0..TOMBSTONE_ATTEMPTS {
            match self.get_reservation(order_id).await? {
                None => {
                    if self.write_tombstone(order_id).await? {
                        return Ok(ReleaseResult::Tombstoned);
                    }
                    // A reservation (or another release's tombstone) landed in between: read again.
                }
                Some(StoredReservation {
                    released: true,
                    lines,
                }) => {
                    return Ok(ReleaseResult::AlreadyReleased {
                        units: units(&lines),
                    })
                }
                Some(StoredReservation {
                    released: false,
                    lines,
                }) => {
                    return self
                        .with_conflict_retries(order_id, || self.try_release(order_id, &lines))
                        .await
                }
            }
        }
        Err(StoreError::Unavailable(AwsCallFailure::Conflict {
            code: "ReservationRace".to_owned(),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conflict_backoff_is_jittered_under_a_doubling_ceiling() {
        for attempt in 1..CONFLICT_ATTEMPTS {
            let ceiling = CONFLICT_BACKOFF * (1 << (attempt - 1));
            let waits: std::collections::BTreeSet<Duration> = (0..64)
                .map(|i| conflict_backoff(&format!("o{i}"), attempt))
                .collect();
            assert!(waits.iter().all(|w| *w < ceiling), "attempt {attempt}");
            assert!(waits.len() > 32, "orders spread apart: {}", waits.len());
        }
        assert_eq!(conflict_backoff("o", 2), conflict_backoff("o", 2));
    }

    #[test]
    fn request_tokens_are_deterministic_and_fit_dynamodb() {
        let token = request_token("inventory", "reserve", "run-1234abcd-99999");
        assert_eq!(token.len(), 36);
        assert_eq!(
            token,
            request_token("inventory", "reserve", "run-1234abcd-99999")
        );
        assert_ne!(
            token,
            request_token("inventory", "release", "run-1234abcd-99999")
        );
        assert_ne!(
            token,
            request_token("other", "reserve", "run-1234abcd-99999")
        );
        let longest = "x".repeat(128);
        assert_eq!(request_token("inventory", "release", &longest).len(), 36);
    }

    #[test]
    fn stored_reservations_are_read_or_refused() {
        let item = HashMap::from([
            (STATUS.to_owned(), AttributeValue::S("RESERVED".into())),
            (
                LINES.to_owned(),
                AttributeValue::M(HashMap::from([
                    ("B".to_owned(), AttributeValue::N("2".into())),
                    ("A".to_owned(), AttributeValue::N("1".into())),
                ])),
            ),
        ]);
        let stored = StoredReservation::from_item(&item).unwrap();
        assert!(!stored.released);
        assert_eq!(
            stored
                .lines
                .iter()
                .map(|l| (l.sku.as_str(), l.quantity))
                .collect::<Vec<_>>(),
            [("A", 1), ("B", 2)]
        );
        let bad = HashMap::from([(STATUS.to_owned(), AttributeValue::S("LOST".into()))]);
        assert!(matches!(
            StoredReservation::from_item(&bad),
            Err(StoreError::Fault(_))
        ));
    }
}
