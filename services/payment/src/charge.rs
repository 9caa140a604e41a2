//! What a charge request is, and what can come of it.

use serde::{Deserialize, Serialize};

use lattice_xray::ApiError;

/// `POST /payments` body.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ChargeRequest {
    /// The order being paid; the idempotency key.
    pub order_id: String,
    /// Amount in major units (e.g. 42.50).
    pub amount: f64,
    /// ISO 4217 code, three upper-case letters.
    pub currency: String,
}

impl ChargeRequest {
    /// Checks the fields, naming the first one at fault.
    pub fn validate(&self) -> Result<(), ApiError> {
        if self.order_id.trim().is_empty() || self.order_id.len() > 128 {
            return Err(ApiError::invalid_field(
                "order_id",
                "order_id must be 1-128 characters",
            ));
        }
        if !(self.amount.is_finite() && self.amount > 0.0) {
            return Err(ApiError::invalid_field(
                "amount",
                "amount must be a number greater than 0",
            ));
        }
        if self.currency.len() != 3 || !self.currency.bytes().all(|b| b.is_ascii_uppercase()) {
            return Err(ApiError::invalid_field(
                "currency",
                "currency must be a three-letter ISO 4217 code such as USD",
            ));
        }
        Ok(())
    }
}

/// The gateway's answer.
#[derive(Clone, Debug, PartialEq)]
pub enum ChargeOutcome {
    /// Money taken.
    Approved {
        /// Our id for the payment.
        payment_id: String,
    },
    /// The issuer said no.
    Declined {
        /// Why, as the gateway put it.
        reason: String,
    },
    /// The gateway failed; nothing was charged and a retry may succeed.
    GatewayFault,
}

impl ChargeOutcome {
    /// Value of the `payment_status` annotation.
    pub fn status(&self) -> &'static str {
        match self {
            Self::Approved { .. } => "approved",
            Self::Declined { .. } => "declined",
            Self::GatewayFault => "fault",
        }
    }
}

/// `200` body.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PaymentApproved {
    /// Our id for the payment.
    pub payment_id: String,
    /// The order paid.
    pub order_id: String,
    /// Always `approved`.
    pub status: String,
    /// Amount charged.
    pub amount: f64,
    /// Currency charged.
    pub currency: String,
}
