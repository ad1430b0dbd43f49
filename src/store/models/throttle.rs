use diesel::prelude::*;

use crate::store::schema::login_failures;
use crate::store::AnyConnection;

/// Sign-in attempts counted under one key within a window (successes are taken back off).
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = login_failures)]
pub struct LoginFailures {
    pub key: String,
    pub failures: i64,
    pub window_start: i64,
}

impl LoginFailures {
    pub fn find(conn: &mut AnyConnection, key: &str) -> QueryResult<Option<LoginFailures>> {
        login_failures::table
            .find(key)
            .select(LoginFailures::as_select())
            .first(conn)
            .optional()
    }

    pub fn delete(conn: &mut AnyConnection, key: &str) -> QueryResult<usize> {
        diesel::delete(login_failures::table.find(key)).execute(conn)
    }

    /// Takes one attempt off the count.
    pub fn forgive_one(conn: &mut AnyConnection, key: &str) -> QueryResult<usize> {
        diesel::update(
            login_failures::table
                .find(key)
                .filter(login_failures::failures.gt(0)),
        )
        .set(login_failures::failures.eq(login_failures::failures - 1))
        .execute(conn)
    }

    /// Counts one failure: restarts the window when it has passed. Returns the new count.
    pub fn record(
        conn: &mut AnyConnection,
        key: &str,
        now: i64,
        window_ms: i64,
    ) -> QueryResult<i64> {
        let fresh = now.saturating_sub(window_ms);
        // Increment within the window, or restart an expired one; insert when absent.
        let bumped = diesel::update(
            login_failures::table
                .find(key)
                .filter(login_failures::window_start.gt(fresh)),
        )
        .set(login_failures::failures.eq(login_failures::failures + 1))
        .execute(conn)?;
        if bumped == 0 {
            let restarted = diesel::update(login_failures::table.find(key))
                .set((
                    login_failures::failures.eq(1),
                    login_failures::window_start.eq(now),
                ))
                .execute(conn)?;
            if restarted == 0 {
                let row = LoginFailures {
                    key: key.to_owned(),
                    failures: 1,
                    window_start: now,
                };
                match diesel::insert_into(login_failures::table)
                    .values(&row)
                    .execute(conn)
                {
                    Ok(_) => {}
                    // Another instance inserted it first: count on its row.
                    Err(diesel::result::Error::DatabaseError(
                        diesel::result::DatabaseErrorKind::UniqueViolation,
                        _,
                    )) => {
                        diesel::update(login_failures::table.find(key))
                            .set(login_failures::failures.eq(login_failures::failures + 1))
                            .execute(conn)?;
                    }
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(Self::find(conn, key)?.map_or(1, |r| r.failures))
    }
}
