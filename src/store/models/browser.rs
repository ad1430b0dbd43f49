use diesel::prelude::*;

use crate::store::schema::{authorization_codes, consents, sessions};
use crate::store::AnyConnection;
use crate::value::{ClientId, FamilyId, UnixMs, UserId};

/// An authorization code as stored: only its hash.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = authorization_codes)]
pub struct AuthorizationCode {
    pub code_hash: String,
    pub client_id: ClientId,
    pub user_id: UserId,
    pub scope: String,
    pub redirect_uri: String,
    pub pkce: String,
    pub created_at: UnixMs,
    pub expires_at: UnixMs,
    pub used_at: Option<UnixMs>,
    pub family_id: Option<FamilyId>,
    /// The authorization request named `redirect_uri` (so the token request must repeat it).
    pub redirect_uri_given: bool,
    /// The resource servers (RFC 8707) the request named, space-separated; `None`: none.
    pub resources: Option<String>,
    /// The OpenID Connect request's `nonce`, for the ID token.
    pub nonce: Option<String>,
    /// When the user signed in (`None`: a code from before ID tokens; the code's time).
    pub auth_time: Option<UnixMs>,
    /// The public id of the browser session that signed in.
    pub sid: Option<String>,
    /// The DPoP key the request bound the code to (RFC 9449 §10).
    pub dpop_jkt: Option<String>,
    /// How the user signed in, from the session (space-separated RFC 8176 values).
    pub amr: Option<String>,
}

impl AuthorizationCode {
    pub fn insert(&self, conn: &mut AnyConnection) -> QueryResult<usize> {
        diesel::insert_into(authorization_codes::table)
            .values(self)
            .execute(conn)
    }

    pub fn find(conn: &mut AnyConnection, hash: &str) -> QueryResult<Option<AuthorizationCode>> {
        authorization_codes::table
            .find(hash)
            .select(AuthorizationCode::as_select())
            .first(conn)
            .optional()
    }

    /// Takes the code's row lock (PostgreSQL) for the rest of the transaction, so that two
    /// exchanges of one code run one after the other.
    pub fn lock(conn: &mut AnyConnection, hash: &str) -> QueryResult<()> {
        crate::store::lock_row!(conn, authorization_codes, hash)
    }

    /// Uses the code if nobody has and it has not expired: exactly one exchange wins.
    pub fn consume(conn: &mut AnyConnection, hash: &str, now: UnixMs) -> QueryResult<bool> {
        diesel::update(
            authorization_codes::table
                .filter(authorization_codes::code_hash.eq(hash))
                .filter(authorization_codes::used_at.is_null())
                .filter(authorization_codes::expires_at.gt(now)),
        )
        .set(authorization_codes::used_at.eq(now))
        .execute(conn)
        .map(|n| n == 1)
    }

    pub fn set_family(
        conn: &mut AnyConnection,
        hash: &str,
        family_id: &FamilyId,
    ) -> QueryResult<usize> {
        diesel::update(authorization_codes::table.find(hash))
            .set(authorization_codes::family_id.eq(family_id))
            .execute(conn)
    }
}

/// What a user allowed a client.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = consents)]
pub struct Consent {
    pub user_id: UserId,
    pub client_id: ClientId,
    pub scope: String,
    pub granted_at: UnixMs,
    /// The resource servers (RFC 8707) the consent pages named, space-separated; `None`: none.
    pub resources: Option<String>,
}

impl Consent {
    pub fn find(
        conn: &mut AnyConnection,
        user_id: &UserId,
        client_id: &ClientId,
    ) -> QueryResult<Option<Consent>> {
        consents::table
            .find((user_id, client_id))
            .select(Consent::as_select())
            .first(conn)
            .optional()
    }

    pub fn for_user(conn: &mut AnyConnection, user_id: &UserId) -> QueryResult<Vec<Consent>> {
        consents::table
            .filter(consents::user_id.eq(user_id))
            .order(consents::granted_at.asc())
            .select(Consent::as_select())
            .load(conn)
    }

    /// Records `scope` and `resources` as granted, replacing what was there (one upsert: two saves at once, a
    /// double click, both succeed).
    pub fn save(&self, conn: &mut AnyConnection) -> QueryResult<()> {
        use diesel::upsert::excluded;
        crate::store::per_backend!(conn, |c| diesel::insert_into(consents::table)
            .values(self)
            .on_conflict((consents::user_id, consents::client_id))
            .do_update()
            .set((
                consents::scope.eq(excluded(consents::scope)),
                consents::granted_at.eq(excluded(consents::granted_at)),
                consents::resources.eq(excluded(consents::resources)),
            ))
            .execute(c))?;
        Ok(())
    }

    pub fn delete(
        conn: &mut AnyConnection,
        user_id: &UserId,
        client_id: &ClientId,
    ) -> QueryResult<bool> {
        diesel::delete(consents::table.find((user_id, client_id)))
            .execute(conn)
            .map(|n| n == 1)
    }
}

/// A signed-in browser.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = sessions)]
pub struct Session {
    pub id_hash: String,
    pub user_id: UserId,
    pub created_at: UnixMs,
    pub last_seen_at: UnixMs,
    /// How the user signed in (RFC 8176, space-separated); `None` on sessions from before.
    pub amr: Option<String>,
}

impl Session {
    pub fn insert(&self, conn: &mut AnyConnection) -> QueryResult<usize> {
        diesel::insert_into(sessions::table)
            .values(self)
            .execute(conn)
    }

    pub fn find(conn: &mut AnyConnection, id_hash: &str) -> QueryResult<Option<Session>> {
        sessions::table
            .find(id_hash)
            .select(Session::as_select())
            .first(conn)
            .optional()
    }

    pub fn touch(conn: &mut AnyConnection, id_hash: &str, now: UnixMs) -> QueryResult<usize> {
        diesel::update(sessions::table.find(id_hash))
            .set(sessions::last_seen_at.eq(now))
            .execute(conn)
    }

    pub fn delete(conn: &mut AnyConnection, id_hash: &str) -> QueryResult<usize> {
        diesel::delete(sessions::table.find(id_hash)).execute(conn)
    }

    pub fn delete_for_user(conn: &mut AnyConnection, user_id: &UserId) -> QueryResult<usize> {
        diesel::delete(sessions::table.filter(sessions::user_id.eq(user_id))).execute(conn)
    }
}
