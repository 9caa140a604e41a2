//! Reservation requests and answers.

use serde::{Deserialize, Serialize};

use lattice_xray::api::check_lines;
use lattice_xray::ApiError;

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
        check_lines(self.items.iter().map(|l| (l.sku.as_str(), l.quantity)))?;
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
