use diesel::prelude::*;

use crate::store::schema::{clients, logout_notices, token_families};
use crate::store::AnyConnection;
use crate::value::{ClientId, FamilyId, UnixMs, UserId};

/// A back-channel logout still to deliver, delivered, or given up on.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = logout_notices)]
pub struct LogoutNotice {
    /// Also the logout token's `jti`: the same on every attempt, so the app can tell a retry.
    pub id: String,
    pub client_id: ClientId,
    pub user_id: UserId,
    pub sid: Option<String>,
    /// The family whose end this tells; `None` for a notice about a session alone.
    pub family_id: Option<FamilyId>,
    /// Why it ended (the family's `revoked_reason`, or `expired`).
    pub reason: String,
    pub created_at: UnixMs,
    pub attempts: i64,
    pub next_attempt_at: UnixMs,
    /// An instance is delivering it until then.
    pub claimed_until: Option<UnixMs>,
    pub delivered_at: Option<UnixMs>,
    pub failed_at: Option<UnixMs>,
    /// What the last failed attempt got (a status or a network error), never a token.
    pub last_error: Option<String>,
}

/// The clients among `ids` that take back-channel logout: id, URI, and whether they need `sid`.
pub fn backchannel_clients(
    conn: &mut AnyConnection,
    ids: &[&ClientId],
) -> QueryResult<Vec<(ClientId, String, bool)>> {
    clients::table
        .filter(clients::id.eq_any(ids))
        .filter(clients::backchannel_logout_uri.is_not_null())
        .select((
            clients::id,
            clients::backchannel_logout_uri.assume_not_null(),
            clients::backchannel_logout_session_required,
        ))
        .load(conn)
}

/// Whether a notice is still to deliver.
type Pending = diesel::dsl::And<
    diesel::dsl::IsNull<logout_notices::delivered_at>,
    diesel::dsl::IsNull<logout_notices::failed_at>,
>;

fn pending() -> Pending {
    logout_notices::delivered_at
        .is_null()
        .and(logout_notices::failed_at.is_null())
}

impl LogoutNotice {
    /// Inserts each (one statement each: a multi-row insert is not portable across backends).
    pub fn insert_all(conn: &mut AnyConnection, notices: &[LogoutNotice]) -> QueryResult<usize> {
        let mut n = 0;
        for notice in notices {
            n += diesel::insert_into(logout_notices::table)
                .values(notice)
                .execute(conn)?;
        }
        Ok(n)
    }

    /// Claims up to `limit` notices due at `now` for this instance until `until`, counting the
    /// attempt; on PostgreSQL, rows another instance is claiming are skipped, not waited for.
    /// Call inside a write transaction.
    pub fn claim_due(
        conn: &mut AnyConnection,
        now: UnixMs,
        until: UnixMs,
        limit: i64,
    ) -> QueryResult<Vec<LogoutNotice>> {
        let due = logout_notices::table
            .filter(pending())
            .filter(logout_notices::next_attempt_at.le(now))
            .filter(
                logout_notices::claimed_until
                    .is_null()
                    .or(logout_notices::claimed_until.lt(now)),
            )
            .order(logout_notices::next_attempt_at.asc())
            .select(logout_notices::id)
            .limit(limit);
        let ids: Vec<String> = match conn {
            AnyConnection::Postgresql(c) => due.for_update().skip_locked().load(c)?,
            AnyConnection::Sqlite(c) => due.load(c)?,
        };
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        diesel::update(logout_notices::table.filter(logout_notices::id.eq_any(&ids)))
            .set((
                logout_notices::claimed_until.eq(until),
                logout_notices::attempts.eq(logout_notices::attempts + 1),
            ))
            .execute(conn)?;
        logout_notices::table
            .filter(logout_notices::id.eq_any(&ids))
            .select(LogoutNotice::as_select())
            .load(conn)
    }

    pub fn delivered(conn: &mut AnyConnection, id: &str, now: UnixMs) -> QueryResult<usize> {
        diesel::update(logout_notices::table.find(id))
            .set((
                logout_notices::delivered_at.eq(now),
                logout_notices::claimed_until.eq(None::<UnixMs>),
                logout_notices::last_error.eq(None::<String>),
            ))
            .execute(conn)
    }

    /// Another attempt at `next`, after `error`.
    pub fn retry_at(
        conn: &mut AnyConnection,
        id: &str,
        next: UnixMs,
        error: &str,
    ) -> QueryResult<usize> {
        diesel::update(logout_notices::table.find(id))
            .set((
                logout_notices::next_attempt_at.eq(next),
                logout_notices::claimed_until.eq(None::<UnixMs>),
                logout_notices::last_error.eq(error),
            ))
            .execute(conn)
    }

    /// Given up on, after `error`.
    pub fn failed(
        conn: &mut AnyConnection,
        id: &str,
        now: UnixMs,
        error: &str,
    ) -> QueryResult<usize> {
        diesel::update(logout_notices::table.find(id))
            .set((
                logout_notices::failed_at.eq(now),
                logout_notices::claimed_until.eq(None::<UnixMs>),
                logout_notices::last_error.eq(error),
            ))
            .execute(conn)
    }

    /// How many are still to deliver.
    pub fn pending_count(conn: &mut AnyConnection) -> QueryResult<i64> {
        logout_notices::table
            .filter(pending())
            .count()
            .get_result(conn)
    }

    /// The notices about a family, oldest first.
    pub fn of_family(conn: &mut AnyConnection, id: &FamilyId) -> QueryResult<Vec<LogoutNotice>> {
        logout_notices::table
            .filter(logout_notices::family_id.eq(id))
            .order(logout_notices::created_at.asc())
            .select(LogoutNotice::as_select())
            .load(conn)
    }
}

/// Families of back-channel clients past their absolute lifetime at `now`, unrevoked and not
/// noticed yet (at most `limit`).
pub fn unnoticed_expired(
    conn: &mut AnyConnection,
    now: UnixMs,
    limit: i64,
) -> QueryResult<Vec<super::Ended>> {
    token_families::table
        .inner_join(clients::table)
        .filter(clients::backchannel_logout_uri.is_not_null())
        .filter(token_families::revoked_at.is_null())
        .filter(token_families::expires_at.le(now))
        .filter(token_families::end_noticed_at.is_null())
        .select(super::Ended::as_select())
        .limit(limit)
        .load(conn)
}

/// Marks the families `ids` noticed, unless another instance did; returns those it marked.
pub fn mark_noticed(
    conn: &mut AnyConnection,
    ids: &[FamilyId],
    now: UnixMs,
) -> QueryResult<Vec<super::Ended>> {
    crate::store::per_backend!(conn, |c| diesel::update(
        token_families::table
            .filter(token_families::id.eq_any(ids))
            .filter(token_families::end_noticed_at.is_null()),
    )
    .set(token_families::end_noticed_at.eq(now))
    .returning(super::Ended::as_returning())
    .get_results(c))
}
