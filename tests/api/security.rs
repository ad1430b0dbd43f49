//! Findings of the security review, each pinned by a test that failed before its fix.

use serde_json::Value;
use tessera::domain::client::GrantType;

use crate::helpers::{both_backends, claims, Db, TestApp};

both_backends!(an_access_token_without_a_refresh_token_can_still_be_revoked);

/// A password grant for a client that may not refresh still starts a family, so its access
/// token has a `sid` and revoking the user's families reaches it.
async fn an_access_token_without_a_refresh_token_can_still_be_revoked(db: Db) {
    let app = TestApp::spawn(db).await;
    let (id, secret) = app.client(&[GrantType::Password], false, "read").await;
    let secret = secret.unwrap();
    app.user("alice").await;
    let tokens: Value = app.password_grant((&id, &secret), "alice").await;
    assert!(tokens.get("refresh_token").is_none(), "{tokens}");
    let access = tokens["access_token"].as_str().unwrap();
    assert!(claims(access)["sid"].is_string(), "{}", claims(access));
    assert_eq!(app.userinfo(access).await.status(), 200);
    let out = app
        .admin(&["family", "revoke", "--user", "alice", "--yes"], None)
        .await;
    assert!(out.status.success());
    assert_eq!(app.userinfo(access).await.status(), 401);
}
