//! Throttling of failed password attempts, per client IP and per username. Counters live in the
//! database, so every instance sees the same ones.
//!
//! Only failures count against a limit. So that parallel guesses cannot all slip in under it
//! while their passwords are being checked, an attempt holds a place under each of its keys
//! until its outcome is known ([`Policy::admit`], [`Policy::settle`]): it goes ahead only while
//! failures plus places held stay below the limit, waits while places held could still turn
//! into successes, and is refused once the failures alone reach it. A place left behind by an
//! instance that stopped mid-sign-in expires by itself. No connection is held while a password
//! is hashed, or while an attempt waits.
//!
//! The client IP is checked first: an address over its limit is refused before its username is
//! looked at, so it writes nothing per username. The first refusal under a key in a window is
//! audited; the rest are only counted.

use std::net::IpAddr;
use std::time::Duration;

use ipnet::Ipv6Net;

use crate::store::models::{LoginFailures, LoginPlace};
use crate::store::AnyConnection;
use crate::value::UnixMs;

/// Limits from `[throttle]`.
#[derive(Debug, Clone, Copy)]
pub struct Policy {
    pub per_user: i64,
    pub per_ip: i64,
    pub window: Duration,
    /// IPv6 addresses count by this prefix (`throttle.ipv6_prefix`).
    pub ipv6_prefix: u8,
    /// Longest an attempt waits for a place, and for a hashing slot (`passwords.max_wait`).
    pub max_wait: Duration,
}

pub fn user_key(username: &str) -> String {
    format!("user:{username}")
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
    /// The key an address counts under: an IPv4 address as it is; an IPv6 address by its
    /// first `ipv6_prefix` bits, since one customer usually holds a whole /64 and would
    /// otherwise get a fresh limit per address (an IPv4-mapped one as its IPv4 address).
    pub fn ip_key(&self, ip: &str) -> String {
        let grouped = match ip.parse::<IpAddr>() {
            Ok(IpAddr::V6(v6)) => match v6.to_ipv4_mapped() {
                Some(v4) => v4.to_string(),
                None => Ipv6Net::new(v6, self.ipv6_prefix.min(128))
                    .map_or_else(|_| v6.to_string(), |net| net.trunc().to_string()),
            },
            _ => ip.to_owned(),
        };
        format!("ip:{grouped}")
    }

    /// Clears the failed-sign-in counter of a client address (of its IPv6 prefix). Returns
    /// whether there was one. Sign-ins in flight keep their places: unlocking does not let
    /// more guesses run at once.
    pub fn unlock_ip(&self, conn: &mut AnyConnection, ip: &str) -> diesel::QueryResult<bool> {
        Ok(LoginFailures::delete(conn, &self.ip_key(ip))? > 0)
    }

    /// The keys an attempt counts under with their limits, the IP's first.
    fn keys(&self, username: Option<&str>, ip: Option<&str>) -> Vec<(String, i64)> {
        let mut keys = Vec::with_capacity(2);
        if let Some(ip) = ip {
            keys.push((self.ip_key(ip), self.per_ip));
        }
        if let Some(name) = username {
            keys.push((user_key(name), self.per_user));
        }
        keys
    }

    /// How long a place is held at most: an attempt waits at most `max_wait` for a hashing
    /// slot, and a hash takes well under a second.
    pub fn place_lease(&self) -> Duration {
        self.max_wait + Duration::from_secs(30)
    }

    /// Brings a row up to `now`: a window that has passed starts again.
    fn catch_up(&self, row: &mut LoginFailures, now: UnixMs) {
        if row.window_start <= now - self.window {
            row.failures = 0;
            row.refused = 0;
            row.window_start = now;
        }
    }

    /// Failures under `key` in the current window, read without a lock.
    fn current_failures(
        &self,
        conn: &mut AnyConnection,
        key: &str,
        now: UnixMs,
    ) -> diesel::QueryResult<i64> {
        Ok(LoginFailures::find(conn, key)?
            .filter(|f| f.window_start > now - self.window)
            .map_or(0, |f| f.failures))
    }

    /// Whether an attempt would have to wait now: read only, so that waiting attempts ask
    /// again without writing. A refusal is left to [`Policy::admit`], which counts it.
    pub fn must_wait(
        &self,
        conn: &mut AnyConnection,
        username: Option<&str>,
        ip: Option<&str>,
        now: UnixMs,
    ) -> diesel::QueryResult<bool> {
        for (key, limit) in self.keys(username, ip) {
            let failures = self.current_failures(conn, &key, now)?;
            if failures >= limit {
                return Ok(false);
            }
            if failures + LoginPlace::held(conn, &key, now)? >= limit {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Decides whether `attempt` for `username` (`None` for a name that cannot exist) from
    /// `ip` may check its password, and holds its places when it may. Call in a transaction.
    pub fn admit(
        &self,
        conn: &mut AnyConnection,
        attempt: &str,
        username: Option<&str>,
        ip: Option<&str>,
        now: UnixMs,
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
            } else if row.failures + LoginPlace::held(conn, &key, now)? >= limit {
                Admission::Wait
            } else {
                held.push(row);
                continue;
            };
            // Rows this check created and did not use are not kept.
            for row in held.iter().filter(|r| r.is_empty()) {
                LoginFailures::delete(conn, &row.key)?;
            }
            return Ok(admission);
        }
        let expires_at = now + self.place_lease();
        for row in held {
            LoginPlace {
                attempt: attempt.to_owned(),
                key: row.key,
                expires_at,
            }
            .insert(conn)?;
        }
        Ok(Admission::Go)
    }

    /// Gives back the places `attempt` held, and counts its outcome. Giving them back twice
    /// does nothing the second time.
    pub fn settle(
        &self,
        conn: &mut AnyConnection,
        attempt: &str,
        username: Option<&str>,
        ip: Option<&str>,
        outcome: Outcome,
        now: UnixMs,
    ) -> diesel::QueryResult<()> {
        LoginPlace::release(conn, attempt)?;
        let user = username.map(user_key);
        for (key, _) in self.keys(username, ip) {
            let mut row = LoginFailures::lock(conn, &key, now)?;
            self.catch_up(&mut row, now);
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
        now: UnixMs,
    ) -> diesel::QueryResult<i64> {
        self.current_failures(conn, &user_key(username), now)
    }

    /// Whether sign-ins for `username` are refused now.
    pub fn locked(&self, failures: i64) -> bool {
        failures >= self.per_user
    }
}
