//! Throttling of failed password attempts, per client IP and per username. Counters live in the
//! database, so every instance sees the same ones.
//!
//! Only failures count against a limit. So that parallel guesses cannot all slip in under it
//! while their passwords are being checked, a sign-in holds a place under each of its keys
//! until its outcome is known ([`Policy::admit`], [`Policy::settle`]): an attempt goes ahead
//! only while failures plus places held stay below the limit, waits while places held could
//! still turn into successes, and is refused once the failures alone reach it. No connection is
//! held while a password is hashed, or while an attempt waits.
//!
//! The client IP is checked first: an address over its limit is refused before its username is
//! looked at, so it writes nothing per username. The first refusal under a key in a window is
//! audited; the rest are only counted.

use std::time::Duration;

use crate::store::models::LoginFailures;
use crate::store::AnyConnection;

/// Limits from `[throttle]`.
#[derive(Debug, Clone, Copy)]
pub struct Policy {
    pub per_user: i64,
    pub per_ip: i64,
    pub window_ms: i64,
    /// Longest an attempt waits for sign-ins in flight to finish (`passwords.max_wait`).
    pub max_wait: Duration,
}

/// A place held longer than this belongs to an instance that stopped mid-sign-in: a password
/// check takes well under a second, and waits for a hashing slot at most `passwords.max_wait`.
pub const PLACE_LEASE_MS: i64 = 60_000;

pub fn user_key(username: &str) -> String {
    format!("user:{username}")
}

pub fn ip_key(ip: &str) -> String {
    format!("ip:{ip}")
}

/// Whether a sign-in attempt may check its password now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Admission {
    /// Go ahead: a place is held under every key until [`Policy::settle`].
    Go,
    /// Sign-ins in flight could still reach the limit: ask again shortly.
    Wait,
    /// Refused under `key` (the IP's or the username's); `first` when it is the first refusal
    /// under that key in this window, the one to audit.
    Refused { key: String, first: bool },
}

/// How an admitted sign-in ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The right password: the username's failures are cleared; the IP's stay (one account an
    /// attacker controls must not reset the count for the others they try).
    Succeeded,
    /// A wrong password, an unknown or a disabled user: one failure under every key.
    Failed,
    /// Not decided (no hashing slot, an error after the check): counts as nothing.
    Abandoned,
}

impl Policy {
    /// The keys an attempt counts under with their limits, the IP's first.
    fn keys(&self, username: Option<&str>, ip: Option<&str>) -> Vec<(String, i64)> {
        let mut keys = Vec::with_capacity(2);
        if let Some(ip) = ip {
            keys.push((ip_key(ip), self.per_ip));
        }
        if let Some(name) = username {
            keys.push((user_key(name), self.per_user));
        }
        keys
    }

    /// Brings a row up to `now`: a window that has passed starts again, places held past their
    /// lease are let go.
    fn catch_up(&self, row: &mut LoginFailures, now: i64) {
        if row.window_start <= now.saturating_sub(self.window_ms) {
            row.failures = 0;
            row.refused = 0;
            row.window_start = now;
        }
        if row.pending > 0 && row.pending_since <= now.saturating_sub(PLACE_LEASE_MS) {
            row.pending = 0;
        }
    }

    /// Decides whether an attempt for `username` (`None` for a name that cannot exist) from
    /// `ip` may check its password, and holds its places when it may. Call in a transaction.
    pub fn admit(
        &self,
        conn: &mut AnyConnection,
        username: Option<&str>,
        ip: Option<&str>,
        now: i64,
    ) -> diesel::QueryResult<Admission> {
        let mut held = Vec::with_capacity(2);
        for (key, limit) in self.keys(username, ip) {
            let mut row = LoginFailures::lock(conn, &key, now)?;
            self.catch_up(&mut row, now);
            let admission = if row.failures >= limit {
                row.refused += 1;
                row.save(conn)?;
                Admission::Refused {
                    key,
                    first: row.refused == 1,
                }
            } else if row.failures + row.pending >= limit {
                Admission::Wait
            } else {
                held.push(row);
                continue;
            };
            // Rows this check created and did not use are not kept.
            for row in held.iter().filter(|r| r.is_empty()) {
                row.save(conn)?;
            }
            return Ok(admission);
        }
        for mut row in held {
            row.pending += 1;
            row.pending_since = now;
            row.save(conn)?;
        }
        Ok(Admission::Go)
    }

    /// Gives back the places an admitted attempt held, and counts its outcome.
    pub fn settle(
        &self,
        conn: &mut AnyConnection,
        username: Option<&str>,
        ip: Option<&str>,
        outcome: Outcome,
        now: i64,
    ) -> diesel::QueryResult<()> {
        let user = username.map(user_key);
        for (key, _) in self.keys(username, ip) {
            let mut row = LoginFailures::lock(conn, &key, now)?;
            self.catch_up(&mut row, now);
            row.pending = (row.pending - 1).max(0);
            match outcome {
                Outcome::Failed => {
                    if row.failures == 0 {
                        row.window_start = now;
                    }
                    row.failures += 1;
                }
                Outcome::Succeeded if Some(&key) == user.as_ref() => {
                    row.failures = 0;
                    row.refused = 0;
                }
                Outcome::Succeeded | Outcome::Abandoned => {}
            }
            row.save(conn)?;
        }
        Ok(())
    }

    /// Failed attempts for `username` in the current window.
    pub fn failures(
        &self,
        conn: &mut AnyConnection,
        username: &str,
        now: i64,
    ) -> diesel::QueryResult<i64> {
        Ok(LoginFailures::find(conn, &user_key(username))?
            .filter(|f| f.window_start > now - self.window_ms)
            .map_or(0, |f| f.failures))
    }

    /// Whether sign-ins for `username` are refused now.
    pub fn locked(&self, failures: i64) -> bool {
        failures >= self.per_user
    }
}

/// Clears the failed-sign-in counter of a client address. Returns whether there was one.
pub fn unlock_ip(conn: &mut AnyConnection, ip: &str) -> diesel::QueryResult<bool> {
    Ok(LoginFailures::delete(conn, &ip_key(ip))? > 0)
}
