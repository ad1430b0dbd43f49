//! Sign-in sessions, CSRF tokens and remembered consent for Tessera's own pages.

use std::time::Duration;

use crate::domain::secret::Secret;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ring::hmac;

use crate::domain::crypto::{random_bytes, sha256_hex, MasterKey};
use crate::domain::request::RequestMeta;
use crate::domain::resource::Targets;
use crate::domain::revocation::{self, Families, Revocation};
use crate::domain::scope::Scope;
use crate::store::models::{Consent, Session, User};
use crate::store::{write_tx, AnyConnection};
use crate::value::{Amr, ClientId, UnixMs, UserId};

/// `value.mac`: a random value signed with the cookie key.
fn sign(master: &MasterKey, value: &str) -> String {
    let mac = hmac::sign(master.cookie_key(), value.as_bytes());
    format!("{value}.{}", URL_SAFE_NO_PAD.encode(mac.as_ref()))
}

/// The value inside a signed cookie, if the signature holds.
fn verify(master: &MasterKey, signed: &str) -> Option<String> {
    let (value, mac) = signed.rsplit_once('.')?;
    let mac = URL_SAFE_NO_PAD.decode(mac).ok()?;
    hmac::verify(master.cookie_key(), value.as_bytes(), &mac).ok()?;
    Some(value.to_owned())
}

/// Session lifetimes in milliseconds.
#[derive(Debug, Clone, Copy)]
pub struct SessionLimits {
    pub idle: Duration,
    pub absolute: Duration,
}

/// Starts a session; returns the cookie value. Only the id's hash is stored.
pub fn start_session(
    conn: &mut AnyConnection,
    master: &MasterKey,
    user_id: &UserId,
    amr: &Amr,
    now: UnixMs,
) -> diesel::QueryResult<Secret> {
    carry_session(conn, master, user_id, (amr, now), now)
}

/// A new session (a new cookie) for a sign-in made at `signed_in_at` with `amr`: what a
/// password change gives the browser that made it. It claims no more than that sign-in did,
/// and ends when that sign-in would have.
pub fn carry_session(
    conn: &mut AnyConnection,
    master: &MasterKey,
    user_id: &UserId,
    (amr, signed_in_at): (&Amr, UnixMs),
    now: UnixMs,
) -> diesel::QueryResult<Secret> {
    let id = URL_SAFE_NO_PAD.encode(random_bytes(32));
    Session {
        id_hash: sha256_hex(id.as_bytes()),
        user_id: user_id.clone(),
        created_at: signed_in_at,
        last_seen_at: now,
        amr: Some(amr.stored()),
    }
    .insert(conn)?;
    Ok(Secret::new(sign(master, &id)))
}

/// A browser's sign-in, as a session cookie shows it.
#[derive(Debug, Clone)]
pub struct SignedIn {
    pub user: User,
    /// The session's public id (OpenID Connect `sid`): names the session in ID and logout
    /// tokens, and cannot be turned back into the cookie or its stored hash.
    pub sid: String,
    /// When the user signed in (`auth_time`).
    pub auth_time: UnixMs,
    /// How they signed in.
    pub amr: Amr,
}

/// The public id of the session whose id hashes to `id_hash`.
fn public_sid(id_hash: &str) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, format!("sid:{id_hash}").as_bytes());
    URL_SAFE_NO_PAD.encode(&digest.as_ref()[..18])
}

/// The sign-in of a session cookie: the signature holds, the session exists, is within its
/// idle and absolute lifetimes, and its user is enabled. Refreshes the idle clock.
pub fn session_user(
    conn: &mut AnyConnection,
    master: &MasterKey,
    cookie: &str,
    limits: SessionLimits,
    now: UnixMs,
) -> diesel::QueryResult<Option<SignedIn>> {
    let Some(id) = verify(master, cookie) else {
        return Ok(None);
    };
    let hash = sha256_hex(id.as_bytes());
    let Some(session) = Session::find(conn, &hash)? else {
        return Ok(None);
    };
    if now.since(session.last_seen_at) > limits.idle
        || now.since(session.created_at) > limits.absolute
    {
        Session::delete(conn, &hash)?;
        return Ok(None);
    }
    let Some(user) = User::find(conn, &session.user_id)?.filter(|u| u.disabled_at.is_none()) else {
        return Ok(None);
    };
    Session::touch(conn, &hash, now)?;
    Ok(Some(SignedIn {
        user,
        sid: public_sid(&hash),
        auth_time: session.created_at,
        amr: Amr::parse(session.amr.as_deref()),
    }))
}

/// Ends the session of a cookie, if any.
pub fn end_session(
    conn: &mut AnyConnection,
    master: &MasterKey,
    cookie: &str,
) -> diesel::QueryResult<()> {
    if let Some(id) = verify(master, cookie) {
        Session::delete(conn, &sha256_hex(id.as_bytes()))?;
    }
    Ok(())
}

/// A sign-out: the session that ended.
#[derive(Debug, Clone)]
pub struct SignedOut {
    /// Its public id (`sid`).
    pub sid: String,
    pub user_id: UserId,
}

/// Signs the browser of `cookie` out: ends its session and every token family begun in it
/// (reason `signed_out`), so that the apps the user signed in to through this browser are
/// signed out too, in one transaction. `None`: no session stood.
pub fn sign_out(
    conn: &mut AnyConnection,
    master: &MasterKey,
    cookie: &str,
    meta: &RequestMeta,
    now: UnixMs,
) -> diesel::QueryResult<Option<SignedOut>> {
    let Some(id) = verify(master, cookie) else {
        return Ok(None);
    };
    let hash = sha256_hex(id.as_bytes());
    write_tx(conn, |c| {
        let Some(session) = Session::find(c, &hash)? else {
            return Ok(None);
        };
        Session::delete(c, &hash)?;
        let sid = public_sid(&hash);
        let why = Revocation {
            client_ip: meta.client_ip.as_deref(),
            request: meta.request.as_ref(),
            about: Some("begun in the browser session signed out of"),
            ..Revocation::new(revocation::SIGNED_OUT, Some(session.user_id.as_str()))
        };
        revocation::revoke_in(c, Families::OfSession(&sid), &why, now)?;
        Ok(Some(SignedOut {
            sid,
            user_id: session.user_id,
        }))
    })
}

/// The cookie of a sign-in whose password was right and whose second step is due: the user
/// and until when, signed. It is no session: it only lets the browser answer the second step.
pub fn pending_second_step(master: &MasterKey, user_id: &UserId, expires_at: UnixMs) -> String {
    let nonce = URL_SAFE_NO_PAD.encode(random_bytes(16));
    sign(
        master,
        &format!("second-step:{user_id}:{}:{nonce}", expires_at.millis()),
    )
}

/// The user a second-step cookie is for, while it has not expired.
pub fn pending_user(master: &MasterKey, cookie: &str, now: UnixMs) -> Option<UserId> {
    let value = verify(master, cookie)?;
    let mut parts = value.strip_prefix("second-step:")?.splitn(3, ':');
    let user_id = parts.next()?;
    let expires_at = UnixMs::from_millis(parts.next()?.parse().ok()?);
    (expires_at > now).then(|| UserId::from(user_id))
}

/// A new value for the CSRF cookie.
pub fn new_csrf_cookie() -> String {
    URL_SAFE_NO_PAD.encode(random_bytes(32))
}

/// The token a form must carry for this CSRF cookie.
pub fn csrf_token(master: &MasterKey, csrf_cookie: &str) -> String {
    form_mac(master, &format!("csrf:{csrf_cookie}"))
}

/// Whether `token` belongs to `csrf_cookie` (constant time).
pub fn csrf_ok(master: &MasterKey, csrf_cookie: Option<&str>, token: Option<&str>) -> bool {
    match csrf_cookie {
        Some(cookie) if !cookie.is_empty() => form_mac_ok(master, &format!("csrf:{cookie}"), token),
        _ => false,
    }
}

/// The token the consent form carries: bound to the CSRF cookie and to the exact
/// authorization request the page shows (its query string: client, redirect URI, scope, PKCE
/// challenge), so that no other request can be approved with it.
pub fn consent_token(master: &MasterKey, csrf_cookie: &str, authorize: &str) -> String {
    form_mac(master, &format!("consent:{csrf_cookie}\n{authorize}"))
}

/// Whether `token` was made by [`consent_token`] for this cookie and request (constant time).
pub fn consent_token_ok(
    master: &MasterKey,
    csrf_cookie: Option<&str>,
    authorize: &str,
    token: Option<&str>,
) -> bool {
    match csrf_cookie {
        Some(cookie) if !cookie.is_empty() => {
            form_mac_ok(master, &format!("consent:{cookie}\n{authorize}"), token)
        }
        _ => false,
    }
}

fn form_mac(master: &MasterKey, message: &str) -> String {
    URL_SAFE_NO_PAD.encode(hmac::sign(master.cookie_key(), message.as_bytes()).as_ref())
}

fn form_mac_ok(master: &MasterKey, message: &str, token: Option<&str>) -> bool {
    token
        .and_then(|t| URL_SAFE_NO_PAD.decode(t).ok())
        .is_some_and(|mac| hmac::verify(master.cookie_key(), message.as_bytes(), &mac).is_ok())
}

/// Whether the user already allowed the client every scope in `scope`, at every resource in
/// `resources`: a consent page that named other resources (or none) did not ask about these.
pub fn consent_covers(
    conn: &mut AnyConnection,
    user_id: &UserId,
    client_id: &ClientId,
    scope: &Scope,
    resources: &Targets,
) -> diesel::QueryResult<bool> {
    Ok(Consent::find(conn, user_id, client_id)?.is_some_and(|c| {
        scope.is_subset_of(&Scope::stored(&c.scope))
            && resources.is_subset_of(&Targets::stored(c.resources.as_deref()))
    }))
}

/// Remembers that the user allowed `scope` at `resources` (added to what they allowed
/// before).
pub fn remember_consent(
    conn: &mut AnyConnection,
    user_id: &UserId,
    client_id: &ClientId,
    (scope, resources): (&Scope, &Targets),
    now: UnixMs,
) -> diesel::QueryResult<()> {
    let (scope_before, resources_before) = Consent::find(conn, user_id, client_id)?
        .map(|c| {
            (
                Scope::stored(&c.scope),
                Targets::stored(c.resources.as_deref()),
            )
        })
        .unwrap_or_default();
    Consent {
        user_id: user_id.clone(),
        client_id: client_id.clone(),
        scope: scope_before.union(scope).to_string(),
        granted_at: now,
        resources: resources_before.union(resources).to_stored(),
    }
    .save(conn)
}

/// Forgets the user's consent for a client: the next authorization request asks again.
/// Returns whether there was one.
pub fn forget_consent(
    conn: &mut AnyConnection,
    user_id: &UserId,
    client_id: &ClientId,
) -> diesel::QueryResult<bool> {
    Consent::delete(conn, user_id, client_id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signed_values_and_csrf_tokens_verify_only_as_issued() {
        let m = MasterKey::from_bytes(&[3u8; 32]).unwrap();
        let other = MasterKey::from_bytes(&[4u8; 32]).unwrap();
        let signed = sign(&m, "abc");
        assert_eq!(verify(&m, &signed).as_deref(), Some("abc"));
        assert_eq!(verify(&other, &signed), None);
        assert_eq!(verify(&m, "abc.AAAA"), None);
        let cookie = new_csrf_cookie();
        let token = csrf_token(&m, &cookie);
        assert!(csrf_ok(&m, Some(&cookie), Some(&token)));
        assert!(!csrf_ok(&m, Some(&new_csrf_cookie()), Some(&token)));
        assert!(!csrf_ok(&m, None, Some(&token)));
        assert!(!csrf_ok(&m, Some(&cookie), None));
        assert!(!csrf_ok(&other, Some(&cookie), Some(&token)));
    }
}
