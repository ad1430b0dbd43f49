use diesel::prelude::*;

use crate::store::schema::{reuse_incidents, token_families};
use crate::store::AnyConnection;
use crate::value::{ClientId, FamilyId, TokenId, UnixMs, UserId};

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = reuse_incidents)]
pub struct ReuseIncident {
    pub id: String,
    pub family_id: FamilyId,
    pub replayed_token_id: TokenId,
    pub active_token_id: Option<TokenId>,
    pub client_id: ClientId,
    pub client_ip: Option<String>,
    pub user_agent: Option<String>,
    pub occurred_at: UnixMs,
    /// The DPoP key the replay's proof came from; `None`: it carried no proof.
    pub dpop_jkt: Option<String>,
}

#[derive(Debug, Insertable)]
#[diesel(table_name = reuse_incidents)]
pub struct NewIncident<'a> {
    pub id: &'a str,
    pub family_id: &'a FamilyId,
    pub replayed_token_id: &'a TokenId,
    pub active_token_id: Option<&'a TokenId>,
    pub client_id: &'a ClientId,
    pub client_ip: Option<&'a str>,
    pub user_agent: Option<&'a str>,
    pub occurred_at: UnixMs,
    pub dpop_jkt: Option<&'a str>,
}

impl ReuseIncident {
    pub fn for_family(
        conn: &mut AnyConnection,
        family_id: &FamilyId,
    ) -> QueryResult<Vec<ReuseIncident>> {
        reuse_incidents::table
            .filter(reuse_incidents::family_id.eq(family_id))
            .order(reuse_incidents::occurred_at.asc())
            .select(ReuseIncident::as_select())
            .load(conn)
    }
}

/// Filters for [`ReuseIncident::list`].
#[derive(Debug, Default, Clone)]
pub struct IncidentFilter {
    pub since: Option<UnixMs>,
    pub client_id: Option<ClientId>,
    pub user_id: Option<UserId>,
    pub limit: i64,
}

impl ReuseIncident {
    pub fn find(conn: &mut AnyConnection, id: &str) -> QueryResult<Option<ReuseIncident>> {
        reuse_incidents::table
            .find(id)
            .select(ReuseIncident::as_select())
            .first(conn)
            .optional()
    }

    /// Newest first.
    pub fn list(conn: &mut AnyConnection, f: &IncidentFilter) -> QueryResult<Vec<ReuseIncident>> {
        let mut q = reuse_incidents::table
            .inner_join(token_families::table)
            .into_boxed();
        if let Some(since) = f.since {
            q = q.filter(reuse_incidents::occurred_at.ge(since));
        }
        if let Some(c) = &f.client_id {
            q = q.filter(reuse_incidents::client_id.eq(c.clone()));
        }
        if let Some(u) = &f.user_id {
            q = q.filter(token_families::user_id.eq(u.clone()));
        }
        q.order((
            reuse_incidents::occurred_at.desc(),
            reuse_incidents::id.asc(),
        ))
        .limit(f.limit)
        .select(ReuseIncident::as_select())
        .load(conn)
    }
}

impl NewIncident<'_> {
    pub fn insert(&self, conn: &mut AnyConnection) -> QueryResult<usize> {
        diesel::insert_into(reuse_incidents::table)
            .values(self)
            .execute(conn)
    }
}
