//! Refresh-token families: issue, liveness, rotation with reuse detection. The token format is
//! in [`refresh_token`](crate::domain::refresh_token), revocation in
//! [`revocation`].
//!
//! Invariant: a family has at most one active (unrotated) refresh token. Rotation consumes the
//! presented token with one conditional `UPDATE … WHERE rotated_at IS NULL` inside a write
//! transaction, so of any number of concurrent requests exactly one wins; the database's partial
//! unique index `refresh_tokens_one_active` enforces the invariant again underneath.

use crate::domain::crypto::{random_id, MasterKey};
use crate::domain::refresh_token::{hash_token, parse_token, token_for};
use crate::domain::revocation::{self, Families, Revocation, REUSE_DETECTED};
use crate::domain::scope::Scope;
use crate::domain::secret::Secret;
use crate::domain::Clock;
use crate::store::models::{
    NewFamily, NewIncident, NewRefreshToken, RefreshToken, TokenFamily, User,
};
use crate::store::rotation::OneStatementRotation;
use crate::store::{write_tx, AnyConnection};

/// Where a family stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FamilyState {
    /// Its current refresh token works.
    Active,
    /// Past its absolute lifetime, or its current token expired from disuse.
    Expired,
    Revoked,
}

impl FamilyState {
    pub fn as_str(self) -> &'static str {
        match self {
            FamilyState::Active => "active",
            FamilyState::Expired => "expired",
            FamilyState::Revoked => "revoked",
        }
    }
}

/// The rule for "is this family live?": unrevoked, within its absolute lifetime, and its
/// current refresh token still live ([`token_live`]). The store's `FamilyFilter::active` is
/// the same rule in SQL.
pub fn state(family: &TokenFamily, current_token_live: bool, now: i64) -> FamilyState {
    if family.revoked_at.is_some() {
        FamilyState::Revoked
    } else if family.expires_at <= now || !current_token_live {
        FamilyState::Expired
    } else {
        FamilyState::Active
    }
}

/// A refresh token is live while it is unrotated and has not expired from disuse.
pub fn token_live(token: &RefreshToken, now: i64) -> bool {
    token.rotated_at.is_none() && token.expires_at > now
}

/// Lifetimes in milliseconds.
#[derive(Debug, Clone, Copy)]
pub struct Lifetimes {
    pub idle: i64,
    pub absolute: i64,
    pub reuse_grace: i64,
}

/// Who asked: recorded with each token for the family's lineage and for incidents.
#[derive(Debug, Clone, Default)]
pub struct RequestMeta {
    pub client_ip: Option<String>,
    pub user_agent: Option<String>,
}

impl RequestMeta {
    pub fn new(client_ip: Option<String>, user_agent: Option<&str>) -> Self {
        // Bounded: the value is stored per token.
        let user_agent = user_agent.map(|ua| ua.chars().take(256).collect());
        Self {
            client_ip,
            user_agent,
        }
    }
}

/// A refresh token just issued or handed out again.
#[derive(Debug)]
pub struct Issued {
    pub family: TokenFamily,
    pub token_id: String,
    pub refresh_token: Secret,
    /// The scope granted for this request's access token.
    pub scope: Scope,
    /// True when this answers an idempotent retry with the already-issued successor.
    pub retried: bool,
}

/// What a new family is started for.
pub struct NewGrant<'a> {
    pub client_id: &'a str,
    /// The user as authenticated; see [`NewGrant::same_password`].
    pub user: &'a User,
    pub scope: &'a Scope,
    /// The grant that started it: `password`, `authorization_code`.
    pub auth_method: &'a str,
    /// Refuse if the user's password changed since `user` was read (password grant).
    pub same_password: bool,
}

/// Starts a family with its first refresh token, inside the caller's write transaction.
pub fn start_in(
    c: &mut AnyConnection,
    master: &MasterKey,
    grant: &NewGrant<'_>,
    meta: &RequestMeta,
    life: Lifetimes,
    now: i64,
) -> Result<Issued, RefreshError> {
    let user_id = grant.user.id.as_str();
    let family_id = random_id();
    let token_id = random_id();
    let refresh_token = token_for(master.refresh_key(), &token_id);
    let scope_text = grant.scope.to_string();
    let expires_at = now.saturating_add(life.absolute);
    // The user was checked before this transaction (a password hash takes a while). Lock the
    // row and check again: a password change or a disable that committed meanwhile wins, and
    // one that comes later waits for this family and then revokes it.
    User::lock(c, user_id)?;
    let current = User::find(c, user_id)?;
    let changed = current.is_none_or(|u| {
        u.disabled_at.is_some()
            || (grant.same_password && u.password_hash != grant.user.password_hash)
    });
    if changed {
        return Err(RefreshError::Invalid(
            "the user's credentials changed; sign in again",
        ));
    }
    let family = TokenFamily {
        id: family_id,
        client_id: grant.client_id.to_owned(),
        user_id: user_id.to_owned(),
        scope: scope_text,
        auth_method: grant.auth_method.to_owned(),
        created_at: now,
        expires_at,
        revoked_at: None,
        revoked_reason: None,
    };
    NewFamily {
        id: &family.id,
        client_id: &family.client_id,
        user_id,
        scope: &family.scope,
        auth_method: &family.auth_method,
        created_at: now,
        expires_at,
    }
    .insert(c)?;
    NewRefreshToken {
        id: &token_id,
        family_id: &family.id,
        parent_id: None,
        token_hash: &hash_token(refresh_token.expose()),
        issued_at: now,
        expires_at: now.saturating_add(life.idle).min(expires_at),
        client_ip: meta.client_ip.as_deref(),
        user_agent: meta.user_agent.as_deref(),
    }
    .insert(c)?;
    Ok(Issued {
        family,
        token_id,
        refresh_token,
        scope: grant.scope.clone(),
        retried: false,
    })
}

/// Why a refresh was refused. Every variant but `Scope` and `Database` is `invalid_grant`.
#[derive(Debug, thiserror::Error)]
pub enum RefreshError {
    #[error("{0}")]
    Invalid(&'static str),
    #[error("refresh token reuse detected; the token family has been revoked")]
    Reused { family_id: String },
    #[error("the requested scope exceeds the scope originally granted")]
    Scope,
    #[error(transparent)]
    Database(#[from] diesel::result::Error),
}

enum Outcome {
    Issued(Box<Issued>),
    Reused(String),
}

/// Rotates `presented`: consumes it and issues its successor in the same family.
///
/// A token already rotated is either an idempotent retry (within `reuse_grace` of its rotation,
/// its successor still unused: answered with that same successor) or a replay, which revokes
/// the whole family and records a reuse incident, committed even though the request fails.
#[allow(clippy::too_many_arguments)]
pub fn rotate(
    conn: &mut AnyConnection,
    master: &MasterKey,
    presented: &str,
    client_id: &str,
    requested: Option<&Scope>,
    meta: &RequestMeta,
    life: Lifetimes,
    clock: &Clock,
) -> Result<Issued, RefreshError> {
    let key = master.refresh_key();
    let id = parse_token(key, presented).ok_or(RefreshError::Invalid("unknown refresh token"))?;
    let hash = hash_token(presented);
    let outcome = write_tx(conn, |c| -> Result<Outcome, RefreshError> {
        let mut token = RefreshToken::find(c, &id)?
            .filter(|t| t.token_hash == hash)
            .ok_or(RefreshError::Invalid("unknown refresh token"))?;
        // Lock the family row before reading it: a revocation (reuse detected elsewhere, the
        // CLI, another instance) takes the same lock, so it either commits before this read
        // and is seen, or waits and then revokes the successor too.
        TokenFamily::lock(c, &token.family_id)?;
        let family =
            TokenFamily::find(c, &token.family_id)?.ok_or(diesel::result::Error::NotFound)?;
        // The time is read under the lock: waits for a connection or a lock do not count
        // against lifetimes or the grace window.
        let now = clock.now_ms();
        if family.client_id != client_id {
            // Worded as for an unknown token: the answer must not confirm that it is live.
            tracing::info!(family_id = %family.id, client_id, "refresh token presented by another client");
            return Err(RefreshError::Invalid("unknown refresh token"));
        }
        if family.revoked_at.is_some() {
            return Err(RefreshError::Invalid("refresh token has been revoked"));
        }
        if token.rotated_at.is_none() {
            if token.expires_at <= now || family.expires_at <= now {
                return Err(RefreshError::Invalid("refresh token has expired"));
            }
            let scope = granted_scope(c, &family, requested)?;
            let successor = random_id();
            if RefreshToken::mark_rotated(c, &token.id, &successor, now)? {
                let refresh_token = token_for(key, &successor);
                NewRefreshToken {
                    id: &successor,
                    family_id: &family.id,
                    parent_id: Some(&token.id),
                    token_hash: &hash_token(refresh_token.expose()),
                    issued_at: now,
                    expires_at: now.saturating_add(life.idle).min(family.expires_at),
                    client_ip: meta.client_ip.as_deref(),
                    user_agent: meta.user_agent.as_deref(),
                }
                .insert(c)?;
                return Ok(Outcome::Issued(Box::new(Issued {
                    family,
                    token_id: successor,
                    refresh_token,
                    scope,
                    retried: false,
                })));
            }
            // A concurrent request consumed it between our read and our update.
            token = RefreshToken::find(c, &id)?.ok_or(diesel::result::Error::NotFound)?;
        }
        let rotated_at = token.rotated_at.unwrap_or(now);
        let successor = match &token.replaced_by {
            Some(s) => RefreshToken::find(c, s)?,
            None => None,
        };
        if let Some(succ) = successor.filter(|s| {
            // abs: another instance's clock may be a little ahead of ours.
            life.reuse_grace > 0
                && (now - rotated_at).abs() <= life.reuse_grace
                && s.rotated_at.is_none()
                && s.expires_at > now
        }) {
            let scope = granted_scope(c, &family, requested)?;
            return Ok(Outcome::Issued(Box::new(Issued {
                refresh_token: token_for(key, &succ.id),
                token_id: succ.id,
                family,
                scope,
                retried: true,
            })));
        }
        let active = RefreshToken::active_in(c, &family.id)?;
        let detail = format!(
            "refresh token {} replayed; active token {}; family revoked",
            token.id,
            active.as_ref().map_or("none", |t| t.id.as_str())
        );
        let why = Revocation {
            kind: "refresh.reuse_detected",
            client_ip: meta.client_ip.as_deref(),
            detail: Some(&detail),
            ..Revocation::new(REUSE_DETECTED, Some(client_id))
        };
        if revocation::revoke_in(c, Families::One(&family.id), &why, now)? > 0 {
            NewIncident {
                id: &random_id(),
                family_id: &family.id,
                replayed_token_id: &token.id,
                active_token_id: active.as_ref().map(|t| t.id.as_str()),
                client_id,
                client_ip: meta.client_ip.as_deref(),
                user_agent: meta.user_agent.as_deref(),
                occurred_at: now,
            }
            .insert(c)?;
        }
        Ok(Outcome::Reused(family.id))
    })?;
    match outcome {
        Outcome::Issued(issued) => Ok(*issued),
        Outcome::Reused(family_id) => {
            tracing::warn!(family_id = %family_id, replayed_token_id = %id, "refresh token reuse detected; family revoked");
            Err(RefreshError::Reused { family_id })
        }
    }
}

/// The common case of a refresh on PostgreSQL, client authentication included, in one
/// statement: `None` when anything is out of the ordinary (another backend, a malformed
/// token, wrong client credentials, a token already rotated, any refusal). Nothing is
/// written then, and the caller takes the full path ([`rotate`] after authenticating the
/// client), which gives the precise answer.
pub fn rotate_for_client(
    conn: &mut AnyConnection,
    master: &MasterKey,
    presented: &str,
    client: &ClientCheck<'_>,
    meta: &RequestMeta,
    life: Lifetimes,
    clock: &Clock,
) -> Result<Option<Issued>, diesel::result::Error> {
    let AnyConnection::Postgresql(pg) = conn else {
        return Ok(None);
    };
    let key = master.refresh_key();
    let Some(id) = parse_token(key, presented) else {
        return Ok(None);
    };
    let successor = random_id();
    let refresh_token = token_for(key, &successor);
    let now = clock.now_ms();
    let family = OneStatementRotation {
        id: &id,
        hash: &hash_token(presented),
        client_id: client.id,
        client_secret_hash: client.secret_hash,
        successor: &successor,
        successor_hash: &hash_token(refresh_token.expose()),
        now,
        idle_expiry: now.saturating_add(life.idle),
        client_ip: meta.client_ip.as_deref(),
        user_agent: meta.user_agent.as_deref(),
    }
    .run(pg)?;
    Ok(family.map(|family| {
        let scope = Scope::stored(&family.scope);
        Issued {
            family,
            token_id: successor,
            refresh_token,
            scope,
            retried: false,
        }
    }))
}

/// The client as it authenticates: its id, and the SHA-256 (hex) of the secret it presented
/// (`None` for a public client, which presents none).
pub struct ClientCheck<'a> {
    pub id: &'a str,
    pub secret_hash: Option<&'a str>,
}

/// The scope for this refresh: the request's if it narrows the family's (RFC 6749 §6), else
/// the family's. Also refuses a user who has been disabled since.
fn granted_scope(
    c: &mut AnyConnection,
    family: &TokenFamily,
    requested: Option<&Scope>,
) -> Result<Scope, RefreshError> {
    let user = User::find(c, &family.user_id)?;
    if user.is_none_or(|u| u.disabled_at.is_some()) {
        return Err(RefreshError::Invalid("the user is disabled"));
    }
    let family_scope = Scope::stored(&family.scope);
    match requested {
        Some(r) if !r.is_subset_of(&family_scope) => Err(RefreshError::Scope),
        Some(r) if !r.is_empty() => Ok(r.clone()),
        _ => Ok(family_scope),
    }
}
