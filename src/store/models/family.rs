use diesel::prelude::*;

use crate::store::schema::{refresh_tokens, reuse_incidents, token_families};
use crate::store::AnyConnection;

/// All refresh tokens descended from one grant. Revoking it revokes every token in it.
#[derive(Debug, Clone, Queryable, QueryableByName, Selectable)]
#[diesel(table_name = token_families)]
pub struct TokenFamily {
    pub id: String,
    pub client_id: String,
    pub user_id: String,
    pub scope: String,
    pub auth_method: String,
    pub created_at: i64,
    pub expires_at: i64,
    pub revoked_at: Option<i64>,
    pub revoked_reason: Option<String>,
}

#[derive(Debug, Insertable)]
#[diesel(table_name = token_families)]
pub struct NewFamily<'a> {
    pub id: &'a str,
    pub client_id: &'a str,
    pub user_id: &'a str,
    pub scope: &'a str,
    pub auth_method: &'a str,
    pub created_at: i64,
    pub expires_at: i64,
}

/// One refresh token of a family. Invariant: at most one per family has `rotated_at` unset.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = refresh_tokens)]
pub struct RefreshToken {
    pub id: String,
    pub family_id: String,
    pub parent_id: Option<String>,
    pub token_hash: String,
    pub issued_at: i64,
    pub expires_at: i64,
    pub rotated_at: Option<i64>,
    pub replaced_by: Option<String>,
    pub client_ip: Option<String>,
    pub user_agent: Option<String>,
}

#[derive(Debug, Insertable)]
#[diesel(table_name = refresh_tokens)]
pub struct NewRefreshToken<'a> {
    pub id: &'a str,
    pub family_id: &'a str,
    pub parent_id: Option<&'a str>,
    pub token_hash: &'a str,
    pub issued_at: i64,
    pub expires_at: i64,
    pub client_ip: Option<&'a str>,
    pub user_agent: Option<&'a str>,
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = reuse_incidents)]
pub struct ReuseIncident {
    pub id: String,
    pub family_id: String,
    pub replayed_token_id: String,
    pub active_token_id: Option<String>,
    pub client_id: String,
    pub client_ip: Option<String>,
    pub user_agent: Option<String>,
    pub occurred_at: i64,
}

#[derive(Debug, Insertable)]
#[diesel(table_name = reuse_incidents)]
pub struct NewIncident<'a> {
    pub id: &'a str,
    pub family_id: &'a str,
    pub replayed_token_id: &'a str,
    pub active_token_id: Option<&'a str>,
    pub client_id: &'a str,
    pub client_ip: Option<&'a str>,
    pub user_agent: Option<&'a str>,
    pub occurred_at: i64,
}

impl TokenFamily {
    pub fn find(conn: &mut AnyConnection, id: &str) -> QueryResult<Option<TokenFamily>> {
        token_families::table
            .find(id)
            .select(TokenFamily::as_select())
            .first(conn)
            .optional()
    }

    /// Takes the family's row lock (PostgreSQL) for the rest of the transaction.
    pub fn lock(conn: &mut AnyConnection, id: &str) -> QueryResult<usize> {
        diesel::update(token_families::table.find(id))
            .set(token_families::expires_at.eq(token_families::expires_at))
            .execute(conn)
    }

    /// Marks the family revoked unless it already is; returns whether it changed.
    pub fn revoke(conn: &mut AnyConnection, id: &str, reason: &str, now: i64) -> QueryResult<bool> {
        diesel::update(
            token_families::table
                .filter(token_families::id.eq(id))
                .filter(token_families::revoked_at.is_null()),
        )
        .set((
            token_families::revoked_at.eq(now),
            token_families::revoked_reason.eq(reason),
        ))
        .execute(conn)
        .map(|n| n == 1)
    }

    /// Revokes every active family matching `filter`; returns how many changed.
    pub fn revoke_where(
        conn: &mut AnyConnection,
        user_id: Option<&str>,
        client_id: Option<&str>,
        reason: &str,
        now: i64,
    ) -> QueryResult<usize> {
        let mut query = diesel::update(token_families::table)
            .filter(token_families::revoked_at.is_null())
            .into_boxed();
        if let Some(user) = user_id {
            query = query.filter(token_families::user_id.eq(user));
        }
        if let Some(client) = client_id {
            query = query.filter(token_families::client_id.eq(client));
        }
        query
            .set((
                token_families::revoked_at.eq(now),
                token_families::revoked_reason.eq(reason),
            ))
            .execute(conn)
    }
}

/// The family's current refresh token has not expired from disuse: with the family unrevoked
/// and within its absolute lifetime, this is what makes a family usable (the SQL form of
/// `domain::family::state`).
#[allow(clippy::type_complexity)]
fn has_live_token(
    now: i64,
) -> diesel::dsl::exists<
    diesel::dsl::Filter<
        diesel::dsl::Filter<
            diesel::dsl::Filter<
                refresh_tokens::table,
                diesel::dsl::Eq<refresh_tokens::family_id, token_families::id>,
            >,
            diesel::dsl::IsNull<refresh_tokens::rotated_at>,
        >,
        diesel::dsl::Gt<refresh_tokens::expires_at, i64>,
    >,
> {
    diesel::dsl::exists(
        refresh_tokens::table
            .filter(refresh_tokens::family_id.eq(token_families::id))
            .filter(refresh_tokens::rotated_at.is_null())
            .filter(refresh_tokens::expires_at.gt(now)),
    )
}

/// Filters for [`TokenFamily::list`].
#[derive(Debug, Default, Clone)]
pub struct FamilyFilter {
    pub user_id: Option<String>,
    pub client_id: Option<String>,
    /// `Some(true)`: only unrevoked and unexpired; `Some(false)`: only revoked.
    pub active: Option<bool>,
    pub limit: i64,
}

impl TokenFamily {
    /// Active families (not revoked, not expired) of a user and/or a client.
    pub fn count_active(
        conn: &mut AnyConnection,
        user_id: Option<&str>,
        client_id: Option<&str>,
        now: i64,
    ) -> QueryResult<i64> {
        let mut q = token_families::table
            .filter(token_families::revoked_at.is_null())
            .filter(token_families::expires_at.gt(now))
            .filter(has_live_token(now))
            .into_boxed();
        if let Some(u) = user_id {
            q = q.filter(token_families::user_id.eq(u.to_owned()));
        }
        if let Some(c) = client_id {
            q = q.filter(token_families::client_id.eq(c.to_owned()));
        }
        q.count().get_result(conn)
    }

    /// Newest first.
    pub fn list(
        conn: &mut AnyConnection,
        f: &FamilyFilter,
        now: i64,
    ) -> QueryResult<Vec<TokenFamily>> {
        let mut q = token_families::table.into_boxed();
        if let Some(u) = &f.user_id {
            q = q.filter(token_families::user_id.eq(u.clone()));
        }
        if let Some(c) = &f.client_id {
            q = q.filter(token_families::client_id.eq(c.clone()));
        }
        match f.active {
            Some(true) => {
                q = q
                    .filter(token_families::revoked_at.is_null())
                    .filter(token_families::expires_at.gt(now))
                    .filter(has_live_token(now))
            }
            Some(false) => q = q.filter(token_families::revoked_at.is_not_null()),
            None => {}
        }
        q.order((token_families::created_at.desc(), token_families::id.asc()))
            .limit(f.limit)
            .select(TokenFamily::as_select())
            .load(conn)
    }
}

impl NewFamily<'_> {
    pub fn insert(&self, conn: &mut AnyConnection) -> QueryResult<usize> {
        diesel::insert_into(token_families::table)
            .values(self)
            .execute(conn)
    }
}

impl RefreshToken {
    pub fn find(conn: &mut AnyConnection, id: &str) -> QueryResult<Option<RefreshToken>> {
        refresh_tokens::table
            .find(id)
            .select(RefreshToken::as_select())
            .first(conn)
            .optional()
    }

    /// Which of `family_ids` have an unrotated token that has not expired from disuse.
    pub fn live_families(
        conn: &mut AnyConnection,
        family_ids: &[String],
        now: i64,
    ) -> QueryResult<std::collections::HashSet<String>> {
        refresh_tokens::table
            .filter(refresh_tokens::family_id.eq_any(family_ids))
            .filter(refresh_tokens::rotated_at.is_null())
            .filter(refresh_tokens::expires_at.gt(now))
            .select(refresh_tokens::family_id)
            .load(conn)
            .map(|ids: Vec<String>| ids.into_iter().collect())
    }

    /// The family's unrotated token, if any.
    pub fn active_in(
        conn: &mut AnyConnection,
        family_id: &str,
    ) -> QueryResult<Option<RefreshToken>> {
        refresh_tokens::table
            .filter(refresh_tokens::family_id.eq(family_id))
            .filter(refresh_tokens::rotated_at.is_null())
            .select(RefreshToken::as_select())
            .first(conn)
            .optional()
    }

    pub fn in_family(conn: &mut AnyConnection, family_id: &str) -> QueryResult<Vec<RefreshToken>> {
        refresh_tokens::table
            .filter(refresh_tokens::family_id.eq(family_id))
            .order((refresh_tokens::issued_at.asc(), refresh_tokens::id.asc()))
            .select(RefreshToken::as_select())
            .load(conn)
    }

    /// Consumes the token if nobody has yet: the one conditional statement that makes
    /// rotation safe under concurrency. Returns whether this caller won.
    pub fn mark_rotated(
        conn: &mut AnyConnection,
        id: &str,
        successor: &str,
        now: i64,
    ) -> QueryResult<bool> {
        diesel::update(
            refresh_tokens::table
                .filter(refresh_tokens::id.eq(id))
                .filter(refresh_tokens::rotated_at.is_null()),
        )
        .set((
            refresh_tokens::rotated_at.eq(now),
            refresh_tokens::replaced_by.eq(successor),
        ))
        .execute(conn)
        .map(|n| n == 1)
    }
}

impl NewRefreshToken<'_> {
    pub fn insert(&self, conn: &mut AnyConnection) -> QueryResult<usize> {
        diesel::insert_into(refresh_tokens::table)
            .values(self)
            .execute(conn)
    }
}

impl ReuseIncident {
    pub fn for_family(
        conn: &mut AnyConnection,
        family_id: &str,
    ) -> QueryResult<Vec<ReuseIncident>> {
        reuse_incidents::table
            .filter(reuse_incidents::family_id.eq(family_id))
            .order(reuse_incidents::occurred_at.asc())
            .select(ReuseIncident::as_select())
            .load(conn)
    }
}

/// Filters for [`ReuseIncident::list`].
#[derive(Debug, Default, Clone)]
pub struct IncidentFilter {
    pub since: Option<i64>,
    pub client_id: Option<String>,
    pub user_id: Option<String>,
    pub limit: i64,
}

impl ReuseIncident {
    pub fn find(conn: &mut AnyConnection, id: &str) -> QueryResult<Option<ReuseIncident>> {
        reuse_incidents::table
            .find(id)
            .select(ReuseIncident::as_select())
            .first(conn)
            .optional()
    }

    /// Newest first.
    pub fn list(conn: &mut AnyConnection, f: &IncidentFilter) -> QueryResult<Vec<ReuseIncident>> {
        let mut q = reuse_incidents::table
            .inner_join(token_families::table)
            .into_boxed();
        if let Some(since) = f.since {
            q = q.filter(reuse_incidents::occurred_at.ge(since));
        }
        if let Some(c) = &f.client_id {
            q = q.filter(reuse_incidents::client_id.eq(c.clone()));
        }
        if let Some(u) = &f.user_id {
            q = q.filter(token_families::user_id.eq(u.clone()));
        }
        q.order((
            reuse_incidents::occurred_at.desc(),
            reuse_incidents::id.asc(),
        ))
        .limit(f.limit)
        .select(ReuseIncident::as_select())
        .load(conn)
    }
}

impl NewIncident<'_> {
    pub fn insert(&self, conn: &mut AnyConnection) -> QueryResult<usize> {
        diesel::insert_into(reuse_incidents::table)
            .values(self)
            .execute(conn)
    }
}
