//! One test for each module of the OpenID Foundation's Basic OP and Config OP certification
//! test plans, named after the module, checking what the module checks.

use std::time::Duration;

use serde_json::Value;

use super::{
    es256_at_hash, exchange, id_claims, redirect_params, register_with_secret, request, setup,
    sign_in, sign_in_on, visit,
};
use crate::helpers::browser::{Browser, REDIRECT, VERIFIER};
use crate::helpers::{assert_oauth_error, both_backends, claims, Db, TestApp};

both_backends!(
    oidcc_server,
    oidcc_idtoken_signature,
    oidcc_userinfo_get,
    oidcc_userinfo_post_header,
    oidcc_userinfo_post_body,
    oidcc_ensure_request_without_nonce_succeeds_for_code_flow,
    oidcc_scope_profile,
    oidcc_scope_email,
    oidcc_scope_all,
    oidcc_display_page,
    oidcc_display_popup,
    oidcc_prompt_login,
    oidcc_prompt_none_not_logged_in,
    oidcc_prompt_none_logged_in,
    oidcc_max_age_1,
    oidcc_max_age_10000,
    oidcc_ensure_request_with_unknown_parameter_succeeds,
    oidcc_id_token_hint,
    oidcc_login_hint,
    oidcc_ui_locales,
    oidcc_claims_locales,
    oidcc_ensure_request_with_acr_values_succeeds,
    oidcc_codereuse,
    oidcc_codereuse_30seconds,
    oidcc_ensure_registered_redirect_uri,
    oidcc_ensure_post_request_succeeds,
    oidcc_server_client_secret_post,
    oidcc_unsigned_request_object_supported_correctly_or_rejected_as_unsupported,
    oidcc_request_uri_unsigned_supported_correctly_or_rejected_as_unsupported,
    oidcc_refresh_token,
    oidcc_ensure_request_with_valid_pkce_succeeds,
    oidcc_discovery_endpoint_verification,
);

/// The ID token every module checks first (Core §3.1.3.7): issuer, audience, times, `sub` as
/// in the access token, `at_hash` of the access token beside it.
fn check_id_token(app: &TestApp, client_id: &str, tokens: &Value) -> Value {
    let id = id_claims(tokens);
    let access = tokens["access_token"].as_str().unwrap();
    assert_eq!(id["iss"], app.settings.issuer());
    assert_eq!(id["aud"], client_id);
    assert_eq!(id["sub"], claims(access)["sub"]);
    let (iat, exp) = (id["iat"].as_i64().unwrap(), id["exp"].as_i64().unwrap());
    assert!(exp > iat, "{id}");
    assert!(id["auth_time"].as_i64().unwrap() <= iat, "{id}");
    assert_eq!(id["at_hash"], es256_at_hash(access));
    assert_eq!(id["amr"], serde_json::json!(["pwd"]));
    id
}

async fn userinfo_get(app: &TestApp, tokens: &Value) -> Value {
    let res = app.userinfo(tokens["access_token"].as_str().unwrap()).await;
    assert_eq!(res.status(), 200);
    res.json().await.unwrap()
}

async fn oidcc_server(db: Db) {
    let app = TestApp::spawn(db).await;
    let client_id = setup(&app).await;
    let browser = Browser::new(&app);
    let tokens = sign_in(&app, &browser, &client_id, &[("nonce", "n-0S6_WzA2Mj")]).await;
    let id = check_id_token(&app, &client_id, &tokens);
    assert_eq!(id["nonce"], "n-0S6_WzA2Mj");
    assert!(id["sid"].as_str().is_some_and(|s| s.len() >= 16), "{id}");
    assert_eq!(tokens["token_type"], "Bearer");
}

/// The signature verifies with the key the JWKS publishes under the token's `kid`, with the
/// `openidconnect` crate's verifier (which also rejects `alg: none` and HMAC).
async fn oidcc_idtoken_signature(db: Db) {
    let app = TestApp::spawn(db).await;
    let client_id = setup(&app).await;
    let browser = Browser::new(&app);
    let tokens = sign_in(&app, &browser, &client_id, &[("nonce", "n")]).await;
    let verified = super::client_crate::verify_id_token(&app, &client_id, &tokens, "n").await;
    assert_eq!(verified["sub"], id_claims(&tokens)["sub"]);
    // A flipped bit in the signature: refused.
    let mut forged = tokens.clone();
    let token = tokens["id_token"].as_str().unwrap();
    let (head, sig) = token.rsplit_once('.').unwrap();
    let flipped = if sig.starts_with('A') { "B" } else { "A" };
    forged["id_token"] = format!("{head}.{flipped}{}", &sig[1..]).into();
    assert!(
        super::client_crate::try_verify_id_token(&app, &client_id, &forged, "n")
            .await
            .is_err()
    );
}

async fn oidcc_userinfo_get(db: Db) {
    let app = TestApp::spawn(db).await;
    let client_id = setup(&app).await;
    let browser = Browser::new(&app);
    let tokens = sign_in(&app, &browser, &client_id, &[("scope", "openid profile")]).await;
    let info = userinfo_get(&app, &tokens).await;
    assert_eq!(info["sub"], id_claims(&tokens)["sub"]);
    assert_eq!(info["name"], "Alice Liddell");
}

/// `/userinfo` by POST, the token in the header (`in_body`: false) or in a form body.
async fn userinfo_post(in_body: bool, db: Db) {
    let app = TestApp::spawn(db).await;
    let client_id = setup(&app).await;
    let browser = Browser::new(&app);
    let tokens = sign_in(&app, &browser, &client_id, &[]).await;
    let access = tokens["access_token"].as_str().unwrap();
    let post = app.http.post(format!("{}/userinfo", app.address));
    let post = if in_body {
        post.form(&[("access_token", access)])
    } else {
        post.bearer_auth(access)
    };
    let res = post.send().await.unwrap();
    assert_eq!(res.status(), 200);
    let info: Value = res.json().await.unwrap();
    assert_eq!(info["sub"], id_claims(&tokens)["sub"]);
}

async fn oidcc_userinfo_post_header(db: Db) {
    userinfo_post(false, db).await;
}

async fn oidcc_userinfo_post_body(db: Db) {
    userinfo_post(true, db).await;
}

async fn oidcc_ensure_request_without_nonce_succeeds_for_code_flow(db: Db) {
    let app = TestApp::spawn(db).await;
    let client_id = setup(&app).await;
    let browser = Browser::new(&app);
    let tokens = sign_in(&app, &browser, &client_id, &[]).await;
    let id = check_id_token(&app, &client_id, &tokens);
    assert!(id.get("nonce").is_none(), "{id}");
}

async fn oidcc_scope_profile(db: Db) {
    let app = TestApp::spawn(db).await;
    let client_id = setup(&app).await;
    let browser = Browser::new(&app);
    let tokens = sign_in(&app, &browser, &client_id, &[("scope", "openid profile")]).await;
    let info = userinfo_get(&app, &tokens).await;
    assert_eq!(info["name"], "Alice Liddell");
    assert_eq!(info["preferred_username"], "alice");
    assert!(info["updated_at"].is_i64(), "{info}");
    assert!(info.get("email").is_none(), "{info}");
}

async fn oidcc_scope_email(db: Db) {
    let app = TestApp::spawn(db).await;
    let client_id = setup(&app).await;
    let browser = Browser::new(&app);
    let tokens = sign_in(&app, &browser, &client_id, &[("scope", "openid email")]).await;
    let info = userinfo_get(&app, &tokens).await;
    assert_eq!(info["email"], "alice@example.com");
    assert_eq!(info["email_verified"], true);
    assert!(info.get("name").is_none(), "{info}");
}

/// Every scope the plan asks for; `address` and `phone` are granted but release nothing (and
/// are not in `claims_supported`).
async fn oidcc_scope_all(db: Db) {
    let app = TestApp::spawn(db).await;
    let client_id = setup(&app).await;
    let browser = Browser::new(&app);
    let scope = "openid profile email address phone";
    let tokens = sign_in(&app, &browser, &client_id, &[("scope", scope)]).await;
    let info = userinfo_get(&app, &tokens).await;
    assert_eq!(info["name"], "Alice Liddell");
    assert_eq!(info["email"], "alice@example.com");
    assert!(info.get("address").is_none() && info.get("phone_number").is_none());
}

async fn display(value: &str, db: Db) {
    let app = TestApp::spawn(db).await;
    let client_id = setup(&app).await;
    let browser = Browser::new(&app);
    let tokens = sign_in(&app, &browser, &client_id, &[("display", value)]).await;
    check_id_token(&app, &client_id, &tokens);
}

async fn oidcc_display_page(db: Db) {
    display("page", db).await;
}

async fn oidcc_display_popup(db: Db) {
    display("popup", db).await;
}

/// Signs alice in, waits `wait`, then sends `extra`, which must ask for the password again:
/// the first and the second ID token's claims.
async fn signed_in_again(extra: (&str, &str), wait: Duration, db: Db) -> (Value, Value) {
    let app = TestApp::spawn(db).await;
    let client_id = setup(&app).await;
    let browser = Browser::new(&app);
    let first = id_claims(&sign_in(&app, &browser, &client_id, &[]).await);
    app.advance(wait);
    let res = browser.authorize(&request(&client_id, &[extra])).await;
    assert_eq!(res.status(), 200);
    let html = res.text().await.unwrap();
    assert!(html.contains("name=\"password\""), "{html}");
    let params =
        redirect_params(&approve_if_asked(sign_in_on(&browser, &html).await, &browser).await);
    let second = id_claims(&exchange(&app, &client_id, &params["code"]).await);
    assert_eq!(second["sub"], first["sub"]);
    (first, second)
}

/// `prompt=login` shows the login page to a signed-in user, and the new sign-in's time is the
/// ID token's `auth_time`.
async fn oidcc_prompt_login(db: Db) {
    let (first, second) = signed_in_again(("prompt", "login"), Duration::from_secs(5), db).await;
    assert!(
        second["auth_time"].as_i64().unwrap() >= first["auth_time"].as_i64().unwrap() + 5,
        "{first} {second}"
    );
}

async fn oidcc_prompt_none_not_logged_in(db: Db) {
    let app = TestApp::spawn(db).await;
    let client_id = setup(&app).await;
    let browser = Browser::new(&app);
    let res = browser
        .authorize(&request(&client_id, &[("prompt", "none")]))
        .await;
    let params = redirect_params(&res);
    assert_eq!(params["error"], "login_required");
    assert_eq!(params["state"], "af0ifjsldkj");
    assert_eq!(params["iss"], app.settings.issuer());
}

/// Consent is remembered only for a confidential client or an https redirect: the plan's
/// client is confidential.
async fn oidcc_prompt_none_logged_in(db: Db) {
    let app = TestApp::spawn(db).await;
    setup(&app).await;
    let (client_id, secret) = register_with_secret(&app, false).await;
    let secret = secret.unwrap();
    let browser = Browser::new(&app);
    let first = visit(&browser, &request(&client_id, &[])).await;
    let first = exchange_confidential(&app, (&client_id, &secret), &first["code"]).await;
    let res = browser
        .authorize(&request(&client_id, &[("prompt", "none")]))
        .await;
    let params = redirect_params(&res);
    let second = exchange_confidential(&app, (&client_id, &secret), &params["code"]).await;
    assert_eq!(id_claims(&second)["sub"], id_claims(&first)["sub"]);
    assert_eq!(id_claims(&second)["sid"], id_claims(&first)["sid"]);
}

async fn exchange_confidential(app: &TestApp, client: (&str, &str), code: &str) -> Value {
    let res = app
        .token(
            Some(client),
            &[
                ("grant_type", "authorization_code"),
                ("code", code),
                ("redirect_uri", REDIRECT),
                ("code_verifier", VERIFIER),
            ],
        )
        .await;
    assert_eq!(res.status(), 200);
    res.json().await.unwrap()
}

/// A sign-in older than `max_age` is asked again; the new one is the ID token's `auth_time`.
async fn oidcc_max_age_1(db: Db) {
    let (first, second) = signed_in_again(("max_age", "1"), Duration::from_secs(2), db).await;
    assert!(second["auth_time"].as_i64().unwrap() > first["auth_time"].as_i64().unwrap());
}

/// A sign-in within `max_age` stands: no login page, the same `auth_time`.
async fn oidcc_max_age_10000(db: Db) {
    let app = TestApp::spawn(db).await;
    setup(&app).await;
    let (client_id, secret) = register_with_secret(&app, false).await;
    let secret = secret.unwrap();
    let browser = Browser::new(&app);
    let first = visit(&browser, &request(&client_id, &[])).await;
    let first = exchange_confidential(&app, (&client_id, &secret), &first["code"]).await;
    app.advance(Duration::from_secs(2));
    let res = browser
        .authorize(&request(&client_id, &[("max_age", "10000")]))
        .await;
    let params = redirect_params(&res);
    let second = exchange_confidential(&app, (&client_id, &secret), &params["code"]).await;
    assert_eq!(
        id_claims(&second)["auth_time"],
        id_claims(&first)["auth_time"]
    );
}

async fn oidcc_ensure_request_with_unknown_parameter_succeeds(db: Db) {
    let app = TestApp::spawn(db).await;
    let client_id = setup(&app).await;
    let browser = Browser::new(&app);
    let extra = [("extra", "foobar"), ("nonce", "n")];
    let tokens = sign_in(&app, &browser, &client_id, &extra).await;
    assert_eq!(check_id_token(&app, &client_id, &tokens)["nonce"], "n");
}

/// An `id_token_hint` naming the signed-in user with `prompt=none`: a code, for the same user.
/// A hint this server never issued is refused; one naming someone else is not signed in.
async fn oidcc_id_token_hint(db: Db) {
    let app = TestApp::spawn(db).await;
    let client_id = setup(&app).await;
    let browser = Browser::new(&app);
    let first = sign_in(&app, &browser, &client_id, &[]).await;
    let hint = first["id_token"].as_str().unwrap();
    // A public client on loopback is asked for consent again; the hint still says who.
    let params = visit(&browser, &request(&client_id, &[("id_token_hint", hint)])).await;
    let second = exchange(&app, &client_id, &params["code"]).await;
    assert_eq!(id_claims(&second)["sub"], id_claims(&first)["sub"]);

    let access = first["access_token"].as_str().unwrap();
    let res = browser
        .authorize(&request(
            &client_id,
            &[("id_token_hint", access), ("prompt", "none")],
        ))
        .await;
    assert_eq!(redirect_params(&res)["error"], "invalid_request");

    // Bob's ID token while alice is signed in: not the user the client expects.
    app.user("bob").await;
    let bob_browser = Browser::new(&app);
    let html = bob_browser
        .authorize(&request(&client_id, &[]))
        .await
        .text()
        .await
        .unwrap();
    let res = bob_browser
        .post(
            "/login",
            &[
                ("csrf", &crate::helpers::browser::field(&html, "csrf")),
                (
                    "authorize",
                    &crate::helpers::browser::field(&html, "authorize"),
                ),
                ("username", "bob"),
                ("password", crate::helpers::PASSWORD),
            ],
        )
        .await;
    let next = res.headers()["location"].to_str().unwrap().to_owned();
    let consent = bob_browser.page(&next).await;
    let params = redirect_params(&bob_browser.decide(&consent, "approve").await);
    let bob = exchange(&app, &client_id, &params["code"]).await;
    let res = browser
        .authorize(&request(
            &client_id,
            &[
                ("id_token_hint", bob["id_token"].as_str().unwrap()),
                ("prompt", "none"),
            ],
        ))
        .await;
    assert_eq!(redirect_params(&res)["error"], "login_required");
}

async fn oidcc_login_hint(db: Db) {
    let app = TestApp::spawn(db).await;
    let client_id = setup(&app).await;
    let browser = Browser::new(&app);
    let res = browser
        .authorize(&request(&client_id, &[("login_hint", "alice")]))
        .await;
    let html = res.text().await.unwrap();
    assert!(html.contains("value=\"alice\""), "{html}");
    let params =
        redirect_params(&approve_if_asked(sign_in_on(&browser, &html).await, &browser).await);
    check_id_token(
        &app,
        &client_id,
        &exchange(&app, &client_id, &params["code"]).await,
    );
}

/// Approves the consent page `res` shows, if it shows one.
async fn approve_if_asked(res: reqwest::Response, browser: &Browser<'_>) -> reqwest::Response {
    if res.status() != 200 {
        return res;
    }
    let html = res.text().await.unwrap();
    browser.decide(&html, "approve").await
}

async fn informational(name: &str, value: &str, db: Db) {
    let app = TestApp::spawn(db).await;
    let client_id = setup(&app).await;
    let browser = Browser::new(&app);
    let tokens = sign_in(&app, &browser, &client_id, &[(name, value)]).await;
    check_id_token(&app, &client_id, &tokens);
}

async fn oidcc_ui_locales(db: Db) {
    informational("ui_locales", "se", db).await;
}

async fn oidcc_claims_locales(db: Db) {
    informational("claims_locales", "se", db).await;
}

async fn oidcc_ensure_request_with_acr_values_succeeds(db: Db) {
    informational("acr_values", "1 2", db).await;
}

/// A code used twice: `invalid_grant`, and the tokens of its first exchange stop working.
async fn code_reuse(app: &TestApp, wait: Duration) {
    let client_id = setup(app).await;
    let browser = Browser::new(app);
    let params = visit(&browser, &request(&client_id, &[])).await;
    let tokens = exchange(app, &client_id, &params["code"]).await;
    app.advance(wait);
    let again = app
        .token(
            None,
            &[
                ("grant_type", "authorization_code"),
                ("client_id", &client_id),
                ("code", &params["code"]),
                ("redirect_uri", REDIRECT),
                ("code_verifier", VERIFIER),
            ],
        )
        .await;
    assert_oauth_error(again, 400, "invalid_grant").await;
    let res = app.userinfo(tokens["access_token"].as_str().unwrap()).await;
    assert_eq!(res.status(), 401);
}

async fn oidcc_codereuse(db: Db) {
    code_reuse(&TestApp::spawn(db).await, Duration::ZERO).await;
}

async fn oidcc_codereuse_30seconds(db: Db) {
    code_reuse(&TestApp::spawn(db).await, Duration::from_secs(30)).await;
}

/// A redirect URI the client did not register: an error page, never a redirect.
async fn oidcc_ensure_registered_redirect_uri(db: Db) {
    let app = TestApp::spawn(db).await;
    let client_id = setup(&app).await;
    let browser = Browser::new(&app);
    let res = browser
        .authorize(&request(
            &client_id,
            &[("redirect_uri", "https://attacker.example/cb")],
        ))
        .await;
    assert_eq!(res.status(), 400);
    assert!(res.headers().get("location").is_none());
}

async fn oidcc_ensure_post_request_succeeds(db: Db) {
    let app = TestApp::spawn(db).await;
    let client_id = setup(&app).await;
    let browser = Browser::new(&app);
    let q = request(&client_id, &[("nonce", "posted")]);
    let pairs: Vec<(String, String)> = url::form_urlencoded::parse(q.as_bytes())
        .into_owned()
        .collect();
    let form: Vec<(&str, &str)> = pairs
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let res = browser.post("/authorize", &form).await;
    assert_eq!(res.status(), 200);
    let html = res.text().await.unwrap();
    let params =
        redirect_params(&approve_if_asked(sign_in_on(&browser, &html).await, &browser).await);
    let tokens = exchange(&app, &client_id, &params["code"]).await;
    assert_eq!(check_id_token(&app, &client_id, &tokens)["nonce"], "posted");
}

/// A confidential client authenticating with `client_secret_post`.
async fn oidcc_server_client_secret_post(db: Db) {
    let app = TestApp::spawn(db).await;
    setup(&app).await;
    let (client_id, secret) = register_with_secret(&app, false).await;
    let browser = Browser::new(&app);
    let params = visit(&browser, &request(&client_id, &[("nonce", "n")])).await;
    let res = app
        .token(
            None,
            &[
                ("grant_type", "authorization_code"),
                ("client_id", &client_id),
                ("client_secret", secret.as_deref().unwrap()),
                ("code", &params["code"]),
                ("redirect_uri", REDIRECT),
                ("code_verifier", VERIFIER),
            ],
        )
        .await;
    assert_eq!(res.status(), 200);
    let tokens: Value = res.json().await.unwrap();
    assert_eq!(check_id_token(&app, &client_id, &tokens)["nonce"], "n");
}

async fn refused_object(name: &str, error: &str, db: Db) {
    let app = TestApp::spawn(db).await;
    let client_id = setup(&app).await;
    let browser = Browser::new(&app);
    let res = browser
        .authorize(&request(
            &client_id,
            &[(name, "eyJhbGciOiJub25lIn0.eyJub25jZSI6Im4ifQ.")],
        ))
        .await;
    let params = redirect_params(&res);
    assert_eq!(params["error"], error);
    assert_eq!(params["state"], "af0ifjsldkj");
}

async fn oidcc_unsigned_request_object_supported_correctly_or_rejected_as_unsupported(db: Db) {
    refused_object("request", "request_not_supported", db).await;
}

async fn oidcc_request_uri_unsigned_supported_correctly_or_rejected_as_unsupported(db: Db) {
    refused_object("request_uri", "request_uri_not_supported", db).await;
}

/// A refresh of an OpenID Connect family: a new ID token, same `sub` and `auth_time`, no
/// `nonce` (Core §12.2), and a rotated refresh token.
async fn oidcc_refresh_token(db: Db) {
    let app = TestApp::spawn(db).await;
    let client_id = setup(&app).await;
    let browser = Browser::new(&app);
    let tokens = sign_in(&app, &browser, &client_id, &[("nonce", "n")]).await;
    let first = check_id_token(&app, &client_id, &tokens);
    app.advance(Duration::from_secs(60));
    let res = app
        .token(
            None,
            &[
                ("grant_type", "refresh_token"),
                ("client_id", &client_id),
                ("refresh_token", tokens["refresh_token"].as_str().unwrap()),
            ],
        )
        .await;
    assert_eq!(res.status(), 200);
    let refreshed: Value = res.json().await.unwrap();
    assert_ne!(refreshed["refresh_token"], tokens["refresh_token"]);
    let second = check_id_token(&app, &client_id, &refreshed);
    assert_eq!(second["sub"], first["sub"]);
    assert_eq!(second["auth_time"], first["auth_time"]);
    assert_eq!(second["sid"], first["sid"]);
    assert!(second.get("nonce").is_none(), "{second}");
    assert!(second["iat"].as_i64() > first["iat"].as_i64());
}

async fn oidcc_ensure_request_with_valid_pkce_succeeds(db: Db) {
    let app = TestApp::spawn(db).await;
    let client_id = setup(&app).await;
    let browser = Browser::new(&app);
    let tokens = sign_in(&app, &browser, &client_id, &[]).await;
    check_id_token(&app, &client_id, &tokens);
}

/// Discovery (Config OP): every required member, the issuer exactly as in tokens, the same
/// document as RFC 8414's, and a JWKS with the advertised algorithms.
async fn oidcc_discovery_endpoint_verification(db: Db) {
    let app = TestApp::spawn(db).await;
    let get = |path: &'static str| {
        let http = app.http.clone();
        let url = format!("{}{path}", app.address);
        async move {
            let res = http.get(url).send().await.unwrap();
            assert_eq!(res.status(), 200);
            assert!(res.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("application/json"));
            res.json::<Value>().await.unwrap()
        }
    };
    let doc = get("/.well-known/openid-configuration").await;
    assert_eq!(doc, get("/.well-known/oauth-authorization-server").await);
    let issuer = app.settings.issuer();
    assert_eq!(doc["issuer"], issuer);
    for (member, path) in [
        ("authorization_endpoint", "/authorize"),
        ("token_endpoint", "/token"),
        ("userinfo_endpoint", "/userinfo"),
        ("jwks_uri", "/jwks.json"),
    ] {
        assert_eq!(doc[member], format!("{issuer}{path}"), "{member}");
    }
    assert_eq!(doc["response_types_supported"], serde_json::json!(["code"]));
    assert_eq!(
        doc["subject_types_supported"],
        serde_json::json!(["public"])
    );
    assert_eq!(doc["authorization_response_iss_parameter_supported"], true);
    assert_eq!(doc["request_parameter_supported"], false);
    assert_eq!(doc["end_session_endpoint"], format!("{issuer}/end_session"));
    assert_eq!(doc["backchannel_logout_supported"], true);
    assert_eq!(doc["backchannel_logout_session_supported"], true);
    assert!(doc["code_challenge_methods_supported"]
        .as_array()
        .unwrap()
        .contains(&"S256".into()));
    let claims_supported = doc["claims_supported"].as_array().unwrap();
    for claim in ["sub", "iss", "auth_time", "name", "email", "email_verified"] {
        assert!(claims_supported.contains(&claim.into()), "{claim}");
    }
    let jwks = get("/jwks.json").await;
    let algs = doc["id_token_signing_alg_values_supported"]
        .as_array()
        .unwrap();
    for key in jwks["keys"].as_array().unwrap() {
        assert!(algs.contains(&key["alg"]), "{key}");
    }
}
