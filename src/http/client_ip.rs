//! The client's address: the socket's peer, or, behind a trusted reverse proxy, the rightmost
//! address in `Forwarded` (RFC 7239) or `X-Forwarded-For` that is not itself a trusted proxy.
//! Headers from any other peer are ignored: anyone can send them.

use std::net::IpAddr;

use actix_web::http::header::HeaderMap;
use actix_web::HttpRequest;
use ipnet::IpNet;

/// The address throttling, audit events and stored refresh tokens use.
pub fn client_ip(req: &HttpRequest, trusted: &[IpNet]) -> Option<String> {
    let peer = req.peer_addr()?.ip();
    Some(resolve(peer, req.headers(), trusted).to_string())
}

fn resolve(peer: IpAddr, headers: &HeaderMap, trusted: &[IpNet]) -> IpAddr {
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    if !is_trusted(&peer) {
        return peer;
    }
    let mut client = peer;
    // Right to left: each hop was added by the one after it; stop at the first that no
    // trusted proxy vouches for.
    for hop in chain(headers).iter().rev() {
        match hop {
            Some(ip) if is_trusted(ip) => client = *ip,
            Some(ip) => return *ip,
            // "unknown", an obfuscated name: the last trusted hop is all that is known.
            None => return client,
        }
    }
    client
}

/// The hops of `Forwarded` if present, else of `X-Forwarded-For`, left to right.
fn chain(headers: &HeaderMap) -> Vec<Option<IpAddr>> {
    let forwarded: Vec<&str> = headers
        .get_all("forwarded")
        .filter_map(|v| v.to_str().ok())
        .collect();
    if !forwarded.is_empty() {
        return forwarded
            .iter()
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

    #[test]
    fn headers_count_only_from_a_trusted_peer() {
        let trusted: Vec<IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        let h = headers(&[("x-forwarded-for", "198.51.100.7")]);
        assert_eq!(resolve(ip("203.0.113.1"), &h, &trusted), ip("203.0.113.1"));
        assert_eq!(resolve(ip("10.1.2.3"), &h, &trusted), ip("198.51.100.7"));
        assert_eq!(resolve(ip("10.1.2.3"), &h, &[]), ip("10.1.2.3"));
    }

    #[test]
    fn the_rightmost_untrusted_hop_is_the_client() {
        let trusted: Vec<IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        // The client forged the first entry; the proxies appended the rest.
        let h = headers(&[("x-forwarded-for", "1.2.3.4, 198.51.100.7, 10.0.0.5")]);
        assert_eq!(resolve(ip("10.0.0.9"), &h, &trusted), ip("198.51.100.7"));
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
}
