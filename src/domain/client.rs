//! OAuth2 clients: registration and authentication.

use std::fmt;
use std::str::FromStr;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

use crate::domain::crypto::{ct_eq, random_bytes, random_id, sha256_hex};
use crate::domain::now_ms;
use crate::domain::scope::Scope;
use crate::store::models::{Client, NewClient};
use crate::store::AnyConnection;

/// A grant type a client may be allowed to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum GrantType {
    Password,
    RefreshToken,
    AuthorizationCode,
    ClientCredentials,
}

impl GrantType {
    pub const ALL: [GrantType; 4] = [
        GrantType::AuthorizationCode,
        GrantType::ClientCredentials,
        GrantType::Password,
        GrantType::RefreshToken,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            GrantType::Password => "password",
            GrantType::RefreshToken => "refresh_token",
            GrantType::AuthorizationCode => "authorization_code",
            GrantType::ClientCredentials => "client_credentials",
        }
    }
}

impl fmt::Display for GrantType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for GrantType {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        GrantType::ALL
            .into_iter()
            .find(|g| g.as_str() == s)
            .ok_or_else(|| {
                format!(
                    "unknown grant type `{s}` (expected one of: password, refresh_token, authorization_code, client_credentials)"
                )
            })
    }
}

/// A client secret as handed out once; never stored.
pub struct ClientSecret(String);

impl ClientSecret {
    fn generate() -> Self {
        // 256 bits, URL-safe alphabet: no escaping needed in Basic credentials or forms.
        Self(format!("tss_{}", URL_SAFE_NO_PAD.encode(random_bytes(32))))
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ClientSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ClientSecret([redacted])")
    }
}

/// What an administrator asks for when registering a client.
#[derive(Debug, Clone)]
pub struct ClientSpec {
    pub name: String,
    pub public: bool,
    pub grants: Vec<GrantType>,
    pub scope: Scope,
    pub redirect_uris: Vec<url::Url>,
}

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("invalid client: {0}")]
    Invalid(String),
    #[error(transparent)]
    Database(#[from] diesel::result::Error),
}

/// Registers a client; returns it and, for confidential clients, its secret (shown once).
pub fn register(
    conn: &mut AnyConnection,
    spec: &ClientSpec,
) -> Result<(Client, Option<ClientSecret>), ClientError> {
    let name = spec.name.trim();
    if name.is_empty() || name.len() > 200 {
        return Err(ClientError::Invalid(
            "the name must be 1 to 200 characters".into(),
        ));
    }
    if spec.grants.is_empty() {
        return Err(ClientError::Invalid("give at least one --grant".into()));
    }
    if spec.public && spec.grants.contains(&GrantType::ClientCredentials) {
        return Err(ClientError::Invalid(
            "a public client cannot use client_credentials".into(),
        ));
    }
    for uri in &spec.redirect_uris {
        if uri.fragment().is_some() {
            return Err(ClientError::Invalid(format!(
                "redirect URI {uri} must not have a fragment"
            )));
        }
    }
    let mut grants = spec.grants.clone();
    grants.sort();
    grants.dedup();
    let grants = grants
        .iter()
        .map(|g| g.as_str())
        .collect::<Vec<_>>()
        .join(" ");
    let uris = spec
        .redirect_uris
        .iter()
        .map(|u| u.as_str())
        .collect::<Vec<_>>()
        .join(" ");
    let secret = (!spec.public).then(ClientSecret::generate);
    let secret_hash = secret.as_ref().map(|s| sha256_hex(s.expose().as_bytes()));
    let id = random_id();
    let scopes = spec.scope.to_string();
    NewClient {
        id: &id,
        name,
        secret_hash: secret_hash.as_deref(),
        redirect_uris: &uris,
        grant_types: &grants,
        scopes: &scopes,
        created_at: now_ms(),
    }
    .insert(conn)?;
    let client = Client::find(conn, &id)?.ok_or(diesel::result::Error::NotFound)?;
    Ok((client, secret))
}

impl Client {
    pub fn is_public(&self) -> bool {
        self.secret_hash.is_none()
    }

    pub fn allows(&self, grant: GrantType) -> bool {
        self.grant_types.split(' ').any(|g| g == grant.as_str())
    }

    pub fn scope(&self) -> Scope {
        // Stored scopes were validated on the way in.
        Scope::parse(&self.scopes).unwrap_or_default()
    }

    /// Checks a presented secret in constant time.
    pub fn secret_matches(&self, presented: &str) -> bool {
        match &self.secret_hash {
            Some(hash) => ct_eq(sha256_hex(presented.as_bytes()).as_bytes(), hash.as_bytes()),
            None => false,
        }
    }
}
