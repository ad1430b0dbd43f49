//! The article's story: a mobile app logs in, uses a short-lived access token, and refreshes
//! it without asking the user again.

use std::time::Duration;

use serde_json::Value;
use tessera::domain::client::GrantType;

use crate::helpers::{both_backends, claims, Db, TestApp, PASSWORD};

both_backends!(
    mobile_app_logs_in_and_refreshes_without_asking_again,
    token_response_is_rfc_6749_shaped,
    public_client_authenticates_with_client_id_only,
    client_secret_post_and_urlencoded_basic_both_work,
    access_token_of_a_revoked_family_is_rejected,
    disabled_user_cannot_refresh,
);

async fn mobile_app_logs_in_and_refreshes_without_asking_again(db: Db) {
    let app = TestApp::spawn_with(db, &[("TESSERA_TOKENS__ACCESS_TTL", "1s")]).await;
    let (id, secret) = app.password_client().await;
    let user_id = app.user("alice").await;

    // 1. The user logs in once.
    let tokens = app.password_grant((&id, &secret), "alice").await;
    let access = tokens["access_token"].as_str().unwrap();
    let refresh = tokens["refresh_token"].as_str().unwrap();

    // 2. The app uses the access token.
    let res = app.userinfo(access).await;
    assert_eq!(res.status(), 200);
    let info: Value = res.json().await.unwrap();
    assert_eq!(info["sub"], user_id.as_str());
    assert_eq!(info["preferred_username"], "alice");

    // 3. The access token expires.
    app.advance(Duration::from_millis(2100));
    let res = app.userinfo(access).await;
    assert_eq!(res.status(), 401);
    let challenge = res.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        challenge.starts_with("Bearer ") && challenge.contains(r#"error="invalid_token""#),
        "{challenge}"
    );

    // 4. The app refreshes, without the user.
    let res = app.refresh((&id, &secret), refresh).await;
    assert_eq!(res.status(), 200);
    let renewed: Value = res.json().await.unwrap();
    assert_ne!(
        renewed["refresh_token"], tokens["refresh_token"],
        "every refresh rotates"
    );

    // 5. And works again.
    let res = app
        .userinfo(renewed["access_token"].as_str().unwrap())
        .await;
    assert_eq!(res.status(), 200);
}

async fn token_response_is_rfc_6749_shaped(db: Db) {
    let app = TestApp::spawn(db).await;
    let (id, secret) = app.password_client().await;
    let user_id = app.user("bob").await;
    let res = app
        .token(
            Some((&id, &secret)),
            &[
                ("grant_type", "password"),
                ("username", "bob"),
                ("password", PASSWORD),
                ("scope", "read"),
            ],
        )
        .await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["cache-control"], "no-store");
    assert_eq!(res.headers()["pragma"], "no-cache");
    assert!(res.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/json"));
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 900, "15 minutes by default");
    assert_eq!(body["scope"], "read");
    let refresh = body["refresh_token"].as_str().unwrap();
    assert!(
        refresh.starts_with("tsr_") && refresh.len() >= 4 + 43,
        "{refresh}"
    );

    let c = claims(body["access_token"].as_str().unwrap());
    assert_eq!(c["iss"], "http://tessera.test");
    assert_eq!(c["aud"], "http://tessera.test");
    assert_eq!(
        c["sub"],
        user_id.as_str(),
        "sub is the stable id, not the username"
    );
    assert_eq!(c["client_id"], id.as_str());
    assert_eq!(c["scope"], "read");
    assert_eq!(c["exp"].as_i64().unwrap() - c["iat"].as_i64().unwrap(), 900);
    assert!(c["jti"].as_str().is_some_and(|j| !j.is_empty()));
    let sid = c["sid"].as_str().unwrap().to_owned();

    // Only the hash of the refresh token is stored.
    let plain = refresh.to_owned();
    let (stored, family_scope) = app
        .with_conn(move |c| {
            use diesel::prelude::*;
            use tessera::store::schema::{refresh_tokens, token_families};
            let hashes: Vec<String> = refresh_tokens::table
                .select(refresh_tokens::token_hash)
                .load(c)
                .unwrap();
            let scope: String = token_families::table
                .find(&sid)
                .select(token_families::scope)
                .first(c)
                .unwrap();
            (hashes, scope)
        })
        .await;
    assert_eq!(stored.len(), 1);
    assert!(
        !stored[0].contains(&plain[4..]),
        "the plaintext token must not be stored"
    );
    assert_eq!(
        stored[0],
        tessera::domain::refresh_token::hash_token(&plain)
    );
    assert_eq!(family_scope, "read");
}

async fn public_client_authenticates_with_client_id_only(db: Db) {
    let app = TestApp::spawn(db).await;
    let (id, secret) = app
        .client(
            &[GrantType::Password, GrantType::RefreshToken],
            true,
            "read",
        )
        .await;
    assert!(secret.is_none());
    app.user("carol").await;
    let res = app
        .token(
            None,
            &[
                ("grant_type", "password"),
                ("client_id", &id),
                ("username", "carol"),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    let res = app
        .token(
            None,
            &[
                ("grant_type", "refresh_token"),
                ("client_id", &id),
                ("refresh_token", body["refresh_token"].as_str().unwrap()),
            ],
        )
        .await;
    assert_eq!(res.status(), 200);
}

async fn client_secret_post_and_urlencoded_basic_both_work(db: Db) {
    let app = TestApp::spawn(db).await;
    let (id, secret) = app.password_client().await;
    app.user("dave").await;
    let res = app
        .token(
            None,
            &[
                ("grant_type", "password"),
                ("client_id", &id),
                ("client_secret", &secret),
                ("username", "dave"),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert_eq!(res.status(), 200, "client_secret_post");
    let body: Value = res.json().await.unwrap();

    // RFC 6749 §2.3.1: Basic credentials are form-urlencoded first; percent-encode every byte.
    let encoded: String = secret.bytes().map(|b| format!("%{b:02X}")).collect();
    let res = app
        .refresh((&id, &encoded), body["refresh_token"].as_str().unwrap())
        .await;
    assert_eq!(
        res.status(),
        200,
        "client_secret_basic with an urlencoded secret"
    );

    // A refresh with client_secret_post (oxide-auth refuses this; RFC 6749 allows it).
    let body: Value = res.json().await.unwrap();
    let res = app
        .token(
            None,
            &[
                ("grant_type", "refresh_token"),
                ("client_id", &id),
                ("client_secret", &secret),
                ("refresh_token", body["refresh_token"].as_str().unwrap()),
            ],
        )
        .await;
    assert_eq!(res.status(), 200);
}

async fn access_token_of_a_revoked_family_is_rejected(db: Db) {
    let app = TestApp::spawn(db).await;
    let (id, secret) = app.password_client().await;
    app.user("erin").await;
    let tokens = app.password_grant((&id, &secret), "erin").await;
    let access = tokens["access_token"].as_str().unwrap();
    assert_eq!(app.userinfo(access).await.status(), 200);
    let sid = claims(access)["sid"].as_str().unwrap().to_owned();
    let out = app.admin(&["family", "revoke", &sid, "--yes"], None).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let res = app.userinfo(access).await;
    assert_eq!(res.status(), 401);
    assert!(res.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .contains("invalid_token"));
    crate::helpers::assert_oauth_error(
        app.refresh((&id, &secret), tokens["refresh_token"].as_str().unwrap())
            .await,
        400,
        "invalid_grant",
    )
    .await;
}

async fn disabled_user_cannot_refresh(db: Db) {
    let app = TestApp::spawn(db).await;
    let (id, secret) = app.password_client().await;
    let user_id = app.user("frank").await;
    let tokens = app.password_grant((&id, &secret), "frank").await;
    app.with_conn(move |c| {
        use diesel::prelude::*;
        use tessera::store::schema::users;
        diesel::update(users::table.find(user_id))
            .set(users::disabled_at.eq(1_i64))
            .execute(c)
            .unwrap();
    })
    .await;
    let res = app
        .refresh((&id, &secret), tokens["refresh_token"].as_str().unwrap())
        .await;
    crate::helpers::assert_oauth_error(res, 400, "invalid_grant").await;
    let res = app
        .token(
            Some((&id, &secret)),
            &[
                ("grant_type", "password"),
                ("username", "frank"),
                ("password", PASSWORD),
            ],
        )
        .await;
    crate::helpers::assert_oauth_error(res, 400, "invalid_grant").await;
    assert_eq!(
        app.userinfo(tokens["access_token"].as_str().unwrap())
            .await
            .status(),
        401
    );
}
