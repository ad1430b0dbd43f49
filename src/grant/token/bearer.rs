//! Access tokens presented as bearer tokens (RFC 6750): the check every protected resource
//! makes, and `/userinfo`.

use serde_json::{Map, Value};

use super::TokenEndpoint;
use crate::domain::access_token::{self, AccessClaims, TokenError};
use crate::domain::keys::KeySet;
use crate::domain::profile;
use crate::domain::scope::Scope;
use crate::grant::OAuthError;
use crate::store::models::{Standing, TokenRefs, User};
use crate::value::{ClientId, UserId};

/// How an access token was presented (RFC 9449 §7).
#[derive(Debug, Clone, Copy)]
pub enum Scheme<'a> {
    /// `Authorization: Bearer`, or a form's `access_token`.
    Bearer,
    /// `Authorization: DPoP`, with the request's `DPoP` proof (if any) and its method.
    Dpop {
        proof: Option<&'a str>,
        method: &'a str,
    },
}

/// What `/userinfo` answers, and for which client (whose origins may read it).
#[derive(Debug)]
pub struct UserInfo {
    pub claims: Map<String, Value>,
    pub client_id: ClientId,
}

/// Fewest seconds between two reloads forced by an unknown `kid`.
const FORCED_RELOAD_INTERVAL: std::time::Duration = std::time::Duration::from_secs(1);

impl TokenEndpoint {
    /// `/userinfo` (OpenID Connect Core §5.3): `sub` and the claims the token's scope releases
    /// ([`profile::claims`]). The token must verify, and its family and user still be in good
    /// standing.
    pub fn userinfo(&self, token: &str, scheme: Scheme<'_>) -> Result<UserInfo, BearerError> {
        // Only a token meant for this server: one requested for a resource server (RFC 8707)
        // is for that server alone.
        let (claims, user) = self.check_access_token(token, Some(&self.core.audience))?;
        self.check_binding(token, claims.cnf.as_ref(), scheme)?;
        match user {
            Some(u) => Ok(UserInfo {
                claims: profile::claims(&u, &Scope::stored(&claims.scope)),
                client_id: claims.client_id,
            }),
            None => Err(BearerError::InvalidToken(
                "the access token was not issued to a user".into(),
            )),
        }
    }

    /// Verifies an access token and that it still stands: not revoked (by jti, or through its
    /// family), its user (if any) enabled, its client enabled. Returns the claims and the user.
    /// `audience`: a recipient the token's `aud` must name, or `None` for any.
    pub fn check_access_token(
        &self,
        token: &str,
        audience: Option<&str>,
    ) -> Result<(AccessClaims, Option<User>), BearerError> {
        let verify = |keys: &KeySet| {
            access_token::verify(
                keys,
                &self.core.issuer,
                audience,
                token,
                self.core.clock.now(),
            )
        };
        let claims = match verify(&self.core.keys.get()) {
            // Perhaps a key made since the last reload (by the CLI or another instance).
            Err(TokenError::UnknownKey) if self.core.keys.may_reload(FORCED_RELOAD_INTERVAL) => {
                self.core.reload_keys().map_err(|e| {
                    tracing::error!(error = %e, "reloading signing keys failed");
                    BearerError::Unavailable(OAuthError::ServerError)
                })?;
                verify(&self.core.keys.get())
            }
            other => other,
        }
        .map_err(|e| BearerError::InvalidToken(e.to_string()))?;
        let revoked = || BearerError::InvalidToken("the access token has been revoked".into());
        // client_credentials tokens have the client as subject; every other token a user.
        let for_user = !(claims.client_id == claims.sub.as_str() && claims.sid.is_none());
        let sub = UserId::from(claims.sub.as_str());
        let standing = Standing::read(
            &mut *self.core.conn()?,
            &TokenRefs {
                jti: &claims.jti,
                sid: claims.sid.as_ref(),
                client_id: &claims.client_id,
                user_id: for_user.then_some(&sub),
            },
        )?;
        if standing.revoked || !standing.family_active {
            return Err(revoked());
        }
        if !standing.client_active {
            return Err(BearerError::InvalidToken(
                "the access token's client is not active".into(),
            ));
        }
        if !for_user {
            return Ok((claims, None));
        }
        match standing.user {
            Some(u) if u.disabled_at.is_none() => Ok((claims, Some(u))),
            _ => Err(BearerError::InvalidToken(
                "the access token's user is not active".into(),
            )),
        }
    }
}

/// Why a bearer token was refused (RFC 6750 §3.1).
#[derive(Debug)]
pub enum BearerError {
    InvalidToken(String),
    /// RFC 9449 §7.1: a DPoP-bound token's proof is missing or fails a check.
    InvalidDpopProof(String),
    /// RFC 9449 §8: the proof must carry the server's current nonce.
    UseDpopNonce(String),
    /// The check could not be made; the caller answers 503, not 401.
    Unavailable(OAuthError),
}

impl From<r2d2::Error> for BearerError {
    fn from(e: r2d2::Error) -> Self {
        BearerError::Unavailable(e.into())
    }
}

impl From<diesel::result::Error> for BearerError {
    fn from(e: diesel::result::Error) -> Self {
        BearerError::Unavailable(e.into())
    }
}
