//! The hot path's one statement (`store/rotation.rs`) restates in SQL the rules of the full
//! refresh path (client authentication, then `domain::family::rotate`). This pins the two
//! together on PostgreSQL: every state a refresh can meet is built once, the database is copied
//! three times, and the same request, at the same frozen "now", goes
//!
//! - A: through `POST /token` as the server runs it (the one statement first),
//! - B: through the full path alone,
//! - C: through the one statement alone, where the server would try it.
//!
//! A and B must give the same answer and leave the same rows. C must either decline and write
//! nothing while B refuses (or answers a grace retry, which only the full path knows), or
//! rotate exactly as B does, rows included. A rule dropped from either path makes them differ.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use diesel::prelude::*;
use diesel::sql_types::Text;
use serde_json::{json, Value};
use tessera::domain::client::GrantType;
use tessera::domain::crypto::sha256_hex;
use tessera::domain::dpop::{self, Proof};
use tessera::domain::family::{rotate_for_client, ClientCheck, OneStatement, RequestMeta, Rotator};
use tessera::domain::refresh_token::hash_token;
use tessera::domain::Clock;
use tessera::grant::{OAuthError, Params, RefreshPath, Services, TokenRequest, TokenResponse};
use tessera::settings::Settings;
use tessera::store::rotation::ProofRecord;

use crate::helpers::dpop::DpopKey;
use crate::helpers::{claims, postgres_url, test_env, Db, TestApp, TestDb, PASSWORD};
use tessera::value::UnixMs;

/// The user agent the suite's HTTP client sends: the app instance that rotated.
const SAME_AGENT: &str = "tessera-tests/1.0";
const RESOURCE: &str = "https://api.example.test/";

/// Every state a refresh can meet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Live,
    LivePublicClient,
    RotatedInsideGrace,
    RotatedAfterGrace,
    RotatedOtherUserAgent,
    IdleExpired,
    AbsolutelyExpired,
    Revoked,
    RotatedAndPruned,
    ClientDisabled,
    ClientSecretRotated,
    GrantRemovedFromClient,
    ClientScopeNarrowed,
    UserDisabled,
    UserDisabledFamilyKept,
    AnotherClientsToken,
    WrongSecret,
    UnknownClient,
    Malformed,
    ForgedMac,
    ScopeNarrowedInRequest,
    ScopeWidenedInRequest,
    ResourceNamed,
    ResourceOutsideGrant,
    /// A public client's family bound to a DPoP key, refreshed with a proof from it.
    DpopBound,
    DpopBoundOtherKey,
    DpopBoundNoProof,
    /// A confidential client's family begun with a proof: its refresh token is bound to the
    /// client, not the key (RFC 9449 §5).
    DpopBoundConfidentialNoProof,
    /// A family begun without a proof, refreshed with one: the access token is bound.
    DpopUnboundWithProof,
    DpopRequiredNoProof,
    DpopRequiredWithProof,
    /// The proof was presented before.
    DpopProofReplayed,
}

impl State {
    /// Whether the one statement should answer this state itself: a plain refresh of a live
    /// token by its own, enabled client. Pins the test to the fast path actually being taken.
    fn one_statement_rotates(self) -> bool {
        matches!(
            self,
            State::Live
                | State::LivePublicClient
                | State::ClientScopeNarrowed
                | State::DpopBound
                | State::DpopBoundConfidentialNoProof
                | State::DpopUnboundWithProof
                | State::DpopRequiredWithProof
        )
    }
}

macro_rules! states {
    ($($name:ident => $state:ident),* $(,)?) => {
        $(
            mod $name {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    if crate::helpers::postgres_url().is_some() {
                        super::paths_agree(super::State::$state).await
                    } else {
                        crate::helpers::skipped(
                            concat!(module_path!(), "::postgres"),
                            "TESSERA_TEST_POSTGRES_URL is not set",
                        );
                    }
                }
            }
        )*
    };
}

states!(
    live => Live,
    live_public_client => LivePublicClient,
    rotated_inside_grace => RotatedInsideGrace,
    rotated_after_grace => RotatedAfterGrace,
    rotated_other_user_agent => RotatedOtherUserAgent,
    idle_expired => IdleExpired,
    absolutely_expired => AbsolutelyExpired,
    revoked => Revoked,
    rotated_and_pruned => RotatedAndPruned,
    client_disabled => ClientDisabled,
    client_secret_rotated => ClientSecretRotated,
    grant_removed_from_client => GrantRemovedFromClient,
    client_scope_narrowed => ClientScopeNarrowed,
    user_disabled => UserDisabled,
    user_disabled_family_kept => UserDisabledFamilyKept,
    another_clients_token => AnotherClientsToken,
    wrong_secret => WrongSecret,
    unknown_client => UnknownClient,
    malformed => Malformed,
    forged_mac => ForgedMac,
    scope_narrowed_in_request => ScopeNarrowedInRequest,
    scope_widened_in_request => ScopeWidenedInRequest,
    resource_named => ResourceNamed,
    resource_outside_grant => ResourceOutsideGrant,
    dpop_bound => DpopBound,
    dpop_bound_other_key => DpopBoundOtherKey,
    dpop_bound_no_proof => DpopBoundNoProof,
    dpop_bound_confidential_no_proof => DpopBoundConfidentialNoProof,
    dpop_unbound_with_proof => DpopUnboundWithProof,
    dpop_required_no_proof => DpopRequiredNoProof,
    dpop_required_with_proof => DpopRequiredWithProof,
    dpop_proof_replayed => DpopProofReplayed,
);

/// The request to make, and when.
struct Case {
    client_id: String,
    /// `None`: a public client, which sends its id in the form.
    secret: Option<String>,
    refresh_token: String,
    extra: Vec<(&'static str, String)>,
    user_agent: &'static str,
    /// How long after the set-up the request is made.
    after: Duration,
    /// The `DPoP` header, and the proof as the server reads it.
    dpop: Option<(String, Proof)>,
}

impl Case {
    fn authorization(&self) -> Option<String> {
        self.secret.as_ref().map(|s| {
            format!(
                "Basic {}",
                STANDARD.encode(format!("{}:{s}", self.client_id))
            )
        })
    }

    fn params(&self) -> Params {
        let mut form = form_urlencoded::Serializer::new(String::new());
        form.append_pair("grant_type", "refresh_token")
            .append_pair("refresh_token", &self.refresh_token);
        if self.secret.is_none() {
            form.append_pair("client_id", &self.client_id);
        }
        for (k, v) in &self.extra {
            form.append_pair(k, v);
        }
        Params::parse(form.finish().as_bytes()).unwrap()
    }

    /// The server tries the one statement for a refresh that names no scope and no resource.
    fn plain(&self) -> bool {
        self.extra.is_empty()
    }
}

async fn admin_ok(app: &TestApp, args: &[&str]) {
    let out = app.admin(args, None).await;
    assert!(
        out.status.success(),
        "tessera-admin {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

async fn sql(app: &TestApp, statement: &'static str) {
    app.with_conn(move |c| diesel::sql_query(statement).execute(c).unwrap())
        .await;
}

/// Brings the database to `state` through the server, the CLI or (for what no command does
/// alone) SQL; returns the request to make.
async fn build(state: State, app: &TestApp) -> Case {
    let (id, secret) = app.password_client().await;
    app.user("alice").await;
    let first = app.password_grant((&id, &secret), "alice").await;
    let mut case = Case {
        client_id: id.clone(),
        secret: Some(secret.clone()),
        refresh_token: first["refresh_token"].as_str().unwrap().to_owned(),
        extra: Vec::new(),
        user_agent: SAME_AGENT,
        after: Duration::from_secs(1),
        dpop: None,
    };
    let rotate = || async { app.refreshed((&id, &secret), &case.refresh_token).await };
    match state {
        State::Live => {}
        State::LivePublicClient => {
            let (public, _) = app
                .client(
                    &[GrantType::Password, GrantType::RefreshToken],
                    true,
                    "read",
                )
                .await;
            let res = app
                .token(
                    None,
                    &[
                        ("grant_type", "password"),
                        ("username", "alice"),
                        ("password", PASSWORD),
                        ("client_id", &public),
                    ],
                )
                .await;
            assert_eq!(res.status(), 200);
            let body: Value = res.json().await.unwrap();
            case.client_id = public;
            case.secret = None;
            case.refresh_token = body["refresh_token"].as_str().unwrap().to_owned();
        }
        State::RotatedInsideGrace => {
            rotate().await;
        }
        State::RotatedAfterGrace => {
            rotate().await;
            case.after = Duration::from_secs(10);
        }
        State::RotatedOtherUserAgent => {
            rotate().await;
            case.user_agent = "another-app/2.0";
        }
        State::IdleExpired => case.after = Duration::from_secs(15 * 86_400),
        // Past the family's cap while the token itself has not expired: the family rule alone.
        State::AbsolutelyExpired => {
            sql(
                app,
                "UPDATE token_families SET expires_at = created_at + 500",
            )
            .await
        }
        State::Revoked => {
            let res = app.revoke((&id, &secret), &case.refresh_token).await;
            assert_eq!(res.status(), 200);
        }
        State::RotatedAndPruned => {
            rotate().await;
            sql(
                app,
                "DELETE FROM refresh_tokens WHERE rotated_at IS NOT NULL",
            )
            .await;
            case.after = Duration::from_secs(10);
        }
        State::ClientDisabled => admin_ok(app, &["client", "disable", &id, "--yes"]).await,
        State::ClientSecretRotated => {
            admin_ok(app, &["client", "rotate-secret", &id, "--yes"]).await
        }
        State::GrantRemovedFromClient => {
            admin_ok(app, &["client", "update", &id, "--grant", "password"]).await
        }
        State::ClientScopeNarrowed => {
            admin_ok(app, &["client", "update", &id, "--scope", "read"]).await
        }
        State::UserDisabled => admin_ok(app, &["user", "disable", "alice", "--yes"]).await,
        State::UserDisabledFamilyKept => {
            sql(app, "UPDATE users SET disabled_at = 1").await;
        }
        State::AnotherClientsToken => {
            let (other, other_secret) = app.password_client().await;
            case.client_id = other;
            case.secret = Some(other_secret);
        }
        State::WrongSecret => case.secret = Some("not-the-secret".into()),
        State::UnknownClient => case.client_id = "no-such-client".into(),
        State::Malformed => case.refresh_token = "tsr_not-a-token".into(),
        State::ForgedMac => {
            let mut forged = case.refresh_token.clone();
            let last = forged.pop().unwrap();
            forged.push(if last == 'A' { 'B' } else { 'A' });
            case.refresh_token = forged;
        }
        State::ScopeNarrowedInRequest => case.extra.push(("scope", "read".into())),
        State::ScopeWidenedInRequest => case.extra.push(("scope", "read admin".into())),
        State::ResourceNamed | State::ResourceOutsideGrant => {
            admin_ok(app, &["resource", "add", RESOURCE, "--scope", "read"]).await;
            if state == State::ResourceNamed {
                let res = app
                    .token(
                        Some((&id, &secret)),
                        &[
                            ("grant_type", "password"),
                            ("username", "alice"),
                            ("password", PASSWORD),
                            ("resource", RESOURCE),
                        ],
                    )
                    .await;
                assert_eq!(res.status(), 200);
                let body: Value = res.json().await.unwrap();
                case.refresh_token = body["refresh_token"].as_str().unwrap().to_owned();
            }
            case.extra.push(("resource", RESOURCE.into()));
        }
        State::DpopBound
        | State::DpopBoundOtherKey
        | State::DpopBoundNoProof
        | State::DpopProofReplayed => {
            let key = DpopKey::new();
            let (public, _) = app
                .client(
                    &[GrantType::Password, GrantType::RefreshToken],
                    true,
                    "read",
                )
                .await;
            let proof = proof(app, &key);
            let res = app
                .token_with_dpop(
                    &proof.0,
                    &[
                        ("grant_type", "password"),
                        ("username", "alice"),
                        ("password", PASSWORD),
                        ("client_id", &public),
                    ],
                )
                .await;
            assert_eq!(res.status(), 200);
            let body: Value = res.json().await.unwrap();
            assert_eq!(body["token_type"], "DPoP");
            case.client_id = public;
            case.secret = None;
            case.refresh_token = body["refresh_token"].as_str().unwrap().to_owned();
            case.dpop = match state {
                State::DpopBound => Some(self::proof(app, &key)),
                State::DpopBoundOtherKey => Some(self::proof(app, &DpopKey::new())),
                State::DpopProofReplayed => Some(proof),
                _ => None,
            };
        }
        State::DpopBoundConfidentialNoProof => {
            let res = app
                .token_with_dpop(
                    &proof(app, &DpopKey::new()).0,
                    &[
                        ("grant_type", "password"),
                        ("username", "alice"),
                        ("password", PASSWORD),
                        ("client_id", &id),
                        ("client_secret", &secret),
                    ],
                )
                .await;
            assert_eq!(res.status(), 200);
            let body: Value = res.json().await.unwrap();
            case.refresh_token = body["refresh_token"].as_str().unwrap().to_owned();
        }
        State::DpopUnboundWithProof => case.dpop = Some(proof(app, &DpopKey::new())),
        State::DpopRequiredNoProof | State::DpopRequiredWithProof => {
            admin_ok(app, &["client", "update", &id, "--require-dpop", "true"]).await;
            if state == State::DpopRequiredWithProof {
                case.dpop = Some(proof(app, &DpopKey::new()));
            }
        }
    }
    case
}

/// A fresh proof for the token endpoint, and what the server reads of it.
fn proof(app: &TestApp, key: &DpopKey) -> (String, Proof) {
    let iat = app.clock.now().unix_seconds();
    let claims = DpopKey::claims("POST", "http://tessera.test/token", iat);
    let proof = Proof {
        jkt: key.thumbprint(),
        jti: claims["jti"].as_str().unwrap().to_owned(),
        iat,
    };
    (key.sign(&key.header(), &claims), proof)
}

async fn paths_agree(state: State) {
    assert!(postgres_url().is_some());
    let source = TestDb::new(Db::Postgres);
    let master_key = STANDARD.encode(uuid::Uuid::new_v4().as_bytes().repeat(2));
    // No pruning while the state is built: it is what the paths are to meet.
    let app = TestApp::spawn_on(
        Db::Postgres,
        &source.url,
        &master_key,
        &[("TESSERA_RETENTION__INTERVAL", "0s")],
    )
    .await;
    let case = build(state, &app).await;
    let now = app.clock.now() + case.after;
    drop(app);
    tokio::task::spawn_blocking(move || compare(state, &source, &master_key, &case, now))
        .await
        .unwrap();
}

fn compare(state: State, source: &TestDb, master_key: &str, case: &Case, now: UnixMs) {
    let (a, b, c) = (source.copy(), source.copy(), source.copy());
    let before = dump(&source.url);
    let meta = RequestMeta::new(Some("192.0.2.10".into()), Some(case.user_agent));
    let authorization = case.authorization();
    let settings = |db: &TestDb| {
        let mut env = test_env(&db.url, master_key);
        env.push(("TESSERA_DATABASE__POOL_SIZE".into(), "2".into()));
        Settings::from_env(env).unwrap()
    };
    let run = |db: &TestDb, path: RefreshPath| {
        let settings = settings(db);
        let services = Services::open(&settings, Clock::frozen(now).0).unwrap();
        let params = case.params();
        let request = TokenRequest {
            authorization: authorization.as_deref(),
            dpop: case.dpop.as_ref().map(|(header, _)| header.as_str()),
            params: &params,
            meta: &meta,
        };
        let answer = services.tokens.token_by(path, &request);
        drop(services);
        (answer, dump(&db.url))
    };
    let (answer_a, rows_a) = run(&a, RefreshPath::OneStatementFirst);
    let (answer_b, rows_b) = run(&b, RefreshPath::FullOnly);
    let (answer_a, rows_a) = normalized(&before, answer(answer_a), &rows_a);
    let (answer_b, rows_b) = normalized(&before, answer(answer_b), &rows_b);
    assert_eq!(answer_a, answer_b, "{state:?}: the answers differ");
    assert_eq!(rows_a, rows_b, "{state:?}: the rows differ");

    if !case.plain() {
        assert!(!state.one_statement_rotates());
        return;
    }
    // C: the one statement alone, as the token endpoint calls it.
    let settings = settings(&c);
    let master = settings.master_key(false).unwrap();
    let options = tessera::store::Options {
        pool_size: 1,
        connect_timeout: Duration::from_secs(10),
        ..settings.database.options()
    };
    let (pool, _) = tessera::store::connect_and_migrate(&c.url, &options).unwrap();
    let secret_hash = case.secret.as_deref().map(|s| sha256_hex(s.as_bytes()));
    let tokens = settings.tokens.clone();
    let window = dpop::replay_window(tokens.dpop_max_age, tokens.dpop_clock_skew);
    let seen = case
        .dpop
        .as_ref()
        .map(|(_, p)| (p, p.sighting(window, now)));
    let check = ClientCheck {
        id: &case.client_id.as_str().into(),
        secret_hash: secret_hash.as_deref(),
        proof: seen
            .as_ref()
            .map(|(p, seen)| ProofRecord { jkt: &p.jkt, seen }),
    };
    let clock = Clock::frozen(now).0;
    let with = Rotator {
        master: &master,
        life: settings.lifetimes(),
        clock: &clock,
    };
    let issued = rotate_for_client(
        &mut pool.get().unwrap(),
        &with,
        &case.refresh_token,
        &check,
        &meta,
    )
    .unwrap();
    drop(pool);
    let b_rotated = answer_b["refresh_token"]
        .as_str()
        .is_some_and(|t| t.starts_with("<new"));
    let rows_c = dump(&c.url);
    match issued {
        OneStatement::Rotated(issued) => {
            assert!(
                state.one_statement_rotates(),
                "{state:?}: the one statement rotated a token the full path refuses: {answer_b}"
            );
            assert!(b_rotated, "{state:?}: {answer_b}");
            let issued = json!({
                "refresh_token": hash_token(issued.refresh_token.expose()),
                "scope": issued.scope.to_string(),
            });
            let (issued, rows_c) = normalized(&before, issued, &rows_c);
            // (B also recorded the client's use, `clients.last_used_at`, which the dump leaves
            // out: `TokenEndpoint::token` does that whichever path answers.)
            assert_eq!(
                rows_c, rows_b,
                "{state:?}: the one statement wrote other rows"
            );
            assert_eq!(issued["refresh_token"], "<new token>");
            assert_eq!(issued["scope"], answer_b["scope"]);
        }
        OneStatement::ProofReplayed => {
            assert_eq!(state, State::DpopProofReplayed);
            assert_eq!(answer_b["error"], "invalid_dpop_proof", "{answer_b}");
            assert_eq!(rows_c, before, "{state:?}: the one statement wrote rows");
        }
        OneStatement::Declined => {
            assert!(
                !state.one_statement_rotates(),
                "{state:?}: the one statement declined a plain refresh"
            );
            assert!(
                !b_rotated,
                "{state:?}: the full path rotated what the one statement refused: {answer_b}"
            );
            assert_eq!(
                rows_c, before,
                "{state:?}: the one statement wrote rows and declined"
            );
        }
    }
}

/// The tables a refresh reads or writes, and each one's key.
const TABLES: [(&str, &str); 8] = [
    ("clients", "id"),
    ("users", "id"),
    ("token_families", "id"),
    ("refresh_tokens", "id"),
    ("reuse_incidents", "id"),
    ("audit_events", "id"),
    ("revoked_access_tokens", "jti"),
    ("dpop_proofs", "id"),
];

#[derive(QueryableByName)]
struct JsonRow {
    #[diesel(sql_type = Text)]
    row: String,
}

type Rows = BTreeMap<&'static str, Vec<Value>>;

/// Every row of [`TABLES`], as JSON, ordered.
fn dump(url: &str) -> Rows {
    let mut conn = diesel::pg::PgConnection::establish(url).unwrap();
    TABLES
        .iter()
        .map(|(table, _)| {
            let mut rows: Vec<Value> = diesel::sql_query(format!(
                "SELECT row_to_json(t)::text AS row FROM {table} AS t"
            ))
            .load::<JsonRow>(&mut conn)
            .unwrap()
            .into_iter()
            .map(|r| {
                let mut v: Value = serde_json::from_str(&r.row).unwrap();
                // Written once a day per client by the token endpoint itself, not the paths.
                v.as_object_mut().unwrap().remove("last_used_at");
                v
            })
            .collect();
            rows.sort_by_key(|r| r.to_string());
            (*table, rows)
        })
        .collect()
}

/// A response as comparable JSON: a new refresh token by its hash.
fn answer(result: Result<TokenResponse, OAuthError>) -> Value {
    match result {
        Ok(t) => {
            let mut claims = claims(&t.access_token);
            claims.as_object_mut().unwrap().remove("jti");
            json!({
                "token_type": t.token_type,
                "expires_in": t.expires_in,
                "scope": t.scope,
                "refresh_token": t.refresh_token.map(|rt| hash_token(&rt)),
                "claims": claims,
            })
        }
        Err(e) => json!({ "error": e.code(), "error_description": e.description() }),
    }
}

/// The rows (and the answer) with what is new since `before` named by role: a new row's key
/// and a new token's hash are random, and differ between two runs of the same request.
fn normalized(before: &Rows, answer: Value, after: &Rows) -> (Value, Vec<String>) {
    let mut names: BTreeMap<String, String> = BTreeMap::new();
    for (table, key) in TABLES {
        let known: BTreeSet<String> = before[table].iter().map(|r| r[key].to_string()).collect();
        for row in after[table]
            .iter()
            .filter(|r| !known.contains(&r[key].to_string()))
        {
            let id = row[key].as_str().unwrap().to_owned();
            names.insert(id, format!("<new {table}>"));
            if let Some(hash) = row.get("token_hash").and_then(Value::as_str) {
                names.insert(hash.to_owned(), "<new token>".to_owned());
            }
        }
    }
    let rename = |text: String| {
        names
            .iter()
            .fold(text, |text, (raw, name)| text.replace(raw.as_str(), name))
    };
    let mut rows: Vec<String> = after
        .iter()
        .flat_map(|(table, rows)| rows.iter().map(move |r| format!("{table} {r}")))
        .map(rename)
        .collect();
    rows.sort();
    let answer = serde_json::from_str(&rename(answer.to_string())).unwrap();
    (answer, rows)
}
