//! `POST /token`: every grant; the answer is built in [`super::response`].

use super::dpop::CheckedProof;
use super::response::{Recipient, TokenResponse};
use super::TokenEndpoint;
use crate::domain::authcode::{self, CodeExchange, ExchangeError};
use crate::domain::client::Client;
use crate::domain::client::GrantType;
use crate::domain::crypto::sha256_hex;
use crate::domain::dpop::ProofError;
use crate::domain::family::{self, Issued, NewGrant, OneStatement, RefreshError, RequestMeta};
use crate::domain::resource::{self, Requested};
use crate::domain::scope::{Scope, OPENID};
use crate::domain::second_factor::SecondFactorPolicy;
use crate::grant::client_auth::{self, authenticate, credentials, Credentials};
use crate::grant::{pkce, OAuthError, Params};
use crate::metrics::RefreshOutcome;
use crate::store::models::User;
use crate::store::rotation::ProofRecord;
use crate::store::AnyConnection;
use crate::value::Amr;

/// A token request as it arrived: client authentication, DPoP proof, form, who sent it.
#[derive(Clone, Copy)]
pub struct TokenRequest<'a> {
    pub authorization: Option<&'a str>,
    /// The `DPoP` header (RFC 9449 §4.1).
    pub dpop: Option<&'a str>,
    pub params: &'a Params,
    pub meta: &'a RequestMeta,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefreshPath {
    /// The server's way: a plain refresh in one statement on PostgreSQL, the full path for
    /// anything else ([`family::rotate_for_client`]).
    OneStatementFirst,
    /// The full path alone: the reference the one statement is tested against.
    FullOnly,
}

impl TokenEndpoint {
    /// `POST /token`, with the request's `DPoP` header if it has one.
    pub fn token(
        &self,
        authorization: Option<&str>,
        dpop: Option<&str>,
        params: &Params,
        meta: &RequestMeta,
    ) -> Result<TokenResponse, OAuthError> {
        let request = TokenRequest {
            authorization,
            dpop,
            params,
            meta,
        };
        self.token_by(RefreshPath::OneStatementFirst, &request)
    }

    /// `POST /token`, with a refresh taking `path`.
    pub fn token_by(
        &self,
        path: RefreshPath,
        request: &TokenRequest<'_>,
    ) -> Result<TokenResponse, OAuthError> {
        let TokenRequest {
            authorization,
            dpop,
            params,
            meta,
        } = *request;
        let grant_type = params.required("grant_type")?;
        let creds = credentials(authorization, params)?;
        let response = self.grant(path, grant_type, &creds, dpop, params, meta);
        if response.is_ok() {
            // Only a supported grant succeeds, so it parses.
            if let Ok(grant) = grant_type.parse::<GrantType>() {
                self.core.metrics.token_issued(grant);
            }
            self.note_client_use(&creds.client_id);
        }
        response
    }

    fn grant(
        &self,
        path: RefreshPath,
        grant_type: &str,
        creds: &Credentials,
        dpop: Option<&str>,
        params: &Params,
        meta: &RequestMeta,
    ) -> Result<TokenResponse, OAuthError> {
        // One pool checkout serves the whole request, except across a password hash: that
        // would hold a connection for the hash's duration.
        let mut conn = self.core.conn()?;
        // A proof is checked before anything else, and spent with the one statement's
        // rotation or before the full path starts: a bad one changes nothing.
        let proof = self.token_proof(dpop)?;
        if path == RefreshPath::OneStatementFirst {
            let plain = (grant_type, creds, proof.as_ref());
            if let Some(response) = self.plain_refresh(&mut conn, plain, params, meta)? {
                return Ok(response);
            }
        }
        if let Some(proof) = &proof {
            self.spend_proof(&mut conn, proof)?;
        }
        let jkt = proof.as_ref().map(|p| p.jkt.as_str());
        let client = authenticate(&mut conn, creds)?;
        if client.app.require_dpop && jkt.is_none() {
            return Err(OAuthError::InvalidDpopProof(
                "this client's token requests must carry a DPoP proof".into(),
            ));
        }
        let grant = grant_type.parse::<GrantType>();
        // RFC 8707: checked before the grant, so that a bad `resource` spends nothing.
        let resources = match grant {
            Ok(g) if client.allows(g) => resource::lookup(&mut conn, params.resources())?,
            _ => None,
        };
        let resources = resources.as_ref();
        match grant {
            Ok(grant) if !client.allows(grant) => Err(OAuthError::UnauthorizedClient(format!(
                "this client may not use the {grant} grant"
            ))),
            Ok(GrantType::Password) => {
                drop(conn);
                self.password(&client, jkt, params, resources, meta)
            }
            Ok(GrantType::AuthorizationCode) => {
                self.authorization_code(&mut conn, &client, jkt, params, resources, meta)
            }
            Ok(GrantType::ClientCredentials) => {
                drop(conn);
                self.client_credentials(&client, jkt, params, resources)
            }
            Ok(GrantType::RefreshToken) => {
                self.refresh(&mut conn, &client, jkt, params, resources, meta)
            }
            _ => Err(OAuthError::UnsupportedGrantType(format!(
                "grant_type `{}` is not supported",
                grant_type.chars().take(64).collect::<String>()
            ))),
        }
    }

    fn password(
        &self,
        client: &Client,
        jkt: Option<&str>,
        params: &Params,
        resources: Option<&Requested>,
        meta: &RequestMeta,
    ) -> Result<TokenResponse, OAuthError> {
        let username = params.required("username")?;
        let password = params.required("password")?;
        // A password alone can never be enough here: no need to check it.
        if client.app.require_second_factor || self.second_factor == SecondFactorPolicy::Required {
            return Err(OAuthError::InvalidGrant(
                "this app requires a second factor, which the password grant cannot carry: use the browser sign-in"
                    .into(),
            ));
        }
        let scope = requested_scope(client, params.get("scope"), resources)?;
        let targets = resources.map(|r| r.targets.clone()).unwrap_or_default();
        let now = self.core.clock.now();
        // The family starts in the same transaction that records the successful sign-in. Every
        // grant that acts for a user starts one, refresh token or not: the access token's
        // `sid` is what lets a revocation (a password change, a disabled user) reach it.
        let start_family = |c: &mut AnyConnection, user: &User| {
            // The password grant has no second step to ask for.
            if crate::domain::second_factor::factors(c, &user.id)?.second_step_due() {
                return Err(OAuthError::InvalidGrant(
                    "this account signs in with a second factor: use the browser sign-in".into(),
                ));
            }
            let grant = NewGrant {
                client_id: &client.id,
                user,
                scope: &scope,
                resources: &targets,
                auth_method: GrantType::Password.as_str(),
                same_password: true,
                auth_time: Some(now),
                sid: None,
                dpop_jkt: jkt,
                amr: &Amr::password(),
            };
            family::start_in(c, &self.core.master, &grant, meta, self.life, now)
                .map_err(refresh_error)
        };
        let (user, issued) = self
            .passwords
            .sign_in_then(username, password, meta, client.id.as_str(), start_family)
            .map_err(|e| {
                tracing::info!(client_id = %client.id, reason = %e, "password grant refused");
                e.into_oauth()
            })?;
        tracing::info!(client_id = %client.id, user_id = %user.id, family_id = %issued.family.id, "password grant");
        // The family's scope: within the client's as it stood when the family began.
        let scope = issued.scope.clone();
        self.respond(
            &Recipient::of(client).holding(jkt),
            user.id.as_str(),
            (&scope, &targets),
            Some(issued),
            now,
        )
    }

    /// A refresh without a scope parameter, tried in one statement that also authenticates the
    /// client and spends the DPoP proof ([`family::rotate_for_client`]). `None`: take the
    /// full path.
    fn plain_refresh(
        &self,
        conn: &mut AnyConnection,
        (grant_type, creds, proof): (&str, &Credentials, Option<&CheckedProof>),
        params: &Params,
        meta: &RequestMeta,
    ) -> Result<Option<TokenResponse>, OAuthError> {
        let (Some(presented), None, []) = (
            params.get("refresh_token"),
            params.get("scope"),
            params.resources(),
        ) else {
            return Ok(None);
        };
        if grant_type != GrantType::RefreshToken.as_str()
            || !client_auth::plausible(creds.client_id.as_str())
        {
            return Ok(None);
        }
        let secret_hash = creds.secret.as_deref().map(|s| sha256_hex(s.as_bytes()));
        let client = family::ClientCheck {
            id: &creds.client_id,
            secret_hash: secret_hash.as_deref(),
            proof: proof.map(|p| ProofRecord {
                jkt: &p.jkt,
                seen: &p.seen,
            }),
        };
        let rotated = family::rotate_for_client(conn, &self.rotator(), presented, &client, meta);
        let issued =
            match rotated.inspect_err(|_| self.core.metrics.refresh(RefreshOutcome::Error))? {
                OneStatement::Rotated(issued) => issued,
                OneStatement::Declined => return Ok(None),
                OneStatement::ProofReplayed => {
                    tracing::info!("DPoP proof replayed");
                    return Err(ProofError::Replayed.into());
                }
            };
        self.core.metrics.refresh(outcome(&Ok(&issued)));
        // Only an OpenID Connect family needs more of the client: its ID token algorithm.
        let id_token_alg = if Scope::stored(&issued.family.scope).contains(OPENID) {
            crate::domain::client::get(conn, client.id)?.and_then(|c| c.openid.id_token_alg)
        } else {
            None
        };
        let to = Recipient {
            client_id: client.id,
            refresh_allowed: true,
            id_token_alg,
            dpop_jkt: proof.map(|p| p.jkt.as_str()),
        };
        self.respond_issued(&to, *issued).map(Some)
    }

    fn refresh(
        &self,
        conn: &mut AnyConnection,
        client: &Client,
        jkt: Option<&str>,
        params: &Params,
        resources: Option<&Requested>,
        meta: &RequestMeta,
    ) -> Result<TokenResponse, OAuthError> {
        let presented = params.required("refresh_token")?;
        let requested = params
            .get("scope")
            .map(Scope::parse)
            .transpose()
            .map_err(|e| OAuthError::InvalidScope(e.to_string()))?;
        let request = family::RefreshRequest {
            presented,
            client_id: &client.id,
            scope: requested.as_ref(),
            resources,
            meta,
            dpop_jkt: jkt,
            public_client: client.is_public(),
        };
        let issued = family::rotate(conn, &self.rotator(), &request);
        self.core.metrics.refresh(outcome(&issued.as_ref()));
        let issued = issued.map_err(refresh_error)?;
        self.respond_issued(&Recipient::of(client).holding(jkt), issued)
    }

    /// RFC 6749 §4.4: a confidential client acting on its own behalf. An access token only.
    fn client_credentials(
        &self,
        client: &Client,
        jkt: Option<&str>,
        params: &Params,
        resources: Option<&Requested>,
    ) -> Result<TokenResponse, OAuthError> {
        if client.is_public() {
            return Err(OAuthError::UnauthorizedClient(
                "client_credentials is for confidential clients".into(),
            ));
        }
        let scope = requested_scope(client, params.get("scope"), resources)?;
        let targets = resources.map(|r| r.targets.clone()).unwrap_or_default();
        let to = Recipient {
            refresh_allowed: false,
            ..Recipient::of(client).holding(jkt)
        };
        self.respond(
            &to,
            client.id.as_str(),
            (&scope, &targets),
            None,
            self.core.clock.now(),
        )
    }

    fn authorization_code(
        &self,
        conn: &mut AnyConnection,
        client: &Client,
        jkt: Option<&str>,
        params: &Params,
        resources: Option<&Requested>,
        meta: &RequestMeta,
    ) -> Result<TokenResponse, OAuthError> {
        let code = params.required("code")?;
        let verifier = params.get("code_verifier");
        let request = CodeExchange {
            code,
            client_id: &client.id,
            redirect_uri: params.get("redirect_uri"),
            pkce_verifies: &|stored| pkce::verifies(stored, verifier),
            client_authenticated: !client.is_public(),
            resources,
            dpop_jkt: jkt,
        };
        let issued = authcode::exchange(
            conn,
            &self.core.master,
            &request,
            meta,
            self.life,
            &self.core.clock,
        )
        .map_err(|e| match e {
            ExchangeError::Database(d) => d.into(),
            ExchangeError::Target(t) => t.into(),
            ExchangeError::NoScopeForResource => OAuthError::InvalidScope(e.to_string()),
            other => OAuthError::InvalidGrant(other.to_string()),
        })?;
        self.respond_issued(&Recipient::of(client).holding(jkt), issued)
    }

    /// What rotation needs of this server.
    fn rotator(&self) -> family::Rotator<'_> {
        family::Rotator {
            master: &self.core.master,
            life: self.life,
            clock: &self.core.clock,
        }
    }
}

/// How a refresh ended, for the metrics.
fn outcome(result: &Result<&Issued, &RefreshError>) -> RefreshOutcome {
    match result {
        Ok(issued) if issued.retried => RefreshOutcome::GraceRetry,
        Ok(_) => RefreshOutcome::Rotated,
        Err(RefreshError::Reused { .. }) => RefreshOutcome::ReuseDetected,
        Err(RefreshError::Expired) => RefreshOutcome::Expired,
        Err(RefreshError::Revoked) => RefreshOutcome::Revoked,
        Err(RefreshError::Database(_)) => RefreshOutcome::Error,
        Err(_) => RefreshOutcome::Refused,
    }
}

fn refresh_error(e: RefreshError) -> OAuthError {
    match e {
        RefreshError::Scope | RefreshError::NoScopeForResource => {
            OAuthError::InvalidScope(e.to_string())
        }
        RefreshError::Target(t) => t.into(),
        RefreshError::Database(db) => db.into(),
        other => OAuthError::InvalidGrant(other.to_string()),
    }
}

/// The scope for a new grant: the request's if within the client's, else the client's own;
/// with resources (RFC 8707), only what they accept.
fn requested_scope(
    client: &Client,
    requested: Option<&str>,
    resources: Option<&Requested>,
) -> Result<Scope, OAuthError> {
    let scope = match requested {
        None => client.scope.clone(),
        Some(text) => {
            let scope = Scope::parse(text).map_err(|e| OAuthError::InvalidScope(e.to_string()))?;
            if !scope.is_subset_of(&client.scope) {
                return Err(OAuthError::InvalidScope(
                    "the requested scope is not allowed for this client".into(),
                ));
            }
            scope
        }
    };
    match resources {
        None => Ok(scope),
        Some(r) => r.scope_for(&scope).ok_or_else(|| {
            OAuthError::InvalidScope("the resource accepts none of the requested scopes".into())
        }),
    }
}
