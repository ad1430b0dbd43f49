//! Failed password attempts are throttled per username and per IP, in the database.

use std::time::Duration;

use serde_json::Value;

use crate::helpers::{assert_oauth_error, both_backends, Db, TestApp, PASSWORD};

both_backends!(
    a_username_is_throttled_after_repeated_failures,
    an_address_is_throttled_across_usernames,
    the_count_starts_again_when_the_window_has_passed,
    simultaneous_correct_sign_ins_are_not_refused,
    simultaneous_guesses_do_not_slip_past_the_limit,
    a_place_left_by_a_stopped_instance_expires,
    a_throttled_address_writes_nothing_per_username,
);

async fn attempt(
    app: &TestApp,
    client: (&str, &str),
    user: &str,
    password: &str,
) -> reqwest::Response {
    app.sign_in(client, user, password).await
}

async fn a_username_is_throttled_after_repeated_failures(db: Db) {
    let app = TestApp::spawn_with(db, &[("TESSERA_THROTTLE__MAX_FAILURES_PER_USER", "3")]).await;
    let (id, secret) = app.password_client().await;
    let c = (id.as_str(), secret.as_str());
    app.user("alice").await;
    app.user("bob").await;

    // A success resets the username's count.
    for _ in 0..2 {
        assert_oauth_error(
            attempt(&app, c, "alice", "wrong").await,
            400,
            "invalid_grant",
        )
        .await;
    }
    assert_eq!(attempt(&app, c, "alice", PASSWORD).await.status(), 200);
    for _ in 0..3 {
        let body = assert_oauth_error(
            attempt(&app, c, "alice", "wrong").await,
            400,
            "invalid_grant",
        )
        .await;
        assert_eq!(body["error_description"], "invalid username or password");
    }
    // Now even the right password is refused, without being checked.
    let body = assert_oauth_error(
        attempt(&app, c, "alice", PASSWORD).await,
        400,
        "invalid_grant",
    )
    .await;
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("too many"),
        "{body}"
    );
    // An unknown username is throttled the same way: the answer reveals nothing.
    for _ in 0..3 {
        attempt(&app, c, "nobody", "wrong").await;
    }
    let body2 = assert_oauth_error(
        attempt(&app, c, "nobody", "wrong").await,
        400,
        "invalid_grant",
    )
    .await;
    assert_eq!(body, body2);
    // Others are not affected.
    assert_eq!(attempt(&app, c, "bob", PASSWORD).await.status(), 200);

    let shown: serde_json::Value = serde_json::from_slice(
        &app.admin(&["user", "show", "alice", "-o", "json"], None)
            .await
            .stdout,
    )
    .unwrap();
    assert_eq!(shown["locked"], true);
    assert!(shown["failed_logins"].as_i64().unwrap() >= 3);

    // An administrator unlocks the username.
    let out = app
        .admin(&["user", "unlock", "alice", "-o", "json"], None)
        .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["cleared"], true);
    assert_eq!(attempt(&app, c, "alice", PASSWORD).await.status(), 200);
}

async fn an_address_is_throttled_across_usernames(db: Db) {
    let app = TestApp::spawn_with(db, &[("TESSERA_THROTTLE__MAX_FAILURES_PER_IP", "4")]).await;
    let (id, secret) = app.password_client().await;
    let c = (id.as_str(), secret.as_str());
    app.user("alice").await;
    for name in ["u1", "u2", "u3", "u4"] {
        assert_oauth_error(attempt(&app, c, name, "wrong").await, 400, "invalid_grant").await;
    }
    let body = assert_oauth_error(
        attempt(&app, c, "alice", PASSWORD).await,
        400,
        "invalid_grant",
    )
    .await;
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("too many"),
        "{body}"
    );
}

async fn the_count_starts_again_when_the_window_has_passed(db: Db) {
    let app = TestApp::spawn_with(
        db,
        &[
            ("TESSERA_THROTTLE__MAX_FAILURES_PER_USER", "2"),
            ("TESSERA_THROTTLE__WINDOW", "1s"),
        ],
    )
    .await;
    let (id, secret) = app.password_client().await;
    let c = (id.as_str(), secret.as_str());
    app.user("alice").await;
    for _ in 0..2 {
        attempt(&app, c, "alice", "wrong").await;
    }
    let body = assert_oauth_error(
        attempt(&app, c, "alice", PASSWORD).await,
        400,
        "invalid_grant",
    )
    .await;
    assert!(body["error_description"]
        .as_str()
        .unwrap()
        .contains("too many"));
    // The window passes: the next attempt opens a new one with a count of one.
    app.advance(std::time::Duration::from_millis(1100));
    attempt(&app, c, "alice", "wrong").await;
    assert_eq!(attempt(&app, c, "alice", PASSWORD).await.status(), 200);
}

/// `n` password grants for `user` at once; the (status, body) of each.
async fn at_once(
    app: &TestApp,
    client: (&str, &str),
    user: &str,
    password: &str,
    n: usize,
) -> Vec<(u16, Value)> {
    let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(n));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..n {
        let req = app
            .http
            .post(format!("{}/token", app.address))
            .basic_auth(client.0, Some(client.1))
            .form(&[
                ("grant_type", "password"),
                ("username", user),
                ("password", password),
            ]);
        let barrier = barrier.clone();
        tasks.spawn(async move {
            barrier.wait().await;
            let res = req.send().await.unwrap();
            (res.status().as_u16(), res.json::<Value>().await.unwrap())
        });
    }
    tasks.join_all().await
}

/// Security review, finding 9: a service account signing in from several processes at once is
/// not refused because its attempts outnumber the failure limit; only failures count.
async fn simultaneous_correct_sign_ins_are_not_refused(db: Db) {
    let app = TestApp::spawn_with(db, &[("TESSERA_THROTTLE__MAX_FAILURES_PER_USER", "2")]).await;
    let (id, secret) = app.password_client().await;
    app.user("svc").await;
    let results = at_once(&app, (&id, &secret), "svc", PASSWORD, 8).await;
    for (status, body) in &results {
        assert_eq!(*status, 200, "{body}");
    }
    // And the places they held are all given back, with nothing counted.
    let (places, failures) = app
        .with_conn(|c| {
            use diesel::prelude::*;
            use tessera::store::schema::{login_failures, login_places};
            let places: i64 = login_places::table.count().get_result(c).unwrap();
            let failures: Vec<i64> = login_failures::table
                .select(login_failures::failures)
                .load(c)
                .unwrap();
            (places, failures)
        })
        .await;
    assert_eq!(places, 0);
    assert!(failures.iter().all(|f| *f == 0), "{failures:?}");
}

/// A place held by an instance that stopped mid-sign-in (it never gave it back) makes others
/// wait only until it expires; waiting longer than `passwords.max_wait` is a 503 to retry.
async fn a_place_left_by_a_stopped_instance_expires(db: Db) {
    let app = TestApp::spawn_with(
        db,
        &[
            ("TESSERA_THROTTLE__MAX_FAILURES_PER_USER", "2"),
            ("TESSERA_PASSWORDS__MAX_WAIT", "300ms"),
        ],
    )
    .await;
    let (id, secret) = app.password_client().await;
    let c = (id.as_str(), secret.as_str());
    app.user("svc").await;
    let now = app.clock.now();
    app.with_conn(move |c| {
        for attempt in ["crashed-1", "crashed-2"] {
            tessera::store::models::LoginPlace {
                attempt: attempt.into(),
                key: "user:svc".into(),
                expires_at: now + Duration::from_millis(30_300),
            }
            .insert(c)
            .unwrap();
        }
    })
    .await;
    let body = assert_oauth_error(
        attempt(&app, c, "svc", PASSWORD).await,
        503,
        "temporarily_unavailable",
    )
    .await;
    assert!(body["error_description"]
        .as_str()
        .unwrap()
        .contains("retry"));
    app.advance(std::time::Duration::from_secs(31));
    assert_eq!(attempt(&app, c, "svc", PASSWORD).await.status(), 200);
}

/// Finding 9's other half: guesses sent together are checked at most up to the limit, however
/// many arrive while the first are being hashed.
async fn simultaneous_guesses_do_not_slip_past_the_limit(db: Db) {
    let app = TestApp::spawn_with(db, &[("TESSERA_THROTTLE__MAX_FAILURES_PER_USER", "3")]).await;
    let (id, secret) = app.password_client().await;
    app.user("alice").await;
    let results = at_once(&app, (&id, &secret), "alice", "guess", 12).await;
    let checked = results
        .iter()
        .filter(|(_, b)| b["error_description"] == "invalid username or password")
        .count();
    let refused = results
        .iter()
        .filter(|(s, b)| {
            *s == 400
                && b["error"] == "invalid_grant"
                && b["error_description"]
                    .as_str()
                    .is_some_and(|d| d.contains("too many"))
        })
        .count();
    assert_eq!((checked, refused), (3, 9), "{results:?}");
    let shown: Value = serde_json::from_slice(
        &app.admin(&["user", "show", "alice", "-o", "json"], None)
            .await
            .stdout,
    )
    .unwrap();
    assert_eq!(shown["failed_logins"], 3);
    assert_eq!(shown["locked"], true);
    // Nine refusals, one audit event.
    let events: Value = serde_json::from_slice(
        &app.admin(
            &["audit", "list", "--kind", "login.throttled", "-o", "json"],
            None,
        )
        .await
        .stdout,
    )
    .unwrap();
    assert_eq!(events.as_array().unwrap().len(), 1, "{events}");
    assert!(events[0]["detail"]
        .as_str()
        .unwrap()
        .starts_with("user:alice is over its limit"));
    // The right password is refused too, without being checked.
    let body = assert_oauth_error(
        attempt(&app, (&id, &secret), "alice", PASSWORD).await,
        400,
        "invalid_grant",
    )
    .await;
    assert!(body["error_description"]
        .as_str()
        .unwrap()
        .contains("too many"));
}

/// Security review, finding 5: once an address is over its limit it is refused before its
/// username is looked at, so new usernames add no rows; its refusals are audited once per
/// window, however many there are.
async fn a_throttled_address_writes_nothing_per_username(db: Db) {
    let app = TestApp::spawn_with(
        db,
        &[
            ("TESSERA_THROTTLE__MAX_FAILURES_PER_IP", "2"),
            ("TESSERA_THROTTLE__WINDOW", "1m"),
        ],
    )
    .await;
    let (id, secret) = app.password_client().await;
    let c = (id.as_str(), secret.as_str());
    let counts = || {
        app.with_conn(|c| {
            use diesel::prelude::*;
            use tessera::store::schema::{audit_events, login_failures};
            let rows: i64 = login_failures::table.count().get_result(c).unwrap();
            let throttled: i64 = audit_events::table
                .filter(audit_events::kind.eq("login.throttled"))
                .count()
                .get_result(c)
                .unwrap();
            (rows, throttled)
        })
    };
    for name in ["u1", "u2"] {
        attempt(&app, c, name, "wrong").await;
    }
    // The address and the two usernames.
    assert_eq!(counts().await, (3, 0));
    for i in 0..20 {
        let body = assert_oauth_error(
            attempt(&app, c, &format!("new{i}"), "wrong").await,
            400,
            "invalid_grant",
        )
        .await;
        assert!(body["error_description"]
            .as_str()
            .unwrap()
            .contains("too many"));
    }
    assert_eq!(counts().await, (3, 1));
    let events: Value = serde_json::from_slice(
        &app.admin(
            &["audit", "list", "--kind", "login.throttled", "-o", "json"],
            None,
        )
        .await
        .stdout,
    )
    .unwrap();
    assert_eq!(events[0]["client_ip"], "127.0.0.1", "{events}");

    // A new window: the address may try again, and a new refusal is audited again.
    app.advance(std::time::Duration::from_secs(61));
    for name in ["u3", "u4", "u5"] {
        attempt(&app, c, name, "wrong").await;
    }
    assert_eq!(counts().await, (5, 2));
}
