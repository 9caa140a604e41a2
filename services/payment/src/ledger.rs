//! First-answer-wins memory of charges, so a retried charge never charges twice.
//!
//! Held per execution environment (Lambda keeps one process per environment), bounded so a long
//! run cannot grow it without limit: the oldest entries are forgotten first. A real deployment
//! would use a conditional write to DynamoDB; the README says this is a simulation.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use crate::charge::ChargeOutcome;

/// Entries kept before the oldest are forgotten.
pub const LEDGER_CAPACITY: usize = 100_000;

/// Settled charges by order id.
#[derive(Debug, Default)]
pub struct Ledger {
    inner: Mutex<Entries>,
}

#[derive(Debug, Default)]
struct Entries {
    by_order: HashMap<String, (ChargeOutcome, f64, String)>,
    order: VecDeque<String>,
}

impl Ledger {
    /// The settled outcome for `order_id`, with the amount and currency it was for.
    pub fn settled(&self, order_id: &str) -> Option<(ChargeOutcome, f64, String)> {
        let entries = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        entries.by_order.get(order_id).cloned()
    }

    /// Records a settled outcome (approved or declined; faults are not settled) unless one is
    /// already there, and returns the one that stands.
    pub fn settle(
        &self,
        order_id: &str,
        outcome: ChargeOutcome,
        amount: f64,
        currency: &str,
    ) -> (ChargeOutcome, f64, String) {
        let mut entries = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(existing) = entries.by_order.get(order_id) {
            return existing.clone();
        }
        if entries.order.len() >= LEDGER_CAPACITY {
            if let Some(oldest) = entries.order.pop_front() {
                entries.by_order.remove(&oldest);
            }
        }
        let entry = (outcome, amount, currency.to_owned());
        entries.by_order.insert(order_id.to_owned(), entry.clone());
        entries.order.push_back(order_id.to_owned());
        entry
    }
}
