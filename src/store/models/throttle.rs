use diesel::prelude::*;

use crate::store::schema::{login_failures, login_places};
use crate::store::AnyConnection;
use crate::value::UnixMs;

/// The sign-in throttle's counters under one key: failures in the window that began at
/// `window_start`, and the attempts refused in this window.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = login_failures, primary_key(key))]
pub struct LoginFailures {
    pub key: String,
    pub failures: i64,
    pub window_start: UnixMs,
    pub refused: i64,
}

impl LoginFailures {
    /// Nothing counted under `key`.
    pub fn empty(key: &str, now: UnixMs) -> LoginFailures {
        LoginFailures {
            key: key.to_owned(),
            failures: 0,
            window_start: now,
            refused: 0,
        }
    }

    /// Whether the row holds nothing worth keeping.
    pub fn is_empty(&self) -> bool {
        self.failures == 0 && self.refused == 0
    }

    pub fn find(conn: &mut AnyConnection, key: &str) -> QueryResult<Option<LoginFailures>> {
        login_failures::table
            .find(key)
            .select(LoginFailures::as_select())
            .first(conn)
            .optional()
    }

    /// The row under `key`, created empty when there is none, and locked until the transaction
    /// ends: one upsert, so that two instances counting at once wait for each other (on
    /// PostgreSQL the row lock, on SQLite the single writer).
    pub fn lock(conn: &mut AnyConnection, key: &str, now: UnixMs) -> QueryResult<LoginFailures> {
        use diesel::upsert::excluded;
        let row = LoginFailures::empty(key, now);
        crate::store::per_backend!(conn, |c| diesel::insert_into(login_failures::table)
            .values(&row)
            .on_conflict(login_failures::key)
            .do_update()
            .set(login_failures::key.eq(excluded(login_failures::key)))
            .returning(LoginFailures::as_returning())
            .get_result(c))
    }

    /// Writes the counters back; an empty row is deleted instead.
    pub fn save(&self, conn: &mut AnyConnection) -> QueryResult<()> {
        if self.is_empty() {
            Self::delete(conn, &self.key)?;
        } else {
            diesel::update(login_failures::table.find(&self.key))
                .set(self)
                .execute(conn)?;
        }
        Ok(())
    }

    pub fn delete(conn: &mut AnyConnection, key: &str) -> QueryResult<usize> {
        diesel::delete(login_failures::table.find(key)).execute(conn)
    }
}

/// A place held under a throttle key by a sign-in attempt whose password is being checked. It
/// expires on its own if its instance stops before giving it back.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = login_places)]
pub struct LoginPlace {
    pub attempt: String,
    pub key: String,
    pub expires_at: UnixMs,
}

impl LoginPlace {
    pub fn insert(&self, conn: &mut AnyConnection) -> QueryResult<usize> {
        diesel::insert_into(login_places::table)
            .values(self)
            .execute(conn)
    }

    /// Places held under `key` that have not expired.
    pub fn held(conn: &mut AnyConnection, key: &str, now: UnixMs) -> QueryResult<i64> {
        login_places::table
            .filter(login_places::key.eq(key))
            .filter(login_places::expires_at.gt(now))
            .count()
            .get_result(conn)
    }

    /// Gives back the places of `attempt` (any number of times: the second does nothing).
    pub fn release(conn: &mut AnyConnection, attempt: &str) -> QueryResult<usize> {
        diesel::delete(login_places::table.filter(login_places::attempt.eq(attempt))).execute(conn)
    }
}
