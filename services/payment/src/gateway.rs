//! The card gateway port and its seeded simulation.

use std::future::Future;

use lattice_xray::simulation::{LatencyRange, Simulator};

use crate::charge::{ChargeOutcome, ChargeRequest};

/// Talks to whoever moves the money.
pub trait Gateway: Send + Sync + 'static {
    /// Attempts one charge.
    fn charge(&self, request: &ChargeRequest) -> impl Future<Output = ChargeOutcome> + Send;
}

/// Failure rates and latency of the simulated gateway.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct GatewayBehaviour {
    /// Share of charges declined.
    pub decline_rate: f64,
    /// Share of charges that fault.
    pub fault_rate: f64,
    /// Time each charge takes.
    pub latency: LatencyRange,
}

/// A gateway that approves, declines or faults at configured rates after a seeded delay.
#[derive(Debug)]
pub struct SimulatedGateway {
    behaviour: GatewayBehaviour,
    simulator: Simulator,
}

impl SimulatedGateway {
    /// A gateway whose sequence of outcomes is fixed by `seed`.
    pub fn new(behaviour: GatewayBehaviour, seed: u64) -> Self {
        Self {
            behaviour,
            simulator: Simulator::seeded(seed),
        }
    }
}

impl Gateway for SimulatedGateway {
    async fn charge(&self, _request: &ChargeRequest) -> ChargeOutcome {
        self.simulator.delay(self.behaviour.latency).await;
        let draw = self.simulator.draw();
        if draw < self.behaviour.decline_rate {
            ChargeOutcome::Declined {
                reason: "card declined by issuer".to_owned(),
            }
        } else if draw < self.behaviour.decline_rate + self.behaviour.fault_rate {
            ChargeOutcome::GatewayFault
        } else {
            ChargeOutcome::Approved {
                payment_id: format!("pay_{}", self.simulator.hex_id(12)),
            }
        }
    }
}
