//! `AWS_XRAY_DAEMON_ADDRESS`: where segment documents go.
//!
//! Lambda sets it to `169.254.79.129:2000`; the X-Ray SDKs also accept the two-address form
//! `tcp:127.0.0.1:2000 udp:127.0.0.2:2001` (UDP for segments, TCP for the sampling API proxy).
//! `XrayDaemonClient::default()` only understands the first form and panics when it cannot bind,
//! so the address is parsed here and handed to the sink explicitly.

use std::fmt;
use std::net::{SocketAddr, ToSocketAddrs};
use std::str::FromStr;

use crate::Error;

/// Environment variable read by every X-Ray SDK and set by Lambda when tracing is active.
pub const DAEMON_ADDRESS_ENV: &str = "AWS_XRAY_DAEMON_ADDRESS";
/// The daemon's default address when the variable is absent.
pub const DEFAULT_DAEMON_ADDRESS: &str = "127.0.0.1:2000";

/// The daemon's UDP (segments) and TCP (X-Ray API proxy) endpoints, as `host:port` strings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DaemonAddress {
    /// Where segment documents are sent.
    pub udp: String,
    /// Where the X-Ray API proxy listens.
    pub tcp: String,
}

impl DaemonAddress {
    /// Resolves the UDP endpoint to a socket address (the first one, as the SDKs do).
    pub fn udp_socket_addr(&self) -> Result<SocketAddr, Error> {
        resolve(&self.udp)
    }

    /// Resolves the TCP endpoint to a socket address.
    pub fn tcp_socket_addr(&self) -> Result<SocketAddr, Error> {
        resolve(&self.tcp)
    }
}

fn resolve(host_port: &str) -> Result<SocketAddr, Error> {
    host_port
        .to_socket_addrs()
        .map_err(|e| Error::InvalidDaemonAddress(format!("{host_port}: {e}")))?
        .next()
        .ok_or_else(|| Error::InvalidDaemonAddress(format!("{host_port}: no address")))
}

fn check_host_port(s: &str) -> Result<String, Error> {
    let (host, port) = s
        .rsplit_once(':')
        .ok_or_else(|| Error::InvalidDaemonAddress(format!("{s:?} is not host:port")))?;
    if host.is_empty() || port.parse::<u16>().map_or(true, |p| p == 0) {
        return Err(Error::InvalidDaemonAddress(format!(
            "{s:?} is not host:port"
        )));
    }
    Ok(s.to_owned())
}

impl FromStr for DaemonAddress {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let parts: Vec<&str> = s.split_whitespace().collect();
        match parts.as_slice() {
            [single] if !single.starts_with("tcp:") && !single.starts_with("udp:") => {
                let addr = check_host_port(single)?;
                Ok(Self {
                    udp: addr.clone(),
                    tcp: addr,
                })
            }
            [a, b] => {
                let mut udp = None;
                let mut tcp = None;
                for part in [a, b] {
                    if let Some(addr) = part.strip_prefix("udp:") {
                        udp = Some(check_host_port(addr)?);
                    } else if let Some(addr) = part.strip_prefix("tcp:") {
                        tcp = Some(check_host_port(addr)?);
                    }
                }
                match (udp, tcp) {
                    (Some(udp), Some(tcp)) => Ok(Self { udp, tcp }),
                    _ => Err(Error::InvalidDaemonAddress(format!(
                        "{s:?} needs one tcp: and one udp: address"
                    ))),
                }
            }
            _ => Err(Error::InvalidDaemonAddress(format!(
                "{s:?} is neither host:port nor \"tcp:host:port udp:host:port\""
            ))),
        }
    }
}

impl fmt::Display for DaemonAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.udp == self.tcp {
            f.write_str(&self.udp)
        } else {
            write!(f, "tcp:{} udp:{}", self.tcp, self.udp)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_table() {
        let table: &[(&str, Option<(&str, &str)>)] = &[
            ("127.0.0.1:2000", Some(("127.0.0.1:2000", "127.0.0.1:2000"))),
            (
                "169.254.79.129:2000",
                Some(("169.254.79.129:2000", "169.254.79.129:2000")),
            ),
            ("localhost:2000", Some(("localhost:2000", "localhost:2000"))),
            (
                "tcp:127.0.0.1:2000 udp:127.0.0.2:2001",
                Some(("127.0.0.2:2001", "127.0.0.1:2000")),
            ),
            (
                "udp:127.0.0.2:2001   tcp:127.0.0.1:2000",
                Some(("127.0.0.2:2001", "127.0.0.1:2000")),
            ),
            ("", None),
            ("2000", None),
            ("127.0.0.1:", None),
            ("127.0.0.1:0", None),
            ("127.0.0.1:70000", None),
            ("udp:127.0.0.1:2000", None),
            ("tcp:127.0.0.1:2000 tcp:127.0.0.1:2001", None),
            ("a:1 b:2 c:3", None),
        ];
        for (input, expected) in table {
            let parsed = input.parse::<DaemonAddress>().ok();
            let got = parsed.as_ref().map(|a| (a.udp.as_str(), a.tcp.as_str()));
            assert_eq!(got, *expected, "input {input:?}");
        }
    }

    #[test]
    fn displays_both_forms() {
        let single: DaemonAddress = "127.0.0.1:2000".parse().unwrap();
        assert_eq!(single.to_string(), "127.0.0.1:2000");
        let pair: DaemonAddress = "udp:127.0.0.2:2001 tcp:127.0.0.1:2000".parse().unwrap();
        assert_eq!(pair.to_string(), "tcp:127.0.0.1:2000 udp:127.0.0.2:2001");
        assert_eq!(
            pair.udp_socket_addr().unwrap(),
            "127.0.0.2:2001".parse().unwrap()
        );
    }
}
