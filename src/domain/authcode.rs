//! Authorization codes (RFC 6749 §4.1) with PKCE (RFC 7636).
//!
//! The PKCE check itself is the caller's (`grant::pkce`, through oxide-auth), so that the
//! domain links no OAuth library. Codes are single-use and live `tokens.code_ttl` (60 s at
//! most); only their SHA-256 is stored. A code presented a second time with proof of
//! possession revokes the family its first exchange started (RFC 6749 §4.1.2).

use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

use crate::domain::audit::AuditKind;
use crate::domain::crypto::{random_bytes, sha256_hex, MasterKey};
use crate::domain::family::{self, Issued, Lifetimes, NewGrant, RefreshError, RequestMeta};
use crate::domain::grant_type::GrantType;
use crate::domain::resource::{Requested, TargetError, Targets};
use crate::domain::revocation::{self, Families, Revocation, CODE_REPLAYED};
use crate::domain::scope::Scope;
use crate::domain::secret::Secret;
use crate::domain::Clock;
use crate::store::models::{AuthorizationCode, User};
use crate::store::{write_tx, AnyConnection};
use crate::value::{Amr, ClientId, UnixMs, UserId};

/// Prefix of every authorization code, so secret scanners can recognise leaked ones.
pub const CODE_PREFIX: &str = "tsc_";

/// What a code stands for.
pub struct CodeGrant<'a> {
    pub client_id: &'a ClientId,
    pub user_id: &'a UserId,
    pub scope: &'a Scope,
    /// The resource servers (RFC 8707) the request named.
    pub resources: &'a Targets,
    pub redirect_uri: &'a str,
    /// The PKCE challenge, encoded for storage by the caller.
    pub pkce: &'a str,
    /// How long the code may wait for its exchange.
    pub ttl: Duration,
    /// The authorization request named `redirect_uri`.
    pub redirect_uri_given: bool,
    /// The OpenID Connect request's `nonce`, echoed in the ID token.
    pub nonce: Option<&'a str>,
    /// When the user signed in, and the public id of the browser session they did it in.
    pub auth_time: UnixMs,
    pub sid: &'a str,
    /// The DPoP key thumbprint the request bound the code to (RFC 9449 §10).
    pub dpop_jkt: Option<&'a str>,
    /// How the user signed in.
    pub amr: &'a Amr,
}

/// Issues a code; returns it in plaintext (it goes into the redirect, never into storage).
pub fn issue(
    conn: &mut AnyConnection,
    grant: &CodeGrant<'_>,
    now: UnixMs,
) -> diesel::QueryResult<Secret> {
    let code = format!("{CODE_PREFIX}{}", URL_SAFE_NO_PAD.encode(random_bytes(32)));
    AuthorizationCode {
        code_hash: sha256_hex(code.as_bytes()),
        client_id: grant.client_id.clone(),
        user_id: grant.user_id.clone(),
        scope: grant.scope.to_string(),
        redirect_uri: grant.redirect_uri.to_owned(),
        pkce: grant.pkce.to_owned(),
        created_at: now,
        expires_at: now + grant.ttl,
        used_at: None,
        family_id: None,
        redirect_uri_given: grant.redirect_uri_given,
        resources: grant.resources.to_stored(),
        nonce: grant.nonce.map(str::to_owned),
        auth_time: Some(grant.auth_time),
        sid: Some(grant.sid.to_owned()),
        dpop_jkt: grant.dpop_jkt.map(str::to_owned),
        amr: Some(grant.amr.stored()),
    }
    .insert(conn)?;
    Ok(Secret::new(code))
}

/// Why an exchange was refused; `invalid_grant` but for `Target` and `NoScopeForResource`.
#[derive(Debug, thiserror::Error)]
pub enum ExchangeError {
    #[error("{0}")]
    Invalid(&'static str),
    #[error("the authorization code was already used; the tokens issued from it are revoked")]
    Replayed,
    /// A `resource` outside the authorization request's (RFC 8707 §2.2): `invalid_target`.
    /// Nothing is spent: the client may ask again.
    #[error(transparent)]
    Target(#[from] TargetError),
    #[error("the resource accepts none of the scopes granted")]
    NoScopeForResource,
    #[error(transparent)]
    Database(#[from] diesel::result::Error),
}

enum Outcome {
    Issued(Box<Issued>),
    Refused(ExchangeError),
}

/// A token request presenting an authorization code.
pub struct CodeExchange<'a> {
    pub code: &'a str,
    pub client_id: &'a ClientId,
    pub redirect_uri: Option<&'a str>,
    /// Whether the request's PKCE verifier answers the code's stored challenge.
    pub pkce_verifies: &'a dyn Fn(&str) -> bool,
    /// The client proved who it is with a secret (a confidential client).
    pub client_authenticated: bool,
    /// The resources the token request names, if any: some of the authorization request's.
    pub resources: Option<&'a Requested>,
    /// The thumbprint of the DPoP key the token request proved it holds.
    pub dpop_jkt: Option<&'a str>,
}

/// Exchanges a code for a new token family. A replay that proves possession of the code (an
/// authenticated client, or the right PKCE verifier) revokes the family the code started; any
/// other replay is refused and changes nothing, so that whoever saw a used code cannot sign
/// its user out. A wrong PKCE verifier spends the code. Revocations and spent codes are
/// committed although the request fails.
pub fn exchange(
    conn: &mut AnyConnection,
    master: &MasterKey,
    request: &CodeExchange<'_>,
    meta: &RequestMeta,
    life: Lifetimes,
    clock: &Clock,
) -> Result<Issued, ExchangeError> {
    let CodeExchange {
        code,
        client_id,
        redirect_uri,
        pkce_verifies,
        ..
    } = *request;
    let hash = sha256_hex(code.as_bytes());
    let outcome = write_tx(conn, |c| -> Result<Outcome, ExchangeError> {
        let now = clock.now();
        // Locked before it is read: a concurrent exchange of the same code waits, then sees
        // it used (and revokes what the first one issued).
        AuthorizationCode::lock(c, &hash)?;
        let row = AuthorizationCode::find(c, &hash)?
            .ok_or(ExchangeError::Invalid("unknown authorization code"))?;
        if row.client_id != *client_id {
            // Worded as for an unknown code: the answer must not confirm that it exists.
            tracing::info!(%client_id, "authorization code presented by another client");
            return Err(ExchangeError::Invalid("unknown authorization code"));
        }
        // RFC 9449 §10: a code bound to a key goes only with a proof from it. Refused before
        // it is spent: whoever lacks the key cannot burn the app's code.
        if row
            .dpop_jkt
            .as_deref()
            .is_some_and(|bound| request.dpop_jkt != Some(bound))
        {
            return Err(ExchangeError::Invalid(
                "the authorization code is bound to a DPoP key: the request must carry a proof from that key",
            ));
        }
        if !AuthorizationCode::consume(c, &hash, now)? {
            return unusable(c, &row, request, meta, now);
        }
        // RFC 6749 §4.1.3: the same redirect_uri as in the authorization request.
        if (row.redirect_uri_given || redirect_uri.is_some())
            && redirect_uri != Some(row.redirect_uri.as_str())
        {
            return Err(ExchangeError::Invalid(
                "redirect_uri does not match the authorization request",
            ));
        }
        if !pkce_verifies(&row.pkce) {
            // The code stays spent: no second guess at the verifier.
            return Ok(Outcome::Refused(ExchangeError::Invalid(
                "PKCE verification failed",
            )));
        }
        let issued = start_family(c, master, &row, request, meta, life, now)?;
        AuthorizationCode::set_family(c, &hash, &issued.family.id)?;
        Ok(Outcome::Issued(Box::new(issued)))
    })?;
    match outcome {
        Outcome::Issued(issued) => Ok(*issued),
        Outcome::Refused(e) => Err(e),
    }
}

/// A code that could not be consumed: expired, or used already. A replay that proves
/// possession of the code revokes the family it started; any other is refused unrecorded.
fn unusable(
    c: &mut AnyConnection,
    row: &AuthorizationCode,
    request: &CodeExchange<'_>,
    meta: &RequestMeta,
    now: UnixMs,
) -> Result<Outcome, ExchangeError> {
    let client_id = request.client_id;
    if row.used_at.is_none() {
        return Err(ExchangeError::Invalid("the authorization code has expired"));
    }
    if !(request.client_authenticated || (request.pkce_verifies)(&row.pkce)) {
        tracing::warn!(
            %client_id,
            "a used authorization code was presented again without proof of possession; refused"
        );
        return Err(ExchangeError::Invalid(
            "the authorization code was already used",
        ));
    }
    if let Some(family_id) = &row.family_id {
        let why = Revocation {
            kind: AuditKind::CodeReplayed,
            client_ip: meta.client_ip.as_deref(),
            request: meta.request.as_ref(),
            detail: Some("authorization code presented again; family revoked"),
            always_audit: true,
            ..Revocation::new(CODE_REPLAYED, Some(client_id.as_str()))
        };
        revocation::revoke_in(c, Families::One(family_id), &why, now)?;
        tracing::warn!(%family_id, %client_id, "authorization code replayed; family revoked");
    }
    Ok(Outcome::Refused(ExchangeError::Replayed))
}

/// The family the code's grant starts, and what this token request's access token is for (the
/// resources it names, if any: some of the grant's). Refused before anything is started, so
/// that the error rolls the spent code back too.
fn start_family(
    c: &mut AnyConnection,
    master: &MasterKey,
    row: &AuthorizationCode,
    request: &CodeExchange<'_>,
    meta: &RequestMeta,
    life: Lifetimes,
    now: UnixMs,
) -> Result<Issued, ExchangeError> {
    let granted = Targets::stored(row.resources.as_deref());
    if let Some(r) = request.resources {
        r.within(&granted)?;
    }
    let user =
        User::find(c, &row.user_id)?.ok_or(ExchangeError::Invalid("the user no longer exists"))?;
    let scope = Scope::stored(&row.scope);
    let grant = NewGrant {
        client_id: request.client_id,
        user: &user,
        scope: &scope,
        resources: &granted,
        auth_method: GrantType::AuthorizationCode.as_str(),
        same_password: false,
        auth_time: Some(row.auth_time.unwrap_or(row.created_at)),
        sid: row.sid.as_deref(),
        dpop_jkt: request.dpop_jkt,
        amr: &Amr::parse(row.amr.as_deref()),
    };
    let mut issued = family::start_in(c, master, &grant, meta, life, now).map_err(|e| match e {
        RefreshError::Database(d) => ExchangeError::Database(d),
        _ => ExchangeError::Invalid("the user is disabled"),
    })?;
    issued.nonce = row.nonce.clone();
    if let Some(r) = request.resources {
        // The family keeps every resource of the grant; this access token is for these.
        issued.scope = r
            .scope_for(&issued.scope)
            .ok_or(ExchangeError::NoScopeForResource)?;
        issued.audience = r.targets.clone();
    }
    Ok(issued)
}
