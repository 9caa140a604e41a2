//! The inventory table: its schema, its seeding, and a reader of its whole contents.
//!
//! One definition serves the local stack (which creates and seeds the table at start), the
//! adapter tests (against both local DynamoDB servers) and the conservation check after a load run;
//! `infra/aws/template.yaml` declares the same schema for AWS (the template checks hold it to
//! [`PARTITION_KEY`] and [`EXPIRES_AT`]).

use std::collections::BTreeMap;

use aws_sdk_dynamodb::types::{AttributeValue, PutRequest, WriteRequest};
use aws_sdk_dynamodb::Client;
use lattice_xray::simulation::{catalog_sku, Simulator, CATALOG_SIZE};

/// The table's only key attribute.
pub const PARTITION_KEY: &str = "pk";
/// Units on hand (stock rows).
pub const AVAILABLE: &str = "available";
/// `RESERVED` or `RELEASED` (reservation rows).
pub const STATUS: &str = "status";
/// SKU → units held (reservation rows).
pub const LINES: &str = "lines";
/// When the reservation (or tombstone) was written, epoch seconds.
pub const CREATED_AT: &str = "created_at";
/// The TTL attribute, epoch seconds; set on terminal records only.
pub const EXPIRES_AT: &str = "expires_at";
/// A reservation holding stock.
pub const STATUS_RESERVED: &str = "RESERVED";
/// A reservation given back, or a tombstone.
pub const STATUS_RELEASED: &str = "RELEASED";

const SKU_PREFIX: &str = "SKU#";
const RESERVATION_PREFIX: &str = "RES#";
/// BatchWriteItem's limit.
const BATCH_LIMIT: usize = 25;

/// The key of a SKU's stock row.
pub fn sku_key(sku: &str) -> AttributeValue {
    AttributeValue::S(format!("{SKU_PREFIX}{sku}"))
}

/// The key of an order's reservation row.
pub fn reservation_key(order_id: &str) -> AttributeValue {
    AttributeValue::S(format!("{RESERVATION_PREFIX}{order_id}"))
}

/// The simulated catalog: [`CATALOG_SIZE`] SKUs with `min..=max` units each, drawn from `seed`.
pub fn seeded_levels(seed: u64, min: u32, max: u32) -> Vec<(String, u32)> {
    let simulator = Simulator::seeded(seed);
    (0..CATALOG_SIZE)
        .map(|i| {
            (
                catalog_sku(i),
                simulator.between(u64::from(min), u64::from(max)) as u32,
            )
        })
        .collect()
}

/// Creates the table (on-demand, TTL on [`EXPIRES_AT`]).
pub async fn create(client: &Client, table: &str) -> Result<(), aws_sdk_dynamodb::Error> {
    lattice_xray::dynamodb::create_table(client, table, PARTITION_KEY, EXPIRES_AT).await
}

/// Writes a stock row per SKU (overwriting any).
pub async fn seed(
    client: &Client,
    table: &str,
    levels: &[(String, u32)],
) -> Result<(), aws_sdk_dynamodb::Error> {
    for chunk in levels.chunks(BATCH_LIMIT) {
        let mut requests = Vec::with_capacity(chunk.len());
        for (sku, available) in chunk {
            let put = PutRequest::builder()
                .item(PARTITION_KEY, sku_key(sku))
                .item(AVAILABLE, AttributeValue::N(available.to_string()))
                .build()?;
            requests.push(WriteRequest::builder().put_request(put).build());
        }
        let mut pending = BTreeMap::from([(table.to_owned(), requests)]);
        // BatchWriteItem may leave items unprocessed under load: send them again.
        for _ in 0..10 {
            let output = client
                .batch_write_item()
                .set_request_items(Some(pending.into_iter().collect()))
                .send()
                .await?;
            pending = output
                .unprocessed_items
                .unwrap_or_default()
                .into_iter()
                .filter(|(_, r)| !r.is_empty())
                .collect();
            if pending.is_empty() {
                break;
            }
        }
    }
    Ok(())
}

/// One reservation row, as read back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReservationRow {
    /// The order.
    pub order_id: String,
    /// `RESERVED` or `RELEASED`.
    pub status: String,
    /// SKU → units.
    pub lines: BTreeMap<String, u32>,
    /// Whether a TTL is set.
    pub expires: bool,
}

/// Everything in the table: stock per SKU and every reservation.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Contents {
    /// SKU → units available.
    pub available: BTreeMap<String, u32>,
    /// Reservation rows, by order id.
    pub reservations: BTreeMap<String, ReservationRow>,
}

impl Contents {
    /// Units each SKU has held by `RESERVED` reservations.
    pub fn held(&self) -> BTreeMap<String, u64> {
        let mut held = BTreeMap::new();
        for row in self.reservations.values() {
            if row.status == STATUS_RESERVED {
                for (sku, units) in &row.lines {
                    *held.entry(sku.clone()).or_insert(0) += u64::from(*units);
                }
            }
        }
        held
    }
}

fn number_of(item: &std::collections::HashMap<String, AttributeValue>, name: &str) -> Option<u32> {
    item.get(name)?.as_n().ok()?.parse().ok()
}

/// Reads the whole table (a consistent scan, page by page).
pub async fn read_contents(
    client: &Client,
    table: &str,
) -> Result<Contents, aws_sdk_dynamodb::Error> {
    let mut contents = Contents::default();
    let mut start = None;
    loop {
        let page = client
            .scan()
            .table_name(table)
            .consistent_read(true)
            .set_exclusive_start_key(start)
            .send()
            .await?;
        for item in page.items() {
            let Some(pk) = item.get(PARTITION_KEY).and_then(|v| v.as_s().ok()) else {
                continue;
            };
            if let Some(sku) = pk.strip_prefix(SKU_PREFIX) {
                contents
                    .available
                    .insert(sku.to_owned(), number_of(item, AVAILABLE).unwrap_or(0));
            } else if let Some(order_id) = pk.strip_prefix(RESERVATION_PREFIX) {
                let lines = item
                    .get(LINES)
                    .and_then(|v| v.as_m().ok())
                    .map(|m| {
                        m.iter()
                            .filter_map(|(sku, n)| {
                                Some((sku.clone(), n.as_n().ok()?.parse().ok()?))
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                let row = ReservationRow {
                    order_id: order_id.to_owned(),
                    status: item
                        .get(STATUS)
                        .and_then(|v| v.as_s().ok())
                        .cloned()
                        .unwrap_or_default(),
                    lines,
                    expires: item.contains_key(EXPIRES_AT),
                };
                contents.reservations.insert(order_id.to_owned(), row);
            }
        }
        match page.last_evaluated_key {
            Some(key) if !key.is_empty() => start = Some(key),
            _ => return Ok(contents),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeded_catalog_is_reproducible_and_in_range() {
        let a = seeded_levels(2, 1000, 5000);
        assert_eq!(a.len(), CATALOG_SIZE);
        assert_eq!(a, seeded_levels(2, 1000, 5000));
        assert_eq!(a[0].0, "SKU-0001");
        assert!(a.iter().all(|(_, n)| (1000..=5000).contains(n)));
        assert_ne!(a, seeded_levels(3, 1000, 5000));
    }
}
