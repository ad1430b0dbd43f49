//! Browser sign-in (authorization_code + PKCE), following the pages with a cookie jar.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::Value;
use tessera::domain::client::GrantType;

use crate::helpers::{assert_oauth_error, both_backends, claims, Db, TestApp, PASSWORD};

both_backends!(
    concurrent_exchanges_of_one_code_revoke_what_it_issued,
    redirect_uri_may_be_omitted_with_a_single_registration,
    malformed_authorize_requests_redirect_once_the_client_is_trusted,
    odd_form_fields_never_give_a_500,
    user_signs_in_consents_and_the_app_gets_tokens,
    denied_consent_redirects_with_access_denied,
    untrusted_client_or_redirect_never_redirects,
    pkce_is_required_and_checked,
    codes_are_single_use_and_short_lived,
    forms_need_their_csrf_token,
    consent_is_remembered_until_revoked,
    failed_logins_show_one_message_and_are_throttled,
    pages_carry_security_headers_and_safe_cookies,
    signing_out_ends_the_session,
);

pub const REDIRECT: &str = "http://localhost:9000/callback";
pub const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
pub const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

/// A public client for browser sign-in, and a user.
pub async fn setup(app: &TestApp) -> String {
    let spec = tessera::domain::client::ClientSpec {
        name: "Photo Sharing".into(),
        public: true,
        grants: vec![GrantType::AuthorizationCode, GrantType::RefreshToken],
        scope: tessera::domain::scope::Scope::parse("profile photos:read").unwrap(),
        redirect_uris: vec![url::Url::parse(REDIRECT).unwrap()],
    };
    let id = app.register(spec).await.0;
    app.user("alice").await;
    id
}

/// A browser: cookies kept, redirects not followed (the tests look at each one).
pub struct Browser<'a> {
    app: &'a TestApp,
    http: reqwest::Client,
}

pub fn query(client_id: &str, extra: &[(&str, &str)]) -> String {
    let mut q = url::form_urlencoded::Serializer::new(String::new());
    q.append_pair("response_type", "code")
        .append_pair("client_id", client_id)
        .append_pair("redirect_uri", REDIRECT)
        .append_pair("scope", "profile")
        .append_pair("state", "af0ifjsldkj")
        .append_pair("code_challenge", CHALLENGE)
        .append_pair("code_challenge_method", "S256");
    for (k, v) in extra {
        q.append_pair(k, v);
    }
    q.finish()
}

/// The value of a hidden form field.
pub fn field(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html
        .find(&marker)
        .unwrap_or_else(|| panic!("no {name} field in:\n{html}"))
        + marker.len();
    let end = html[start..].find('"').unwrap() + start;
    html[start..end].replace("&#38;", "&").replace("&amp;", "&")
}

impl<'a> Browser<'a> {
    pub fn new(app: &'a TestApp) -> Self {
        let http = reqwest::Client::builder()
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        Self { app, http }
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.http
            .get(format!("{}{path}", self.app.address))
            .send()
            .await
            .unwrap()
    }

    pub async fn post(&self, path: &str, form: &[(&str, &str)]) -> reqwest::Response {
        self.http
            .post(format!("{}{path}", self.app.address))
            .form(form)
            .send()
            .await
            .unwrap()
    }

    pub async fn authorize(&self, q: &str) -> reqwest::Response {
        self.get(&format!("/authorize?{q}")).await
    }

    /// Opens /authorize, signs in; returns the page /authorize shows next.
    pub async fn sign_in(&self, q: &str, username: &str, password: &str) -> reqwest::Response {
        let html = self.authorize(q).await.text().await.unwrap();
        assert!(html.contains("Sign in"), "{html}");
        let res = self
            .post(
                "/login",
                &[
                    ("csrf", &field(&html, "csrf")),
                    ("authorize", &field(&html, "authorize")),
                    ("username", username),
                    ("password", password),
                ],
            )
            .await;
        if res.status() != 303 {
            return res;
        }
        let next = res.headers()["location"].to_str().unwrap().to_owned();
        self.get(&next).await
    }

    /// Answers the consent page in `html`; returns the response (a redirect).
    pub async fn decide(&self, html: &str, decision: &str) -> reqwest::Response {
        self.post(
            "/consent",
            &[
                ("csrf", &field(html, "csrf")),
                ("authorize", &field(html, "authorize")),
                ("decision", decision),
            ],
        )
        .await
    }
}

/// The query of a redirect back to the client.
pub fn redirect_params(res: &reqwest::Response) -> std::collections::HashMap<String, String> {
    assert_eq!(res.status(), 303, "expected a redirect");
    let location = res.headers()["location"].to_str().unwrap();
    assert!(location.starts_with(REDIRECT), "{location}");
    url::Url::parse(location)
        .unwrap()
        .query_pairs()
        .into_owned()
        .collect()
}

pub async fn exchange(
    app: &TestApp,
    client_id: &str,
    code: &str,
    verifier: &str,
) -> reqwest::Response {
    app.token(
        None,
        &[
            ("grant_type", "authorization_code"),
            ("client_id", client_id),
            ("code", code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", verifier),
        ],
    )
    .await
}

/// Gets a code the way a browser would: signing in and consenting only when asked.
async fn code_for(app: &TestApp, browser: &Browser<'_>, client_id: &str) -> String {
    let q = query(client_id, &[]);
    let mut res = browser.authorize(&q).await;
    if res.status() == 200 {
        let html = res.text().await.unwrap();
        if html.contains("Sign in") {
            res = browser.sign_in(&q, "alice", PASSWORD).await;
        } else {
            res = browser.decide(&html, "approve").await;
        }
    }
    if res.status() == 200 {
        let html = res.text().await.unwrap();
        res = browser.decide(&html, "approve").await;
    }
    let _ = app;
    redirect_params(&res)["code"].clone()
}

async fn user_signs_in_consents_and_the_app_gets_tokens(db: Db) {
    let app = TestApp::spawn(db).await;
    let client_id = setup(&app).await;
    let browser = Browser::new(&app);

    let res = browser
        .sign_in(&query(&client_id, &[]), "alice", PASSWORD)
        .await;
    assert_eq!(res.status(), 200);
    let consent = res.text().await.unwrap();
    assert!(
        consent.contains("Allow <strong>Photo Sharing</strong>?"),
        "{consent}"
    );
    assert!(
        consent.contains("See your username and profile"),
        "scopes in plain words: {consent}"
    );

    let res = browser.decide(&consent, "approve").await;
    let params = redirect_params(&res);
    assert_eq!(params["state"], "af0ifjsldkj");
    assert_eq!(params["iss"], "http://tessera.test", "RFC 9207");
    let code = &params["code"];

    let res = exchange(&app, &client_id, code, VERIFIER).await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["cache-control"], "no-store");
    let tokens: Value = res.json().await.unwrap();
    assert_eq!(tokens["scope"], "profile");
    assert_eq!(
        app.userinfo(tokens["access_token"].as_str().unwrap())
            .await
            .status(),
        200
    );
    // The family records how it started, and rotation applies unchanged.
    let sid = claims(tokens["access_token"].as_str().unwrap())["sid"]
        .as_str()
        .unwrap()
        .to_owned();
    let family = app
        .with_conn(move |c| {
            tessera::store::models::TokenFamily::find(c, &sid)
                .unwrap()
                .unwrap()
        })
        .await;
    assert_eq!(family.auth_method, "authorization_code");
    let refreshed = app
        .token(
            None,
            &[
                ("grant_type", "refresh_token"),
                ("client_id", &client_id),
                ("refresh_token", tokens["refresh_token"].as_str().unwrap()),
            ],
        )
        .await;
    assert_eq!(refreshed.status(), 200);
}

async fn denied_consent_redirects_with_access_denied(db: Db) {
    let app = TestApp::spawn(db).await;
    let client_id = setup(&app).await;
    let browser = Browser::new(&app);
    let consent = browser
        .sign_in(&query(&client_id, &[]), "alice", PASSWORD)
        .await
        .text()
        .await
        .unwrap();
    let params = redirect_params(&browser.decide(&consent, "deny").await);
    assert_eq!(params["error"], "access_denied");
    assert_eq!(params["state"], "af0ifjsldkj");
    assert!(!params.contains_key("code"));
}

async fn untrusted_client_or_redirect_never_redirects(db: Db) {
    let app = TestApp::spawn(db).await;
    let client_id = setup(&app).await;
    let browser = Browser::new(&app);
    let q = query(&client_id, &[]);
    for bad in [
        q.replace(&client_id, "unknown-client"),
        q.replace("localhost%3A9000%2Fcallback", "evil.example%2Fcallback"),
        q.replace(
            "localhost%3A9000%2Fcallback",
            "localhost%3A9000%2Fcallback%2Fextra",
        ),
        q.replace("client_id=", "x="),
        format!("{q}&client_id=again"),
    ] {
        let res = browser.authorize(&bad).await;
        assert_eq!(res.status(), 400, "{bad}");
        assert!(
            res.headers().get("location").is_none(),
            "never redirects: {bad}"
        );
        assert!(res.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html"));
        assert!(res
            .text()
            .await
            .unwrap()
            .contains("This sign-in cannot continue"));
    }
    // Other errors go back to the (trusted) redirect URI.
    let res = browser
        .authorize(&q.replace("scope=profile", "scope=admin"))
        .await;
    assert_eq!(redirect_params(&res)["error"], "invalid_scope");
    let res = browser
        .authorize(&q.replace("response_type=code", "response_type=token"))
        .await;
    assert_eq!(redirect_params(&res)["error"], "unsupported_response_type");
}

async fn pkce_is_required_and_checked(db: Db) {
    let app = TestApp::spawn(db).await;
    let client_id = setup(&app).await;
    let browser = Browser::new(&app);
    let base = query(&client_id, &[]);
    let missing = base.replace(
        &format!("&code_challenge={CHALLENGE}&code_challenge_method=S256"),
        "",
    );
    let plain = base.replace("code_challenge_method=S256", "code_challenge_method=plain");
    let no_method = base.replace("&code_challenge_method=S256", "");
    for q in [missing, plain, no_method] {
        let params = redirect_params(&browser.authorize(&q).await);
        assert_eq!(params["error"], "invalid_request", "{q}");
        assert_eq!(params["state"], "af0ifjsldkj");
    }
    // A wrong verifier fails, and spends the code.
    let code = code_for(&app, &browser, &client_id).await;
    let wrong = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXx";
    assert_oauth_error(
        exchange(&app, &client_id, &code, wrong).await,
        400,
        "invalid_grant",
    )
    .await;
    assert_oauth_error(
        exchange(&app, &client_id, &code, VERIFIER).await,
        400,
        "invalid_grant",
    )
    .await;
    // No verifier at all.
    let code = code_for(&app, &browser, &client_id).await;
    let res = app
        .token(
            None,
            &[
                ("grant_type", "authorization_code"),
                ("client_id", &client_id),
                ("code", &code),
                ("redirect_uri", REDIRECT),
            ],
        )
        .await;
    assert_oauth_error(res, 400, "invalid_grant").await;
    // The redirect_uri must match the authorization request's.
    let code = code_for(&app, &browser, &client_id).await;
    let res = app
        .token(
            None,
            &[
                ("grant_type", "authorization_code"),
                ("client_id", &client_id),
                ("code", &code),
                ("redirect_uri", "http://localhost:9000/other"),
                ("code_verifier", VERIFIER),
            ],
        )
        .await;
    assert_oauth_error(res, 400, "invalid_grant").await;
}

async fn codes_are_single_use_and_short_lived(db: Db) {
    let app = TestApp::spawn_with(db, &[("TESSERA_TOKENS__CODE_TTL", "1s")]).await;
    let client_id = setup(&app).await;
    let browser = Browser::new(&app);
    let code = code_for(&app, &browser, &client_id).await;
    let tokens: Value = exchange(&app, &client_id, &code, VERIFIER)
        .await
        .json()
        .await
        .unwrap();
    // A replayed code: refused, and the tokens issued from it are revoked (RFC 6749 §4.1.2).
    let body = assert_oauth_error(
        exchange(&app, &client_id, &code, VERIFIER).await,
        400,
        "invalid_grant",
    )
    .await;
    assert!(body["error_description"]
        .as_str()
        .unwrap()
        .contains("already used"));
    assert_eq!(
        app.userinfo(tokens["access_token"].as_str().unwrap())
            .await
            .status(),
        401
    );
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
    assert_oauth_error(res, 400, "invalid_grant").await;
    // Expired.
    let code = code_for(&app, &browser, &client_id).await;
    app.advance(std::time::Duration::from_millis(1200));
    let body = assert_oauth_error(
        exchange(&app, &client_id, &code, VERIFIER).await,
        400,
        "invalid_grant",
    )
    .await;
    assert!(body["error_description"]
        .as_str()
        .unwrap()
        .contains("expired"));
    // Made-up and foreign codes.
    assert_oauth_error(
        exchange(&app, &client_id, "tsc_madeup", VERIFIER).await,
        400,
        "invalid_grant",
    )
    .await;
    let (other, _) = app
        .client(&[GrantType::AuthorizationCode], true, "profile")
        .await;
    let code = code_for(&app, &browser, &client_id).await;
    assert_oauth_error(
        exchange(&app, &other, &code, VERIFIER).await,
        400,
        "invalid_grant",
    )
    .await;
}

async fn forms_need_their_csrf_token(db: Db) {
    let app = TestApp::spawn(db).await;
    let client_id = setup(&app).await;
    let browser = Browser::new(&app);
    let q = query(&client_id, &[]);
    let html = browser.authorize(&q).await.text().await.unwrap();
    let authorize = field(&html, "authorize");
    for csrf in ["", "forged", &URL_SAFE_NO_PAD.encode([0u8; 32])] {
        let res = browser
            .post(
                "/login",
                &[
                    ("csrf", csrf),
                    ("authorize", &authorize),
                    ("username", "alice"),
                    ("password", PASSWORD),
                ],
            )
            .await;
        assert_eq!(res.status(), 403, "csrf {csrf:?}");
        assert!(res
            .headers()
            .get("set-cookie")
            .is_none_or(|c| !c.to_str().unwrap().contains("tessera_session")));
    }
    // A token from another browser (another CSRF cookie) does not work either.
    let other = Browser::new(&app);
    let other_html = other.authorize(&q).await.text().await.unwrap();
    let res = browser
        .post(
            "/login",
            &[
                ("csrf", &field(&other_html, "csrf")),
                ("authorize", &authorize),
                ("username", "alice"),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert_eq!(res.status(), 403);
    // Consent without a valid token does not issue a code.
    let consent = browser
        .sign_in(&q, "alice", PASSWORD)
        .await
        .text()
        .await
        .unwrap();
    let res = browser
        .post(
            "/consent",
            &[
                ("csrf", "forged"),
                ("authorize", &authorize),
                ("decision", "approve"),
            ],
        )
        .await;
    assert_eq!(res.status(), 403);
    assert!(res.headers().get("location").is_none());
    assert!(consent.contains("Allow"));
}

/// A confidential client with the same redirect URI as [`setup`]'s public one.
async fn confidential(app: &TestApp) -> String {
    let spec = tessera::domain::client::ClientSpec {
        name: "Photo Sharing".into(),
        public: false,
        grants: vec![GrantType::AuthorizationCode],
        scope: tessera::domain::scope::Scope::parse("profile photos:read").unwrap(),
        redirect_uris: vec![url::Url::parse(REDIRECT).unwrap()],
    };
    app.register(spec).await.0
}

async fn consent_is_remembered_until_revoked(db: Db) {
    let app = TestApp::spawn(db).await;
    let public_id = setup(&app).await;
    let client_id = confidential(&app).await;
    let browser = Browser::new(&app);
    code_for(&app, &browser, &client_id).await;
    // Same scopes again: straight back with a code, no page.
    let res = browser.authorize(&query(&client_id, &[])).await;
    assert!(redirect_params(&res).contains_key("code"));
    // Not for a public client on a loopback redirect, which anyone could claim to be: it
    // always asks.
    code_for(&app, &browser, &public_id).await;
    let html = browser
        .authorize(&query(&public_id, &[]))
        .await
        .text()
        .await
        .unwrap();
    assert!(
        html.contains("Allow <strong>Photo Sharing</strong>?"),
        "{html}"
    );
    // More scopes: asked again.
    let wider = query(&client_id, &[]).replace("scope=profile", "scope=profile+photos%3Aread");
    let html = browser.authorize(&wider).await.text().await.unwrap();
    assert!(html.contains("Read your photos"), "{html}");

    let out = app
        .admin(&["user", "consents", "alice", "-o", "json"], None)
        .await;
    let consents: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(consents[0]["client_id"], client_id.as_str());
    assert_eq!(consents[0]["scope"], "profile");
    assert_eq!(consents[0]["client_name"], "Photo Sharing");
    let out = app
        .admin(&["user", "revoke-consent", "alice", &client_id], None)
        .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let html = browser
        .authorize(&query(&client_id, &[]))
        .await
        .text()
        .await
        .unwrap();
    assert!(
        html.contains("Allow <strong>Photo Sharing</strong>?"),
        "asked again: {html}"
    );
    let out = app
        .admin(&["user", "revoke-consent", "alice", &client_id], None)
        .await;
    assert_eq!(out.status.code(), Some(1));
}

async fn failed_logins_show_one_message_and_are_throttled(db: Db) {
    let app = TestApp::spawn_with(db, &[("TESSERA_THROTTLE__MAX_FAILURES_PER_USER", "3")]).await;
    let client_id = setup(&app).await;
    let browser = Browser::new(&app);
    let q = query(&client_id, &[]);
    let wrong_password = browser.sign_in(&q, "alice", "wrong").await;
    assert_eq!(wrong_password.status(), 401);
    let wrong_password = wrong_password.text().await.unwrap();
    let unknown_user = browser
        .sign_in(&q, "mallory", "wrong")
        .await
        .text()
        .await
        .unwrap();
    let message = |html: &str| {
        html[html.find("role=\"alert\"").unwrap()..]
            .split('<')
            .next()
            .unwrap()
            .to_owned()
    };
    assert_eq!(
        message(&wrong_password),
        message(&unknown_user),
        "one generic message"
    );
    assert!(
        wrong_password.contains("value=\"alice\""),
        "the username is kept in the form"
    );
    browser.sign_in(&q, "alice", "wrong").await;
    browser.sign_in(&q, "alice", "wrong").await;
    // Throttled: even the right password is refused, with the same message.
    let throttled = browser.sign_in(&q, "alice", PASSWORD).await;
    assert_eq!(throttled.status(), 401);
    assert_eq!(
        message(&throttled.text().await.unwrap()),
        message(&wrong_password)
    );
}

async fn pages_carry_security_headers_and_safe_cookies(db: Db) {
    let app = TestApp::spawn(db).await;
    let client_id = setup(&app).await;
    let browser = Browser::new(&app);
    let res = browser.authorize(&query(&client_id, &[])).await;
    let h = res.headers();
    assert_eq!(h["x-frame-options"], "DENY");
    let csp = h["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains("frame-ancestors 'none'")
            && !csp.contains("unsafe-inline")
            && csp.contains("default-src 'none'"),
        "{csp}"
    );
    assert_eq!(h["referrer-policy"], "no-referrer");
    assert_eq!(h["cache-control"], "no-store");
    let csrf = h["set-cookie"].to_str().unwrap();
    assert!(
        csrf.contains("HttpOnly") && csrf.contains("SameSite=Lax") && !csrf.contains("Secure"),
        "{csrf}"
    );
    let html = res.text().await.unwrap();
    assert!(!html.contains("<script"), "no script at all");
    assert!(html.contains("<label for=\"username\">") && html.contains("<label for=\"password\">"));

    // HTML is escaped: a client name with markup shows as text.
    let evil = tessera::domain::client::ClientSpec {
        name: "<script>alert(1)</script>".into(),
        public: true,
        grants: vec![GrantType::AuthorizationCode],
        scope: tessera::domain::scope::Scope::parse("profile").unwrap(),
        redirect_uris: vec![url::Url::parse(REDIRECT).unwrap()],
    };
    let evil_id = app.register(evil).await.0;
    let html = browser
        .authorize(&query(&evil_id, &[]))
        .await
        .text()
        .await
        .unwrap();
    assert!(
        !html.contains("<script>") && html.contains("&#60;script&#62;"),
        "{html}"
    );

    // The stylesheet is served from here, not a CDN.
    let css = browser.get("/static/tessera.css").await;
    assert_eq!(css.status(), 200);
    assert!(css.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/css"));

    // The session cookie after signing in.
    let html = browser
        .authorize(&query(&client_id, &[]))
        .await
        .text()
        .await
        .unwrap();
    let res = browser
        .post(
            "/login",
            &[
                ("csrf", &field(&html, "csrf")),
                ("authorize", &field(&html, "authorize")),
                ("username", "alice"),
                ("password", PASSWORD),
            ],
        )
        .await;
    let session = res.headers()["set-cookie"].to_str().unwrap();
    assert!(
        session.starts_with("tessera_session=")
            && session.contains("HttpOnly")
            && session.contains("SameSite=Lax"),
        "{session}"
    );

    // On https, cookies are Secure.
    let https = TestApp::spawn_with(db, &[("TESSERA_SERVER__ISSUER", "https://id.example")]).await;
    let client_id = setup(&https).await;
    let res = Browser::new(&https)
        .authorize(&query(&client_id, &[]))
        .await;
    assert!(res.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .contains("Secure"));
}

async fn signing_out_ends_the_session(db: Db) {
    let app = TestApp::spawn_with(db, &[("TESSERA_SESSIONS__IDLE_TTL", "1s")]).await;
    let client_id = setup(&app).await;
    let browser = Browser::new(&app);
    let consent = browser
        .sign_in(&query(&client_id, &[]), "alice", PASSWORD)
        .await
        .text()
        .await
        .unwrap();
    let res = browser
        .post("/logout", &[("csrf", &field(&consent, "csrf"))])
        .await;
    assert_eq!(res.status(), 200);
    assert!(res.text().await.unwrap().contains("You are signed out"));
    let html = browser
        .authorize(&query(&client_id, &[]))
        .await
        .text()
        .await
        .unwrap();
    assert!(html.contains("Sign in"), "signed out: {html}");
    // /logout without a CSRF token does nothing.
    let consent = browser
        .sign_in(&query(&client_id, &[]), "alice", PASSWORD)
        .await
        .text()
        .await
        .unwrap();
    assert_eq!(browser.post("/logout", &[]).await.status(), 403);
    let res = browser
        .post(
            "/consent",
            &[
                ("authorize", &field(&consent, "authorize")),
                ("decision", "approve"),
            ],
        )
        .await;
    assert_eq!(res.status(), 403, "consent without a CSRF token");
    assert!(
        browser
            .authorize(&query(&client_id, &[]))
            .await
            .text()
            .await
            .unwrap()
            .contains("Allow"),
        "still signed in"
    );
    browser
        .post("/logout", &[("csrf", &field(&consent, "csrf"))])
        .await;
    // Idle timeout.
    browser
        .sign_in(&query(&client_id, &[]), "alice", PASSWORD)
        .await;
    app.advance(std::time::Duration::from_millis(1300));
    let html = browser
        .authorize(&query(&client_id, &[]))
        .await
        .text()
        .await
        .unwrap();
    assert!(html.contains("Sign in"), "idle session ended: {html}");
}

async fn concurrent_exchanges_of_one_code_revoke_what_it_issued(db: Db) {
    let app = TestApp::spawn(db).await;
    let client_id = setup(&app).await;
    let browser = Browser::new(&app);
    let code = code_for(&app, &browser, &client_id).await;
    let (a, b) = tokio::join!(
        exchange(&app, &client_id, &code, VERIFIER),
        exchange(&app, &client_id, &code, VERIFIER)
    );
    let mut statuses = [a.status().as_u16(), b.status().as_u16()];
    statuses.sort_unstable();
    assert_eq!(statuses, [200, 400], "one exchange wins");
    let winner: Value = if a.status() == 200 {
        a.json().await.unwrap()
    } else {
        b.json().await.unwrap()
    };
    // The loser saw a replay: the winner's tokens are revoked.
    assert_eq!(
        app.userinfo(winner["access_token"].as_str().unwrap())
            .await
            .status(),
        401
    );
}

async fn redirect_uri_may_be_omitted_with_a_single_registration(db: Db) {
    let app = TestApp::spawn(db).await;
    let client_id = setup(&app).await;
    let browser = Browser::new(&app);
    let q = query(&client_id, &[])
        .replace("&redirect_uri=http%3A%2F%2Flocalhost%3A9000%2Fcallback", "");
    assert!(!q.contains("redirect_uri"));
    let consent = browser
        .sign_in(&q, "alice", PASSWORD)
        .await
        .text()
        .await
        .unwrap();
    let params = redirect_params(&browser.decide(&consent, "approve").await);
    // RFC 6749 §4.1.3: the token request need not name it either.
    let res = app
        .token(
            None,
            &[
                ("grant_type", "authorization_code"),
                ("client_id", &client_id),
                ("code", &params["code"]),
                ("code_verifier", VERIFIER),
            ],
        )
        .await;
    assert_eq!(res.status(), 200);
}

async fn malformed_authorize_requests_redirect_once_the_client_is_trusted(db: Db) {
    let app = TestApp::spawn(db).await;
    let client_id = setup(&app).await;
    let browser = Browser::new(&app);
    let q = query(&client_id, &[]);
    let no_type = q.replace("response_type=code&", "");
    let twice = format!("{q}&scope=photos%3Aread");
    let long_state = q.replace("state=af0ifjsldkj", &format!("state={}", "s".repeat(3000)));
    for bad in [no_type, twice, long_state] {
        let params = redirect_params(&browser.authorize(&bad).await);
        assert_eq!(params["error"], "invalid_request", "{bad}");
        assert!(params["error_description"].is_ascii());
    }
    // A non-ASCII scope: invalid_scope, with a description in the RFC's character set.
    let params = redirect_params(
        &browser
            .authorize(&q.replace("scope=profile", "scope=%C3%A9t%C3%A9"))
            .await,
    );
    assert_eq!(params["error"], "invalid_scope");
    assert!(params["error_description"]
        .bytes()
        .all(|b| (0x20..=0x7e).contains(&b) && b != b'"' && b != b'\\'));
}

async fn odd_form_fields_never_give_a_500(db: Db) {
    let app = TestApp::spawn_with(db, &[("TESSERA_SERVER__ISSUER", "https://id.example")]).await;
    let client_id = setup(&app).await;
    let browser = Browser::new(&app);
    let q = query(&client_id, &[]);
    let html = browser.authorize(&q).await.text().await.unwrap();
    // The hidden field is escaped in the page...
    let tricky = format!("{q}&x=%22%3E%3Cscript%3E");
    let page = browser.authorize(&tricky).await.text().await.unwrap();
    assert!(!page.contains("\"><script>"), "{page}");
    // ...and whatever is posted in it, the answer is a page or a redirect, never a 500.
    let csrf = field(&html, "csrf");
    for authorize in [
        format!("{q}&x=%0A%0D"),
        format!("{q}&x=é\u{0}"),
        "\n".to_owned(),
        String::new(),
    ] {
        let res = browser
            .post(
                "/login",
                &[
                    ("csrf", &csrf),
                    ("authorize", &authorize),
                    ("username", "alice"),
                    ("password", PASSWORD),
                ],
            )
            .await;
        assert!(
            res.status().as_u16() < 500,
            "{authorize:?}: {}",
            res.status()
        );
        if res.status() == 303 {
            let location = res.headers()["location"].to_str().unwrap();
            assert!(location.starts_with("/authorize?"), "{location}");
        }
    }
    // The session cookie is Secure and __Host- on https.
    let html = Browser::new(&app).authorize(&q).await;
    let cookie = html.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(
        cookie.starts_with("__Host-tessera_csrf=") && cookie.contains("Secure"),
        "{cookie}"
    );
}

#[tokio::test]
async fn sessions_end_at_their_absolute_lifetime() {
    let app = TestApp::spawn_with(Db::Sqlite, &[("TESSERA_SESSIONS__ABSOLUTE_TTL", "2s")]).await;
    let client_id = setup(&app).await;
    let browser = Browser::new(&app);
    browser
        .sign_in(&query(&client_id, &[]), "alice", PASSWORD)
        .await;
    // Kept busy (so never idle), it still ends.
    for _ in 0..3 {
        app.advance(std::time::Duration::from_millis(800));
        browser.authorize(&query(&client_id, &[])).await;
    }
    let html = browser
        .authorize(&query(&client_id, &[]))
        .await
        .text()
        .await
        .unwrap();
    assert!(html.contains("Sign in"), "{html}");
}
