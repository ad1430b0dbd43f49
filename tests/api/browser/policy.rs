//! Where a second factor is required (`signin.second_factor = "required"`, or a client's
//! `--require-second-factor`): a password-only sign-in does not stand, a user without a factor
//! sets one up before any code is issued, the password grant is refused; and how the user
//! signed in (`amr`) is recorded on the family and in the ID token.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::Value;
use tessera::domain::client::{AppOptions, ClientSpec, GrantType};
use tessera::domain::scope::Scope;

use crate::helpers::browser::{
    code_at, exchange, field, redirect_params, setup, Browser, REDIRECT,
};
use crate::helpers::browser::{CHALLENGE, VERIFIER};
use crate::helpers::{both_backends, Db, TestApp, PASSWORD};

both_backends!(
    a_client_that_requires_a_second_factor_has_it_set_up_before_its_code,
    the_server_policy_requires_a_second_factor_everywhere,
    a_user_with_a_factor_cannot_set_up_another_during_a_sign_in,
    a_consent_posted_without_the_factors_issues_no_code,
    an_unfinished_set_up_is_never_shown_to_the_next_sign_in,
);

/// The consent page was shown to a sign-in that stood; by the time the form comes back the
/// client requires a second factor (or another session posts it): the factors are checked
/// again, and no code is issued for a password alone.
async fn a_consent_posted_without_the_factors_issues_no_code(db: Db) {
    let app = TestApp::spawn(db).await;
    setup(&app).await;
    let console = openid_client(&app, "Admin Console", false).await;
    let browser = Browser::new(&app);
    let res = browser
        .sign_in(&openid_query(&console), "alice", PASSWORD)
        .await;
    let consent = res.text().await.unwrap();
    assert!(consent.contains("Allow"), "{consent}");
    let out = app
        .admin(
            &[
                "client",
                "update",
                &console,
                "--require-second-factor",
                "true",
            ],
            None,
        )
        .await;
    crate::cli::ok(&out);
    let res = browser.decide(&consent, "approve").await;
    assert_eq!(res.status(), 200, "a page, not a redirect with a code");
    let page = res.text().await.unwrap();
    assert!(page.contains("Sign in"), "{page}");
}

/// Someone who knows only the password begins the set-up an app requires, and leaves: the
/// user's own sign-in gets a key of its own, and the first one's codes do nothing.
async fn an_unfinished_set_up_is_never_shown_to_the_next_sign_in(db: Db) {
    let app = TestApp::spawn(db).await;
    setup(&app).await;
    let console = openid_client(&app, "Admin Console", true).await;
    let intruder = Browser::new(&app);
    let res = intruder
        .sign_in(&openid_query(&console), "alice", PASSWORD)
        .await;
    let left = shown_secret(&res.text().await.unwrap());
    let user = Browser::new(&app);
    let res = user
        .sign_in(&openid_query(&console), "alice", PASSWORD)
        .await;
    let page = res.text().await.unwrap();
    let own = shown_secret(&page);
    assert_ne!(own, left, "a key of this sign-in's own");
    let enrol = |code: String| {
        let (user, page) = (&user, page.clone());
        async move {
            user.post(
                "/login/enrol",
                &[
                    ("csrf", &field(&page, "csrf")),
                    ("authorize", &field(&page, "authorize")),
                    ("code", &code),
                ],
            )
            .await
        }
    };
    let res = enrol(code_at(&left, app.clock.now())).await;
    assert_eq!(res.status(), 401, "the intruder's key does nothing");
    let res = enrol(code_at(&own, app.clock.now())).await;
    assert_eq!(res.status(), 303, "the user's own does");

    // On the account page too, an unfinished set-up lasts ten minutes: then it is neither
    // shown nor confirmed.
    app.user("bob").await;
    let browser = Browser::new(&app);
    let res = browser.account_login("bob").await;
    assert_eq!(res.status(), 303);
    let html = browser.page("/account/sign-in-methods").await;
    let res = browser
        .post(
            "/account/sign-in-methods",
            &[
                ("csrf", &field(&html, "csrf")),
                ("change", "set_up_app"),
                ("current", PASSWORD),
            ],
        )
        .await;
    assert_eq!(res.headers()["location"], "/account/authenticator");
    let setup = browser.page("/account/authenticator").await;
    let key = shown_secret(&setup);
    app.advance(std::time::Duration::from_secs(11 * 60));
    let res = browser.get("/account/authenticator").await;
    assert_eq!(
        res.headers()["location"],
        "/account/sign-in-methods",
        "not shown"
    );
    let res = browser
        .post(
            "/account/authenticator",
            &[
                ("csrf", &field(&setup, "csrf")),
                ("code", &code_at(&key, app.clock.now())),
            ],
        )
        .await;
    assert_eq!(
        res.headers()["location"],
        "/account/sign-in-methods",
        "not confirmed: back to the methods, not `?done=app_added`"
    );
    let shown = crate::cli::json(
        &app.admin(&["user", "mfa", "show", "bob", "-o", "json"], None)
            .await,
    );
    assert!(shown["totp_since"].is_null(), "{shown}");
}

/// The set-up during a sign-in is for users without a factor only: for one with a passkey, the
/// waiting sign-in's cookie (a right password) must not buy an authenticator app or a passkey
/// of the caller's, which would let the password alone past the second step.
async fn a_user_with_a_factor_cannot_set_up_another_during_a_sign_in(db: Db) {
    let app = TestApp::spawn_with(db, &[("TESSERA_SIGNIN__SECOND_FACTOR", "required")]).await;
    app.user("alice").await;
    super::passkey_pages::with_a_passkey(&app).await;
    let browser = Browser::new(&app);
    let res = browser.account_login("alice").await;
    let step = res.text().await.unwrap();
    assert!(step.contains("Use your passkey."), "{step}");
    let csrf = field(&step, "csrf");
    // An app: a wrong first code must not lead to a set-up page with a fresh key.
    let res = browser
        .post(
            "/login/enrol",
            &[
                ("csrf", &csrf),
                ("authorize", ""),
                ("next", "account"),
                ("code", "123456"),
            ],
        )
        .await;
    let page = res.text().await.unwrap();
    assert!(
        !page.contains("class=\"secret\"") && !page.contains("<svg"),
        "{page}"
    );
    // A passkey: no options to make one.
    let res = browser
        .post(
            "/webauthn/options",
            &[("csrf", &csrf), ("purpose", "enrol")],
        )
        .await;
    assert_eq!(res.status(), 400);
    // Nothing was added, and nobody is signed in.
    let shown = crate::cli::json(
        &app.admin(&["user", "mfa", "show", "alice", "-o", "json"], None)
            .await,
    );
    assert!(shown["totp_since"].is_null(), "{shown}");
    assert_eq!(shown["passkeys"].as_array().unwrap().len(), 1);
    assert!(browser.page("/account").await.contains("Sign in"));
}

/// An OpenID Connect client, `require_second_factor` as given.
async fn openid_client(app: &TestApp, name: &str, require_second_factor: bool) -> String {
    let spec = ClientSpec {
        name: name.into(),
        public: true,
        grants: vec![GrantType::AuthorizationCode, GrantType::RefreshToken],
        scope: Scope::parse("openid profile").unwrap(),
        redirect_uris: vec![url::Url::parse(REDIRECT).unwrap()],
        openid: Default::default(),
        app: AppOptions {
            require_second_factor,
            ..Default::default()
        },
    };
    app.register(spec).await.0
}

fn openid_query(client_id: &str) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .append_pair("response_type", "code")
        .append_pair("client_id", client_id)
        .append_pair("redirect_uri", REDIRECT)
        .append_pair("scope", "openid profile")
        .append_pair("state", "s")
        .append_pair("nonce", "n")
        .append_pair("code_challenge", CHALLENGE)
        .append_pair("code_challenge_method", "S256")
        .finish()
}

/// The text of `<code class="secret">` on a set-up page: the app's key.
fn shown_secret(html: &str) -> String {
    let start = html.find("<code class=\"secret\">").expect("a key") + 21;
    let end = html[start..].find('<').unwrap() + start;
    html[start..end].to_owned()
}

/// Answers consent if asked; the code, and the ID token's `amr` after exchanging it.
async fn finish(
    app: &TestApp,
    browser: &Browser<'_>,
    client_id: &str,
    res: reqwest::Response,
) -> Vec<String> {
    let mut res = res;
    if res.status() == 200 {
        let html = res.text().await.unwrap();
        assert!(html.contains("Allow"), "{html}");
        res = browser.decide(&html, "approve").await;
    }
    let code = redirect_params(&res)["code"].clone();
    let tokens: Value = exchange(app, client_id, &code, VERIFIER)
        .await
        .json()
        .await
        .unwrap();
    let id_token = tokens["id_token"].as_str().expect("an ID token");
    let payload = id_token.split('.').nth(1).unwrap();
    let claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
    claims["amr"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect()
}

async fn a_client_that_requires_a_second_factor_has_it_set_up_before_its_code(db: Db) {
    let app = TestApp::spawn(db).await;
    setup(&app).await;
    let photos = openid_client(&app, "Photo Sharing", false).await;
    let console = openid_client(&app, "Admin Console", true).await;
    let browser = Browser::new(&app);

    // An app that does not require it: the password is enough, and the ID token says so.
    let res = browser
        .sign_in(&openid_query(&photos), "alice", PASSWORD)
        .await;
    assert_eq!(finish(&app, &browser, &photos, res).await, ["pwd"]);

    // The console: the password-only sign-in of this browser does not stand.
    let html = browser
        .authorize(&openid_query(&console))
        .await
        .text()
        .await
        .unwrap();
    assert!(html.contains("Sign in"), "{html}");
    // After the password, an authenticator app is set up; no code yet.
    let html = browser
        .sign_in(&openid_query(&console), "alice", PASSWORD)
        .await;
    assert_eq!(html.status(), 200);
    let page = html.text().await.unwrap();
    assert!(page.contains("Set up a second factor"), "{page}");
    let secret = shown_secret(&page);
    let enrol = |code: String, page: String| {
        let browser = &browser;
        async move {
            browser
                .post(
                    "/login/enrol",
                    &[
                        ("csrf", &field(&page, "csrf")),
                        ("authorize", &field(&page, "authorize")),
                        ("code", &code),
                    ],
                )
                .await
        }
    };
    let right = code_at(&secret, app.clock.now());
    let wrong = if right == "000000" {
        "111111"
    } else {
        "000000"
    };
    let res = enrol(wrong.into(), page.clone()).await;
    assert_eq!(res.status(), 401);
    let again = res.text().await.unwrap();
    assert!(again.contains("That code is not right"), "{again}");
    assert_eq!(shown_secret(&again), secret, "the same app, shown again");
    // The console's requirement holds the password grant off too.
    let res = enrol(right, again).await;
    assert_eq!(res.status(), 303);
    let next = res.headers()["location"].to_str().unwrap().to_owned();
    assert!(next.starts_with("/authorize?"), "{next}");
    let res = browser.get(&next).await;
    assert_eq!(
        finish(&app, &browser, &console, res).await,
        ["pwd", "otp", "mfa"]
    );

    // The family records it, as `family show` prints it.
    let families = crate::cli::json(
        &app.admin(&["family", "list", "--user", "alice", "-o", "json"], None)
            .await,
    );
    let newest = families
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["client_id"] == console.as_str())
        .expect("the console's family");
    let shown = crate::cli::json(
        &app.admin(
            &[
                "family",
                "show",
                newest["id"].as_str().unwrap(),
                "-o",
                "json",
            ],
            None,
        )
        .await,
    );
    assert_eq!(
        shown["family"]["amr"],
        serde_json::json!(["pwd", "otp", "mfa"]),
        "{shown}"
    );
    let text = crate::cli::ok(
        &app.admin(&["family", "show", newest["id"].as_str().unwrap()], None)
            .await,
    );
    assert!(
        text.contains("amr      pwd otp mfa    (a password, then a one-time code)"),
        "{text}"
    );

    // From now on this user has a second step everywhere, and the password grant is refused.
    let (id, secret) = app.password_client().await;
    let res = app.sign_in((&id, &secret), "alice", PASSWORD).await;
    assert_eq!(res.status(), 400);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"], "invalid_grant", "{body}");
    // A client that requires a second factor: refused for every user, by the CLI's flag.
    app.user("bob").await;
    assert_eq!(
        app.sign_in((&id, &secret), "bob", PASSWORD).await.status(),
        200
    );
    let out = app
        .admin(
            &["client", "update", &id, "--require-second-factor", "true"],
            None,
        )
        .await;
    assert!(crate::cli::ok(&out).contains("second_factor  required"));
    let res = app.sign_in((&id, &secret), "bob", PASSWORD).await;
    assert_eq!(res.status(), 400);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"], "invalid_grant");
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("browser sign-in"),
        "{body}"
    );
}

async fn the_server_policy_requires_a_second_factor_everywhere(db: Db) {
    let app = TestApp::spawn_with(db, &[("TESSERA_SIGNIN__SECOND_FACTOR", "required")]).await;
    let photos = setup(&app).await;
    let (id, secret) = app.password_client().await;
    // No password grant for anyone, with the reason.
    let res = app.sign_in((&id, &secret), "alice", PASSWORD).await;
    assert_eq!(res.status(), 400);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"], "invalid_grant");
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("second factor"),
        "{body}"
    );
    // The account page's sign-in too leads to the set-up, and nothing is signed in before it.
    let browser = Browser::new(&app);
    let res = browser.account_login("alice").await;
    assert_eq!(res.status(), 200);
    let page = res.text().await.unwrap();
    assert!(page.contains("Set up a second factor"), "{page}");
    assert!(browser.page("/account").await.contains("Sign in"));
    // An app's authorization request issues no code for a password alone either.
    let q = crate::helpers::browser::query(&photos, &[]);
    let res = browser.authorize(&q).await;
    assert_eq!(
        res.status(),
        200,
        "the login page, not a redirect with a code"
    );
    let code = code_at(&shown_secret(&page), app.clock.now());
    let res = browser
        .post(
            "/login/enrol",
            &[
                ("csrf", &field(&page, "csrf")),
                ("authorize", ""),
                ("next", "account"),
                ("code", &code),
            ],
        )
        .await;
    assert_eq!(res.status(), 303);
    assert_eq!(res.headers()["location"], "/account");
    let html = browser.page("/account/activity").await;
    assert!(html.contains("authenticator app"), "{html}");
    // Signed in with two factors, the app's request goes through (consent, then a code).
    let res = browser.authorize(&q).await;
    let html = res.text().await.unwrap();
    let res = browser.decide(&html, "approve").await;
    assert!(redirect_params(&res).contains_key("code"));
}
