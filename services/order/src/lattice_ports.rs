//! The inventory and payment ports as signed, traced calls through VPC Lattice.
//!
//! Each adapter maps the peer's HTTP answer onto the port's outcomes: the statuses a peer uses for
//! business answers (409, 402) become outcomes; anything else is a [`DownstreamError`].

use bytes::Bytes;
use lattice_xray::{Error, LatticeClient, LatticeResponse};
use serde::Deserialize;
use serde_json::{json, Value};

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

/// One Lattice service as order calls it: its name (the subsegment name) and base URL.
#[derive(Clone, Debug)]
struct Peer {
    client: LatticeClient,
    service: &'static str,
    base_url: String,
}

impl Peer {
    fn new(client: LatticeClient, service: &'static str, base_url: &str) -> Self {
        Self {
            client,
            service,
            base_url: base_url.trim_end_matches('/').to_owned(),
        }
    }

    /// POSTs `body` to `path`; transport failures become [`DownstreamError`]s.
    async fn post(&self, path: &str, body: Value) -> Result<LatticeResponse, DownstreamError> {
        let url = format!("{}{path}", self.base_url);
        self.client
            .post_json(self.service, &url, Bytes::from(body.to_string()))
            .await
            .map_err(downstream)
    }
}

/// Inventory over Lattice.
#[derive(Clone, Debug)]
pub struct LatticeInventory(Peer);

impl LatticeInventory {
    /// Calls the inventory service at `base_url`.
    pub fn new(client: LatticeClient, base_url: &str) -> Self {
        Self(Peer::new(client, "inventory", base_url))
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
        let response = self
            .0
            .post(
                "/reservations",
                json!({"order_id": order_id, "items": lines}),
            )
            .await?;
        match response.status {
            200 => Ok(ReserveOutcome::Reserved),
            // 409: short stock or a conflicting order id; 404: an unknown SKU.
            404 | 409 => {
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
        let path = format!("/reservations/{order_id}/release");
        let response = self.0.post(&path, json!({})).await?;
        // Inventory answers 200 for every release it has recorded, a release that came before
        // its reservation included (a tombstone); anything else is a failed compensation.
        match response.status {
            200 => Ok(()),
            status => Err(DownstreamError::Fault { status }),
        }
    }
}

/// Payment over Lattice.
#[derive(Clone, Debug)]
pub struct LatticePayment(Peer);

impl LatticePayment {
    /// Calls the payment service at `base_url`.
    pub fn new(client: LatticeClient, base_url: &str) -> Self {
        Self(Peer::new(client, "payment", base_url))
    }
}

impl Payment for LatticePayment {
    async fn charge(
        &self,
        order_id: &str,
        amount: f64,
        currency: &str,
    ) -> Result<ChargeOutcome, DownstreamError> {
        let body = json!({"order_id": order_id, "amount": amount, "currency": currency});
        let response = self.0.post("/payments", body).await?;
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
