//! Failed password attempts are throttled per username and per IP, in the database.

use crate::helpers::{assert_oauth_error, both_backends, Db, TestApp, PASSWORD};

both_backends!(
    a_username_is_throttled_after_repeated_failures,
    an_address_is_throttled_across_usernames,
    the_count_starts_again_when_the_window_has_passed
);

async fn attempt(
    app: &TestApp,
    client: (&str, &str),
    user: &str,
    password: &str,
) -> reqwest::Response {
    app.token(
        Some(client),
        &[
            ("grant_type", "password"),
            ("username", user),
            ("password", password),
        ],
    )
    .await
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
