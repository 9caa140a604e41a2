//! In-memory inventory and payment ports that record their calls.

#![allow(dead_code)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use order::order::OrderLine;
use order::ports::{ChargeOutcome, DownstreamError, Inventory, Payment, ReserveOutcome};

/// What a fake port was asked, in order.
pub type CallLog = Arc<Mutex<Vec<String>>>;

/// How a fake answers (after an optional delay; `Duration::MAX` never answers).
#[derive(Clone)]
pub struct Script<T> {
    pub answer: Result<T, DownstreamError>,
    pub delay: Duration,
}

impl<T> Script<T> {
    pub fn ok(answer: T) -> Self {
        Self {
            answer: Ok(answer),
            delay: Duration::ZERO,
        }
    }
    pub fn err(error: DownstreamError) -> Self {
        Self {
            answer: Err(error),
            delay: Duration::ZERO,
        }
    }
    pub fn hang(answer: T) -> Self {
        Self {
            answer: Ok(answer),
            delay: Duration::from_secs(3600),
        }
    }
}

async fn wait(delay: Duration) {
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
}

pub struct FakeInventory {
    pub reserve: Script<ReserveOutcome>,
    pub release: Script<()>,
    /// Release calls that fail (502) before `release` answers.
    pub release_failures: Arc<Mutex<u32>>,
    pub log: CallLog,
}

impl Inventory for FakeInventory {
    async fn reserve(
        &self,
        order_id: &str,
        items: &[OrderLine],
    ) -> Result<ReserveOutcome, DownstreamError> {
        self.log
            .lock()
            .unwrap()
            .push(format!("reserve {order_id} {}", items.len()));
        wait(self.reserve.delay).await;
        self.reserve.answer.clone()
    }

    async fn release(&self, order_id: &str) -> Result<(), DownstreamError> {
        self.log.lock().unwrap().push(format!("release {order_id}"));
        wait(self.release.delay).await;
        let mut failures = self.release_failures.lock().unwrap();
        if *failures > 0 {
            *failures -= 1;
            return Err(DownstreamError::Fault { status: 502 });
        }
        self.release.answer.clone()
    }
}

pub struct FakePayment {
    pub charge: Script<ChargeOutcome>,
    pub log: CallLog,
}

impl Payment for FakePayment {
    async fn charge(
        &self,
        order_id: &str,
        amount: f64,
        currency: &str,
    ) -> Result<ChargeOutcome, DownstreamError> {
        self.log
            .lock()
            .unwrap()
            .push(format!("charge {order_id} {amount} {currency}"));
        wait(self.charge.delay).await;
        self.charge.answer.clone()
    }
}

/// Fakes sharing one call log.
pub fn fakes(
    reserve: Script<ReserveOutcome>,
    charge: Script<ChargeOutcome>,
) -> (FakeInventory, FakePayment, CallLog) {
    let log = CallLog::default();
    (
        FakeInventory {
            reserve,
            release: Script::ok(()),
            release_failures: Arc::default(),
            log: Arc::clone(&log),
        },
        FakePayment {
            charge,
            log: Arc::clone(&log),
        },
        log,
    )
}

pub fn approved() -> Script<ChargeOutcome> {
    Script::ok(ChargeOutcome::Approved {
        payment_id: "pay_7".into(),
    })
}

pub fn reserved() -> Script<ReserveOutcome> {
    Script::ok(ReserveOutcome::Reserved)
}
