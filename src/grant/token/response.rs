//! The token response (RFC 6749 §5.1): the access token signed for the grant, and the
//! refresh token when the client may have one.

use serde::Serialize;

use super::TokenEndpoint;
use crate::domain::access_token::{self, Audience, Grant};
use crate::domain::client::{Client, GrantType};
use crate::domain::family::Issued;
use crate::domain::id_token;
use crate::domain::keys::{KeyAlgorithm, KeySet};
use crate::domain::resource::Targets;
use crate::domain::scope::Scope;
use crate::domain::scope::OPENID;
use crate::grant::OAuthError;
use crate::value::{Amr, ClientId, UnixMs};

/// A successful token response (RFC 6749 §5.1).
#[derive(Serialize)]
pub struct TokenResponse {
    pub access_token: String,
    pub token_type: &'static str,
    pub expires_in: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    pub scope: String,
    /// OpenID Connect: who signed in, for a grant whose scope has `openid`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id_token: Option<String>,
}

impl std::fmt::Debug for TokenResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenResponse")
            .field("expires_in", &self.expires_in)
            .field("scope", &self.scope)
            .finish_non_exhaustive()
    }
}

/// The client a token response is for.
pub(super) struct Recipient<'a> {
    pub client_id: &'a ClientId,
    /// It has the refresh_token grant.
    pub refresh_allowed: bool,
    /// The algorithm of its ID tokens; `None`: the access tokens' key.
    pub id_token_alg: Option<KeyAlgorithm>,
    /// The thumbprint of the DPoP key the request proved it holds: the access token is bound
    /// to it (`token_type: DPoP`).
    pub dpop_jkt: Option<&'a str>,
}

impl<'a> Recipient<'a> {
    pub fn of(client: &'a Client) -> Self {
        Self {
            client_id: &client.id,
            refresh_allowed: client.allows(GrantType::RefreshToken),
            id_token_alg: client.openid.id_token_alg,
            dpop_jkt: None,
        }
    }

    /// The same recipient, holding the DPoP key `jkt` if the request proved one.
    pub fn holding(self, jkt: Option<&'a str>) -> Self {
        Self {
            dpop_jkt: jkt,
            ..self
        }
    }
}

/// How a refresh may be answered.
impl TokenEndpoint {
    /// The response for a grant that issued a refresh token (or handed one out again).
    pub(super) fn respond_issued(
        &self,
        to: &Recipient<'_>,
        issued: Issued,
    ) -> Result<TokenResponse, OAuthError> {
        let user_id = issued.family.user_id.clone();
        let scope = issued.scope.clone();
        let audience = issued.audience.clone();
        self.respond(
            to,
            user_id.as_str(),
            (&scope, &audience),
            Some(issued),
            self.core.clock.now(),
        )
    }

    /// The token response. The access token is for `scope` at the resources `audience` (none:
    /// this server's audience).
    pub(super) fn respond(
        &self,
        to: &Recipient<'_>,
        subject: &str,
        (scope, audience): (&Scope, &Targets),
        issued: Option<Issued>,
        now: UnixMs,
    ) -> Result<TokenResponse, OAuthError> {
        let (client_id, refresh_allowed) = (to.client_id, to.refresh_allowed);
        let scope_text = scope.to_string();
        let grant = Grant {
            subject,
            client_id,
            scope: &scope_text,
            family_id: issued.as_ref().map(|i| &i.family.id),
            dpop_jkt: to.dpop_jkt,
        };
        // A client without the refresh_token grant gets no refresh token; the family still
        // backs the access token (its `sid`), so revoking the family revokes the token.
        let refresh_token = issued
            .as_ref()
            .filter(|_| refresh_allowed)
            .map(|i| i.refresh_token.expose().to_owned());
        let access_token = access_token::issue(
            &self.core.keys.get(),
            &self.core.issuer,
            Audience::of(audience.uris(), &self.core.audience),
            &grant,
            now,
            self.access_ttl,
        )
        .map_err(|e| {
            tracing::error!(error = %e, "signing an access token failed");
            OAuthError::ServerError
        })?;
        let id_token = match &issued {
            Some(i) => self.id_token(to, i, &access_token, now)?,
            None => None,
        };
        Ok(TokenResponse {
            access_token,
            token_type: if to.dpop_jkt.is_some() {
                "DPoP"
            } else {
                "Bearer"
            },
            expires_in: self.access_ttl.as_secs(),
            refresh_token,
            scope: scope_text,
            id_token,
        })
    }

    /// The ID token (OpenID Connect Core §3.1.3.3) of a family granted `openid`: on the code
    /// exchange with the request's nonce, on every refresh with the same `sub` and `auth_time`
    /// and no nonce (§12.2). It lives as long as the access token beside it.
    fn id_token(
        &self,
        to: &Recipient<'_>,
        issued: &Issued,
        access_token: &str,
        now: UnixMs,
    ) -> Result<Option<String>, OAuthError> {
        let family = &issued.family;
        if !Scope::stored(&family.scope).contains(OPENID) {
            return Ok(None);
        }
        let subject = id_token::Subject {
            user_id: family.user_id.as_str(),
            client_id: to.client_id.as_str(),
            auth_time: family.signed_in_at(),
            nonce: issued.nonce.as_deref(),
            sid: family.sid.as_deref(),
            amr: &Amr::parse(family.amr.as_deref()),
            access_token,
        };
        let keys = self.id_token_keys(to.id_token_alg);
        let key = match to.id_token_alg {
            None => keys.signing(),
            Some(alg) => keys.signing_with(alg).ok_or_else(|| {
                tracing::error!(
                    client_id = %to.client_id,
                    alg = alg.as_str(),
                    "no signing key for the client's ID token algorithm; run `tessera-admin key rotate --algorithm {}`",
                    alg.as_str()
                );
                OAuthError::ServerError
            })?,
        };
        id_token::issue(key, &self.core.issuer, &subject, now, self.access_ttl)
            .map(Some)
            .map_err(|e| {
                tracing::error!(error = %e, "signing an ID token failed");
                OAuthError::ServerError
            })
    }

    /// The keys to sign an ID token with `alg`: those in memory, reloaded first when they have
    /// no key of `alg`, which `client register --id-token-alg` may have just created. Only a
    /// token request of such a client, with a code or refresh token of its own, reloads: no
    /// stranger can make the server read its keys.
    fn id_token_keys(&self, alg: Option<KeyAlgorithm>) -> std::sync::Arc<KeySet> {
        let keys = self.core.keys.get();
        match alg {
            Some(alg) if keys.signing_with(alg).is_none() => {
                if let Err(e) = self.core.reload_keys() {
                    tracing::error!(error = %e, "reloading signing keys failed");
                }
                self.core.keys.get()
            }
            _ => keys,
        }
    }
}
