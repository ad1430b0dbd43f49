//! Clients and users through the CLI.

use serde_json::Value;

use super::{json, ok, s};
use crate::helpers::{assert_oauth_error, both_backends, claims, Db, TestApp, PASSWORD};

both_backends!(
    admin_registers_a_client_and_a_user_that_get_tokens,
    admin_manages_a_client_through_its_life,
    admin_manages_users,
    admin_sets_a_clients_openid_connect_logout_addresses,
    admin_sets_a_browser_apps_origins_and_refresh_lifetime,
);

/// `--allowed-origin` (exact origins: https, or http on this machine; no wildcards, no paths)
/// and `--refresh-absolute-ttl`: shown, replaced, removed; and a registered origin reads the
/// token endpoint's answers at once.
async fn admin_sets_a_browser_apps_origins_and_refresh_lifetime(db: Db) {
    let app = TestApp::spawn(db).await;
    let registered = json(
        &app.admin(
            &[
                "client",
                "register",
                "--name",
                "Photos SPA",
                "--public",
                "--grant",
                "authorization_code",
                "--grant",
                "refresh_token",
                "--redirect-uri",
                "https://photos.example/app/callback",
                "--allowed-origin",
                "https://Photos.example/",
                "--allowed-origin",
                "http://localhost:5173",
                "--refresh-absolute-ttl",
                "1d",
                "-o",
                "json",
            ],
            None,
        )
        .await,
    );
    assert_eq!(
        registered["allowed_origins"],
        serde_json::json!(["http://localhost:5173", "https://photos.example"])
    );
    assert_eq!(registered["refresh_absolute_ttl"], "1d");
    let id = s(&registered["client_id"]);
    let text = ok(&app.admin(&["client", "show", &id], None).await);
    assert!(
        text.contains("origins        http://localhost:5173 https://photos.example")
            && text.contains("refresh_ttl    1d at most"),
        "{text}"
    );

    for (bad, why) in [
        ("http://photos.example", "http is allowed only on localhost"),
        ("https://*.photos.example", "wildcards are not allowed"),
        ("https://photos.example/app", "only scheme, host and port"),
    ] {
        let out = app
            .admin(&["client", "update", &id, "--allowed-origin", bad], None)
            .await;
        assert!(!out.status.success(), "{bad}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(why), "{bad}: {err}");
    }
    // A secret in a browser is no secret: only public clients have origins.
    let out = app
        .admin(
            &[
                "client",
                "register",
                "--name",
                "web",
                "--grant",
                "authorization_code",
                "--redirect-uri",
                "https://photos.example/cb",
                "--allowed-origin",
                "https://photos.example",
            ],
            None,
        )
        .await;
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr)
        .contains("a confidential client cannot have allowed origins"));
    // Longer than the server's: taken, with a note that the server's applies.
    let out = app
        .admin(
            &["client", "update", &id, "--refresh-absolute-ttl", "400d"],
            None,
        )
        .await;
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("the server's applies"));
    let out = app
        .admin(
            &["client", "update", &id, "--refresh-absolute-ttl", "5s"],
            None,
        )
        .await;
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("between 1 minute and 10 years"));

    // A registered origin reads the answers at once: the server reads the client per request.
    let preflight = |origin: &'static str| {
        let url = format!("{}/token", app.address);
        async move {
            reqwest::Client::new()
                .request(reqwest::Method::OPTIONS, url)
                .header("Origin", origin)
                .header("Access-Control-Request-Method", "POST")
                .send()
                .await
                .unwrap()
                .headers()
                .get("access-control-allow-origin")
                .map(|v| v.to_str().unwrap().to_owned())
        }
    };
    assert_eq!(
        preflight("https://photos.example").await.as_deref(),
        Some("https://photos.example")
    );
    let updated = json(
        &app.admin(
            &[
                "client",
                "update",
                &id,
                "--allowed-origin",
                "https://photos.example",
                "--refresh-absolute-ttl",
                "default",
                "-o",
                "json",
            ],
            None,
        )
        .await,
    );
    assert_eq!(
        updated["allowed_origins"],
        serde_json::json!(["https://photos.example"])
    );
    assert_eq!(updated["refresh_absolute_ttl"], Value::Null);
    assert_eq!(preflight("http://localhost:5173").await, None);

    let cleared = json(
        &app.admin(
            &[
                "client",
                "update",
                &id,
                "--no-allowed-origins",
                "-o",
                "json",
            ],
            None,
        )
        .await,
    );
    assert_eq!(cleared["allowed_origins"], serde_json::json!([]));
    assert_eq!(preflight("https://photos.example").await, None);
}

/// `--post-logout-redirect-uri`, `--backchannel-logout-uri` and
/// `--backchannel-logout-session-required`: shown, changed, removed, and checked like redirect
/// URIs (https, or http on this machine).
async fn admin_sets_a_clients_openid_connect_logout_addresses(db: Db) {
    let app = TestApp::spawn(db).await;
    let registered = json(
        &app.admin(
            &[
                "client",
                "register",
                "--name",
                "Photos",
                "--grant",
                "authorization_code",
                "--scope",
                "openid",
                "--redirect-uri",
                "https://photos.example/cb",
                "--post-logout-redirect-uri",
                "https://photos.example/bye",
                "--backchannel-logout-uri",
                "https://photos.example/backchannel",
                "--backchannel-logout-session-required",
                "-o",
                "json",
            ],
            None,
        )
        .await,
    );
    assert_eq!(
        registered["post_logout_redirect_uris"][0],
        "https://photos.example/bye"
    );
    assert_eq!(
        registered["backchannel_logout_uri"],
        "https://photos.example/backchannel"
    );
    assert_eq!(registered["backchannel_logout_session_required"], true);
    let id = registered["client_id"].as_str().unwrap().to_owned();
    let shown = app.admin(&["client", "show", &id], None).await;
    let text = String::from_utf8_lossy(&shown.stdout);
    assert!(
        text.contains("backchannel    https://photos.example/backchannel (sid required)"),
        "{text}"
    );

    let bad = app
        .admin(
            &[
                "client",
                "update",
                &id,
                "--backchannel-logout-uri",
                "http://photos.example/bc",
            ],
            None,
        )
        .await;
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("must be https"));

    let cleared = json(
        &app.admin(
            &[
                "client",
                "update",
                &id,
                "--no-backchannel-logout",
                "--post-logout-redirect-uri",
                "http://localhost:9000/bye",
                "-o",
                "json",
            ],
            None,
        )
        .await,
    );
    assert_eq!(cleared["backchannel_logout_uri"], serde_json::Value::Null);
    assert_eq!(
        cleared["post_logout_redirect_uris"][0],
        "http://localhost:9000/bye"
    );
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
