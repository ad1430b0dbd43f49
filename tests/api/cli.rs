//! The real `tessera-admin` binary against the test database and a running server.

use serde_json::Value;

use crate::helpers::{assert_oauth_error, both_backends, Db, TestApp, PASSWORD};

both_backends!(
    admin_registers_a_client_and_a_user_that_get_tokens,
    admin_revokes_families_on_a_running_server,
    admin_errors_are_one_line_and_non_zero
);

fn stdout_json(out: &std::process::Output) -> Value {
    assert!(
        out.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)))
}

async fn admin_registers_a_client_and_a_user_that_get_tokens(db: Db) {
    let app = TestApp::spawn(db).await;
    let out = app
        .admin(
            &[
                "client",
                "register",
                "--name",
                "Mobile app",
                "--grant",
                "password",
                "--grant",
                "refresh_token",
                "--scope",
                "read write",
                "--output",
                "json",
            ],
            None,
        )
        .await;
    let client = stdout_json(&out);
    let id = client["client_id"].as_str().unwrap().to_owned();
    let secret = client["client_secret"].as_str().unwrap().to_owned();
    assert_eq!(client["public"], false);
    assert_eq!(
        client["grant_types"],
        serde_json::json!(["password", "refresh_token"])
    );
    assert_eq!(client["scope"], "read write");
    assert!(secret.len() >= 43, "256-bit secret");

    let out = app
        .admin(
            &["user", "create", "alice", "--password-stdin", "-o", "json"],
            Some(&format!("{PASSWORD}\n")),
        )
        .await;
    let user = stdout_json(&out);
    assert_eq!(user["username"], "alice");

    let tokens = app.password_grant((&id, &secret), "alice").await;
    assert_eq!(tokens["scope"], "read write");

    // A public client has no secret; text output says so.
    let out = app
        .admin(
            &[
                "client", "register", "--name", "SPA", "--public", "--grant", "password",
            ],
            None,
        )
        .await;
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("client_id:") && text.contains("public client"),
        "{text}"
    );
    let out = app
        .admin(
            &[
                "client", "register", "--name", "SPA", "--public", "--grant", "password", "-o",
                "json",
            ],
            None,
        )
        .await;
    assert_eq!(stdout_json(&out)["client_secret"], Value::Null);

    let out = app.admin(&["client", "list", "-o", "json"], None).await;
    let list = stdout_json(&out);
    assert_eq!(list.as_array().unwrap().len(), 3);
    assert!(
        list.as_array()
            .unwrap()
            .iter()
            .all(|c| c["client_secret"].is_null()),
        "secrets are never listed"
    );
}

async fn admin_revokes_families_on_a_running_server(db: Db) {
    let app = TestApp::spawn(db).await;
    let (id, secret) = app.password_client().await;
    app.user("alice").await;
    app.user("bob").await;
    let a1 = app.password_grant((&id, &secret), "alice").await;
    let a2 = app.password_grant((&id, &secret), "alice").await;
    let b1 = app.password_grant((&id, &secret), "bob").await;

    let out = app
        .admin(
            &[
                "family",
                "revoke",
                "--user",
                "alice",
                "--reason",
                "lost phone",
                "-o",
                "json",
            ],
            None,
        )
        .await;
    assert_eq!(stdout_json(&out)["revoked"], 2);
    for t in [&a1, &a2] {
        assert_oauth_error(
            app.refresh((&id, &secret), t["refresh_token"].as_str().unwrap())
                .await,
            400,
            "invalid_grant",
        )
        .await;
    }
    let b2 = app
        .refresh((&id, &secret), b1["refresh_token"].as_str().unwrap())
        .await;
    assert_eq!(b2.status(), 200, "other users are untouched");
    let b2: Value = b2.json().await.unwrap();

    let out = app
        .admin(&["family", "revoke", "--client", &id], None)
        .await;
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("revoked 1"));
    assert_oauth_error(
        app.refresh((&id, &secret), b2["refresh_token"].as_str().unwrap())
            .await,
        400,
        "invalid_grant",
    )
    .await;
}

async fn admin_errors_are_one_line_and_non_zero(db: Db) {
    let app = TestApp::spawn(db).await;
    app.user("alice").await;
    let cases: Vec<(Vec<&str>, Option<&str>, &str)> = vec![
        (
            vec!["user", "create", "alice", "--password-stdin"],
            Some("another password\n"),
            "already exists",
        ),
        (
            vec!["user", "create", "zoe", "--password-stdin"],
            Some("short\n"),
            "8 to",
        ),
        (vec!["user", "create", "zoe"], None, "--password-stdin"),
        (
            vec![
                "client",
                "register",
                "--name",
                "x",
                "--grant",
                "password",
                "--redirect-uri",
                "not a uri",
            ],
            None,
            "--redirect-uri",
        ),
        (
            vec![
                "client",
                "register",
                "--name",
                "x",
                "--grant",
                "password",
                "--scope",
                "bad\"scope",
            ],
            None,
            "--scope",
        ),
        (
            vec![
                "client",
                "register",
                "--name",
                "x",
                "--public",
                "--grant",
                "client_credentials",
            ],
            None,
            "public client",
        ),
        (
            vec!["family", "revoke", "no-such-family"],
            None,
            "no token family",
        ),
        (
            vec!["family", "revoke", "--user", "nobody"],
            None,
            "no user named nobody",
        ),
        (
            vec!["family", "revoke", "--client", "nope"],
            None,
            "no client",
        ),
    ];
    for (args, stdin, expected) in cases {
        let out = app.admin(&args, stdin).await;
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
        assert_eq!(
            stderr.trim().lines().count(),
            1,
            "{args:?}: one line: {stderr}"
        );
        assert!(
            stderr.starts_with("tessera-admin: ") && stderr.contains(expected),
            "{args:?}: {stderr}"
        );
        assert!(out.stdout.is_empty(), "{args:?}");
    }
    // Usage errors come from clap, with its exit code 2.
    let out = app
        .admin(
            &["client", "register", "--name", "x", "--grant", "implicit"],
            None,
        )
        .await;
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown grant type"));
}
