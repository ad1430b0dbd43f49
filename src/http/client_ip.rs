//! The client's address: the socket's peer, or, behind a trusted reverse proxy, the rightmost
//! address that is not itself a trusted proxy in the one header the proxy writes
//! (`server.forwarded_header`: `X-Forwarded-For`, or `Forwarded`, RFC 7239). The other header
//! is never read: a proxy that writes one passes the client's own copy of the other through,
//! and the client would choose its address. Headers from any other peer are ignored too.

use std::net::IpAddr;

use actix_web::http::header::HeaderMap;
use actix_web::HttpRequest;
use ipnet::IpNet;

use crate::settings::ForwardedHeader;

/// Who may say where a request came from, and in which header.
#[derive(Debug, Clone)]
pub struct Proxies {
    pub trusted: Vec<IpNet>,
    pub header: ForwardedHeader,
}

impl Proxies {
    /// Whether `ip` is one of the trusted proxies, whose headers are believed.
    pub fn trusts(&self, ip: &IpAddr) -> bool {
        self.trusted.iter().any(|net| net.contains(ip))
    }
}

/// The address throttling, audit events and stored refresh tokens use.
pub fn client_ip(req: &HttpRequest, proxies: &Proxies) -> Option<IpAddr> {
    let peer = req.peer_addr()?.ip();
    Some(resolve(peer, req.headers(), proxies))
}

fn resolve(peer: IpAddr, headers: &HeaderMap, proxies: &Proxies) -> IpAddr {
    if !proxies.trusts(&peer) {
        return peer;
    }
    let mut client = peer;
    // Right to left: each hop was added by the one after it; stop at the first that no
    // trusted proxy vouches for.
    for hop in chain(headers, proxies.header).iter().rev() {
        match hop {
            Some(ip) if proxies.trusts(ip) => client = *ip,
            Some(ip) => return *ip,
            // "unknown", an obfuscated name: the last trusted hop is all that is known.
            None => return client,
        }
    }
    client
}

/// The hops of `header`, left to right.
fn chain(headers: &HeaderMap, header: ForwardedHeader) -> Vec<Option<IpAddr>> {
    if header == ForwardedHeader::Forwarded {
        return headers
            .get_all("forwarded")
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(|element| {
                element
                    .split(';')
                    .filter_map(|pair| pair.trim().split_once('='))
                    .find(|(k, _)| k.trim().eq_ignore_ascii_case("for"))
                    .and_then(|(_, v)| node(v.trim().trim_matches('"')))
            })
            .collect();
    }
    headers
        .get_all("x-forwarded-for")
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|hop| node(hop.trim()))
        .collect()
}

/// An address as a hop names it: `192.0.2.1`, `192.0.2.1:4711`, `[2001:db8::1]:4711`,
/// `2001:db8::1`.
fn node(text: &str) -> Option<IpAddr> {
    if let Ok(ip) = text.parse() {
        return Some(ip);
    }
    if let Some(rest) = text.strip_prefix('[') {
        return rest.split_once(']')?.0.parse().ok();
    }
    text.rsplit_once(':')?.0.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::http::header::{HeaderName, HeaderValue};

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.append(HeaderName::from_static(k), HeaderValue::from_static(v));
        }
        map
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn behind(trusted: &str, header: ForwardedHeader) -> Proxies {
        Proxies {
            trusted: trusted
                .split_whitespace()
                .map(|n| n.parse().unwrap())
                .collect(),
            header,
        }
    }

    const XFF: ForwardedHeader = ForwardedHeader::XForwardedFor;

    #[test]
    fn headers_count_only_from_a_trusted_peer() {
        let trusted = behind("10.0.0.0/8", XFF);
        let h = headers(&[("x-forwarded-for", "198.51.100.7")]);
        assert_eq!(resolve(ip("203.0.113.1"), &h, &trusted), ip("203.0.113.1"));
        assert_eq!(resolve(ip("10.1.2.3"), &h, &trusted), ip("198.51.100.7"));
        assert_eq!(
            resolve(ip("10.1.2.3"), &h, &behind("", XFF)),
            ip("10.1.2.3")
        );
    }

    #[test]
    fn the_rightmost_untrusted_hop_is_the_client() {
        let trusted = behind("10.0.0.0/8", XFF);
        // The client forged the first entry; the proxies appended the rest.
        let h = headers(&[("x-forwarded-for", "1.2.3.4, 198.51.100.7, 10.0.0.5")]);
        assert_eq!(resolve(ip("10.0.0.9"), &h, &trusted), ip("198.51.100.7"));
        let trusted = behind("10.0.0.0/8", ForwardedHeader::Forwarded);
        let h = headers(&[
            ("forwarded", "for=1.2.3.4"),
            (
                "forwarded",
                r#"for="[2001:db8::7]:4711";proto=https, for=10.0.0.5"#,
            ),
        ]);
        assert_eq!(resolve(ip("10.0.0.9"), &h, &trusted), ip("2001:db8::7"));
        let h = headers(&[("forwarded", "for=unknown, for=10.0.0.5")]);
        assert_eq!(resolve(ip("10.0.0.9"), &h, &trusted), ip("10.0.0.5"));
        assert_eq!(
            resolve(ip("10.0.0.9"), &HeaderMap::new(), &trusted),
            ip("10.0.0.9")
        );
    }

    #[test]
    fn only_the_header_the_proxy_writes_is_read() {
        let both = headers(&[
            ("forwarded", "for=10.66.0.1"),
            ("x-forwarded-for", "198.51.100.7"),
        ]);
        let xff = behind("127.0.0.1/32", XFF);
        assert_eq!(resolve(ip("127.0.0.1"), &both, &xff), ip("198.51.100.7"));
        let forwarded = behind("127.0.0.1/32", ForwardedHeader::Forwarded);
        assert_eq!(resolve(ip("127.0.0.1"), &both, &forwarded), ip("10.66.0.1"));
        // The client's own Forwarded, alone, is not read behind an X-Forwarded-For proxy.
        let only = headers(&[("forwarded", "for=10.66.0.1")]);
        assert_eq!(resolve(ip("127.0.0.1"), &only, &xff), ip("127.0.0.1"));
    }
}
