//! After a local run: is every unit of stock accounted for? Read from the inventory table itself.
//!
//! Two checks, both exact:
//! - **Per SKU**: the stock the stack started with equals what is available plus what `RESERVED`
//!   reservations hold. A lost release, a double decrement or a reservation stranded by a race
//!   breaks it.
//! - **Per run**: the run's orders hold exactly one `RESERVED` reservation each when created (201)
//!   and none otherwise, so the count of the run's `RESERVED` reservations equals its created
//!   orders. A failed order whose stock stayed held breaks it.
//!
//! Plus the failed compensations: inventory's release calls in the access log that were not
//! answered 200.

use std::collections::BTreeMap;

use inventory::table::{Contents, STATUS_RELEASED, STATUS_RESERVED};
use serde::{Deserialize, Serialize};

/// One SKU whose stock does not add up.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Imbalance {
    /// The SKU.
    pub sku: String,
    /// Units at the start.
    pub initial: u64,
    /// Units available now.
    pub available: u64,
    /// Units held by `RESERVED` reservations.
    pub held: u64,
}

/// What the inventory table says after the run.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StockConservation {
    /// SKUs checked.
    pub skus: u64,
    /// Units at the start, all SKUs.
    pub initial_units: u64,
    /// Units available now.
    pub available_units: u64,
    /// Units held by `RESERVED` reservations.
    pub held_units: u64,
    /// SKUs whose stock does not add up (empty when conserved).
    pub imbalances: Vec<Imbalance>,
    /// The run's orders answered 201.
    pub created_orders: u64,
    /// The run's `RESERVED` reservations (must equal `created_orders`).
    pub reserved_by_run: u64,
    /// The run's released reservations (compensations).
    pub released_by_run: u64,
    /// Of those, tombstones: a release that came first, with nothing to give back.
    pub tombstones_by_run: u64,
    /// Inventory release calls not answered 200 (from its access log).
    pub failed_releases: u64,
    /// Every check held.
    pub conserved: bool,
}

/// Checks `contents` (the whole table) against the stock it started with, for the run whose order
/// ids start with `<run_id>-`.
pub fn check(
    initial: &BTreeMap<String, u32>,
    contents: &Contents,
    run_id: &str,
    created_orders: u64,
    failed_releases: u64,
) -> StockConservation {
    let held = contents.held();
    let mut report = StockConservation {
        created_orders,
        failed_releases,
        ..StockConservation::default()
    };
    let skus: std::collections::BTreeSet<&String> = initial
        .keys()
        .chain(contents.available.keys())
        .chain(held.keys())
        .collect();
    for sku in skus {
        let start = initial.get(sku).copied().map_or(0, u64::from);
        let available = contents.available.get(sku).copied().map_or(0, u64::from);
        let held = held.get(sku).copied().unwrap_or(0);
        report.skus += 1;
        report.initial_units += start;
        report.available_units += available;
        report.held_units += held;
        if start != available + held {
            report.imbalances.push(Imbalance {
                sku: sku.clone(),
                initial: start,
                available,
                held,
            });
        }
    }
    let prefix = format!("{run_id}-");
    for row in contents
        .reservations
        .values()
        .filter(|r| r.order_id.starts_with(&prefix))
    {
        match row.status.as_str() {
            STATUS_RESERVED => report.reserved_by_run += 1,
            STATUS_RELEASED => {
                report.released_by_run += 1;
                if row.lines.is_empty() {
                    report.tombstones_by_run += 1;
                }
            }
            _ => {}
        }
    }
    report.conserved = report.imbalances.is_empty()
        && report.reserved_by_run == report.created_orders
        && report.failed_releases == 0;
    report
}

/// Inventory's release calls in access-log lines (JSON) that were not answered 200.
pub fn failed_releases<'a>(
    lines: impl IntoIterator<Item = &'a serde_json::Value>,
    inventory_arn: &str,
) -> u64 {
    lines
        .into_iter()
        .filter(|line| line["serviceArn"] == inventory_arn)
        .filter(|line| {
            line["requestPath"]
                .as_str()
                .is_some_and(|p| p.ends_with("/release"))
        })
        .filter(|line| line["responseCode"] != 200)
        .count() as u64
}

#[cfg(test)]
mod tests {
    use super::*;
    use inventory::table::ReservationRow;
    use serde_json::json;

    fn row(order_id: &str, status: &str, lines: &[(&str, u32)]) -> (String, ReservationRow) {
        (
            order_id.to_owned(),
            ReservationRow {
                order_id: order_id.to_owned(),
                status: status.to_owned(),
                lines: lines.iter().map(|(s, n)| (s.to_string(), *n)).collect(),
                expires: status == STATUS_RELEASED,
            },
        )
    }

    #[test]
    fn conserved_stock_and_what_breaks_it() {
        let initial = BTreeMap::from([("A".to_owned(), 10), ("B".to_owned(), 5)]);
        let mut contents = Contents {
            available: BTreeMap::from([("A".to_owned(), 7), ("B".to_owned(), 5)]),
            reservations: BTreeMap::from([
                row("run-1-0", STATUS_RESERVED, &[("A", 3)]),
                row("run-1-1", STATUS_RELEASED, &[("B", 2)]),
                row("run-1-2", STATUS_RELEASED, &[]),
                row("other-0", STATUS_RELEASED, &[("A", 1)]),
            ]),
        };
        let ok = check(&initial, &contents, "run-1", 1, 0);
        assert_eq!(
            ok,
            StockConservation {
                skus: 2,
                initial_units: 15,
                available_units: 12,
                held_units: 3,
                imbalances: vec![],
                created_orders: 1,
                reserved_by_run: 1,
                released_by_run: 2,
                tombstones_by_run: 1,
                failed_releases: 0,
                conserved: true,
            }
        );
        // A failed order's reservation left held: one more RESERVED than created, and B short.
        contents
            .reservations
            .extend([row("run-1-3", STATUS_RESERVED, &[("B", 1)])]);
        let stranded = check(&initial, &contents, "run-1", 1, 0);
        assert_eq!(stranded.reserved_by_run, 2);
        assert_eq!(
            stranded.imbalances,
            [Imbalance {
                sku: "B".into(),
                initial: 5,
                available: 5,
                held: 1
            }]
        );
        assert!(!stranded.conserved);
        assert!(!check(&initial, &Contents::default(), "run-1", 0, 1).conserved);
    }

    #[test]
    fn failed_releases_are_non_200_release_calls_to_inventory() {
        let lines = [
            json!({"serviceArn": "inv", "requestPath": "/reservations/o-1/release", "responseCode": 200}),
            json!({"serviceArn": "inv", "requestPath": "/reservations/o-2/release", "responseCode": 404}),
            json!({"serviceArn": "inv", "requestPath": "/reservations", "responseCode": 409}),
            json!({"serviceArn": "pay", "requestPath": "/reservations/o-3/release", "responseCode": 500}),
        ];
        assert_eq!(failed_releases(&lines, "inv"), 1);
    }
}
