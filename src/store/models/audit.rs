use diesel::prelude::*;

use crate::store::schema::audit_events;
use crate::store::AnyConnection;
use crate::value::UnixMs;

/// A security event.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = audit_events)]
pub struct AuditEvent {
    pub id: String,
    pub occurred_at: UnixMs,
    pub kind: String,
    pub actor: Option<String>,
    pub subject: Option<String>,
    pub client_ip: Option<String>,
    pub detail: Option<String>,
    /// The HTTP request that caused it; none for the CLI's.
    pub request_id: Option<String>,
    /// The id a trusted proxy sent with the request, if any.
    pub upstream_request_id: Option<String>,
}

impl AuditEvent {
    pub fn insert(&self, conn: &mut AnyConnection) -> QueryResult<usize> {
        diesel::insert_into(audit_events::table)
            .values(self)
            .execute(conn)
    }

    /// Events of one `kind` about one subject, oldest first.
    pub fn about(
        conn: &mut AnyConnection,
        subject: &str,
        kind: &str,
    ) -> QueryResult<Vec<AuditEvent>> {
        audit_events::table
            .filter(audit_events::subject.eq(subject))
            .filter(audit_events::kind.eq(kind))
            .order((audit_events::occurred_at.asc(), audit_events::id.asc()))
            .select(AuditEvent::as_select())
            .load(conn)
    }

    /// Events about any of `subjects`, newest first, at most `limit`.
    pub fn about_any(
        conn: &mut AnyConnection,
        subjects: &[String],
        limit: i64,
    ) -> QueryResult<Vec<AuditEvent>> {
        audit_events::table
            .filter(audit_events::subject.eq_any(subjects))
            .order((audit_events::occurred_at.desc(), audit_events::id.asc()))
            .limit(limit)
            .select(AuditEvent::as_select())
            .load(conn)
    }

    /// Newest first; `kind` matches a prefix (`login` finds `login.failure`).
    pub fn list(
        conn: &mut AnyConnection,
        since: Option<UnixMs>,
        kind: Option<&str>,
        limit: i64,
    ) -> QueryResult<Vec<AuditEvent>> {
        let mut q = audit_events::table.into_boxed();
        if let Some(since) = since {
            q = q.filter(audit_events::occurred_at.ge(since));
        }
        if let Some(kind) = kind {
            q = q.filter(
                audit_events::kind
                    .eq(kind.to_owned())
                    .or(audit_events::kind.like(format!("{kind}.%"))),
            );
        }
        q.order((audit_events::occurred_at.desc(), audit_events::id.asc()))
            .limit(limit)
            .select(AuditEvent::as_select())
            .load(conn)
    }
}
