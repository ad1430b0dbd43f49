//! client_credentials (RFC 6749 §4.4), revocation (RFC 7009) and introspection (RFC 7662).

use serde_json::{json, Value};
use tessera::domain::client::GrantType;

use crate::helpers::{assert_oauth_error, both_backends, claims, Db, TestApp};

both_backends!(
    client_credentials_issue_an_access_token_only,
    revocation_revokes_families_and_access_tokens,
    introspection_answers_for_own_tokens_and_granted_resource_servers,
);

async fn client_credentials_issue_an_access_token_only(db: Db) {
    let app = TestApp::spawn(db).await;
    let (id, secret) = app
        .client(
            &[GrantType::ClientCredentials],
            false,
            "reports:read reports:write",
        )
        .await;
    let secret = secret.unwrap();
    let res = app
        .token(
            Some((&id, &secret)),
            &[
                ("grant_type", "client_credentials"),
                ("scope", "reports:read"),
            ],
        )
        .await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["cache-control"], "no-store");
    let body: Value = res.json().await.unwrap();
    assert!(body.get("refresh_token").is_none(), "{body}");
    assert_eq!(body["scope"], "reports:read");
    let c = claims(body["access_token"].as_str().unwrap());
    assert_eq!(c["sub"], id.as_str(), "the client is the subject");
    assert!(c.get("sid").is_none());
    // Not a user: /userinfo has nothing to say about it.
    assert_eq!(
        app.userinfo(body["access_token"].as_str().unwrap())
            .await
            .status(),
        401
    );
    // Default scope, scope outside the client's, and a client without the grant.
    let res = app
        .token(
            Some((&id, &secret)),
            &[("grant_type", "client_credentials")],
        )
        .await;
    assert_eq!(
        res.json::<Value>().await.unwrap()["scope"],
        "reports:read reports:write"
    );
    let res = app
        .token(
            Some((&id, &secret)),
            &[("grant_type", "client_credentials"), ("scope", "admin")],
        )
        .await;
    assert_oauth_error(res, 400, "invalid_scope").await;
    let (other, other_secret) = app.password_client().await;
    let res = app
        .token(
            Some((&other, &other_secret)),
            &[("grant_type", "client_credentials")],
        )
        .await;
    assert_oauth_error(res, 400, "unauthorized_client").await;
}

async fn revocation_revokes_families_and_access_tokens(db: Db) {
    let app = TestApp::spawn(db).await;
    let (id, secret) = app.password_client().await;
    let (other, other_secret) = app.password_client().await;
    app.user("alice").await;
    let c = (id.as_str(), secret.as_str());

    // A refresh token: the whole family goes, access tokens included.
    let t = app.password_grant(c, "alice").await;
    let refresh = t["refresh_token"].as_str().unwrap();
    // Another client cannot revoke it (and is told nothing).
    let res = app
        .post_as(
            "/revoke",
            (&other, &other_secret),
            &[("token", refresh), ("token_type_hint", "refresh_token")],
        )
        .await;
    assert_eq!(res.status(), 200);
    assert_eq!(
        app.refresh(c, refresh).await.status(),
        200,
        "not revoked by another client"
    );
    let t = app.password_grant(c, "alice").await;
    let refresh = t["refresh_token"].as_str().unwrap();
    let res = app
        .post_as(
            "/revoke",
            c,
            &[("token", refresh), ("token_type_hint", "refresh_token")],
        )
        .await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["cache-control"], "no-store");
    assert_oauth_error(app.refresh(c, refresh).await, 400, "invalid_grant").await;
    assert_eq!(
        app.userinfo(t["access_token"].as_str().unwrap())
            .await
            .status(),
        401
    );

    // An access token: by its jti; the family (and its refresh token) stay.
    let t = app.password_grant(c, "alice").await;
    let access = t["access_token"].as_str().unwrap();
    let res = app
        .post_as("/revoke", (&other, &other_secret), &[("token", access)])
        .await;
    assert_eq!(res.status(), 200);
    assert_eq!(
        app.userinfo(access).await.status(),
        200,
        "not revoked by another client"
    );
    assert_eq!(
        app.post_as(
            "/revoke",
            c,
            &[("token", access), ("token_type_hint", "access_token")]
        )
        .await
        .status(),
        200
    );
    assert_eq!(app.userinfo(access).await.status(), 401);
    assert_eq!(app.introspect(c, access).await, json!({"active": false}));
    assert_eq!(
        app.refresh(c, t["refresh_token"].as_str().unwrap())
            .await
            .status(),
        200
    );
    // Twice is fine.
    assert_eq!(
        app.post_as("/revoke", c, &[("token", access)])
            .await
            .status(),
        200
    );

    // Unknown tokens and wrong hints: 200.
    for token in ["tsr_unknown", "not-a-token", "eyJhbGciOiJub25lIn0.e30."] {
        assert_eq!(
            app.post_as(
                "/revoke",
                c,
                &[("token", token), ("token_type_hint", "access_token")]
            )
            .await
            .status(),
            200
        );
    }
    // Errors: no token, bad client, an authorization code.
    assert_oauth_error(app.post_as("/revoke", c, &[]).await, 400, "invalid_request").await;
    let res = app
        .post_as("/revoke", (&id, "wrong"), &[("token", "x")])
        .await;
    assert!(res.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .starts_with("Basic"));
    assert_oauth_error(res, 401, "invalid_client").await;
    assert_oauth_error(
        app.post_as("/revoke", c, &[("token", "tsc_abc")]).await,
        400,
        "unsupported_token_type",
    )
    .await;
    let res = app
        .http
        .get(format!("{}/revoke", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 405);
}

async fn introspection_answers_for_own_tokens_and_granted_resource_servers(db: Db) {
    let app = TestApp::spawn_with(db, &[("TESSERA_TOKENS__ACCESS_TTL", "2s")]).await;
    let (id, secret) = app.password_client().await;
    let (rs, rs_secret) = app.client(&[GrantType::ClientCredentials], false, "").await;
    let rs_secret = rs_secret.unwrap();
    let user_id = app.user("alice").await;
    let c = (id.as_str(), secret.as_str());
    let t = app.password_grant(c, "alice").await;
    let access = t["access_token"].as_str().unwrap();

    let a = app.introspect(c, access).await;
    assert_eq!(a["active"], true);
    assert_eq!(a["token_type"], "Bearer");
    assert_eq!(a["client_id"], id.as_str());
    assert_eq!(a["username"], "alice");
    assert_eq!(a["sub"], user_id.as_str());
    assert_eq!(a["scope"], "read write");
    assert_eq!(a["iss"], "http://tessera.test");
    assert_eq!(a["aud"], "http://tessera.test");
    for field in ["exp", "iat", "jti"] {
        assert!(!a[field].is_null(), "{field}: {a}");
    }
    let r = app
        .introspect(c, t["refresh_token"].as_str().unwrap())
        .await;
    assert_eq!(r["active"], true);
    assert_eq!(r["username"], "alice");
    assert!(
        !r["jti"].is_null() && r["aud"] == "http://tessera.test",
        "{r}"
    );

    // A resource server sees nothing of other clients' tokens until the CLI allows it.
    assert_eq!(
        app.introspect((&rs, &rs_secret), access).await,
        json!({"active": false})
    );
    let out = app
        .admin(
            &[
                "client",
                "update",
                &rs,
                "--allow-introspection",
                "-o",
                "json",
            ],
            None,
        )
        .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        serde_json::from_slice::<Value>(&out.stdout).unwrap()["allow_introspection"],
        true
    );
    assert_eq!(
        app.introspect((&rs, &rs_secret), access).await["active"],
        true
    );

    // Rotated, revoked, reused, expired, forged: inactive, and nothing else.
    let next: Value = app.refreshed(c, t["refresh_token"].as_str().unwrap()).await;
    assert_eq!(
        app.introspect(c, t["refresh_token"].as_str().unwrap())
            .await,
        json!({"active": false}),
        "rotated"
    );
    let mut forged: Vec<String> = access.split('.').map(str::to_owned).collect();
    forged[2] = "AAAA".into();
    for token in [forged.join("."), "tsr_nope".into(), "garbage".into()] {
        assert_eq!(app.introspect(c, &token).await, json!({"active": false}));
    }
    let sid = claims(next["access_token"].as_str().unwrap())["sid"]
        .as_str()
        .unwrap()
        .to_owned();
    let out = app.admin(&["family", "revoke", &sid, "--yes"], None).await;
    assert!(out.status.success());
    assert_eq!(
        app.introspect(c, next["refresh_token"].as_str().unwrap())
            .await,
        json!({"active": false})
    );
    assert_eq!(
        app.introspect(c, next["access_token"].as_str().unwrap())
            .await,
        json!({"active": false})
    );
    let fresh = app.password_grant(c, "alice").await;
    // exp is whole seconds after a floored iat: past it for sure after ttl + 1s.
    app.advance(std::time::Duration::from_millis(3200));
    assert_eq!(
        app.introspect(c, fresh["access_token"].as_str().unwrap())
            .await,
        json!({"active": false}),
        "expired"
    );

    // A family killed by a real replay: every token of it is inactive.
    let f1 = app.password_grant(c, "alice").await;
    let f2: Value = app
        .refreshed(c, f1["refresh_token"].as_str().unwrap())
        .await;
    let f3: Value = app
        .refreshed(c, f2["refresh_token"].as_str().unwrap())
        .await;
    app.refresh(c, f1["refresh_token"].as_str().unwrap()).await;
    for token in [&f3["refresh_token"], &f3["access_token"]] {
        assert_eq!(
            app.introspect(c, token.as_str().unwrap()).await,
            json!({"active": false}),
            "reused family"
        );
    }

    // Errors.
    assert_oauth_error(
        app.post_as("/introspect", c, &[]).await,
        400,
        "invalid_request",
    )
    .await;
    let res = app
        .post_as("/introspect", (&id, "wrong"), &[("token", "x")])
        .await;
    assert!(res.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .starts_with("Basic"));
    assert_oauth_error(res, 401, "invalid_client").await;
    // A public client cannot introspect (it proves nothing about itself), nor get the right.
    let (public, _) = app.client(&[GrantType::Password], true, "").await;
    let res = app
        .http
        .post(format!("{}/introspect", app.address))
        .form(&[("client_id", public.as_str()), ("token", access)])
        .send()
        .await
        .unwrap();
    assert_oauth_error(res, 401, "invalid_client").await;
    let out = app
        .admin(
            &["client", "update", &public, "--allow-introspection"],
            None,
        )
        .await;
    assert_eq!(out.status.code(), Some(1));
    // The right can be taken back.
    let out = app
        .admin(
            &[
                "client",
                "update",
                &rs,
                "--deny-introspection",
                "-o",
                "json",
            ],
            None,
        )
        .await;
    assert_eq!(
        serde_json::from_slice::<Value>(&out.stdout).unwrap()["allow_introspection"],
        false
    );
    let third = app.password_grant(c, "alice").await;
    assert_eq!(
        app.introspect((&rs, &rs_secret), third["access_token"].as_str().unwrap())
            .await,
        json!({"active": false})
    );
    // Refresh tokens stay private to their client.
    assert_eq!(
        app.introspect((&rs, &rs_secret), third["refresh_token"].as_str().unwrap())
            .await,
        json!({"active": false})
    );

    // A client_credentials token: the client is the subject, no username.
    let (svc, svc_secret) = app
        .client(&[GrantType::ClientCredentials], false, "reports:read")
        .await;
    let svc_secret = svc_secret.unwrap();
    let cc: Value = app
        .token(
            Some((&svc, &svc_secret)),
            &[("grant_type", "client_credentials")],
        )
        .await
        .json()
        .await
        .unwrap();
    let seen = app
        .introspect((&svc, &svc_secret), cc["access_token"].as_str().unwrap())
        .await;
    assert_eq!(seen["active"], true);
    assert_eq!(seen["sub"], svc.as_str());
    assert!(seen.get("username").is_none(), "{seen}");
}
