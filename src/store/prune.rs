//! What can be deleted, table by table: the rows that can no longer matter, by the cut-offs the
//! caller works out. Each table is pruned in batches: [`Prunable::next_batch`] picks some ids,
//! [`Prunable::delete`] deletes those that still qualify (a row changed meanwhile is kept).

use diesel::dsl::{exists, not};
use diesel::prelude::*;

use crate::store::schema::{
    audit_events, authorization_codes, dpop_proofs, login_failures, login_places, logout_notices,
    refresh_tokens, reuse_incidents, revoked_access_tokens, sessions, token_families,
    webauthn_challenges,
};
use crate::store::AnyConnection;
use crate::value::UnixMs;

/// Times (Unix ms) before which rows are no longer needed.
#[derive(Debug, Clone, Copy)]
pub struct Cutoffs {
    pub now: UnixMs,
    /// Families revoked or past their absolute lifetime before this. (One that expired from
    /// disuse goes once its absolute lifetime is over too: no index on the hot path for it.)
    pub dead_families: UnixMs,
    /// Refresh tokens rotated before this, if they carry their family id.
    pub rotated_tokens: UnixMs,
    /// Audit events and reuse incidents older than this.
    pub audit: UnixMs,
    /// Sessions last used before this, or created before `session_absolute`.
    pub session_idle: UnixMs,
    pub session_absolute: UnixMs,
    /// Throttle windows that started before this.
    pub throttle_window: UnixMs,
}

/// A table that is pruned. Families go first: their refresh tokens go with them (the foreign
/// key cascades), and used authorization codes follow their family. Rotated refresh tokens of
/// the families that stay go once no grace retry can need them: a replay of one still names its
/// family, so reuse detection does not need the row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Prunable {
    TokenFamilies,
    RotatedTokens,
    AuthorizationCodes,
    Sessions,
    LoginFailures,
    LoginPlaces,
    RevokedAccessTokens,
    /// DPoP proofs past the window in which they could be presented again.
    DpopProofs,
    /// WebAuthn ceremonies never answered.
    WebauthnChallenges,
    ReuseIncidents,
    AuditEvents,
    LogoutNotices,
}

/// Binds `$q` to the rows of `$which` that may go, and `$pk` to its id column.
macro_rules! with_query {
    ($which:expr, $cut:expr, |$q:ident, $pk:ident| $body:expr) => {{
        let cut: &Cutoffs = $cut;
        match $which {
            Prunable::TokenFamilies => {
                // Kept while an incident about it is within the audit window (`incident show`).
                let recent_incident = exists(
                    reuse_incidents::table
                        .filter(reuse_incidents::family_id.eq(token_families::id))
                        .filter(reuse_incidents::occurred_at.ge(cut.audit)),
                );
                // Each side of the OR has its index (token_families_revoked, _expires).
                let $q = token_families::table
                    .filter(
                        token_families::revoked_at
                            .lt(cut.dead_families)
                            .assume_not_null()
                            .or(token_families::expires_at.lt(cut.dead_families)),
                    )
                    .filter(not(recent_incident));
                let $pk = token_families::id;
                $body
            }
            Prunable::RotatedTokens => {
                let $q =
                    refresh_tokens::table.filter(refresh_tokens::rotated_at.lt(cut.rotated_tokens));
                let $pk = refresh_tokens::id;
                $body
            }
            Prunable::AuthorizationCodes => {
                let family_gone = not(exists(
                    token_families::table.filter(
                        token_families::id
                            .nullable()
                            .eq(authorization_codes::family_id),
                    ),
                ));
                let $q = authorization_codes::table
                    .filter(authorization_codes::expires_at.lt(cut.now))
                    .filter(authorization_codes::used_at.is_null().or(family_gone));
                let $pk = authorization_codes::code_hash;
                $body
            }
            Prunable::Sessions => {
                let $q = sessions::table.filter(
                    sessions::last_seen_at
                        .lt(cut.session_idle)
                        .or(sessions::created_at.lt(cut.session_absolute)),
                );
                let $pk = sessions::id_hash;
                $body
            }
            Prunable::LoginFailures => {
                let $q = login_failures::table
                    .filter(login_failures::window_start.le(cut.throttle_window));
                let $pk = login_failures::key;
                $body
            }
            Prunable::LoginPlaces => {
                let $q = login_places::table.filter(login_places::expires_at.le(cut.now));
                let $pk = login_places::attempt;
                $body
            }
            Prunable::RevokedAccessTokens => {
                let $q = revoked_access_tokens::table
                    .filter(revoked_access_tokens::expires_at.lt(cut.now));
                let $pk = revoked_access_tokens::jti;
                $body
            }
            Prunable::DpopProofs => {
                let $q = dpop_proofs::table.filter(dpop_proofs::expires_at.lt(cut.now));
                let $pk = dpop_proofs::id;
                $body
            }
            Prunable::WebauthnChallenges => {
                let $q =
                    webauthn_challenges::table.filter(webauthn_challenges::expires_at.lt(cut.now));
                let $pk = webauthn_challenges::id;
                $body
            }
            Prunable::ReuseIncidents => {
                let $q = reuse_incidents::table.filter(reuse_incidents::occurred_at.lt(cut.audit));
                let $pk = reuse_incidents::id;
                $body
            }
            Prunable::AuditEvents => {
                let $q = audit_events::table.filter(audit_events::occurred_at.lt(cut.audit));
                let $pk = audit_events::id;
                $body
            }
            Prunable::LogoutNotices => {
                // Delivered or given up, and as old as the audit trail keeps.
                let $q = logout_notices::table
                    .filter(logout_notices::created_at.lt(cut.audit))
                    .filter(
                        logout_notices::delivered_at
                            .is_not_null()
                            .or(logout_notices::failed_at.is_not_null()),
                    );
                let $pk = logout_notices::id;
                $body
            }
        }
    }};
}

impl Prunable {
    /// In the order they are pruned.
    pub const ALL: [Prunable; 12] = [
        Prunable::TokenFamilies,
        Prunable::RotatedTokens,
        Prunable::AuthorizationCodes,
        Prunable::Sessions,
        Prunable::LoginFailures,
        Prunable::LoginPlaces,
        Prunable::RevokedAccessTokens,
        Prunable::DpopProofs,
        Prunable::WebauthnChallenges,
        Prunable::ReuseIncidents,
        Prunable::AuditEvents,
        Prunable::LogoutNotices,
    ];

    /// The table's name.
    pub fn table(self) -> &'static str {
        match self {
            Prunable::TokenFamilies => "token_families",
            Prunable::RotatedTokens => "refresh_tokens",
            Prunable::AuthorizationCodes => "authorization_codes",
            Prunable::Sessions => "sessions",
            Prunable::LoginFailures => "login_failures",
            Prunable::LoginPlaces => "login_places",
            Prunable::RevokedAccessTokens => "revoked_access_tokens",
            Prunable::DpopProofs => "dpop_proofs",
            Prunable::WebauthnChallenges => "webauthn_challenges",
            Prunable::ReuseIncidents => "reuse_incidents",
            Prunable::AuditEvents => "audit_events",
            Prunable::LogoutNotices => "logout_notices",
        }
    }

    /// How many rows may go now.
    pub fn count(self, conn: &mut AnyConnection, cut: &Cutoffs) -> QueryResult<i64> {
        with_query!(self, cut, |q, pk| {
            let _ = pk;
            q.count().get_result(conn)
        })
    }

    /// Up to `limit` ids of rows that may go.
    pub fn next_batch(
        self,
        conn: &mut AnyConnection,
        cut: &Cutoffs,
        limit: i64,
    ) -> QueryResult<Vec<String>> {
        with_query!(self, cut, |q, pk| q.select(pk).limit(limit).load(conn))
    }

    /// Deletes the rows among `ids` that still may go; returns how many.
    pub fn delete(
        self,
        conn: &mut AnyConnection,
        cut: &Cutoffs,
        ids: &[String],
    ) -> QueryResult<usize> {
        with_query!(self, cut, |q, pk| diesel::delete(q.filter(pk.eq_any(ids)))
            .execute(conn))
    }
}

/// Refresh tokens of the families `family_ids` (they go with them); with `rotated_before`, only
/// those [`Prunable::RotatedTokens`] would take on its own.
pub fn tokens_of(
    conn: &mut AnyConnection,
    family_ids: &[String],
    rotated_before: Option<UnixMs>,
) -> QueryResult<i64> {
    let mut total = 0;
    for chunk in family_ids.chunks(1000) {
        let q = refresh_tokens::table
            .filter(refresh_tokens::family_id.eq_any(chunk))
            .into_boxed();
        let q = match rotated_before {
            Some(t) => q.filter(refresh_tokens::rotated_at.lt(t)),
            None => q,
        };
        total += q.count().get_result::<i64>(conn)?;
    }
    Ok(total)
}

/// Every family that may go now.
pub fn prunable_families(conn: &mut AnyConnection, cut: &Cutoffs) -> QueryResult<Vec<String>> {
    with_query!(Prunable::TokenFamilies, cut, |q, pk| q
        .select(pk)
        .load(conn))
}

/// Takes the pruning lock for the rest of the transaction, if no other instance holds it:
/// PostgreSQL's transaction-level advisory lock. SQLite has one writer, so always `true`.
pub fn try_lock(conn: &mut AnyConnection) -> QueryResult<bool> {
    #[derive(QueryableByName)]
    struct Locked {
        #[diesel(sql_type = diesel::sql_types::Bool)]
        locked: bool,
    }
    match conn {
        AnyConnection::Postgresql(c) => {
            let row: Locked = diesel::sql_query("SELECT pg_try_advisory_xact_lock($1) AS locked")
                .bind::<diesel::sql_types::BigInt, _>(crate::store::advisory::PRUNING)
                .get_result(c)?;
            Ok(row.locked)
        }
        AnyConnection::Sqlite(_) => Ok(true),
    }
}
