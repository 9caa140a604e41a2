//! The seeded catalog and all-or-nothing reservations, per execution environment.

use std::collections::HashMap;
use std::sync::Mutex;

use lattice_xray::simulation::{catalog_sku, Simulator, CATALOG_SIZE};

use crate::reservation::ReservationLine;

/// Why a reservation could not be made.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Shortage {
    /// Not enough units of a catalog SKU.
    Insufficient {
        /// Index of the line in the request.
        line: usize,
        /// The SKU.
        sku: String,
        /// Units asked for.
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

/// What happened to a reservation request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReserveResult {
    /// Held now.
    Reserved {
        /// Units held.
        units: u64,
    },
    /// Held by an earlier request with the same order id; nothing changed.
    AlreadyReserved {
        /// Units held.
        units: u64,
    },
    /// The order id was used before with other lines, or its reservation was released.
    Conflict,
    /// Not held.
    Short(Shortage),
}

/// What happened to a release request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReleaseResult {
    /// Units returned to stock now (or earlier: releasing twice is not an error).
    Released {
        /// Units returned.
        units: u64,
    },
    /// No reservation for that order.
    NotFound,
}

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

/// Stock levels and reservations.
#[derive(Debug)]
pub struct Stock {
    state: Mutex<State>,
}

impl Stock {
    /// A catalog of [`CATALOG_SIZE`] SKUs with `min..=max` units each, drawn from `seed`.
    pub fn seeded(seed: u64, min: u32, max: u32) -> Self {
        let simulator = Simulator::seeded(seed);
        let stock = (0..CATALOG_SIZE)
            .map(|i| {
                (
                    catalog_sku(i),
                    simulator.between(u64::from(min), u64::from(max)) as u32,
                )
            })
            .collect();
        Self::with_levels(stock)
    }

    /// A catalog with exactly these levels.
    pub fn with_levels(stock: HashMap<String, u32>) -> Self {
        Self {
            state: Mutex::new(State {
                stock,
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

    /// Holds every line or none.
    pub fn reserve(&self, order_id: &str, lines: &[ReservationLine]) -> ReserveResult {
        let mut state = self.lock();
        if let Some(existing) = state.reservations.get(order_id) {
            return if !existing.released && existing.lines == lines {
                ReserveResult::AlreadyReserved {
                    units: units(lines),
                }
            } else {
                ReserveResult::Conflict
            };
        }
        // Lines may repeat a SKU: check the sum per SKU, then take.
        let mut wanted: HashMap<&str, (u32, usize)> = HashMap::new();
        for (i, line) in lines.iter().enumerate() {
            let entry = wanted.entry(line.sku.as_str()).or_insert((0, i));
            entry.0 = entry.0.saturating_add(line.quantity);
        }
        let mut by_line: Vec<_> = wanted.iter().collect();
        by_line.sort_by_key(|(_, (_, line))| *line);
        for (sku, (requested, line)) in by_line {
            match state.stock.get(*sku) {
                None => {
                    return ReserveResult::Short(Shortage::UnknownSku {
                        line: *line,
                        sku: sku.to_string(),
                    })
                }
                Some(&available) if available < *requested => {
                    return ReserveResult::Short(Shortage::Insufficient {
                        line: *line,
                        sku: sku.to_string(),
                        requested: *requested,
                        available,
                    })
                }
                Some(_) => {}
            }
        }
        for (sku, (requested, _)) in &wanted {
            if let Some(level) = state.stock.get_mut(*sku) {
                *level -= requested;
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

    /// Returns an order's units to stock (once, however often it is asked).
    pub fn release(&self, order_id: &str) -> ReleaseResult {
        let mut state = self.lock();
        let State {
            stock,
            reservations,
        } = &mut *state;
        let Some(reservation) = reservations.get_mut(order_id) else {
            return ReleaseResult::NotFound;
        };
        if !reservation.released {
            for line in &reservation.lines {
                if let Some(level) = stock.get_mut(&line.sku) {
                    *level = level.saturating_add(line.quantity);
                }
            }
            reservation.released = true;
        }
        ReleaseResult::Released {
            units: units(&reservation.lines),
        }
    }
}

fn units(lines: &[ReservationLine]) -> u64 {
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

    fn stock() -> Stock {
        Stock::with_levels(HashMap::from([("A".to_owned(), 5), ("B".to_owned(), 1)]))
    }

    #[test]
    fn reserves_all_or_nothing() {
        let stock = stock();
        assert_eq!(
            stock.reserve("o1", &[line("A", 2), line("B", 2)]),
            ReserveResult::Short(Shortage::Insufficient {
                line: 1,
                sku: "B".into(),
                requested: 2,
                available: 1
            })
        );
        assert_eq!(stock.available("A"), Some(5), "nothing taken on a shortage");
        assert_eq!(
            stock.reserve("o1", &[line("A", 2), line("B", 1)]),
            ReserveResult::Reserved { units: 3 }
        );
        assert_eq!(
            (stock.available("A"), stock.available("B")),
            (Some(3), Some(0))
        );
    }

    #[test]
    fn repeated_skus_are_summed() {
        let stock = stock();
        assert!(matches!(
            stock.reserve("o", &[line("A", 3), line("A", 3)]),
            ReserveResult::Short(_)
        ));
        assert_eq!(
            stock.reserve("o", &[line("Z", 1)]),
            ReserveResult::Short(Shortage::UnknownSku {
                line: 0,
                sku: "Z".into()
            })
        );
    }

    #[test]
    fn idempotent_reserve_and_release() {
        let stock = stock();
        let lines = [line("A", 2)];
        assert_eq!(
            stock.reserve("o", &lines),
            ReserveResult::Reserved { units: 2 }
        );
        assert_eq!(
            stock.reserve("o", &lines),
            ReserveResult::AlreadyReserved { units: 2 }
        );
        assert_eq!(stock.reserve("o", &[line("A", 1)]), ReserveResult::Conflict);
        assert_eq!(stock.available("A"), Some(3));
        assert_eq!(stock.release("o"), ReleaseResult::Released { units: 2 });
        assert_eq!(stock.release("o"), ReleaseResult::Released { units: 2 });
        assert_eq!(stock.available("A"), Some(5), "released once");
        assert_eq!(stock.release("nope"), ReleaseResult::NotFound);
        assert_eq!(
            stock.reserve("o", &lines),
            ReserveResult::Conflict,
            "a released order stays released"
        );
    }

    #[test]
    fn seeded_catalog_is_reproducible() {
        let a = Stock::seeded(2, 1000, 5000);
        let b = Stock::seeded(2, 1000, 5000);
        for i in 0..CATALOG_SIZE {
            let sku = catalog_sku(i);
            assert_eq!(a.available(&sku), b.available(&sku));
            assert!((1000..=5000).contains(&a.available(&sku).unwrap()));
        }
    }
}
