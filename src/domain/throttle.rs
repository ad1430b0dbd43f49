//! Throttling of failed password attempts, per username and per client IP. Counters live in the
//! database, so every instance sees the same ones.

use crate::store::models::LoginFailures;
use crate::store::AnyConnection;

/// Limits from `[throttle]`.
#[derive(Debug, Clone, Copy)]
pub struct Policy {
    pub per_user: i64,
    pub per_ip: i64,
    pub window_ms: i64,
}

pub fn user_key(username: &str) -> String {
    format!("user:{username}")
}

pub fn ip_key(ip: &str) -> String {
    format!("ip:{ip}")
}

impl Policy {
    /// Counts an attempt before the password is checked, so that parallel guesses cannot all
    /// slip in under the limit. Returns whether the attempt may go ahead. `username` is `None`
    /// for a name that cannot exist.
    pub fn attempt(
        &self,
        conn: &mut AnyConnection,
        username: Option<&str>,
        ip: Option<&str>,
        now: i64,
    ) -> diesel::QueryResult<bool> {
        let mut allowed = true;
        if let Some(name) = username {
            allowed &=
                LoginFailures::record(conn, &user_key(name), now, self.window_ms)? <= self.per_user;
        }
        if let Some(ip) = ip {
            allowed &=
                LoginFailures::record(conn, &ip_key(ip), now, self.window_ms)? <= self.per_ip;
        }
        Ok(allowed)
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

    /// A successful sign-in clears the username's counter and takes its own attempt back off
    /// the IP's (not more: one account an attacker controls must not reset the count for the
    /// others they try).
    pub fn succeeded(
        &self,
        conn: &mut AnyConnection,
        username: &str,
        ip: Option<&str>,
    ) -> diesel::QueryResult<()> {
        LoginFailures::delete(conn, &user_key(username))?;
        if let Some(ip) = ip {
            LoginFailures::forgive_one(conn, &ip_key(ip))?;
        }
        Ok(())
    }
}

/// Clears the failed-sign-in counter of a client address. Returns whether there was one.
pub fn unlock_ip(conn: &mut AnyConnection, ip: &str) -> diesel::QueryResult<bool> {
    Ok(LoginFailures::delete(conn, &ip_key(ip))? > 0)
}
