//! RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0), one test per module of the
//! certification plan for it: the app sends the user to `/end_session`; the browser session
//! ends, and with it the token families begun in it.

use serde_json::Value;
use tessera::domain::client::{ClientSpec, GrantType, OpenIdOptions};
use tessera::domain::scope::Scope;

use super::{exchange, request, visit};
use crate::helpers::browser::{field, Browser, REDIRECT};
use crate::helpers::{both_backends, Db, TestApp};

both_backends!(
    oidcc_rp_initiated_logout,
    oidcc_rp_initiated_logout_bad_post_logout_redirect_uri,
    oidcc_rp_initiated_logout_modified_id_token_hint,
    oidcc_rp_initiated_logout_no_id_token_hint,
    oidcc_rp_initiated_logout_no_params,
    oidcc_rp_initiated_logout_no_post_logout_redirect_uri,
    oidcc_rp_initiated_logout_no_state,
    oidcc_rp_initiated_logout_only_state,
    oidcc_rp_initiated_logout_query_added_to_post_logout_redirect_uri,
    signing_out_on_the_pages_ends_the_sessions_families_too,
);

const LOGGED_OUT: &str = "http://localhost:9000/logged-out";
const LOGGED_OUT_QUERY: &str = "http://localhost:9000/logged-out?foo=bar";

/// A client with two post-logout redirect URIs (one with a query), alice, and alice signed in
/// through it: the browser, the client id and the token response.
async fn signed_in(app: &TestApp) -> (Browser<'_>, String, Value) {
    super::setup(app).await;
    let (client_id, _) = app
        .register(ClientSpec {
            name: "Photo Sharing".into(),
            public: true,
            grants: vec![GrantType::AuthorizationCode, GrantType::RefreshToken],
            scope: Scope::parse("openid profile").unwrap(),
            redirect_uris: vec![url::Url::parse(REDIRECT).unwrap()],
            openid: OpenIdOptions {
                post_logout_redirect_uris: vec![
                    url::Url::parse(LOGGED_OUT).unwrap(),
                    url::Url::parse(LOGGED_OUT_QUERY).unwrap(),
                ],
                ..OpenIdOptions::default()
            },
            app: Default::default(),
        })
        .await;
    let browser = Browser::new(app);
    let params = visit(&browser, &request(&client_id, &[])).await;
    let tokens = exchange(app, &client_id, &params["code"]).await;
    (browser, client_id, tokens)
}

fn end_session(pairs: &[(&str, &str)]) -> String {
    let mut q = url::form_urlencoded::Serializer::new(String::from("/end_session?"));
    q.extend_pairs(pairs);
    q.finish()
}

/// Whether the session still stands: `/authorize` shows the consent page, not the login page.
async fn still_signed_in(browser: &Browser<'_>, client_id: &str) -> bool {
    let res = browser.authorize(&request(client_id, &[])).await;
    !res.text().await.unwrap().contains("name=\"password\"")
}

/// Whether the family of `tokens` still works: its refresh token refreshes.
async fn family_works(app: &TestApp, client_id: &str, tokens: &Value) -> bool {
    app.token(
        None,
        &[
            ("grant_type", "refresh_token"),
            ("client_id", client_id),
            ("refresh_token", tokens["refresh_token"].as_str().unwrap()),
        ],
    )
    .await
    .status()
        == 200
}

/// Opens the confirmation page at `path` and answers it with `decision`.
async fn answer(browser: &Browser<'_>, path: &str, decision: &str) -> reqwest::Response {
    let html = browser.page(path).await;
    assert!(html.contains("Sign out?"), "{html}");
    browser
        .post(
            "/end_session",
            &[
                ("csrf", &field(&html, "csrf")),
                ("request", &field(&html, "request")),
                ("decision", decision),
            ],
        )
        .await
}

fn location(res: &reqwest::Response) -> String {
    assert_eq!(res.status(), 303);
    res.headers()["location"].to_str().unwrap().to_owned()
}

/// The ID token of the session: signed out at once, back to the app with `state`; the session
/// and the tokens begun in it stop working.
async fn oidcc_rp_initiated_logout(db: Db) {
    let app = TestApp::spawn(db).await;
    let (browser, client_id, tokens) = signed_in(&app).await;
    let access = tokens["access_token"].as_str().unwrap();
    assert_eq!(app.userinfo(access).await.status(), 200);
    let res = browser
        .get(&end_session(&[
            ("id_token_hint", tokens["id_token"].as_str().unwrap()),
            ("post_logout_redirect_uri", LOGGED_OUT),
            ("state", "xyz"),
        ]))
        .await;
    assert_eq!(location(&res), format!("{LOGGED_OUT}?state=xyz"));
    assert!(!still_signed_in(&browser, &client_id).await);
    assert_eq!(app.userinfo(access).await.status(), 401);
    assert!(!family_works(&app, &client_id, &tokens).await);
}

async fn oidcc_rp_initiated_logout_bad_post_logout_redirect_uri(db: Db) {
    let app = TestApp::spawn(db).await;
    let (browser, client_id, tokens) = signed_in(&app).await;
    let res = browser
        .get(&end_session(&[
            ("id_token_hint", tokens["id_token"].as_str().unwrap()),
            (
                "post_logout_redirect_uri",
                "https://attacker.example/logged-out",
            ),
            ("state", "xyz"),
        ]))
        .await;
    assert_eq!(res.status(), 400);
    assert!(res.headers().get("location").is_none());
    assert!(still_signed_in(&browser, &client_id).await);
}

async fn oidcc_rp_initiated_logout_modified_id_token_hint(db: Db) {
    let app = TestApp::spawn(db).await;
    let (browser, client_id, tokens) = signed_in(&app).await;
    let token = tokens["id_token"].as_str().unwrap();
    let (head, sig) = token.rsplit_once('.').unwrap();
    let flipped = if sig.starts_with('A') { "B" } else { "A" };
    let modified = format!("{head}.{flipped}{}", &sig[1..]);
    let res = browser
        .get(&end_session(&[
            ("id_token_hint", &modified),
            ("post_logout_redirect_uri", LOGGED_OUT),
        ]))
        .await;
    assert_eq!(res.status(), 400);
    assert!(res.headers().get("location").is_none());
    assert!(still_signed_in(&browser, &client_id).await);
    assert!(family_works(&app, &client_id, &tokens).await);
}

/// Without the hint nothing shows the request is the session's app's: the user is asked, and
/// "Stay signed in" changes nothing; "Sign out" signs out and returns to the app.
async fn oidcc_rp_initiated_logout_no_id_token_hint(db: Db) {
    let app = TestApp::spawn(db).await;
    let (browser, client_id, tokens) = signed_in(&app).await;
    let ask = end_session(&[
        ("client_id", &client_id),
        ("post_logout_redirect_uri", LOGGED_OUT),
        ("state", "s1"),
    ]);
    let html = browser.page(&ask).await;
    assert!(html.contains("Sign out?"), "{html}");
    assert!(html.contains("Photo Sharing"), "{html}");
    let stay = answer(&browser, &ask, "stay").await;
    assert_eq!(stay.status(), 200);
    assert!(stay.text().await.unwrap().contains("still signed in"));
    assert!(still_signed_in(&browser, &client_id).await);
    assert!(family_works(&app, &client_id, &tokens).await);

    let odd = answer(&browser, &ask, "maybe").await;
    assert_eq!(odd.status(), 400);

    let res = answer(&browser, &ask, "sign_out").await;
    assert_eq!(location(&res), format!("{LOGGED_OUT}?state=s1"));
    assert!(!still_signed_in(&browser, &client_id).await);

    // The confirmation without its CSRF token does nothing; a malformed one is refused (and one
    // with an unknown decision, above).
    let forged = browser
        .post(
            "/end_session",
            &[("request", "client_id=x"), ("decision", "sign_out")],
        )
        .await;
    assert_eq!(forged.status(), 403);
    let repeated = browser
        .post(
            "/end_session",
            &[("x", "1"), ("x", "2"), ("decision", "sign_out")],
        )
        .await;
    assert_eq!(repeated.status(), 400);
}

async fn oidcc_rp_initiated_logout_no_params(db: Db) {
    let app = TestApp::spawn(db).await;
    let (browser, client_id, _) = signed_in(&app).await;
    let res = answer(&browser, "/end_session", "sign_out").await;
    assert_eq!(res.status(), 200);
    assert!(res.text().await.unwrap().contains("You are signed out"));
    assert!(!still_signed_in(&browser, &client_id).await);
}

async fn oidcc_rp_initiated_logout_no_post_logout_redirect_uri(db: Db) {
    let app = TestApp::spawn(db).await;
    let (browser, client_id, tokens) = signed_in(&app).await;
    let res = browser
        .get(&end_session(&[(
            "id_token_hint",
            tokens["id_token"].as_str().unwrap(),
        )]))
        .await;
    assert_eq!(res.status(), 200);
    assert!(res.text().await.unwrap().contains("You are signed out"));
    assert!(!still_signed_in(&browser, &client_id).await);
}

async fn oidcc_rp_initiated_logout_no_state(db: Db) {
    let app = TestApp::spawn(db).await;
    let (browser, _, tokens) = signed_in(&app).await;
    let res = browser
        .get(&end_session(&[
            ("id_token_hint", tokens["id_token"].as_str().unwrap()),
            ("post_logout_redirect_uri", LOGGED_OUT),
        ]))
        .await;
    assert_eq!(location(&res), LOGGED_OUT);
}

/// `state` without a redirect URI has nowhere to go: the signed-out page.
async fn oidcc_rp_initiated_logout_only_state(db: Db) {
    let app = TestApp::spawn(db).await;
    let (browser, _, tokens) = signed_in(&app).await;
    let res = browser
        .get(&end_session(&[
            ("id_token_hint", tokens["id_token"].as_str().unwrap()),
            ("state", "xyz"),
        ]))
        .await;
    assert_eq!(res.status(), 200);
    assert!(res.text().await.unwrap().contains("You are signed out"));
}

async fn oidcc_rp_initiated_logout_query_added_to_post_logout_redirect_uri(db: Db) {
    let app = TestApp::spawn(db).await;
    let (browser, _, tokens) = signed_in(&app).await;
    let res = browser
        .get(&end_session(&[
            ("id_token_hint", tokens["id_token"].as_str().unwrap()),
            ("post_logout_redirect_uri", LOGGED_OUT_QUERY),
            ("state", "xyz"),
        ]))
        .await;
    assert_eq!(location(&res), format!("{LOGGED_OUT_QUERY}&state=xyz"));
}

/// The pages' own "Sign out" ends the families begun in the session as well.
async fn signing_out_on_the_pages_ends_the_sessions_families_too(db: Db) {
    let app = TestApp::spawn(db).await;
    let (browser, client_id, tokens) = signed_in(&app).await;
    let html = browser
        .authorize(&request(&client_id, &[]))
        .await
        .text()
        .await
        .unwrap();
    let res = browser
        .post("/logout", &[("csrf", &field(&html, "csrf"))])
        .await;
    assert_eq!(res.status(), 200);
    assert!(!family_works(&app, &client_id, &tokens).await);
}
