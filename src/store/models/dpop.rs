use diesel::prelude::*;

use crate::store::schema::dpop_proofs;
use crate::store::AnyConnection;
use crate::value::UnixMs;

/// A DPoP proof seen, kept until it could no longer be accepted.
#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = dpop_proofs)]
pub struct SeenProof {
    /// SHA-256 of the key thumbprint, a space and the jti, hex.
    pub id: String,
    pub expires_at: UnixMs,
}

impl SeenProof {
    /// Records the proof; `false` when it was recorded before (by any instance). An upsert,
    /// not a caught unique violation, which would abort PostgreSQL's transaction.
    pub fn first_use(&self, conn: &mut AnyConnection) -> QueryResult<bool> {
        let inserted =
            crate::store::per_backend!(conn, |c| diesel::insert_into(dpop_proofs::table)
                .values(self)
                .on_conflict(dpop_proofs::id)
                .do_nothing()
                .execute(c))?;
        Ok(inserted == 1)
    }

    /// Whether `e` is a statement's attempt to record a proof recorded before: a unique
    /// violation on this table, which undid the whole statement.
    pub fn was_seen(e: &diesel::result::Error) -> bool {
        use diesel::result::{DatabaseErrorKind, Error};
        matches!(e, Error::DatabaseError(DatabaseErrorKind::UniqueViolation, info)
            if info.table_name() == Some("dpop_proofs"))
    }
}
