//! The ledger port: first-answer-wins records of charges, so a retried charge never charges twice.
//!
//! A charge is claimed before the gateway is called (a `PENDING` record with a lease), settled
//! after (`CHARGED` or `DECLINED`), or given up after a gateway fault so that a retry may charge.
//! Two adapters keep this contract: [`crate::dynamo::DynamoLedger`] (every deployed and
//! local-stack function) and, for unit tests only, [`MemoryLedger`] (feature `memory-store`).

use std::future::Future;

use lattice_xray::aws_call::AwsCallFailure;

/// A charge as the ledger keys and compares it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LedgerCharge {
    /// The order paid; the record's key.
    pub order_id: String,
    /// Amount in minor units (cents), so comparisons are exact.
    pub amount_cents: i64,
    /// ISO 4217 code.
    pub currency: String,
}

/// A settled charge.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Settlement {
    /// Money taken.
    Charged {
        /// The payment's id.
        payment_id: String,
    },
    /// The issuer said no.
    Declined {
        /// Why.
        reason: String,
    },
}

/// What a claim found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Claim {
    /// Ours: call the gateway, then settle or abandon.
    Claimed,
    /// Settled before: answer with that.
    Settled(Settlement),
    /// Another request holds the claim and its lease has not run out.
    InProgress,
    /// The order was charged (or is being charged) for another amount or currency.
    Mismatch,
}

/// The ledger failed; nothing was recorded, or (on a timeout) the write's fate is unknown.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LedgerError {
    /// The ledger could not be used (throttled, conflicting, timed out, unreachable).
    #[error("the ledger is unavailable: {0}")]
    Unavailable(AwsCallFailure),
    /// The ledger refused the request or holds a record we cannot read: a fault of ours.
    #[error("the ledger failed: {0}")]
    Fault(String),
}

/// Where charges are recorded.
pub trait Ledger: Send + Sync + 'static {
    /// Claims the charge, or says what stands.
    fn claim(
        &self,
        charge: &LedgerCharge,
    ) -> impl Future<Output = Result<Claim, LedgerError>> + Send;

    /// Settles a claimed charge; returns the settlement that stands (the first one).
    fn settle(
        &self,
        order_id: &str,
        settlement: &Settlement,
    ) -> impl Future<Output = Result<Settlement, LedgerError>> + Send;

    /// Gives up a claimed charge after a gateway fault, so a retry may charge.
    fn abandon(&self, order_id: &str) -> impl Future<Output = Result<(), LedgerError>> + Send;
}

#[cfg(feature = "memory-store")]
pub use memory::MemoryLedger;

#[cfg(feature = "memory-store")]
mod memory {
    use std::collections::HashMap;
    use std::sync::Mutex;

    use super::{Claim, Ledger, LedgerCharge, LedgerError, Settlement};

    /// Charges in one process's memory (unit tests only: no function uses it). Claims have no
    /// lease here: a test process does not die mid-charge.
    #[derive(Debug, Default)]
    pub struct MemoryLedger {
        records: Mutex<HashMap<String, (LedgerCharge, Option<Settlement>)>>,
    }

    impl MemoryLedger {
        fn records(
            &self,
        ) -> std::sync::MutexGuard<'_, HashMap<String, (LedgerCharge, Option<Settlement>)>>
        {
            self.records.lock().unwrap_or_else(|p| p.into_inner())
        }
    }

    impl Ledger for MemoryLedger {
        async fn claim(&self, charge: &LedgerCharge) -> Result<Claim, LedgerError> {
            let mut records = self.records();
            Ok(match records.get(&charge.order_id) {
                None => {
                    records.insert(charge.order_id.clone(), (charge.clone(), None));
                    Claim::Claimed
                }
                Some((held, _)) if held != charge => Claim::Mismatch,
                Some((_, Some(settled))) => Claim::Settled(settled.clone()),
                Some((_, None)) => Claim::InProgress,
            })
        }

        async fn settle(
            &self,
            order_id: &str,
            settlement: &Settlement,
        ) -> Result<Settlement, LedgerError> {
            let mut records = self.records();
            let record = records
                .get_mut(order_id)
                .ok_or_else(|| LedgerError::Fault(format!("no claim for {order_id}")))?;
            Ok(record.1.get_or_insert_with(|| settlement.clone()).clone())
        }

        async fn abandon(&self, order_id: &str) -> Result<(), LedgerError> {
            let mut records = self.records();
            if matches!(records.get(order_id), Some((_, None))) {
                records.remove(order_id);
            }
            Ok(())
        }
    }
}
