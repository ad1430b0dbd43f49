//! What operators and relying parties ask of a running server: readiness, key reloads,
//! pruning, metrics, and what the server publishes (JWKS, RFC 8414 metadata).

use crate::domain::keys::KeyAlgorithm;
use crate::domain::password::PasswordHasher;
use crate::domain::retention;
use crate::domain::scope::Scope;
use crate::grant::{Core, OAuthError};
use crate::metrics::Metrics;
use crate::settings::Settings;
use crate::store::models::StoredKey;

/// Operations. Cheap to clone.
#[derive(Clone)]
pub struct Operations {
    core: Core,
    /// Read for the metrics (its slots in use).
    hasher: PasswordHasher,
    retention: retention::Policy,
    /// `scopes_supported` in the metadata.
    public_scopes: Scope,
}

/// Every claim an ID token or `/userinfo` can carry (`address` and `phone` are not kept).
const CLAIMS_SUPPORTED: &[&str] = &[
    "iss",
    "sub",
    "aud",
    "exp",
    "iat",
    "auth_time",
    "nonce",
    "at_hash",
    "sid",
    "amr",
    "preferred_username",
    "name",
    "updated_at",
    "email",
    "email_verified",
];

impl Operations {
    pub(crate) fn new(settings: &Settings, core: Core, hasher: PasswordHasher) -> Self {
        Self {
            core,
            hasher,
            retention: settings.retention_policy(),
            public_scopes: settings.public_scopes(),
        }
    }

    pub fn metrics(&self) -> &Metrics {
        &self.core.metrics
    }

    /// `/metrics`: the Prometheus text format.
    pub fn render_metrics(&self) -> String {
        self.core.metrics.render(&self.core.pool, &self.hasher)
    }

    /// Deletes what retention no longer keeps ([`retention::prune`]), in small transactions.
    pub fn prune(&self) -> anyhow::Result<retention::Report> {
        let now = self.core.clock.now();
        Ok(retention::prune(
            &mut *self.core.conn()?,
            &self.retention,
            now,
            false,
        )?)
    }

    /// Ready to serve: the database answers a query within `database.connect_timeout`, and a
    /// signing key is loaded. The signing key's id, or why not.
    pub fn readiness(&self) -> Result<String, OAuthError> {
        let mut conn = self.core.conn()?;
        diesel::RunQueryDsl::execute(diesel::sql_query("SELECT 1"), &mut **conn)?;
        let kid = self.core.keys.get().signing().kid.clone();
        if kid.is_empty() {
            return Err(OAuthError::TemporarilyUnavailable(
                "no signing key is loaded".into(),
            ));
        }
        Ok(kid)
    }

    /// Every key still published and the current signer, from the database.
    pub fn reload_keys(&self) -> anyhow::Result<()> {
        self.core.reload_keys()
    }

    /// The JWKS (RFC 7517 §5): read from the database on each call, so a key made by
    /// `tessera-admin key rotate` is published at once, and a retired key stays until every
    /// token it signed has expired (`Settings::key_retention`).
    pub fn jwks(&self) -> Result<serde_json::Value, OAuthError> {
        let cutoff = self.core.clock.now() - self.core.key_retention;
        let jwks = StoredKey::published_jwks(&mut *self.core.conn()?, cutoff)?;
        let keys: Vec<serde_json::Value> = jwks
            .iter()
            .filter_map(|j| serde_json::from_str(j).ok())
            .collect();
        Ok(serde_json::json!({ "keys": keys }))
    }

    /// Authorization server metadata (RFC 8414) and OpenID Provider metadata (OpenID Connect
    /// Discovery 1.0 §3), one document: only what is actually supported.
    pub fn metadata(&self) -> serde_json::Value {
        let issuer = &self.core.issuer;
        let algorithms = self.core.keys.get().algorithms();
        let access_algorithms: Vec<&str> = algorithms
            .iter()
            .copied()
            .filter(|a| KeyAlgorithm::parse(a).is_some_and(KeyAlgorithm::signs_access_tokens))
            .collect();
        // RS256 always: registering a client with `--id-token-alg RS256` makes its key.
        let mut id_algorithms = algorithms.clone();
        id_algorithms.push(KeyAlgorithm::RS256.as_str());
        id_algorithms.sort_unstable();
        id_algorithms.dedup();
        let mut document = serde_json::json!({
            "issuer": issuer,
            "authorization_endpoint": format!("{issuer}/authorize"),
            "token_endpoint": format!("{issuer}/token"),
            "jwks_uri": format!("{issuer}/jwks.json"),
            "userinfo_endpoint": format!("{issuer}/userinfo"),
            "end_session_endpoint": format!("{issuer}/end_session"),
            "backchannel_logout_supported": true,
            "backchannel_logout_session_supported": true,
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
            "access_token_signing_alg_values_supported": access_algorithms,
            // OpenID Connect: pairwise subjects are not offered; every client sees the user id.
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": id_algorithms,
            "claims_supported": CLAIMS_SUPPORTED,
            "prompt_values_supported": ["none", "login", "consent", "select_account"],
            "request_parameter_supported": false,
            "request_uri_parameter_supported": false,
            "claims_parameter_supported": false,
            "dpop_signing_alg_values_supported": crate::domain::dpop::ALGORITHMS,
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
