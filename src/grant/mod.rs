//! The token endpoint's grants and the bearer check, free of any web framework: the HTTP
//! layer parses, calls [`TokenService`] on a blocking thread, and renders the result.

pub mod authorize;
mod client_auth;
pub mod error;
pub mod introspection;
mod params;

pub use client_auth::{authenticate, credentials, parse_basic, Credentials};
pub use error::OAuthError;
pub use params::Params;

use std::sync::Arc;

use serde::Serialize;

use crate::domain::access_token::{self, AccessClaims, Grant, TokenError};
use crate::domain::audit::Event;
use crate::domain::authcode::{self, ExchangeError};
use crate::domain::client::GrantType;
use crate::domain::crypto::{sha256_hex, MasterKey};
use crate::domain::family::{self, Issued, Lifetimes, NewGrant, RefreshError, RequestMeta};
use crate::domain::keys::{KeyRing, KeySet};
use crate::domain::password::PasswordHasher;
use crate::domain::scope::Scope;
use crate::domain::throttle::Policy;
use crate::domain::user::Username;
use crate::domain::{ms, Clock};
use crate::settings::Settings;
use crate::store::models::{Client, Standing, StoredKey, TokenRefs, User};
use crate::store::{write_tx, AnyConnection, Pool};

/// A successful token response (RFC 6749 §5.1).
#[derive(Serialize)]
pub struct TokenResponse {
    pub access_token: String,
    pub token_type: &'static str,
    pub expires_in: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    pub scope: String,
}

impl std::fmt::Debug for TokenResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenResponse")
            .field("expires_in", &self.expires_in)
            .field("scope", &self.scope)
            .finish_non_exhaustive()
    }
}

/// `/userinfo` (OpenID Connect Core §5.3 members).
#[derive(Debug, Serialize)]
pub struct UserInfo {
    pub sub: String,
    pub preferred_username: String,
}

/// Everything the grants need. Cheap to clone; every method blocks (database, Argon2).
#[derive(Clone)]
pub struct TokenService {
    pub pool: Pool,
    pub master: Arc<MasterKey>,
    pub keys: Arc<KeyRing>,
    pub hasher: PasswordHasher,
    pub issuer: String,
    pub audience: String,
    pub access_ttl_secs: i64,
    pub life: Lifetimes,
    pub throttle: Policy,
    /// How long retired keys stay published and accepted.
    pub key_retention_ms: i64,
    pub sessions: crate::domain::browser::SessionLimits,
    pub code_ttl_ms: i64,
    pub clock: Clock,
}

/// Fewest seconds between two reloads forced by an unknown `kid`.
const FORCED_RELOAD_INTERVAL: std::time::Duration = std::time::Duration::from_secs(1);

impl TokenService {
    pub fn new(
        settings: &Settings,
        pool: Pool,
        master: Arc<MasterKey>,
        keys: Arc<KeyRing>,
        hasher: PasswordHasher,
        clock: Clock,
    ) -> Self {
        let t = &settings.tokens;
        Self {
            pool,
            master,
            keys,
            hasher,
            issuer: settings.issuer(),
            audience: settings.audience(),
            access_ttl_secs: i64::try_from(t.access_ttl.as_secs())
                .unwrap_or(i64::MAX)
                .max(1),
            life: Lifetimes {
                idle: ms(t.refresh_idle_ttl),
                absolute: ms(t.refresh_absolute_ttl),
                reuse_grace: ms(t.reuse_grace),
            },
            throttle: settings.throttle_policy(),
            key_retention_ms: settings.key_retention_ms(),
            sessions: settings.session_limits(),
            code_ttl_ms: ms(t.code_ttl),
            clock,
        }
    }

    /// `POST /token`.
    pub fn token(
        &self,
        authorization: Option<&str>,
        params: &Params,
        meta: &RequestMeta,
    ) -> Result<TokenResponse, OAuthError> {
        let grant_type = params.required("grant_type")?;
        let creds = credentials(authorization, params)?;
        // One pool checkout serves the whole request, except across a password hash: that
        // would hold a connection for the hash's duration.
        let mut conn = self.pool.get()?;
        if let Some(response) = self.plain_refresh(&mut conn, grant_type, &creds, params, meta)? {
            return Ok(response);
        }
        let client = authenticate(&mut conn, &creds)?;
        match grant_type.parse::<GrantType>() {
            Ok(grant) if !client.allows(grant) => Err(OAuthError::UnauthorizedClient(format!(
                "this client may not use the {grant} grant"
            ))),
            Ok(GrantType::Password) => {
                drop(conn);
                self.password(&client, params, meta)
            }
            Ok(GrantType::AuthorizationCode) => {
                self.authorization_code(&mut conn, &client, params, meta)
            }
            Ok(GrantType::ClientCredentials) => {
                drop(conn);
                self.client_credentials(&client, params)
            }
            Ok(GrantType::RefreshToken) => self.refresh(&mut conn, &client, params, meta),
            _ => Err(OAuthError::UnsupportedGrantType(format!(
                "grant_type `{}` is not supported",
                grant_type.chars().take(64).collect::<String>()
            ))),
        }
    }

    fn password(
        &self,
        client: &Client,
        params: &Params,
        meta: &RequestMeta,
    ) -> Result<TokenResponse, OAuthError> {
        let username = params.required("username")?;
        let password = params.required("password")?;
        let scope = requested_scope(client, params.get("scope"))?;
        let now = self.clock.now_ms();
        // The family starts in the same transaction that records the successful sign-in.
        let start_family = |c: &mut AnyConnection, user: &User| {
            if !client.allows(GrantType::RefreshToken) {
                return Ok(None);
            }
            let grant = NewGrant {
                client_id: &client.id,
                user,
                scope: &scope,
                auth_method: GrantType::Password.as_str(),
                same_password: true,
            };
            family::start_in(c, &self.master, &grant, meta, self.life, now)
                .map(Some)
                .map_err(refresh_error)
        };
        let (user, issued) = self
            .sign_in_then(
                username,
                password,
                meta.client_ip.as_deref(),
                &client.id,
                start_family,
            )
            .map_err(|e| {
                tracing::info!(client_id = %client.id, reason = %e, "password grant refused");
                e.into_oauth()
            })?;
        match issued {
            Some(issued) => {
                tracing::info!(client_id = %client.id, user_id = %user.id, family_id = %issued.family.id, "password grant");
                self.respond(&client.id, true, &user.id, &scope, Some(issued), now)
            }
            None => self.respond(&client.id, false, &user.id, &scope, None, now),
        }
    }

    /// A refresh without a scope parameter, tried in one statement that also authenticates the
    /// client ([`family::rotate_for_client`]). `None`: take the full path.
    fn plain_refresh(
        &self,
        conn: &mut AnyConnection,
        grant_type: &str,
        creds: &Credentials,
        params: &Params,
        meta: &RequestMeta,
    ) -> Result<Option<TokenResponse>, OAuthError> {
        let (Some(presented), None) = (params.get("refresh_token"), params.get("scope")) else {
            return Ok(None);
        };
        if grant_type != GrantType::RefreshToken.as_str()
            || !client_auth::plausible(&creds.client_id)
        {
            return Ok(None);
        }
        let secret_hash = creds.secret.as_deref().map(|s| sha256_hex(s.as_bytes()));
        let client = family::ClientCheck {
            id: &creds.client_id,
            secret_hash: secret_hash.as_deref(),
        };
        let Some(issued) = family::rotate_for_client(
            conn,
            &self.master,
            presented,
            &client,
            meta,
            self.life,
            &self.clock,
        )?
        else {
            return Ok(None);
        };
        self.respond_issued(client.id, true, issued).map(Some)
    }

    fn refresh(
        &self,
        conn: &mut AnyConnection,
        client: &Client,
        params: &Params,
        meta: &RequestMeta,
    ) -> Result<TokenResponse, OAuthError> {
        let presented = params.required("refresh_token")?;
        let requested = params
            .get("scope")
            .map(Scope::parse)
            .transpose()
            .map_err(|e| OAuthError::InvalidScope(e.to_string()))?;
        let issued = family::rotate(
            conn,
            &self.master,
            presented,
            &client.id,
            requested.as_ref(),
            meta,
            self.life,
            &self.clock,
        )
        .map_err(refresh_error)?;
        self.respond_issued(&client.id, client.allows(GrantType::RefreshToken), issued)
    }

    /// RFC 6749 §4.4: a confidential client acting on its own behalf. An access token only.
    fn client_credentials(
        &self,
        client: &Client,
        params: &Params,
    ) -> Result<TokenResponse, OAuthError> {
        if client.is_public() {
            return Err(OAuthError::UnauthorizedClient(
                "client_credentials is for confidential clients".into(),
            ));
        }
        let scope = requested_scope(client, params.get("scope"))?;
        self.respond(
            &client.id,
            false,
            &client.id,
            &scope,
            None,
            self.clock.now_ms(),
        )
    }

    fn authorization_code(
        &self,
        conn: &mut AnyConnection,
        client: &Client,
        params: &Params,
        meta: &RequestMeta,
    ) -> Result<TokenResponse, OAuthError> {
        let code = params.required("code")?;
        let issued = authcode::exchange(
            conn,
            &self.master,
            code,
            &client.id,
            params.get("redirect_uri"),
            params.get("code_verifier"),
            meta,
            self.life,
            &self.clock,
        )
        .map_err(|e| match e {
            ExchangeError::Database(d) => d.into(),
            other => OAuthError::InvalidGrant(other.to_string()),
        })?;
        self.respond_issued(&client.id, client.allows(GrantType::RefreshToken), issued)
    }

    /// The response for a grant that issued a refresh token (or handed one out again).
    fn respond_issued(
        &self,
        client_id: &str,
        refresh_allowed: bool,
        issued: Issued,
    ) -> Result<TokenResponse, OAuthError> {
        let user_id = issued.family.user_id.clone();
        let scope = issued.scope.clone();
        self.respond(
            client_id,
            refresh_allowed,
            &user_id,
            &scope,
            Some(issued),
            self.clock.now_ms(),
        )
    }

    /// The token response. `refresh_allowed`: the client has the refresh_token grant.
    fn respond(
        &self,
        client_id: &str,
        refresh_allowed: bool,
        subject: &str,
        scope: &Scope,
        issued: Option<Issued>,
        now_ms: i64,
    ) -> Result<TokenResponse, OAuthError> {
        let scope_text = scope.to_string();
        let grant = Grant {
            subject,
            client_id,
            scope: &scope_text,
            family_id: issued.as_ref().map(|i| i.family.id.as_str()),
        };
        // A client without the refresh_token grant gets no refresh token; the family still
        // backs the access token (its `sid`), so revoking the family revokes the token.
        let refresh_token = issued
            .as_ref()
            .filter(|_| refresh_allowed)
            .map(|i| i.refresh_token.expose().to_owned());
        let access_token = access_token::issue(
            &self.keys.get(),
            &self.issuer,
            &self.audience,
            &grant,
            now_ms / 1000,
            self.access_ttl_secs,
        )
        .map_err(|e| {
            tracing::error!(error = %e, "signing an access token failed");
            OAuthError::ServerError
        })?;
        Ok(TokenResponse {
            access_token,
            token_type: "Bearer",
            expires_in: self.access_ttl_secs,
            refresh_token,
            scope: scope_text,
        })
    }

    /// Checks a username and password, with throttling (per username and per IP) and a dummy
    /// hash for unknown users. Shared by the password grant and the login page.
    pub fn sign_in(
        &self,
        username: &str,
        password: &str,
        ip: Option<&str>,
        via: &str,
    ) -> Result<User, SignInError> {
        self.sign_in_then(username, password, ip, via, |_, _| Ok(()))
            .map(|(user, ())| user)
    }

    /// [`TokenService::sign_in`], then `then` in the same transaction as the records of the
    /// success (throttle counters, audit): one commit for all of it. No connection is held
    /// while the password is hashed.
    fn sign_in_then<T>(
        &self,
        username: &str,
        password: &str,
        ip: Option<&str>,
        via: &str,
        then: impl FnOnce(&mut AnyConnection, &User) -> Result<T, OAuthError>,
    ) -> Result<(User, T), SignInError> {
        let name = Username::parse(username).ok();
        let shown: String = username
            .chars()
            .filter(|c| !c.is_control())
            .take(64)
            .collect();
        let audit = |conn: &mut AnyConnection, kind: &str, subject: Option<&str>| {
            let detail = format!("username {shown:?}");
            Event {
                kind,
                actor: Some(via),
                subject,
                client_ip: ip,
                detail: Some(&detail),
            }
            .record(conn, self.clock.now_ms());
        };
        // The attempt is counted (and committed) before the hash, the user read with it.
        let name = name.as_ref().map(Username::as_str);
        let (allowed, user) = write_tx(&mut *self.pool.get()?, |c| -> Result<_, SignInError> {
            if !self.throttle.attempt(c, name, ip, self.clock.now_ms())? {
                audit(c, "login.throttled", None);
                return Ok((false, None));
            }
            let user = match name {
                Some(name) => User::find_by_username(c, name)?,
                None => None,
            };
            Ok((true, user))
        })?;
        if !allowed {
            return Err(SignInError::Throttled);
        }
        // Verified against a dummy hash when the user does not exist: same cost either way.
        let valid = self
            .hasher
            .verify(password, user.as_ref().map(|u| u.password_hash.as_str()))
            .map_err(|_| SignInError::Busy)?;
        let mut conn = self.pool.get()?;
        match user {
            Some(u) if valid && u.disabled_at.is_none() => {
                let done = write_tx(&mut conn, |c| -> Result<T, SignInError> {
                    self.throttle.succeeded(c, &u.username, ip)?;
                    audit(c, "login.success", Some(&u.id));
                    then(c, &u).map_err(SignInError::Then)
                })?;
                Ok((u, done))
            }
            other => {
                audit(
                    &mut conn,
                    "login.failure",
                    other.as_ref().map(|u| u.id.as_str()),
                );
                Err(SignInError::Invalid)
            }
        }
    }

    /// Every key still published and the current signer, from the database.
    pub fn reload_keys(&self) -> anyhow::Result<()> {
        let keys = KeySet::load(
            &mut *self.pool.get()?,
            &self.master,
            self.key_retention_ms,
            self.clock.now_ms(),
        )?;
        self.keys.replace(keys);
        Ok(())
    }

    /// The JWKS (RFC 7517 §5): read from the database on each call, so a key made by
    /// `tessera-admin key rotate` is published at once, and a retired key stays until every
    /// token it signed has expired (`Settings::key_retention_ms`).
    pub fn jwks(&self) -> Result<serde_json::Value, OAuthError> {
        let cutoff = self.clock.now_ms().saturating_sub(self.key_retention_ms);
        let jwks = StoredKey::published_jwks(&mut *self.pool.get()?, cutoff)?;
        let keys: Vec<serde_json::Value> = jwks
            .iter()
            .filter_map(|j| serde_json::from_str(j).ok())
            .collect();
        Ok(serde_json::json!({ "keys": keys }))
    }

    /// `GET /userinfo`: the token must verify, and its family and user still be in good standing.
    pub fn userinfo(&self, bearer: &str) -> Result<UserInfo, BearerError> {
        let (_, user) = self.check_access_token(bearer)?;
        match user {
            Some(u) => Ok(UserInfo {
                sub: u.id,
                preferred_username: u.username,
            }),
            None => Err(BearerError::InvalidToken(
                "the access token was not issued to a user".into(),
            )),
        }
    }

    /// Verifies an access token and that it still stands: not revoked (by jti, or through its
    /// family), its user (if any) enabled, its client enabled. Returns the claims and the user.
    pub fn check_access_token(
        &self,
        token: &str,
    ) -> Result<(AccessClaims, Option<User>), BearerError> {
        let verify = |keys: &KeySet| {
            access_token::verify(
                keys,
                &self.issuer,
                &self.audience,
                token,
                self.clock.now_secs(),
            )
        };
        let claims = match verify(&self.keys.get()) {
            // Perhaps a key made since the last reload (by the CLI or another instance).
            Err(TokenError::UnknownKey) if self.keys.may_reload(FORCED_RELOAD_INTERVAL) => {
                self.reload_keys().map_err(|e| {
                    tracing::error!(error = %e, "reloading signing keys failed");
                    BearerError::Unavailable(OAuthError::ServerError)
                })?;
                verify(&self.keys.get())
            }
            other => other,
        }
        .map_err(|e| BearerError::InvalidToken(e.to_string()))?;
        let revoked = || BearerError::InvalidToken("the access token has been revoked".into());
        // client_credentials tokens have the client as subject; every other token a user.
        let for_user = !(claims.sub == claims.client_id && claims.sid.is_none());
        let standing = Standing::read(
            &mut *self.pool.get()?,
            &TokenRefs {
                jti: &claims.jti,
                sid: claims.sid.as_deref(),
                client_id: &claims.client_id,
                user_id: for_user.then_some(claims.sub.as_str()),
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

/// Why [`TokenService::sign_in`] refused.
#[derive(Debug, thiserror::Error)]
pub enum SignInError {
    #[error("invalid username or password")]
    Invalid,
    #[error("too many failed sign-in attempts; try again later")]
    Throttled,
    #[error("too many sign-ins at once; retry shortly")]
    Busy,
    #[error("{0}")]
    Unavailable(OAuthError),
    /// What the caller asked to do after a successful sign-in failed.
    #[error("{0}")]
    Then(OAuthError),
}

impl SignInError {
    pub fn into_oauth(self) -> OAuthError {
        match self {
            SignInError::Invalid | SignInError::Throttled => {
                OAuthError::InvalidGrant(self.to_string())
            }
            SignInError::Busy => OAuthError::TemporarilyUnavailable(self.to_string()),
            SignInError::Unavailable(e) | SignInError::Then(e) => e,
        }
    }
}

impl From<r2d2::Error> for SignInError {
    fn from(e: r2d2::Error) -> Self {
        SignInError::Unavailable(e.into())
    }
}

impl From<diesel::result::Error> for SignInError {
    fn from(e: diesel::result::Error) -> Self {
        SignInError::Unavailable(e.into())
    }
}

fn refresh_error(e: RefreshError) -> OAuthError {
    match e {
        RefreshError::Scope => OAuthError::InvalidScope(e.to_string()),
        RefreshError::Database(db) => db.into(),
        other => OAuthError::InvalidGrant(other.to_string()),
    }
}

/// Why a bearer token was refused (RFC 6750 §3.1).
#[derive(Debug)]
pub enum BearerError {
    InvalidToken(String),
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

/// The scope for a new grant: the request's if within the client's, else the client's own.
fn requested_scope(client: &Client, requested: Option<&str>) -> Result<Scope, OAuthError> {
    let allowed = client.scope();
    let Some(text) = requested else {
        return Ok(allowed);
    };
    let scope = Scope::parse(text).map_err(|e| OAuthError::InvalidScope(e.to_string()))?;
    if !scope.is_subset_of(&allowed) {
        return Err(OAuthError::InvalidScope(
            "the requested scope is not allowed for this client".into(),
        ));
    }
    Ok(scope)
}
