//! Web origins (RFC 6454): where a browser app's scripts run, and so who may read a response
//! through CORS. A client registers the exact origins of its single-page app; a browser names
//! the page's origin in the `Origin` header of every cross-origin request.

/// An origin as browsers serialize it: `scheme://host[:port]`, lowercase host, no default
/// port, nothing else. Two origins are the same exactly when their texts are equal.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Origin(String);

impl Origin {
    /// An origin an administrator registers: https, or http on this machine (as for redirect
    /// URIs, RFC 8252 §7.3), with no path, query, fragment or user info; no wildcards. A
    /// trailing `/` is tolerated and dropped.
    pub fn parse(text: &str) -> Result<Origin, String> {
        let bad = |why: &str| format!("allowed origin {text}: {why}");
        let url = url::Url::parse(text).map_err(|e| bad(&e.to_string()))?;
        let origin = url.origin().ascii_serialization();
        if text.contains('*') || origin.contains('*') {
            return Err(bad("wildcards are not allowed; register each origin"));
        }
        match url.scheme() {
            "https" => {}
            "http" if is_loopback(&url) => {}
            "http" => return Err(bad("http is allowed only on localhost; use https")),
            _ => return Err(bad("an origin is https://host[:port]")),
        }
        if url.path() != "/"
            || url.query().is_some()
            || url.fragment().is_some()
            || !url.username().is_empty()
            || url.password().is_some()
            || !text.contains("://")
        {
            return Err(bad(
                "an origin is only scheme, host and port, e.g. https://app.example.com",
            ));
        }
        Ok(Origin(origin))
    }

    /// The `Origin` request header: an http(s) origin as a browser writes it, or else the
    /// opaque origin `null` (a sandboxed page, a file, a redirect across origins, or a value no
    /// browser sends), which is never any client's.
    pub fn from_header(value: &str) -> Origin {
        let web = url::Url::parse(value)
            .ok()
            .filter(|url| matches!(url.scheme(), "http" | "https"))
            .map(|url| url.origin().ascii_serialization())
            .filter(|origin| origin == value);
        Origin(web.unwrap_or_else(|| "null".to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The origin of a URI, if it has one a browser would send (http and https only: an app's
    /// private-use scheme has no web origin).
    pub fn of(uri: &url::Url) -> Option<Origin> {
        matches!(uri.scheme(), "http" | "https").then(|| Origin(uri.origin().ascii_serialization()))
    }
}

/// Whether `url` names this machine: `localhost` or a loopback address (127.0.0.0/8, ::1).
/// http is safe there only (RFC 8252 §7.3); the doctor applies the same rule to the issuer.
pub fn is_loopback(url: &url::Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Stored origins (space-separated) parsed; one that no longer parses is left out.
pub fn stored(text: &str) -> Vec<Origin> {
    text.split_whitespace()
        .filter_map(|o| Origin::parse(o).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::Origin;

    #[test]
    fn registered_origins_are_exact_and_canonical() {
        for (given, canonical) in [
            ("https://app.example.com", "https://app.example.com"),
            ("https://App.Example.com/", "https://app.example.com"),
            ("https://app.example.com:443", "https://app.example.com"),
            (
                "https://app.example.com:8443",
                "https://app.example.com:8443",
            ),
            ("http://localhost:5173", "http://localhost:5173"),
            ("http://127.0.0.1:3000", "http://127.0.0.1:3000"),
            ("http://[::1]:3000", "http://[::1]:3000"),
            ("https://bücher.example", "https://xn--bcher-kva.example"),
        ] {
            assert_eq!(Origin::parse(given).unwrap().as_str(), canonical, "{given}");
        }
        for bad in [
            "http://app.example.com",
            "https://*.example.com",
            "https://%2A.example.com",
            "https:app.example.com",
            "https://app.example.com/path",
            "https://app.example.com/?q=1",
            "https://app.example.com/#x",
            "https://user@app.example.com",
            "com.example.app:/callback",
            "app.example.com",
            "null",
            "",
        ] {
            assert!(Origin::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_header_matches_only_as_a_browser_writes_it() {
        assert_eq!(
            Origin::from_header("https://app.example.com"),
            Origin::parse("https://app.example.com").unwrap()
        );
        for other in [
            "null",
            "https://app.example.com/",
            "https://APP.example.com",
            "https://app.example.com:443",
            "file://",
            "",
        ] {
            assert_eq!(Origin::from_header(other).as_str(), "null", "{other}");
        }
    }
}
