use diesel::prelude::*;

use crate::store::schema::users;
use crate::store::AnyConnection;
use crate::value::{UnixMs, UserId};

#[derive(Clone, Queryable, Selectable)]
#[diesel(table_name = users)]
pub struct User {
    pub id: UserId,
    pub username: String,
    pub password_hash: String,
    pub created_at: UnixMs,
    pub disabled_at: Option<UnixMs>,
    /// The full name apps may show (OpenID Connect `name`).
    pub name: Option<String>,
    pub email: Option<String>,
    pub email_verified: bool,
    /// When the name or email last changed; `None`: not since the user was created.
    pub updated_at: Option<UnixMs>,
}

impl std::fmt::Debug for User {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("User")
            .field("id", &self.id)
            .field("username", &self.username)
            .field("disabled_at", &self.disabled_at)
            .finish_non_exhaustive()
    }
}

#[derive(Insertable)]
#[diesel(table_name = users)]
pub struct NewUser<'a> {
    pub id: &'a UserId,
    pub username: &'a str,
    pub password_hash: &'a str,
    pub created_at: UnixMs,
    pub name: Option<&'a str>,
    pub email: Option<&'a str>,
    pub email_verified: bool,
}

/// Changes to a user's profile; `None` leaves a field as it is.
#[derive(Debug, Default, AsChangeset)]
#[diesel(table_name = users)]
pub struct ProfileChanges {
    pub name: Option<Option<String>>,
    pub email: Option<Option<String>>,
    pub email_verified: Option<bool>,
    pub updated_at: Option<UnixMs>,
}

impl ProfileChanges {
    pub fn apply(&self, conn: &mut AnyConnection, id: &UserId) -> QueryResult<bool> {
        diesel::update(users::table.find(id))
            .set(self)
            .execute(conn)
            .map(|n| n == 1)
    }
}

impl User {
    pub fn find(conn: &mut AnyConnection, id: &UserId) -> QueryResult<Option<User>> {
        users::table
            .find(id)
            .select(User::as_select())
            .first(conn)
            .optional()
    }

    pub fn find_by_username(conn: &mut AnyConnection, username: &str) -> QueryResult<Option<User>> {
        users::table
            .filter(users::username.eq(username))
            .select(User::as_select())
            .first(conn)
            .optional()
    }
}

impl User {
    pub fn list(conn: &mut AnyConnection) -> QueryResult<Vec<User>> {
        users::table
            .order(users::username.asc())
            .select(User::as_select())
            .load(conn)
    }

    /// Takes the user's row lock for the rest of the transaction.
    pub fn lock(conn: &mut AnyConnection, id: &UserId) -> QueryResult<()> {
        crate::store::lock_row!(conn, users, id)
    }

    pub fn set_password_hash(
        conn: &mut AnyConnection,
        id: &UserId,
        hash: &str,
    ) -> QueryResult<bool> {
        diesel::update(users::table.find(id))
            .set(users::password_hash.eq(hash))
            .execute(conn)
            .map(|n| n == 1)
    }

    pub fn set_disabled_at(
        conn: &mut AnyConnection,
        id: &UserId,
        at: Option<UnixMs>,
    ) -> QueryResult<bool> {
        diesel::update(users::table.find(id))
            .set(users::disabled_at.eq(at))
            .execute(conn)
            .map(|n| n == 1)
    }
}

impl NewUser<'_> {
    pub fn insert(&self, conn: &mut AnyConnection) -> QueryResult<usize> {
        diesel::insert_into(users::table).values(self).execute(conn)
    }
}
