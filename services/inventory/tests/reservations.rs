//! The inventory service fed Lattice V2 events, with exact responses and segment fields.

use std::collections::HashMap;
use std::time::Duration;

use inventory::memory::MemoryStockStore;
use inventory::InventoryEndpoint;
use lattice_xray::lambda_http::{Body, Request};
use lattice_xray::simulation::{LatencyRange, Simulator};
use lattice_xray::testing::lattice_request;
use lattice_xray::{handle_traced, MemorySink, Telemetry};
use serde_json::{json, Value};

const EVENT: &str = include_str!("fixtures/lattice-v2-post-reservation.json");

fn endpoint(latency: LatencyRange, fault_rate: f64) -> InventoryEndpoint<MemoryStockStore> {
    let stock = MemoryStockStore::with_levels(HashMap::from([
        ("SKU-0001".to_owned(), 3),
        ("SKU-0002".to_owned(), 1),
    ]));
    InventoryEndpoint::new(stock, Simulator::seeded(2), latency, fault_rate)
}

fn event(path: &str, body: Option<Value>) -> Request {
    let mut event: Value = serde_json::from_str(EVENT).unwrap();
    event["path"] = json!(path);
    if let Some(body) = body {
        event["body"] = json!(body.to_string());
    }
    lattice_request(&event.to_string())
}

async fn call(
    endpoint: &InventoryEndpoint<MemoryStockStore>,
    request: Request,
) -> (u16, Value, Value) {
    let sink = MemorySink::default();
    let telemetry = Telemetry::with_sink("inventory", sink.clone(), 1.0);
    let response = handle_traced(&telemetry, endpoint, request).await;
    let Body::Text(text) = response.body() else {
        panic!("text body")
    };
    let segment = sink.documents().pop().expect("one segment");
    (
        response.status().as_u16(),
        serde_json::from_str(text).unwrap(),
        segment,
    )
}

#[tokio::test]
async fn reserves_then_replays_then_releases_once() {
    let endpoint = endpoint(LatencyRange::NONE, 0.0);
    let (status, body, segment) = call(&endpoint, lattice_request(EVENT)).await;
    assert_eq!(
        (status, body),
        (
            200,
            json!({"order_id": "ord-1", "status": "reserved", "units": 3})
        )
    );
    assert_eq!(segment["name"], "inventory");
    assert_eq!(
        segment["annotations"],
        json!({"order_id": "ord-1", "item_count": 2, "inventory_status": "reserved"})
    );
    assert_eq!(
        segment["metadata"]["reservation"]["items"],
        json!([{"sku": "SKU-0001", "quantity": 2}, {"sku": "SKU-0002", "quantity": 1}])
    );

    let (status, body, _) = call(&endpoint, lattice_request(EVENT)).await;
    assert_eq!(
        (status, body),
        (
            200,
            json!({"order_id": "ord-1", "status": "reserved", "units": 3})
        )
    );

    for _ in 0..2 {
        let (status, body, segment) =
            call(&endpoint, event("/reservations/ord-1/release", None)).await;
        assert_eq!(
            (status, body),
            (
                200,
                json!({"order_id": "ord-1", "status": "released", "units": 3})
            )
        );
        assert_eq!(segment["annotations"]["inventory_status"], "released");
    }
    // Stock came back exactly once: the same three units can be held again by another order.
    let again = json!({"order_id": "ord-2", "items": [{"sku": "SKU-0001", "quantity": 3}]});
    let (status, _, _) = call(&endpoint, event("/reservations", Some(again))).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn short_stock_is_409_and_an_unknown_sku_404_naming_the_line() {
    let endpoint = endpoint(LatencyRange::NONE, 0.0);
    let body = json!({"order_id": "o", "items": [{"sku": "SKU-0001", "quantity": 1}, {"sku": "SKU-0002", "quantity": 5}]});
    let (status, body, segment) = call(&endpoint, event("/reservations", Some(body))).await;
    assert_eq!(status, 409);
    assert_eq!(
        body,
        json!({"error": "insufficient_stock", "message": "SKU-0002: requested 5, available 1", "field": "items[1]"})
    );
    assert_eq!(segment["error"], true);
    assert_eq!(segment["annotations"]["inventory_status"], "insufficient");

    let unknown = json!({"order_id": "o", "items": [{"sku": "SKU-9999", "quantity": 1}]});
    let (status, body, _) = call(&endpoint, event("/reservations", Some(unknown))).await;
    assert_eq!(
        (status, body),
        (
            404,
            json!({"error": "unknown_sku", "message": "SKU-9999 is not in the catalog", "field": "items[0]"})
        )
    );
}

#[tokio::test]
async fn bad_input_and_routes() {
    let endpoint = endpoint(LatencyRange::NONE, 0.0);
    let table = [
        (
            "/reservations",
            Some(json!({"order_id": "o", "items": []})),
            400,
            json!({"error": "validation_failed", "field": "items", "message": "items must hold 1-50 lines"}),
        ),
        (
            "/reservations",
            Some(json!({"order_id": "o", "items": [{"sku": "A", "quantity": 0}]})),
            400,
            json!({"error": "validation_failed", "field": "items[0].quantity", "message": "quantity must be between 1 and 100"}),
        ),
        (
            "/reservations",
            Some(json!({"order_id": "o", "items": [{"sku": "A", "quantity": -1}]})),
            400,
            json!({"error": "validation_failed", "field": "items[0].quantity", "message": "invalid value: integer `-1`, expected u32"}),
        ),
        (
            "/reservations/nope/release",
            None,
            200,
            json!({"order_id": "nope", "status": "released", "units": 0}),
        ),
        (
            "/stock",
            None,
            404,
            json!({"error": "not_found", "message": "no route for /stock"}),
        ),
    ];
    for (path, body, status, expected) in table {
        let (got_status, got_body, _) = call(&endpoint, event(path, body)).await;
        assert_eq!((got_status, got_body), (status, expected), "{path}");
    }
    let mut get: Value = serde_json::from_str(EVENT).unwrap();
    get["method"] = json!("GET");
    let (status, body, _) = call(&endpoint, lattice_request(&get.to_string())).await;
    assert_eq!(
        (status, body),
        (
            405,
            json!({"error": "method_not_allowed", "message": "GET is not allowed here; use POST"})
        )
    );
}

#[tokio::test]
async fn faults_are_503_and_hold_nothing() {
    let endpoint = endpoint(LatencyRange::NONE, 1.0);
    let (status, body, segment) = call(&endpoint, lattice_request(EVENT)).await;
    assert_eq!(
        (status, body),
        (
            503,
            json!({"error": "inventory_unavailable", "message": "the stock store failed; nothing was reserved or released"})
        )
    );
    assert_eq!(segment["fault"], true);
    assert_eq!(segment["annotations"]["inventory_status"], "fault");
}

#[tokio::test(start_paused = true)]
async fn takes_its_simulated_latency() {
    let endpoint = endpoint(
        LatencyRange {
            min_ms: 50,
            max_ms: 300,
        },
        0.0,
    );
    let started = tokio::time::Instant::now();
    let (status, _, _) = call(&endpoint, lattice_request(EVENT)).await;
    let took = started.elapsed();
    assert_eq!(status, 200);
    assert!(
        took >= Duration::from_millis(50) && took <= Duration::from_millis(300),
        "{took:?}"
    );
}
