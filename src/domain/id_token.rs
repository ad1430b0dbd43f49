//! OpenID Connect ID tokens (Core 1.0 §2): who signed in, for which client, and when. Issued
//! beside the access token of a grant whose scope has `openid`; signed with the server's keys
//! and verified by clients against the JWKS.

use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{decode, decode_header, encode, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::domain::keys::{KeyAlgorithm, KeySet, SigningKey};
use crate::value::{Amr, UnixMs};

/// The `typ` of an ID token's header: plain JWT, as clients expect (unlike access tokens'
/// `at+jwt`, so that neither can pass for the other).
pub const TYP: &str = "JWT";

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct IdClaims {
    pub iss: String,
    /// The user's stable id: the same `sub` as in access tokens and at `/userinfo`.
    pub sub: String,
    /// The client the token is for.
    pub aud: String,
    pub exp: i64,
    pub iat: i64,
    /// When the user signed in, in seconds.
    pub auth_time: i64,
    /// The authorization request's `nonce`; never in the ID token of a refresh (§12.2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
    /// The left half of the access token's hash (§3.1.3.6), base64url.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at_hash: Option<String>,
    /// The browser session the user signed in with (Front- and Back-Channel Logout).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
    /// How the user authenticated (RFC 8176).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub amr: Vec<String>,
}

/// What an ID token states.
pub struct Subject<'a> {
    pub user_id: &'a str,
    pub client_id: &'a str,
    pub auth_time: UnixMs,
    pub nonce: Option<&'a str>,
    pub sid: Option<&'a str>,
    /// How the user signed in.
    pub amr: &'a Amr,
    /// The access token issued with it, for `at_hash`.
    pub access_token: &'a str,
}

/// Signs an ID token with `key`, valid for `ttl` from `now`.
pub fn issue(
    key: &SigningKey,
    issuer: &str,
    subject: &Subject<'_>,
    now: UnixMs,
    ttl: Duration,
) -> Result<String, jsonwebtoken::errors::Error> {
    let mut header = Header::new(key.alg.jwt());
    header.typ = Some(TYP.to_owned());
    header.kid = Some(key.kid.clone());
    let claims = IdClaims {
        iss: issuer.to_owned(),
        sub: subject.user_id.to_owned(),
        aud: subject.client_id.to_owned(),
        iat: now.unix_seconds(),
        exp: now
            .unix_seconds()
            .saturating_add(i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX)),
        auth_time: subject.auth_time.unix_seconds(),
        nonce: subject.nonce.map(str::to_owned),
        at_hash: Some(token_hash(key.alg, subject.access_token)),
        sid: subject.sid.map(str::to_owned),
        amr: subject
            .amr
            .values()
            .iter()
            .map(|v| (*v).to_owned())
            .collect(),
    };
    encode(&header, &claims, &key.encoding)
}

/// `at_hash` (Core §3.1.3.6): the left half of the token's hash, with the hash of the ID
/// token's algorithm: SHA-256 for ES256 and RS256, SHA-512 for EdDSA over Ed25519.
pub fn token_hash(alg: KeyAlgorithm, token: &str) -> String {
    let hash = match alg {
        KeyAlgorithm::EdDSA => &ring::digest::SHA512,
        _ => &ring::digest::SHA256,
    };
    let digest = ring::digest::digest(hash, token.as_bytes());
    let bytes = digest.as_ref();
    URL_SAFE_NO_PAD.encode(&bytes[..bytes.len() / 2])
}

/// The claims of an ID token this server issued, as an `id_token_hint` presents it: signed by
/// one of our keys and naming us as issuer. An expired one still names who signed in (Core
/// §3.1.2.1 lets the hint be expired), so expiry is not checked; `None` for anything else,
/// access tokens included.
pub fn hinted(keys: &KeySet, issuer: &str, token: &str) -> Option<IdClaims> {
    let header = decode_header(token).ok()?;
    if header.typ.as_deref() != Some(TYP) {
        return None;
    }
    let key = keys.find(header.kid.as_deref()?)?;
    let mut validation = Validation::new(key.alg.jwt());
    validation.set_required_spec_claims(&["iss", "sub", "aud"]);
    validation.set_issuer(&[issuer]);
    validation.validate_exp = false;
    validation.validate_aud = false;
    decode::<IdClaims>(token, &key.decoding, &validation)
        .ok()
        .map(|data| data.claims)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// OpenID Connect Core §A.3's example: the access token `jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y`
    /// has `at_hash` `77QmUPtjPfzWtF2AnpK9RQ` under RS256.
    #[test]
    fn at_hash_matches_the_specification_example() {
        assert_eq!(
            token_hash(
                KeyAlgorithm::ES256,
                "jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y"
            ),
            "77QmUPtjPfzWtF2AnpK9RQ"
        );
        // EdDSA: the left half of SHA-512, 32 bytes.
        assert_eq!(token_hash(KeyAlgorithm::EdDSA, "t").len(), 43);
    }
}
