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
    /// One upsert, atomic on either backend: two instances counting at once both count.
    pub fn record(
        conn: &mut AnyConnection,
        key: &str,
        now: i64,
        window_ms: i64,
    ) -> QueryResult<i64> {
        use diesel::dsl::case_when;
        use diesel::sql_types::BigInt;
        let fresh = now.saturating_sub(window_ms);
        let row = LoginFailures {
            key: key.to_owned(),
            failures: 1,
            window_start: now,
        };
        let within = login_failures::window_start.gt(fresh);
        macro_rules! upsert {
            ($c:expr) => {
                diesel::insert_into(login_failures::table)
                    .values(&row)
                    .on_conflict(login_failures::key)
                    .do_update()
                    .set((
                        login_failures::failures.eq(case_when(
                            within,
                            login_failures::failures + 1,
                        )
                        .otherwise(1i64.into_sql::<BigInt>())),
                        login_failures::window_start.eq(case_when(
                            within,
                            login_failures::window_start,
                        )
                        .otherwise(now.into_sql::<BigInt>())),
                    ))
                    .returning(login_failures::failures)
                    .get_result($c)
            };
        }
        match conn {
            AnyConnection::Postgresql(c) => upsert!(c),
            AnyConnection::Sqlite(c) => upsert!(c),
        }
    }
}
