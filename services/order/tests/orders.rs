//! The order endpoint fed Lattice V2 events over in-memory ports: exact answers and annotations.

mod support;

use std::time::Duration;

use lattice_xray::lambda_http::{Body, Request};
use lattice_xray::testing::lattice_request;
use lattice_xray::{handle_traced, MemorySink, Telemetry};
use order::handler::OrderIds;
use order::ports::{ChargeOutcome, DownstreamError, ReserveOutcome};
use order::OrderEndpoint;
use serde_json::{json, Value};
use support::{approved, fakes, reserved, FakeInventory, FakePayment, Script};

const EVENT: &str = include_str!("fixtures/lattice-v2-post-order.json");

struct FixedIds;
impl OrderIds for FixedIds {
    fn next_id(&self) -> String {
        "ord-generated".into()
    }
}

type Endpoint = OrderEndpoint<FakeInventory, FakePayment, FixedIds>;

fn endpoint(
    reserve: Script<ReserveOutcome>,
    charge: Script<ChargeOutcome>,
) -> (Endpoint, support::CallLog) {
    let (inventory, payment, log) = fakes(reserve, charge);
    (
        OrderEndpoint::new(inventory, payment, FixedIds, "USD", Duration::from_secs(3)),
        log,
    )
}

fn with_body(body: Value) -> Request {
    let mut event: Value = serde_json::from_str(EVENT).unwrap();
    event["body"] = json!(body.to_string());
    lattice_request(&event.to_string())
}

async fn call(endpoint: &Endpoint, request: Request) -> (u16, Value, Value) {
    let sink = MemorySink::default();
    let telemetry = Telemetry::with_sink("order", sink.clone(), 1.0);
    let response = handle_traced(&telemetry, endpoint, request).await;
    let Body::Text(text) = response.body() else {
        panic!("text body")
    };
    (
        response.status().as_u16(),
        serde_json::from_str(text).unwrap(),
        sink.documents().pop().unwrap(),
    )
}

#[tokio::test]
async fn creates_order_with_exact_answer_and_annotations() {
    let (endpoint, log) = endpoint(reserved(), approved());
    let (status, body, segment) = call(&endpoint, lattice_request(EVENT)).await;
    assert_eq!(status, 201);
    assert_eq!(
        body,
        json!({"order_id": "ord-1", "status": "created", "payment_id": "pay_7", "total": 45.48, "currency": "USD", "item_count": 2})
    );
    assert_eq!(
        segment["annotations"],
        json!({"order_id": "ord-1", "customer_id": "cust-42", "item_count": 2, "order_total": 45.48,
               "inventory_status": "reserved", "payment_status": "approved"})
    );
    assert_eq!(
        segment["metadata"]["order"]["items"][0],
        json!({"sku": "SKU-0001", "quantity": 2, "unit_price": 19.99})
    );
    assert_eq!(segment["http"]["response"]["status"], 201);
    assert_eq!(
        log.lock().unwrap().as_slice(),
        ["reserve ord-1 2", "charge ord-1 45.48 USD"]
    );
}

#[tokio::test]
async fn generates_an_id_when_none_is_given() {
    let (endpoint, _) = endpoint(reserved(), approved());
    let body = json!({"customer_id": "c", "items": [{"sku": "SKU-0001", "quantity": 1, "unit_price": 1.0}]});
    let (status, body, _) = call(&endpoint, with_body(body)).await;
    assert_eq!(
        (status, body["order_id"].as_str()),
        (201, Some("ord-generated"))
    );
}

#[tokio::test]
async fn failures_map_to_their_statuses() {
    let insufficient = ReserveOutcome::Refused {
        code: "insufficient_stock".into(),
        message: "SKU-0002: requested 1, available 0".into(),
    };
    let declined = ChargeOutcome::Declined {
        message: "card declined by issuer".into(),
    };
    // (reserve, charge, status, body, flag set on the segment, payment_status, inventory_status)
    let table = vec![
        (
            Script::ok(insufficient),
            approved(),
            409,
            json!({"error": "insufficient_stock", "message": "SKU-0002: requested 1, available 0"}),
            "error",
            "not_attempted",
            "insufficient",
        ),
        (
            reserved(),
            Script::ok(declined),
            402,
            json!({"error": "payment_declined", "message": "card declined by issuer"}),
            "error",
            "declined",
            "released",
        ),
        (
            reserved(),
            Script::err(DownstreamError::Fault { status: 503 }),
            502,
            json!({"error": "downstream_fault", "message": "payment failed"}),
            "fault",
            "fault",
            "released",
        ),
        (
            Script::err(DownstreamError::Unreachable),
            approved(),
            502,
            json!({"error": "downstream_fault", "message": "inventory failed"}),
            "fault",
            "not_attempted",
            "fault",
        ),
        (
            reserved(),
            Script::err(DownstreamError::Timeout),
            504,
            json!({"error": "downstream_timeout", "message": "payment did not answer in time"}),
            "fault",
            "timeout",
            "released",
        ),
    ];
    for (reserve, charge, status, expected, flag, payment_status, inventory_status) in table {
        let (endpoint, _) = endpoint(reserve, charge);
        let (got_status, body, segment) = call(&endpoint, lattice_request(EVENT)).await;
        assert_eq!((got_status, &body), (status, &expected));
        assert_eq!(segment[flag], true, "{status}: {segment}");
        assert_eq!(
            segment["annotations"]["payment_status"], payment_status,
            "{status}"
        );
        assert_eq!(
            segment["annotations"]["inventory_status"], inventory_status,
            "{status}"
        );
        assert_eq!(
            segment["cause"]["exceptions"][0]["message"], expected["message"],
            "{status}"
        );
    }
}

#[tokio::test]
async fn validation_table_names_the_field() {
    let line = json!({"sku": "SKU-0001", "quantity": 1, "unit_price": 2.5});
    let many: Vec<Value> = (0..51).map(|_| line.clone()).collect();
    let table = vec![
        (
            json!({"customer_id": "", "items": [line]}),
            "customer_id",
            "customer_id must not be empty",
        ),
        (
            json!({"customer_id": "c", "items": []}),
            "items",
            "items must hold 1-50 lines",
        ),
        (
            json!({"customer_id": "c", "items": many}),
            "items",
            "items must hold 1-50 lines",
        ),
        (
            json!({"customer_id": "c", "items": [{"sku": "A", "quantity": 101, "unit_price": 1}]}),
            "items[0].quantity",
            "quantity must be between 1 and 100",
        ),
        (
            json!({"customer_id": "c", "items": [{"sku": "A", "quantity": 0, "unit_price": 1}]}),
            "items[0].quantity",
            "quantity must be between 1 and 100",
        ),
        (
            json!({"customer_id": "c", "items": [{"sku": "A", "quantity": 1, "unit_price": 0}]}),
            "items[0].unit_price",
            "unit_price must be a number greater than 0",
        ),
        (
            json!({"customer_id": "c", "items": [{"sku": "A", "quantity": 1, "unit_price": -3}]}),
            "items[0].unit_price",
            "unit_price must be a number greater than 0",
        ),
        (
            json!({"customer_id": "c", "items": [{"sku": "", "quantity": 1, "unit_price": 1}]}),
            "items[0].sku",
            "sku must not be empty",
        ),
        (
            json!({"order_id": "a/b", "customer_id": "c", "items": [line]}),
            "order_id",
            "order_id must be 1-64 letters, digits, '-' or '_'",
        ),
        (
            json!({"customer_id": "c", "items": [line], "coupon": "X"}),
            "coupon",
            "unknown field `coupon`, expected one of `order_id`, `customer_id`, `items`",
        ),
        (
            json!({"customer_id": "c", "items": [{"sku": "A", "quantity": 1, "unit_price": 1, "gift": true}]}),
            "items[0].gift",
            "unknown field `gift`, expected one of `sku`, `quantity`, `unit_price`",
        ),
        (
            json!({"customer_id": 7, "items": [line]}),
            "customer_id",
            "invalid type: integer `7`, expected a string",
        ),
        (
            json!({"customer_id": "c", "items": [{"sku": "A", "quantity": "2", "unit_price": 1}]}),
            "items[0].quantity",
            "invalid type: string \"2\", expected u32",
        ),
    ];
    for (body, field, message) in table {
        let (endpoint, log) = endpoint(reserved(), approved());
        let (status, answer, segment) = call(&endpoint, with_body(body.clone())).await;
        assert_eq!(
            (status, answer),
            (
                400,
                json!({"error": "validation_failed", "field": field, "message": message})
            ),
            "{body}"
        );
        assert_eq!(segment["error"], true);
        assert!(
            log.lock().unwrap().is_empty(),
            "no downstream call for {body}"
        );
    }
}
