//! Retention: pruning deletes what can no longer matter, and nothing else.

use std::time::Duration;

use serde_json::{json, Value};
use tessera::domain::retention;
use tessera::store::models::{AuthorizationCode, SeenProof, Session, WebauthnChallenge};

use crate::helpers::{both_backends, claims, eventually, Db, TestApp};

both_backends!(
    pruning_removes_only_what_can_no_longer_matter,
    a_replay_of_a_pruned_token_still_revokes_its_family,
    revoking_a_pruned_token_revokes_its_family,
    what_retention_deleted_is_reported_as_pruned,
    the_server_prunes_by_itself,
    an_interval_of_zero_leaves_pruning_to_the_cli,
    the_cli_prunes_and_dry_runs,
);

const DAY: Duration = Duration::from_secs(86_400);

/// Rows per table, for the tables pruning touches.
async fn rows(app: &TestApp) -> Vec<(&'static str, i64)> {
    app.with_conn(|c| {
        use diesel::prelude::*;
        use tessera::store::schema::*;
        macro_rules! count {
            ($t:ident) => {
                (
                    stringify!($t),
                    $t::table.count().get_result::<i64>(c).unwrap(),
                )
            };
        }
        vec![
            count!(token_families),
            count!(refresh_tokens),
            count!(authorization_codes),
            count!(sessions),
            count!(login_failures),
            count!(revoked_access_tokens),
            count!(reuse_incidents),
            count!(audit_events),
        ]
    })
    .await
}

fn count(rows: &[(&str, i64)], table: &str) -> i64 {
    rows.iter().find(|(t, _)| *t == table).unwrap().1
}

/// Prunes as the server does, at the server's (moved) time; the report as `prune -o json`
/// prints its tables.
async fn prune(app: &TestApp, dry_run: bool) -> Value {
    let policy = app.settings.retention_policy();
    let now = app.clock.now();
    let report = app
        .with_conn(move |c| retention::prune(c, &policy, now, dry_run).unwrap())
        .await;
    assert!(!report.interrupted);
    let tables: serde_json::Map<String, Value> = report
        .tables
        .iter()
        .map(|(t, n)| ((*t).to_owned(), (*n).into()))
        .collect();
    json!({"tables": tables, "total": report.total()})
}

/// `tessera-admin prune`, with the system's time.
async fn admin_prune(app: &TestApp, dry_run: bool) -> Value {
    let mut args = vec!["prune", "-o", "json"];
    if dry_run {
        args.push("--dry-run");
    }
    let out = app.admin(&args, None).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

async fn pruning_removes_only_what_can_no_longer_matter(db: Db) {
    // The server's own pruning waits an hour after its first pass: the test prunes here.
    let app = TestApp::spawn_with(db, &[("TESSERA_RETENTION__INTERVAL", "1h")]).await;
    let (id, secret) = app.password_client().await;
    let c = (id.as_str(), secret.as_str());
    let user_id = app.user("alice").await;
    let now = app.clock.now();

    // A family that stays live, one revoked now, one revoked by reuse detection (an incident).
    let live = app.password_grant(c, "alice").await;
    let live_sid = claims(live["access_token"].as_str().unwrap())["sid"]
        .as_str()
        .unwrap()
        .to_owned();
    let revoked = app.password_grant(c, "alice").await;
    assert_eq!(
        app.revoke(c, revoked["refresh_token"].as_str().unwrap())
            .await
            .status(),
        200
    );
    let reused = app.password_grant(c, "alice").await;
    let next = app
        .refreshed(c, reused["refresh_token"].as_str().unwrap())
        .await;
    app.refresh(c, next["refresh_token"].as_str().unwrap())
        .await;
    app.refresh(c, reused["refresh_token"].as_str().unwrap())
        .await;
    // An access token revoked before it expires.
    app.revoke(c, live["access_token"].as_str().unwrap()).await;
    // Codes: one never used, one whose exchange started the live family; a session.
    let sid = live_sid.clone();
    let client_id = id.clone();
    app.with_conn(move |conn| {
        for (hash, family) in [("unused", None), ("used", Some(sid))] {
            AuthorizationCode {
                code_hash: hash.into(),
                client_id: client_id.as_str().into(),
                user_id: user_id.as_str().into(),
                scope: "read".into(),
                redirect_uri: "http://localhost/cb".into(),
                pkce: "S256:x".into(),
                created_at: now,
                expires_at: now + Duration::from_secs(60),
                used_at: family.as_ref().map(|_| now),
                family_id: family.map(Into::into),
                redirect_uri_given: true,
                resources: None,
                nonce: None,
                auth_time: None,
                sid: None,
                dpop_jkt: None,
                amr: None,
            }
            .insert(conn)
            .unwrap();
        }
        Session {
            id_hash: "session".into(),
            user_id: user_id.into(),
            created_at: now,
            last_seen_at: now,
            amr: None,
        }
        .insert(conn)
        .unwrap();
        // A passkey ceremony that is never answered.
        WebauthnChallenge {
            id: "ceremony".into(),
            user_id: None,
            purpose: "sign-in".into(),
            state: "{}".into(),
            expires_at: now + Duration::from_secs(300),
        }
        .insert(conn)
        .unwrap();
        // A DPoP proof's id, remembered while the proof could be presented again.
        let seen = SeenProof {
            id: "proof".into(),
            expires_at: now + Duration::from_secs(70),
        };
        assert!(seen.first_use(conn).unwrap());
    })
    .await;
    // A failed sign-in: a throttle window for the name and the address.
    app.sign_in(c, "alice", "wrong").await;
    let before = rows(&app).await;
    assert_eq!(count(&before, "token_families"), 3);
    assert_eq!(count(&before, "reuse_incidents"), 1);

    // Nothing can go yet.
    assert_eq!(prune(&app, true).await["total"], 0);

    // A month on: the revoked family has been dead for 30 days (its token goes with it), the
    // reused family's two rotated tokens are long past any grace retry, expired codes, sessions,
    // throttle windows and revoked access-token ids no longer matter. The live family expired
    // from disuse 17 days ago, the reused one has an incident within the audit window: kept.
    app.advance(31 * DAY);
    let expected = serde_json::json!({
        "token_families": 1,
        "refresh_tokens": 3,
        "authorization_codes": 1,
        "sessions": 1,
        "login_failures": 2,
        "login_places": 0,
        "revoked_access_tokens": 1,
        "dpop_proofs": 1,
        "webauthn_challenges": 1,
        "reuse_incidents": 0,
        "audit_events": 0,
        "logout_notices": 0,
    });
    let dry = prune(&app, true).await;
    assert_eq!(dry["tables"], expected, "{dry}");
    assert_eq!(rows(&app).await, before, "a dry run deletes nothing");
    let done = prune(&app, false).await;
    assert_eq!(done["tables"], expected, "{done}");
    assert_eq!(done["total"], 11);
    let after = rows(&app).await;
    for (table, n) in &before {
        let gone = expected.get(*table).and_then(Value::as_i64).unwrap_or(0);
        assert_eq!(count(&after, table), n - gone, "{table}");
    }
    assert_eq!(prune(&app, true).await["total"], 0, "all of it went");
    // A family started now works as ever.
    let fresh = app.password_grant(c, "alice").await;
    app.refreshed(c, fresh["refresh_token"].as_str().unwrap())
        .await;

    // Three months and a half after the start: the first family (its absolute lifetime ended on
    // day 30), the one started on day 31 (ended on day 61), the reused one now that its incident
    // is older than the audit window (the incident goes with it), the used code of a family
    // that is gone, and the first days' audit events.
    app.advance(60 * DAY + DAY / 2);
    let done = prune(&app, false).await;
    assert_eq!(done["tables"]["token_families"], 3, "{done}");
    assert_eq!(done["tables"]["authorization_codes"], 1, "{done}");
    assert!(
        done["tables"]["audit_events"].as_i64().unwrap() > 0,
        "{done}"
    );
    let after = rows(&app).await;
    for table in [
        "token_families",
        "refresh_tokens",
        "authorization_codes",
        "reuse_incidents",
    ] {
        assert_eq!(count(&after, table), 0, "{table}");
    }
    let cutoff = app.clock.now() - 90 * DAY;
    let old_events: i64 = app
        .with_conn(move |c| {
            use diesel::prelude::*;
            use tessera::store::schema::audit_events;
            audit_events::table
                .filter(audit_events::occurred_at.lt(cutoff))
                .count()
                .get_result(c)
                .unwrap()
        })
        .await;
    assert_eq!(old_events, 0);
}

async fn the_server_prunes_by_itself(db: Db) {
    let app = TestApp::spawn_with(db, &[("TESSERA_RETENTION__INTERVAL", "200ms")]).await;
    let (id, secret) = app.password_client().await;
    let c = (id.as_str(), secret.as_str());
    app.user("alice").await;
    let tokens = app.password_grant(c, "alice").await;
    app.revoke(c, tokens["refresh_token"].as_str().unwrap())
        .await;
    let live = app.password_grant(c, "alice").await;
    app.advance(31 * DAY);
    let families = || {
        app.with_conn(|c| {
            use diesel::prelude::*;
            use tessera::store::schema::token_families;
            token_families::table.count().get_result::<i64>(c).unwrap()
        })
    };
    eventually("the server prunes", Duration::from_secs(10), || async {
        (families().await == 1).then_some(())
    })
    .await;
    // The family left is the live one (its token expired from disuse 17 days ago; it goes 30
    // days after its absolute lifetime).
    let res = app
        .refresh(c, live["refresh_token"].as_str().unwrap())
        .await;
    assert_eq!(res.status(), 400);
}

/// The CLI runs the same pruning (at the system's time): seconds-long windows make rows
/// prunable without moving any clock.
async fn the_cli_prunes_and_dry_runs(db: Db) {
    let app = TestApp::spawn_with(
        db,
        &[
            ("TESSERA_RETENTION__INTERVAL", "1h"),
            ("TESSERA_TOKENS__ACCESS_TTL", "1s"),
            ("TESSERA_THROTTLE__WINDOW", "1s"),
        ],
    )
    .await;
    let (id, secret) = app.password_client().await;
    let c = (id.as_str(), secret.as_str());
    app.user("alice").await;
    let tokens = app.password_grant(c, "alice").await;
    app.revoke(c, tokens["access_token"].as_str().unwrap())
        .await;
    app.sign_in(c, "alice", "wrong").await;
    // The CLI reads the system's clock: the one-second windows pass in real time.
    let dry = eventually("the windows pass", Duration::from_secs(10), || async {
        let dry = admin_prune(&app, true).await;
        (dry["total"] == 3).then_some(dry)
    })
    .await;
    assert_eq!(dry["dry_run"], true);
    assert_eq!(dry["tables"]["revoked_access_tokens"], 1, "{dry}");
    assert_eq!(dry["tables"]["login_failures"], 2, "{dry}");
    assert_eq!(dry["total"], 3, "{dry}");
    let done = admin_prune(&app, false).await;
    assert_eq!(done["dry_run"], false);
    assert_eq!(done["tables"], dry["tables"], "{done}");
    assert_eq!(admin_prune(&app, true).await["total"], 0);
    let after = rows(&app).await;
    assert_eq!(count(&after, "revoked_access_tokens"), 0);
    assert_eq!(count(&after, "login_failures"), 0);
    assert_eq!(count(&after, "token_families"), 1);

    let out = app.admin(&["prune", "--dry-run"], None).await;
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("WOULD REMOVE") && text.contains("token_families"),
        "{text}"
    );
}

/// Rotated tokens go once no grace retry can need them; a replay of one still revokes its
/// family and records the incident, because the token names its family.
async fn a_replay_of_a_pruned_token_still_revokes_its_family(db: Db) {
    let app = TestApp::spawn_with(db, &[("TESSERA_RETENTION__INTERVAL", "1h")]).await;
    let (id, secret) = app.password_client().await;
    let c = (id.as_str(), secret.as_str());
    let (other_id, other_secret) = app.password_client().await;
    app.user("alice").await;
    let first = app.password_grant(c, "alice").await;
    let rt0 = first["refresh_token"].as_str().unwrap().to_owned();
    let rt1 = app.refreshed(c, &rt0).await["refresh_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let current = app.refreshed(c, &rt1).await;
    let rt2 = current["refresh_token"].as_str().unwrap().to_owned();
    let sid = claims(first["access_token"].as_str().unwrap())["sid"]
        .as_str()
        .unwrap()
        .to_owned();

    // Within the grace window nothing goes; two minutes on, the two rotated tokens do.
    assert_eq!(prune(&app, true).await["tables"]["refresh_tokens"], 0);
    app.advance(Duration::from_secs(120));
    let done = prune(&app, false).await;
    assert_eq!(done["tables"]["refresh_tokens"], 2, "{done}");
    let shown: Value = serde_json::from_slice(
        &app.admin(&["family", "show", &sid, "-o", "json"], None)
            .await
            .stdout,
    )
    .unwrap();
    assert_eq!(shown["earlier_tokens_pruned"], true, "{shown}");
    assert_eq!(shown["tokens"].as_array().unwrap().len(), 1, "{shown}");
    let out = app.admin(&["family", "show", &sid], None).await;
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("earlier tokens pruned"), "{text}");

    // Another client presenting it learns nothing and changes nothing.
    let res = app.refresh((&other_id, &other_secret), &rt1).await;
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error_description"], "unknown refresh token");
    assert_eq!(app.introspect(c, &rt2).await["active"], true);

    // Its own client replaying it: reuse detected, the family revoked, the incident recorded.
    let res = app.refresh(c, &rt0).await;
    assert_eq!(res.status(), 400);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"], "invalid_grant");
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("reuse detected"),
        "{body}"
    );
    assert_eq!(app.refresh(c, &rt2).await.status(), 400);
    let incidents: Value = serde_json::from_slice(
        &app.admin(&["incident", "list", "-o", "json"], None)
            .await
            .stdout,
    )
    .unwrap();
    assert_eq!(incidents.as_array().unwrap().len(), 1, "{incidents}");
    assert_eq!(incidents[0]["family_id"], sid.as_str());
}

/// An app that signs out with a stale refresh token whose row retention already deleted still
/// ends its family (RFC 7009 §2.1): the token names its family. Introspection calls it
/// inactive and names nothing; another client's `/revoke` changes nothing.
async fn revoking_a_pruned_token_revokes_its_family(db: Db) {
    let app = TestApp::spawn_with(db, &[("TESSERA_RETENTION__INTERVAL", "1h")]).await;
    let (id, secret) = app.password_client().await;
    let c = (id.as_str(), secret.as_str());
    let (other_id, other_secret) = app.password_client().await;
    app.user("alice").await;
    let first = app.password_grant(c, "alice").await;
    let rt0 = first["refresh_token"].as_str().unwrap().to_owned();
    let current = app.refreshed(c, &rt0).await;
    let rt1 = current["refresh_token"].as_str().unwrap().to_owned();
    let access = current["access_token"].as_str().unwrap().to_owned();
    app.advance(Duration::from_secs(120));
    let done = prune(&app, false).await;
    assert_eq!(done["tables"]["refresh_tokens"], 1, "{done}");

    assert_eq!(app.introspect(c, &rt0).await, json!({"active": false}));
    assert_eq!(
        app.revoke((&other_id, &other_secret), &rt0).await.status(),
        200
    );
    assert_eq!(app.introspect(c, &rt1).await["active"], true);

    assert_eq!(app.revoke(c, &rt0).await.status(), 200);
    assert_eq!(app.introspect(c, &rt1).await["active"], false);
    assert_eq!(app.introspect(c, &access).await["active"], false);
    assert_eq!(app.refresh(c, &rt1).await.status(), 400);
}

/// Family and incident ids carry their time: asked for one that retention would have deleted,
/// the CLI says it was pruned; for any other unknown id, that there is none.
async fn what_retention_deleted_is_reported_as_pruned(db: Db) {
    let app = TestApp::spawn(db).await;
    let (id, secret) = app.password_client().await;
    app.user("alice").await;
    let tokens = app.password_grant((&id, &secret), "alice").await;
    let sid = claims(tokens["access_token"].as_str().unwrap())["sid"]
        .as_str()
        .unwrap()
        .to_owned();
    // A family's id says when it began.
    let began = tessera::domain::crypto::id_time(&sid).unwrap();
    assert!(
        began.distance(app.clock.now()) < Duration::from_secs(60),
        "{sid}"
    );

    let now = tessera::domain::Clock::system().now();
    let old = |days: u32| tessera::domain::crypto::time_id(now - days * DAY);
    for (args, says) in [
        (vec!["family", "show", &old(31)], "was pruned"),
        (vec!["family", "show", &old(2)], "no token family"),
        (vec!["family", "show", "nonsense"], "no token family"),
        (vec!["incident", "show", &old(91)], "was pruned"),
        (vec!["incident", "show", &old(31)], "no incident"),
    ] {
        let out = app.admin(&args, None).await;
        assert!(!out.status.success(), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(says), "{args:?}: {stderr}");
    }
    assert!(app
        .admin(&["family", "show", &sid], None)
        .await
        .status
        .success());
}

/// `retention.interval = "0s"`: the server never prunes; the CLI (from cron) does.
async fn an_interval_of_zero_leaves_pruning_to_the_cli(db: Db) {
    let app = TestApp::spawn_with(db, &[("TESSERA_RETENTION__INTERVAL", "0s")]).await;
    let (id, secret) = app.password_client().await;
    let c = (id.as_str(), secret.as_str());
    app.user("alice").await;
    let tokens = app.password_grant(c, "alice").await;
    app.revoke(c, tokens["refresh_token"].as_str().unwrap())
        .await;
    app.advance(31 * DAY);
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(count(&rows(&app).await, "token_families"), 1);
    assert_eq!(prune(&app, false).await["tables"]["token_families"], 1);
}

/// `tessera-admin prune` on a terminal says how far each table is, on stderr; piped, it prints
/// the result alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_shows_pruning_progress_on_a_terminal() {
    let app = TestApp::spawn_with(Db::Sqlite, &[("TESSERA_RETENTION__INTERVAL", "0s")]).await;
    let (id, secret) = app.password_client().await;
    let c = (id.as_str(), secret.as_str());
    app.user("alice").await;
    for _ in 0..3 {
        let tokens = app.password_grant(c, "alice").await;
        app.revoke(c, tokens["refresh_token"].as_str().unwrap())
            .await;
    }
    // The CLI reads the system's clock: age the revocations instead of moving it.
    app.with_conn(|conn| {
        use diesel::prelude::*;
        diesel::sql_query("UPDATE token_families SET revoked_at = 1")
            .execute(conn)
            .unwrap()
    })
    .await;

    // Piped: the result only.
    let piped = app.admin(&["prune", "--dry-run"], None).await;
    assert!(piped.status.success());
    assert!(
        piped.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&piped.stderr)
    );

    // On a terminal (`script` gives the command a pseudo-terminal).
    let admin = crate::helpers::admin_bin();
    let env = app.env.clone();
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new("script")
            .args([
                "-q",
                "-e",
                "-c",
                &format!("{} prune", admin.display()),
                "/dev/null",
            ])
            .current_dir(std::env::temp_dir())
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("TERM", "xterm")
            .envs(env)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let shown = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{shown}");
    assert!(
        shown.contains("token_families") && shown.contains("3 rows removed"),
        "{shown}"
    );
    assert!(shown.contains("audit_events"), "every table: {shown}");
    assert_eq!(count(&rows(&app).await, "token_families"), 0);
}
