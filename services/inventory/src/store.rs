//! The stock store port: what the handler asks of wherever stock and reservations live.
//!
//! Two adapters: [`crate::dynamo::DynamoStockStore`] (every deployed and local-stack function)
//! and, for unit tests only, `crate::memory::MemoryStockStore` (feature `memory-store`). Both
//! keep the same contract, which `tests/store_contract.rs` checks against each:
//! - a reservation holds every line or none, and the same reservation asked twice is held once;
//! - a release gives the stock back exactly once, however often it is asked;
//! - a release that arrives before its reservation leaves a tombstone, so the late reservation is
//!   refused instead of holding stock nobody will release.

use std::future::Future;

use lattice_xray::aws_call::AwsCallFailure;

use crate::reservation::ReservationLine;

/// Why a reservation could not be made.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Shortage {
    /// Not enough units of a catalog SKU.
    Insufficient {
        /// Index of the (first) line in the request for this SKU.
        line: usize,
        /// The SKU.
        sku: String,
        /// Units asked for (summed over the request's lines for this SKU).
        requested: u32,
        /// Units available.
        available: u32,
    },
    /// The SKU is not in the catalog.
    UnknownSku {
        /// Index of the line in the request.
        line: usize,
        /// The SKU.
        sku: String,
    },
}

/// Why an order id cannot be reserved (again).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConflictReason {
    /// The order id holds a reservation for other lines.
    OtherLines,
    /// The order's reservation was released (or a release came first and left a tombstone).
    Released,
}

/// What happened to a reservation request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReserveResult {
    /// Held now.
    Reserved {
        /// Units held.
        units: u64,
    },
    /// Held by an earlier request with the same order id and lines; nothing changed.
    AlreadyReserved {
        /// Units held.
        units: u64,
    },
    /// Not held: the order id cannot take these lines.
    Conflict(ConflictReason),
    /// Not held: stock is short or a SKU is unknown.
    Short(Shortage),
}

/// What happened to a release request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReleaseResult {
    /// Units returned to stock now.
    Released {
        /// Units returned.
        units: u64,
    },
    /// Returned by an earlier release; nothing changed.
    AlreadyReleased {
        /// Units returned then.
        units: u64,
    },
    /// No reservation existed: a tombstone now refuses a late reservation for this order.
    Tombstoned,
}

/// The store failed; nothing was changed, or (on a timeout) the change's fate is unknown.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// The store could not be used (throttled, conflicting, timed out, unreachable).
    #[error("the stock store is unavailable: {0}")]
    Unavailable(AwsCallFailure),
    /// The store refused the request or holds an item we cannot read: a fault of ours.
    #[error("the stock store failed: {0}")]
    Fault(String),
}

/// Where stock levels and reservations live.
pub trait StockStore: Send + Sync + 'static {
    /// Holds every line or none, once per order id.
    fn reserve(
        &self,
        order_id: &str,
        lines: &[ReservationLine],
    ) -> impl Future<Output = Result<ReserveResult, StoreError>> + Send;

    /// Returns an order's units to stock, once.
    fn release(
        &self,
        order_id: &str,
    ) -> impl Future<Output = Result<ReleaseResult, StoreError>> + Send;
}

/// One SKU of a request, its units summed over the request's lines.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MergedLine {
    /// The SKU.
    pub sku: String,
    /// Units over every line naming it.
    pub quantity: u32,
    /// The first line naming it.
    pub line: usize,
}

/// Sums the lines per SKU, in order of first appearance (a transaction may not touch one item
/// twice, and a shortage names the first line of its SKU).
pub fn merge_lines(lines: &[ReservationLine]) -> Vec<MergedLine> {
    let mut merged: Vec<MergedLine> = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        match merged.iter_mut().find(|m| m.sku == line.sku) {
            Some(m) => m.quantity = m.quantity.saturating_add(line.quantity),
            None => merged.push(MergedLine {
                sku: line.sku.clone(),
                quantity: line.quantity,
                line: i,
            }),
        }
    }
    merged
}

/// Total units of `lines`.
pub fn units(lines: &[ReservationLine]) -> u64 {
    lines.iter().map(|l| u64::from(l.quantity)).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(sku: &str, quantity: u32) -> ReservationLine {
        ReservationLine {
            sku: sku.into(),
            quantity,
        }
    }

    #[test]
    fn merges_repeated_skus_in_first_appearance_order() {
        assert_eq!(
            merge_lines(&[line("B", 1), line("A", 2), line("B", 3)]),
            [
                MergedLine {
                    sku: "B".into(),
                    quantity: 4,
                    line: 0
                },
                MergedLine {
                    sku: "A".into(),
                    quantity: 2,
                    line: 1
                }
            ]
        );
        assert_eq!(units(&[line("B", 1), line("A", 2)]), 3);
    }
}
