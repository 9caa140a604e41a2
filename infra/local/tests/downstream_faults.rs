//! Payment or inventory failing, with the real binaries behind the local Lattice: order answers
//! 502 or 504, records the fault and its cause in its segment, and releases the reservation it
//! made (the compensating call appears in inventory's access log and in the trace).

mod support;

use std::time::SystemTime;

use lattice_xray::testing::fresh_root;
use local_stack::stack::LocalStack;
use serde_json::{json, Value};
use support::{access_log, order, request, send, start, wait_for_segments};

struct Outcome {
    status: u16,
    body: Value,
    order_segment: serde_json::Map<String, Value>,
    /// (service, method path, status) of every Lattice request, in order.
    hops: Vec<(String, String, u64)>,
}

async fn place_order(stack: &LocalStack, order_id: &str) -> Outcome {
    let key = stack.loadgen_key().unwrap().clone();
    let url = format!("{}/orders", stack.service_url("order").unwrap());
    let root = fresh_root().to_string();
    let header = format!("Root={root};Parent=53995c3f42cd8ad8;Sampled=1");
    let (status, text) = send(request(
        &url,
        &order(order_id),
        Some(&key),
        SystemTime::now(),
        Some(&header),
    ))
    .await;
    let entities = wait_for_segments(stack, &root, &["order"]).await;
    let order_segment = entities
        .iter()
        .find(|e| e.is_segment && e.fields["name"] == "order")
        .unwrap()
        .fields
        .clone();
    let name_of = |arn: &str| {
        stack
            .state
            .services
            .iter()
            .find(|(_, s)| s.service_arn == arn)
            .map(|(name, _)| name.clone())
            .unwrap_or_default()
    };
    let hops = access_log(stack)
        .iter()
        .map(|line| {
            (
                name_of(line["serviceArn"].as_str().unwrap()),
                format!(
                    "{} {}",
                    line["requestMethod"].as_str().unwrap(),
                    line["requestPath"].as_str().unwrap()
                ),
                line["responseCode"].as_u64().unwrap(),
            )
        })
        .collect();
    Outcome {
        status,
        body: serde_json::from_str(&text).unwrap(),
        order_segment,
        hops,
    }
}

fn hop(service: &str, request: &str, status: u64) -> (String, String, u64) {
    (service.to_owned(), request.to_owned(), status)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_payment_fault_is_a_502_with_the_fault_recorded_and_the_stock_released() {
    let stack = start("payment-fault", &[("PAYMENT_FAULT_RATE", "1")], |_| {}).await;
    let outcome = place_order(&stack, "ord-pf").await;
    assert_eq!(outcome.status, 502, "{}", outcome.body);
    assert_eq!(
        outcome.body,
        json!({"error": "downstream_fault", "message": "payment failed"})
    );
    assert_eq!(outcome.order_segment["fault"], true);
    assert!(outcome.order_segment.get("cause").is_some());
    assert_eq!(
        outcome.hops,
        [
            hop("inventory", "POST /reservations", 200),
            hop("payment", "POST /payments", 503),
            hop("inventory", "POST /reservations/ord-pf/release", 200),
            hop("order", "POST /orders", 502),
        ]
    );
    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_payment_slower_than_orders_deadline_is_a_504_and_the_stock_released() {
    let stack = start(
        "payment-timeout",
        &[
            ("PAYMENT_LATENCY_MS", "1500"),
            ("DOWNSTREAM_TIMEOUT_MS", "300"),
        ],
        |_| {},
    )
    .await;
    let outcome = place_order(&stack, "ord-pt").await;
    assert_eq!(outcome.status, 504, "{}", outcome.body);
    assert_eq!(
        outcome.body,
        json!({"error": "downstream_timeout", "message": "payment did not answer in time"})
    );
    assert_eq!(outcome.order_segment["fault"], true);
    let exception = &outcome.order_segment["cause"]["exceptions"][0];
    assert_eq!(exception["type"], "downstream_timeout");
    assert_eq!(exception["message"], "payment did not answer in time");
    // order gave up on payment at its deadline; payment's own answer comes later.
    assert!(outcome
        .hops
        .contains(&hop("inventory", "POST /reservations/ord-pt/release", 200)));
    assert!(outcome.hops.contains(&hop("order", "POST /orders", 504)));
    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_inventory_fault_is_a_502_and_payment_is_never_called() {
    let stack = start("inventory-fault", &[("INVENTORY_FAULT_RATE", "1")], |_| {}).await;
    let outcome = place_order(&stack, "ord-if").await;
    assert_eq!(outcome.status, 502, "{}", outcome.body);
    assert_eq!(outcome.order_segment["fault"], true);
    assert!(!outcome
        .hops
        .iter()
        .any(|(service, _, _)| service == "payment"));
    assert_eq!(
        outcome.hops.last(),
        Some(&hop("order", "POST /orders", 502))
    );
    assert_eq!(
        outcome.body,
        json!({"error": "downstream_fault", "message": "inventory failed"})
    );
    stack.shutdown().await;
}
