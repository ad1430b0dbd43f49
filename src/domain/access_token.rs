//! JWT access tokens per RFC 9068.

use std::time::Duration;

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{decode, decode_header, encode, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::domain::crypto::random_id;
use crate::domain::keys::KeySet;
use crate::value::{ClientId, FamilyId, UnixMs};

/// RFC 9068 §2.1: the `typ` of an access token.
pub const TYP: &str = "at+jwt";

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct AccessClaims {
    pub iss: String,
    /// The user's stable id (or the client's, for client_credentials).
    pub sub: String,
    pub aud: Audience,
    pub client_id: ClientId,
    pub scope: String,
    pub iat: i64,
    pub exp: i64,
    pub jti: String,
    /// Never issued by this server; honoured when present.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<i64>,
    /// The refresh-token family this token was issued from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<FamilyId>,
    /// The key the token is bound to (RFC 7800 `cnf`, RFC 9449 §6): presented, it must come
    /// with a DPoP proof from that key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cnf: Option<Confirmation>,
}

/// `cnf` of a DPoP-bound token: the JWK SHA-256 thumbprint of its key (RFC 9449 §6.1).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Confirmation {
    pub jkt: String,
}

/// `aud` (RFC 7519 §4.1.3): one recipient as a string, several as an array.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(untagged)]
pub enum Audience {
    One(String),
    Many(Vec<String>),
}

impl Audience {
    /// The resources a token is for (RFC 8707), or `default` (the issuer) when none.
    pub fn of(resources: &[String], default: &str) -> Audience {
        match resources {
            [] => Audience::One(default.to_owned()),
            [one] => Audience::One(one.clone()),
            many => Audience::Many(many.to_vec()),
        }
    }

    pub fn contains(&self, recipient: &str) -> bool {
        match self {
            Audience::One(one) => one == recipient,
            Audience::Many(many) => many.iter().any(|a| a == recipient),
        }
    }
}

/// What an access token is issued for.
pub struct Grant<'a> {
    pub subject: &'a str,
    pub client_id: &'a ClientId,
    pub scope: &'a str,
    pub family_id: Option<&'a FamilyId>,
    /// The thumbprint of the DPoP key to bind the token to; `None`: a bearer token.
    pub dpop_jkt: Option<&'a str>,
}

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("the access token is malformed")]
    Malformed,
    #[error("the access token was not signed by a key of this server")]
    UnknownKey,
    #[error("the access token is invalid: {0}")]
    Invalid(String),
}

/// Signs an access token valid for `ttl` from `now`, in whole seconds as JWT times are.
pub fn issue(
    keys: &KeySet,
    issuer: &str,
    audience: Audience,
    grant: &Grant<'_>,
    now: UnixMs,
    ttl: Duration,
) -> Result<String, jsonwebtoken::errors::Error> {
    let key = keys.signing();
    let mut header = Header::new(key.alg.jwt());
    header.typ = Some(TYP.to_owned());
    header.kid = Some(key.kid.clone());
    let claims = AccessClaims {
        iss: issuer.to_owned(),
        sub: grant.subject.to_owned(),
        aud: audience,
        client_id: grant.client_id.clone(),
        scope: grant.scope.to_owned(),
        iat: now.unix_seconds(),
        exp: now
            .unix_seconds()
            .saturating_add(i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX)),
        jti: random_id(),
        nbf: None,
        sid: grant.family_id.cloned(),
        cnf: grant.dpop_jkt.map(|jkt| Confirmation {
            jkt: jkt.to_owned(),
        }),
    };
    encode(&header, &claims, &key.encoding)
}

/// Verifies signature, `typ`, `iss`, `aud`, and `exp` and `nbf` against `now` (no leeway:
/// the clock is our own). `audience`: a recipient `aud` must name; `None` for any (an
/// introspection answer carries `aud`, for the resource server to check).
pub fn verify(
    keys: &KeySet,
    issuer: &str,
    audience: Option<&str>,
    token: &str,
    now: UnixMs,
) -> Result<AccessClaims, TokenError> {
    let now_secs = now.unix_seconds();
    let header = decode_header(token).map_err(|_| TokenError::Malformed)?;
    if header.typ.as_deref() != Some(TYP) {
        return Err(TokenError::Invalid("typ is not at+jwt".into()));
    }
    let key = header
        .kid
        .as_deref()
        .and_then(|kid| keys.find(kid))
        .ok_or(TokenError::UnknownKey)?;
    // The algorithm comes from our key, never from the token.
    let mut validation = Validation::new(key.alg.jwt());
    validation.set_required_spec_claims(&["exp", "iat", "iss", "aud", "sub"]);
    // Checked below, in jsonwebtoken's order, and against our clock rather than the system's.
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.validate_aud = false;
    let claims = decode::<AccessClaims>(token, &key.decoding, &validation)
        .map(|data| data.claims)
        .map_err(|e| TokenError::Invalid(e.to_string()))?;
    let refused =
        |kind: ErrorKind| TokenError::Invalid(jsonwebtoken::errors::Error::from(kind).to_string());
    if claims.exp < now_secs {
        return Err(refused(ErrorKind::ExpiredSignature));
    }
    if claims.nbf.is_some_and(|nbf| nbf > now_secs) {
        return Err(refused(ErrorKind::ImmatureSignature));
    }
    if claims.iss != issuer {
        return Err(refused(ErrorKind::InvalidIssuer));
    }
    if audience.is_some_and(|a| !claims.aud.contains(a)) {
        return Err(refused(ErrorKind::InvalidAudience));
    }
    // Issued in the future: not ours (our clocks agree to within a minute).
    if claims.iat > now_secs + 60 {
        return Err(TokenError::Invalid(
            "the access token is not valid yet".into(),
        ));
    }
    Ok(claims)
}
