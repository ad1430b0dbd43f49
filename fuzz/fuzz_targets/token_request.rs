//! The token request's parsers: the form body (repeats, empty values, limits), client
//! credentials from the Authorization header and the body (Basic, form-urldecoding, two
//! methods at once), scopes, and the authorization request's query. None may panic.
//!
//! Run: `cargo fuzz run token_request` (see the README's Security section).
#![no_main]

use libfuzzer_sys::fuzz_target;
use tessera::domain::scope::Scope;
use tessera::grant::authorize::canonical_query;
use tessera::grant::{credentials, parse_basic, Params};

fuzz_target!(|data: &[u8]| {
    // The first line is the Authorization header, the rest the body.
    let (header, body) = match data.iter().position(|&b| b == b'\n') {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (&[][..], data),
    };
    let header = std::str::from_utf8(header).ok();
    if let Some(h) = header {
        let _ = parse_basic(h);
    }
    if let Ok(params) = Params::parse(body) {
        if let Ok(creds) = credentials(header, &params) {
            assert!(!creds.client_id.is_empty());
        }
        if let Some(scope) = params.get("scope") {
            if let Ok(s) = Scope::parse(scope) {
                // Parsing what it prints gives the same set.
                assert_eq!(Scope::parse(&s.to_string()).ok(), Some(s));
            }
        }
    }
    if let Ok(text) = std::str::from_utf8(body) {
        let canonical = canonical_query(text);
        assert!(canonical.is_ascii());
    }
});
