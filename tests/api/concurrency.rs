//! Many simultaneous refreshes of one token, on one server and on two.

use serde_json::Value;
use tessera::store::models::{RefreshToken, TokenFamily};

use crate::helpers::{both_backends, claims, postgres_url, skipped, Db, TestApp};

both_backends!(
    thirty_two_refreshes_with_grace_share_one_successor,
    thirty_two_refreshes_strict_leave_one_winner,
    two_instances_started_together_migrate_once_and_share_one_key,
);

const N: usize = 32;

/// Fires `N` refreshes of `token` at once (spread over `apps`); returns (status, body) of each.
async fn storm(apps: &[&TestApp], client: (&str, &str), token: &str) -> Vec<(u16, Value)> {
    let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(N));
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..N {
        let app = apps[i % apps.len()];
        let req = app
            .http
            .post(format!("{}/token", app.address))
            .basic_auth(client.0, Some(client.1))
            .form(&[("grant_type", "refresh_token"), ("refresh_token", token)]);
        let barrier = barrier.clone();
        tasks.spawn(async move {
            barrier.wait().await;
            let res = req.send().await.unwrap();
            (res.status().as_u16(), res.json::<Value>().await.unwrap())
        });
    }
    tasks.join_all().await
}

/// Asserts the family invariants: at most one active token, every successor's parent rotated
/// and pointing at it. Returns (family, tokens).
async fn check_family(app: &TestApp, family_id: &str) -> (TokenFamily, Vec<RefreshToken>) {
    let id = tessera::value::FamilyId::from(family_id);
    let (family, tokens) = app
        .with_conn(move |c| {
            (
                TokenFamily::find(c, &id).unwrap().unwrap(),
                RefreshToken::in_family(c, &id).unwrap(),
            )
        })
        .await;
    assert!(
        tokens.iter().filter(|t| t.rotated_at.is_none()).count() <= 1,
        "two active tokens: {tokens:#?}"
    );
    for t in &tokens {
        if let Some(parent) = &t.parent_id {
            let p = tokens
                .iter()
                .find(|p| &p.id == parent)
                .expect("parent in family");
            assert!(p.rotated_at.is_some());
            assert_eq!(
                p.replaced_by.as_ref().map(|r| r.as_str()),
                Some(t.id.as_str())
            );
        }
    }
    (family, tokens)
}

async fn grace_storm(apps: &[&TestApp]) {
    let app = apps[0];
    let (id, secret) = app.password_client().await;
    app.user("alice").await;
    let first = app.password_grant((&id, &secret), "alice").await;
    let results = storm(
        apps,
        (&id, &secret),
        first["refresh_token"].as_str().unwrap(),
    )
    .await;
    let ok: Vec<&Value> = results
        .iter()
        .filter(|(s, _)| *s == 200)
        .map(|(_, b)| b)
        .collect();
    assert_eq!(
        ok.len(),
        N,
        "within the grace window every concurrent retry succeeds: {results:?}"
    );
    let mut successors: Vec<&str> = ok
        .iter()
        .map(|b| b["refresh_token"].as_str().unwrap())
        .collect();
    successors.dedup();
    assert_eq!(successors.len(), 1, "exactly one distinct successor");
    let sid = claims(first["access_token"].as_str().unwrap())["sid"]
        .as_str()
        .unwrap()
        .to_owned();
    let (family, tokens) = check_family(app, &sid).await;
    assert!(family.revoked_at.is_none());
    assert_eq!(tokens.len(), 2);
    // And the successor carries on.
    assert_eq!(
        app.refresh((&id, &secret), successors[0]).await.status(),
        200
    );
}

async fn strict_storm(apps: &[&TestApp]) {
    let app = apps[0];
    let (id, secret) = app.password_client().await;
    app.user("alice").await;
    let first = app.password_grant((&id, &secret), "alice").await;
    let results = storm(
        apps,
        (&id, &secret),
        first["refresh_token"].as_str().unwrap(),
    )
    .await;
    let ok = results.iter().filter(|(s, _)| *s == 200).count();
    assert_eq!(ok, 1, "exactly one winner in strict mode: {results:?}");
    for (status, body) in &results {
        assert!(
            *status == 200 || (*status == 400 && body["error"] == "invalid_grant"),
            "{status} {body}"
        );
    }
    let sid = claims(first["access_token"].as_str().unwrap())["sid"]
        .as_str()
        .unwrap()
        .to_owned();
    let (family, tokens) = check_family(app, &sid).await;
    assert_eq!(tokens.len(), 2, "one successor");
    // The others were replays of a consumed token: the family is revoked, once.
    assert_eq!(family.revoked_reason.as_deref(), Some("reuse_detected"));
    let id = tessera::value::FamilyId::from(sid.as_str());
    let incidents = app
        .with_conn(move |c| tessera::store::models::ReuseIncident::for_family(c, &id).unwrap())
        .await;
    assert_eq!(incidents.len(), 1, "{incidents:#?}");
}

async fn thirty_two_refreshes_with_grace_share_one_successor(db: Db) {
    let app = TestApp::spawn(db).await;
    grace_storm(&[&app]).await;
}

async fn thirty_two_refreshes_strict_leave_one_winner(db: Db) {
    let app = TestApp::spawn_with(db, &[("TESSERA_TOKENS__REUSE_GRACE", "0s")]).await;
    strict_storm(&[&app]).await;
}

/// Two server instances on one PostgreSQL database.
async fn two_instances(test: &str, extra: &[(&str, &str)]) -> Option<(TestApp, TestApp)> {
    if postgres_url().is_none() {
        skipped(test, "TESSERA_TEST_POSTGRES_URL is not set");
        return None;
    }
    let a = TestApp::spawn_with(Db::Postgres, extra).await;
    let b = TestApp::spawn_on(Db::Postgres, &a.db_url, &a.master_key, extra).await;
    Some((a, b))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_two_instances_detect_a_replay_across_them() {
    let Some((a, b)) = two_instances(
        "concurrency::postgres_two_instances_detect_a_replay_across_them",
        &[],
    )
    .await
    else {
        return;
    };
    let (id, secret) = a.password_client().await;
    a.user("alice").await;
    let first = a.password_grant((&id, &secret), "alice").await;
    let second: Value = a
        .refreshed((&id, &secret), first["refresh_token"].as_str().unwrap())
        .await;
    // The successor is used on instance B...
    let third = b
        .refresh((&id, &secret), second["refresh_token"].as_str().unwrap())
        .await;
    assert_eq!(third.status(), 200);
    let third: Value = third.json().await.unwrap();
    // ...and B's access token verifies on A (same keys).
    assert_eq!(
        a.userinfo(third["access_token"].as_str().unwrap())
            .await
            .status(),
        200
    );
    // A replay of the first token on B is caught and kills the family for A too.
    let res = b
        .refresh((&id, &secret), first["refresh_token"].as_str().unwrap())
        .await;
    crate::helpers::assert_oauth_error(res, 400, "invalid_grant").await;
    let res = a
        .refresh((&id, &secret), third["refresh_token"].as_str().unwrap())
        .await;
    crate::helpers::assert_oauth_error(res, 400, "invalid_grant").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_two_instances_thirty_two_refreshes_with_grace() {
    let Some((a, b)) = two_instances(
        "concurrency::postgres_two_instances_thirty_two_refreshes_with_grace",
        &[],
    )
    .await
    else {
        return;
    };
    grace_storm(&[&a, &b]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_two_instances_thirty_two_refreshes_strict() {
    let Some((a, b)) = two_instances(
        "concurrency::postgres_two_instances_thirty_two_refreshes_strict",
        &[("TESSERA_TOKENS__REUSE_GRACE", "0s")],
    )
    .await
    else {
        return;
    };
    strict_storm(&[&a, &b]).await;
}

async fn two_instances_started_together_migrate_once_and_share_one_key(db: Db) {
    let test_db = crate::helpers::TestDb::new(db);
    let key = "c2l4dHktZm91ci1ieXRlcy1vZi1tYXN0ZXIta2V5LW1hdGVyaWFsLWZvci10ZXN0cw";
    let (a, b) = tokio::join!(
        TestApp::spawn_on(db, &test_db.url, key, &[]),
        TestApp::spawn_on(db, &test_db.url, key, &[])
    );
    let jwks = |app: &TestApp| {
        let req = app.http.get(format!("{}/jwks.json", app.address));
        async move { req.send().await.unwrap().json::<Value>().await.unwrap() }
    };
    let (ka, kb) = (jwks(&a).await, jwks(&b).await);
    assert_eq!(ka["keys"].as_array().unwrap().len(), 1, "{ka}");
    assert_eq!(ka, kb);
    // A token from one verifies on the other.
    let (id, secret) = a.password_client().await;
    a.user("alice").await;
    let tokens = a.password_grant((&id, &secret), "alice").await;
    assert_eq!(
        b.userinfo(tokens["access_token"].as_str().unwrap())
            .await
            .status(),
        200
    );
}

/// A revocation committed while a refresh is in flight must not let the refresh through:
/// the refresh waits for the family's lock, then sees the revocation.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_refresh_racing_a_revocation_is_refused() {
    use diesel::connection::SimpleConnection;
    use diesel::Connection;
    if postgres_url().is_none() {
        skipped(
            "concurrency::postgres_refresh_racing_a_revocation_is_refused",
            "TESSERA_TEST_POSTGRES_URL is not set",
        );
        return;
    }
    let app = TestApp::spawn(Db::Postgres).await;
    let (id, secret) = app.password_client().await;
    app.user("alice").await;
    let first = app.password_grant((&id, &secret), "alice").await;
    let sid = claims(first["access_token"].as_str().unwrap())["sid"]
        .as_str()
        .unwrap()
        .to_owned();

    // Another session revokes the family and holds its transaction open.
    let url = app.db_url.clone();
    let (locked_tx, locked_rx) = std::sync::mpsc::channel::<()>();
    let (commit_tx, commit_rx) = std::sync::mpsc::channel::<()>();
    let revoker = std::thread::spawn(move || {
        let mut c = diesel::pg::PgConnection::establish(&url).unwrap();
        c.batch_execute(&format!(
            "BEGIN; UPDATE token_families SET revoked_at = 1, revoked_reason = 'test' WHERE id = '{sid}'"
        ))
        .unwrap();
        locked_tx.send(()).unwrap();
        commit_rx.recv().unwrap();
        c.batch_execute("COMMIT").unwrap();
    });
    locked_rx.recv().unwrap();
    let refresh = {
        let req = app
            .http
            .post(format!("{}/token", app.address))
            .basic_auth(&id, Some(&secret))
            .form(&[
                ("grant_type", "refresh_token"),
                ("refresh_token", first["refresh_token"].as_str().unwrap()),
            ]);
        tokio::spawn(async move { req.send().await.unwrap() })
    };
    tokio::time::sleep(std::time::Duration::from_millis(400)).await;
    assert!(
        !refresh.is_finished(),
        "the refresh must wait for the family lock"
    );
    commit_tx.send(()).unwrap();
    revoker.join().unwrap();
    let res = refresh.await.unwrap();
    crate::helpers::assert_oauth_error(res, 400, "invalid_grant").await;
}
