//! Token revocation (RFC 7009) and introspection (RFC 7662).

use serde_json::{json, Value};

use super::TokenEndpoint;
use crate::domain::access_token::Audience;
use crate::domain::authcode::CODE_PREFIX;
use crate::domain::client::Client;
use crate::domain::family::{self, FamilyState};
use crate::domain::refresh_token::{self, Presented, PREFIX};
use crate::domain::request::RequestMeta;
use crate::domain::resource::Targets;
use crate::domain::revocation::{self, Families, Revocation, REVOKED_BY_CLIENT};
use crate::grant::{authenticate, credentials, BearerError, OAuthError, Params};
use crate::store::models::{RefreshToken, RevokedAccessToken, TokenFamily, User};
use crate::value::{ClientId, UnixMs};

/// What a presented token turned out to be.
enum Found {
    /// A refresh token and its family; `token` is `None` when retention pruned its row (a
    /// rotated token, so never active), which still names its family.
    Refresh {
        token: Option<RefreshToken>,
        family: TokenFamily,
    },
    Access(crate::domain::access_token::AccessClaims, Option<User>),
    Nothing,
}

impl TokenEndpoint {
    fn authenticated(
        &self,
        authorization: Option<&str>,
        params: &Params,
    ) -> Result<Client, OAuthError> {
        let creds = credentials(authorization, params)?;
        authenticate(&mut *self.core.conn()?, &creds)
    }

    /// Finds a refresh token or a valid access token.
    fn find(&self, token: &str) -> Result<Found, OAuthError> {
        if token.starts_with(PREFIX) {
            let conn = &mut *self.core.conn()?;
            let (token, family_id) = match refresh_token::resolve(conn, &self.core.master, token)? {
                Presented::Stored(t) => {
                    let family_id = t.family_id.clone();
                    (Some(t), family_id)
                }
                Presented::Pruned(parsed) => (None, parsed.family_id),
                Presented::Unknown => return Ok(Found::Nothing),
            };
            return Ok(match TokenFamily::find(conn, &family_id)? {
                Some(family) => Found::Refresh { token, family },
                None => Found::Nothing,
            });
        }
        match self.check_access_token(token, None) {
            Ok((claims, user)) => Ok(Found::Access(claims, user)),
            Err(
                BearerError::InvalidToken(_)
                | BearerError::InvalidDpopProof(_)
                | BearerError::UseDpopNonce(_),
            ) => Ok(Found::Nothing),
            Err(BearerError::Unavailable(e)) => Err(e),
        }
    }

    /// `POST /revoke`. A refresh token revokes its whole family; an access token is revoked
    /// by its `jti`. Unknown tokens, and tokens of other clients, are answered the same way
    /// (RFC 7009 §2.2), without revoking anything.
    pub fn revoke(
        &self,
        authorization: Option<&str>,
        params: &Params,
        meta: &RequestMeta,
    ) -> Result<(), OAuthError> {
        let client = self.authenticated(authorization, params)?;
        let token = params.required("token")?;
        if token.starts_with(CODE_PREFIX) {
            return Err(OAuthError::UnsupportedTokenType(
                "authorization codes cannot be revoked; they expire within a minute".into(),
            ));
        }
        let now = self.core.clock.now();
        match self.find(token)? {
            Found::Refresh { family, .. } if family.client_id == client.id => {
                let why = Revocation {
                    client_ip: meta.client_ip.as_deref(),
                    request: meta.request.as_ref(),
                    detail: Some(REVOKED_BY_CLIENT),
                    always_audit: true,
                    ..Revocation::new(REVOKED_BY_CLIENT, Some(client.id.as_str()))
                };
                revocation::revoke(
                    &mut *self.core.conn()?,
                    Families::One(&family.id),
                    &why,
                    now,
                )?;
                tracing::info!(client_id = %client.id, family_id = %family.id, "family revoked by its client");
            }
            Found::Access(claims, _) if claims.client_id == client.id => {
                RevokedAccessToken {
                    jti: claims.jti.clone(),
                    client_id: client.id.clone(),
                    expires_at: UnixMs::from_unix_seconds(claims.exp),
                    revoked_at: now,
                }
                .insert(&mut *self.core.conn()?)?;
                tracing::info!(client_id = %client.id, jti = %claims.jti, "access token revoked by its client");
            }
            _ => {}
        }
        Ok(())
    }

    /// `POST /introspect`. A client sees its own tokens; others only with `allow_introspection`
    /// (resource servers). Anything else is `{"active": false}` and nothing more.
    pub fn introspect(
        &self,
        authorization: Option<&str>,
        params: &Params,
    ) -> Result<Value, OAuthError> {
        let client = self.authenticated(authorization, params)?;
        // RFC 7662 §2.1: the caller must authenticate; a public client cannot. Refused as a
        // failed authentication is, so that the answer does not confirm the id is a client's.
        if client.is_public() {
            return Err(OAuthError::InvalidClient(
                crate::grant::client_auth::FAILED.into(),
            ));
        }
        let token = params.required("token")?;
        let inactive = json!({"active": false});
        // Access tokens: its own, or any if it is a resource server with the right.
        // Refresh tokens: only its own (a resource server never needs another's).
        let may_see_access = |owner: &ClientId| *owner == client.id || client.allow_introspection;
        let now = self.core.clock.now();
        let answer = match self.find(token)? {
            Found::Access(c, user) if may_see_access(&c.client_id) => {
                let mut answer = json!({
                "active": true,
                // A bound token (RFC 9449 §6.2): its `cnf`, so that a resource server can check
                // the proof that comes with it.
                "token_type": if c.cnf.is_some() { "DPoP" } else { "Bearer" },
                "scope": c.scope,
                "client_id": c.client_id,
                "username": user.map(|u| u.username),
                "sub": c.sub,
                "aud": c.aud,
                "iss": c.iss,
                "exp": c.exp,
                "iat": c.iat,
                "jti": c.jti,
                });
                if let Some(cnf) = c.cnf {
                    answer["cnf"] = json!(cnf);
                }
                answer
            }
            // A pruned token was rotated: inactive, whatever its family's state.
            Found::Refresh {
                token: Some(token),
                family,
            } if family.client_id == client.id
                && family::state(&family, family::token_live(&token, now), now)
                    == FamilyState::Active =>
            {
                let user = User::find(&mut *self.core.conn()?, &family.user_id)?;
                // The client was authenticated above: a disabled one never gets here.
                match user.filter(|u| u.disabled_at.is_none()) {
                    Some(u) => json!({
                        "active": true,
                        "scope": family.scope,
                        "client_id": family.client_id,
                        "username": u.username,
                        "sub": u.id,
                        "aud": Audience::of(
                            Targets::stored(family.resources.as_deref()).uris(),
                            &self.core.audience,
                        ),
                        "iss": self.core.issuer,
                        "exp": token.expires_at.unix_seconds(),
                        "iat": token.issued_at.unix_seconds(),
                        "jti": token.id,
                    }),
                    None => inactive,
                }
            }
            _ => inactive,
        };
        Ok(without_nulls(answer))
    }
}

/// RFC 7662 members are optional: absent rather than null.
fn without_nulls(mut v: Value) -> Value {
    if let Value::Object(map) = &mut v {
        map.retain(|_, v| !v.is_null());
    }
    v
}
