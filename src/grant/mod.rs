//! The protocol, free of any web framework: the HTTP layer parses, calls [`TokenService`] on a
//! blocking thread, and renders the result.
//!
//! - [`token`]: `POST /token`, every grant, and the token response;
//! - [`sign_in`]: username and password, throttled (the password grant and the login page);
//! - [`authorize`]: the authorization request (RFC 6749 §4.1.1);
//! - [`pkce`]: PKCE (RFC 7636) through oxide-auth;
//! - [`browser`]: the login and consent pages' flow: sessions, consent, codes;
//! - [`bearer`]: access tokens presented as bearer tokens, and `/userinfo`;
//! - [`introspection`]: revocation (RFC 7009) and introspection (RFC 7662);
//! - [`client_auth`]: who the client is (RFC 6749 §2.3);
//! - this module: the service itself, and what it publishes (JWKS, RFC 8414 metadata).

pub mod authorize;
pub mod bearer;
pub mod browser;
pub mod client_auth;
pub mod error;
pub mod introspection;
mod params;
pub mod pkce;
pub mod sign_in;
pub mod token;

pub use bearer::{BearerError, UserInfo};
pub use client_auth::{authenticate, credentials, parse_basic, Credentials};
pub use error::OAuthError;
pub use params::Params;
pub use sign_in::SignInError;
pub use token::{RefreshPath, TokenResponse};

use std::sync::Arc;

use anyhow::Context;

use crate::domain::browser::SessionLimits;
use crate::domain::crypto::MasterKey;
use crate::domain::family::Lifetimes;
use crate::domain::keys::{KeyRing, KeySet};
use crate::domain::password::PasswordHasher;
use crate::domain::retention;
use crate::domain::scope::Scope;
use crate::domain::throttle::Policy;
use crate::domain::{ms, Clock};
use crate::metrics::Metrics;
use crate::settings::Settings;
use crate::store::models::{ClientRow, StoredKey};
use crate::store::{Pool, PooledConn};

/// Everything the protocol needs. Cheap to clone; every method blocks (database, Argon2).
#[derive(Clone)]
pub struct TokenService {
    pool: Pool,
    master: Arc<MasterKey>,
    keys: Arc<KeyRing>,
    hasher: PasswordHasher,
    issuer: String,
    audience: String,
    access_ttl_secs: i64,
    life: Lifetimes,
    throttle: Policy,
    /// How long retired keys stay published and accepted.
    key_retention_ms: i64,
    sessions: SessionLimits,
    code_ttl_ms: i64,
    /// `scopes_supported` in the metadata.
    public_scopes: Scope,
    retention: retention::Policy,
    metrics: Metrics,
    /// Clients whose use was recorded, and when (see `note_client_use`).
    clients_used: Arc<std::sync::Mutex<std::collections::HashMap<String, i64>>>,
    clock: Clock,
}

impl TokenService {
    pub fn new(
        settings: &Settings,
        pool: Pool,
        master: Arc<MasterKey>,
        keys: Arc<KeyRing>,
        mut hasher: PasswordHasher,
        metrics: Metrics,
        clock: Clock,
    ) -> Self {
        let t = &settings.tokens;
        metrics.watch_hasher(&mut hasher);
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
            life: settings.lifetimes(),
            throttle: settings.throttle_policy(),
            key_retention_ms: settings.key_retention_ms(),
            sessions: settings.session_limits(),
            code_ttl_ms: ms(t.code_ttl),
            public_scopes: settings.public_scopes(),
            retention: settings.retention_policy(),
            metrics,
            clients_used: Arc::default(),
            clock,
        }
    }

    /// Opens what the service needs from `settings`: the master key (created on first start),
    /// the pool, the signing keys (one created if none is in force), the password hasher and
    /// the metrics. Blocks: run it off the async executor.
    pub fn open(settings: &Settings, clock: Clock) -> anyhow::Result<Self> {
        crate::domain::jwt_crypto::install_crypto_provider();
        let master = Arc::new(settings.master_key(true)?);
        let db = &settings.database;
        let (pool, _) =
            crate::store::connect_and_migrate(db.url.expose(), db.pool_size, db.connect_timeout)?;
        let keys = {
            let mut conn = pool.get().context("database unreachable")?;
            let retention = settings.key_retention_ms();
            KeySet::load_or_create(
                &mut conn,
                &master,
                settings.keys.algorithm,
                retention,
                &clock,
            )?
        };
        let hasher = PasswordHasher::new(&settings.hash_policy(None))?;
        Ok(Self::new(
            settings,
            pool,
            master,
            Arc::new(KeyRing::new(keys)),
            hasher,
            Metrics::new()?,
            clock,
        ))
    }

    /// A connection from the pool; the wait goes to the metrics.
    fn conn(&self) -> Result<PooledConn, r2d2::Error> {
        let asked = std::time::Instant::now();
        let conn = self.pool.get();
        self.metrics.pool_wait(asked.elapsed());
        conn
    }

    /// Records that `client_id` got a token (`clients.last_used_at`, for `tessera-admin
    /// doctor`): in the database at most once a day per client and instance, so that the hot
    /// paths only look in a map.
    fn note_client_use(&self, client_id: &str) {
        let now = self.clock.now_ms();
        {
            let mut noted = self.clients_used.lock().unwrap_or_else(|p| p.into_inner());
            if noted
                .get(client_id)
                .is_some_and(|at| now - at < ClientRow::USE_NOTED_EVERY_MS)
            {
                return;
            }
            noted.insert(client_id.to_owned(), now);
        }
        let noted = self.conn().map_err(|e| e.to_string()).and_then(|mut c| {
            ClientRow::note_use(&mut c, client_id, now).map_err(|e| e.to_string())
        });
        if let Err(e) = noted {
            tracing::warn!(error = %e, "could not record the client's use");
        }
    }

    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// `/metrics`: the Prometheus text format.
    pub fn render_metrics(&self) -> String {
        self.metrics.render(&self.pool, &self.hasher)
    }

    /// Deletes what retention no longer keeps ([`retention::prune`]), in small transactions.
    pub fn prune(&self) -> anyhow::Result<retention::Report> {
        let now = self.clock.now_ms();
        Ok(retention::prune(
            &mut *self.conn()?,
            &self.retention,
            now,
            false,
        )?)
    }

    /// Ready to serve: the database answers a query within `database.connect_timeout`, and a
    /// signing key is loaded. The signing key's id, or why not.
    pub fn readiness(&self) -> Result<String, OAuthError> {
        let mut conn = self.conn()?;
        diesel::RunQueryDsl::execute(diesel::sql_query("SELECT 1"), &mut **conn)?;
        let kid = self.keys.get().signing().kid.clone();
        if kid.is_empty() {
            return Err(OAuthError::TemporarilyUnavailable(
                "no signing key is loaded".into(),
            ));
        }
        Ok(kid)
    }

    /// Every key still published and the current signer, from the database.
    pub fn reload_keys(&self) -> anyhow::Result<()> {
        let keys = KeySet::load(
            &mut *self.conn()?,
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
        let jwks = StoredKey::published_jwks(&mut *self.conn()?, cutoff)?;
        let keys: Vec<serde_json::Value> = jwks
            .iter()
            .filter_map(|j| serde_json::from_str(j).ok())
            .collect();
        Ok(serde_json::json!({ "keys": keys }))
    }

    /// Authorization server metadata (RFC 8414): only what is actually supported.
    pub fn metadata(&self) -> serde_json::Value {
        let issuer = &self.issuer;
        let mut document = serde_json::json!({
            "issuer": issuer,
            "authorization_endpoint": format!("{issuer}/authorize"),
            "token_endpoint": format!("{issuer}/token"),
            "jwks_uri": format!("{issuer}/jwks.json"),
            "userinfo_endpoint": format!("{issuer}/userinfo"),
            "revocation_endpoint": format!("{issuer}/revoke"),
            "introspection_endpoint": format!("{issuer}/introspect"),
            "grant_types_supported": ["authorization_code", "client_credentials", "password", "refresh_token"],
            "response_types_supported": ["code"],
            "response_modes_supported": ["query"],
            "code_challenge_methods_supported": ["S256"],
            "authorization_response_iss_parameter_supported": true,
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
            "revocation_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
            "introspection_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
            "access_token_signing_alg_values_supported": self.keys.get().algorithms(),
        });
        // Only what an administrator chose to publish: a list built from the clients would
        // tell anyone what every client was granted.
        if !self.public_scopes.is_empty() {
            let scopes: Vec<&str> = self.public_scopes.iter().collect();
            document["scopes_supported"] = scopes.into();
        }
        document
    }
}
