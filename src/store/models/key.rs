use diesel::prelude::*;

use crate::store::schema::signing_keys;
use crate::store::AnyConnection;

/// A signing key as stored: the private half sealed under the master key.
#[derive(Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = signing_keys)]
pub struct StoredKey {
    pub kid: String,
    pub alg: String,
    pub private_key: String,
    pub public_jwk: String,
    pub created_at: i64,
    pub retired_at: Option<i64>,
}

impl std::fmt::Debug for StoredKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredKey")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .field("created_at", &self.created_at)
            .field("retired_at", &self.retired_at)
            .finish_non_exhaustive()
    }
}

impl StoredKey {
    /// Keys not retired, newest first.
    pub fn active(conn: &mut AnyConnection) -> QueryResult<Vec<StoredKey>> {
        signing_keys::table
            .filter(signing_keys::retired_at.is_null())
            .order((signing_keys::created_at.desc(), signing_keys::kid.asc()))
            .select(StoredKey::as_select())
            .load(conn)
    }

    pub fn insert(&self, conn: &mut AnyConnection) -> QueryResult<usize> {
        diesel::insert_into(signing_keys::table)
            .values(self)
            .execute(conn)
    }
}
