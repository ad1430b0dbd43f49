//! Signing keys through the CLI, against a running server.

use serde_json::Value;

use super::{json, s};
use crate::helpers::{both_backends, eventually, Db, TestApp};

both_backends!(
    admin_rotates_and_retires_keys_on_a_running_server,
    rsa_keys_sign_only_id_tokens_and_stay_while_a_client_needs_them,
);

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
    eventually(
        "the server signs with the new key",
        std::time::Duration::from_secs(5),
        || async {
            let t2 = app.password_grant((&id, &secret), "alice").await;
            (signing_kid(&t2["access_token"]) == new).then_some(())
        },
    )
    .await;
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

/// `key rotate --algorithm RS256` makes a key for ID tokens: access tokens keep their key, and
/// the last RS256 key cannot be retired while a client's ID tokens need it.
async fn rsa_keys_sign_only_id_tokens_and_stay_while_a_client_needs_them(db: Db) {
    let app = TestApp::spawn(db).await;
    let (id, secret) = app.password_client().await;
    app.user("alice").await;
    let rsa = json(
        &app.admin(
            &[
                "key",
                "rotate",
                "--now",
                "--algorithm",
                "RS256",
                "-o",
                "json",
            ],
            None,
        )
        .await,
    );
    assert_eq!(rsa["alg"], "RS256");
    assert_eq!(rsa["state"], "signing", "the RS256 signer");
    let listed = json(&app.admin(&["key", "list", "-o", "json"], None).await);
    let states: Vec<(String, String)> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|k| (s(&k["alg"]), s(&k["state"])))
        .collect();
    assert!(
        states.contains(&("ES256".into(), "signing".into())),
        "{states:?}"
    );
    let t = app.password_grant((&id, &secret), "alice").await;
    assert_eq!(
        crate::helpers::jwt_header(&s(&t["access_token"]))["alg"],
        "ES256"
    );

    let oidc = json(
        &app.admin(
            &[
                "client",
                "register",
                "--name",
                "Legacy",
                "--grant",
                "authorization_code",
                "--scope",
                "openid",
                "--redirect-uri",
                "https://app.example/cb",
                "--id-token-alg",
                "RS256",
                "-o",
                "json",
            ],
            None,
        )
        .await,
    );
    let kid = s(&rsa["kid"]);
    let refused = app.admin(&["key", "retire", &kid, "--yes"], None).await;
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("only signing key"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
    // Once no client needs RS256, the key may go.
    let client_id = s(&oidc["client_id"]);
    let back = app
        .admin(
            &["client", "update", &client_id, "--id-token-alg", "default"],
            None,
        )
        .await;
    assert!(
        back.status.success(),
        "{}",
        String::from_utf8_lossy(&back.stderr)
    );
    let retired = app.admin(&["key", "retire", &kid, "--yes"], None).await;
    assert!(
        retired.status.success(),
        "{}",
        String::from_utf8_lossy(&retired.stderr)
    );
}
