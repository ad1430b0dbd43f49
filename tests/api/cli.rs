//! The real `tessera-admin` binary against the test database and a running server.

use std::process::Output;

use serde_json::Value;

use crate::helpers::{assert_oauth_error, both_backends, claims, Db, TestApp, PASSWORD};

both_backends!(
    admin_registers_a_client_and_a_user_that_get_tokens,
    admin_manages_a_client_through_its_life,
    admin_manages_users,
    admin_revokes_families_on_a_running_server,
    family_show_draws_the_lineage_and_the_incident,
    admin_rotates_and_retires_keys_on_a_running_server,
    admin_errors_are_one_line_and_non_zero,
    destructive_commands_need_confirmation,
    migrate_config_check_and_completions,
);

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone()).unwrap()
}

fn json(out: &Output) -> Value {
    let text = ok(out);
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

fn s(v: &Value) -> String {
    v.as_str().unwrap().to_owned()
}

async fn admin_registers_a_client_and_a_user_that_get_tokens(db: Db) {
    let app = TestApp::spawn(db).await;
    let client = json(
        &app.admin(
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
        .await,
    );
    let id = s(&client["client_id"]);
    let secret = s(&client["client_secret"]);
    assert_eq!(client["public"], false);
    assert_eq!(
        client["grant_types"],
        serde_json::json!(["password", "refresh_token"])
    );
    assert_eq!(client["scope"], "read write");
    assert!(secret.len() >= 43, "256-bit secret");

    let user = json(
        &app.admin(
            &["user", "create", "alice", "--password-stdin", "-o", "json"],
            Some(&format!("{PASSWORD}\n")),
        )
        .await,
    );
    assert_eq!(user["username"], "alice");
    assert_eq!(
        app.password_grant((&id, &secret), "alice").await["scope"],
        "read write"
    );

    // A public client has no secret; the text output says so and shows no secret line.
    let text = ok(&app
        .admin(
            &[
                "client", "register", "--name", "SPA", "--public", "--grant", "password",
            ],
            None,
        )
        .await);
    assert!(
        text.contains("type           public") && !text.contains("client_secret"),
        "{text}"
    );
    let spa = json(
        &app.admin(
            &[
                "client", "register", "--name", "SPA", "--public", "--grant", "password", "-o",
                "json",
            ],
            None,
        )
        .await,
    );
    assert_eq!(spa["client_secret"], Value::Null);

    // --database-url overrides the configuration.
    let list = json(
        &app.admin(
            &[
                "client",
                "list",
                "-o",
                "json",
                "--database-url",
                &app.db_url,
            ],
            None,
        )
        .await,
    );
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 3);
    assert!(
        list.iter().all(|c| c.get("client_secret").is_none()),
        "secrets are never listed"
    );
    let text = ok(&app.admin(&["client", "list"], None).await);
    assert!(
        text.lines().next().unwrap().starts_with("CLIENT_ID"),
        "{text}"
    );
    assert_eq!(text.lines().count(), 4);
}

async fn admin_manages_a_client_through_its_life(db: Db) {
    let app = TestApp::spawn(db).await;
    let (id, secret) = app.password_client().await;
    app.user("alice").await;
    let login = [
        ("grant_type", "password"),
        ("username", "alice"),
        ("password", PASSWORD),
    ];

    let shown = json(
        &app.admin(&["client", "show", &id, "-o", "json"], None)
            .await,
    );
    assert_eq!(shown["client_id"], id.as_str());
    assert_eq!(shown["disabled_at"], Value::Null);

    let updated = json(
        &app.admin(
            &[
                "client",
                "update",
                &id,
                "--name",
                "Renamed",
                "--scope",
                "read",
                "--redirect-uri",
                "https://app.example/cb",
                "-o",
                "json",
            ],
            None,
        )
        .await,
    );
    assert_eq!(updated["name"], "Renamed");
    assert_eq!(updated["scope"], "read");
    assert_eq!(
        updated["redirect_uris"],
        serde_json::json!(["https://app.example/cb"])
    );
    assert_eq!(
        updated["grant_types"],
        serde_json::json!(["password", "refresh_token"]),
        "unchanged"
    );
    let mut wide = login.to_vec();
    wide.push(("scope", "write"));
    assert_oauth_error(
        app.token(Some((&id, &secret)), &wide).await,
        400,
        "invalid_scope",
    )
    .await;

    // A new secret: the old one stops working at once.
    let rotated = json(
        &app.admin(
            &["client", "rotate-secret", &id, "--yes", "-o", "json"],
            None,
        )
        .await,
    );
    let new_secret = s(&rotated["client_secret"]);
    assert_ne!(new_secret, secret);
    assert_oauth_error(
        app.token(Some((&id, &secret)), &login).await,
        401,
        "invalid_client",
    )
    .await;
    let tokens: Value = app
        .token(Some((&id, &new_secret)), &login)
        .await
        .json()
        .await
        .unwrap();

    // Disabled: no token requests at all; enabled again: the family still works.
    json(
        &app.admin(&["client", "disable", &id, "--yes", "-o", "json"], None)
            .await,
    );
    assert_oauth_error(
        app.refresh((&id, &new_secret), &s(&tokens["refresh_token"]))
            .await,
        401,
        "invalid_client",
    )
    .await;
    let enabled = json(
        &app.admin(&["client", "enable", &id, "-o", "json"], None)
            .await,
    );
    assert_eq!(enabled["disabled_at"], Value::Null);
    let res = app
        .refresh((&id, &new_secret), &s(&tokens["refresh_token"]))
        .await;
    assert_eq!(res.status(), 200);

    // Delete: refused while it has active families, then done with --revoke-families.
    let out = app.admin(&["client", "delete", &id, "--yes"], None).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--revoke-families"));
    let deleted = json(
        &app.admin(
            &[
                "client",
                "delete",
                &id,
                "--revoke-families",
                "--yes",
                "-o",
                "json",
            ],
            None,
        )
        .await,
    );
    assert_eq!(deleted["revoked_families"], 1);
    assert_oauth_error(
        app.token(Some((&id, &new_secret)), &login).await,
        401,
        "invalid_client",
    )
    .await;
    let out = app.admin(&["client", "show", &id], None).await;
    assert_eq!(out.status.code(), Some(1));

    // A public client has no secret to rotate.
    let spa = json(
        &app.admin(
            &[
                "client", "register", "--name", "SPA", "--public", "--grant", "password", "-o",
                "json",
            ],
            None,
        )
        .await,
    );
    let out = app
        .admin(
            &["client", "rotate-secret", &s(&spa["client_id"]), "--yes"],
            None,
        )
        .await;
    assert!(String::from_utf8_lossy(&out.stderr).contains("public"));
}

async fn admin_manages_users(db: Db) {
    let app = TestApp::spawn(db).await;
    let (id, secret) = app.password_client().await;
    let user_id = app.user("alice").await;
    app.user("bob").await;
    let tokens = app.password_grant((&id, &secret), "alice").await;

    let list = json(&app.admin(&["user", "list", "-o", "json"], None).await);
    let names: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["username"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["alice", "bob"]);
    let alice = json(
        &app.admin(&["user", "show", "alice", "-o", "json"], None)
            .await,
    );
    assert_eq!(alice["id"], user_id.as_str());
    assert_eq!(alice["active_families"], 1);
    assert!(alice.get("password_hash").is_none());

    // A new password revokes the user's families; the old password stops working.
    let changed = json(
        &app.admin(
            &[
                "user",
                "set-password",
                "alice",
                "--password-stdin",
                "--yes",
                "-o",
                "json",
            ],
            Some("a brand new passphrase\n"),
        )
        .await,
    );
    assert_eq!(changed["revoked_families"], 1);
    assert_oauth_error(
        app.refresh((&id, &secret), &s(&tokens["refresh_token"]))
            .await,
        400,
        "invalid_grant",
    )
    .await;
    let sid = s(&claims(&s(&tokens["access_token"]))["sid"]);
    let family = json(
        &app.admin(&["family", "show", &sid, "-o", "json"], None)
            .await,
    );
    assert_eq!(family["family"]["revoked_reason"], "password_changed");
    let res = app
        .token(
            Some((&id, &secret)),
            &[
                ("grant_type", "password"),
                ("username", "alice"),
                ("password", "a brand new passphrase"),
            ],
        )
        .await;
    assert_eq!(res.status(), 200);
    let fresh: Value = res.json().await.unwrap();

    // Disabled: sign-in and refresh stop at once; the families are revoked with a reason.
    let disabled = json(
        &app.admin(&["user", "disable", "alice", "--yes", "-o", "json"], None)
            .await,
    );
    assert_eq!(disabled["revoked_families"], 1);
    assert_oauth_error(
        app.refresh((&id, &secret), &s(&fresh["refresh_token"]))
            .await,
        400,
        "invalid_grant",
    )
    .await;
    let sid = s(&claims(&s(&fresh["access_token"]))["sid"]);
    let family = json(
        &app.admin(&["family", "show", &sid, "-o", "json"], None)
            .await,
    );
    assert_eq!(family["family"]["revoked_reason"], "user_disabled");
    let text = ok(&app.admin(&["user", "show", "alice"], None).await);
    assert!(text.contains("disabled since"), "{text}");
    json(
        &app.admin(&["user", "enable", "alice", "-o", "json"], None)
            .await,
    );
    let res = app
        .token(
            Some((&id, &secret)),
            &[
                ("grant_type", "password"),
                ("username", "alice"),
                ("password", "a brand new passphrase"),
            ],
        )
        .await;
    assert_eq!(res.status(), 200);
}

async fn admin_revokes_families_on_a_running_server(db: Db) {
    let app = TestApp::spawn(db).await;
    let (id, secret) = app.password_client().await;
    app.user("alice").await;
    app.user("bob").await;
    let a1 = app.password_grant((&id, &secret), "alice").await;
    let a2 = app.password_grant((&id, &secret), "alice").await;
    let b1 = app.password_grant((&id, &secret), "bob").await;

    let listed = json(
        &app.admin(
            &[
                "family", "list", "--user", "alice", "--active", "-o", "json",
            ],
            None,
        )
        .await,
    );
    assert_eq!(listed.as_array().unwrap().len(), 2);

    let out = app
        .admin(
            &[
                "family",
                "revoke",
                "--user",
                "alice",
                "--reason",
                "lost phone",
                "--yes",
                "-o",
                "json",
            ],
            None,
        )
        .await;
    assert_eq!(json(&out)["revoked"], 2);
    for t in [&a1, &a2] {
        assert_oauth_error(
            app.refresh((&id, &secret), &s(&t["refresh_token"])).await,
            400,
            "invalid_grant",
        )
        .await;
    }
    let revoked = json(
        &app.admin(&["family", "list", "--revoked", "-o", "json"], None)
            .await,
    );
    let revoked = revoked.as_array().unwrap();
    assert_eq!(revoked.len(), 2);
    assert!(revoked
        .iter()
        .all(|f| f["revoked_reason"] == "lost phone" && f["username"] == "alice"));
    let b2 = app.refresh((&id, &secret), &s(&b1["refresh_token"])).await;
    assert_eq!(b2.status(), 200, "other users are untouched");
    let b2: Value = b2.json().await.unwrap();

    let out = app
        .admin(&["family", "revoke", "--client", &id, "--yes"], None)
        .await;
    assert!(ok(&out).contains("revoked 1"));
    assert_oauth_error(
        app.refresh((&id, &secret), &s(&b2["refresh_token"])).await,
        400,
        "invalid_grant",
    )
    .await;
    let active = json(
        &app.admin(
            &["family", "list", "--client", &id, "--active", "-o", "json"],
            None,
        )
        .await,
    );
    assert_eq!(active.as_array().unwrap().len(), 0);
}

async fn family_show_draws_the_lineage_and_the_incident(db: Db) {
    let app = TestApp::spawn(db).await;
    let (id, secret) = app.password_client().await;
    app.user("alice").await;
    let first = app.password_grant((&id, &secret), "alice").await;
    let mut current = first.clone();
    for _ in 0..3 {
        current = app
            .refreshed((&id, &secret), &s(&current["refresh_token"]))
            .await;
    }
    // A thief replays the first token from elsewhere.
    let res = app
        .http
        .post(format!("{}/token", app.address))
        .basic_auth(&id, Some(&secret))
        .header("User-Agent", "stolen-copy/0.1")
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", s(&first["refresh_token"]).as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_oauth_error(res, 400, "invalid_grant").await;
    let sid = s(&claims(&s(&first["access_token"]))["sid"]);

    let shown = json(
        &app.admin(&["family", "show", &sid, "-o", "json"], None)
            .await,
    );
    assert_eq!(shown["family"]["state"], "revoked");
    assert_eq!(shown["family"]["revoked_reason"], "reuse_detected");
    assert_eq!(shown["family"]["username"], "alice");
    let tokens = shown["tokens"].as_array().unwrap();
    assert_eq!(tokens.len(), 4);
    let states: Vec<&str> = tokens
        .iter()
        .map(|t| t["state"].as_str().unwrap())
        .collect();
    assert_eq!(states, ["rotated", "rotated", "rotated", "revoked"]);
    assert_eq!(tokens[1]["parent_id"], tokens[0]["id"]);
    let incident = &shown["incidents"][0];
    assert_eq!(incident["replayed_token_id"], tokens[0]["id"]);
    assert_eq!(incident["active_token_id"], tokens[3]["id"]);
    assert_eq!(incident["user_agent"], "stolen-copy/0.1");
    // Never a token, only ids.
    let raw = serde_json::to_string(&shown).unwrap();
    assert!(!raw.contains("tsr_"));

    let text = ok(&app.admin(&["family", "show", &sid], None).await);
    println!("{text}");
    assert!(
        text.contains("REVOKED") && text.contains("reuse_detected"),
        "{text}"
    );
    assert_eq!(
        text.matches("└─ ").count(),
        3,
        "three successors under the first token:\n{text}"
    );
    assert!(
        text.contains("◀ replayed") && text.contains("◀ held at the replay"),
        "{text}"
    );
    assert!(
        text.contains("stolen-copy/0.1") && text.contains("tessera-tests/1.0"),
        "both requesters side by side:\n{text}"
    );
    assert!(!text.contains("tsr_"));

    // The incident is listed and shown, and filters apply.
    let incidents = json(
        &app.admin(
            &[
                "incident", "list", "--since", "1h", "--user", "alice", "-o", "json",
            ],
            None,
        )
        .await,
    );
    assert_eq!(incidents.as_array().unwrap().len(), 1);
    let incident_id = s(&incidents[0]["id"]);
    let one = json(
        &app.admin(&["incident", "show", &incident_id, "-o", "json"], None)
            .await,
    );
    assert_eq!(one["family_id"], sid.as_str());
    let other = app
        .client(&[tessera::domain::client::GrantType::Password], false, "")
        .await
        .0;
    let none = json(
        &app.admin(
            &["incident", "list", "--client", &other, "-o", "json"],
            None,
        )
        .await,
    );
    assert_eq!(none.as_array().unwrap().len(), 0);
    let text = ok(&app.admin(&["incident", "list"], None).await);
    assert!(
        text.contains(&incident_id) && text.contains("stolen-copy"),
        "{text}"
    );
}

async fn admin_rotates_and_retires_keys_on_a_running_server(db: Db) {
    let app = TestApp::spawn_with(
        db,
        &[
            ("TESSERA_KEYS__RELOAD_INTERVAL", "100ms"),
            ("TESSERA_TOKENS__ACCESS_TTL", "2s"),
        ],
    )
    .await;
    let (id, secret) = app.password_client().await;
    app.user("alice").await;
    let jwks = || async {
        let v: Value = app
            .http
            .get(format!("{}/jwks.json", app.address))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        v["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| s(&k["kid"]))
            .collect::<Vec<_>>()
    };
    let signing_kid = |t: &Value| {
        use base64::Engine;
        let header = s(t).split('.').next().unwrap().to_owned();
        let h: Value = serde_json::from_slice(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(header)
                .unwrap(),
        )
        .unwrap();
        s(&h["kid"])
    };
    let keys = json(&app.admin(&["key", "list", "-o", "json"], None).await);
    assert_eq!(keys.as_array().unwrap().len(), 1);
    assert_eq!(keys[0]["state"], "signing");
    let old = s(&keys[0]["kid"]);

    // Rotate: published at once, signs only after the activation delay (10 minutes by default).
    let pending = json(&app.admin(&["key", "rotate", "-o", "json"], None).await);
    assert_eq!(pending["state"], "pending");
    let pending_kid = s(&pending["kid"]);
    assert!(jwks().await.contains(&pending_kid), "published at once");
    let t = app.password_grant((&id, &secret), "alice").await;
    assert_eq!(signing_kid(&t["access_token"]), old);

    // Rotate --now (a compromise): the running server signs with it within the reload interval.
    let urgent = json(
        &app.admin(
            &[
                "key",
                "rotate",
                "--now",
                "--algorithm",
                "EdDSA",
                "-o",
                "json",
            ],
            None,
        )
        .await,
    );
    assert_eq!(urgent["state"], "signing");
    let new = s(&urgent["kid"]);
    tokio::time::sleep(std::time::Duration::from_millis(400)).await;
    let t2 = app.password_grant((&id, &secret), "alice").await;
    assert_eq!(signing_kid(&t2["access_token"]), new);
    assert_eq!(
        app.userinfo(&s(&t["access_token"])).await.status(),
        200,
        "old tokens still verify"
    );

    // Retire the old key: it leaves the JWKS once its tokens have expired
    // (access_ttl 2s + reload_interval 0.1s + 5s for clock differences).
    json(
        &app.admin(&["key", "retire", &old, "--yes", "-o", "json"], None)
            .await,
    );
    let listed = json(&app.admin(&["key", "list", "-o", "json"], None).await);
    let state = |kid: &str| {
        listed
            .as_array()
            .unwrap()
            .iter()
            .find(|k| k["kid"] == kid)
            .unwrap()["state"]
            .clone()
    };
    assert_eq!(state(&old), "retired");
    assert_eq!(state(&pending_kid), "pending");
    assert!(
        jwks().await.contains(&old),
        "still published while its tokens live"
    );
    app.advance(std::time::Duration::from_millis(3000));
    assert!(
        jwks().await.contains(&old),
        "not before retention has passed"
    );
    app.advance(std::time::Duration::from_millis(4500));
    let published = jwks().await;
    assert!(!published.contains(&old), "{published:?}");
    assert!(published.contains(&new) && published.contains(&pending_kid));

    // Retiring every key is refused.
    json(
        &app.admin(
            &["key", "retire", &pending_kid, "--yes", "-o", "json"],
            None,
        )
        .await,
    );
    let out = app.admin(&["key", "retire", &new, "--yes"], None).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("only signing key"));
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
        (vec!["user", "show", "nobody"], None, "no user named nobody"),
        (
            vec!["user", "disable", "nobody", "--yes"],
            None,
            "no user named nobody",
        ),
        (
            vec!["user", "set-password", "nobody", "--password-stdin"],
            Some("long enough pass\n"),
            "no user named nobody",
        ),
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
                "--redirect-uri",
                "http://evil.example/cb",
            ],
            None,
            "http on localhost",
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
            vec!["client", "register", "--name", " ", "--grant", "password"],
            None,
            "name",
        ),
        (
            vec!["client", "show", "nope"],
            None,
            "no client with id nope",
        ),
        (
            vec!["client", "update", "nope", "--name", "x"],
            None,
            "no client with id nope",
        ),
        (
            vec!["client", "disable", "nope", "--yes"],
            None,
            "no client with id nope",
        ),
        (
            vec!["family", "revoke", "no-such-family", "--yes"],
            None,
            "no token family",
        ),
        (
            vec!["family", "show", "no-such-family"],
            None,
            "no token family",
        ),
        (
            vec!["family", "revoke", "--user", "nobody", "--yes"],
            None,
            "no user named nobody",
        ),
        (
            vec!["family", "revoke", "--client", "nope", "--yes"],
            None,
            "no client",
        ),
        (vec!["incident", "show", "nope"], None, "no incident"),
        (
            vec!["key", "retire", "nope", "--yes"],
            None,
            "no signing key",
        ),
        (
            vec![
                "client",
                "list",
                "--database-url",
                "postgres://nobody@127.0.0.1:1/none",
            ],
            None,
            "database unreachable",
        ),
        (
            vec!["client", "list", "--database-url", "mysql://x"],
            None,
            "database.url",
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
        assert!(!stderr.contains("panicked"), "{args:?}");
        assert!(out.stdout.is_empty(), "{args:?}");
    }
    let (id, _) = app.password_client().await;
    let out = app.admin(&["client", "update", &id], None).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("nothing to change"));

    // Key commands refuse a master key that cannot open the server's keys.
    let mut env = crate::helpers::test_env(
        &app.db_url,
        "d3JvbmctbWFzdGVyLWtleS13cm9uZy1tYXN0ZXIta2V5LXdyb25nLW1hc3Rlcg",
    );
    env.retain(|(k, _)| k != "TESSERA_PASSWORDS__ARGON2_MEMORY_KIB");
    let args: Vec<String> = ["key", "rotate"].iter().map(|s| s.to_string()).collect();
    let out = tokio::task::spawn_blocking(move || crate::helpers::run_admin(&env, &args, None))
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("master key does not match"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // A database whose schema is behind: only `migrate` changes it.
    let fresh = crate::helpers::TestDb::new(db);
    let out = app
        .admin(&["client", "list", "--database-url", &fresh.url], None)
        .await;
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("run `tessera-admin migrate`"));

    // Usage errors come from clap, with its exit code 2.
    for args in [
        vec!["client", "register", "--name", "x", "--grant", "implicit"],
        vec!["family", "revoke"],
        vec!["family", "list", "--active", "--revoked"],
    ] {
        let out = app.admin(&args, None).await;
        assert_eq!(out.status.code(), Some(2), "{args:?}");
    }
}

async fn destructive_commands_need_confirmation(db: Db) {
    let app = TestApp::spawn(db).await;
    let (id, secret) = app.password_client().await;
    app.user("alice").await;
    let tokens = app.password_grant((&id, &secret), "alice").await;
    let sid = s(&claims(&s(&tokens["access_token"]))["sid"]);
    let kid = s(&json(&app.admin(&["key", "list", "-o", "json"], None).await)[0]["kid"]);
    for args in [
        vec!["client", "rotate-secret", id.as_str()],
        vec!["client", "disable", id.as_str()],
        vec!["client", "delete", id.as_str(), "--revoke-families"],
        vec!["user", "disable", "alice"],
        vec!["family", "revoke", sid.as_str()],
        vec!["key", "retire", kid.as_str()],
    ] {
        // No terminal here: refused, nothing changed.
        let out = app.admin(&args, Some("y\n")).await;
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        assert!(stderr.contains("--yes"), "{args:?}: {stderr}");
    }
    assert_eq!(
        app.refresh((&id, &secret), &s(&tokens["refresh_token"]))
            .await
            .status(),
        200,
        "nothing was changed"
    );
}

async fn migrate_config_check_and_completions(db: Db) {
    let app = TestApp::spawn(db).await;
    let migrated = json(&app.admin(&["migrate", "-o", "json"], None).await);
    assert_eq!(
        migrated["applied"],
        serde_json::json!([]),
        "the server applied them already"
    );
    let fresh = crate::helpers::TestDb::new(db);
    let applied = json(
        &app.admin(
            &["migrate", "--database-url", &fresh.url, "-o", "json"],
            None,
        )
        .await,
    );
    let shipped = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations/sqlite"))
        .unwrap()
        .count();
    assert_eq!(applied["applied"].as_array().unwrap().len(), shipped);

    let checked = json(
        &app.admin(
            &[
                "config",
                "check",
                "-o",
                "json",
                "--database-url",
                "postgres://tessera:hunter2secret@db.internal:5432/tessera",
            ],
            None,
        )
        .await,
    );
    assert_eq!(checked["tokens"]["access_ttl"], "15m");
    assert_eq!(
        checked["database"]["url"],
        "postgres://tessera:REDACTED@db.internal:5432/tessera"
    );
    let raw = checked.to_string();
    assert!(
        !raw.contains("hunter2secret") && !raw.contains(&app.master_key),
        "{raw}"
    );
    let text = ok(&app.admin(&["config", "check"], None).await);
    assert!(
        text.starts_with("configuration is valid") && text.contains("[tokens]"),
        "{text}"
    );
    let out = app.admin(&["config", "check"], None).await;
    assert!(out.status.success());

    let bash = ok(&app.admin(&["completions", "bash"], None).await);
    assert!(bash.contains("tessera-admin") && bash.contains("rotate-secret"));
    let zsh = ok(&app.admin(&["completions", "zsh"], None).await);
    assert!(zsh.contains("#compdef tessera-admin"));
    let fish = ok(&app.admin(&["completions", "fish"], None).await);
    assert!(fish.contains("complete -c tessera-admin"));
}

/// The y/N question on a real terminal (a pty made by `script`).
#[tokio::test]
async fn destructive_commands_ask_on_a_terminal() {
    if std::process::Command::new("script")
        .arg("--version")
        .output()
        .is_err()
    {
        panic!("`script` (util-linux) is needed for this test");
    }
    let app = TestApp::spawn(Db::Sqlite).await;
    let (id, secret) = app.password_client().await;
    app.user("alice").await;
    let tokens = app.password_grant((&id, &secret), "alice").await;
    let sid = s(&claims(&s(&tokens["access_token"]))["sid"]);
    let run = |answer: &'static str| {
        let env = crate::helpers::test_env(&app.db_url, &app.master_key);
        let cmd = format!(
            "{} family revoke {sid}",
            crate::helpers::admin_bin().display()
        );
        async move {
            tokio::task::spawn_blocking(move || {
                use std::io::Write;
                let mut child = std::process::Command::new("script")
                    .args(["-qec", &cmd, "/dev/null"])
                    .env_clear()
                    .env("PATH", std::env::var("PATH").unwrap_or_default())
                    .envs(env)
                    .current_dir(std::env::temp_dir())
                    .stdin(std::process::Stdio::piped())
                    .stdout(std::process::Stdio::piped())
                    .stderr(std::process::Stdio::piped())
                    .spawn()
                    .unwrap();
                let mut stdin = child.stdin.take().unwrap();
                std::thread::sleep(std::time::Duration::from_millis(500));
                stdin.write_all(answer.as_bytes()).unwrap();
                drop(stdin);
                child.wait_with_output().unwrap()
            })
            .await
            .unwrap()
        }
    };
    let no = run("n\n").await;
    let text = String::from_utf8_lossy(&no.stdout);
    assert!(
        text.contains("Revoke family") && text.contains("[y/N]"),
        "{text}"
    );
    assert!(text.contains("cancelled"), "{text}");
    assert_eq!(
        app.refresh((&id, &secret), &s(&tokens["refresh_token"]))
            .await
            .status(),
        200
    );
    let yes = run("y\n").await;
    let text = String::from_utf8_lossy(&yes.stdout);
    assert!(text.contains("revoked 1 token families"), "{text}");
}
