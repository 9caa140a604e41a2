//! One contract, every ledger: the in-memory adapter, and the DynamoDB adapter against the
//! embedded DynamoDB server (dynoxide) and, when `DYNAMODB_LOCAL_ENDPOINT` names one (CI starts
//! Amazon DynamoDB Local), against that server too.

use lattice_xray::clock::FixedClock;
use lattice_xray::dynamodb::local::{client_for, EmbeddedDynamoDb, LOCAL_ENDPOINT_ENV};
use payment::dynamo::{DynamoLedger, CLAIM_LEASE};
use payment::ledger::{Claim, Ledger, LedgerCharge, MemoryLedger, Settlement};
use payment::table;

fn charge(order_id: &str, amount_cents: i64) -> LedgerCharge {
    LedgerCharge {
        order_id: order_id.into(),
        amount_cents,
        currency: "EUR".into(),
    }
}

fn charged(id: &str) -> Settlement {
    Settlement::Charged {
        payment_id: id.into(),
    }
}

/// Every DynamoDB server to run against, each with a fresh table and a clock of its own.
async fn dynamo_ledgers(
    embedded: &EmbeddedDynamoDb,
) -> Vec<(String, DynamoLedger<FixedClock>, FixedClock)> {
    let mut endpoints = vec![("dynoxide".to_owned(), embedded.endpoint())];
    if let Ok(endpoint) = std::env::var(LOCAL_ENDPOINT_ENV) {
        endpoints.push(("DynamoDB Local".to_owned(), endpoint));
    }
    let mut ledgers = Vec::new();
    for (name, endpoint) in endpoints {
        let client = client_for(&endpoint);
        let table_name = format!("payments-{}", uuid::Uuid::new_v4().simple());
        table::create(&client, &table_name)
            .await
            .expect("create table");
        let clock = FixedClock::at(1_800_000_000);
        ledgers.push((
            name,
            DynamoLedger::with_clock(client, table_name, clock.clone()),
            clock,
        ));
    }
    ledgers
}

async fn first_answer_wins(ledger: &impl Ledger, backend: &str) {
    assert_eq!(
        ledger.claim(&charge("o1", 4250)).await.unwrap(),
        Claim::Claimed,
        "{backend}"
    );
    assert_eq!(
        ledger.claim(&charge("o1", 4250)).await.unwrap(),
        Claim::InProgress,
        "{backend}"
    );
    assert_eq!(
        ledger.claim(&charge("o1", 100)).await.unwrap(),
        Claim::Mismatch,
        "{backend}"
    );
    assert_eq!(
        ledger.settle("o1", &charged("pay_1")).await.unwrap(),
        charged("pay_1"),
        "{backend}"
    );
    assert_eq!(
        ledger.settle("o1", &charged("pay_2")).await.unwrap(),
        charged("pay_1"),
        "{backend}: the first settlement stands"
    );
    assert_eq!(
        ledger.claim(&charge("o1", 4250)).await.unwrap(),
        Claim::Settled(charged("pay_1")),
        "{backend}"
    );
    assert_eq!(
        ledger.claim(&charge("o1", 999)).await.unwrap(),
        Claim::Mismatch,
        "{backend}"
    );

    let declined = Settlement::Declined {
        reason: "card declined by issuer".into(),
    };
    assert_eq!(
        ledger.claim(&charge("o2", 1)).await.unwrap(),
        Claim::Claimed
    );
    assert_eq!(ledger.settle("o2", &declined).await.unwrap(), declined);
    assert_eq!(
        ledger.claim(&charge("o2", 1)).await.unwrap(),
        Claim::Settled(declined),
        "{backend}: a decline is remembered"
    );
}

async fn an_abandoned_claim_can_be_claimed_again(ledger: &impl Ledger, backend: &str) {
    assert_eq!(
        ledger.claim(&charge("o3", 500)).await.unwrap(),
        Claim::Claimed
    );
    ledger.abandon("o3").await.unwrap();
    assert_eq!(
        ledger.claim(&charge("o3", 500)).await.unwrap(),
        Claim::Claimed,
        "{backend}"
    );
    ledger.settle("o3", &charged("pay_3")).await.unwrap();
    ledger.abandon("o3").await.unwrap();
    assert_eq!(
        ledger.claim(&charge("o3", 500)).await.unwrap(),
        Claim::Settled(charged("pay_3")),
        "{backend}: abandoning a settled charge changes nothing"
    );
}

#[tokio::test]
async fn memory_ledger_keeps_the_contract() {
    first_answer_wins(&MemoryLedger::default(), "memory").await;
    an_abandoned_claim_can_be_claimed_again(&MemoryLedger::default(), "memory").await;
}

#[tokio::test]
async fn dynamodb_ledger_keeps_the_contract() {
    let embedded = EmbeddedDynamoDb::start(0).unwrap();
    for (backend, ledger, _) in dynamo_ledgers(&embedded).await {
        first_answer_wins(&ledger, &backend).await;
        an_abandoned_claim_can_be_claimed_again(&ledger, &backend).await;
    }
}

#[tokio::test]
async fn a_claim_whose_holder_died_is_taken_over_after_its_lease() {
    let embedded = EmbeddedDynamoDb::start(0).unwrap();
    for (backend, ledger, clock) in dynamo_ledgers(&embedded).await {
        assert_eq!(
            ledger.claim(&charge("o", 700)).await.unwrap(),
            Claim::Claimed
        );
        clock.advance(CLAIM_LEASE.as_secs() as i64);
        assert_eq!(
            ledger.claim(&charge("o", 700)).await.unwrap(),
            Claim::InProgress,
            "{backend}: the lease holds to its last second"
        );
        clock.advance(1);
        assert_eq!(
            ledger.claim(&charge("o", 700)).await.unwrap(),
            Claim::Claimed,
            "{backend}: taken over"
        );
    }
}
