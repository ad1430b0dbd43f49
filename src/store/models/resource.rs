use diesel::prelude::*;

use crate::store::schema::resources;
use crate::store::AnyConnection;
use crate::value::UnixMs;

/// A resource server (RFC 8707), by its URI, with the scopes it accepts (space-separated).
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = resources)]
pub struct ResourceRow {
    pub uri: String,
    pub scopes: String,
    pub created_at: UnixMs,
}

impl ResourceRow {
    pub fn insert(&self, conn: &mut AnyConnection) -> QueryResult<usize> {
        diesel::insert_into(resources::table)
            .values(self)
            .execute(conn)
    }

    pub fn find(conn: &mut AnyConnection, uri: &str) -> QueryResult<Option<ResourceRow>> {
        resources::table
            .find(uri)
            .select(ResourceRow::as_select())
            .first(conn)
            .optional()
    }

    /// The registered ones among `uris`.
    pub fn find_all(conn: &mut AnyConnection, uris: &[String]) -> QueryResult<Vec<ResourceRow>> {
        resources::table
            .filter(resources::uri.eq_any(uris))
            .select(ResourceRow::as_select())
            .load(conn)
    }

    /// Every resource, by URI.
    pub fn list(conn: &mut AnyConnection) -> QueryResult<Vec<ResourceRow>> {
        resources::table
            .order(resources::uri.asc())
            .select(ResourceRow::as_select())
            .load(conn)
    }

    pub fn set_scopes(conn: &mut AnyConnection, uri: &str, scopes: &str) -> QueryResult<usize> {
        diesel::update(resources::table.find(uri))
            .set(resources::scopes.eq(scopes))
            .execute(conn)
    }

    pub fn delete(conn: &mut AnyConnection, uri: &str) -> QueryResult<usize> {
        diesel::delete(resources::table.find(uri)).execute(conn)
    }
}
