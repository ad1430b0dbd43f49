//! The hot path's one statement: a plain refresh on PostgreSQL, client authentication
//! included, in one prepared statement. The rules it encodes are those of
//! `domain::family::rotate`; anything out of the ordinary returns no row, and the caller takes
//! that full path. Liveness is the store's one SQL form of it ([`family_live`],
//! [`token_live`]); client authentication and the grant check are restated here, and
//! `tests/api/differential.rs` holds every rule to the full path's answer and rows.

use diesel::{OptionalExtension, QueryResult, RunQueryDsl};

use crate::store::models::{
    family_live, token_live, FamilyLive, SeenProof, TokenFamily, TokenLive,
};
use crate::store::AnyConnection;
use crate::value::{ClientId, TokenId, UnixMs};

/// Consumes the presented token and inserts its successor in one PostgreSQL statement (one
/// round trip, no explicit transaction), when every condition for a plain rotation holds: the
/// client is enabled, may refresh, and its secret's hash matches (no secret for a public
/// client), and a proof came with the request if the client requires DPoP; the token is
/// unrotated and unexpired; its family belongs to the client, is unrevoked and unexpired, and
/// is bound to no DPoP key, to the proof's, or to a confidential client (whose refresh tokens
/// are bound to the client, RFC 9449 §5); its user is enabled. Returns no row when any of
/// them fails; nothing is then written.
///
/// A request's DPoP proof, checked before, is recorded by the same statement, only when it
/// rotates: a proof seen before (by any instance) violates the record's key, which fails
/// the whole statement, so that neither is written ([`SeenProof::was_seen`]). Comparing secret hashes in SQL does not need constant time: the
/// attacker controls the secret, not its SHA-256.
///
/// Exactly one of several concurrent rotations wins: under READ COMMITTED (PostgreSQL's
/// default, which the statement runs at as its own transaction) a second `UPDATE`
/// of the same row waits for the first and re-checks `rotated_at IS NULL` on the row the
/// first wrote. The family row is share-locked first, as the full rotation's transaction locks it: a
/// revocation in progress is waited for and then seen, and one that comes later waits for
/// this statement.
///
/// A query type of its own rather than `sql_query`: diesel then prepares it once per
/// connection, and PostgreSQL stops planning it on every call (planning was a third of the
/// database's time per rotation).
pub struct OneStatementRotation<'a> {
    /// The presented token's id and SHA-256.
    pub id: &'a TokenId,
    pub hash: &'a str,
    /// The client as it authenticates: its id, and the SHA-256 (hex) of the secret it
    /// presented (`None` for a public client, which presents none).
    pub client_id: &'a ClientId,
    pub client_secret_hash: Option<&'a str>,
    /// The successor's id and SHA-256.
    pub successor: &'a TokenId,
    pub successor_hash: &'a str,
    pub now: UnixMs,
    /// When the successor expires from disuse, before the family's own cap.
    pub idle_expiry: UnixMs,
    pub client_ip: Option<&'a str>,
    pub user_agent: Option<&'a str>,
    /// The request's DPoP proof, if it came with one.
    pub proof: Option<ProofRecord<'a>>,
}

/// A checked DPoP proof, as the one statement binds and records it.
#[derive(Debug, Clone, Copy)]
pub struct ProofRecord<'a> {
    /// The thumbprint of its key.
    pub jkt: &'a str,
    pub seen: &'a SeenProof,
}

impl OneStatementRotation<'_> {
    /// Whether `conn` can run the statement: PostgreSQL only. Elsewhere every refresh takes
    /// the full path.
    pub fn supported(conn: &AnyConnection) -> bool {
        matches!(conn, AnyConnection::Postgresql(_))
    }

    /// Runs the statement: the family, when the token was rotated; `None` when it was not, or
    /// when the backend cannot run it ([`OneStatementRotation::supported`]).
    pub fn run(self, conn: &mut AnyConnection) -> QueryResult<Option<TokenFamily>> {
        let AnyConnection::Postgresql(conn) = conn else {
            return Ok(None);
        };
        let now = self.now;
        let proof = self.proof;
        Statement {
            rotation: self,
            family_live: family_live(now),
            token_live: token_live(now),
            jkt: proof.map(|p| p.jkt),
            proof_id: proof.map(|p| p.seen.id.as_str()),
            proof_expires_at: proof.map(|p| p.seen.expires_at),
        }
        .get_result::<TokenFamily>(conn)
        .optional()
    }
}

/// The statement, with the liveness rules as the store's other queries state them: the same
/// expressions render into its SQL.
struct Statement<'a> {
    rotation: OneStatementRotation<'a>,
    family_live: FamilyLive,
    token_live: TokenLive,
    /// The proof's, when the request came with one: its key's thumbprint, its record.
    jkt: Option<&'a str>,
    proof_id: Option<&'a str>,
    proof_expires_at: Option<UnixMs>,
}

impl diesel::query_builder::QueryId for Statement<'_> {
    type QueryId = Statement<'static>;
    const HAS_STATIC_QUERY_ID: bool = true;
}

impl diesel::query_builder::Query for Statement<'_> {
    type SqlType = diesel::sql_types::Untyped;
}

impl<Conn> diesel::RunQueryDsl<Conn> for Statement<'_> {}

impl diesel::query_builder::QueryFragment<diesel::pg::Pg> for Statement<'_> {
    fn walk_ast<'b>(
        &'b self,
        mut out: diesel::query_builder::AstPass<'_, 'b, diesel::pg::Pg>,
    ) -> diesel::QueryResult<()> {
        use diesel::sql_types::{BigInt, Nullable, Text};
        let r = &self.rotation;
        // The SQL is in pieces between the binds; each bind is one `$n`. The tables the
        // liveness expressions name (`token_families`, `refresh_tokens`) are not aliased.
        out.push_sql(
            "WITH family AS ( \
               SELECT token_families.* FROM token_families \
                WHERE token_families.id = (SELECT family_id FROM refresh_tokens WHERE id = ",
        );
        out.push_bind_param::<Text, _>(&r.id)?;
        // A subquery, not a join: a join let the generic plan start from every family of
        // the client.
        out.push_sql(") AND token_families.client_id = ");
        out.push_bind_param::<Text, _>(&r.client_id)?;
        out.push_sql(
            " AND EXISTS (SELECT 1 FROM clients AS c WHERE c.id = token_families.client_id \
                 AND c.disabled_at IS NULL \
                 AND position(' refresh_token ' IN ' ' || c.grant_types || ' ') > 0 \
                 AND (NOT c.require_dpop OR ",
        );
        out.push_bind_param::<Nullable<Text>, _>(&self.jkt)?;
        out.push_sql(
            " IS NOT NULL) \
                 AND (token_families.dpop_jkt IS NULL OR c.secret_hash IS NOT NULL \
                      OR token_families.dpop_jkt = ",
        );
        out.push_bind_param::<Nullable<Text>, _>(&self.jkt)?;
        out.push_sql(") AND c.secret_hash IS NOT DISTINCT FROM ");
        out.push_bind_param::<Nullable<Text>, _>(&r.client_secret_hash)?;
        out.push_sql(") AND ");
        self.family_live.walk_ast(out.reborrow())?;
        out.push_sql(
            " FOR SHARE OF token_families \
             ), old AS ( \
               UPDATE refresh_tokens SET rotated_at = ",
        );
        out.push_bind_param::<BigInt, _>(&r.now)?;
        out.push_sql(", replaced_by = ");
        out.push_bind_param::<Text, _>(&r.successor)?;
        out.push_sql(" FROM family AS f, users AS u WHERE refresh_tokens.id = ");
        out.push_bind_param::<Text, _>(&r.id)?;
        out.push_sql(" AND refresh_tokens.token_hash = ");
        out.push_bind_param::<Text, _>(&r.hash)?;
        out.push_sql(" AND ");
        self.token_live.walk_ast(out.reborrow())?;
        out.push_sql(
            " AND refresh_tokens.family_id = f.id AND u.id = f.user_id AND u.disabled_at IS NULL \
               RETURNING f.id, f.client_id, f.user_id, f.scope, f.auth_method, f.created_at, \
                         f.expires_at, f.revoked_at, f.revoked_reason, f.resources, \
                         f.auth_time, f.sid, f.dpop_jkt, f.amr \
             ), successor AS ( \
               INSERT INTO refresh_tokens (id, family_id, parent_id, token_hash, issued_at, \
                                           expires_at, client_ip, user_agent) \
               SELECT ",
        );
        out.push_bind_param::<Text, _>(&r.successor)?;
        out.push_sql(", old.id, ");
        out.push_bind_param::<Text, _>(&r.id)?;
        out.push_sql(", ");
        out.push_bind_param::<Text, _>(&r.successor_hash)?;
        out.push_sql(", ");
        out.push_bind_param::<BigInt, _>(&r.now)?;
        out.push_sql(", LEAST(");
        out.push_bind_param::<BigInt, _>(&r.idle_expiry)?;
        out.push_sql(", old.expires_at), ");
        out.push_bind_param::<Nullable<Text>, _>(&r.client_ip)?;
        out.push_sql(", ");
        out.push_bind_param::<Nullable<Text>, _>(&r.user_agent)?;
        out.push_sql(
            " FROM old \
             ), proof AS ( \
               INSERT INTO dpop_proofs (id, expires_at) SELECT ",
        );
        out.push_bind_param::<Nullable<Text>, _>(&self.proof_id)?;
        out.push_sql(", ");
        out.push_bind_param::<Nullable<BigInt>, _>(&self.proof_expires_at)?;
        out.push_sql(" FROM old WHERE ");
        out.push_bind_param::<Nullable<Text>, _>(&self.proof_id)?;
        out.push_sql(" IS NOT NULL) SELECT * FROM old");
        Ok(())
    }
}
