//! One contract, every stock store: the in-memory adapter, and the DynamoDB adapter against the
//! embedded DynamoDB server (dynoxide) and, when `DYNAMODB_LOCAL_ENDPOINT` names one (CI starts
//! Amazon DynamoDB Local), against that server too. The same assertions run on each.

use std::collections::BTreeMap;
use std::sync::Arc;

use inventory::dynamo::DynamoStockStore;
use inventory::memory::MemoryStockStore;
use inventory::reservation::ReservationLine;
use inventory::store::{ConflictReason, ReleaseResult, ReserveResult, Shortage, StockStore};
use inventory::table;
use lattice_xray::dynamodb::local::{client_for, EmbeddedDynamoDb, LOCAL_ENDPOINT_ENV};

fn line(sku: &str, quantity: u32) -> ReservationLine {
    ReservationLine {
        sku: sku.into(),
        quantity,
    }
}

const LEVELS: [(&str, u32); 2] = [("A", 5), ("B", 1)];

/// The stores under test, each over a fresh catalog of [`LEVELS`] (plus `extra`).
struct Backends {
    _embedded: EmbeddedDynamoDb,
    endpoints: Vec<(&'static str, String)>,
}

impl Backends {
    async fn start() -> Self {
        let embedded = EmbeddedDynamoDb::start(0).expect("embedded DynamoDB");
        let mut endpoints = vec![("dynoxide", embedded.endpoint())];
        if let Ok(endpoint) = std::env::var(LOCAL_ENDPOINT_ENV) {
            endpoints.push(("DynamoDB Local", endpoint));
        }
        Self {
            _embedded: embedded,
            endpoints,
        }
    }
}

/// A DynamoDB store over a new table with `levels`; returns the client to read the table.
async fn dynamo_store(
    endpoint: &str,
    levels: &[(&str, u32)],
) -> (DynamoStockStore, aws_sdk_dynamodb::Client, String) {
    let client = client_for(endpoint);
    let name = format!("inventory-{}", uuid::Uuid::new_v4().simple());
    table::create(&client, &name).await.expect("create table");
    let levels: Vec<(String, u32)> = levels.iter().map(|(s, n)| (s.to_string(), *n)).collect();
    table::seed(&client, &name, &levels).await.expect("seed");
    (
        DynamoStockStore::new(client.clone(), name.clone()),
        client,
        name,
    )
}

/// Runs `check` against the memory store and every DynamoDB server; `available` reads stock.
macro_rules! on_every_store {
    ($levels:expr, |$store:ident, $available:ident, $backend:ident| $body:block) => {{
        let backends = Backends::start().await;
        {
            let $backend = "memory";
            let memory = Arc::new(MemoryStockStore::with_levels(
                $levels.iter().map(|(s, n)| (s.to_string(), *n)),
            ));
            let $store = Arc::clone(&memory);
            let $available = |sku: &'static str| {
                let memory = Arc::clone(&memory);
                async move { memory.available(sku) }
            };
            $body
        }
        for (name, endpoint) in &backends.endpoints {
            let $backend = *name;
            let (store, client, table_name) = dynamo_store(endpoint, &$levels).await;
            let $store = Arc::new(store);
            let $available = |sku: &'static str| {
                let client = client.clone();
                let table_name = table_name.clone();
                async move {
                    table::read_contents(&client, &table_name)
                        .await
                        .expect("scan")
                        .available
                        .get(sku)
                        .copied()
                }
            };
            $body
        }
    }};
}

#[tokio::test]
async fn reserves_all_or_nothing_and_names_the_short_or_unknown_line() {
    on_every_store!(LEVELS, |store, available, backend| {
        assert_eq!(
            store
                .reserve("o1", &[line("A", 2), line("B", 2)])
                .await
                .unwrap(),
            ReserveResult::Short(Shortage::Insufficient {
                line: 1,
                sku: "B".into(),
                requested: 2,
                available: 1
            }),
            "{backend}"
        );
        assert_eq!(available("A").await, Some(5), "{backend}: nothing taken");
        assert_eq!(
            store
                .reserve("o2", &[line("A", 1), line("Z", 1)])
                .await
                .unwrap(),
            ReserveResult::Short(Shortage::UnknownSku {
                line: 1,
                sku: "Z".into()
            }),
            "{backend}"
        );
        assert_eq!(
            store
                .reserve("o3", &[line("A", 3), line("A", 3)])
                .await
                .unwrap(),
            ReserveResult::Short(Shortage::Insufficient {
                line: 0,
                sku: "A".into(),
                requested: 6,
                available: 5
            }),
            "{backend}: repeated SKUs are summed"
        );
        assert_eq!(
            store
                .reserve("o4", &[line("A", 2), line("B", 1)])
                .await
                .unwrap(),
            ReserveResult::Reserved { units: 3 },
            "{backend}"
        );
        assert_eq!(
            (available("A").await, available("B").await),
            (Some(3), Some(0)),
            "{backend}"
        );
    });
}

#[tokio::test]
async fn the_same_reserve_twice_holds_once_and_answers_the_same() {
    on_every_store!(LEVELS, |store, available, backend| {
        let lines = [line("A", 2)];
        assert_eq!(
            store.reserve("o", &lines).await.unwrap(),
            ReserveResult::Reserved { units: 2 }
        );
        let again = store.reserve("o", &lines).await.unwrap();
        assert!(
            matches!(
                again,
                ReserveResult::Reserved { units: 2 } | ReserveResult::AlreadyReserved { units: 2 }
            ),
            "{backend}: {again:?}"
        );
        assert_eq!(available("A").await, Some(3), "{backend}: held once");
        assert_eq!(
            store.reserve("o", &[line("A", 1)]).await.unwrap(),
            ReserveResult::Conflict(ConflictReason::OtherLines),
            "{backend}"
        );
        assert_eq!(available("A").await, Some(3), "{backend}");
    });
}

#[tokio::test]
async fn a_release_gives_stock_back_exactly_once() {
    on_every_store!(LEVELS, |store, available, backend| {
        store
            .reserve("o", &[line("A", 2), line("B", 1)])
            .await
            .unwrap();
        assert_eq!(
            store.release("o").await.unwrap(),
            ReleaseResult::Released { units: 3 },
            "{backend}"
        );
        assert_eq!(
            store.release("o").await.unwrap(),
            ReleaseResult::AlreadyReleased { units: 3 },
            "{backend}"
        );
        assert_eq!(
            (available("A").await, available("B").await),
            (Some(5), Some(1)),
            "{backend}"
        );
        // A duplicate of the reserve after its release: DynamoDB replays the token (success, no
        // side effect) within its 10-minute window; the memory store refuses it. Either way the
        // stock stays released.
        let duplicate = if backend == "memory" {
            ReserveResult::Conflict(ConflictReason::Released)
        } else {
            ReserveResult::Reserved { units: 3 }
        };
        assert_eq!(
            store
                .reserve("o", &[line("A", 2), line("B", 1)])
                .await
                .unwrap(),
            duplicate,
            "{backend}"
        );
        assert_eq!(
            (available("A").await, available("B").await),
            (Some(5), Some(1)),
            "{backend}"
        );
        assert_eq!(
            store.reserve("o", &[line("A", 1)]).await.unwrap(),
            ReserveResult::Conflict(ConflictReason::Released),
            "{backend}: a released order takes no other lines"
        );
    });
}

#[tokio::test]
async fn a_release_before_its_reserve_leaves_a_tombstone_that_refuses_the_reserve() {
    on_every_store!(LEVELS, |store, available, backend| {
        assert_eq!(
            store.release("late").await.unwrap(),
            ReleaseResult::Tombstoned,
            "{backend}"
        );
        assert_eq!(
            store.release("late").await.unwrap(),
            ReleaseResult::AlreadyReleased { units: 0 },
            "{backend}"
        );
        assert_eq!(
            store.reserve("late", &[line("A", 1)]).await.unwrap(),
            ReserveResult::Conflict(ConflictReason::Released),
            "{backend}"
        );
        assert_eq!(
            available("A").await,
            Some(5),
            "{backend}: no stock stranded"
        );
    });
}

#[tokio::test]
async fn concurrent_orders_never_oversell() {
    on_every_store!([("HOT", 20u32)], |store, available, backend| {
        let tasks: Vec<_> = (0..64)
            .map(|i| {
                let store = Arc::clone(&store);
                tokio::spawn(
                    async move { store.reserve(&format!("o{i}"), &[line("HOT", 1)]).await },
                )
            })
            .collect();
        let mut outcomes = BTreeMap::new();
        for task in tasks {
            let outcome = match task.await.unwrap().unwrap() {
                ReserveResult::Reserved { .. } => "reserved",
                ReserveResult::Short(Shortage::Insufficient { .. }) => "insufficient",
                other => panic!("{backend}: {other:?}"),
            };
            *outcomes.entry(outcome).or_insert(0) += 1;
        }
        assert_eq!(
            outcomes,
            BTreeMap::from([("insufficient", 44), ("reserved", 20)]),
            "{backend}"
        );
        assert_eq!(available("HOT").await, Some(0), "{backend}");
    });
}
