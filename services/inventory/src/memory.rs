//! An in-memory [`StockStore`], for unit tests only (feature `memory-store`).
//!
//! It keeps the port's contract within one process, which is exactly what a deployed function
//! cannot rely on (Lambda runs many environments), so no deployed or local-stack function uses
//! it: `main.rs` builds [`crate::dynamo::DynamoStockStore`].

use std::collections::HashMap;
use std::sync::Mutex;

use crate::reservation::ReservationLine;
use crate::store::{
    merge_lines, units, ConflictReason, ReleaseResult, ReserveResult, Shortage, StockStore,
    StoreError,
};

#[derive(Debug)]
struct Reservation {
    lines: Vec<ReservationLine>,
    released: bool,
}

#[derive(Debug, Default)]
struct State {
    stock: HashMap<String, u32>,
    reservations: HashMap<String, Reservation>,
}

/// Stock levels and reservations in one process's memory.
#[derive(Debug, Default)]
pub struct MemoryStockStore {
    state: Mutex<State>,
}

impl MemoryStockStore {
    /// A catalog with exactly these levels.
    pub fn with_levels(stock: impl IntoIterator<Item = (String, u32)>) -> Self {
        Self {
            state: Mutex::new(State {
                stock: stock.into_iter().collect(),
                reservations: HashMap::new(),
            }),
        }
    }

    /// Units on hand for `sku`.
    pub fn available(&self, sku: &str) -> Option<u32> {
        self.lock().stock.get(sku).copied()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn reserve_now(&self, order_id: &str, lines: &[ReservationLine]) -> ReserveResult {
        let mut state = self.lock();
        if let Some(existing) = state.reservations.get(order_id) {
            return match (existing.released, existing.lines == lines) {
                (false, true) => ReserveResult::AlreadyReserved {
                    units: units(lines),
                },
                (false, false) => ReserveResult::Conflict(ConflictReason::OtherLines),
                (true, _) => ReserveResult::Conflict(ConflictReason::Released),
            };
        }
        let merged = merge_lines(lines);
        for wanted in &merged {
            match state.stock.get(&wanted.sku) {
                None => {
                    return ReserveResult::Short(Shortage::UnknownSku {
                        line: wanted.line,
                        sku: wanted.sku.clone(),
                    })
                }
                Some(&available) if available < wanted.quantity => {
                    return ReserveResult::Short(Shortage::Insufficient {
                        line: wanted.line,
                        sku: wanted.sku.clone(),
                        requested: wanted.quantity,
                        available,
                    })
                }
                Some(_) => {}
            }
        }
        for wanted in &merged {
            if let Some(level) = state.stock.get_mut(&wanted.sku) {
                *level -= wanted.quantity;
            }
        }
        state.reservations.insert(
            order_id.to_owned(),
            Reservation {
                lines: lines.to_vec(),
                released: false,
            },
        );
        ReserveResult::Reserved {
            units: units(lines),
        }
    }

    fn release_now(&self, order_id: &str) -> ReleaseResult {
        let mut state = self.lock();
        let State {
            stock,
            reservations,
        } = &mut *state;
        let Some(reservation) = reservations.get_mut(order_id) else {
            reservations.insert(
                order_id.to_owned(),
                Reservation {
                    lines: Vec::new(),
                    released: true,
                },
            );
            return ReleaseResult::Tombstoned;
        };
        let released = units(&reservation.lines);
        if reservation.released {
            return ReleaseResult::AlreadyReleased { units: released };
        }
        for line in &reservation.lines {
            if let Some(level) = stock.get_mut(&line.sku) {
                *level = level.saturating_add(line.quantity);
            }
        }
        reservation.released = true;
        ReleaseResult::Released { units: released }
    }
}

impl StockStore for MemoryStockStore {
    async fn reserve(
        &self,
        order_id: &str,
        lines: &[ReservationLine],
    ) -> Result<ReserveResult, StoreError> {
        Ok(self.reserve_now(order_id, lines))
    }

    async fn release(&self, order_id: &str) -> Result<ReleaseResult, StoreError> {
        Ok(self.release_now(order_id))
    }
}
