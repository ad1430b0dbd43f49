//! Refresh-token families: issue and liveness here, rotation with reuse detection in
//! [`rotation`]. The token format is in [`refresh_token`](crate::domain::refresh_token),
//! revocation in [`revocation`](crate::domain::revocation).
//!
//! Invariant: a family has at most one active (unrotated) refresh token. Rotation consumes the
//! presented token with one conditional `UPDATE … WHERE rotated_at IS NULL` inside a write
//! transaction, so of any number of concurrent requests exactly one wins; the database's partial
//! unique index `refresh_tokens_one_active` enforces the invariant again underneath.

pub mod rotation;

pub use crate::domain::request::RequestMeta;
pub use rotation::{rotate, rotate_for_client, ClientCheck, OneStatement, RefreshRequest, Rotator};

use std::time::Duration;

use crate::domain::crypto::{random_id, time_id, MasterKey};
use crate::domain::refresh_token::{hash_token, token_for};
use crate::domain::resource::{TargetError, Targets};
use crate::domain::scope::Scope;
use crate::domain::secret::Secret;
use crate::store::models::{
    ClientRow, NewFamily, NewRefreshToken, RefreshToken, TokenFamily, User,
};
use crate::store::AnyConnection;
use crate::value::{Amr, ClientId, FamilyId, TokenId, UnixMs};

/// Where a family stands. Serialized as [`FamilyState::as_str`].
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
/// current refresh token still live ([`token_live`]). The same rule in SQL, for the queries
/// and the one-statement rotation, is `store::models::{family_live, token_live}`; the
/// differential test (`tests/api/differential.rs`) holds the two to the same answers.
pub fn state(family: &TokenFamily, current_token_live: bool, now: UnixMs) -> FamilyState {
    if family.revoked_at.is_some() {
        FamilyState::Revoked
    } else if family.expires_at <= now || !current_token_live {
        FamilyState::Expired
    } else {
        FamilyState::Active
    }
}

/// Where one refresh token of a family stands. Serialized as [`TokenState::as_str`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenState {
    /// Its family is active and it is the family's current token.
    Active,
    /// Consumed by a refresh; presenting it again is a replay (or a grace retry).
    Rotated,
    /// Unrotated, but it or its family expired.
    Expired,
    /// Its family was revoked.
    Revoked,
}

impl TokenState {
    /// The shown name: `active`, `rotated`, `expired`, `revoked`.
    pub fn as_str(self) -> &'static str {
        match self {
            TokenState::Active => "active",
            TokenState::Rotated => "rotated",
            TokenState::Expired => "expired",
            TokenState::Revoked => "revoked",
        }
    }

    /// The state of `token` in `family`: rotated, or else its family's state as this token
    /// makes it.
    pub fn of(token: &RefreshToken, family: &TokenFamily, now: UnixMs) -> Self {
        if token.rotated_at.is_some() {
            return TokenState::Rotated;
        }
        match state(family, token_live(token, now), now) {
            FamilyState::Active => TokenState::Active,
            FamilyState::Expired => TokenState::Expired,
            FamilyState::Revoked => TokenState::Revoked,
        }
    }
}

/// Both states are shown by their names, as `as_str` spells them (one spelling, not two).
macro_rules! serialize_as_str {
    ($($t:ty),*) => {$(
        impl serde::Serialize for $t {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }
    )*};
}
serialize_as_str!(FamilyState, TokenState);

/// A refresh token is live while it is unrotated and has not expired from disuse (in SQL:
/// `store::models::token_live`).
pub fn token_live(token: &RefreshToken, now: UnixMs) -> bool {
    token.rotated_at.is_none() && token.expires_at > now
}

/// Lifetimes in milliseconds.
#[derive(Debug, Clone, Copy)]
pub struct Lifetimes {
    pub idle: Duration,
    pub absolute: Duration,
    pub reuse_grace: Duration,
}

/// A refresh token just issued or handed out again.
#[derive(Debug)]
pub struct Issued {
    pub family: TokenFamily,
    pub token_id: TokenId,
    pub refresh_token: Secret,
    /// The scope granted for this request's access token.
    pub scope: Scope,
    /// The resources (RFC 8707) this request's access token is for; empty: the issuer.
    pub audience: Targets,
    /// True when this answers an idempotent retry with the already-issued successor.
    pub retried: bool,
    /// The authorization request's OpenID Connect `nonce`, when a code exchange started the
    /// family: its ID token echoes it (a refresh's never does).
    pub nonce: Option<String>,
}

/// What a new family is started for.
pub struct NewGrant<'a> {
    pub client_id: &'a ClientId,
    /// The user as authenticated; see [`NewGrant::same_password`].
    pub user: &'a User,
    pub scope: &'a Scope,
    /// The resource servers (RFC 8707) it is for; empty: none.
    pub resources: &'a Targets,
    /// The grant that started it: `password`, `authorization_code`.
    pub auth_method: &'a str,
    /// Refuse if the user's password changed since `user` was read (password grant).
    pub same_password: bool,
    /// When the user signed in (OpenID Connect `auth_time`); `None`: now.
    pub auth_time: Option<UnixMs>,
    /// The public id of the browser session the user signed in with, if any.
    pub sid: Option<&'a str>,
    /// The thumbprint of the DPoP key the request proved it holds (RFC 9449): the family's
    /// tokens are bound to it.
    pub dpop_jkt: Option<&'a str>,
    /// How the user signed in (RFC 8176).
    pub amr: &'a Amr,
}

/// Starts a family with its first refresh token, inside the caller's write transaction.
pub fn start_in(
    c: &mut AnyConnection,
    master: &MasterKey,
    grant: &NewGrant<'_>,
    meta: &RequestMeta,
    life: Lifetimes,
    now: UnixMs,
) -> Result<Issued, RefreshError> {
    let user_id = &grant.user.id;
    let family_id = FamilyId::new(time_id(now));
    let token_id = TokenId::new(random_id());
    let refresh_token = token_for(master.refresh_key(), &family_id, &token_id);
    // What the client may still ask for, read in this transaction: its scope may have been
    // narrowed since the grant's scope was worked out (a password hash, a code up to a minute
    // old), and `client update` narrows only the families that exist when it runs.
    let client = ClientRow::find(c, grant.client_id)?
        .ok_or(RefreshError::Invalid("the client no longer exists"))?;
    let scope = grant.scope.intersection(&Scope::stored(&client.scopes));
    let scope_text = scope.to_string();
    // A client may cap its families' lifetime below the server's (a browser app's refresh
    // tokens live where scripts can reach them: the browser-apps BCP asks for a short one).
    let absolute = client
        .refresh_absolute_ttl_ms
        .and_then(|ms| u64::try_from(ms).ok())
        .map_or(life.absolute, |ms| {
            life.absolute.min(Duration::from_millis(ms))
        });
    let expires_at = now + absolute;
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
        client_id: grant.client_id.clone(),
        user_id: user_id.clone(),
        scope: scope_text,
        auth_method: grant.auth_method.to_owned(),
        created_at: now,
        expires_at,
        revoked_at: None,
        revoked_reason: None,
        resources: grant.resources.to_stored(),
        auth_time: Some(grant.auth_time.unwrap_or(now)),
        sid: grant.sid.map(str::to_owned),
        dpop_jkt: grant.dpop_jkt.map(str::to_owned),
        amr: Some(grant.amr.stored()),
    };
    NewFamily {
        id: &family.id,
        client_id: &family.client_id,
        user_id,
        scope: &family.scope,
        auth_method: &family.auth_method,
        created_at: now,
        expires_at,
        resources: family.resources.as_deref(),
        auth_time: family.auth_time,
        sid: family.sid.as_deref(),
        dpop_jkt: family.dpop_jkt.as_deref(),
        amr: family.amr.as_deref(),
    }
    .insert(c)?;
    NewRefreshToken {
        id: &token_id,
        family_id: &family.id,
        parent_id: None,
        token_hash: &hash_token(refresh_token.expose()),
        issued_at: now,
        expires_at: (now + life.idle).min(expires_at),
        client_ip: meta.client_ip.as_deref(),
        user_agent: meta.user_agent.as_deref(),
    }
    .insert(c)?;
    Ok(Issued {
        family,
        token_id,
        refresh_token,
        scope,
        audience: grant.resources.clone(),
        retried: false,
        nonce: None,
    })
}

/// Why a refresh was refused. Every variant but `Scope` and `Database` is `invalid_grant`.
#[derive(Debug, thiserror::Error)]
pub enum RefreshError {
    #[error("{0}")]
    Invalid(&'static str),
    #[error("refresh token has expired")]
    Expired,
    #[error("refresh token has been revoked")]
    Revoked,
    #[error("refresh token reuse detected; the token family has been revoked")]
    Reused { family_id: FamilyId },
    #[error("the requested scope exceeds the scope originally granted")]
    Scope,
    #[error("the resource accepts none of the scopes granted")]
    NoScopeForResource,
    #[error(transparent)]
    Target(#[from] TargetError),
    #[error(transparent)]
    Database(#[from] diesel::result::Error),
}
