//! What an order is, how it is checked, and what it costs.

use serde::{Deserialize, Serialize};

use lattice_xray::api::check_lines;
use lattice_xray::ApiError;

/// One line of an order.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct OrderLine {
    /// Catalog SKU.
    pub sku: String,
    /// Units, 1–100.
    pub quantity: u32,
    /// Price per unit, > 0.
    pub unit_price: f64,
}

/// `POST /orders` body.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct OrderRequest {
    /// Caller's id for the order (makes retries idempotent downstream); generated when absent.
    #[serde(default)]
    pub order_id: Option<String>,
    /// Who is ordering.
    pub customer_id: String,
    /// What is ordered.
    pub items: Vec<OrderLine>,
}

/// An order that passed validation, with its id settled.
#[derive(Clone, Debug, PartialEq)]
pub struct ValidOrder {
    /// The order id.
    pub order_id: String,
    /// Who is ordering.
    pub customer_id: String,
    /// What is ordered.
    pub items: Vec<OrderLine>,
    /// Sum of quantity × unit price, rounded to cents.
    pub total: f64,
}

fn is_valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

impl OrderRequest {
    /// Checks every field, naming the first at fault; `new_id` supplies an id when none was given.
    pub fn validate(self, new_id: impl FnOnce() -> String) -> Result<ValidOrder, ApiError> {
        let order_id = match self.order_id {
            Some(id) if is_valid_id(&id) => id,
            Some(_) => {
                return Err(ApiError::invalid_field(
                    "order_id",
                    "order_id must be 1-64 letters, digits, '-' or '_'",
                ))
            }
            None => new_id(),
        };
        if self.customer_id.trim().is_empty() {
            return Err(ApiError::invalid_field(
                "customer_id",
                "customer_id must not be empty",
            ));
        }
        check_lines(self.items.iter().map(|l| (l.sku.as_str(), l.quantity)))?;
        for (i, line) in self.items.iter().enumerate() {
            if !(line.unit_price.is_finite() && line.unit_price > 0.0) {
                return Err(ApiError::invalid_field(
                    format!("items[{i}].unit_price"),
                    "unit_price must be a number greater than 0",
                ));
            }
        }
        let cents: f64 = self
            .items
            .iter()
            .map(|l| f64::from(l.quantity) * (l.unit_price * 100.0).round())
            .sum();
        Ok(ValidOrder {
            order_id,
            customer_id: self.customer_id,
            items: self.items,
            total: cents / 100.0,
        })
    }
}

/// `201` body.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
pub struct OrderCreated {
    /// The order id.
    pub order_id: String,
    /// Always `created`.
    pub status: String,
    /// Payment service's id for the charge.
    pub payment_id: String,
    /// Amount charged.
    pub total: f64,
    /// Currency charged.
    pub currency: String,
    /// Number of lines.
    pub item_count: usize,
}
