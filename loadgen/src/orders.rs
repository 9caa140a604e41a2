//! The orders loadgen sends: order `i` of a run is drawn from its own stream of a seeded RNG
//! (`--seed`), so a run can be repeated exactly whatever the concurrency, and workers need no
//! lock to take the next one. Bodies are built before the timed path; the timed path only signs
//! and sends.

use bytes::Bytes;
use lattice_xray::simulation::{catalog_sku, CATALOG_SIZE};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

/// A fresh run id, `run-` and 8 random hex digits.
pub fn random_run_id() -> String {
    format!("run-{:08x}", rand::rng().random::<u32>())
}

/// Customers the generator draws from.
pub const CUSTOMERS: u64 = 10_000;

/// One order ready to send.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Order {
    /// `order_id` (unique in the run: `<run id>-<sequence>`).
    pub order_id: String,
    /// The JSON body.
    pub body: Bytes,
    /// Sampled: sent with `Sampled=1` and traced, or with `Sampled=0` and recorded nowhere.
    pub traced: bool,
}

#[derive(Serialize)]
struct OrderBody<'a> {
    order_id: &'a str,
    customer_id: String,
    items: Vec<OrderLine>,
}

#[derive(Serialize)]
struct OrderLine {
    sku: String,
    quantity: u32,
    unit_price: f64,
}

/// Seeded order generator.
#[derive(Debug)]
pub struct OrderGenerator {
    /// Stream 0 at word 0; order `i` reads stream `i`.
    rng: ChaCha8Rng,
    run_id: String,
    sample_rate: f64,
}

impl OrderGenerator {
    /// Orders for run `run_id` from `seed`, every one traced.
    pub fn new(seed: u64, run_id: &str) -> Self {
        Self {
            rng: ChaCha8Rng::seed_from_u64(seed),
            run_id: run_id.to_owned(),
            sample_rate: 1.0,
        }
    }

    /// Traces this share of the orders (0 to 1), drawn per order from the same seed.
    pub fn with_sample_rate(mut self, sample_rate: f64) -> Self {
        self.sample_rate = sample_rate;
        self
    }

    /// Order number `sequence`: a customer, 1–5 distinct SKUs from the catalog, quantities 1–3,
    /// prices 0.50–99.99; and whether it is traced.
    pub fn order(&self, sequence: u64) -> Order {
        let mut rng = self.rng.clone();
        rng.set_stream(sequence);
        let customer = rng.random_range(1..=CUSTOMERS);
        let lines = rng.random_range(1..=5usize);
        let mut skus: Vec<usize> = Vec::with_capacity(lines);
        while skus.len() < lines {
            // catalog_sku takes a 0-based index.
            let sku = rng.random_range(0..CATALOG_SIZE);
            if !skus.contains(&sku) {
                skus.push(sku);
            }
        }
        let items = skus
            .into_iter()
            .map(|sku| {
                let cents = rng.random_range(50..=9_999u32);
                OrderLine {
                    sku: catalog_sku(sku),
                    quantity: rng.random_range(1..=3u32),
                    unit_price: f64::from(cents) / 100.0,
                }
            })
            .collect();
        // Drawn last, so the sample rate changes which orders are traced, not the orders.
        let traced = self.sample_rate >= 1.0 || rng.random::<f64>() < self.sample_rate;
        let order_id = format!("{}-{sequence}", self.run_id);
        let body = serde_json::to_vec(&OrderBody {
            order_id: &order_id,
            customer_id: format!("cust-{customer:05}"),
            items,
        })
        .expect("an order of strings and numbers serializes");
        Order {
            order_id,
            body: Bytes::from(body),
            traced,
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
        let (a, b) = (OrderGenerator::new(7, "r1"), OrderGenerator::new(7, "r1"));
        // Taken in any order, order i is the same order.
        for i in (0..200).rev() {
            let (x, y) = (a.order(i), b.order(i));
            assert_eq!(x, y);
            assert_ne!(x.body, a.order(i + 1).body);
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
            OrderGenerator::new(8, "r1").order(0),
            OrderGenerator::new(7, "r1").order(0)
        );
    }

    #[test]
    fn the_sample_rate_picks_which_orders_are_traced_and_changes_nothing_else() {
        let every = OrderGenerator::new(3, "r");
        let quarter = OrderGenerator::new(3, "r").with_sample_rate(0.25);
        let traced = (0..4000).filter(|&i| quarter.order(i).traced).count();
        assert!((900..1100).contains(&traced), "{traced} of 4000 at 25 %");
        for i in 0..200 {
            let (all, some) = (every.order(i), quarter.order(i));
            assert!(all.traced);
            assert_eq!((all.order_id, all.body), (some.order_id, some.body));
            assert_eq!(
                some.traced,
                quarter.order(i).traced,
                "order {i} decided twice"
            );
        }
        let none = OrderGenerator::new(3, "r").with_sample_rate(0.0);
        assert!((0..200).all(|i| !none.order(i).traced));
    }
}
