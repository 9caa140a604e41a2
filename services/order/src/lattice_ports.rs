//! The inventory and payment ports as signed, traced calls through VPC Lattice.
//!
//! Each adapter maps the peer's HTTP answer onto the port's outcomes: the statuses a peer uses for
//! business answers (409, 402) become outcomes; anything else is a [`DownstreamError`].

use bytes::Bytes;
use lattice_xray::{Error, LatticeClient, LatticeResponse};
use serde::Deserialize;
use serde_json::json;

use crate::order::OrderLine;
use crate::ports::{ChargeOutcome, DownstreamError, Inventory, Payment, ReserveOutcome};

#[derive(Deserialize)]
struct ErrorBody {
    error: String,
    message: String,
}

#[derive(Deserialize)]
struct Approved {
    payment_id: String,
}

fn downstream(error: Error) -> DownstreamError {
    match error {
        Error::Timeout { .. } => DownstreamError::Timeout,
        _ => DownstreamError::Unreachable,
    }
}

fn parse<T: for<'de> Deserialize<'de>>(response: &LatticeResponse) -> Result<T, DownstreamError> {
    serde_json::from_slice(&response.body).map_err(|_| DownstreamError::Fault {
        status: response.status,
    })
}

/// Inventory over Lattice.
#[derive(Clone, Debug)]
pub struct LatticeInventory {
    client: LatticeClient,
    base_url: String,
}

impl LatticeInventory {
    /// Calls the inventory service at `base_url`.
    pub fn new(client: LatticeClient, base_url: &str) -> Self {
        Self {
            client,
            base_url: base_url.trim_end_matches('/').to_owned(),
        }
    }
}

impl Inventory for LatticeInventory {
    async fn reserve(
        &self,
        order_id: &str,
        items: &[OrderLine],
    ) -> Result<ReserveOutcome, DownstreamError> {
        let lines: Vec<_> = items
            .iter()
            .map(|l| json!({"sku": l.sku, "quantity": l.quantity}))
            .collect();
        let body = Bytes::from(json!({"order_id": order_id, "items": lines}).to_string());
        let url = format!("{}/reservations", self.base_url);
        let response = self
            .client
            .post_json("inventory", &url, body)
            .await
            .map_err(downstream)?;
        match response.status {
            200 => Ok(ReserveOutcome::Reserved),
            409 => {
                let refusal: ErrorBody = parse(&response)?;
                Ok(ReserveOutcome::Refused {
                    code: refusal.error,
                    message: refusal.message,
                })
            }
            status => Err(DownstreamError::Fault { status }),
        }
    }

    async fn release(&self, order_id: &str) -> Result<(), DownstreamError> {
        let url = format!("{}/reservations/{order_id}/release", self.base_url);
        let body = Bytes::from_static(b"{}");
        let response = self
            .client
            .post_json("inventory", &url, body)
            .await
            .map_err(downstream)?;
        match response.status {
            200 | 404 => Ok(()),
            status => Err(DownstreamError::Fault { status }),
        }
    }
}

/// Payment over Lattice.
#[derive(Clone, Debug)]
pub struct LatticePayment {
    client: LatticeClient,
    base_url: String,
}

impl LatticePayment {
    /// Calls the payment service at `base_url`.
    pub fn new(client: LatticeClient, base_url: &str) -> Self {
        Self {
            client,
            base_url: base_url.trim_end_matches('/').to_owned(),
        }
    }
}

impl Payment for LatticePayment {
    async fn charge(
        &self,
        order_id: &str,
        amount: f64,
        currency: &str,
    ) -> Result<ChargeOutcome, DownstreamError> {
        let body = Bytes::from(
            json!({"order_id": order_id, "amount": amount, "currency": currency}).to_string(),
        );
        let url = format!("{}/payments", self.base_url);
        let response = self
            .client
            .post_json("payment", &url, body)
            .await
            .map_err(downstream)?;
        match response.status {
            200 => Ok(ChargeOutcome::Approved {
                payment_id: parse::<Approved>(&response)?.payment_id,
            }),
            402 => Ok(ChargeOutcome::Declined {
                message: parse::<ErrorBody>(&response)?.message,
            }),
            status => Err(DownstreamError::Fault { status }),
        }
    }
}
