//! Who the client is behind a reverse proxy. The per-client limits (the rate limit, failed
//! sign-ins per address) key on the client's address; behind nginx the TCP peer is nginx, so
//! every client would share one budget. For a peer that is a trusted proxy
//! (`BOXOFFICE_TRUSTED_PROXIES`), the client is the rightmost address in `X-Forwarded-For` that
//! is not itself a trusted proxy: each proxy appends the address it was reached from, so the
//! entries left of that one were written by the client and prove nothing. From any other peer
//! the header is ignored, so nobody can pick their own address by sending it.

use std::net::IpAddr;
use std::str::FromStr;

use axum::http::HeaderMap;
use ipnet::IpNet;

/// The proxies whose `X-Forwarded-For` is believed: addresses or networks.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<IpNet>);

impl TrustedProxies {
    /// Parses a comma-separated list of addresses and networks (`127.0.0.1`, `10.0.0.0/8`,
    /// `::1`); an empty list trusts nobody.
    pub fn parse(list: &str) -> Result<Self, String> {
        list.split(',')
            .map(str::trim)
            .filter(|entry| !entry.is_empty())
            .map(|entry| {
                IpNet::from_str(entry)
                    .or_else(|_| IpAddr::from_str(entry).map(IpNet::from))
                    .map_err(|_| format!("{entry:?} is neither an IP address nor a network"))
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Self)
    }

    fn trusts(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        self.0.iter().any(|net| net.contains(&ip))
    }

    /// The client's address for a request from `peer` with `headers`: `peer` itself unless it is
    /// a trusted proxy; else the rightmost `X-Forwarded-For` entry that is not a trusted proxy,
    /// or the leftmost entry when all are; `peer` when the header is missing or an entry in the
    /// way cannot be read (a proxy that writes garbage is not believed past it).
    pub fn client(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        if !self.trusts(peer) {
            return peer;
        }
        // Right to left: the last header line first, and each line's entries from its end.
        let entries = headers
            .get_all("x-forwarded-for")
            .iter()
            .rev()
            .filter_map(|value| value.to_str().ok())
            .flat_map(|value| value.rsplit(','))
            .map(str::trim);
        let mut client = peer;
        for entry in entries {
            let Ok(ip) = IpAddr::from_str(entry) else {
                return client;
            };
            client = canonical(ip);
            if !self.trusts(client) {
                break;
            }
        }
        client
    }
}

/// An IPv4 address written as IPv6 (`::ffff:203.0.113.9`) as the IPv4 address it is.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn forwarded(values: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for value in values {
            headers.append("x-forwarded-for", value.parse().unwrap());
        }
        headers
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn lists_parse() {
        let trusted = TrustedProxies::parse(" 127.0.0.1, 10.0.0.0/8,::1 ,").unwrap();
        assert_eq!(trusted.0.len(), 3);
        assert_eq!(
            TrustedProxies::parse("").unwrap(),
            TrustedProxies::default()
        );
        for bad in ["localhost", "10.0.0.0/33", "1.2.3"] {
            assert!(TrustedProxies::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_client_is_the_rightmost_untrusted_hop() {
        let trusted = TrustedProxies::parse("127.0.0.1,10.0.0.0/8").unwrap();
        let nginx = ip("127.0.0.1");
        let cases: &[(&[&str], &str)] = &[
            // nginx appended the address it was reached from.
            (&["203.0.113.9"], "203.0.113.9"),
            // The client wrote an entry of its own: not believed.
            (&["198.51.100.1, 203.0.113.9"], "203.0.113.9"),
            // Two proxies: a load balancer in 10/8 in front of nginx.
            (&["203.0.113.9, 10.1.2.3"], "203.0.113.9"),
            (&["203.0.113.9", "10.1.2.3"], "203.0.113.9"),
            // Every hop trusted: the leftmost.
            (&["10.9.9.9, 10.1.2.3"], "10.9.9.9"),
            // Garbage where the client should be: the last hop that could be read.
            (&["203.0.113.9, junk, 10.1.2.3"], "10.1.2.3"),
            (&["::ffff:203.0.113.9"], "203.0.113.9"),
            // No header: the proxy itself.
            (&[], "127.0.0.1"),
        ];
        for (values, client) in cases {
            assert_eq!(
                trusted.client(nginx, &forwarded(values)),
                ip(client),
                "{values:?}"
            );
        }
    }

    #[test]
    fn others_cannot_choose_their_address() {
        let headers = forwarded(&["203.0.113.9"]);
        let trusted = TrustedProxies::parse("10.0.0.0/8").unwrap();
        assert_eq!(trusted.client(ip("192.0.2.7"), &headers), ip("192.0.2.7"));
        let nobody = TrustedProxies::default();
        assert_eq!(nobody.client(ip("127.0.0.1"), &headers), ip("127.0.0.1"));
    }
}
