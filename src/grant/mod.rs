//! The protocol, free of any web framework: the HTTP layer parses, calls one of the
//! [`Services`] on a blocking thread, and renders the result. One service per concern, each
//! the home of what comes next in its area:
//!
//! - [`token`]: the token endpoint's [`TokenEndpoint`]: every grant, revocation (RFC 7009),
//!   introspection (RFC 7662), bearer checks and `/userinfo`;
//! - [`browser`]: [`BrowserFlow`], the pages users see: the authorization request, login,
//!   consent, sessions and CSRF;
//! - [`operations`]: [`Operations`]: readiness, key reloads, pruning, metrics, and what the
//!   server publishes (JWKS, RFC 8414 metadata);
//! - shared by them: [`sign_in`] (username and password, throttled: the password grant and the
//!   login page), [`client_auth`] (RFC 6749 §2.3), [`pkce`] (RFC 7636 through oxide-auth),
//!   [`Params`] and [`OAuthError`];
//! - this module: [`Core`], what every service holds, and [`Services::open`].

pub mod backchannel;
pub mod browser;
pub mod client_auth;
pub mod error;
pub mod operations;
mod params;
pub mod passkey;
pub mod pkce;
pub mod sign_in;
pub mod token;

pub use browser::{account, authorize, logout, BrowserFlow};
pub use operations::Operations;
pub use sign_in::SignIn;
pub use token::{bearer, introspection, TokenEndpoint};

pub use client_auth::{authenticate, credentials, parse_basic, Credentials};
pub use error::OAuthError;
pub use params::Params;
pub use sign_in::SignInError;
pub use token::bearer::{BearerError, Scheme};
pub use token::grants::{RefreshPath, TokenRequest};
pub use token::response::TokenResponse;

use std::time::Duration;

use std::sync::Arc;

use anyhow::Context;

use crate::domain::crypto::MasterKey;
use crate::domain::keys::{KeyRing, KeySet};
use crate::domain::password::PasswordHasher;
use crate::domain::Clock;
use crate::metrics::Metrics;
use crate::settings::Settings;
use crate::store::{Pool, PooledConn};

/// What every service holds: the pool, the master key, the signing keys, the clock, the
/// metrics, and who this server is. Cheap to clone.
#[derive(Clone)]
pub struct Core {
    pool: Pool,
    master: Arc<MasterKey>,
    keys: Arc<KeyRing>,
    clock: Clock,
    metrics: Metrics,
    issuer: String,
    /// `aud` of access tokens for this server.
    audience: String,
    /// How long retired keys stay published and accepted.
    key_retention: Duration,
}

impl Core {
    /// A connection from the pool; the wait goes to the metrics.
    fn conn(&self) -> Result<PooledConn, r2d2::Error> {
        let asked = std::time::Instant::now();
        let conn = self.pool.get();
        self.metrics.pool_wait(asked.elapsed());
        conn
    }

    /// Every key still published and the current signer, from the database.
    fn reload_keys(&self) -> anyhow::Result<()> {
        let keys = KeySet::load(
            &mut *self.conn()?,
            &self.master,
            self.key_retention,
            self.clock.now(),
        )?;
        self.keys.replace(keys);
        Ok(())
    }
}

/// The three services, built together over one [`Core`]. Cheap to clone; every method of
/// theirs blocks (database, Argon2).
#[derive(Clone)]
pub struct Services {
    pub tokens: TokenEndpoint,
    pub browser: BrowserFlow,
    pub operations: Operations,
    pub backchannel: backchannel::Backchannel,
}

impl Services {
    fn new(
        settings: &Settings,
        pool: Pool,
        master: Arc<MasterKey>,
        keys: Arc<KeyRing>,
        mut hasher: PasswordHasher,
        metrics: Metrics,
        clock: Clock,
    ) -> Self {
        metrics.watch_hasher(&mut hasher);
        let core = Core {
            pool,
            master,
            keys,
            clock,
            metrics,
            issuer: settings.issuer(),
            audience: settings.audience(),
            key_retention: settings.key_retention(),
        };
        let passwords = SignIn {
            core: core.clone(),
            hasher: hasher.clone(),
            throttle: settings.throttle_policy(),
        };
        Self {
            tokens: TokenEndpoint::new(settings, core.clone(), passwords.clone()),
            browser: BrowserFlow::new(settings, core.clone(), passwords),
            backchannel: backchannel::Backchannel::new(settings, core.clone()),
            operations: Operations::new(settings, core, hasher),
        }
    }

    /// Opens what the services need from `settings`: the master key (created on first start),
    /// the pool, the signing keys (one created if none is in force), the password hasher and
    /// the metrics. Blocks: run it off the async executor.
    pub fn open(settings: &Settings, clock: Clock) -> anyhow::Result<Self> {
        crate::domain::jwt_crypto::install_crypto_provider();
        let master = Arc::new(settings.master_key(true)?);
        let db = &settings.database;
        let metrics = Metrics::new()?;
        let options = crate::store::Options {
            observer: Some(metrics.connection_observer()),
            ..db.options()
        };
        let (pool, _) = crate::store::connect_and_migrate(db.url.expose(), &options)?;
        let keys = {
            let mut conn = pool.get().context("database unreachable")?;
            let retention = settings.key_retention();
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
            metrics,
            clock,
        ))
    }
}
