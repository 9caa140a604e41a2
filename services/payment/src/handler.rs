//! Routing, the charge flow, and the one place outcomes become HTTP statuses.

use http::{Method, StatusCode};
use lattice_xray::lambda_http::{Body, Request, Response};
use lattice_xray::{annotate, json_response, keys, read_json, record_metadata, ApiError, Endpoint};
use serde_json::json;

use crate::charge::{ChargeOutcome, ChargeRequest, PaymentApproved};
use crate::gateway::Gateway;
use crate::ledger::{Claim, Ledger, LedgerCharge, LedgerError, Settlement};

/// The payment service over a gateway and a ledger.
#[derive(Debug)]
pub struct PaymentEndpoint<G, L> {
    gateway: G,
    ledger: L,
}

impl<G: Gateway, L: Ledger> PaymentEndpoint<G, L> {
    /// A service charging through `gateway`, recording charges in `ledger`.
    pub fn new(gateway: G, ledger: L) -> Self {
        Self { gateway, ledger }
    }

    async fn charge(&self, request: &Request) -> Result<Response<Body>, ApiError> {
        let charge: ChargeRequest = read_json(request)?;
        charge.validate()?;
        annotate(&keys::ORDER_ID, charge.order_id.as_str());
        record_metadata(
            "payment",
            json!({"order_id": charge.order_id, "amount": charge.amount, "currency": charge.currency}),
        );
        let keyed = LedgerCharge {
            order_id: charge.order_id.clone(),
            amount_cents: (charge.amount * 100.0).round() as i64,
            currency: charge.currency.clone(),
        };
        let claim = self
            .ledger
            .claim(&keyed)
            .await
            .map_err(|e| ledger_failure(&e))?;
        annotate_replay(!matches!(claim, Claim::Claimed));
        let settlement = match claim {
            Claim::Settled(settlement) => settlement,
            Claim::Claimed => self.charge_claimed(&charge).await?,
            Claim::InProgress => {
                annotate(&keys::PAYMENT_STATUS, "in_progress");
                return Err(ApiError::new(
                    StatusCode::CONFLICT,
                    "charge_in_progress",
                    "a charge for this order_id is in progress; retry later",
                ));
            }
            Claim::Mismatch => {
                annotate(&keys::PAYMENT_STATUS, "conflict");
                return Err(ApiError::new(
                    StatusCode::CONFLICT,
                    "payment_conflict",
                    "order_id was charged for another amount or currency",
                ));
            }
        };
        match settlement {
            Settlement::Charged { payment_id } => {
                annotate(&keys::PAYMENT_STATUS, "approved");
                Ok(json_response(
                    StatusCode::OK,
                    &PaymentApproved {
                        payment_id,
                        order_id: charge.order_id,
                        status: "approved".to_owned(),
                        amount: keyed.amount_cents as f64 / 100.0,
                        currency: keyed.currency,
                    },
                ))
            }
            Settlement::Declined { reason } => {
                annotate(&keys::PAYMENT_STATUS, "declined");
                Err(ApiError::new(
                    StatusCode::PAYMENT_REQUIRED,
                    "payment_declined",
                    reason,
                ))
            }
        }
    }

    /// Calls the gateway for a claimed charge and records what it said.
    async fn charge_claimed(&self, charge: &ChargeRequest) -> Result<Settlement, ApiError> {
        let settlement = match self.gateway.charge(charge).await {
            ChargeOutcome::Approved { payment_id } => Settlement::Charged { payment_id },
            ChargeOutcome::Declined { reason } => Settlement::Declined { reason },
            ChargeOutcome::GatewayFault => {
                annotate(&keys::PAYMENT_STATUS, "fault");
                if let Err(error) = self.ledger.abandon(&charge.order_id).await {
                    // The claim's lease runs out instead; a retry after it may charge.
                    tracing::warn!(order_id = %charge.order_id, %error, "could not abandon the claim");
                }
                return Err(ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "gateway_fault",
                    "the payment gateway failed; nothing was charged",
                ));
            }
        };
        self.ledger
            .settle(&charge.order_id, &settlement)
            .await
            .map_err(|e| ledger_failure(&e))
    }
}

/// A ledger failure as the caller's answer: 503 when a retry later may pass, 500 otherwise.
fn ledger_failure(error: &LedgerError) -> ApiError {
    annotate(&keys::PAYMENT_STATUS, "fault");
    match error {
        LedgerError::Unavailable(failure) => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "ledger_unavailable",
            format!("the payment ledger is unavailable ({failure}); retry later"),
        ),
        LedgerError::Fault(detail) => {
            tracing::error!(%detail, "payment ledger fault");
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "ledger_fault",
                "the payment ledger failed",
            )
        }
    }
}

fn annotate_replay(replayed: bool) {
    annotate(&IDEMPOTENT_REPLAY, replayed);
}

const IDEMPOTENT_REPLAY: lattice_xray::AnnotationKey =
    lattice_xray::AnnotationKey::from_static("idempotent_replay");

impl<G: Gateway, L: Ledger> Endpoint for PaymentEndpoint<G, L> {
    async fn handle(&self, request: Request) -> Response<Body> {
        let result = match request.uri().path() {
            "/payments" if request.method() == Method::POST => self.charge(&request).await,
            "/payments" => Err(ApiError::method_not_allowed(request.method(), "POST")),
            path => Err(ApiError::not_found(path)),
        };
        result.unwrap_or_else(ApiError::into_response)
    }
}
