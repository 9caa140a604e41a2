//! Inventory and payment state in DynamoDB, through the whole local stack (the real binaries
//! behind the local Lattice): no oversell under concurrency on both local DynamoDB servers, state
//! that outlives a killed environment, DynamoDB faults answered 503 with a fault and its cause and
//! nothing held, and the DynamoDB tables on the X-Ray service graph.

mod support;

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use lattice_xray::dynamodb::local::{EmbeddedDynamoDb, LOCAL_ENDPOINT_ENV};
use lattice_xray::testing::fresh_root;
use local_stack::dynamodb::{DynamoDbSource, StockSeeding};
use local_stack::stack::{function_role, LocalStack};
use serde_json::{json, Value};
use support::dynamodb_proxy::{DynamoDbProxy, Mode};
use support::{request, send, start, wait_for_segments};

/// Every DynamoDB server to run against: the embedded one, and DynamoDB Local when CI names it.
fn servers() -> Vec<(&'static str, Option<String>)> {
    let mut servers = vec![("dynoxide", None)];
    if let Ok(endpoint) = std::env::var(LOCAL_ENDPOINT_ENV) {
        servers.push(("DynamoDB Local", Some(endpoint)));
    }
    servers
}

/// A table prefix no other stack on a shared server uses (this process, this instant).
fn unique_prefix() -> String {
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos();
    format!("t{}-{nanos}-", std::process::id())
}

async fn stock_of(stack: &LocalStack) -> BTreeMap<String, u32> {
    inventory::table::read_contents(
        &stack.dynamodb.client(),
        &stack.state.dynamodb.inventory_table,
    )
    .await
    .unwrap()
    .available
}

fn order_for(order_id: &str, sku: &str) -> Value {
    json!({"order_id": order_id, "customer_id": "cust-1",
        "items": [{"sku": sku, "quantity": 1, "unit_price": 1.0}]})
}

/// The SKU the oversell test warms the servers up on, and its stock (one unit per warm-up order).
const WARM_UP_SKU: &str = "WARM-UP";
const WARM_UP_ORDERS: u32 = 8;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixty_four_concurrent_orders_for_twenty_units_sell_exactly_twenty_ten_rounds_on_each_server(
) {
    const ROUNDS: usize = 10;
    for (server, endpoint) in servers() {
        let skus: Vec<String> = (1..=ROUNDS).map(|r| format!("HOT-{r:02}")).collect();
        // The test is about oversell, not latency: DynamoDB Local (a JVM) on a loaded 2-vCPU
        // machine may take longer than the default 1 s budget under 64 concurrent transactions (still inside
        // the functions' 3 s timeout).
        let stack = start("oversell", &[("DYNAMODB_TIMEOUT_MS", "2000")], |config| {
            config.dynamodb.stock = StockSeeding::Levels(
                skus.iter()
                    .map(|s| (s.clone(), 20))
                    .chain([(WARM_UP_SKU.to_owned(), WARM_UP_ORDERS)])
                    .collect(),
            );
            if let Some(endpoint) = &endpoint {
                config.dynamodb.source = DynamoDbSource::External {
                    endpoint: endpoint.clone(),
                };
                config.dynamodb.table_prefix = unique_prefix();
            }
        })
        .await;
        let key = stack.loadgen_key().unwrap().clone();
        let url = format!("{}/orders", stack.service_url("order").unwrap());
        // One order at a time first, on a SKU of its own: DynamoDB Local's first transactions
        // (a cold JVM) can outlast the functions' 3 s timeout when 64 arrive at once (seen once
        // in CI as a 504 in round 0). These orders are not what the test is about.
        let mut warm_up_sold = 0;
        for i in 0..WARM_UP_ORDERS {
            let body = order_for(&format!("warm-{i}"), WARM_UP_SKU);
            let (status, _) = send(request(&url, &body, Some(&key), SystemTime::now(), None)).await;
            warm_up_sold += usize::from(status == 201);
        }
        for (round, sku) in skus.iter().enumerate() {
            let orders: Vec<_> = (0..64)
                .map(|i| {
                    let body = order_for(&format!("r{round}-{i}"), sku);
                    tokio::spawn(send(request(
                        &url,
                        &body,
                        Some(&key),
                        SystemTime::now(),
                        None,
                    )))
                })
                .collect();
            let mut statuses = BTreeMap::new();
            for order in orders {
                let (status, _) = order.await.unwrap();
                *statuses.entry(status).or_insert(0) += 1;
            }
            assert_eq!(
                statuses,
                BTreeMap::from([(201, 20), (409, 44)]),
                "{server}, round {round}"
            );
            assert_eq!(stock_of(&stack).await[sku], 0, "{server}, round {round}");
        }
        let contents = inventory::table::read_contents(
            &stack.dynamodb.client(),
            &stack.state.dynamodb.inventory_table,
        )
        .await
        .unwrap();
        assert_eq!(
            contents.reservations.len(),
            ROUNDS * 20 + warm_up_sold,
            "{server}: only the sold orders hold stock"
        );
        assert!(contents
            .reservations
            .values()
            .all(|r| r.status == "RESERVED"));
        stack.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reservation_outlives_the_environment_that_made_it() {
    let stack = start("killed", &[], |config| {
        config.dynamodb.stock = StockSeeding::Levels(vec![("SKU-0001".into(), 10)]);
    })
    .await;
    let order_role = stack
        .key_of(&stack.topology.role_arn(&function_role("order")))
        .unwrap()
        .clone();
    let base = stack.service_url("inventory").unwrap();
    let reserve = json!({"order_id": "k-1", "items": [{"sku": "SKU-0001", "quantity": 4}]});
    let (status, _) = send(request(
        &format!("{base}/reservations"),
        &reserve,
        Some(&order_role),
        SystemTime::now(),
        None,
    ))
    .await;
    assert_eq!(status, 200);
    let inventory = stack.functions["inventory"].clone();
    let pids = inventory.process_ids();
    assert!(!pids.is_empty());
    for pid in pids {
        std::process::Command::new("kill")
            .args(["-9", &pid.to_string()])
            .status()
            .unwrap();
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let (status, body) = send(request(
        &format!("{base}/reservations/k-1/release"),
        &json!({}),
        Some(&order_role),
        SystemTime::now(),
        None,
    ))
    .await;
    assert_eq!(
        (status, serde_json::from_str::<Value>(&body).unwrap()),
        (
            200,
            json!({"order_id": "k-1", "status": "released", "units": 4})
        ),
        "a new environment releases what the killed one reserved"
    );
    assert_eq!(inventory.stats().environments_started, 2);
    assert_eq!(stock_of(&stack).await["SKU-0001"], 10);
    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn environments_killed_mid_run_lose_no_stock() {
    let stack = start(
        "killed-mid-run",
        &[("INVENTORY_LATENCY_MS", "20..60")],
        |config| {
            config.dynamodb.stock = StockSeeding::Levels(vec![("SKU-0001".into(), 1000)]);
        },
    )
    .await;
    let key = stack.loadgen_key().unwrap().clone();
    let url = format!("{}/orders", stack.service_url("order").unwrap());
    let orders: Vec<_> = (0..48)
        .map(|i| {
            let body = order_for(&format!("m-{i}"), "SKU-0001");
            let (url, key) = (url.clone(), key.clone());
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(20 * i)).await;
                send(request(&url, &body, Some(&key), SystemTime::now(), None)).await
            })
        })
        .collect();
    // Mid-run, every inventory and payment environment is killed, twice (polling until the
    // first ones have started, then again 300 ms later).
    let mut killed = 0;
    let mut rounds = 0;
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(30)).await;
        let pids: Vec<u32> = ["inventory", "payment"]
            .iter()
            .flat_map(|service| stack.functions[*service].process_ids())
            .collect();
        if pids.is_empty() {
            continue;
        }
        for pid in pids {
            std::process::Command::new("kill")
                .args(["-9", &pid.to_string()])
                .status()
                .unwrap();
            killed += 1;
        }
        rounds += 1;
        if rounds == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert!(killed > 0);
    let mut statuses = BTreeMap::new();
    for order in orders {
        let (status, _) = order.await.unwrap();
        *statuses.entry(status).or_insert(0u64) += 1;
    }
    let created = statuses.get(&201).copied().unwrap_or(0);
    assert!(
        statuses.keys().any(|s| *s != 201),
        "some orders saw a killed environment: {statuses:?}"
    );
    let contents = inventory::table::read_contents(
        &stack.dynamodb.client(),
        &stack.state.dynamodb.inventory_table,
    )
    .await
    .unwrap();
    let held: u64 = contents.held().values().sum();
    assert_eq!(
        (
            u64::from(contents.available["SKU-0001"]) + held,
            held,
            created
        ),
        (1000, created, created),
        "every created order holds its unit, no failed one does: {statuses:?}"
    );
    stack.shutdown().await;
}

/// Reserves through the inventory service with a traced request; returns the status, the body,
/// and inventory's segment with its subsegments.
async fn traced_reserve(
    stack: &LocalStack,
    order_id: &str,
) -> (u16, Value, Vec<local_stack::xray::store::Entity>) {
    let order_role = stack
        .key_of(&stack.topology.role_arn(&function_role("order")))
        .unwrap()
        .clone();
    let root = fresh_root().to_string();
    let body = json!({"order_id": order_id, "items": [{"sku": "SKU-0001", "quantity": 2}]});
    let (status, text) = send(request(
        &format!("{}/reservations", stack.service_url("inventory").unwrap()),
        &body,
        Some(&order_role),
        SystemTime::now(),
        Some(&format!("Root={root};Parent=53995c3f42cd8ad8;Sampled=1")),
    ))
    .await;
    let entities = wait_for_segments(stack, &root, &["inventory"]).await;
    (status, serde_json::from_str(&text).unwrap(), entities)
}

/// The inventory segment's fault and cause, and each DynamoDB subsegment's flags and exception.
fn fault_and_calls(entities: &[local_stack::xray::store::Entity]) -> (Value, Vec<Value>) {
    let segment = entities
        .iter()
        .find(|e| e.is_segment && e.fields["name"] == "inventory")
        .unwrap();
    let cause = json!({
        "fault": segment.fields.get("fault"),
        "cause": segment.fields["cause"]["exceptions"][0]["type"],
    });
    let calls = entities
        .iter()
        .filter(|e| !e.is_segment && e.fields["name"] == "DynamoDB")
        .map(|call| {
            json!({
                "operation": call.fields["aws"]["operation"],
                "table": call.fields["aws"]["table_name"],
                "status": call.fields.get("http").map(|h| h["response"]["status"].clone()),
                "error": call.fields.get("error"),
                "fault": call.fields.get("fault"),
                "exception": call.fields["cause"]["exceptions"][0]["type"],
            })
        })
        .collect();
    (cause, calls)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dynamodb_down_throttled_or_silent_is_503_with_the_cause_and_holds_nothing() {
    let server = EmbeddedDynamoDb::start(0).unwrap();
    let proxy = DynamoDbProxy::start(server.endpoint(), Duration::from_secs(3)).await;
    let stack = start(
        "dynamodb-faults",
        &[("DYNAMODB_TIMEOUT_MS", "1000")],
        |config| {
            config.dynamodb.source = DynamoDbSource::External {
                endpoint: proxy.endpoint(),
            };
            config.dynamodb.stock = StockSeeding::Levels(vec![("SKU-0001".into(), 10)]);
        },
    )
    .await;

    // Throttled: the SDK's three attempts are all refused; 503, the cause is the throttle.
    proxy.set(Mode::Throttle);
    let (status, body, entities) = traced_reserve(&stack, "f-throttled").await;
    assert_eq!(
        (status, body["error"].clone()),
        (503, json!("store_unavailable"))
    );
    assert_eq!(
        body["message"],
        "the stock store is unavailable (throttled (ProvisionedThroughputExceededException)); retry later"
    );
    assert_eq!(proxy.throttled.load(std::sync::atomic::Ordering::SeqCst), 3);
    let (segment, calls) = fault_and_calls(&entities);
    assert_eq!(
        segment,
        json!({"fault": true, "cause": "store_unavailable"})
    );
    assert_eq!(
        calls,
        [
            json!({"operation": "TransactWriteItems", "table": "inventory", "status": 400,
                "error": true, "fault": null,
                "exception": "ProvisionedThroughputExceededException"})
        ]
    );

    // No answer within the call's budget (the request never reaches the table).
    proxy.set(Mode::Stall);
    let (status, body, entities) = traced_reserve(&stack, "f-silent").await;
    assert_eq!(
        (status, body["error"].clone()),
        (503, json!("store_unavailable"))
    );
    assert_eq!(
        body["message"],
        "the stock store is unavailable (no answer in time); retry later"
    );
    let (segment, calls) = fault_and_calls(&entities);
    assert_eq!(
        segment,
        json!({"fault": true, "cause": "store_unavailable"})
    );
    assert_eq!(
        calls,
        [
            json!({"operation": "TransactWriteItems", "table": "inventory", "status": null,
                "error": null, "fault": true, "exception": "Timeout"})
        ]
    );
    proxy.set(Mode::Pass);
    assert_eq!(stock_of(&stack).await["SKU-0001"], 10, "nothing held");
    stack.shutdown().await;

    // Down: the functions' endpoint has nobody listening.
    let stack = start(
        "dynamodb-down",
        &[("AWS_ENDPOINT_URL_DYNAMODB", "http://127.0.0.1:9")],
        |config| {
            config.dynamodb.stock = StockSeeding::Levels(vec![("SKU-0001".into(), 10)]);
        },
    )
    .await;
    let (status, body, entities) = traced_reserve(&stack, "f-down").await;
    assert_eq!(
        (status, body["error"].clone()),
        (503, json!("store_unavailable"))
    );
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .starts_with("the stock store is unavailable (endpoint unreachable: "),
        "{body}"
    );
    let (segment, calls) = fault_and_calls(&entities);
    assert_eq!(
        segment,
        json!({"fault": true, "cause": "store_unavailable"})
    );
    assert_eq!(calls.len(), 1, "{calls:#?}");
    assert_eq!(calls[0]["fault"], true);
    assert_eq!(calls[0]["exception"], "ConnectionFailure");
    let order_role = stack
        .key_of(&stack.topology.role_arn(&function_role("order")))
        .unwrap()
        .clone();
    let (status, text) = send(request(
        &format!("{}/payments", stack.service_url("payment").unwrap()),
        &json!({"order_id": "f-down", "amount": 1.0, "currency": "USD"}),
        Some(&order_role),
        SystemTime::now(),
        None,
    ))
    .await;
    assert_eq!(status, 503, "{text}");
    assert_eq!(
        serde_json::from_str::<Value>(&text).unwrap()["error"],
        "ledger_unavailable"
    );
    assert_eq!(stock_of(&stack).await["SKU-0001"], 10, "nothing held");
    stack.shutdown().await;
}

/// A service graph node: (name, type).
type NodeId = (String, String);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_service_graph_draws_each_table_behind_its_service() {
    let stack = start("graph", &[], |_| {}).await;
    let key = stack.loadgen_key().unwrap().clone();
    let root = fresh_root().to_string();
    let (status, _) = send(request(
        &format!("{}/orders", stack.service_url("order").unwrap()),
        &support::order("g-1"),
        Some(&key),
        SystemTime::now(),
        Some(&format!("Root={root};Sampled=1")),
    ))
    .await;
    assert_eq!(status, 201);
    wait_for_segments(&stack, &root, &["order", "inventory", "payment"]).await;
    let xray = aws_sdk_xray::Client::from_conf(
        aws_sdk_xray::Config::builder()
            .behavior_version(aws_sdk_xray::config::BehaviorVersion::latest())
            .region(aws_sdk_xray::config::Region::new("us-east-1"))
            .credentials_provider(aws_credential_types::Credentials::new(
                "AKID", "secret", None, None, "test",
            ))
            .endpoint_url(&stack.state.xray_endpoint)
            .build(),
    );
    let now = SystemTime::now();
    let graph = xray
        .get_service_graph()
        .start_time((now - Duration::from_secs(60)).into())
        .end_time((now + Duration::from_secs(60)).into())
        .send()
        .await
        .unwrap();
    let node = |reference: Option<i32>| {
        let service = graph
            .services()
            .iter()
            .find(|s| s.reference_id() == reference)
            .unwrap();
        (
            service.name().unwrap_or("client").to_owned(),
            service.r#type().unwrap_or_default().to_owned(),
        )
    };
    let mut table_edges: Vec<(NodeId, NodeId, i64)> = Vec::new();
    for service in graph.services() {
        for edge in service.edges() {
            let target = node(edge.reference_id());
            if target.1 == "AWS::DynamoDB::Table" {
                table_edges.push((
                    node(service.reference_id()),
                    target,
                    edge.summary_statistics().unwrap().total_count().unwrap(),
                ));
            }
        }
    }
    table_edges.sort();
    let function = |name: &str| (name.to_owned(), "AWS::Lambda::Function".to_owned());
    let table = |name: &str| (name.to_owned(), "AWS::DynamoDB::Table".to_owned());
    assert_eq!(
        table_edges,
        [
            // One reserve transaction.
            (function("inventory"), table("inventory"), 1),
            // The claim (PutItem) and the settlement (UpdateItem).
            (function("payment"), table("payments"), 2),
        ]
    );
    stack.shutdown().await;
}
