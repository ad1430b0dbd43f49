//! OpenID Connect: the ID token, discovery, and the authorization request's OpenID Connect
//! parameters, checked as the OpenID Foundation's Basic OP and Config OP certification plans
//! check them ([`certification`]), and with the Rust `openidconnect` crate ([`client_crate`]).

mod backchannel;
mod certification;
mod client_crate;
mod logout;

use std::collections::HashMap;

use serde_json::Value;
use tessera::domain::client::{ClientSpec, GrantType};
use tessera::domain::profile::ProfileChange;
use tessera::domain::scope::Scope;

pub use crate::helpers::browser::redirect_params;
use crate::helpers::browser::{field, Browser, CHALLENGE, REDIRECT, VERIFIER};
use crate::helpers::{claims, TestApp, PASSWORD};

/// Every scope the sign-in client may ask for; `address` and `phone` release nothing.
const CLIENT_SCOPE: &str = "openid profile email address phone";

/// A public client allowed OpenID Connect sign-in, and alice with a name and a verified
/// address. Returns the client id.
pub async fn setup(app: &TestApp) -> String {
    let id = register(app, true).await;
    app.user_with(
        "alice",
        ProfileChange {
            name: Some("Alice Liddell".into()),
            email: Some("alice@example.com".into()),
            email_verified: Some(true),
        },
    )
    .await;
    id
}

/// Registers a sign-in client, public or confidential; returns its id.
pub async fn register(app: &TestApp, public: bool) -> String {
    let (id, _) = register_with_secret(app, public).await;
    id
}

pub async fn register_with_secret(app: &TestApp, public: bool) -> (String, Option<String>) {
    app.register(ClientSpec {
        name: "Photo Sharing".into(),
        public,
        grants: vec![GrantType::AuthorizationCode, GrantType::RefreshToken],
        scope: Scope::parse(CLIENT_SCOPE).unwrap(),
        redirect_uris: vec![url::Url::parse(REDIRECT).unwrap()],
        openid: Default::default(),
        app: Default::default(),
    })
    .await
}

/// An OpenID Connect authorization request: `scope=openid`, a state, PKCE, and `extra`
/// (which replaces a default of the same name).
pub fn request(client_id: &str, extra: &[(&str, &str)]) -> String {
    let defaults = [
        ("response_type", "code"),
        ("client_id", client_id),
        ("redirect_uri", REDIRECT),
        ("scope", "openid"),
        ("state", "af0ifjsldkj"),
        ("code_challenge", CHALLENGE),
        ("code_challenge_method", "S256"),
    ];
    let mut q = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in defaults {
        if !extra.iter().any(|(name, _)| *name == k) {
            q.append_pair(k, v);
        }
    }
    for (k, v) in extra {
        q.append_pair(k, v);
    }
    q.finish()
}

/// What a browser's visit to `/authorize?q` ends with, signing in as alice and approving
/// wherever a page asks: the query of the redirect back to the client.
pub async fn visit(browser: &Browser<'_>, q: &str) -> HashMap<String, String> {
    let mut res = browser.authorize(q).await;
    while res.status() == 200 {
        let html = res.text().await.unwrap();
        res = if html.contains("name=\"password\"") {
            sign_in_on(browser, &html).await
        } else {
            browser.decide(&html, "approve").await
        };
    }
    redirect_params(&res)
}

/// Posts the login form of the page `html` as alice; follows the redirect to /authorize.
pub async fn sign_in_on(browser: &Browser<'_>, html: &str) -> reqwest::Response {
    let res = browser
        .post(
            "/login",
            &[
                ("csrf", &field(html, "csrf")),
                ("authorize", &field(html, "authorize")),
                ("username", "alice"),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert_eq!(res.status(), 303, "sign-in refused");
    let next = res.headers()["location"].to_str().unwrap().to_owned();
    browser.get(&next).await
}

/// Exchanges `code` (PKCE with the helpers' verifier) as the public client; the JSON answer.
pub async fn exchange(app: &TestApp, client_id: &str, code: &str) -> Value {
    let res = app
        .token(
            None,
            &[
                ("grant_type", "authorization_code"),
                ("client_id", client_id),
                ("code", code),
                ("redirect_uri", REDIRECT),
                ("code_verifier", VERIFIER),
            ],
        )
        .await;
    assert_eq!(res.status(), 200);
    res.json().await.unwrap()
}

/// The whole flow for `extra`: the token response.
pub async fn sign_in(
    app: &TestApp,
    browser: &Browser<'_>,
    client_id: &str,
    extra: &[(&str, &str)],
) -> Value {
    let params = visit(browser, &request(client_id, extra)).await;
    assert_eq!(params["iss"], app.settings.issuer());
    exchange(app, client_id, &params["code"]).await
}

/// The claims of the response's ID token (its signature is the client libraries' to check).
pub fn id_claims(tokens: &Value) -> Value {
    claims(
        tokens["id_token"]
            .as_str()
            .unwrap_or_else(|| panic!("no id_token in {tokens}")),
    )
}

/// `at_hash` (OpenID Connect Core §3.1.3.6) for an ES256 ID token: the left half of the
/// access token's SHA-256.
pub fn es256_at_hash(access_token: &str) -> String {
    use base64::Engine;
    let digest = ring::digest::digest(&ring::digest::SHA256, access_token.as_bytes());
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&digest.as_ref()[..16])
}
