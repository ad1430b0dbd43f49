use diesel::prelude::*;

use crate::store::schema::refresh_tokens;
use crate::store::AnyConnection;
use crate::value::{FamilyId, TokenId, UnixMs};

/// One refresh token of a family. Invariant: at most one per family has `rotated_at` unset.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = refresh_tokens)]
pub struct RefreshToken {
    pub id: TokenId,
    pub family_id: FamilyId,
    pub parent_id: Option<TokenId>,
    pub token_hash: String,
    pub issued_at: UnixMs,
    pub expires_at: UnixMs,
    pub rotated_at: Option<UnixMs>,
    pub replaced_by: Option<TokenId>,
    pub client_ip: Option<String>,
    pub user_agent: Option<String>,
}

#[derive(Debug, Insertable)]
#[diesel(table_name = refresh_tokens)]
pub struct NewRefreshToken<'a> {
    pub id: &'a TokenId,
    pub family_id: &'a FamilyId,
    pub parent_id: Option<&'a TokenId>,
    pub token_hash: &'a str,
    pub issued_at: UnixMs,
    pub expires_at: UnixMs,
    pub client_ip: Option<&'a str>,
    pub user_agent: Option<&'a str>,
}

impl RefreshToken {
    pub fn find(conn: &mut AnyConnection, id: &TokenId) -> QueryResult<Option<RefreshToken>> {
        refresh_tokens::table
            .find(id)
            .select(RefreshToken::as_select())
            .first(conn)
            .optional()
    }

    /// Which of `family_ids` have an unrotated token that has not expired from disuse.
    pub fn live_families(
        conn: &mut AnyConnection,
        family_ids: &[FamilyId],
        now: UnixMs,
    ) -> QueryResult<std::collections::HashSet<FamilyId>> {
        refresh_tokens::table
            .filter(refresh_tokens::family_id.eq_any(family_ids))
            .filter(super::token_live(now))
            .select(refresh_tokens::family_id)
            .load(conn)
            .map(|ids: Vec<FamilyId>| ids.into_iter().collect())
    }

    /// The unrotated token of each of `family_ids` that has one.
    pub fn active_in_families(
        conn: &mut AnyConnection,
        family_ids: &[FamilyId],
    ) -> QueryResult<Vec<RefreshToken>> {
        refresh_tokens::table
            .filter(refresh_tokens::family_id.eq_any(family_ids))
            .filter(refresh_tokens::rotated_at.is_null())
            .select(RefreshToken::as_select())
            .load(conn)
    }

    /// The family's unrotated token, if any.
    pub fn active_in(
        conn: &mut AnyConnection,
        family_id: &FamilyId,
    ) -> QueryResult<Option<RefreshToken>> {
        refresh_tokens::table
            .filter(refresh_tokens::family_id.eq(family_id))
            .filter(refresh_tokens::rotated_at.is_null())
            .select(RefreshToken::as_select())
            .first(conn)
            .optional()
    }

    pub fn in_family(
        conn: &mut AnyConnection,
        family_id: &FamilyId,
    ) -> QueryResult<Vec<RefreshToken>> {
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
        id: &TokenId,
        successor: &TokenId,
        now: UnixMs,
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
