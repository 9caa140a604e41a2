//! Routing, the charge flow, and the one place outcomes become HTTP statuses.

use http::{Method, StatusCode};
use lattice_xray::lambda_http::{Body, Request, Response};
use lattice_xray::{annotate, json_response, keys, read_json, record_metadata, ApiError, Endpoint};
use serde_json::json;

use crate::charge::{ChargeOutcome, ChargeRequest, PaymentApproved};
use crate::gateway::Gateway;
use crate::ledger::Ledger;

/// The payment service over a gateway.
#[derive(Debug)]
pub struct PaymentEndpoint<G> {
    gateway: G,
    ledger: Ledger,
}

impl<G: Gateway> PaymentEndpoint<G> {
    /// A service charging through `gateway`.
    pub fn new(gateway: G) -> Self {
        Self {
            gateway,
            ledger: Ledger::default(),
        }
    }

    async fn charge(&self, request: &Request) -> Result<Response<Body>, ApiError> {
        let charge: ChargeRequest = read_json(request)?;
        charge.validate()?;
        annotate(&keys::ORDER_ID, charge.order_id.as_str());
        record_metadata(
            "payment",
            json!({"order_id": charge.order_id, "amount": charge.amount, "currency": charge.currency}),
        );

        let (outcome, amount, currency) = match self.ledger.settled(&charge.order_id) {
            Some(settled) => {
                annotate_replay(true);
                settled
            }
            None => {
                annotate_replay(false);
                match self.gateway.charge(&charge).await {
                    ChargeOutcome::GatewayFault => (
                        ChargeOutcome::GatewayFault,
                        charge.amount,
                        charge.currency.clone(),
                    ),
                    settled => self.ledger.settle(
                        &charge.order_id,
                        settled,
                        charge.amount,
                        &charge.currency,
                    ),
                }
            }
        };
        annotate(&keys::PAYMENT_STATUS, outcome.status());
        match outcome {
            ChargeOutcome::Approved { payment_id } => Ok(json_response(
                StatusCode::OK,
                &PaymentApproved {
                    payment_id,
                    order_id: charge.order_id,
                    status: "approved".to_owned(),
                    amount,
                    currency,
                },
            )),
            ChargeOutcome::Declined { reason } => Err(ApiError::new(
                StatusCode::PAYMENT_REQUIRED,
                "payment_declined",
                reason,
            )),
            ChargeOutcome::GatewayFault => Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "gateway_fault",
                "the payment gateway failed; nothing was charged",
            )),
        }
    }
}

fn annotate_replay(replayed: bool) {
    annotate(&IDEMPOTENT_REPLAY, replayed);
}

const IDEMPOTENT_REPLAY: lattice_xray::AnnotationKey =
    lattice_xray::AnnotationKey::from_static("idempotent_replay");

impl<G: Gateway> Endpoint for PaymentEndpoint<G> {
    async fn handle(&self, request: Request) -> Response<Body> {
        let result = match request.uri().path() {
            "/payments" if request.method() == Method::POST => self.charge(&request).await,
            "/payments" => Err(ApiError::method_not_allowed(request.method(), "POST")),
            path => Err(ApiError::not_found(path)),
        };
        result.unwrap_or_else(ApiError::into_response)
    }
}
