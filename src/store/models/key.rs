use diesel::prelude::*;

use crate::store::schema::signing_keys;
use crate::store::AnyConnection;
use crate::value::UnixMs;

/// A signing key as stored: the private half sealed under the master key.
#[derive(Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = signing_keys)]
pub struct StoredKey {
    pub kid: String,
    pub alg: String,
    pub private_key: String,
    pub public_jwk: String,
    pub created_at: UnixMs,
    pub retired_at: Option<UnixMs>,
    /// Signs from this time on; published in the JWKS from `created_at`.
    pub activates_at: UnixMs,
}

impl StoredKey {
    /// Serialises, until the end of the transaction, everything that creates or retires keys
    /// (PostgreSQL; SQLite's `BEGIN IMMEDIATE` already does).
    pub fn lock_all(conn: &mut AnyConnection) -> QueryResult<()> {
        crate::store::advisory::lock(conn, crate::store::advisory::SIGNING_KEYS)
    }
}

impl std::fmt::Debug for StoredKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredKey")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .field("created_at", &self.created_at)
            .field("activates_at", &self.activates_at)
            .field("retired_at", &self.retired_at)
            .finish_non_exhaustive()
    }
}

impl StoredKey {
    /// Every key, newest first.
    pub fn all(conn: &mut AnyConnection) -> QueryResult<Vec<StoredKey>> {
        signing_keys::table
            .order((signing_keys::created_at.desc(), signing_keys::kid.asc()))
            .select(StoredKey::as_select())
            .load(conn)
    }

    /// Keys still published: not retired, or retired after `retired_after` (tokens they signed
    /// may still be valid). Newest first.
    pub fn published(
        conn: &mut AnyConnection,
        retired_after: UnixMs,
    ) -> QueryResult<Vec<StoredKey>> {
        signing_keys::table
            .filter(
                signing_keys::retired_at
                    .is_null()
                    .or(signing_keys::retired_at.gt(retired_after)),
            )
            .order((signing_keys::created_at.desc(), signing_keys::kid.asc()))
            .select(StoredKey::as_select())
            .load(conn)
    }

    /// The public JWKs of [`StoredKey::published`].
    pub fn published_jwks(
        conn: &mut AnyConnection,
        retired_after: UnixMs,
    ) -> QueryResult<Vec<String>> {
        Ok(Self::published(conn, retired_after)?
            .into_iter()
            .map(|k| k.public_jwk)
            .collect())
    }

    pub fn find(conn: &mut AnyConnection, kid: &str) -> QueryResult<Option<StoredKey>> {
        signing_keys::table
            .find(kid)
            .select(StoredKey::as_select())
            .first(conn)
            .optional()
    }

    pub fn retire(conn: &mut AnyConnection, kid: &str, now: UnixMs) -> QueryResult<bool> {
        diesel::update(
            signing_keys::table
                .filter(signing_keys::kid.eq(kid))
                .filter(signing_keys::retired_at.is_null()),
        )
        .set(signing_keys::retired_at.eq(now))
        .execute(conn)
        .map(|n| n == 1)
    }

    pub fn insert(&self, conn: &mut AnyConnection) -> QueryResult<usize> {
        diesel::insert_into(signing_keys::table)
            .values(self)
            .execute(conn)
    }
}
