//! The local service network's topology: one service network, and per service a listener and a
//! LAMBDA target group, with ids and ARNs shaped like Lattice's own (VPC Lattice API reference:
//! `sn-`, `svc-`, `listener-`, `tg-` followed by 17 hex digits; ARNs
//! `arn:aws:vpc-lattice:<region>:<account>:servicenetwork/sn-…`, `…:service/svc-…`,
//! `…:service/svc-…/listener/listener-…`, `…:targetgroup/tg-…`).
//!
//! Ids are derived from the names, so the same stack gets the same ARNs on every start and a
//! dashboard or a saved query keeps working across restarts.

use serde::{Deserialize, Serialize};

/// The account the local stack pretends to be (the one AWS documentation examples use).
pub const DEFAULT_ACCOUNT: &str = "123456789012";
/// The default region.
pub const DEFAULT_REGION: &str = "us-east-1";
/// The availability zone reported in metrics (a single local "zone").
pub const LOCAL_AZ: &str = "use1-az1";

/// A Lattice-style id: `prefix-` and 17 hex digits derived from `seed` (FNV-1a, 68 bits).
pub fn lattice_id(prefix: &str, seed: &str) -> String {
    let mut hash: u128 = 0x6c62_272e_07bb_0142_62b8_2175_6295_c58d;
    for byte in seed.bytes() {
        hash ^= u128::from(byte);
        hash = hash.wrapping_mul(0x0000_0000_0100_0000_0000_0000_0000_013B);
    }
    format!("{prefix}-0{:016x}", (hash as u64))
}

/// One Lattice service with its listener and its LAMBDA target group (V2 events).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceTopology {
    /// Service name (also the function name it targets).
    pub name: String,
    /// `svc-…`.
    pub service_id: String,
    /// The service ARN.
    pub service_arn: String,
    /// `listener-…`.
    pub listener_id: String,
    /// The listener ARN.
    pub listener_arn: String,
    /// The target group ARN.
    pub target_group_arn: String,
    /// `tg-…` (the TargetGroup metric dimension).
    pub target_group_id: String,
    /// The Lattice-assigned DNS name this service would have on AWS (informational).
    pub dns_name: String,
    /// The function the target group invokes.
    pub function_name: String,
}

/// The service network and its services.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkTopology {
    /// Account id in every ARN.
    pub account_id: String,
    /// Region in every ARN.
    pub region: String,
    /// `sn-…`.
    pub service_network_id: String,
    /// The service network ARN.
    pub service_network_arn: String,
    /// The VPC callers are in (every local caller is in the one associated VPC).
    pub source_vpc_id: String,
    /// Its ARN.
    pub source_vpc_arn: String,
    /// The services.
    pub services: Vec<ServiceTopology>,
}

impl NetworkTopology {
    /// A network named `network` with one service (and function) per name in `services`.
    pub fn new(account_id: &str, region: &str, network: &str, services: &[&str]) -> Self {
        let vpc_id = lattice_id("vpc", network);
        let arn = |resource: &str| format!("arn:aws:vpc-lattice:{region}:{account_id}:{resource}");
        let service_network_id = lattice_id("sn", network);
        let services = services
            .iter()
            .map(|name| {
                let service_id = lattice_id("svc", &format!("{network}/{name}"));
                let listener_id = lattice_id("listener", &format!("{network}/{name}/http"));
                let target_group_id = lattice_id("tg", &format!("{network}/{name}/lambda"));
                let service_arn = arn(&format!("service/{service_id}"));
                ServiceTopology {
                    name: (*name).to_owned(),
                    listener_arn: format!("{service_arn}/listener/{listener_id}"),
                    dns_name: format!(
                        "{name}-{}.{}.vpc-lattice-svcs.{region}.on.aws",
                        &service_id[4..],
                        &service_network_id[4..11]
                    ),
                    service_id,
                    service_arn,
                    listener_id,
                    target_group_arn: arn(&format!("targetgroup/{target_group_id}")),
                    target_group_id,
                    function_name: (*name).to_owned(),
                }
            })
            .collect();
        Self {
            account_id: account_id.to_owned(),
            region: region.to_owned(),
            service_network_arn: arn(&format!("servicenetwork/{service_network_id}")),
            service_network_id,
            source_vpc_arn: format!("arn:aws:ec2:{region}:{account_id}:vpc/{vpc_id}"),
            source_vpc_id: vpc_id,
            services,
        }
    }

    /// The service named `name`.
    pub fn service(&self, name: &str) -> Option<&ServiceTopology> {
        self.services.iter().find(|s| s.name == name)
    }

    /// `arn:aws:iam::<account>:role/<role>`.
    pub fn role_arn(&self, role: &str) -> String {
        format!("arn:aws:iam::{}:role/{role}", self.account_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_and_arns_look_like_lattice_ones_and_are_stable() {
        let network = NetworkTopology::new("123456789012", "us-east-1", "orders", &["payment"]);
        let again = NetworkTopology::new("123456789012", "us-east-1", "orders", &["payment"]);
        assert_eq!(network, again);
        let payment = network.service("payment").unwrap();
        let id = |s: &str, prefix: &str| {
            let hex = s.strip_prefix(prefix).unwrap();
            hex.len() == 17 && hex.chars().all(|c| c.is_ascii_hexdigit())
        };
        assert!(id(&network.service_network_id, "sn-"));
        assert!(id(&payment.service_id, "svc-"));
        assert!(id(&payment.listener_id, "listener-"));
        assert!(id(&payment.target_group_id, "tg-"));
        assert_eq!(
            payment.service_arn,
            format!(
                "arn:aws:vpc-lattice:us-east-1:123456789012:service/{}",
                payment.service_id
            )
        );
        assert_eq!(
            payment.target_group_arn,
            format!(
                "arn:aws:vpc-lattice:us-east-1:123456789012:targetgroup/{}",
                payment.target_group_id
            )
        );
        assert!(payment
            .listener_arn
            .starts_with(&format!("{}/listener/listener-", payment.service_arn)));
        assert_ne!(payment.service_id[4..], network.service_network_id[3..]);
    }
}
