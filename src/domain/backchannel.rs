//! Back-channel logout (OpenID Connect Back-Channel Logout 1.0): whenever a family of a client
//! with a back-channel logout URI ends (any revocation, or its absolute lifetime), the client's
//! server is told with a signed logout token, so that it ends its own session for that user.
//!
//! Durable: the notice is written to an outbox (`logout_notices`) in the transaction that ends
//! the family; a worker claims due notices (one instance each, for a lease), and records the
//! outcome: delivered, another attempt after a backoff, or given up once `retry_for` has passed
//! or the client refused it (4xx). This module has no HTTP: the worker posts.

use std::collections::HashSet;
use std::time::Duration;

use jsonwebtoken::{encode, Header};
use serde::{Deserialize, Serialize};

use crate::domain::crypto::random_id;
use crate::domain::keys::SigningKey;
use crate::store::models::logout_notice::{self, LogoutNotice};
use crate::store::models::Ended;
use crate::store::{write_tx, AnyConnection};
use crate::value::{ClientId, UnixMs};

/// The `typ` of a logout token's header (§2.4).
pub const TYP: &str = "logout+jwt";

/// The event a logout token carries (§2.4).
pub const EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";

/// The `reason` of a notice about a family that reached its absolute lifetime.
pub const EXPIRED: &str = "expired";

/// How long a logout token is valid: long enough for the app's clock, short enough that a
/// captured one is soon useless.
const TOKEN_TTL: Duration = Duration::from_secs(120);

/// Writes a notice for each distinct (client, user, session) among `ended` whose client takes
/// back-channel logout, inside the caller's transaction. A client that needs `sid` hears only
/// about families begun in a browser session. Returns how many were written.
pub fn enqueue(
    c: &mut AnyConnection,
    ended: &[Ended],
    reason: &str,
    now: UnixMs,
) -> diesel::QueryResult<usize> {
    if ended.is_empty() {
        return Ok(0);
    }
    let mut ids: Vec<&ClientId> = ended.iter().map(|e| &e.client_id).collect();
    ids.sort_unstable_by(|a, b| a.as_str().cmp(b.as_str()));
    ids.dedup();
    let takers = logout_notice::backchannel_clients(c, &ids)?;
    if takers.is_empty() {
        return Ok(0);
    }
    let mut seen = HashSet::new();
    let mut notices = Vec::new();
    for e in ended {
        let Some((_, _, sid_required)) = takers.iter().find(|(id, _, _)| *id == e.client_id) else {
            continue;
        };
        if *sid_required && e.sid.is_none() {
            continue;
        }
        // One notice per app session (or, without a session id, per user of the app): the
        // families of one sign-in end together.
        let key = (e.client_id.clone(), e.user_id.clone(), e.sid.clone());
        if !seen.insert(key) {
            continue;
        }
        notices.push(LogoutNotice {
            id: random_id(),
            client_id: e.client_id.clone(),
            user_id: e.user_id.clone(),
            sid: e.sid.clone(),
            family_id: Some(e.id.clone()),
            reason: reason.to_owned(),
            created_at: now,
            attempts: 0,
            next_attempt_at: now,
            claimed_until: None,
            delivered_at: None,
            failed_at: None,
            last_error: None,
        });
    }
    LogoutNotice::insert_all(c, &notices)
}

/// Notices the families of back-channel clients that reached their absolute lifetime by `now`
/// (at most `limit` per call), once each across instances. Returns how many notices it wrote.
pub fn notice_expired(
    conn: &mut AnyConnection,
    now: UnixMs,
    limit: i64,
) -> diesel::QueryResult<usize> {
    // Read first: most polls find nothing, and then take no write lock.
    let expired = logout_notice::unnoticed_expired(conn, now, limit)?;
    if expired.is_empty() {
        return Ok(0);
    }
    let ids: Vec<_> = expired.into_iter().map(|e| e.id).collect();
    write_tx(conn, |c| {
        // Only those no other instance marked meanwhile.
        let marked = logout_notice::mark_noticed(c, &ids, now)?;
        enqueue(c, &marked, EXPIRED, now)
    })
}

/// A logout token's claims (§2.4).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct LogoutClaims {
    pub iss: String,
    pub aud: String,
    pub iat: i64,
    pub exp: i64,
    pub jti: String,
    pub sub: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
    pub events: serde_json::Value,
}

/// Signs the logout token of `notice` with `key`, issued at `now`.
pub fn logout_token(
    key: &SigningKey,
    issuer: &str,
    notice: &LogoutNotice,
    now: UnixMs,
) -> Result<String, jsonwebtoken::errors::Error> {
    let mut header = Header::new(key.alg.jwt());
    header.typ = Some(TYP.to_owned());
    header.kid = Some(key.kid.clone());
    let claims = LogoutClaims {
        iss: issuer.to_owned(),
        aud: notice.client_id.to_string(),
        iat: now.unix_seconds(),
        exp: (now + TOKEN_TTL).unix_seconds(),
        jti: notice.id.clone(),
        sub: notice.user_id.to_string(),
        sid: notice.sid.clone(),
        events: serde_json::json!({ EVENT: {} }),
    };
    encode(&header, &claims, &key.encoding)
}

/// How delivery is retried.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Give up this long after the notice was written.
    pub retry_for: Duration,
    /// The first backoff; each next one doubles, up to `max_backoff`.
    pub first_backoff: Duration,
    pub max_backoff: Duration,
}

/// What one attempt got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attempt {
    /// A 2xx: the app ended its session.
    Delivered,
    /// The app refused the token (4xx): sending it again would not help.
    Refused(String),
    /// A network error, a timeout or a 5xx: worth another attempt.
    Failed(String),
}

/// What became of a notice after an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Delivered,
    Retried,
    GaveUp,
}

/// Records the attempt at `notice` that ended at `now`.
pub fn record(
    conn: &mut AnyConnection,
    notice: &LogoutNotice,
    attempt: &Attempt,
    policy: &RetryPolicy,
    now: UnixMs,
) -> diesel::QueryResult<Outcome> {
    match attempt {
        Attempt::Delivered => {
            LogoutNotice::delivered(conn, &notice.id, now)?;
            Ok(Outcome::Delivered)
        }
        Attempt::Refused(why) => {
            LogoutNotice::failed(conn, &notice.id, now, why)?;
            Ok(Outcome::GaveUp)
        }
        Attempt::Failed(why) => {
            let next = now + backoff(policy, notice.attempts);
            if next > notice.created_at + policy.retry_for {
                LogoutNotice::failed(conn, &notice.id, now, why)?;
                return Ok(Outcome::GaveUp);
            }
            LogoutNotice::retry_at(conn, &notice.id, next, why)?;
            Ok(Outcome::Retried)
        }
    }
}

/// The wait after the `attempts`-th attempt: `first_backoff` doubled each time, capped.
fn backoff(policy: &RetryPolicy, attempts: i64) -> Duration {
    let doublings = u32::try_from(attempts.saturating_sub(1).clamp(0, 20)).unwrap_or(20);
    policy
        .first_backoff
        .saturating_mul(2u32.saturating_pow(doublings))
        .min(policy.max_backoff)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_its_cap() {
        let p = RetryPolicy {
            retry_for: Duration::from_secs(3600),
            first_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(60),
        };
        let waits: Vec<u64> = (1..=8).map(|a| backoff(&p, a).as_secs()).collect();
        assert_eq!(waits, [1, 2, 4, 8, 16, 32, 60, 60]);
        assert_eq!(backoff(&p, i64::MAX).as_secs(), 60);
    }
}
