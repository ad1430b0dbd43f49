//! Rotation with reuse detection: the full path in a transaction, and the hot path's one
//! statement on PostgreSQL.

use super::{FamilyState, Issued, Lifetimes, RefreshError, RequestMeta};
use crate::domain::audit::{AuditKind, Event};
use crate::domain::crypto::{random_id, time_id, MasterKey};
use crate::domain::refresh_token::{hash_token, parse_token, token_for, Parsed};
use crate::domain::resource::{Requested, Targets};
use crate::domain::revocation::{self, Families, Revocation, REUSE_DETECTED};
use crate::domain::scope::Scope;
use crate::domain::Clock;
use crate::store::models::{
    NewIncident, NewRefreshToken, RefreshToken, SeenProof, TokenFamily, User,
};
use crate::store::rotation::{OneStatementRotation, ProofRecord};
use crate::store::{write_tx, AnyConnection};
use crate::value::{ClientId, FamilyId, TokenId, UnixMs};

enum Outcome {
    Issued(Box<Issued>),
    Reused(FamilyId),
}

/// What rotation needs of the server: the key that makes refresh tokens, the lifetimes, and
/// the clock.
#[derive(Clone, Copy)]
pub struct Rotator<'a> {
    pub master: &'a MasterKey,
    pub life: Lifetimes,
    pub clock: &'a Clock,
}

/// A refresh as the client asked for it.
#[derive(Clone, Copy)]
pub struct RefreshRequest<'a> {
    /// The refresh token presented.
    pub presented: &'a str,
    /// The client, authenticated.
    pub client_id: &'a ClientId,
    /// A narrower scope, if asked for (RFC 6749 §6).
    pub scope: Option<&'a Scope>,
    /// Resources, if named (RFC 8707 §2.2).
    pub resources: Option<&'a Requested>,
    pub meta: &'a RequestMeta,
    /// The thumbprint of the DPoP key the request proved it holds, if it sent a proof.
    pub dpop_jkt: Option<&'a str>,
    /// The client is public: a DPoP-bound family of it refreshes only with a proof from its
    /// key. (A confidential client's refresh token is bound to the client, RFC 9449 §5.)
    pub public_client: bool,
}

impl RefreshRequest<'_> {
    /// Whether `family` is bound to a DPoP key this request did not prove it holds. Such a
    /// request is refused before anything happens: the token is not consumed, and a rotated
    /// one presented without the key is no replay (whoever sent it cannot use the family).
    fn lacks_key_of(&self, family: &TokenFamily) -> bool {
        self.public_client
            && family
                .dpop_jkt
                .as_deref()
                .is_some_and(|bound| self.dpop_jkt != Some(bound))
    }
}

const WRONG_KEY: &str =
    "the refresh token is bound to a DPoP key: the request must carry a proof from that key";

/// Rotates `presented`: consumes it and issues its successor in the same family.
///
/// A token already rotated is either an idempotent retry (within `reuse_grace` of its rotation,
/// its successor still unused: answered with that same successor) or a replay, which revokes
/// the whole family and records a reuse incident, committed even though the request fails.
pub fn rotate(
    conn: &mut AnyConnection,
    with: &Rotator<'_>,
    req: &RefreshRequest<'_>,
) -> Result<Issued, RefreshError> {
    let parsed = parse_token(with.master.refresh_key(), req.presented)
        .ok_or(RefreshError::Invalid("unknown refresh token"))?;
    let hash = hash_token(req.presented);
    let outcome = write_tx(conn, |c| -> Result<Outcome, RefreshError> {
        let Some(token) = parsed.stored(c, &hash)? else {
            // Not stored, yet made by this server for a family it names: a rotated token whose
            // row retention pruned (active tokens never are). If its family lives, this is a
            // replay like any other.
            return replay_of_pruned(c, &parsed, req, with.clock);
        };
        // Lock the family row before reading it: a revocation (reuse detected elsewhere, the
        // CLI, another instance) takes the same lock, so it either commits before this read
        // and is seen, or waits and then revokes the successor too.
        TokenFamily::lock(c, &token.family_id)?;
        let family =
            TokenFamily::find(c, &token.family_id)?.ok_or(diesel::result::Error::NotFound)?;
        // The time is read under the lock: waits for a connection or a lock do not count
        // against lifetimes or the grace window.
        let now = with.clock.now();
        if family.client_id != *req.client_id {
            // Worded as for an unknown token: the answer must not confirm that it is live.
            tracing::info!(family_id = %family.id, client_id = %req.client_id, "refresh token presented by another client");
            return Err(RefreshError::Invalid("unknown refresh token"));
        }
        if req.lacks_key_of(&family) {
            tracing::info!(family_id = %family.id, "a DPoP-bound refresh token without a proof from its key");
            return Err(RefreshError::Invalid(WRONG_KEY));
        }
        if family.revoked_at.is_some() {
            return Err(RefreshError::Revoked);
        }
        let token = match token.rotated_at {
            Some(_) => token,
            None => match consume(c, with, req, &token, &family, now)? {
                Some(issued) => return Ok(Outcome::Issued(Box::new(issued))),
                // A concurrent request consumed it between our read and our update.
                None => RefreshToken::find(c, &token.id)?.ok_or(diesel::result::Error::NotFound)?,
            },
        };
        if let Some(issued) = grace_retry(c, with, req, &token, &family, now)? {
            return Ok(Outcome::Issued(Box::new(issued)));
        }
        revoke_for_replay(c, &family, &token.id, req, now)?;
        Ok(Outcome::Reused(family.id))
    })?;
    match outcome {
        Outcome::Issued(issued) => Ok(*issued),
        Outcome::Reused(family_id) => {
            tracing::warn!(family_id = %family_id, replayed_token_id = %parsed.id, "refresh token reuse detected; family revoked");
            Err(RefreshError::Reused { family_id })
        }
    }
}

/// The plain rotation of an unrotated `token`: refused if it or its family expired; `None`
/// when a concurrent request consumed it first.
fn consume(
    c: &mut AnyConnection,
    with: &Rotator<'_>,
    req: &RefreshRequest<'_>,
    token: &RefreshToken,
    family: &TokenFamily,
    now: UnixMs,
) -> Result<Option<Issued>, RefreshError> {
    if super::state(family, super::token_live(token, now), now) != FamilyState::Active {
        return Err(RefreshError::Expired);
    }
    let (scope, audience) = granted(c, family, req.scope, req.resources)?;
    let successor = TokenId::new(random_id());
    if !RefreshToken::mark_rotated(c, &token.id, &successor, now)? {
        return Ok(None);
    }
    let refresh_token = token_for(with.master.refresh_key(), &family.id, &successor);
    NewRefreshToken {
        id: &successor,
        family_id: &family.id,
        parent_id: Some(&token.id),
        token_hash: &hash_token(refresh_token.expose()),
        issued_at: now,
        expires_at: (now + with.life.idle).min(family.expires_at),
        client_ip: req.meta.client_ip.as_deref(),
        user_agent: req.meta.user_agent.as_deref(),
    }
    .insert(c)?;
    Ok(Some(Issued {
        family: family.clone(),
        token_id: successor,
        refresh_token,
        scope,
        audience,
        retried: false,
        nonce: None,
    }))
}

/// The successor of a rotated `token` again, if this is an idempotent retry: within the grace
/// window, the successor still unused, from the app instance that rotated (audited).
fn grace_retry(
    c: &mut AnyConnection,
    with: &Rotator<'_>,
    req: &RefreshRequest<'_>,
    token: &RefreshToken,
    family: &TokenFamily,
    now: UnixMs,
) -> Result<Option<Issued>, RefreshError> {
    let rotated_at = token.rotated_at.unwrap_or(now);
    let successor = match &token.replaced_by {
        Some(s) => RefreshToken::find(c, s)?,
        None => None,
    };
    let meta = req.meta;
    let Some(succ) = successor.filter(|s| {
        // abs: another instance's clock may be a little ahead of ours.
        !with.life.reuse_grace.is_zero()
            && now.distance(rotated_at) <= with.life.reuse_grace
            && s.rotated_at.is_none()
            && s.expires_at > now
            // The app instance that rotated retries with the same user agent; its address
            // may change (Wi-Fi to mobile). Another user agent is someone else: reuse. A
            // DPoP-bound family of a public client knows better: the retry came with a proof
            // from the family's key (checked before), which only the app holds.
            && ((req.public_client && family.dpop_jkt.is_some())
                || s.user_agent == meta.user_agent)
    }) else {
        return Ok(None);
    };
    let (scope, audience) = granted(c, family, req.scope, req.resources)?;
    let shown = |ip: &Option<String>, ua: &Option<String>| {
        format!(
            "{} {:?}",
            ip.as_deref().unwrap_or("-"),
            ua.as_deref().unwrap_or("-")
        )
    };
    let detail = format!(
        "refresh token {} retried {} ms after its rotation; rotation from {}, retry from {}",
        token.id,
        now.millis() - rotated_at.millis(),
        shown(&succ.client_ip, &succ.user_agent),
        shown(&meta.client_ip, &meta.user_agent),
    );
    Event {
        kind: AuditKind::RefreshGraceRetry,
        actor: Some(req.client_id.as_str()),
        subject: Some(family.id.as_str()),
        client_ip: meta.client_ip.as_deref(),
        detail: Some(&detail),
        request: meta.request.as_ref(),
    }
    .record(c, now);
    Ok(Some(Issued {
        refresh_token: token_for(with.master.refresh_key(), &family.id, &succ.id),
        token_id: succ.id,
        family: family.clone(),
        scope,
        audience,
        retried: true,
        nonce: None,
    }))
}

/// How the one statement ended.
pub enum OneStatement {
    Rotated(Box<Issued>),
    /// Something was out of the ordinary; nothing was written.
    Declined,
    /// The request's DPoP proof was presented before; nothing was written.
    ProofReplayed,
}

/// The common case of a refresh on PostgreSQL, client authentication and a DPoP proof's key
/// and record included, in one statement: [`OneStatement::Declined`] when anything is out of
/// the ordinary (another backend, a malformed token, wrong client credentials, a token
/// already rotated, any refusal). Nothing is written then, and the caller takes the full path
/// ([`rotate`] after authenticating the client and recording the proof), which gives the
/// precise answer.
pub fn rotate_for_client(
    conn: &mut AnyConnection,
    with: &Rotator<'_>,
    presented: &str,
    client: &ClientCheck<'_>,
    meta: &RequestMeta,
) -> Result<OneStatement, diesel::result::Error> {
    let Rotator {
        master,
        life,
        clock,
    } = *with;
    if !OneStatementRotation::supported(conn) {
        return Ok(OneStatement::Declined);
    }
    let key = master.refresh_key();
    let Some(Parsed { id, family_id }) = parse_token(key, presented) else {
        return Ok(OneStatement::Declined);
    };
    let successor = TokenId::new(random_id());
    let refresh_token = token_for(key, &family_id, &successor);
    let now = clock.now();
    let family = OneStatementRotation {
        id: &id,
        hash: &hash_token(presented),
        client_id: client.id,
        client_secret_hash: client.secret_hash,
        successor: &successor,
        successor_hash: &hash_token(refresh_token.expose()),
        now,
        idle_expiry: now + life.idle,
        client_ip: meta.client_ip.as_deref(),
        user_agent: meta.user_agent.as_deref(),
        proof: client.proof,
    }
    .run(conn);
    let family = match family {
        Err(e) if SeenProof::was_seen(&e) => return Ok(OneStatement::ProofReplayed),
        other => other?,
    };
    let Some(family) = family else {
        return Ok(OneStatement::Declined);
    };
    if family.id != family_id {
        // The MAC binds the two ids together: only a forged key could get here.
        tracing::error!(family_id = %family_id, "a refresh token named a family it is not in");
        return Err(diesel::result::Error::RollbackTransaction);
    }
    let scope = Scope::stored(&family.scope);
    let audience = Targets::stored(family.resources.as_deref());
    Ok(OneStatement::Rotated(Box::new(Issued {
        family,
        token_id: successor,
        refresh_token,
        scope,
        audience,
        retried: false,
        nonce: None,
    })))
}

/// The client as it authenticates: its id, and the SHA-256 (hex) of the secret it presented
/// (`None` for a public client, which presents none); and the request's DPoP proof, checked
/// and not yet recorded, if it came with one.
pub struct ClientCheck<'a> {
    pub id: &'a ClientId,
    pub secret_hash: Option<&'a str>,
    pub proof: Option<ProofRecord<'a>>,
}

/// The scope and the audience for this refresh: the request's if it narrows the family's
/// (RFC 6749 §6, RFC 8707 §2.2), else the family's. A narrower audience also narrows the scope
/// to what its resources accept. Also refuses a user who has been disabled since.
fn granted(
    c: &mut AnyConnection,
    family: &TokenFamily,
    requested: Option<&Scope>,
    resources: Option<&Requested>,
) -> Result<(Scope, Targets), RefreshError> {
    let user = User::find(c, &family.user_id)?;
    if user.is_none_or(|u| u.disabled_at.is_some()) {
        return Err(RefreshError::Invalid("the user is disabled"));
    }
    let family_scope = Scope::stored(&family.scope);
    let scope = match requested {
        Some(r) if !r.is_subset_of(&family_scope) => return Err(RefreshError::Scope),
        Some(r) if !r.is_empty() => r.clone(),
        _ => family_scope,
    };
    let family_targets = Targets::stored(family.resources.as_deref());
    match resources {
        None => Ok((scope, family_targets)),
        Some(r) => {
            r.within(&family_targets)?;
            let scope = r
                .scope_for(&scope)
                .ok_or(RefreshError::NoScopeForResource)?;
            Ok((scope, r.targets.clone()))
        }
    }
}

/// A replay of a token whose row was pruned: revokes its family (if it still lives and is the
/// client's) and records the incident, as for any replay.
fn replay_of_pruned(
    c: &mut AnyConnection,
    parsed: &Parsed,
    req: &RefreshRequest<'_>,
    clock: &Clock,
) -> Result<Outcome, RefreshError> {
    TokenFamily::lock(c, &parsed.family_id)?;
    let family = TokenFamily::find(c, &parsed.family_id)?
        .filter(|f| f.client_id == *req.client_id)
        .ok_or(RefreshError::Invalid("unknown refresh token"))?;
    if req.lacks_key_of(&family) {
        return Err(RefreshError::Invalid(WRONG_KEY));
    }
    if family.revoked_at.is_some() {
        return Err(RefreshError::Revoked);
    }
    revoke_for_replay(c, &family, &parsed.id, req, clock.now())?;
    Ok(Outcome::Reused(family.id))
}

/// Reuse detected: revokes the family and records the incident, in the caller's transaction.
fn revoke_for_replay(
    c: &mut AnyConnection,
    family: &TokenFamily,
    replayed_token_id: &TokenId,
    req: &RefreshRequest<'_>,
    now: UnixMs,
) -> Result<(), RefreshError> {
    let (client_id, meta) = (req.client_id, req.meta);
    let active = RefreshToken::active_in(c, &family.id)?;
    let proof = req.dpop_jkt.map_or_else(String::new, |jkt| {
        format!(" with a DPoP proof from key {jkt}")
    });
    let detail = format!(
        "refresh token {} replayed{proof}; active token {}; family revoked",
        replayed_token_id,
        active.as_ref().map_or("none", |t| t.id.as_str())
    );
    let why = Revocation {
        kind: AuditKind::RefreshReuseDetected,
        client_ip: meta.client_ip.as_deref(),
        request: meta.request.as_ref(),
        detail: Some(&detail),
        ..Revocation::new(REUSE_DETECTED, Some(client_id.as_str()))
    };
    if revocation::revoke_in(c, Families::One(&family.id), &why, now)? > 0 {
        NewIncident {
            id: &time_id(now),
            family_id: &family.id,
            replayed_token_id,
            active_token_id: active.as_ref().map(|t| &t.id),
            client_id,
            client_ip: meta.client_ip.as_deref(),
            user_agent: meta.user_agent.as_deref(),
            occurred_at: now,
            dpop_jkt: req.dpop_jkt,
        }
        .insert(c)?;
    }
    Ok(())
}
