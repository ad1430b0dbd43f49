use diesel::prelude::*;

use crate::store::schema::revoked_access_tokens;
use crate::store::AnyConnection;
use crate::value::{ClientId, UnixMs};

/// An access token revoked before it expired (RFC 7009).
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = revoked_access_tokens)]
pub struct RevokedAccessToken {
    pub jti: String,
    pub client_id: ClientId,
    pub expires_at: UnixMs,
    pub revoked_at: UnixMs,
}

impl RevokedAccessToken {
    pub fn is_revoked(conn: &mut AnyConnection, jti: &str) -> QueryResult<bool> {
        diesel::select(diesel::dsl::exists(revoked_access_tokens::table.find(jti))).get_result(conn)
    }

    /// Records the revocation; revoking twice is fine. Drops entries whose tokens have expired.
    pub fn insert(&self, conn: &mut AnyConnection) -> QueryResult<()> {
        diesel::delete(
            revoked_access_tokens::table
                .filter(revoked_access_tokens::expires_at.lt(self.revoked_at)),
        )
        .execute(conn)?;
        // Revoked already (perhaps at this very moment by another request): nothing to do.
        // An upsert, not a caught unique violation, which would abort PostgreSQL's transaction.
        crate::store::per_backend!(conn, |c| diesel::insert_into(revoked_access_tokens::table)
            .values(self)
            .on_conflict(revoked_access_tokens::jti)
            .do_nothing()
            .execute(c))?;
        Ok(())
    }
}
