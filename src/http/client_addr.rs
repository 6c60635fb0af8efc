//! The address of the client behind trusted proxies (`server.trusted_proxies`): taken from
//! `Forwarded` or `X-Forwarded-For` only when the connection comes from a trusted proxy, and
//! then the nearest address in the chain that is not itself a trusted proxy, so a client
//! cannot choose what hookd records by sending the header itself.

use std::net::IpAddr;

use actix_web::HttpRequest;
use ipnet::IpNet;

/// The client's address: the peer's, or what trusted proxies say in front of it.
pub fn client_addr(req: &HttpRequest, trusted: &[IpNet]) -> Option<IpAddr> {
    let peer = req.peer_addr()?.ip();
    let header = |name: &str| {
        req.headers()
            .get_all(name)
            .filter_map(|v| v.to_str().ok())
            .collect::<Vec<_>>()
            .join(",")
    };
    Some(resolve(
        peer,
        &header("forwarded"),
        &header("x-forwarded-for"),
        trusted,
    ))
}

/// [`client_addr`] on plain values: `forwarded` and `x_forwarded_for` as received (several
/// headers joined with commas).
pub fn resolve(peer: IpAddr, forwarded: &str, x_forwarded_for: &str, trusted: &[IpNet]) -> IpAddr {
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|n| n.contains(ip));
    if !is_trusted(&peer) {
        return peer;
    }
    // The standard header first; proxies that only know the older one use X-Forwarded-For.
    let chain: Vec<IpAddr> = if forwarded.trim().is_empty() {
        x_forwarded_for.split(',').filter_map(parse_addr).collect()
    } else {
        forwarded
            .split(',')
            .filter_map(|element| {
                element.split(';').find_map(|pair| {
                    let (k, v) = pair.split_once('=')?;
                    k.trim()
                        .eq_ignore_ascii_case("for")
                        .then(|| parse_addr(v))
                        .flatten()
                })
            })
            .collect()
    };
    // From the nearest hop outwards: the first address that is not a trusted proxy.
    chain
        .iter()
        .rev()
        .find(|ip| !is_trusted(ip))
        .or(chain.first())
        .copied()
        .unwrap_or(peer)
}

/// An address as proxies write it: `192.0.2.1`, `192.0.2.1:4711`, `"[2001:db8::1]:4711"`,
/// `2001:db8::1`. Obfuscated names (`unknown`, `_hidden`) are not addresses.
fn parse_addr(text: &str) -> Option<IpAddr> {
    let t = text.trim().trim_matches('"');
    if let Ok(ip) = t.parse() {
        return Some(ip);
    }
    if let Some(rest) = t.strip_prefix('[') {
        return rest.split_once(']')?.0.parse().ok();
    }
    let (host, _port) = t.rsplit_once(':')?;
    host.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nets(list: &[&str]) -> Vec<IpNet> {
        list.iter().map(|n| n.parse().expect("cidr")).collect()
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_claims() {
        let trusted = nets(&["10.0.0.0/8"]);
        assert_eq!(
            resolve(ip("203.0.113.9"), "for=1.2.3.4", "1.2.3.4", &trusted),
            ip("203.0.113.9")
        );
    }

    #[test]
    fn behind_trusted_proxies_the_nearest_untrusted_hop_is_the_client() {
        let trusted = nets(&["10.0.0.0/8"]);
        // The client forged the first entry; the proxy appended the real one.
        assert_eq!(
            resolve(
                ip("10.0.0.2"),
                "",
                "6.6.6.6, 198.51.100.7, 10.0.0.1",
                &trusted
            ),
            ip("198.51.100.7")
        );
        assert_eq!(
            resolve(
                ip("10.0.0.2"),
                "for=6.6.6.6, for=\"[2001:db8::7]:4711\";proto=https",
                "9.9.9.9",
                &trusted
            ),
            ip("2001:db8::7"),
            "Forwarded wins over X-Forwarded-For"
        );
        assert_eq!(
            resolve(ip("10.0.0.2"), "for=198.51.100.7:555", "", &trusted),
            ip("198.51.100.7")
        );
    }

    #[test]
    fn a_trusted_peer_without_a_usable_header_is_the_client() {
        let trusted = nets(&["10.0.0.0/8"]);
        assert_eq!(resolve(ip("10.0.0.2"), "", "", &trusted), ip("10.0.0.2"));
        assert_eq!(
            resolve(ip("10.0.0.2"), "for=unknown", "", &trusted),
            ip("10.0.0.2")
        );
    }
}
