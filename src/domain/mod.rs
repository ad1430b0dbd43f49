//! The identity logic: no HTTP here, so the admin CLI applies exactly the server's rules.

pub mod access_token;
pub mod audit;
pub mod authcode;
pub mod browser;
pub mod client;
pub mod crypto;
pub mod family;
pub mod keys;
pub mod password;
pub mod scope;
pub mod throttle;
pub mod user;

/// Now, in Unix milliseconds: the unit of every time column.
pub fn now_ms() -> i64 {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// A duration in milliseconds, saturating.
pub fn ms(d: std::time::Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}
