//! OAuth2 clients: registration and authentication; the web origins of browser apps in
//! [`origins`].

mod origins;

pub use origins::{check_origin, origin_registered, OriginCheck};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use std::time::Duration;

pub use crate::domain::grant_type::GrantType;

use crate::domain::crypto::{ct_eq, random_bytes, random_id, sha256_hex};
use crate::domain::keys::KeyAlgorithm;
pub use crate::domain::origin::is_loopback;
use crate::domain::origin::{self, Origin};
use crate::domain::scope::Scope;
use crate::domain::secret::Secret;
use crate::domain::Clock;
use crate::store::models::{ClientChanges, ClientRow, NewClient, TokenFamily};
use crate::store::AnyConnection;
use crate::value::{ClientId, UnixMs};

/// A registered client, its stored values parsed once, when the row is read. Values that no
/// longer parse (a database edited by hand) are left out: a client loses a grant, its scope or
/// its redirect URIs rather than gains anything.
#[derive(Debug, Clone)]
pub struct Client {
    pub id: ClientId,
    pub name: String,
    /// SHA-256 of the secret, hex; `None` for public clients.
    secret_hash: Option<String>,
    pub redirect_uris: Vec<url::Url>,
    pub grants: Vec<GrantType>,
    pub scope: Scope,
    pub created_at: UnixMs,
    pub disabled_at: Option<UnixMs>,
    /// May introspect tokens issued to other clients (a resource server).
    pub allow_introspection: bool,
    /// When it last got a token, to the day; `None`: never since this was recorded.
    pub last_used_at: Option<UnixMs>,
    pub openid: OpenIdOptions,
    pub app: AppOptions,
}

/// How the client's app holds its tokens: the web origins a browser app's scripts call from,
/// how long its refresh tokens may live (the OAuth 2.0 for Browser-Based Apps BCP), and
/// whether they must be bound to a key it holds (DPoP, RFC 9449).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AppOptions {
    /// Origins whose scripts may read its token, revocation and userinfo responses (CORS).
    pub allowed_origins: Vec<Origin>,
    /// Caps the absolute lifetime of its refresh-token families below the server's
    /// `tokens.refresh_absolute_ttl`; `None`: the server's.
    pub refresh_absolute_ttl: Option<Duration>,
    /// Every token request must carry a DPoP proof: all its tokens are bound to its key.
    pub require_dpop: bool,
    /// Its users must sign in with a second factor (an admin console, say): the password
    /// grant is refused, and a browser sign-in takes a second step or sets one up.
    pub require_second_factor: bool,
}

/// How a client takes part in OpenID Connect sign-in and logout.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OpenIdOptions {
    /// The algorithm its ID tokens are signed with; `None`: that of the access tokens' key.
    pub id_token_alg: Option<KeyAlgorithm>,
    /// Where RP-initiated logout may send the user back to; matched exactly.
    pub post_logout_redirect_uris: Vec<url::Url>,
    /// Where Back-Channel Logout 1.0 logout tokens are POSTed.
    pub backchannel_logout_uri: Option<url::Url>,
    /// Its logout tokens must carry `sid` (the client keys its sessions by it).
    pub backchannel_logout_session_required: bool,
}

impl From<ClientRow> for Client {
    fn from(row: ClientRow) -> Self {
        Self {
            // All or none: dropping one of two would make the other the implicit choice.
            redirect_uris: row
                .redirect_uris
                .split_whitespace()
                .map(url::Url::parse)
                .collect::<Result<_, _>>()
                .unwrap_or_default(),
            grants: row
                .grant_types
                .split_whitespace()
                .filter_map(|g| g.parse().ok())
                .collect(),
            scope: Scope::stored(&row.scopes),
            id: row.id,
            name: row.name,
            secret_hash: row.secret_hash,
            created_at: row.created_at,
            disabled_at: row.disabled_at,
            allow_introspection: row.allow_introspection,
            last_used_at: row.last_used_at,
            openid: OpenIdOptions {
                id_token_alg: row.id_token_alg.as_deref().and_then(KeyAlgorithm::parse),
                post_logout_redirect_uris: row
                    .post_logout_redirect_uris
                    .split_whitespace()
                    .map(url::Url::parse)
                    .collect::<Result<_, _>>()
                    .unwrap_or_default(),
                backchannel_logout_uri: row
                    .backchannel_logout_uri
                    .as_deref()
                    .and_then(|u| url::Url::parse(u).ok()),
                backchannel_logout_session_required: row.backchannel_logout_session_required,
            },
            app: AppOptions {
                allowed_origins: origin::stored(&row.allowed_origins),
                refresh_absolute_ttl: row
                    .refresh_absolute_ttl_ms
                    .and_then(|ms| u64::try_from(ms).ok())
                    .map(Duration::from_millis),
                require_dpop: row.require_dpop,
                require_second_factor: row.require_second_factor,
            },
        }
    }
}

/// Client ids are base64url; anything else cannot exist (and must not reach the database:
/// PostgreSQL refuses NUL bytes in text).
pub fn plausible(client_id: &str) -> bool {
    !client_id.is_empty()
        && client_id.len() <= 128
        && client_id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The client with this id, if there is one.
pub fn get(conn: &mut AnyConnection, id: &ClientId) -> diesel::QueryResult<Option<Client>> {
    Ok(ClientRow::find(conn, id)?.map(Client::from))
}

/// Every client, oldest first.
pub fn list(conn: &mut AnyConnection) -> diesel::QueryResult<Vec<Client>> {
    Ok(ClientRow::list(conn)?
        .into_iter()
        .map(Client::from)
        .collect())
}

/// A new client secret: shown once, stored only as its hash. 256 bits, URL-safe alphabet:
/// no escaping needed in Basic credentials or forms.
fn generate_secret() -> Secret {
    Secret::new(format!("tss_{}", URL_SAFE_NO_PAD.encode(random_bytes(32))))
}

/// What an administrator asks for when registering a client.
#[derive(Debug, Clone)]
pub struct ClientSpec {
    pub name: String,
    pub public: bool,
    pub grants: Vec<GrantType>,
    pub scope: Scope,
    pub redirect_uris: Vec<url::Url>,
    pub openid: OpenIdOptions,
    pub app: AppOptions,
}

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("{0}")]
    Invalid(String),
    #[error("no client with id {0}")]
    NotFound(String),
    #[error("a client needs at least one grant type")]
    NoGrants,
    #[error("nothing to change")]
    NothingToChange,
    /// Deleting it would delete families that still work.
    #[error("client {id} has {active} active token families")]
    HasActiveFamilies { id: String, active: i64 },
    #[error(transparent)]
    Database(#[from] diesel::result::Error),
}

fn invalid(msg: impl Into<String>) -> ClientError {
    ClientError::Invalid(msg.into())
}

fn check_name(name: &str) -> Result<&str, ClientError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 200 || name.chars().any(char::is_control) {
        return Err(invalid(
            "the name must be 1 to 200 characters, without control characters",
        ));
    }
    Ok(name)
}

fn grants_text(grants: &[GrantType], public: bool) -> Result<String, ClientError> {
    if grants.is_empty() {
        return Err(ClientError::NoGrants);
    }
    if public && grants.contains(&GrantType::ClientCredentials) {
        return Err(invalid("a public client cannot use client_credentials"));
    }
    let mut grants = grants.to_vec();
    grants.sort();
    grants.dedup();
    Ok(grants
        .iter()
        .map(|g| g.as_str())
        .collect::<Vec<_>>()
        .join(" "))
}

fn uris_text(uris: &[url::Url]) -> Result<String, ClientError> {
    uris_text_for("redirect URI", uris)
}

/// Redirect URIs (or post-logout ones, `what`), checked and joined for storage.
fn uris_text_for(what: &str, uris: &[url::Url]) -> Result<String, ClientError> {
    for uri in uris {
        if uri.fragment().is_some() {
            return Err(invalid(format!("{what} {uri} must not have a fragment")));
        }
        let ok = match uri.scheme() {
            "https" => true,
            "http" => is_loopback(uri),
            // RFC 8252 §7.1: private-use schemes in reverse domain-name form.
            scheme => scheme.contains('.'),
        };
        if !ok {
            return Err(invalid(format!(
                "{what} {uri} must be https, http on localhost, or a private-use scheme such as com.example.app:/callback"
            )));
        }
    }
    Ok(uris
        .iter()
        .map(|u| u.as_str())
        .collect::<Vec<_>>()
        .join(" "))
}

/// A back-channel logout URI: the server POSTs to it, so https, or http on this machine; no
/// fragment (Back-Channel Logout 1.0 §2.2).
fn backchannel_text(uri: &url::Url) -> Result<String, ClientError> {
    let ok = match uri.scheme() {
        "https" => true,
        "http" => is_loopback(uri),
        _ => false,
    };
    if !ok || uri.fragment().is_some() {
        return Err(invalid(format!(
            "back-channel logout URI {uri} must be https (http on localhost), without a fragment"
        )));
    }
    Ok(uri.as_str().to_owned())
}

/// A secret in a browser is no secret: a client with allowed origins is public.
fn confidential_origins() -> ClientError {
    invalid("a confidential client cannot have allowed origins: its secret would be in the browser; register the browser app as a public client (--public)")
}

fn origins_text(origins: &[Origin]) -> String {
    let mut texts: Vec<&str> = origins.iter().map(Origin::as_str).collect();
    texts.sort_unstable();
    texts.dedup();
    texts.join(" ")
}

/// The longest a client's refresh-token families may be capped to; the server's own setting
/// has the same bound.
const MAX_REFRESH_TTL: Duration = Duration::from_secs(10 * 365 * 86_400);

fn refresh_ttl_ms(ttl: Duration) -> Result<i64, ClientError> {
    if ttl < Duration::from_secs(60) || ttl > MAX_REFRESH_TTL {
        return Err(invalid(
            "the refresh tokens' absolute lifetime must be between 1 minute and 10 years",
        ));
    }
    Ok(i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX))
}

/// The client with this id, or [`ClientError::NotFound`].
pub fn find(conn: &mut AnyConnection, id: &ClientId) -> Result<Client, ClientError> {
    get(conn, id)?.ok_or_else(|| ClientError::NotFound(id.to_string()))
}

/// Registers a client; returns it and, for confidential clients, its secret (shown once).
pub fn register(
    conn: &mut AnyConnection,
    spec: &ClientSpec,
    clock: &Clock,
) -> Result<(Client, Option<Secret>), ClientError> {
    let name = check_name(&spec.name)?;
    let grants = grants_text(&spec.grants, spec.public)?;
    let uris = uris_text(&spec.redirect_uris)?;
    if !spec.public && !spec.app.allowed_origins.is_empty() {
        return Err(confidential_origins());
    }
    let secret = (!spec.public).then(generate_secret);
    let secret_hash = secret.as_ref().map(|s| sha256_hex(s.expose().as_bytes()));
    let id = ClientId::new(random_id());
    let scopes = spec.scope.to_string();
    let openid = &spec.openid;
    let logout_uris = uris_text_for(
        "post-logout redirect URI",
        &openid.post_logout_redirect_uris,
    )?;
    let backchannel = openid
        .backchannel_logout_uri
        .as_ref()
        .map(backchannel_text)
        .transpose()?;
    NewClient {
        id: &id,
        name,
        secret_hash: secret_hash.as_deref(),
        redirect_uris: &uris,
        grant_types: &grants,
        scopes: &scopes,
        created_at: clock.now(),
        id_token_alg: openid.id_token_alg.map(KeyAlgorithm::as_str),
        post_logout_redirect_uris: &logout_uris,
        backchannel_logout_uri: backchannel.as_deref(),
        backchannel_logout_session_required: openid.backchannel_logout_session_required,
        allowed_origins: &origins_text(&spec.app.allowed_origins),
        refresh_absolute_ttl_ms: spec
            .app
            .refresh_absolute_ttl
            .map(refresh_ttl_ms)
            .transpose()?,
        require_dpop: spec.app.require_dpop,
        require_second_factor: spec.app.require_second_factor,
    }
    .insert(conn)?;
    Ok((find(conn, &id)?, secret))
}

/// What `client update` may change; `None` keeps the current value.
#[derive(Debug, Default, Clone)]
pub struct ClientUpdate {
    pub name: Option<String>,
    pub grants: Option<Vec<GrantType>>,
    pub scope: Option<Scope>,
    pub redirect_uris: Option<Vec<url::Url>>,
    /// Whether it may introspect tokens of other clients (a resource server).
    pub allow_introspection: Option<bool>,
    /// `Some(None)`: back to the access tokens' algorithm.
    pub id_token_alg: Option<Option<KeyAlgorithm>>,
    pub post_logout_redirect_uris: Option<Vec<url::Url>>,
    /// `Some(None)`: no more back-channel logout.
    pub backchannel_logout_uri: Option<Option<url::Url>>,
    pub backchannel_logout_session_required: Option<bool>,
    /// Replaces the allowed origins (an empty list: none).
    pub allowed_origins: Option<Vec<Origin>>,
    /// `Some(None)`: back to the server's lifetime. A shorter one ends the client's families
    /// sooner too, counted from their start.
    pub refresh_absolute_ttl: Option<Option<Duration>>,
    pub require_dpop: Option<bool>,
    pub require_second_factor: Option<bool>,
}

/// A client after [`update`], and how many of its families a narrower scope or a shorter
/// refresh lifetime reached.
#[derive(Debug)]
pub struct Updated {
    pub client: Client,
    pub narrowed_families: usize,
    pub shortened_families: usize,
}

/// Changes a client. A narrower scope reaches its families too, in the same transaction: each
/// unrevoked family keeps only the scopes the client still has, so no refresh returns a scope
/// the client lost. So does a shorter refresh lifetime: no family outlives it.
pub fn update(
    conn: &mut AnyConnection,
    id: &ClientId,
    upd: &ClientUpdate,
) -> Result<Updated, ClientError> {
    crate::store::write_tx(conn, |c| {
        // Locked first: a family started meanwhile waits for this change (its foreign key
        // takes a share lock on the client row).
        ClientRow::lock(c, id)?;
        update_in(c, id, upd)
    })
}

fn update_in(
    conn: &mut AnyConnection,
    id: &ClientId,
    upd: &ClientUpdate,
) -> Result<Updated, ClientError> {
    let client = find(conn, id)?;
    if !client.is_public() && upd.allowed_origins.as_ref().is_some_and(|o| !o.is_empty()) {
        return Err(confidential_origins());
    }
    if upd.allow_introspection == Some(true) && client.is_public() {
        return Err(invalid(
            "a public client cannot introspect: it has no secret to prove who it is",
        ));
    }
    let changes = ClientChanges {
        name: upd
            .name
            .as_deref()
            .map(check_name)
            .transpose()?
            .map(str::to_owned),
        grant_types: upd
            .grants
            .as_deref()
            .map(|g| grants_text(g, client.is_public()))
            .transpose()?,
        scopes: upd.scope.as_ref().map(Scope::to_string),
        redirect_uris: upd.redirect_uris.as_deref().map(uris_text).transpose()?,
        allow_introspection: upd.allow_introspection,
        id_token_alg: upd.id_token_alg.map(|a| a.map(|a| a.as_str().to_owned())),
        post_logout_redirect_uris: upd
            .post_logout_redirect_uris
            .as_deref()
            .map(|u| uris_text_for("post-logout redirect URI", u))
            .transpose()?,
        backchannel_logout_uri: upd
            .backchannel_logout_uri
            .as_ref()
            .map(|u| u.as_ref().map(backchannel_text).transpose())
            .transpose()?,
        backchannel_logout_session_required: upd.backchannel_logout_session_required,
        allowed_origins: upd.allowed_origins.as_deref().map(origins_text),
        refresh_absolute_ttl_ms: upd
            .refresh_absolute_ttl
            .map(|t| t.map(refresh_ttl_ms).transpose())
            .transpose()?,
        require_dpop: upd.require_dpop,
        require_second_factor: upd.require_second_factor,
        ..ClientChanges::default()
    };
    if changes.is_empty() {
        return Err(ClientError::NothingToChange);
    }
    changes.apply(conn, id)?;
    let mut narrowed_families = 0;
    if let Some(scope) = &upd.scope {
        for (family_id, stored) in TokenFamily::unrevoked_scopes(conn, id)? {
            let before = Scope::stored(&stored);
            let after = before.intersection(scope);
            if after != before {
                TokenFamily::set_scope(conn, &family_id, &after.to_string())?;
                narrowed_families += 1;
            }
        }
    }
    let shortened_families = match changes.refresh_absolute_ttl_ms {
        Some(Some(ttl_ms)) => TokenFamily::cap_lifetime(conn, id, ttl_ms)?,
        _ => 0,
    };
    Ok(Updated {
        client: find(conn, id)?,
        narrowed_families,
        shortened_families,
    })
}

/// Replaces a confidential client's secret; the old one stops working at once.
pub fn rotate_secret(conn: &mut AnyConnection, id: &ClientId) -> Result<Secret, ClientError> {
    let client = find(conn, id)?;
    if client.is_public() {
        return Err(invalid(format!("client {id} is public: it has no secret")));
    }
    let secret = generate_secret();
    ClientChanges {
        secret_hash: Some(Some(sha256_hex(secret.expose().as_bytes()))),
        ..ClientChanges::default()
    }
    .apply(conn, id)?;
    Ok(secret)
}

/// Disables or enables a client. A disabled client fails authentication at once; its families
/// are left as they are, so enabling it again restores its users' sessions.
pub fn set_disabled(
    conn: &mut AnyConnection,
    id: &ClientId,
    disabled: bool,
    clock: &Clock,
) -> Result<Client, ClientError> {
    find(conn, id)?;
    ClientChanges {
        disabled_at: Some(disabled.then(|| clock.now())),
        ..ClientChanges::default()
    }
    .apply(conn, id)?;
    find(conn, id)
}

/// Deletes a client with its families, tokens and incidents. Refused while it has active
/// families, unless `revoke_families`.
pub fn delete(
    conn: &mut AnyConnection,
    id: &ClientId,
    revoke_families: bool,
    clock: &Clock,
) -> Result<i64, ClientError> {
    crate::store::write_tx(conn, |c| {
        // FOR UPDATE conflicts with the key-share lock a new family's foreign key takes, so no
        // login can add a family between the count and the delete.
        ClientRow::lock(c, id)?;
        find(c, id)?;
        let active = TokenFamily::count_active(c, None, Some(id), clock.now())?;
        if active > 0 && !revoke_families {
            return Err(ClientError::HasActiveFamilies {
                id: id.to_string(),
                active,
            });
        }
        ClientRow::delete(c, id)?;
        Ok(active)
    })
}

impl Client {
    pub fn is_public(&self) -> bool {
        self.secret_hash.is_none()
    }

    pub fn allows(&self, grant: GrantType) -> bool {
        self.grants.contains(&grant)
    }

    /// Checks a presented secret in constant time.
    pub fn secret_matches(&self, presented: &str) -> bool {
        match &self.secret_hash {
            Some(hash) => ct_eq(sha256_hex(presented.as_bytes()).as_bytes(), hash.as_bytes()),
            None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::is_loopback;

    #[test]
    fn loopback_is_localhost_and_the_loopback_ranges() {
        for yes in [
            "http://localhost:1/",
            "http://127.0.0.1/",
            "http://127.4.5.6/",
            "http://[::1]:8/",
        ] {
            assert!(is_loopback(&yes.parse().unwrap()), "{yes}");
        }
        for no in [
            "http://10.0.0.1/",
            "http://localhost.example/",
            "http://[::2]/",
            "urn:x",
        ] {
            assert!(!is_loopback(&no.parse().unwrap()), "{no}");
        }
    }
}
