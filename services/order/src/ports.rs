//! What order needs from inventory and payment. The Lattice adapters implement these for real;
//! tests implement them in memory.

use std::future::Future;

use crate::order::OrderLine;

/// Inventory's answer to a reservation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReserveOutcome {
    /// Stock is held.
    Reserved,
    /// Inventory refused (short stock, conflicting order id), with its code and message.
    Refused {
        /// Inventory's error code, e.g. `insufficient_stock`.
        code: String,
        /// Inventory's message.
        message: String,
    },
}

/// Payment's answer to a charge.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChargeOutcome {
    /// Charged.
    Approved {
        /// Payment's id.
        payment_id: String,
    },
    /// The issuer declined.
    Declined {
        /// Payment's message.
        message: String,
    },
}

/// A call that did not produce a business answer.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DownstreamError {
    /// The service answered with a status it should not (5xx, unexpected 4xx) or an unreadable body.
    #[error("answered {status}")]
    Fault {
        /// HTTP status (0 when the body, not the status, was the problem).
        status: u16,
    },
    /// No answer in time.
    #[error("timed out")]
    Timeout,
    /// Could not be reached.
    #[error("unreachable")]
    Unreachable,
}

/// Stock reservations.
pub trait Inventory: Send + Sync + 'static {
    /// Holds stock for every line of the order, or none.
    fn reserve(
        &self,
        order_id: &str,
        items: &[OrderLine],
    ) -> impl Future<Output = Result<ReserveOutcome, DownstreamError>> + Send;

    /// Gives an order's stock back (idempotent; unknown orders are fine).
    fn release(&self, order_id: &str) -> impl Future<Output = Result<(), DownstreamError>> + Send;
}

/// Charges.
pub trait Payment: Send + Sync + 'static {
    /// Charges `amount` for the order (idempotent per order id).
    fn charge(
        &self,
        order_id: &str,
        amount: f64,
        currency: &str,
    ) -> impl Future<Output = Result<ChargeOutcome, DownstreamError>> + Send;
}
