//! Routing, annotations, and the one place order failures become HTTP statuses.

use std::time::Duration;

use http::{Method, StatusCode};
use lattice_xray::lambda_http::{Body, Request, Response};
use lattice_xray::{annotate, json_response, keys, read_json, record_metadata, ApiError, Endpoint};
use serde_json::json;

use crate::order::{OrderCreated, OrderRequest};
use crate::ports::{Inventory, Payment};
use crate::saga::{place_order, OrderError};

/// Makes order ids for orders that arrive without one.
pub trait OrderIds: Send + Sync + 'static {
    /// A new, unique order id.
    fn next_id(&self) -> String;
}

/// Random (v4 UUID) order ids.
#[derive(Debug, Default)]
pub struct RandomOrderIds;

impl OrderIds for RandomOrderIds {
    fn next_id(&self) -> String {
        format!("ord-{}", uuid::Uuid::new_v4().simple())
    }
}

/// The order service over its ports.
#[derive(Debug)]
pub struct OrderEndpoint<I, P, Ids> {
    inventory: I,
    payment: P,
    ids: Ids,
    currency: String,
    call_deadline: Duration,
}

impl<I: Inventory, P: Payment, Ids: OrderIds> OrderEndpoint<I, P, Ids> {
    /// A service placing orders in `currency`, giving each downstream call `call_deadline`.
    pub fn new(
        inventory: I,
        payment: P,
        ids: Ids,
        currency: &str,
        call_deadline: Duration,
    ) -> Self {
        Self {
            inventory,
            payment,
            ids,
            currency: currency.to_owned(),
            call_deadline,
        }
    }

    async fn create(&self, request: &Request) -> Result<Response<Body>, ApiError> {
        let order = read_json::<OrderRequest>(request)?.validate(|| self.ids.next_id())?;
        annotate(&keys::ORDER_ID, order.order_id.as_str());
        annotate(&keys::CUSTOMER_ID, order.customer_id.as_str());
        annotate(&keys::ITEM_COUNT, order.items.len());
        annotate(&keys::ORDER_TOTAL, order.total);
        record_metadata(
            "order",
            json!({"order_id": order.order_id, "customer_id": order.customer_id, "items": order.items,
                   "total": order.total, "currency": self.currency}),
        );

        let report = place_order(
            &order,
            &self.currency,
            &self.inventory,
            &self.payment,
            self.call_deadline,
        )
        .await;
        annotate(&keys::INVENTORY_STATUS, report.inventory.as_str());
        annotate(&keys::PAYMENT_STATUS, report.payment.as_str());
        match report.outcome {
            Ok(payment_id) => Ok(json_response(
                StatusCode::CREATED,
                &OrderCreated {
                    order_id: order.order_id,
                    status: "created".to_owned(),
                    payment_id,
                    total: order.total,
                    currency: self.currency.clone(),
                    item_count: order.items.len(),
                },
            )),
            Err(error) => Err(to_api_error(error)),
        }
    }
}

/// The one mapping from order failures to statuses.
fn to_api_error(error: OrderError) -> ApiError {
    let message = error.to_string();
    match error {
        OrderError::StockRefused { code, .. } => ApiError::new(
            StatusCode::CONFLICT,
            if code == "insufficient_stock" {
                "insufficient_stock"
            } else {
                "reservation_refused"
            },
            message,
        ),
        OrderError::PaymentDeclined(_) => {
            ApiError::new(StatusCode::PAYMENT_REQUIRED, "payment_declined", message)
        }
        OrderError::DownstreamFault(_) => {
            ApiError::new(StatusCode::BAD_GATEWAY, "downstream_fault", message)
        }
        OrderError::DownstreamTimeout(_) => {
            ApiError::new(StatusCode::GATEWAY_TIMEOUT, "downstream_timeout", message)
        }
    }
}

impl<I: Inventory, P: Payment, Ids: OrderIds> Endpoint for OrderEndpoint<I, P, Ids> {
    async fn handle(&self, request: Request) -> Response<Body> {
        let result = match request.uri().path() {
            "/orders" if request.method() == Method::POST => self.create(&request).await,
            "/orders" => Err(ApiError::method_not_allowed(request.method(), "POST")),
            path => Err(ApiError::not_found(path)),
        };
        result.unwrap_or_else(ApiError::into_response)
    }
}
