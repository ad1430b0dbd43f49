//! Rotation, the idempotent grace window, reuse detection, and expiry.

use std::time::Duration;

use serde_json::Value;
use tessera::store::models::{RefreshToken, ReuseIncident, TokenFamily};
use tessera::value::{FamilyId, TokenId};

use crate::helpers::{assert_oauth_error, both_backends, claims, Db, TestApp};

both_backends!(
    retry_within_grace_returns_the_same_successor,
    replay_after_the_successor_is_used_revokes_the_family,
    strict_mode_treats_any_replay_as_reuse,
    replay_after_the_grace_window_revokes_the_family,
    idle_lifetime_is_enforced,
    absolute_lifetime_caps_the_family,
);

fn rt(v: &Value) -> String {
    v["refresh_token"].as_str().unwrap().to_owned()
}

async fn family_state(
    app: &TestApp,
    family_id: &str,
) -> (TokenFamily, Vec<RefreshToken>, Vec<ReuseIncident>) {
    let id = FamilyId::from(family_id);
    app.with_conn(move |c| {
        (
            TokenFamily::find(c, &id).unwrap().unwrap(),
            RefreshToken::in_family(c, &id).unwrap(),
            ReuseIncident::for_family(c, &id).unwrap(),
        )
    })
    .await
}

async fn retry_within_grace_returns_the_same_successor(db: Db) {
    let app = TestApp::spawn(db).await;
    let (id, secret) = app.password_client().await;
    app.user("alice").await;
    let first = app.password_grant((&id, &secret), "alice").await;

    let a: Value = app.refreshed((&id, &secret), &rt(&first)).await;
    // The response was "lost"; the app retries with the same token.
    let b: Value = app.refreshed((&id, &secret), &rt(&first)).await;
    assert_eq!(
        rt(&a),
        rt(&b),
        "a retry within the grace window gets the same successor"
    );
    assert_ne!(
        a["access_token"], b["access_token"],
        "and a fresh access token"
    );

    let sid = claims(a["access_token"].as_str().unwrap())["sid"]
        .as_str()
        .unwrap()
        .to_owned();
    let (family, tokens, incidents) = family_state(&app, &sid).await;
    assert!(family.revoked_at.is_none());
    assert_eq!(tokens.len(), 2);
    assert_eq!(tokens.iter().filter(|t| t.rotated_at.is_none()).count(), 1);
    assert!(incidents.is_empty());

    // The successor still works.
    assert_eq!(app.refresh((&id, &secret), &rt(&b)).await.status(), 200);
}

async fn replay_after_the_successor_is_used_revokes_the_family(db: Db) {
    let app = TestApp::spawn(db).await;
    let (id, secret) = app.password_client().await;
    app.user("alice").await;
    let first = app.password_grant((&id, &secret), "alice").await;
    let second: Value = app.refreshed((&id, &secret), &rt(&first)).await;
    let third: Value = app.refreshed((&id, &secret), &rt(&second)).await;

    // An attacker replays the first token: its successor has been used, so this is theft.
    let res = app
        .http
        .post(format!("{}/token", app.address))
        .basic_auth(&id, Some(&secret))
        .header("User-Agent", "attacker/1.0")
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", rt(&first).as_str()),
        ])
        .send()
        .await
        .unwrap();
    let body = assert_oauth_error(res, 400, "invalid_grant").await;
    assert!(body["error_description"]
        .as_str()
        .unwrap()
        .contains("reuse"));

    // The whole family is revoked: the legitimate holder's current token is dead too.
    assert_oauth_error(
        app.refresh((&id, &secret), &rt(&third)).await,
        400,
        "invalid_grant",
    )
    .await;
    assert_eq!(
        app.userinfo(third["access_token"].as_str().unwrap())
            .await
            .status(),
        401
    );

    let sid = claims(third["access_token"].as_str().unwrap())["sid"]
        .as_str()
        .unwrap()
        .to_owned();
    let (family, tokens, incidents) = family_state(&app, &sid).await;
    assert_eq!(family.revoked_reason.as_deref(), Some("reuse_detected"));
    assert_eq!(incidents.len(), 1, "one incident recorded");
    let incident = &incidents[0];
    assert_eq!(incident.replayed_token_id, tokens[0].id);
    assert_eq!(
        incident.active_token_id.as_ref().map(TokenId::as_str),
        Some(tokens[2].id.as_str())
    );
    assert_eq!(incident.client_id, id);
    assert_eq!(incident.user_agent.as_deref(), Some("attacker/1.0"));
    assert_eq!(incident.client_ip.as_deref(), Some("127.0.0.1"));
    // Lineage: each token records its parent, when, and who asked.
    for t in &tokens {
        assert_eq!(t.client_ip.as_deref(), Some("127.0.0.1"));
        assert!(t.user_agent.is_some());
        assert!(t.issued_at >= family.created_at && t.expires_at > t.issued_at);
    }
    assert!(
        tokens[0].issued_at <= tokens[1].issued_at && tokens[1].issued_at <= tokens[2].issued_at
    );
    assert_eq!(
        tokens[1].parent_id.as_ref().map(TokenId::as_str),
        Some(tokens[0].id.as_str())
    );
    assert_eq!(
        tokens[2].parent_id.as_ref().map(TokenId::as_str),
        Some(tokens[1].id.as_str())
    );
    assert_eq!(
        tokens[0].replaced_by.as_ref().map(TokenId::as_str),
        Some(tokens[1].id.as_str())
    );

    // A second replay finds a revoked family: refused, no new incident.
    assert_oauth_error(
        app.refresh((&id, &secret), &rt(&first)).await,
        400,
        "invalid_grant",
    )
    .await;
    assert_eq!(family_state(&app, &sid).await.2.len(), 1);
}

async fn strict_mode_treats_any_replay_as_reuse(db: Db) {
    let app = TestApp::spawn_with(db, &[("TESSERA_TOKENS__REUSE_GRACE", "0s")]).await;
    let (id, secret) = app.password_client().await;
    app.user("alice").await;
    let first = app.password_grant((&id, &secret), "alice").await;
    let second: Value = app.refreshed((&id, &secret), &rt(&first)).await;
    assert_oauth_error(
        app.refresh((&id, &secret), &rt(&first)).await,
        400,
        "invalid_grant",
    )
    .await;
    assert_oauth_error(
        app.refresh((&id, &secret), &rt(&second)).await,
        400,
        "invalid_grant",
    )
    .await;
}

async fn replay_after_the_grace_window_revokes_the_family(db: Db) {
    let app = TestApp::spawn_with(db, &[("TESSERA_TOKENS__REUSE_GRACE", "1s")]).await;
    let (id, secret) = app.password_client().await;
    app.user("alice").await;
    let first = app.password_grant((&id, &secret), "alice").await;
    let second: Value = app.refreshed((&id, &secret), &rt(&first)).await;
    app.advance(Duration::from_millis(1300));
    assert_oauth_error(
        app.refresh((&id, &secret), &rt(&first)).await,
        400,
        "invalid_grant",
    )
    .await;
    assert_oauth_error(
        app.refresh((&id, &secret), &rt(&second)).await,
        400,
        "invalid_grant",
    )
    .await;
}

async fn idle_lifetime_is_enforced(db: Db) {
    let app = TestApp::spawn_with(db, &[("TESSERA_TOKENS__REFRESH_IDLE_TTL", "1s")]).await;
    let (id, secret) = app.password_client().await;
    app.user("alice").await;
    let first = app.password_grant((&id, &secret), "alice").await;
    let second: Value = app.refreshed((&id, &secret), &rt(&first)).await;
    app.advance(Duration::from_millis(1300));
    let body = assert_oauth_error(
        app.refresh((&id, &secret), &rt(&second)).await,
        400,
        "invalid_grant",
    )
    .await;
    assert!(body["error_description"]
        .as_str()
        .unwrap()
        .contains("expired"));
}

async fn absolute_lifetime_caps_the_family(db: Db) {
    let app = TestApp::spawn_with(
        db,
        &[
            ("TESSERA_TOKENS__REFRESH_IDLE_TTL", "3s"),
            ("TESSERA_TOKENS__REFRESH_ABSOLUTE_TTL", "4s"),
        ],
    )
    .await;
    let (id, secret) = app.password_client().await;
    app.user("alice").await;
    let first = app.password_grant((&id, &secret), "alice").await;
    app.advance(Duration::from_millis(2000));
    let second: Value = app.refreshed((&id, &secret), &rt(&first)).await;
    // The successor's idle lifetime would reach t+5s; the family ends at t+4s.
    app.advance(Duration::from_millis(2500));
    assert_oauth_error(
        app.refresh((&id, &secret), &rt(&second)).await,
        400,
        "invalid_grant",
    )
    .await;
}

/// On PostgreSQL a refresh runs as a function the server creates at start (one per version of
/// the statement). Dropped under a running server, it is created again by the next refresh,
/// which succeeds; changed (another body under its name), it is replaced by the next start.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_rotation_function_is_made_again_when_dropped_or_changed() {
    if crate::helpers::postgres_url().is_none() {
        crate::helpers::skipped(
            "rotation::the_rotation_function_is_made_again_when_dropped_or_changed",
            "TESSERA_TEST_POSTGRES_URL is not set",
        );
        return;
    }
    #[derive(diesel::QueryableByName)]
    struct Name {
        #[diesel(sql_type = diesel::sql_types::Text)]
        proname: String,
    }
    let app = TestApp::spawn(Db::Postgres).await;
    let functions = || {
        app.with_conn(|c| {
            use diesel::RunQueryDsl;
            let tessera::store::AnyConnection::Postgresql(pg) = c else {
                unreachable!()
            };
            diesel::sql_query(
                "SELECT proname FROM pg_proc WHERE proname LIKE 'tessera\\_rotate\\_%'",
            )
            .load::<Name>(pg)
            .unwrap()
            .into_iter()
            .map(|n| n.proname)
            .collect::<Vec<_>>()
        })
    };
    let names = functions().await;
    assert_eq!(names.len(), 1, "{names:?}");
    let (id, secret) = app.password_client().await;
    app.user("alice").await;
    let token = rt(&app.password_grant((&id, &secret), "alice").await);
    let token = rt(&app.refreshed((&id, &secret), &token).await);
    let name = names[0].clone();
    app.with_conn(move |c| {
        use diesel::connection::SimpleConnection;
        c.batch_execute(&format!("DROP FUNCTION {name}")).unwrap();
    })
    .await;
    assert!(functions().await.is_empty());
    let body = app.refreshed((&id, &secret), &token).await;
    assert!(body["refresh_token"].is_string());
    assert_eq!(functions().await, names);

    // A function of that name with another body (another version's, or anyone's) is replaced
    // by the next server that starts.
    let name = names[0].clone();
    app.with_conn(move |c| {
        use diesel::connection::SimpleConnection;
        c.batch_execute(&format!(
            "DO $$ DECLARE def text; BEGIN \
               SELECT pg_get_functiondef('{name}'::regproc) INTO def; \
               EXECUTE replace(def, 'RETURN QUERY WITH', 'RETURN; PERFORM 1; RETURN QUERY WITH'); \
             END $$"
        ))
        .unwrap();
    })
    .await;
    let source = || {
        let name = names[0].clone();
        app.with_conn(move |c| {
            use diesel::RunQueryDsl;
            #[derive(diesel::QueryableByName)]
            struct Source {
                #[diesel(sql_type = diesel::sql_types::Text)]
                prosrc: String,
            }
            diesel::sql_query(format!(
                "SELECT prosrc FROM pg_proc WHERE proname = '{name}'"
            ))
            .get_result::<Source>(c)
            .unwrap()
            .prosrc
        })
    };
    assert!(source().await.contains("RETURN; PERFORM 1;"));
    let _second = TestApp::spawn_on(Db::Postgres, &app.db_url, &app.master_key, &[]).await;
    let restored = source().await;
    assert!(!restored.contains("RETURN; PERFORM 1;"), "{restored}");
    assert!(
        restored.contains("RETURN QUERY WITH family AS"),
        "{restored}"
    );
}
