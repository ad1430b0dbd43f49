//! PKCE (RFC 7636) through oxide-auth's `Pkce::required()`: S256 only (`plain` is refused),
//! verified in constant time.

use std::borrow::Cow;

use oxide_auth::code_grant::extensions::Pkce;
use oxide_auth::primitives::grant::Value;

/// RFC 7636 §4.1 and §4.2: a verifier or challenge is 43 to 128 unreserved characters.
fn well_formed(value: &str) -> bool {
    (43..=128).contains(&value.len())
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b))
}

/// Encodes a PKCE challenge for storage; `Err` with the reason when it is missing, `plain`,
/// or malformed.
pub fn challenge(method: Option<&str>, challenge: Option<&str>) -> Result<String, &'static str> {
    let challenge = challenge.ok_or("code_challenge is required (PKCE with S256)")?;
    if !well_formed(challenge) {
        return Err("code_challenge must be 43 to 128 characters of [A-Za-z0-9-._~]");
    }
    match Pkce::required().challenge(method.map(Cow::Borrowed), Some(Cow::Borrowed(challenge))) {
        Ok(Some(value)) => match value.into_private_value() {
            Ok(Some(encoded)) => Ok(encoded),
            _ => Err("code_challenge could not be stored"),
        },
        _ => Err("code_challenge_method must be S256"),
    }
}

/// Whether `verifier` answers the challenge stored as `encoded` (from [`challenge`]).
pub fn verifies(encoded: &str, verifier: Option<&str>) -> bool {
    if !verifier.is_some_and(well_formed) {
        return false;
    }
    Pkce::required()
        .verify(
            Some(Value::private(Some(encoded.to_owned()))),
            verifier.map(Cow::Borrowed),
        )
        .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    // RFC 7636 appendix B.
    const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

    #[test]
    fn s256_challenge_of_rfc7636_appendix_b_verifies() {
        let encoded = challenge(Some("S256"), Some(CHALLENGE)).unwrap();
        assert!(verifies(&encoded, Some(VERIFIER)));
        assert!(!verifies(
            &encoded,
            Some("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXx")
        ));
        assert!(!verifies(&encoded, None));
    }

    #[test]
    fn plain_missing_and_malformed_challenges_are_refused() {
        assert!(challenge(Some("plain"), Some(CHALLENGE)).is_err());
        assert!(
            challenge(None, Some(CHALLENGE)).is_err(),
            "the default method is plain"
        );
        assert!(challenge(Some("S256"), None).is_err());
        assert!(challenge(Some("S256"), Some("short")).is_err());
        assert!(challenge(Some("S256"), Some(&format!("{CHALLENGE}!"))).is_err());
    }
}
