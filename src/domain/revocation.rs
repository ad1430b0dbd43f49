//! Revoking token families: the one place that marks families revoked and records who did it
//! and why, in the same transaction. Reuse detection, a replayed authorization code, a client's
//! RFC 7009 request, a password change, a disabled user, a sign-out and the admin CLI all
//! come through here, and so the apps of every family it ends are told (back-channel logout).

use crate::domain::audit::{AuditKind, Event};
use crate::domain::backchannel;
use crate::domain::request::RequestIds;
use crate::store::models::{FamiliesOf, TokenFamily};
use crate::store::{write_tx, AnyConnection};
use crate::value::{ClientId, FamilyId, UnixMs, UserId};

/// `revoked_reason` of a family killed by reuse detection.
pub const REUSE_DETECTED: &str = "reuse_detected";
/// `revoked_reason` of a family whose authorization code was presented again.
pub const CODE_REPLAYED: &str = "code_replayed";
/// `revoked_reason` of a family revoked through the revocation endpoint.
pub const REVOKED_BY_CLIENT: &str = "revoked_by_client";
/// `revoked_reason` the admin CLI records unless told otherwise.
pub const REVOKED_BY_ADMIN: &str = "revoked_by_admin";
/// `revoked_reason` of families revoked because their user's password was changed.
pub const PASSWORD_CHANGED: &str = "password_changed";
/// `revoked_reason` of families revoked because their user was disabled.
pub const USER_DISABLED: &str = "user_disabled";
/// `revoked_reason` of families begun in a browser session the user signed out of.
pub const SIGNED_OUT: &str = "signed_out";
/// `revoked_reason` of families revoked because an administrator reset the user's second factors.
pub const SECOND_FACTOR_RESET: &str = "second_factor_reset";

/// Which families to revoke. Families already revoked are left as they are.
#[derive(Debug, Clone, Copy)]
pub enum Families<'a> {
    One(&'a FamilyId),
    /// Every family of the user with this id.
    OfUser(&'a UserId),
    /// Every family of the client with this id.
    OfClient(&'a ClientId),
    /// Every family begun in the browser session with this public id (OpenID Connect `sid`).
    OfSession(&'a str),
    /// Every family of the user but those begun in the browser session `sid`.
    OfUserExceptSession {
        user_id: &'a UserId,
        sid: &'a str,
    },
    /// Every family of the user at one client.
    OfUserAtClient {
        user_id: &'a UserId,
        client_id: &'a ClientId,
    },
}

/// Why, and by whom: `reason` is stored on each family, the rest goes into the audit event.
#[derive(Debug, Clone, Copy)]
pub struct Revocation<'a> {
    pub reason: &'a str,
    /// The audit event's kind: `family.revoked`, `refresh.reuse_detected`, `code.replayed`.
    pub kind: AuditKind,
    pub actor: Option<&'a str>,
    /// The audit event's subject; the family's id when `None` and one family is revoked.
    pub subject: Option<&'a str>,
    pub client_ip: Option<&'a str>,
    /// The request that asked, for the audit event.
    pub request: Option<&'a RequestIds>,
    /// The audit event's detail; `None`: how many were revoked, what was asked for
    /// ([`Revocation::about`]), and the reason.
    pub detail: Option<&'a str>,
    /// What was asked for, in words, for the default detail: `every active family of user x`.
    pub about: Option<&'a str>,
    /// Record the event even when every family was revoked already: a request that is itself
    /// worth knowing about (an admin's command, a client's revocation, a replayed code).
    pub always_audit: bool,
}

impl<'a> Revocation<'a> {
    /// A plain revocation (`family.revoked`) for `reason` by `actor`.
    pub fn new(reason: &'a str, actor: Option<&'a str>) -> Self {
        Self {
            reason,
            kind: AuditKind::FamilyRevoked,
            actor,
            subject: None,
            client_ip: None,
            request: None,
            detail: None,
            about: None,
            always_audit: false,
        }
    }
}

/// Revokes `families` inside the caller's write transaction and, when any changed (or
/// [`Revocation::always_audit`]), records the audit event there too. Returns how many were
/// revoked.
pub fn revoke_in(
    c: &mut AnyConnection,
    families: Families<'_>,
    why: &Revocation<'_>,
    now: UnixMs,
) -> diesel::QueryResult<usize> {
    let ended = match families {
        Families::One(id) => TokenFamily::revoke(c, id, why.reason, now)?,
        Families::OfUser(user_id) => {
            let of = FamiliesOf {
                user_id: Some(user_id),
                ..FamiliesOf::default()
            };
            TokenFamily::revoke_where(c, of, why.reason, now)?
        }
        Families::OfClient(client_id) => {
            let of = FamiliesOf {
                client_id: Some(client_id),
                ..FamiliesOf::default()
            };
            TokenFamily::revoke_where(c, of, why.reason, now)?
        }
        Families::OfSession(sid) => {
            let of = FamiliesOf {
                sid: Some(sid),
                ..FamiliesOf::default()
            };
            TokenFamily::revoke_where(c, of, why.reason, now)?
        }
        Families::OfUserExceptSession { user_id, sid } => {
            let of = FamiliesOf {
                user_id: Some(user_id),
                except_sid: Some(sid),
                ..FamiliesOf::default()
            };
            TokenFamily::revoke_where(c, of, why.reason, now)?
        }
        Families::OfUserAtClient { user_id, client_id } => {
            let of = FamiliesOf {
                user_id: Some(user_id),
                client_id: Some(client_id),
                ..FamiliesOf::default()
            };
            TokenFamily::revoke_where(c, of, why.reason, now)?
        }
    };
    let revoked = ended.len();
    // Their apps hear of it (back-channel logout), once this transaction commits.
    backchannel::enqueue(c, &ended, why.reason, now)?;
    if revoked > 0 || why.always_audit {
        let counted = match why.about {
            Some(about) => format!("{revoked} families revoked ({about}): {}", why.reason),
            None => format!("{revoked} families revoked: {}", why.reason),
        };
        let id = match families {
            Families::One(id) => id.as_str(),
            Families::OfUser(id) => id.as_str(),
            Families::OfClient(id) => id.as_str(),
            Families::OfSession(sid) => sid,
            Families::OfUserExceptSession { user_id, .. }
            | Families::OfUserAtClient { user_id, .. } => user_id.as_str(),
        };
        Event {
            kind: why.kind,
            actor: why.actor,
            subject: why.subject.or(Some(id)),
            client_ip: why.client_ip,
            detail: Some(why.detail.unwrap_or(&counted)),
            request: why.request,
        }
        .record(c, now);
    }
    Ok(revoked)
}

/// [`revoke_in`] in a write transaction of its own.
pub fn revoke(
    conn: &mut AnyConnection,
    families: Families<'_>,
    why: &Revocation<'_>,
    now: UnixMs,
) -> diesel::QueryResult<usize> {
    write_tx(conn, |c| revoke_in(c, families, why, now))
}
