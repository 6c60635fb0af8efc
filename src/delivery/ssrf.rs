//! The SSRF guard: outbound connections go only to public addresses, unless the operator's
//! allow-list admits a network. The check runs on the resolved addresses when connecting (see
//! [`super::client`]), so a name that resolves to a private address later is still refused.

use std::net::{IpAddr, Ipv6Addr};
use std::sync::OnceLock;

use ipnet::IpNet;

/// Networks that are not on the public internet (IANA special-purpose registries). A block is
/// refused whole even where the registry carves a reachable piece out of it.
const DENIED: &[&str] = &[
    "0.0.0.0/8",
    "10.0.0.0/8",
    "100.64.0.0/10",
    "127.0.0.0/8",
    "169.254.0.0/16",
    "172.16.0.0/12",
    "192.0.0.0/24",
    "192.0.2.0/24",
    "192.88.99.0/24",
    "192.168.0.0/16",
    "198.18.0.0/15",
    "198.51.100.0/24",
    "203.0.113.0/24",
    "224.0.0.0/4",
    "240.0.0.0/4",
    "::/128",
    "::1/128",
    "64:ff9b:1::/48",
    "100::/64",
    "2001::/23",
    "2001:db8::/32",
    "2002::/16",
    "fc00::/7",
    "fe80::/10",
    "fec0::/10",
    "ff00::/8",
];

fn denied_nets() -> &'static [IpNet] {
    static NETS: OnceLock<Vec<IpNet>> = OnceLock::new();
    NETS.get_or_init(|| {
        DENIED
            .iter()
            .map(|n| n.parse().expect("the deny list is valid CIDR"))
            .collect()
    })
}

/// An IPv4 address carried inside an IPv6 one (mapped, compatible or NAT64) is judged as IPv4.
fn embedded_v4(ip: Ipv6Addr) -> Option<IpAddr> {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return Some(IpAddr::V4(v4));
    }
    let s = ip.segments();
    let nat64 = s[..6] == [0x64, 0xff9b, 0, 0, 0, 0];
    let compatible = s[..6] == [0; 6] && ip != Ipv6Addr::UNSPECIFIED && ip != Ipv6Addr::LOCALHOST;
    (nat64 || compatible).then(|| {
        let o = ip.octets();
        IpAddr::from([o[12], o[13], o[14], o[15]])
    })
}

/// Whether `ip` is a public unicast address.
pub fn is_public(ip: IpAddr) -> bool {
    let ip = match ip {
        IpAddr::V6(v6) => embedded_v4(v6).unwrap_or(ip),
        v4 => v4,
    };
    !denied_nets().iter().any(|n| n.contains(&ip))
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0} is not a public address (allow it with delivery.ssrf.allow)")]
pub struct Blocked(pub IpAddr);

/// Public addresses, plus the operator's allow-list.
#[derive(Debug, Clone, Default)]
pub struct AddressPolicy {
    allow: Vec<IpNet>,
}

impl AddressPolicy {
    pub fn new(allow: Vec<IpNet>) -> AddressPolicy {
        AddressPolicy { allow }
    }

    pub fn check(&self, ip: IpAddr) -> Result<(), Blocked> {
        if is_public(ip) || self.allow.iter().any(|n| n.contains(&ip)) {
            Ok(())
        } else {
            Err(Blocked(ip))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn private_loopback_link_local_and_metadata_addresses_are_refused() {
        for s in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "::1",
            "::",
            "fe80::1",
            "fd00::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "64:ff9b::a9fe:a9fe",
        ] {
            assert!(!is_public(ip(s)), "{s} should be refused");
        }
    }

    #[test]
    fn public_addresses_pass() {
        for s in [
            "93.184.215.14",
            "8.8.8.8",
            "2606:4700::1111",
            "::ffff:8.8.8.8",
        ] {
            assert!(is_public(ip(s)), "{s} should pass");
        }
    }

    #[test]
    fn the_allow_list_admits_its_networks_only() {
        let policy = AddressPolicy::new(vec!["127.0.0.1/32".parse().unwrap()]);
        assert_eq!(policy.check(ip("127.0.0.1")), Ok(()));
        assert_eq!(policy.check(ip("127.0.0.2")), Err(Blocked(ip("127.0.0.2"))));
        assert!(policy.check(ip("10.0.0.1")).is_err());
    }
}
