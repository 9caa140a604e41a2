//! Reservation requests and answers.

use serde::{Deserialize, Serialize};

use lattice_xray::ApiError;

/// Most lines one reservation may hold.
pub const MAX_LINES: usize = 50;
/// Most units of one SKU per line.
pub const MAX_QUANTITY: u32 = 100;

/// One SKU and how many units.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ReservationLine {
    /// Catalog SKU.
    pub sku: String,
    /// Units, 1–100.
    pub quantity: u32,
}

/// `POST /reservations` body.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ReserveRequest {
    /// The order; the idempotency key.
    pub order_id: String,
    /// What to hold.
    pub items: Vec<ReservationLine>,
}

impl ReserveRequest {
    /// Checks the fields, naming the first one at fault.
    pub fn validate(&self) -> Result<(), ApiError> {
        if self.order_id.trim().is_empty() || self.order_id.len() > 128 {
            return Err(ApiError::invalid_field(
                "order_id",
                "order_id must be 1-128 characters",
            ));
        }
        if self.items.is_empty() || self.items.len() > MAX_LINES {
            return Err(ApiError::invalid_field(
                "items",
                format!("items must hold 1-{MAX_LINES} lines"),
            ));
        }
        for (i, line) in self.items.iter().enumerate() {
            if line.sku.trim().is_empty() {
                return Err(ApiError::invalid_field(
                    format!("items[{i}].sku"),
                    "sku must not be empty",
                ));
            }
            if !(1..=MAX_QUANTITY).contains(&line.quantity) {
                return Err(ApiError::invalid_field(
                    format!("items[{i}].quantity"),
                    format!("quantity must be between 1 and {MAX_QUANTITY}"),
                ));
            }
        }
        Ok(())
    }

    /// Total units asked for.
    pub fn units(&self) -> u64 {
        self.items.iter().map(|l| u64::from(l.quantity)).sum()
    }
}

/// `200` body of reserve and release.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
pub struct ReservationAnswer {
    /// The order.
    pub order_id: String,
    /// `reserved` or `released`.
    pub status: String,
    /// Units held (or given back).
    pub units: u64,
}
