use std::time::Duration;

use diesel::prelude::*;

use crate::store::schema::clients;
use crate::store::AnyConnection;
use crate::value::{ClientId, UnixMs};

/// A client as stored: scopes, grant types and redirect URIs as space-separated text. The
/// domain's `Client` is what the rest of the code works with, parsed from this once.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = clients)]
pub struct ClientRow {
    pub id: ClientId,
    pub name: String,
    /// SHA-256 of the secret, hex; `None` for public clients.
    pub secret_hash: Option<String>,
    pub redirect_uris: String,
    pub grant_types: String,
    pub scopes: String,
    pub created_at: UnixMs,
    pub disabled_at: Option<UnixMs>,
    /// May introspect tokens issued to other clients (a resource server).
    pub allow_introspection: bool,
    /// When it last got a token, to the day.
    pub last_used_at: Option<UnixMs>,
    /// The algorithm of its ID tokens; `None`: the access tokens' key.
    pub id_token_alg: Option<String>,
    /// Where RP-initiated logout may return the user, space-separated.
    pub post_logout_redirect_uris: String,
    /// Where its back-channel logout tokens are POSTed.
    pub backchannel_logout_uri: Option<String>,
    /// Its logout tokens must carry `sid`.
    pub backchannel_logout_session_required: bool,
    /// Web origins that may read its responses (CORS), space-separated.
    pub allowed_origins: String,
    /// Caps its families' absolute lifetime; `None`: the server's.
    pub refresh_absolute_ttl_ms: Option<i64>,
    /// Its token requests must carry a DPoP proof.
    pub require_dpop: bool,
    /// Its users must sign in with a second factor.
    pub require_second_factor: bool,
}

#[derive(Debug, Insertable)]
#[diesel(table_name = clients)]
pub struct NewClient<'a> {
    pub id: &'a ClientId,
    pub name: &'a str,
    pub secret_hash: Option<&'a str>,
    pub redirect_uris: &'a str,
    pub grant_types: &'a str,
    pub scopes: &'a str,
    pub created_at: UnixMs,
    pub id_token_alg: Option<&'a str>,
    pub post_logout_redirect_uris: &'a str,
    pub backchannel_logout_uri: Option<&'a str>,
    pub backchannel_logout_session_required: bool,
    pub allowed_origins: &'a str,
    pub refresh_absolute_ttl_ms: Option<i64>,
    pub require_dpop: bool,
    pub require_second_factor: bool,
}

impl ClientRow {
    /// Locks the client's row until the end of the transaction (PostgreSQL: `FOR UPDATE`,
    /// which conflicts with the key-share lock a new family's foreign key takes).
    pub fn lock(conn: &mut AnyConnection, id: &ClientId) -> QueryResult<()> {
        crate::store::lock_row!(conn, clients, id)
    }

    pub fn find(conn: &mut AnyConnection, id: &ClientId) -> QueryResult<Option<ClientRow>> {
        clients::table
            .find(id)
            .select(ClientRow::as_select())
            .first(conn)
            .optional()
    }

    /// How precisely `last_used_at` is kept: a day.
    pub const USE_NOTED_EVERY: Duration = Duration::from_secs(86_400);

    /// Records that the client got a token at `now`, unless that was already recorded less
    /// than a day ago: at most one write a day per client.
    pub fn note_use(conn: &mut AnyConnection, id: &ClientId, now: UnixMs) -> QueryResult<usize> {
        diesel::update(
            clients::table.find(id).filter(
                clients::last_used_at
                    .is_null()
                    .or(clients::last_used_at.lt(now - Self::USE_NOTED_EVERY)),
            ),
        )
        .set(clients::last_used_at.eq(now))
        .execute(conn)
    }

    /// How many clients get their ID tokens signed with `alg`.
    pub fn count_with_id_token_alg(conn: &mut AnyConnection, alg: &str) -> QueryResult<i64> {
        clients::table
            .filter(clients::id_token_alg.eq(alg))
            .count()
            .get_result(conn)
    }

    /// The allowed origins of every enabled client that has some, as stored.
    pub fn allowed_origins(conn: &mut AnyConnection) -> QueryResult<Vec<String>> {
        clients::table
            .filter(clients::disabled_at.is_null())
            .filter(clients::allowed_origins.ne(""))
            .select(clients::allowed_origins)
            .load(conn)
    }

    pub fn list(conn: &mut AnyConnection) -> QueryResult<Vec<ClientRow>> {
        clients::table
            .order(clients::created_at.asc())
            .select(ClientRow::as_select())
            .load(conn)
    }
}

/// Changes to a client; `None` leaves a field as it is.
#[derive(Debug, Default, AsChangeset)]
#[diesel(table_name = clients)]
pub struct ClientChanges {
    pub name: Option<String>,
    pub secret_hash: Option<Option<String>>,
    pub redirect_uris: Option<String>,
    pub grant_types: Option<String>,
    pub scopes: Option<String>,
    pub disabled_at: Option<Option<UnixMs>>,
    pub allow_introspection: Option<bool>,
    pub id_token_alg: Option<Option<String>>,
    pub post_logout_redirect_uris: Option<String>,
    pub backchannel_logout_uri: Option<Option<String>>,
    pub backchannel_logout_session_required: Option<bool>,
    pub allowed_origins: Option<String>,
    pub refresh_absolute_ttl_ms: Option<Option<i64>>,
    pub require_dpop: Option<bool>,
    pub require_second_factor: Option<bool>,
}

impl ClientChanges {
    /// Whether it changes anything an administrator may change with `client update`.
    pub fn is_empty(&self) -> bool {
        self.name.is_none()
            && self.grant_types.is_none()
            && self.scopes.is_none()
            && self.redirect_uris.is_none()
            && self.allow_introspection.is_none()
            && self.id_token_alg.is_none()
            && self.post_logout_redirect_uris.is_none()
            && self.backchannel_logout_uri.is_none()
            && self.backchannel_logout_session_required.is_none()
            && self.allowed_origins.is_none()
            && self.refresh_absolute_ttl_ms.is_none()
            && self.require_dpop.is_none()
            && self.require_second_factor.is_none()
    }

    pub fn apply(&self, conn: &mut AnyConnection, id: &ClientId) -> QueryResult<bool> {
        diesel::update(clients::table.find(id))
            .set(self)
            .execute(conn)
            .map(|n| n == 1)
    }
}

impl ClientRow {
    pub fn delete(conn: &mut AnyConnection, id: &ClientId) -> QueryResult<bool> {
        diesel::delete(clients::table.find(id))
            .execute(conn)
            .map(|n| n == 1)
    }
}

impl NewClient<'_> {
    pub fn insert(&self, conn: &mut AnyConnection) -> QueryResult<usize> {
        diesel::insert_into(clients::table)
            .values(self)
            .execute(conn)
    }
}
