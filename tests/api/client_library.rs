//! The Rust `oauth2` crate, an ordinary OAuth2 client library, against a real server.

use oauth2::basic::BasicClient;
use oauth2::{
    AuthUrl, AuthorizationCode, ClientId, ClientSecret, CsrfToken, PkceCodeChallenge, RedirectUrl,
    RefreshToken, ResourceOwnerPassword, ResourceOwnerUsername, Scope, TokenResponse, TokenUrl,
};

use crate::helpers::browser::{redirect_params, setup, Browser, REDIRECT};
use crate::helpers::{both_backends, Db, TestApp, PASSWORD};

both_backends!(
    oauth2_crate_completes_the_code_flow_with_pkce,
    oauth2_crate_uses_password_and_refresh,
    oauth2_crate_uses_client_credentials_and_revocation,
);

fn http() -> reqwest::Client {
    // oauth2's own advice: a client that does not follow redirects.
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

async fn oauth2_crate_completes_the_code_flow_with_pkce(db: Db) {
    let app = TestApp::spawn(db).await;
    let client_id = setup(&app).await;
    let client = BasicClient::new(ClientId::new(client_id.clone()))
        .set_auth_uri(AuthUrl::new(format!("{}/authorize", app.address)).unwrap())
        .set_token_uri(TokenUrl::new(format!("{}/token", app.address)).unwrap())
        .set_redirect_uri(RedirectUrl::new(REDIRECT.to_owned()).unwrap());
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, csrf_state) = client
        .authorize_url(CsrfToken::new_random)
        .add_scope(Scope::new("profile".into()))
        .set_pkce_challenge(challenge)
        .url();

    // The user's browser follows the URL the library built.
    let browser = Browser::new(&app);
    let query = url.query().unwrap().to_owned();
    let consent = browser
        .sign_in(&query, "alice", PASSWORD)
        .await
        .text()
        .await
        .unwrap();
    let params = redirect_params(&browser.decide(&consent, "approve").await);
    assert_eq!(&params["state"], csrf_state.secret());

    let tokens = client
        .exchange_code(AuthorizationCode::new(params["code"].clone()))
        .set_pkce_verifier(verifier)
        .request_async(&http())
        .await
        .unwrap();
    assert_eq!(tokens.scopes().unwrap()[0].as_str(), "profile");
    let access = tokens.access_token().secret().clone();
    assert_eq!(app.userinfo(&access).await.status(), 200);

    let refreshed = client
        .exchange_refresh_token(tokens.refresh_token().unwrap())
        .request_async(&http())
        .await
        .unwrap();
    assert_ne!(
        refreshed.refresh_token().unwrap().secret(),
        tokens.refresh_token().unwrap().secret()
    );
}

async fn oauth2_crate_uses_password_and_refresh(db: Db) {
    let app = TestApp::spawn(db).await;
    let (id, secret) = app.password_client().await;
    app.user("alice").await;
    let client = BasicClient::new(ClientId::new(id))
        .set_client_secret(ClientSecret::new(secret))
        .set_token_uri(TokenUrl::new(format!("{}/token", app.address)).unwrap());
    let tokens = client
        .exchange_password(
            &ResourceOwnerUsername::new("alice".into()),
            &ResourceOwnerPassword::new(PASSWORD.into()),
        )
        .add_scope(Scope::new("read".into()))
        .request_async(&http())
        .await
        .unwrap();
    assert_eq!(tokens.expires_in().unwrap().as_secs(), 900);
    let refresh: &RefreshToken = tokens.refresh_token().unwrap();
    let again = client
        .exchange_refresh_token(refresh)
        .request_async(&http())
        .await
        .unwrap();
    assert_eq!(
        app.userinfo(again.access_token().secret()).await.status(),
        200
    );
    // A retry of the spent token within the grace window gets the same successor.
    let retried = client
        .exchange_refresh_token(refresh)
        .request_async(&http())
        .await
        .unwrap();
    assert_eq!(
        retried.refresh_token().unwrap().secret(),
        again.refresh_token().unwrap().secret()
    );
    let wrong = client
        .exchange_password(
            &ResourceOwnerUsername::new("alice".into()),
            &ResourceOwnerPassword::new("nope".into()),
        )
        .request_async(&http())
        .await
        .unwrap_err();
    assert!(format!("{wrong:?}").contains("invalid_grant"), "{wrong:?}");
}

async fn oauth2_crate_uses_client_credentials_and_revocation(db: Db) {
    use oauth2::{RevocationUrl, StandardRevocableToken};
    let app = TestApp::spawn(db).await;
    let (svc, svc_secret) = app
        .client(
            &[tessera::domain::client::GrantType::ClientCredentials],
            false,
            "reports:read",
        )
        .await;
    let service = BasicClient::new(ClientId::new(svc))
        .set_client_secret(ClientSecret::new(svc_secret.unwrap()))
        .set_token_uri(TokenUrl::new(format!("{}/token", app.address)).unwrap());
    let tokens = service
        .exchange_client_credentials()
        .request_async(&http())
        .await
        .unwrap();
    assert!(tokens.refresh_token().is_none());
    assert_eq!(tokens.scopes().unwrap()[0].as_str(), "reports:read");

    // Revocation: the crate refuses to send it over plain http (RFC 7009 §2 requires TLS), and
    // this test server has no TLS in front of it; authlib covers revocation in tests/interop.
    let revoking = BasicClient::new(ClientId::new("x".into()))
        .set_revocation_url(RevocationUrl::new(format!("{}/revoke", app.address)).unwrap());
    let refused = revoking
        .revoke_token(StandardRevocableToken::AccessToken(
            tokens.access_token().clone(),
        ))
        .is_err();
    assert!(refused);
}
