//! The orders loadgen sends: drawn from a seeded RNG (`--seed`), so a run can be repeated exactly.
//! Bodies are built before the timed path; the timed path only signs and sends.

use bytes::Bytes;
use lattice_xray::simulation::{catalog_sku, CATALOG_SIZE};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::json;

/// Customers the generator draws from.
pub const CUSTOMERS: u64 = 10_000;

/// One order ready to send.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Order {
    /// `order_id` (unique in the run: `<run id>-<sequence>`).
    pub order_id: String,
    /// The JSON body.
    pub body: Bytes,
}

/// Seeded order generator.
#[derive(Debug)]
pub struct OrderGenerator {
    rng: ChaCha8Rng,
    run_id: String,
    next: u64,
}

impl OrderGenerator {
    /// Orders for run `run_id` from `seed`.
    pub fn new(seed: u64, run_id: &str) -> Self {
        Self {
            rng: ChaCha8Rng::seed_from_u64(seed),
            run_id: run_id.to_owned(),
            next: 0,
        }
    }

    /// The next order: a customer, 1–5 distinct SKUs from the catalog, quantities 1–3, prices
    /// 0.50–99.99.
    pub fn next_order(&mut self) -> Order {
        let sequence = self.next;
        self.next += 1;
        let customer = self.rng.random_range(1..=CUSTOMERS);
        let lines = self.rng.random_range(1..=5usize);
        let mut skus: Vec<usize> = Vec::with_capacity(lines);
        while skus.len() < lines {
            // catalog_sku takes a 0-based index.
            let sku = self.rng.random_range(0..CATALOG_SIZE);
            if !skus.contains(&sku) {
                skus.push(sku);
            }
        }
        let items: Vec<_> = skus
            .into_iter()
            .map(|sku| {
                let cents = self.rng.random_range(50..=9_999u32);
                json!({
                    "sku": catalog_sku(sku),
                    "quantity": self.rng.random_range(1..=3u32),
                    "unit_price": f64::from(cents) / 100.0,
                })
            })
            .collect();
        let order_id = format!("{}-{sequence}", self.run_id);
        let body = json!({
            "order_id": order_id,
            "customer_id": format!("cust-{customer:05}"),
            "items": items,
        });
        Order {
            order_id,
            body: Bytes::from(body.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    #[test]
    fn the_same_seed_gives_the_same_orders_and_they_are_valid() {
        let catalog: Vec<String> = (0..CATALOG_SIZE).map(catalog_sku).collect();
        let mut a = OrderGenerator::new(7, "r1");
        let mut b = OrderGenerator::new(7, "r1");
        for i in 0..200 {
            let (x, y) = (a.next_order(), b.next_order());
            assert_eq!(x, y);
            assert_eq!(x.order_id, format!("r1-{i}"));
            let body: Value = serde_json::from_slice(&x.body).unwrap();
            let items = body["items"].as_array().unwrap();
            assert!((1..=5).contains(&items.len()));
            for item in items {
                let sku = item["sku"].as_str().unwrap();
                assert!(
                    catalog.iter().any(|c| c == sku),
                    "{sku} is not in the catalog"
                );
                let quantity = item["quantity"].as_u64().unwrap();
                assert!((1..=3).contains(&quantity));
                let price = item["unit_price"].as_f64().unwrap();
                assert!((0.5..=99.99).contains(&price));
            }
        }
        assert_ne!(
            OrderGenerator::new(8, "r1").next_order(),
            OrderGenerator::new(7, "r1").next_order()
        );
    }
}
