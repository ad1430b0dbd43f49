//! The token response (RFC 6749 §5.1): the access token signed for the grant, and the
//! refresh token when the client may have one.

use serde::Serialize;

use super::TokenEndpoint;
use crate::domain::access_token::{self, Audience, Grant};
use crate::domain::family::Issued;
use crate::domain::id_token;
use crate::domain::resource::Targets;
use crate::domain::scope::Scope;
use crate::domain::scope::OPENID;
use crate::grant::OAuthError;
use crate::value::{ClientId, UnixMs};

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

/// How a refresh may be answered.
impl TokenEndpoint {
    /// The response for a grant that issued a refresh token (or handed one out again).
    pub(super) fn respond_issued(
        &self,
        client_id: &ClientId,
        refresh_allowed: bool,
        issued: Issued,
    ) -> Result<TokenResponse, OAuthError> {
        let user_id = issued.family.user_id.clone();
        let scope = issued.scope.clone();
        let audience = issued.audience.clone();
        self.respond(
            client_id,
            refresh_allowed,
            user_id.as_str(),
            (&scope, &audience),
            Some(issued),
            self.core.clock.now(),
        )
    }

    /// The token response. `refresh_allowed`: the client has the refresh_token grant. The
    /// access token is for `scope` at the resources `audience` (none: this server's audience).
    pub(super) fn respond(
        &self,
        client_id: &ClientId,
        refresh_allowed: bool,
        subject: &str,
        (scope, audience): (&Scope, &Targets),
        issued: Option<Issued>,
        now: UnixMs,
    ) -> Result<TokenResponse, OAuthError> {
        let scope_text = scope.to_string();
        let grant = Grant {
            subject,
            client_id,
            scope: &scope_text,
            family_id: issued.as_ref().map(|i| &i.family.id),
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
            Some(i) => self.id_token(client_id, i, &access_token, now)?,
            None => None,
        };
        Ok(TokenResponse {
            access_token,
            token_type: "Bearer",
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
        client_id: &ClientId,
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
            client_id: client_id.as_str(),
            auth_time: family.signed_in_at(),
            nonce: issued.nonce.as_deref(),
            sid: family.sid.as_deref(),
            access_token,
        };
        let keys = self.core.keys.get();
        id_token::issue(
            keys.signing(),
            &self.core.issuer,
            &subject,
            now,
            self.access_ttl,
        )
        .map(Some)
        .map_err(|e| {
            tracing::error!(error = %e, "signing an ID token failed");
            OAuthError::ServerError
        })
    }
}
