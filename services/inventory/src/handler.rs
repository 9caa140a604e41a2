//! Routing, simulated latency and faults, and the one place results become HTTP statuses.

use http::{Method, StatusCode};
use lattice_xray::lambda_http::{Body, Request, Response};
use lattice_xray::simulation::{LatencyRange, Simulator};
use lattice_xray::{annotate, json_response, keys, read_json, record_metadata, ApiError, Endpoint};
use serde_json::json;

use crate::reservation::{ReservationAnswer, ReserveRequest};
use crate::stock::{ReleaseResult, ReserveResult, Shortage, Stock};

/// The inventory service.
#[derive(Debug)]
pub struct InventoryEndpoint {
    stock: Stock,
    simulator: Simulator,
    latency: LatencyRange,
    fault_rate: f64,
}

impl InventoryEndpoint {
    /// A service over `stock`, delaying each request by `latency` and failing `fault_rate` of them.
    pub fn new(stock: Stock, simulator: Simulator, latency: LatencyRange, fault_rate: f64) -> Self {
        Self {
            stock,
            simulator,
            latency,
            fault_rate,
        }
    }

    async fn simulate_backend(&self) -> Result<(), ApiError> {
        self.simulator.delay(self.latency).await;
        if self.fault_rate > 0.0 && self.simulator.draw() < self.fault_rate {
            annotate(&keys::INVENTORY_STATUS, "fault");
            return Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "inventory_unavailable",
                "the stock store failed; nothing was reserved or released",
            ));
        }
        Ok(())
    }

    async fn reserve(&self, request: &Request) -> Result<Response<Body>, ApiError> {
        let reserve: ReserveRequest = read_json(request)?;
        reserve.validate()?;
        annotate(&keys::ORDER_ID, reserve.order_id.as_str());
        annotate(&keys::ITEM_COUNT, reserve.items.len());
        record_metadata(
            "reservation",
            json!({"order_id": reserve.order_id, "items": reserve.items}),
        );
        self.simulate_backend().await?;
        match self.stock.reserve(&reserve.order_id, &reserve.items) {
            ReserveResult::Reserved { units } | ReserveResult::AlreadyReserved { units } => {
                annotate(&keys::INVENTORY_STATUS, "reserved");
                Ok(json_response(
                    StatusCode::OK,
                    &ReservationAnswer {
                        order_id: reserve.order_id,
                        status: "reserved".to_owned(),
                        units,
                    },
                ))
            }
            ReserveResult::Conflict => {
                annotate(&keys::INVENTORY_STATUS, "conflict");
                Err(ApiError::new(
                    StatusCode::CONFLICT,
                    "reservation_conflict",
                    "order_id already has a different or released reservation",
                ))
            }
            ReserveResult::Short(shortage) => {
                annotate(&keys::INVENTORY_STATUS, "insufficient");
                let (line, message) = match shortage {
                    Shortage::Insufficient {
                        line,
                        sku,
                        requested,
                        available,
                    } => (
                        line,
                        format!("{sku}: requested {requested}, available {available}"),
                    ),
                    Shortage::UnknownSku { line, sku } => {
                        (line, format!("{sku} is not in the catalog"))
                    }
                };
                let mut error = ApiError::new(StatusCode::CONFLICT, "insufficient_stock", message);
                error.field = Some(format!("items[{line}]"));
                Err(error)
            }
        }
    }

    async fn release(&self, order_id: &str) -> Result<Response<Body>, ApiError> {
        annotate(&keys::ORDER_ID, order_id);
        self.simulate_backend().await?;
        match self.stock.release(order_id) {
            ReleaseResult::Released { units } => {
                annotate(&keys::INVENTORY_STATUS, "released");
                Ok(json_response(
                    StatusCode::OK,
                    &ReservationAnswer {
                        order_id: order_id.to_owned(),
                        status: "released".to_owned(),
                        units,
                    },
                ))
            }
            ReleaseResult::NotFound => Err(ApiError::new(
                StatusCode::NOT_FOUND,
                "reservation_not_found",
                format!("no reservation for order {order_id}"),
            )),
        }
    }
}

/// `/reservations/{order_id}/release` → the order id.
fn release_target(path: &str) -> Option<&str> {
    let order_id = path
        .strip_prefix("/reservations/")?
        .strip_suffix("/release")?;
    (!order_id.is_empty() && !order_id.contains('/')).then_some(order_id)
}

impl Endpoint for InventoryEndpoint {
    async fn handle(&self, request: Request) -> Response<Body> {
        let path = request.uri().path().to_owned();
        let is_post = request.method() == Method::POST;
        let result = match (path.as_str(), release_target(&path)) {
            ("/reservations", _) if is_post => self.reserve(&request).await,
            (_, Some(order_id)) if is_post => self.release(order_id).await,
            ("/reservations", _) | (_, Some(_)) => {
                Err(ApiError::method_not_allowed(request.method(), "POST"))
            }
            _ => Err(ApiError::not_found(&path)),
        };
        result.unwrap_or_else(ApiError::into_response)
    }
}
