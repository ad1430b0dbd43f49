//! The Rust `openidconnect` crate, an ordinary OpenID Connect client library, against a real
//! server: discovery, the code flow with PKCE and a nonce, its own strict ID token checks
//! (signature against the JWKS, issuer, audience, times, nonce, `at_hash`), userinfo, refresh.

use openidconnect::core::{
    CoreAuthenticationFlow, CoreClient, CoreIdToken, CoreIdTokenVerifier, CoreProviderMetadata,
    CoreUserInfoClaims,
};
use openidconnect::{
    AccessToken, AccessTokenHash, AuthorizationCode, ClientId, CsrfToken, IssuerUrl, Nonce,
    OAuth2TokenResponse, PkceCodeChallenge, RedirectUrl, Scope, TokenResponse,
};
use serde_json::Value;

use super::{setup, visit};
use crate::helpers::browser::{Browser, REDIRECT};
use crate::helpers::{both_backends, Db, TestApp};

both_backends!(
    openidconnect_crate_signs_in_refreshes_and_reads_userinfo,
    openidconnect_crate_verifies_rs256_id_tokens_of_a_client_that_asks,
    openidconnect_crate_verifies_eddsa_id_tokens_and_their_sha512_at_hash,
);

/// The client the library calls through: redirects not followed (the crate's own advice), and
/// the issuer's host name resolved to the test server, as DNS would in production.
fn http(app: &TestApp) -> openidconnect::reqwest::Client {
    let issuer = url::Url::parse(&app.settings.issuer()).unwrap();
    let server: std::net::SocketAddr = app.address.trim_start_matches("http://").parse().unwrap();
    openidconnect::reqwest::Client::builder()
        .redirect(openidconnect::reqwest::redirect::Policy::none())
        .resolve(issuer.host_str().unwrap(), server)
        .build()
        .unwrap()
}

async fn discover(app: &TestApp) -> CoreProviderMetadata {
    let issuer = IssuerUrl::new(app.settings.issuer()).unwrap();
    CoreProviderMetadata::discover_async(issuer, &http(app))
        .await
        .unwrap()
}

/// The response's ID token checked by the crate's verifier (the keys from discovery), with
/// `nonce` expected (`""`: none) and its `at_hash` against the access token; its claims.
pub async fn try_verify_id_token(
    app: &TestApp,
    client_id: &str,
    tokens: &Value,
    nonce: &str,
) -> Result<Value, String> {
    let metadata = discover(app).await;
    let client =
        CoreClient::from_provider_metadata(metadata, ClientId::new(client_id.into()), None);
    let verifier = client.id_token_verifier();
    let token: CoreIdToken = tokens["id_token"]
        .as_str()
        .ok_or("no id_token")?
        .parse()
        .map_err(|e| format!("{e:?}"))?;
    let access = AccessToken::new(tokens["access_token"].as_str().unwrap().to_owned());
    checked(&token, &verifier, nonce, &access)
}

pub async fn verify_id_token(app: &TestApp, client_id: &str, tokens: &Value, nonce: &str) -> Value {
    try_verify_id_token(app, client_id, tokens, nonce)
        .await
        .unwrap_or_else(|e| panic!("the ID token did not verify: {e}"))
}

fn checked(
    token: &CoreIdToken,
    verifier: &CoreIdTokenVerifier<'_>,
    nonce: &str,
    access: &AccessToken,
) -> Result<Value, String> {
    let claims = if nonce.is_empty() {
        token.claims(verifier, |n: Option<&Nonce>| match n {
            None => Ok(()),
            Some(_) => Err("a nonce where none was sent".to_owned()),
        })
    } else {
        token.claims(verifier, &Nonce::new(nonce.to_owned()))
    }
    .map_err(|e| e.to_string())?;
    let expected = claims.access_token_hash().ok_or("no at_hash")?;
    let alg = token.signing_alg().map_err(|e| e.to_string())?;
    let key = token.signing_key(verifier).map_err(|e| e.to_string())?;
    let actual = AccessTokenHash::from_token(access, alg, key).map_err(|e| e.to_string())?;
    if actual != *expected {
        return Err("at_hash does not match the access token".into());
    }
    serde_json::to_value(claims).map_err(|e| e.to_string())
}

async fn openidconnect_crate_signs_in_refreshes_and_reads_userinfo(db: Db) {
    let app = TestApp::spawn(db).await;
    let client_id = setup(&app).await;
    let client = CoreClient::from_provider_metadata(
        discover(&app).await,
        ClientId::new(client_id.clone()),
        None,
    )
    .set_redirect_uri(RedirectUrl::new(REDIRECT.to_owned()).unwrap());
    let (challenge, pkce_verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, state, nonce) = client
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .add_scope(Scope::new("profile".into()))
        .add_scope(Scope::new("email".into()))
        .set_pkce_challenge(challenge)
        .url();

    // The user's browser follows the URL the library built.
    let browser = Browser::new(&app);
    let params = visit(&browser, url.query().unwrap()).await;
    assert_eq!(&params["state"], state.secret());
    let tokens = client
        .exchange_code(AuthorizationCode::new(params["code"].clone()))
        .unwrap()
        .set_pkce_verifier(pkce_verifier)
        .request_async(&http(&app))
        .await
        .unwrap();
    let verifier = client.id_token_verifier();
    let id_token = tokens.id_token().expect("an ID token");
    assert_eq!(
        *id_token.signing_alg().unwrap(),
        openidconnect::core::CoreJwsSigningAlgorithm::EcdsaP256Sha256
    );
    let claims = checked(id_token, &verifier, nonce.secret(), tokens.access_token()).unwrap();
    assert_eq!(claims["email"], Value::Null, "claims come from userinfo");

    let info: CoreUserInfoClaims = client
        .user_info(tokens.access_token().clone(), None)
        .unwrap()
        .request_async(&http(&app))
        .await
        .unwrap();
    assert_eq!(info.subject().as_str(), claims["sub"]);
    assert_eq!(info.email().unwrap().as_str(), "alice@example.com");
    assert_eq!(info.email_verified(), Some(true));
    let name = info.name().unwrap().get(None).unwrap();
    assert_eq!(name.as_str(), "Alice Liddell");

    let refreshed = client
        .exchange_refresh_token(tokens.refresh_token().unwrap())
        .unwrap()
        .request_async(&http(&app))
        .await
        .unwrap();
    assert_ne!(
        refreshed.refresh_token().unwrap().secret(),
        tokens.refresh_token().unwrap().secret()
    );
    let again = refreshed.id_token().expect("a new ID token on refresh");
    let again = checked(again, &verifier, "", refreshed.access_token()).unwrap();
    assert_eq!(again["sub"], claims["sub"]);
    assert_eq!(again["auth_time"], claims["auth_time"]);
}

/// A client registered with the real CLI for RS256 ID tokens: the CLI makes the RSA key, the
/// JWKS publishes it, the crate verifies the ID token with it; access tokens stay ES256.
async fn openidconnect_crate_verifies_rs256_id_tokens_of_a_client_that_asks(db: Db) {
    let app = TestApp::spawn(db).await;
    super::setup(&app).await;
    let out = app
        .admin(
            &[
                "client",
                "register",
                "--name",
                "Legacy App",
                "--public",
                "--grant",
                "authorization_code",
                "--grant",
                "refresh_token",
                "--scope",
                "openid profile",
                "--redirect-uri",
                REDIRECT,
                "--id-token-alg",
                "RS256",
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
    assert!(String::from_utf8_lossy(&out.stderr).contains("made a new RS256 signing key"));
    let registered: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(registered["id_token_alg"], "RS256");
    let client_id = registered["client_id"].as_str().unwrap();

    let browser = Browser::new(&app);
    let params = visit(&browser, &super::request(client_id, &[("nonce", "rsa")])).await;
    let tokens = super::exchange(&app, client_id, &params["code"]).await;
    let header = crate::helpers::jwt_header(tokens["id_token"].as_str().unwrap());
    assert_eq!(header["alg"], "RS256");
    let access_header = crate::helpers::jwt_header(tokens["access_token"].as_str().unwrap());
    assert_eq!(access_header["alg"], "ES256");
    let claims = verify_id_token(&app, client_id, &tokens, "rsa").await;
    assert_eq!(claims["iss"], app.settings.issuer());

    // A second registration finds the key in force and makes none.
    let again = app
        .admin(
            &[
                "client",
                "update",
                client_id,
                "--id-token-alg",
                "RS256",
                "-o",
                "json",
            ],
            None,
        )
        .await;
    assert!(again.status.success());
    assert!(!String::from_utf8_lossy(&again.stderr).contains("made a new"));
}

/// On EdDSA keys, `at_hash` is the left half of SHA-512 (the hash Ed25519 signs with), as the
/// crate computes it.
async fn openidconnect_crate_verifies_eddsa_id_tokens_and_their_sha512_at_hash(db: Db) {
    let app = TestApp::spawn_with(db, &[("TESSERA_KEYS__ALGORITHM", "EdDSA")]).await;
    let client_id = setup(&app).await;
    let browser = Browser::new(&app);
    let params = visit(&browser, &super::request(&client_id, &[("nonce", "ed")])).await;
    let tokens = super::exchange(&app, &client_id, &params["code"]).await;
    let header = crate::helpers::jwt_header(tokens["id_token"].as_str().unwrap());
    assert_eq!(header["alg"], "EdDSA");
    verify_id_token(&app, &client_id, &tokens, "ed").await;
}
