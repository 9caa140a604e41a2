//! Routing, simulated latency and faults, and the one place results become HTTP statuses.

use http::{Method, StatusCode};
use lattice_xray::lambda_http::{Body, Request, Response};
use lattice_xray::simulation::{LatencyRange, Simulator};
use lattice_xray::{annotate, json_response, keys, read_json, record_metadata, ApiError, Endpoint};
use serde_json::json;

use crate::reservation::{ReservationAnswer, ReserveRequest};
use crate::store::{
    ConflictReason, ReleaseResult, ReserveResult, Shortage, StockStore, StoreError,
};

/// The inventory service over a stock store.
#[derive(Debug)]
pub struct InventoryEndpoint<S> {
    stock: S,
    simulator: Simulator,
    latency: LatencyRange,
    fault_rate: f64,
}

impl<S: StockStore> InventoryEndpoint<S> {
    /// A service over `stock`, delaying each request by `latency` and failing `fault_rate` of them.
    pub fn new(stock: S, simulator: Simulator, latency: LatencyRange, fault_rate: f64) -> Self {
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
        let result = self
            .stock
            .reserve(&reserve.order_id, &reserve.items)
            .await
            .map_err(|e| store_failure(&e))?;
        match result {
            ReserveResult::Reserved { units } | ReserveResult::AlreadyReserved { units } => {
                annotate(&keys::INVENTORY_STATUS, "reserved");
                Ok(answer(reserve.order_id, "reserved", units))
            }
            ReserveResult::Conflict(reason) => {
                annotate(&keys::INVENTORY_STATUS, "conflict");
                Err(ApiError::new(
                    StatusCode::CONFLICT,
                    "reservation_conflict",
                    match reason {
                        ConflictReason::OtherLines => {
                            "order_id already holds a reservation for other lines"
                        }
                        ConflictReason::Released => "order_id's reservation was already released",
                    },
                ))
            }
            ReserveResult::Short(shortage) => {
                annotate(&keys::INVENTORY_STATUS, "insufficient");
                let (status, code, line, message) = match shortage {
                    Shortage::Insufficient {
                        line,
                        sku,
                        requested,
                        available,
                    } => (
                        StatusCode::CONFLICT,
                        "insufficient_stock",
                        line,
                        format!("{sku}: requested {requested}, available {available}"),
                    ),
                    Shortage::UnknownSku { line, sku } => (
                        StatusCode::NOT_FOUND,
                        "unknown_sku",
                        line,
                        format!("{sku} is not in the catalog"),
                    ),
                };
                let mut error = ApiError::new(status, code, message);
                error.field = Some(format!("items[{line}]"));
                Err(error)
            }
        }
    }

    async fn release(&self, order_id: &str) -> Result<Response<Body>, ApiError> {
        annotate(&keys::ORDER_ID, order_id);
        self.simulate_backend().await?;
        let result = self
            .stock
            .release(order_id)
            .await
            .map_err(|e| store_failure(&e))?;
        let units = match result {
            ReleaseResult::Released { units } | ReleaseResult::AlreadyReleased { units } => units,
            ReleaseResult::Tombstoned => 0,
        };
        annotate(&keys::INVENTORY_STATUS, "released");
        Ok(answer(order_id.to_owned(), "released", units))
    }
}

fn answer(order_id: String, status: &str, units: u64) -> Response<Body> {
    json_response(
        StatusCode::OK,
        &ReservationAnswer {
            order_id,
            status: status.to_owned(),
            units,
        },
    )
}

/// A store failure as the caller's answer: 503 when a retry later may pass, 500 otherwise. The
/// segment's cause says which (the DynamoDB subsegment carries the service's own error).
fn store_failure(error: &StoreError) -> ApiError {
    annotate(&keys::INVENTORY_STATUS, "fault");
    match error {
        StoreError::Unavailable(failure) => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "store_unavailable",
            format!("the stock store is unavailable ({failure}); retry later"),
        ),
        StoreError::Fault(detail) => {
            tracing::error!(%detail, "stock store fault");
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "store_fault",
                "the stock store failed",
            )
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

impl<S: StockStore> Endpoint for InventoryEndpoint<S> {
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
