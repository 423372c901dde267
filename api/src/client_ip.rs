//! The client's IP address: the socket's, or with a trusted reverse proxy in front, the
//! address that proxy put in `X-Forwarded-For`.

use std::net::IpAddr;

use axum::http::HeaderMap;
use ipnet::IpNet;

/// Parses a trusted proxy: one address (`10.0.0.7`, `::1`) or a network (`10.0.0.0/8`).
pub fn parse_proxy(s: &str) -> Result<IpNet, String> {
    let s = s.trim();
    s.parse::<IpNet>()
        .or_else(|_| s.parse::<IpAddr>().map(IpNet::from))
        .map_err(|_| format!("{s:?} is not an IP address or network (10.0.0.7, 10.0.0.0/8)"))
}

/// The client behind `peer`. Only when `peer` is a trusted proxy is `X-Forwarded-For`
/// read, from the right (the hop nearest to us) leftwards, skipping trusted proxies: the
/// first untrusted address is the client. Anything a client wrote further left is never
/// believed; a malformed entry stops the walk at the last proxy seen.
pub fn client_ip(peer: IpAddr, headers: &HeaderMap, trusted: &[IpNet]) -> IpAddr {
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    if !is_trusted(&peer) {
        return peer;
    }
    let hops: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect();
    let mut client = peer;
    for hop in hops.iter().rev() {
        let Ok(ip) = hop.parse::<IpAddr>() else {
            break;
        };
        client = ip;
        if !is_trusted(&ip) {
            break;
        }
    }
    client
}

#[cfg(test)]
mod tests {
    use super::*;

    fn xff(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append("x-forwarded-for", v.parse().unwrap());
        }
        h
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn forwarded_for_is_ignored_unless_the_peer_is_a_trusted_proxy() {
        let trusted = [parse_proxy("10.0.0.0/8").unwrap()];
        let h = xff(&["203.0.113.9"]);
        assert_eq!(
            client_ip(ip("198.51.100.1"), &h, &trusted),
            ip("198.51.100.1")
        );
        assert_eq!(client_ip(ip("10.1.2.3"), &h, &[]), ip("10.1.2.3"));
        assert_eq!(client_ip(ip("10.1.2.3"), &h, &trusted), ip("203.0.113.9"));
    }

    #[test]
    fn the_nearest_untrusted_hop_is_the_client_and_spoofed_hops_are_not() {
        let trusted = [
            parse_proxy("10.0.0.7").unwrap(),
            parse_proxy("::1").unwrap(),
        ];
        // The client sent a forged header; the proxy appended the real address.
        let h = xff(&["1.2.3.4, 203.0.113.9", "10.0.0.7"]);
        assert_eq!(client_ip(ip("::1"), &h, &trusted), ip("203.0.113.9"));
        // No header, or a malformed hop: the last proxy seen.
        assert_eq!(client_ip(ip("::1"), &HeaderMap::new(), &trusted), ip("::1"));
        let h = xff(&["203.0.113.9, junk"]);
        assert_eq!(client_ip(ip("10.0.0.7"), &h, &trusted), ip("10.0.0.7"));
    }

    #[test]
    fn proxies_parse_as_addresses_or_networks() {
        assert!(parse_proxy("10.0.0.7").is_ok());
        assert!(parse_proxy(" fd00::/8 ").is_ok());
        assert!(parse_proxy("proxy.local").is_err());
    }
}
