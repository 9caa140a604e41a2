//! The order saga over in-memory ports: every path, and the compensating release.

mod support;

use std::time::Duration;

use order::order::{OrderLine, ValidOrder};
use order::ports::{ChargeOutcome, DownstreamError, ReserveOutcome};
use order::saga::{place_order, InventoryStatus, OrderError, PaymentStatus, SagaReport, Service};
use support::{approved, fakes, reserved, Script};

const DEADLINE: Duration = Duration::from_secs(3);

fn order() -> ValidOrder {
    ValidOrder {
        order_id: "ord-1".into(),
        customer_id: "cust-42".into(),
        items: vec![OrderLine {
            sku: "SKU-0001".into(),
            quantity: 2,
            unit_price: 19.99,
        }],
        total: 39.98,
    }
}

async fn run(
    reserve: Script<ReserveOutcome>,
    charge: Script<ChargeOutcome>,
) -> (SagaReport, Vec<String>) {
    let (inventory, payment, log) = fakes(reserve, charge);
    let report = place_order(&order(), "USD", &inventory, &payment, DEADLINE).await;
    let calls = log.lock().unwrap().clone();
    (report, calls)
}

#[tokio::test]
async fn places_order_when_both_agree() {
    let (report, calls) = run(reserved(), approved()).await;
    assert_eq!(
        report,
        SagaReport {
            outcome: Ok("pay_7".into()),
            inventory: InventoryStatus::Reserved,
            payment: PaymentStatus::Approved
        }
    );
    assert_eq!(calls, ["reserve ord-1 1", "charge ord-1 39.98 USD"]);
}

#[tokio::test]
async fn insufficient_stock_never_charges() {
    let refused = ReserveOutcome::Refused {
        code: "insufficient_stock".into(),
        message: "SKU-0001: requested 2, available 1".into(),
    };
    let (report, calls) = run(Script::ok(refused), approved()).await;
    assert_eq!(
        report.outcome,
        Err(OrderError::StockRefused {
            code: "insufficient_stock".into(),
            message: "SKU-0001: requested 2, available 1".into()
        })
    );
    assert_eq!(
        (report.inventory, report.payment),
        (InventoryStatus::Refused, PaymentStatus::NotAttempted)
    );
    assert_eq!(calls, ["reserve ord-1 1"]);
}

#[tokio::test]
async fn decline_releases_the_reservation() {
    let declined = ChargeOutcome::Declined {
        message: "card declined by issuer".into(),
    };
    let (report, calls) = run(reserved(), Script::ok(declined)).await;
    assert_eq!(
        report.outcome,
        Err(OrderError::PaymentDeclined(
            "card declined by issuer".into()
        ))
    );
    assert_eq!(
        (report.inventory, report.payment),
        (InventoryStatus::Released, PaymentStatus::Declined)
    );
    assert_eq!(
        calls,
        ["reserve ord-1 1", "charge ord-1 39.98 USD", "release ord-1"]
    );
}

#[tokio::test]
async fn payment_fault_releases_the_reservation() {
    let (report, calls) = run(
        reserved(),
        Script::err(DownstreamError::Fault { status: 503 }),
    )
    .await;
    assert_eq!(
        report.outcome,
        Err(OrderError::DownstreamFault(Service::Payment))
    );
    assert_eq!(
        (report.inventory, report.payment),
        (InventoryStatus::Released, PaymentStatus::Fault)
    );
    assert_eq!(calls.last().unwrap(), "release ord-1");
}

#[tokio::test]
async fn inventory_fault_compensates_and_skips_payment() {
    let (report, calls) = run(Script::err(DownstreamError::Unreachable), approved()).await;
    assert_eq!(
        report.outcome,
        Err(OrderError::DownstreamFault(Service::Inventory))
    );
    assert_eq!(
        (report.inventory, report.payment),
        (InventoryStatus::Failed, PaymentStatus::NotAttempted)
    );
    assert_eq!(calls, ["reserve ord-1 1", "release ord-1"]);
}

#[tokio::test(start_paused = true)]
async fn hanging_payment_times_out_at_the_deadline_and_releases() {
    let started = tokio::time::Instant::now();
    let (report, calls) = run(
        reserved(),
        Script::hang(ChargeOutcome::Approved {
            payment_id: "late".into(),
        }),
    )
    .await;
    assert_eq!(
        started.elapsed(),
        DEADLINE,
        "virtual time: exactly one deadline"
    );
    assert_eq!(
        report.outcome,
        Err(OrderError::DownstreamTimeout(Service::Payment))
    );
    assert_eq!(
        (report.inventory, report.payment),
        (InventoryStatus::Released, PaymentStatus::Timeout)
    );
    assert_eq!(
        calls,
        ["reserve ord-1 1", "charge ord-1 39.98 USD", "release ord-1"]
    );
}

#[tokio::test]
async fn a_release_that_fails_fast_is_tried_again() {
    let declined = || {
        Script::ok(ChargeOutcome::Declined {
            message: "no".into(),
        })
    };
    let (inventory, payment, log) = fakes(reserved(), declined());
    *inventory.release_failures.lock().unwrap() = 2;
    let report = place_order(&order(), "USD", &inventory, &payment, DEADLINE).await;
    assert_eq!(report.inventory, InventoryStatus::Released);
    let releases = log
        .lock()
        .unwrap()
        .iter()
        .filter(|c| c.starts_with("release"))
        .count();
    assert_eq!(releases, 3, "two 502s, then released");

    // Three fast failures: reported, no fourth call.
    let (inventory, payment, log) = fakes(reserved(), declined());
    *inventory.release_failures.lock().unwrap() = 3;
    let report = place_order(&order(), "USD", &inventory, &payment, DEADLINE).await;
    assert_eq!(report.inventory, InventoryStatus::ReleaseFailed);
    let releases = log
        .lock()
        .unwrap()
        .iter()
        .filter(|c| c.starts_with("release"))
        .count();
    assert_eq!(releases, order::saga::RELEASE_ATTEMPTS as usize);
}

#[tokio::test]
async fn a_release_that_times_out_is_not_retried() {
    let (mut inventory, payment, log) = fakes(
        reserved(),
        Script::ok(ChargeOutcome::Declined {
            message: "no".into(),
        }),
    );
    inventory.release = Script::hang(());
    tokio::time::pause();
    let report = place_order(&order(), "USD", &inventory, &payment, DEADLINE).await;
    assert_eq!(report.inventory, InventoryStatus::ReleaseFailed);
    let releases = log
        .lock()
        .unwrap()
        .iter()
        .filter(|c| c.starts_with("release"))
        .count();
    assert_eq!(releases, 1);
}

#[tokio::test]
async fn failed_release_is_reported() {
    let (mut inventory, payment, _) = fakes(
        reserved(),
        Script::ok(ChargeOutcome::Declined {
            message: "no".into(),
        }),
    );
    inventory.release = Script::err(DownstreamError::Fault { status: 500 });
    let report = place_order(&order(), "USD", &inventory, &payment, DEADLINE).await;
    assert_eq!(report.inventory, InventoryStatus::ReleaseFailed);
    assert_eq!(
        report.outcome,
        Err(OrderError::PaymentDeclined("no".into()))
    );
}
