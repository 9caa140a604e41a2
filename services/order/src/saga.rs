//! Reserve, charge, and compensate: the order flow, pure over the ports.
//!
//! Every downstream call also runs under a deadline of its own, so a port that hangs cannot hold
//! the invocation until Lambda kills it. When the charge does not succeed, or the reservation's
//! fate is unknown (fault, timeout), the reservation is released: inventory's release is
//! idempotent and accepts unknown orders, so compensating too often is harmless, too rarely is not.

use std::time::Duration;

use crate::order::ValidOrder;
use crate::ports::{ChargeOutcome, DownstreamError, Inventory, Payment, ReserveOutcome};

/// Attempts of the compensating release when inventory fails fast (an environment that died or
/// failed answers at once): the release is idempotent, so trying again is safe, and a new
/// environment serves the next attempt.
pub const RELEASE_ATTEMPTS: u32 = 3;

/// Which downstream service failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Service {
    /// The inventory service.
    Inventory,
    /// The payment service.
    Payment,
}

impl Service {
    /// The service's name as Lattice and X-Ray know it.
    pub fn name(self) -> &'static str {
        match self {
            Self::Inventory => "inventory",
            Self::Payment => "payment",
        }
    }
}

/// Why an order was not placed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum OrderError {
    /// Inventory refused the reservation.
    #[error("{message}")]
    StockRefused {
        /// Inventory's code.
        code: String,
        /// Inventory's message.
        message: String,
    },
    /// The issuer declined the charge.
    #[error("{0}")]
    PaymentDeclined(String),
    /// A downstream service failed.
    #[error("{} failed", .0.name())]
    DownstreamFault(Service),
    /// A downstream service did not answer in time.
    #[error("{} did not answer in time", .0.name())]
    DownstreamTimeout(Service),
}

/// What became of the reservation, for the `inventory_status` annotation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InventoryStatus {
    /// Held (the order was placed).
    Reserved,
    /// Refused by inventory.
    Refused,
    /// Released after the charge failed.
    Released,
    /// The release itself failed: stock may stay held until inventory expires it.
    ReleaseFailed,
    /// Inventory failed or timed out.
    Failed,
}

/// What became of the charge, for the `payment_status` annotation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PaymentStatus {
    /// Charged.
    Approved,
    /// Declined.
    Declined,
    /// Payment failed.
    Fault,
    /// Payment did not answer in time.
    Timeout,
    /// Never attempted (the reservation failed).
    NotAttempted,
}

impl InventoryStatus {
    /// Annotation value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Reserved => "reserved",
            Self::Refused => "insufficient",
            Self::Released => "released",
            Self::ReleaseFailed => "release_failed",
            Self::Failed => "fault",
        }
    }
}

impl PaymentStatus {
    /// Annotation value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Approved => "approved",
            Self::Declined => "declined",
            Self::Fault => "fault",
            Self::Timeout => "timeout",
            Self::NotAttempted => "not_attempted",
        }
    }
}

/// The saga's result with what happened at each step.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SagaReport {
    /// Payment id on success, the reason otherwise.
    pub outcome: Result<String, OrderError>,
    /// Reservation's fate.
    pub inventory: InventoryStatus,
    /// Charge's fate.
    pub payment: PaymentStatus,
}

async fn within<T>(
    deadline: Duration,
    call: impl std::future::Future<Output = Result<T, DownstreamError>>,
) -> Result<T, DownstreamError> {
    tokio::time::timeout(deadline, call)
        .await
        .unwrap_or(Err(DownstreamError::Timeout))
}

fn failure(service: Service, error: &DownstreamError) -> OrderError {
    match error {
        DownstreamError::Timeout => OrderError::DownstreamTimeout(service),
        DownstreamError::Fault { .. } | DownstreamError::Unreachable => {
            OrderError::DownstreamFault(service)
        }
    }
}

/// Places `order`: reserve at inventory, charge at payment, release on failure.
pub async fn place_order(
    order: &ValidOrder,
    currency: &str,
    inventory: &impl Inventory,
    payment: &impl Payment,
    call_deadline: Duration,
) -> SagaReport {
    let order_id = order.order_id.as_str();
    let release = |status_if_ok: InventoryStatus| async move {
        let mut failure = None;
        for _ in 0..RELEASE_ATTEMPTS {
            match within(call_deadline, inventory.release(order_id)).await {
                Ok(()) => return status_if_ok,
                // A timeout spent the deadline: no second wait.
                Err(DownstreamError::Timeout) => {
                    failure = Some(DownstreamError::Timeout);
                    break;
                }
                Err(error) => failure = Some(error),
            }
        }
        if let Some(error) = failure {
            tracing::warn!(order_id, %error, "compensating release failed");
        }
        InventoryStatus::ReleaseFailed
    };

    match within(call_deadline, inventory.reserve(order_id, &order.items)).await {
        Ok(ReserveOutcome::Reserved) => {}
        Ok(ReserveOutcome::Refused { code, message }) => {
            return SagaReport {
                outcome: Err(OrderError::StockRefused { code, message }),
                inventory: InventoryStatus::Refused,
                payment: PaymentStatus::NotAttempted,
            }
        }
        Err(error) => {
            // The reservation may have been made before the failure: compensate anyway.
            let _ = release(InventoryStatus::Failed).await;
            return SagaReport {
                outcome: Err(failure(Service::Inventory, &error)),
                inventory: InventoryStatus::Failed,
                payment: PaymentStatus::NotAttempted,
            };
        }
    }

    match within(
        call_deadline,
        payment.charge(order_id, order.total, currency),
    )
    .await
    {
        Ok(ChargeOutcome::Approved { payment_id }) => SagaReport {
            outcome: Ok(payment_id),
            inventory: InventoryStatus::Reserved,
            payment: PaymentStatus::Approved,
        },
        Ok(ChargeOutcome::Declined { message }) => SagaReport {
            outcome: Err(OrderError::PaymentDeclined(message)),
            inventory: release(InventoryStatus::Released).await,
            payment: PaymentStatus::Declined,
        },
        Err(error) => SagaReport {
            outcome: Err(failure(Service::Payment, &error)),
            inventory: release(InventoryStatus::Released).await,
            payment: if error == DownstreamError::Timeout {
                PaymentStatus::Timeout
            } else {
                PaymentStatus::Fault
            },
        },
    }
}
