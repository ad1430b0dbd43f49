//! The one time type: an instant in Unix milliseconds, the unit of every time column. Lengths
//! of time are `std::time::Duration`. The edges that speak another unit convert explicitly:
//! JWT claims ([`UnixMs::unix_seconds`], [`UnixMs::from_unix_seconds`]) and the places that
//! bind raw SQL ([`UnixMs::millis`]).

use std::fmt;
use std::ops::{Add, Sub};
use std::time::Duration;

use diesel::backend::Backend;
use diesel::deserialize::{self, FromSql, FromSqlRow};
use diesel::expression::AsExpression;
use diesel::serialize::{self, Output, ToSql};
use diesel::sql_types::BigInt;
use serde::{Deserialize, Serialize};

/// An instant, in milliseconds since the Unix epoch.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Default,
    Serialize,
    Deserialize,
    AsExpression,
    FromSqlRow,
)]
#[serde(transparent)]
#[diesel(sql_type = BigInt)]
pub struct UnixMs(i64);

impl UnixMs {
    pub const MAX: UnixMs = UnixMs(i64::MAX);

    pub const fn from_millis(ms: i64) -> Self {
        Self(ms)
    }

    /// Milliseconds since the epoch: for raw SQL binds and for ids that carry their time.
    pub const fn millis(self) -> i64 {
        self.0
    }

    /// From a JWT `exp`/`iat`/`nbf` (RFC 7519 NumericDate, whole seconds).
    pub const fn from_unix_seconds(s: i64) -> Self {
        Self(s.saturating_mul(1000))
    }

    /// As a JWT NumericDate: whole seconds, rounded down.
    pub const fn unix_seconds(self) -> i64 {
        self.0.div_euclid(1000)
    }

    /// How far apart the two are, whichever comes first.
    pub fn distance(self, other: UnixMs) -> Duration {
        Duration::from_millis(self.0.abs_diff(other.0))
    }

    /// How long after `earlier` this is; zero when it is not after.
    pub fn since(self, earlier: UnixMs) -> Duration {
        Duration::from_millis(u64::try_from(self.0.saturating_sub(earlier.0)).unwrap_or(0))
    }
}

/// A duration in whole milliseconds, saturating (a setting of "forever" stays far in the future).
fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

impl Add<Duration> for UnixMs {
    type Output = UnixMs;
    fn add(self, d: Duration) -> UnixMs {
        UnixMs(self.0.saturating_add(ms(d)))
    }
}

impl Sub<Duration> for UnixMs {
    type Output = UnixMs;
    fn sub(self, d: Duration) -> UnixMs {
        UnixMs(self.0.saturating_sub(ms(d)))
    }
}

impl fmt::Display for UnixMs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl<DB: Backend> ToSql<BigInt, DB> for UnixMs
where
    i64: ToSql<BigInt, DB>,
{
    fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, DB>) -> serialize::Result {
        self.0.to_sql(out)
    }
}

impl<DB: Backend> FromSql<BigInt, DB> for UnixMs
where
    i64: FromSql<BigInt, DB>,
{
    fn from_sql(bytes: DB::RawValue<'_>) -> deserialize::Result<Self> {
        i64::from_sql(bytes).map(Self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_at_the_jwt_edge_round_down_and_back() {
        let t = UnixMs::from_millis(1_700_000_000_999);
        assert_eq!(t.unix_seconds(), 1_700_000_000);
        assert_eq!(
            UnixMs::from_unix_seconds(1_700_000_000).millis(),
            1_700_000_000_000
        );
        assert_eq!(UnixMs::from_millis(-1).unix_seconds(), -1);
    }

    #[test]
    fn arithmetic_saturates_and_since_is_never_negative() {
        let t = UnixMs::from_millis(10_000);
        assert_eq!((t + Duration::from_secs(5)).millis(), 15_000);
        assert_eq!((t - Duration::from_secs(5)).millis(), 5_000);
        assert_eq!(UnixMs::MAX + Duration::from_secs(1), UnixMs::MAX);
        assert_eq!(t + Duration::MAX, UnixMs::MAX);
        assert_eq!(t.since(t + Duration::from_secs(1)), Duration::ZERO);
        assert_eq!(
            (t + Duration::from_secs(2)).since(t),
            Duration::from_secs(2)
        );
    }
}
