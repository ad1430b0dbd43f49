//! The hot path's one statement: a plain refresh on PostgreSQL, client authentication
//! included, in one statement, kept in a function that PostgreSQL plans once per connection.
//! The rules it encodes are those of `domain::family::rotate`; anything out of the ordinary
//! returns no row, and the caller takes that full path. Liveness is the store's one SQL form
//! of it ([`family_live`], [`token_live`]); client authentication and the grant check are
//! restated here, and `tests/api/differential.rs` holds every rule to the full path's answer
//! and rows.

use diesel::result::DatabaseErrorKind;
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
/// It runs as a function written from this statement ([`Function`]): PostgreSQL plans it once
/// per server connection, with or without a pooler in between (planning was a third to a half
/// of the database's time per rotation).
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
        let function = match FUNCTION.get() {
            Some(f) => f,
            None => install(conn)?,
        };
        let call = || self.statement(Some(&function.name));
        let error = match call().get_result::<TokenFamily>(conn).optional() {
            Ok(family) => return Ok(family),
            // A replayed proof, a lost connection: the caller's to answer.
            Err(
                e @ diesel::result::Error::DatabaseError(
                    DatabaseErrorKind::UniqueViolation | DatabaseErrorKind::ClosedConnection,
                    _,
                ),
            ) => return Err(e),
            Err(e) => e,
        };
        // The function may have been dropped or replaced since this process made sure of it.
        match present(conn, function) {
            Ok(false) => {}
            _ => return Err(error),
        }
        match create(conn, function) {
            Ok(()) => call().get_result::<TokenFamily>(conn).optional(),
            Err(e) => {
                // The full path serves the request, slower.
                tracing::error!(error = %e, function = %function.name, "cannot create the rotation's function");
                Ok(None)
            }
        }
    }

    /// The statement, or its function's call (`call`: the function's name).
    fn statement<'s>(&'s self, call: Option<&'s str>) -> Statement<'s> {
        let proof = self.proof;
        Statement {
            rotation: self,
            family_live: family_live(self.now),
            token_live: token_live(self.now),
            jkt: proof.map(|p| p.jkt),
            proof_id: proof.map(|p| p.seen.id.as_str()),
            proof_expires_at: proof.map(|p| p.seen.expires_at),
            call,
            types: None,
        }
    }
}

/// The statement as a PL/pgSQL function, which PostgreSQL plans once per server connection
/// and keeps the plan of. Called with an unnamed statement, it needs nothing kept on the
/// client's side of the connection: a pooler in transaction mode (which allows no named
/// prepared statements) can lend a different server connection to each call, and rotation is
/// not planned anew on each (planning was half of the database's time per rotation).
///
/// Its body is the statement as this code writes it; its name ends with a hash of its
/// definition, so that instances of two versions side by side (a rolling upgrade) each call
/// their own.
pub struct Function {
    pub name: String,
    definition: String,
    /// Its body, as `pg_proc.prosrc` holds it.
    source: String,
}

static FUNCTION: std::sync::OnceLock<Function> = std::sync::OnceLock::new();

/// The function's definition, written from the statement: its parameters are the
/// statement's binds, in order, and its result the rows the statement returns.
fn definition() -> QueryResult<Function> {
    use diesel::pg::{Pg, PgQueryBuilder};
    use diesel::query_builder::{QueryBuilder, QueryFragment};
    let (id, client, successor) = (
        TokenId::new(String::new()),
        ClientId::new(String::new()),
        TokenId::new(String::new()),
    );
    let sample = OneStatementRotation {
        id: &id,
        hash: "",
        client_id: &client,
        client_secret_hash: None,
        successor: &successor,
        successor_hash: "",
        now: UnixMs::from_millis(0),
        idle_expiry: UnixMs::from_millis(0),
        client_ip: None,
        user_agent: None,
        proof: None,
    };
    let types = std::cell::RefCell::new(Vec::new());
    let statement = Statement {
        types: Some(&types),
        ..sample.statement(None)
    };
    let mut sql = PgQueryBuilder::default();
    statement.to_sql(&mut sql, &Pg)?;
    let body = sql.finish();
    let types = types.into_inner();
    let n = types.len();
    if !body.contains(&format!("${n}")) || body.contains(&format!("${}", n + 1)) {
        return Err(diesel::result::Error::QueryBuilderError(
            format!("the rotation statement's {n} parameter types do not match its binds").into(),
        ));
    }
    let params = types.join(", ");
    let source = format!("\n#variable_conflict use_column\nBEGIN\n  RETURN QUERY {body};\nEND\n");
    let signature = format!(
        "({params}) RETURNS TABLE (id text, client_id text, user_id text, scope text, \
         auth_method text, created_at bigint, expires_at bigint, revoked_at bigint, \
         revoked_reason text, resources text, auth_time bigint, sid text, dpop_jkt text, \
         amr text) LANGUAGE plpgsql VOLATILE AS $rotation${source}$rotation$"
    );
    let digest = ring::digest::digest(&ring::digest::SHA256, signature.as_bytes());
    let hash: String = digest.as_ref()[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let name = format!("tessera_rotate_{hash}");
    Ok(Function {
        definition: format!("CREATE OR REPLACE FUNCTION {name}{signature}"),
        name,
        source,
    })
}

/// Creates the function in this database unless it is there, and remembers its name.
pub fn install(conn: &mut diesel::PgConnection) -> QueryResult<&'static Function> {
    let function = match FUNCTION.get() {
        Some(f) => f,
        None => {
            let f = definition()?;
            FUNCTION.get_or_init(|| f)
        }
    };
    create(conn, function)?;
    Ok(function)
}

/// Whether `function` is in the current schema, owned by this role, with this body: only then
/// is it the statement this code writes, and not one another role made first under the name.
fn present(conn: &mut diesel::PgConnection, function: &Function) -> QueryResult<bool> {
    #[derive(diesel::QueryableByName)]
    struct Present {
        #[diesel(sql_type = diesel::sql_types::Bool)]
        present: bool,
    }
    diesel::sql_query(
        "SELECT EXISTS (SELECT 1 FROM pg_proc \
          WHERE proname = $1 AND pronamespace = current_schema()::regnamespace \
            AND proowner = current_user::regrole AND prosrc = $2) AS present",
    )
    .bind::<diesel::sql_types::Text, _>(&function.name)
    .bind::<diesel::sql_types::Text, _>(&function.source)
    .get_result::<Present>(conn)
    .map(|p| p.present)
}

/// Creates `function` unless it is [`present`]; instances starting at once create it once. A
/// function of that name owned by another role is not replaced: PostgreSQL refuses, and so
/// does start-up.
fn create(conn: &mut diesel::PgConnection, function: &Function) -> QueryResult<()> {
    if present(conn, function)? {
        return Ok(());
    }
    // READ COMMITTED whatever the server's default: after waiting for the lock, the check
    // must see what the instance that held it created.
    conn.build_transaction().read_committed().run(|conn| {
        crate::store::advisory::lock_pg(conn, crate::store::advisory::ROTATION_FUNCTION)?;
        if !present(conn, function)? {
            diesel::sql_query(&function.definition).execute(conn)?;
        }
        Ok(())
    })
}

/// The statement, with the liveness rules as the store's other queries state them: the same
/// expressions render into its SQL.
struct Statement<'a> {
    rotation: &'a OneStatementRotation<'a>,
    family_live: FamilyLive,
    token_live: TokenLive,
    /// The proof's, when the request came with one: its key's thumbprint, its record.
    jkt: Option<&'a str>,
    proof_id: Option<&'a str>,
    proof_expires_at: Option<UnixMs>,
    /// The function's name, to write its call instead of the statement.
    call: Option<&'a str>,
    /// Where writing the statement records its parameters' types, for the function.
    types: Option<&'a std::cell::RefCell<Vec<&'static str>>>,
}

/// A bind's type as a function parameter.
trait ParamType {
    const NAME: &'static str;
}
impl ParamType for diesel::sql_types::Text {
    const NAME: &'static str = "text";
}
impl ParamType for diesel::sql_types::BigInt {
    const NAME: &'static str = "bigint";
}
impl<T: ParamType + diesel::sql_types::SqlType> ParamType for diesel::sql_types::Nullable<T> {
    const NAME: &'static str = T::NAME;
}

/// Prepared statements are kept by their SQL: the statement and its function's call differ.
impl diesel::query_builder::QueryId for Statement<'_> {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
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
        // As a call of the function that holds the statement (`call`), only the binds are
        // written, in the same order, separated by commas.
        let call = self.call;
        let mut first = true;
        if let Some(name) = call {
            out.push_sql("SELECT * FROM ");
            out.push_identifier(name)?;
            out.push_sql("(");
        }
        macro_rules! sql {
            ($s:expr $(,)?) => {
                if call.is_none() {
                    out.push_sql($s);
                }
            };
        }
        macro_rules! bind {
            ($t:ty, $v:expr) => {{
                if call.is_some() && !std::mem::take(&mut first) {
                    out.push_sql(", ");
                }
                if let Some(types) = self.types {
                    types.borrow_mut().push(<$t as ParamType>::NAME);
                }
                out.push_bind_param::<$t, _>($v)?;
            }};
        }
        // A liveness rule, which binds "now" once: its SQL, or "now" alone in a call.
        macro_rules! live {
            ($rule:ident) => {
                match call {
                    None => {
                        self.$rule.walk_ast(out.reborrow())?;
                        if let Some(types) = self.types {
                            types.borrow_mut().push(<BigInt as ParamType>::NAME);
                        }
                    }
                    Some(_) => bind!(BigInt, &r.now),
                }
            };
        }
        // The SQL is in pieces between the binds; each bind is one `$n`. The tables the
        // liveness expressions name (`token_families`, `refresh_tokens`) are not aliased.
        sql!(
            "WITH family AS ( \
               SELECT token_families.* FROM token_families \
                WHERE token_families.id = (SELECT family_id FROM refresh_tokens WHERE id = ",
        );
        bind!(Text, &r.id);
        // A subquery, not a join: a join let the generic plan start from every family of
        // the client.
        sql!(") AND token_families.client_id = ");
        bind!(Text, &r.client_id);
        sql!(
            " AND EXISTS (SELECT 1 FROM clients AS c WHERE c.id = token_families.client_id \
                 AND c.disabled_at IS NULL \
                 AND position(' refresh_token ' IN ' ' || c.grant_types || ' ') > 0 \
                 AND (NOT c.require_dpop OR ",
        );
        bind!(Nullable<Text>, &self.jkt);
        sql!(
            " IS NOT NULL) \
                 AND (token_families.dpop_jkt IS NULL OR c.secret_hash IS NOT NULL \
                      OR token_families.dpop_jkt = ",
        );
        bind!(Nullable<Text>, &self.jkt);
        sql!(") AND c.secret_hash IS NOT DISTINCT FROM ");
        bind!(Nullable<Text>, &r.client_secret_hash);
        sql!(") AND ");
        live!(family_live);
        sql!(
            " FOR SHARE OF token_families \
             ), old AS ( \
               UPDATE refresh_tokens SET rotated_at = ",
        );
        bind!(BigInt, &r.now);
        sql!(", replaced_by = ");
        bind!(Text, &r.successor);
        sql!(" FROM family AS f, users AS u WHERE refresh_tokens.id = ");
        bind!(Text, &r.id);
        sql!(" AND refresh_tokens.token_hash = ");
        bind!(Text, &r.hash);
        sql!(" AND ");
        live!(token_live);
        sql!(
            " AND refresh_tokens.family_id = f.id AND u.id = f.user_id AND u.disabled_at IS NULL \
               RETURNING f.id, f.client_id, f.user_id, f.scope, f.auth_method, f.created_at, \
                         f.expires_at, f.revoked_at, f.revoked_reason, f.resources, \
                         f.auth_time, f.sid, f.dpop_jkt, f.amr \
             ), successor AS ( \
               INSERT INTO refresh_tokens (id, family_id, parent_id, token_hash, issued_at, \
                                           expires_at, client_ip, user_agent) \
               SELECT ",
        );
        bind!(Text, &r.successor);
        sql!(", old.id, ");
        bind!(Text, &r.id);
        sql!(", ");
        bind!(Text, &r.successor_hash);
        sql!(", ");
        bind!(BigInt, &r.now);
        sql!(", LEAST(");
        bind!(BigInt, &r.idle_expiry);
        sql!(", old.expires_at), ");
        bind!(Nullable<Text>, &r.client_ip);
        sql!(", ");
        bind!(Nullable<Text>, &r.user_agent);
        sql!(
            " FROM old \
             ), proof AS ( \
               INSERT INTO dpop_proofs (id, expires_at) SELECT ",
        );
        bind!(Nullable<Text>, &self.proof_id);
        sql!(", ");
        bind!(Nullable<BigInt>, &self.proof_expires_at);
        sql!(" FROM old WHERE ");
        bind!(Nullable<Text>, &self.proof_id);
        sql!(" IS NOT NULL) SELECT * FROM old");
        if call.is_some() {
            out.push_sql(")");
        }
        Ok(())
    }
}
