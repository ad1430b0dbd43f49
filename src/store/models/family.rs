use diesel::prelude::*;

use crate::store::schema::{refresh_tokens, token_families};
use crate::store::AnyConnection;
use crate::value::{ClientId, FamilyId, UnixMs, UserId};

/// All refresh tokens descended from one grant. Revoking it revokes every token in it.
#[derive(Debug, Clone, Queryable, QueryableByName, Selectable)]
#[diesel(table_name = token_families)]
pub struct TokenFamily {
    pub id: FamilyId,
    pub client_id: ClientId,
    pub user_id: UserId,
    pub scope: String,
    pub auth_method: String,
    pub created_at: UnixMs,
    pub expires_at: UnixMs,
    pub revoked_at: Option<UnixMs>,
    pub revoked_reason: Option<String>,
    /// The resource servers (RFC 8707) it was granted for, space-separated; `None`: none.
    pub resources: Option<String>,
    /// When the user signed in for it; `None`: when it began (`created_at`).
    pub auth_time: Option<UnixMs>,
    /// The public id of the browser session it began in; `None`: no browser (password grant).
    pub sid: Option<String>,
    /// The thumbprint of the DPoP key its tokens are bound to; `None`: bearer tokens.
    pub dpop_jkt: Option<String>,
    /// How the user signed in (RFC 8176, space-separated); `None` on families from before.
    pub amr: Option<String>,
}

impl TokenFamily {
    /// When the user signed in for this family (OpenID Connect `auth_time`).
    pub fn signed_in_at(&self) -> UnixMs {
        self.auth_time.unwrap_or(self.created_at)
    }
}

#[derive(Debug, Insertable)]
#[diesel(table_name = token_families)]
pub struct NewFamily<'a> {
    pub id: &'a FamilyId,
    pub client_id: &'a ClientId,
    pub user_id: &'a UserId,
    pub scope: &'a str,
    pub auth_method: &'a str,
    pub created_at: UnixMs,
    pub expires_at: UnixMs,
    pub resources: Option<&'a str>,
    pub auth_time: Option<UnixMs>,
    pub sid: Option<&'a str>,
    pub dpop_jkt: Option<&'a str>,
    pub amr: Option<&'a str>,
}

impl TokenFamily {
    pub fn find(conn: &mut AnyConnection, id: &FamilyId) -> QueryResult<Option<TokenFamily>> {
        token_families::table
            .find(id)
            .select(TokenFamily::as_select())
            .first(conn)
            .optional()
    }

    /// Takes the family's row lock for the rest of the transaction.
    pub fn lock(conn: &mut AnyConnection, id: &FamilyId) -> QueryResult<()> {
        crate::store::lock_row!(conn, token_families, id)
    }

    /// The id and scope of every unrevoked family of a client.
    pub fn unrevoked_scopes(
        conn: &mut AnyConnection,
        client_id: &ClientId,
    ) -> QueryResult<Vec<(FamilyId, String)>> {
        token_families::table
            .filter(token_families::client_id.eq(client_id))
            .filter(token_families::revoked_at.is_null())
            .select((token_families::id, token_families::scope))
            .load(conn)
    }

    /// Ends the client's unrevoked families at most `ttl_ms` after they began; how many it
    /// shortened.
    pub fn cap_lifetime(
        conn: &mut AnyConnection,
        client_id: &ClientId,
        ttl_ms: i64,
    ) -> QueryResult<usize> {
        diesel::update(
            token_families::table
                .filter(token_families::client_id.eq(client_id))
                .filter(token_families::revoked_at.is_null())
                .filter(token_families::expires_at.gt(token_families::created_at + ttl_ms)),
        )
        .set(token_families::expires_at.eq(token_families::created_at + ttl_ms))
        .execute(conn)
    }

    pub fn set_scope(conn: &mut AnyConnection, id: &FamilyId, scope: &str) -> QueryResult<usize> {
        diesel::update(token_families::table.find(id))
            .set(token_families::scope.eq(scope))
            .execute(conn)
    }

    /// Marks the family revoked unless it already is; returns it if it changed.
    pub fn revoke(
        conn: &mut AnyConnection,
        id: &FamilyId,
        reason: &str,
        now: UnixMs,
    ) -> QueryResult<Vec<Ended>> {
        crate::store::per_backend!(conn, |c| diesel::update(
            token_families::table
                .filter(token_families::id.eq(id))
                .filter(token_families::revoked_at.is_null()),
        )
        .set((
            token_families::revoked_at.eq(now),
            token_families::revoked_reason.eq(reason),
        ))
        .returning(Ended::as_returning())
        .get_results(c))
    }

    /// Revokes every active family matching `filter`; returns how many changed.
    pub fn revoke_where(
        conn: &mut AnyConnection,
        of: FamiliesOf<'_>,
        reason: &str,
        now: UnixMs,
    ) -> QueryResult<Vec<Ended>> {
        // Built once per backend: a boxed query is tied to its backend.
        crate::store::per_backend!(conn, |c| {
            let mut query = diesel::update(token_families::table)
                .filter(token_families::revoked_at.is_null())
                .into_boxed();
            if let Some(user) = of.user_id {
                query = query.filter(token_families::user_id.eq(user));
            }
            if let Some(client) = of.client_id {
                query = query.filter(token_families::client_id.eq(client));
            }
            if let Some(sid) = of.sid {
                query = query.filter(token_families::sid.eq(sid));
            }
            if let Some(sid) = of.except_sid {
                query = query.filter(
                    token_families::sid
                        .is_null()
                        .or(token_families::sid.ne(sid)),
                );
            }
            query
                .set((
                    token_families::revoked_at.eq(now),
                    token_families::revoked_reason.eq(reason),
                ))
                .returning(Ended::as_returning())
                .get_results(c)
        })
    }
}

/// A family just ended: what its apps are told (Back-Channel Logout).
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = token_families)]
pub struct Ended {
    pub id: FamilyId,
    pub client_id: ClientId,
    pub user_id: UserId,
    pub sid: Option<String>,
}

/// Which families [`TokenFamily::revoke_where`] revokes: those matching every filter given.
#[derive(Debug, Clone, Copy, Default)]
pub struct FamiliesOf<'a> {
    pub user_id: Option<&'a UserId>,
    pub client_id: Option<&'a ClientId>,
    /// Begun in the browser session with this public id.
    pub sid: Option<&'a str>,
    /// Not begun in the browser session with this public id.
    pub except_sid: Option<&'a str>,
}

/// The expression [`family_live`] builds.
pub type FamilyLive = diesel::dsl::And<
    diesel::dsl::IsNull<token_families::revoked_at>,
    diesel::dsl::Gt<token_families::expires_at, UnixMs>,
>;

/// The expression [`token_live`] builds.
pub type TokenLive = diesel::dsl::And<
    diesel::dsl::IsNull<refresh_tokens::rotated_at>,
    diesel::dsl::Gt<refresh_tokens::expires_at, UnixMs>,
>;

/// The family's own part of "is this family live?": unrevoked and within its absolute
/// lifetime. With [`token_live`] for its current token, this is the SQL form of the rule that
/// `domain::family::state` states in Rust; every query that asks it, the one-statement
/// rotation (`store::rotation`) included, uses this expression.
pub fn family_live(now: UnixMs) -> FamilyLive {
    token_families::revoked_at
        .is_null()
        .and(token_families::expires_at.gt(now))
}

/// A refresh token is live while it is unrotated and has not expired from disuse: the SQL form
/// of `domain::family::token_live`.
pub fn token_live(now: UnixMs) -> TokenLive {
    refresh_tokens::rotated_at
        .is_null()
        .and(refresh_tokens::expires_at.gt(now))
}

/// The family's current refresh token is live ([`token_live`]).
#[allow(clippy::type_complexity)]
fn has_live_token(
    now: UnixMs,
) -> diesel::dsl::exists<
    diesel::dsl::Filter<
        diesel::dsl::Filter<
            refresh_tokens::table,
            diesel::dsl::Eq<refresh_tokens::family_id, token_families::id>,
        >,
        TokenLive,
    >,
> {
    diesel::dsl::exists(
        refresh_tokens::table
            .filter(refresh_tokens::family_id.eq(token_families::id))
            .filter(token_live(now)),
    )
}

/// Filters for [`TokenFamily::list`].
#[derive(Debug, Default, Clone)]
pub struct FamilyFilter {
    pub user_id: Option<UserId>,
    pub client_id: Option<ClientId>,
    /// `Some(true)`: only unrevoked and unexpired; `Some(false)`: only revoked.
    pub active: Option<bool>,
    pub limit: i64,
}

impl TokenFamily {
    /// Active families (not revoked, not expired) of a user and/or a client.
    pub fn count_active(
        conn: &mut AnyConnection,
        user_id: Option<&UserId>,
        client_id: Option<&ClientId>,
        now: UnixMs,
    ) -> QueryResult<i64> {
        let mut q = token_families::table
            .filter(family_live(now))
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
        now: UnixMs,
    ) -> QueryResult<Vec<TokenFamily>> {
        let mut q = token_families::table.into_boxed();
        if let Some(u) = &f.user_id {
            q = q.filter(token_families::user_id.eq(u.clone()));
        }
        if let Some(c) = &f.client_id {
            q = q.filter(token_families::client_id.eq(c.clone()));
        }
        match f.active {
            Some(true) => q = q.filter(family_live(now)).filter(has_live_token(now)),
            Some(false) => q = q.filter(token_families::revoked_at.is_not_null()),
            None => {}
        }
        q.order((token_families::created_at.desc(), token_families::id.asc()))
            .limit(f.limit)
            .select(TokenFamily::as_select())
            .load(conn)
    }
}

impl TokenFamily {
    /// The ids of the user's families, newest first, at most `limit`.
    pub fn ids_of_user(
        conn: &mut AnyConnection,
        user_id: &UserId,
        limit: i64,
    ) -> QueryResult<Vec<FamilyId>> {
        token_families::table
            .filter(token_families::user_id.eq(user_id))
            .order(token_families::created_at.desc())
            .limit(limit)
            .select(token_families::id)
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
