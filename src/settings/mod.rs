//! Configuration: built-in defaults → optional TOML file → `TESSERA_<SECTION>__<KEY>` environment.
//!
//! Every field is documented in `tessera.example.toml`. Unknown keys and bad values fail
//! start-up with a message naming the key. [`policies`] turns settings into the domain's
//! policies.

mod policies;
mod values;

pub use values::{compact_duration, redact_url};
use values::{duration, issuer_text, proxies, redacted_url};

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use serde::{Deserialize, Serialize};

use crate::domain::crypto::{MasterKey, MasterKeyError};
use crate::domain::keys::KeyAlgorithm;
use crate::domain::scope::Scope;
pub use crate::domain::second_factor::SecondFactorPolicy;
pub use crate::domain::secret::Secret;

/// `TESSERA_…` variables that are not configuration keys. Every other `TESSERA_…` variable is
/// one, so a misspelt section fails start-up instead of being ignored.
fn is_config_var(name: &str) -> bool {
    name.starts_with("TESSERA_")
        && !matches!(
            name,
            "TESSERA_CONFIG" | "TESSERA_LOG_FORMAT" | "TESSERA_ADMIN_BIN"
        )
        && !name.starts_with("TESSERA_TEST_")
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    pub server: ServerSettings,
    pub database: DatabaseSettings,
    pub tokens: TokenSettings,
    pub keys: KeySettings,
    pub passwords: PasswordSettings,
    pub throttle: ThrottleSettings,
    pub sessions: SessionSettings,
    pub retention: RetentionSettings,
    pub backchannel: BackchannelSettings,
    pub signin: SignInSettings,
    /// The master secret, base64 (≥ 32 bytes). Takes precedence over `master_key_file`.
    #[serde(default)]
    pub master_key: Option<Secret>,
    /// File holding the master secret; generated (mode 0600) when missing.
    pub master_key_file: PathBuf,
    /// The configuration file these settings were read from, if any (not a setting).
    #[serde(skip)]
    pub file: Option<PathBuf>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSettings {
    pub listen: SocketAddr,
    /// Shown as it is used: without a trailing slash (RFC 8414 §2).
    #[serde(serialize_with = "issuer_text")]
    pub issuer: url::Url,
    /// Largest request body accepted, in bytes.
    pub max_body_bytes: usize,
    /// Reverse proxies whose `Forwarded` / `X-Forwarded-For` headers are believed: addresses
    /// or CIDR ranges, a TOML list or (from the environment) one string, space- or
    /// comma-separated. Empty: the socket's peer is the client.
    #[serde(with = "proxies")]
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// The header those proxies write the client's address into; the other one is ignored,
    /// since a proxy passes on what the client wrote in it.
    pub forwarded_header: ForwardedHeader,
    /// On SIGTERM or SIGINT: how long requests already accepted may take to finish.
    #[serde(with = "duration")]
    pub shutdown_timeout: Duration,
    /// On SIGTERM or SIGINT, before that: how long `/readyz` answers 503 while requests are
    /// still served, so that a load balancer's health check takes the instance out first.
    #[serde(with = "duration")]
    pub drain: Duration,
    /// Where `/metrics` (Prometheus) is served, apart from the API; empty: nowhere.
    pub metrics_listen: String,
}

/// Where a trusted reverse proxy writes the client's address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ForwardedHeader {
    /// `X-Forwarded-For`: nginx (`proxy_add_x_forwarded_for`), HAProxy (`option forwardfor`),
    /// most cloud load balancers.
    XForwardedFor,
    /// `Forwarded` (RFC 7239), for proxies configured to write it.
    Forwarded,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseSettings {
    /// Shown with its password redacted, and the host left in.
    #[serde(serialize_with = "redacted_url")]
    pub url: Secret,
    /// Connections in the pool; 0 picks a default for the backend.
    pub pool_size: u32,
    /// How long a request waits for a free connection before answering 503.
    #[serde(with = "duration")]
    pub connect_timeout: Duration,
    /// `none`, or `transaction` behind a pooler in transaction mode (PgBouncer's
    /// `pool_mode = transaction`).
    pub pooler: crate::store::Pooler,
}

impl DatabaseSettings {
    /// The pool's options, as these settings give them.
    pub fn options(&self) -> crate::store::Options {
        crate::store::Options::new(self.pool_size, self.connect_timeout, self.pooler)
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TokenSettings {
    #[serde(with = "duration")]
    pub access_ttl: Duration,
    #[serde(with = "duration")]
    pub refresh_idle_ttl: Duration,
    #[serde(with = "duration")]
    pub refresh_absolute_ttl: Duration,
    /// A just-rotated refresh token presented again within this window, while its successor is
    /// unused, gets that same successor back instead of revoking the family. `0s` is strict.
    #[serde(with = "duration")]
    pub reuse_grace: Duration,
    /// `aud` of access tokens; empty means the issuer.
    pub audience: String,
    /// How long an authorization code may wait for its exchange (at most 60s).
    #[serde(with = "duration")]
    pub code_ttl: Duration,
    /// How old a DPoP proof may be (RFC 9449 §4.3: `iat`).
    #[serde(with = "duration")]
    pub dpop_max_age: Duration,
    /// How far a client's clock may run ahead of or behind the server's, for DPoP proofs. Proof
    /// ids are remembered for the whole window, skew included.
    #[serde(with = "duration")]
    pub dpop_clock_skew: Duration,
    /// DPoP proofs must carry a server nonce (RFC 9449 §8): a proof made in advance, or
    /// with a client's wrong clock, is refused. Nonces change every `dpop_max_age`.
    pub dpop_nonce: bool,
    /// Scopes published as `scopes_supported` in the metadata, space-separated. Empty: the
    /// member is left out, so the metadata does not list what clients were granted.
    pub public_scopes: String,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct KeySettings {
    pub algorithm: KeyAlgorithm,
    /// A key made by `tessera-admin key rotate` is published at once and signs after this
    /// delay, once relying parties have had time to fetch the new JWKS.
    #[serde(with = "duration")]
    pub activation_delay: Duration,
    /// How often a running server reloads keys from the database.
    #[serde(with = "duration")]
    pub reload_interval: Duration,
    /// A signing key older than this should be rotated (`tessera-admin doctor` says so).
    #[serde(with = "duration")]
    pub max_age: Duration,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PasswordSettings {
    /// Argon2id memory cost in KiB.
    pub argon2_memory_kib: u32,
    pub argon2_iterations: u32,
    pub argon2_parallelism: u32,
    /// Password hashes computed at once; 0 means one per CPU core.
    pub max_concurrent_hashes: usize,
    /// How long a sign-in waits for a hashing slot before answering 503.
    #[serde(with = "duration")]
    pub max_wait: Duration,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ThrottleSettings {
    /// Failed password attempts for one username within `window` before further attempts are
    /// refused without checking the password.
    pub max_failures_per_user: u32,
    /// The same, per client IP address.
    pub max_failures_per_ip: u32,
    #[serde(with = "duration")]
    pub window: Duration,
    /// IPv6 addresses count against `max_failures_per_ip` by this prefix: one customer
    /// usually holds a whole /64.
    pub ipv6_prefix: u8,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SessionSettings {
    /// A sign-in on Tessera's pages ends after this long without use...
    #[serde(with = "duration")]
    pub idle_ttl: Duration,
    /// ...and after this long in any case.
    #[serde(with = "duration")]
    pub absolute_ttl: Duration,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SignInSettings {
    /// `optional`: users may add a second factor; `required`: a user without one is sent to
    /// set one up right after the password, before any app gets a code.
    pub second_factor: SecondFactorPolicy,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RetentionSettings {
    /// How often the server prunes what it no longer needs.
    #[serde(with = "duration")]
    pub interval: Duration,
    /// Rows deleted per transaction.
    pub batch: u32,
    /// Families revoked or expired longer ago than this go, with their refresh tokens.
    #[serde(with = "duration")]
    pub dead_families: Duration,
    /// Audit events and reuse incidents older than this go.
    #[serde(with = "duration")]
    pub audit: Duration,
}

/// Back-channel logout delivery (OpenID Connect Back-Channel Logout 1.0).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct BackchannelSettings {
    /// How often each instance looks for logout tokens to deliver.
    #[serde(with = "duration")]
    pub poll_interval: Duration,
    /// How long an app's back-channel logout URI may take to answer.
    #[serde(with = "duration")]
    pub timeout: Duration,
    /// How long delivery is retried (with backoff) before it is given up.
    #[serde(with = "duration")]
    pub retry_for: Duration,
}

impl Settings {
    /// Loads defaults, then `file` (or `TESSERA_CONFIG`, or `tessera.toml` if present), then the
    /// environment.
    pub fn load(file: Option<&Path>) -> anyhow::Result<Self> {
        let env: Vec<(String, String)> = std::env::vars().collect();
        Self::load_from(file, env)
    }

    /// As [`Settings::load`], with the environment given explicitly (tests, the CLI).
    pub fn load_from(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> anyhow::Result<Self> {
        Self::build(file, env, true)
    }

    /// The built-in defaults alone.
    pub fn defaults() -> Self {
        // Constants, which every test run loads: they cannot fail.
        Self::build(None, Vec::new(), false).expect("the built-in defaults are valid")
    }

    /// Defaults and `env` only: never reads `./tessera.toml` (tests, embedding).
    pub fn from_env(env: impl IntoIterator<Item = (String, String)>) -> anyhow::Result<Self> {
        Self::build(None, env, false)
    }

    fn build(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
        default_file: bool,
    ) -> anyhow::Result<Self> {
        let env: Vec<(String, String)> = env.into_iter().collect();
        let explicit = file.map(Path::to_path_buf).or_else(|| {
            env.iter()
                .find(|(k, _)| k == "TESSERA_CONFIG")
                .map(|(_, v)| PathBuf::from(v))
        });
        let mut builder = config::Config::builder()
            .set_default("server.listen", "127.0.0.1:8080")?
            .set_default("server.issuer", "http://127.0.0.1:8080")?
            .set_default("server.max_body_bytes", 16 * 1024)?
            .set_default("server.trusted_proxies", Vec::<String>::new())?
            .set_default("server.forwarded_header", "x-forwarded-for")?
            .set_default("server.shutdown_timeout", "30s")?
            .set_default("server.drain", "0s")?
            .set_default("server.metrics_listen", "")?
            .set_default("database.url", "sqlite://data/tessera.db")?
            .set_default("database.pool_size", 0)?
            .set_default("database.connect_timeout", "5s")?
            .set_default("database.pooler", "none")?
            .set_default("tokens.access_ttl", "15m")?
            .set_default("tokens.refresh_idle_ttl", "14d")?
            .set_default("tokens.refresh_absolute_ttl", "30d")?
            .set_default("tokens.reuse_grace", "5s")?
            .set_default("tokens.audience", "")?
            .set_default("tokens.public_scopes", "")?
            .set_default("tokens.code_ttl", "1m")?
            .set_default("tokens.dpop_max_age", "1m")?
            .set_default("tokens.dpop_clock_skew", "10s")?
            .set_default("tokens.dpop_nonce", false)?
            .set_default("keys.algorithm", "ES256")?
            .set_default("keys.activation_delay", "10m")?
            .set_default("keys.reload_interval", "5s")?
            .set_default("keys.max_age", "90d")?
            .set_default("passwords.argon2_memory_kib", 19 * 1024)?
            .set_default("passwords.argon2_iterations", 2)?
            .set_default("passwords.argon2_parallelism", 1)?
            .set_default("passwords.max_concurrent_hashes", 0)?
            .set_default("passwords.max_wait", "5s")?
            .set_default("throttle.max_failures_per_user", 5)?
            .set_default("throttle.max_failures_per_ip", 50)?
            .set_default("throttle.window", "15m")?
            .set_default("throttle.ipv6_prefix", 64)?
            .set_default("sessions.idle_ttl", "30m")?
            .set_default("sessions.absolute_ttl", "12h")?
            .set_default("signin.second_factor", "optional")?
            .set_default("retention.interval", "5m")?
            .set_default("retention.batch", 500)?
            .set_default("retention.dead_families", "30d")?
            .set_default("retention.audit", "90d")?
            .set_default("backchannel.poll_interval", "1s")?
            .set_default("backchannel.timeout", "5s")?
            .set_default("backchannel.retry_for", "1h")?
            .set_default("master_key_file", "data/master.key")?;
        let file = match explicit {
            Some(path) => {
                if !path.is_file() {
                    anyhow::bail!("configuration file {} not found", path.display());
                }
                builder = builder.add_source(config::File::from(path.clone()).required(true));
                Some(path)
            }
            None if default_file => {
                let path = PathBuf::from("tessera.toml");
                builder = builder.add_source(config::File::from(path.clone()).required(false));
                path.is_file().then_some(path)
            }
            None => None,
        };
        let env_map: config::Map<String, String> =
            env.into_iter().filter(|(k, _)| is_config_var(k)).collect();
        builder = builder.add_source(
            config::Environment::with_prefix("TESSERA")
                .prefix_separator("_")
                .separator("__")
                .source(Some(env_map)),
        );
        let mut settings: Settings = builder
            .build()
            .context("invalid configuration")?
            .try_deserialize()
            .map_err(|e| anyhow::anyhow!("invalid configuration: {e}"))?;
        settings.validate()?;
        settings.file = file;
        Ok(settings)
    }

    fn validate(&self) -> anyhow::Result<()> {
        let t = &self.tokens;
        if t.access_ttl.is_zero() {
            anyhow::bail!("invalid configuration: tokens.access_ttl must be more than 0s");
        }
        if t.refresh_idle_ttl.is_zero() || t.refresh_absolute_ttl < t.refresh_idle_ttl {
            anyhow::bail!(
                "invalid configuration: tokens.refresh_absolute_ttl must be at least tokens.refresh_idle_ttl, and both more than 0s"
            );
        }
        let year = Duration::from_secs(365 * 86400);
        if t.access_ttl > Duration::from_secs(86400) {
            anyhow::bail!("invalid configuration: tokens.access_ttl must be at most 1d");
        }
        if t.refresh_absolute_ttl > 10 * year || t.reuse_grace > Duration::from_secs(3600) {
            anyhow::bail!(
                "invalid configuration: tokens.refresh_absolute_ttl must be at most 10 years and tokens.reuse_grace at most 1h"
            );
        }
        if t.code_ttl.is_zero() || t.code_ttl > Duration::from_secs(60) {
            anyhow::bail!("invalid configuration: tokens.code_ttl must be between 1s and 60s");
        }
        if t.dpop_max_age.is_zero()
            || t.dpop_max_age > Duration::from_secs(3600)
            || t.dpop_clock_skew > Duration::from_secs(600)
        {
            anyhow::bail!(
                "invalid configuration: tokens.dpop_max_age must be between 1s and 1h, tokens.dpop_clock_skew at most 10m"
            );
        }
        let metrics = self.server.metrics_listen.trim();
        if !metrics.is_empty() && metrics.parse::<SocketAddr>().is_err() {
            anyhow::bail!(
                "invalid configuration: server.metrics_listen: `{metrics}` is not an address and port (\"127.0.0.1:9090\")"
            );
        }
        if !(32..=128).contains(&self.throttle.ipv6_prefix) {
            anyhow::bail!("invalid configuration: throttle.ipv6_prefix must be between 32 and 128");
        }
        if !self.keys.algorithm.signs_access_tokens() {
            anyhow::bail!(
                "invalid configuration: keys.algorithm must be ES256 or EdDSA (RS256 keys sign only the ID tokens of clients that ask for them)"
            );
        }
        let b = &self.backchannel;
        if b.timeout.is_zero() || b.timeout > Duration::from_secs(60) {
            anyhow::bail!("invalid configuration: backchannel.timeout must be between 1s and 60s");
        }
        if b.poll_interval.is_zero() || b.retry_for.is_zero() {
            anyhow::bail!(
                "invalid configuration: backchannel.poll_interval and backchannel.retry_for must be more than 0s"
            );
        }
        if self.server.shutdown_timeout > Duration::from_secs(3600) {
            anyhow::bail!("invalid configuration: server.shutdown_timeout must be at most 1h");
        }
        if self.server.drain > Duration::from_secs(300) {
            anyhow::bail!("invalid configuration: server.drain must be at most 5m");
        }
        if let Err(e) = Scope::parse(&self.tokens.public_scopes) {
            anyhow::bail!("invalid configuration: tokens.public_scopes: {e}");
        }
        if let Err(e) = self.hash_policy(Some(1)).check() {
            anyhow::bail!("invalid configuration: passwords.argon2_*: {e}");
        }
        if !matches!(self.server.issuer.scheme(), "http" | "https") {
            anyhow::bail!("invalid configuration: server.issuer must be an http(s) URL");
        }
        Ok(())
    }

    /// The scopes the metadata publishes (`tokens.public_scopes`).
    pub fn public_scopes(&self) -> Scope {
        Scope::stored(&self.tokens.public_scopes)
    }

    /// `aud` of access tokens.
    pub fn audience(&self) -> String {
        if self.tokens.audience.is_empty() {
            self.issuer()
        } else {
            self.tokens.audience.clone()
        }
    }

    /// The issuer identifier, without a trailing slash (RFC 8414 §2).
    pub fn issuer(&self) -> String {
        self.server.issuer.as_str().trim_end_matches('/').to_owned()
    }

    /// How long a retired key stays published and accepted: tokens it signed live
    /// `access_ttl`, and servers may sign with it for up to `reload_interval` after retirement,
    /// plus 5 s for clocks that disagree a little.
    pub fn key_retention(&self) -> Duration {
        self.tokens.access_ttl + self.keys.reload_interval + Duration::from_secs(5)
    }

    /// Whether cookies get `Secure`: the issuer is served over https.
    pub fn secure_cookies(&self) -> bool {
        self.server.issuer.scheme() == "https"
    }

    /// The configured master key: `master_key` if set, else `master_key_file`, created when
    /// missing if `create` (the server's first start).
    pub fn master_key(&self, create: bool) -> anyhow::Result<MasterKey> {
        match (&self.master_key, create) {
            (Some(secret), _) => MasterKey::from_text(secret.expose()).context("master_key"),
            (None, true) => Ok(MasterKey::load_or_create(&self.master_key_file)?),
            (None, false) => match MasterKey::load_existing(&self.master_key_file) {
                Err(e @ MasterKeyError::Read { .. }) => Err(anyhow::Error::new(e)
                    .context("no master key: set TESSERA_MASTER_KEY or TESSERA_MASTER_KEY_FILE to the server's key")),
                other => Ok(other?),
            },
        }
    }
}
