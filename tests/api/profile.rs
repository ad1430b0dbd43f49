//! What apps learn about the user at `/userinfo` (OpenID Connect Core §5.3): `sub`, and the
//! claims the access token's scope releases (§5.4), from the profile administrators keep with
//! `tessera-admin user create|update --name --email`.

use serde_json::{json, Value};
use tessera::domain::client::GrantType;

use crate::helpers::{both_backends, Db, TestApp, PASSWORD};

both_backends!(
    userinfo_releases_what_the_scope_allows,
    userinfo_takes_the_token_from_the_header_or_a_post_body,
    administrators_keep_a_users_name_and_address,
);

/// Creates alice with the real CLI, with `profile` flags.
async fn create_alice(app: &TestApp, profile: &[&str]) -> Value {
    let mut args = vec!["user", "create", "alice", "--password-stdin", "-o", "json"];
    args.extend_from_slice(profile);
    let out = app.admin(&args, Some(&format!("{PASSWORD}\n"))).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// An access token for alice with `scope`, from a client that may have every scope used here.
async fn token(app: &TestApp, client: (&str, &str), scope: &str) -> String {
    let res = app
        .token(
            Some(client),
            &[
                ("grant_type", "password"),
                ("username", "alice"),
                ("password", PASSWORD),
                ("scope", scope),
            ],
        )
        .await;
    let body: Value = res.json().await.unwrap();
    body["access_token"]
        .as_str()
        .unwrap_or_else(|| panic!("{body}"))
        .to_owned()
}

async fn userinfo(app: &TestApp, token: &str) -> Value {
    let res = app
        .http
        .get(format!("{}/userinfo", app.address))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    res.json().await.unwrap()
}

async fn userinfo_releases_what_the_scope_allows(db: Db) {
    let app = TestApp::spawn(db).await;
    let (id, secret) = app
        .client(&[GrantType::Password], false, "read profile email")
        .await;
    let secret = secret.unwrap();
    let c = (id.as_str(), secret.as_str());
    let alice = create_alice(
        &app,
        &[
            "--name",
            "Alice Liddell",
            "--email",
            "alice@example.com",
            "--email-verified",
            "true",
        ],
    )
    .await;
    let sub = alice["id"].as_str().unwrap();

    let plain = userinfo(&app, &token(&app, c, "read").await).await;
    assert_eq!(plain, json!({"sub": sub, "preferred_username": "alice"}));

    let profile = userinfo(&app, &token(&app, c, "profile").await).await;
    assert_eq!(profile["name"], "Alice Liddell");
    assert!(
        profile["updated_at"].as_i64().unwrap() > 1_700_000_000,
        "{profile}"
    );
    assert!(profile.get("email").is_none(), "{profile}");

    let both = userinfo(&app, &token(&app, c, "profile email").await).await;
    assert_eq!(both["sub"], sub);
    assert_eq!(both["email"], "alice@example.com");
    assert_eq!(both["email_verified"], true);
    assert_eq!(both["name"], "Alice Liddell");

    // An address that is not set is not given, not even as null.
    let out = app
        .admin(&["user", "update", "alice", "--email", ""], None)
        .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let none = userinfo(&app, &token(&app, c, "email").await).await;
    assert_eq!(none, json!({"sub": sub, "preferred_username": "alice"}));
}

/// RFC 6750 §2.1 and §2.2: the header, or `access_token` in a POST form body; both at once is
/// `invalid_request` (§2).
async fn userinfo_takes_the_token_from_the_header_or_a_post_body(db: Db) {
    let app = TestApp::spawn(db).await;
    let (id, secret) = app.client(&[GrantType::Password], false, "profile").await;
    let secret = secret.unwrap();
    create_alice(&app, &["--name", "Alice"]).await;
    let at = token(&app, (&id, &secret), "profile").await;
    let url = format!("{}/userinfo", app.address);

    let res = app.http.post(&url).bearer_auth(&at).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let by_header: Value = res.json().await.unwrap();
    let res = app
        .http
        .post(&url)
        .form(&[("access_token", at.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["cache-control"], "no-store");
    let by_body: Value = res.json().await.unwrap();
    assert_eq!(by_body, by_header);
    assert_eq!(by_body["name"], "Alice");

    let res = app
        .http
        .post(&url)
        .bearer_auth(&at)
        .form(&[("access_token", at.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    let challenge = res.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        challenge.contains(r#"error="invalid_request""#),
        "{challenge}"
    );
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"], "invalid_request");

    let res = app
        .http
        .post(&url)
        .form(&[("access_token", "not-a-token")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
}

async fn administrators_keep_a_users_name_and_address(db: Db) {
    let app = TestApp::spawn(db).await;
    let created = create_alice(&app, &["--email", "alice@example.com"]).await;
    assert_eq!(created["email"], "alice@example.com");
    assert_eq!(
        created["email_verified"], false,
        "an address is unverified until said"
    );
    assert_eq!(created["name"], Value::Null);

    let update = |args: &'static [&'static str]| {
        let app = &app;
        async move {
            let mut all = vec!["user", "update", "alice"];
            all.extend_from_slice(args);
            all.extend_from_slice(&["-o", "json"]);
            app.admin(&all, None).await
        }
    };
    let out = update(&["--email-verified", "true", "--name", "Alice Liddell"]).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (v["email_verified"].clone(), v["name"].clone()),
        (json!(true), json!("Alice Liddell"))
    );

    // A new address is not verified, whatever the old one was.
    let out = update(&["--email", "alice@example.org"]).await;
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["email"], "alice@example.org");
    assert_eq!(v["email_verified"], false);

    // A malformed address or name is refused and changes nothing.
    for bad in [&["--email", "alice"][..], &["--name", "a\u{7}b"][..]] {
        let mut all = vec!["user", "update", "alice"];
        all.extend_from_slice(bad);
        let out = app.admin(&all, None).await;
        assert_eq!(out.status.code(), Some(1), "{bad:?}");
    }
    let out = update(&[]).await;
    assert_eq!(out.status.code(), Some(1), "nothing to change");
    let shown: Value = serde_json::from_slice(
        &app.admin(&["user", "show", "alice", "-o", "json"], None)
            .await
            .stdout,
    )
    .unwrap();
    assert_eq!(shown["email"], "alice@example.org");
    assert_eq!(shown["name"], "Alice Liddell");
    let events: Value = serde_json::from_slice(
        &app.admin(
            &["audit", "list", "--kind", "user.updated", "-o", "json"],
            None,
        )
        .await
        .stdout,
    )
    .unwrap();
    assert_eq!(events.as_array().unwrap().len(), 2, "{events}");
}
