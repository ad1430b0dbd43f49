//! The passkey parts of the pages over HTTP: the script and the policy that lets only the
//! pages with a passkey form load it, `/webauthn/options` for each purpose (CSRF-checked,
//! the relying party the issuer's host, user verification required, a discoverable credential
//! asked for), and refusals of answers that do not verify. The ceremonies themselves run
//! against a software authenticator (`passkeys`) and in Chromium (`real_browser::passkeys`).

use serde_json::Value;

use crate::helpers::browser::{field, Browser};
use crate::helpers::{both_backends, Db, TestApp, PASSWORD};

both_backends!(
    the_script_loads_only_where_a_passkey_form_is,
    options_are_given_per_purpose_to_the_right_page_only,
    answers_that_do_not_verify_are_refused,
    a_passkey_is_listed_asked_for_and_removed,
);

async fn options(browser: &Browser<'_>, csrf: &str, purpose: &str) -> (u16, Value) {
    let res = browser
        .post("/webauthn/options", &[("csrf", csrf), ("purpose", purpose)])
        .await;
    assert_eq!(res.headers()["cache-control"], "no-store");
    (res.status().as_u16(), res.json().await.unwrap())
}

/// The account page's login, done: the session's browser, and a page's CSRF token.
async fn signed_in(app: &TestApp) -> (Browser<'_>, String) {
    let browser = Browser::new(app);
    let res = browser.account_login("alice").await;
    assert_eq!(res.status(), 303);
    // Signing in gave the browser a new CSRF cookie: a page's token from now on.
    let html = browser.page("/account/sign-in-methods").await;
    let csrf = field(&html, "csrf");
    (browser, csrf)
}

async fn the_script_loads_only_where_a_passkey_form_is(db: Db) {
    let app = TestApp::spawn(db).await;
    app.user("alice").await;
    let browser = Browser::new(&app);
    let res = browser.get("/account").await;
    let csp = res.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    let html = res.text().await.unwrap();
    assert!(html.contains("Sign in with a passkey") && html.contains("/static/webauthn.js"));
    assert!(
        csp.contains("script-src 'self'")
            && csp.contains("connect-src 'self'")
            && !csp.contains("unsafe"),
        "{csp}"
    );
    let res = browser.get("/static/webauthn.js").await;
    assert_eq!(res.status(), 200);
    assert_eq!(
        res.headers()["content-type"],
        "text/javascript; charset=utf-8"
    );
    assert_eq!(res.headers()["x-content-type-options"], "nosniff");
    assert!(res.text().await.unwrap().contains("/webauthn/options"));
    // Pages without a passkey form load no script at all.
    let (browser, _) = signed_in(&app).await;
    for path in ["/account", "/account/password"] {
        let res = browser.get(path).await;
        let csp = res.headers()["content-security-policy"].to_str().unwrap();
        assert!(!csp.contains("script-src"), "{path}: {csp}");
        assert!(!res.text().await.unwrap().contains("<script"), "{path}");
    }
    let res = browser.get("/account/sign-in-methods").await;
    let csp = res.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(csp.contains("script-src 'self'"), "{csp}");
    let html = res.text().await.unwrap();
    assert!(
        html.contains("Add a passkey") && html.contains("You have none."),
        "{html}"
    );
}

async fn options_are_given_per_purpose_to_the_right_page_only(db: Db) {
    let app = TestApp::spawn(db).await;
    app.user("alice").await;
    let browser = Browser::new(&app);
    let html = browser.page("/account").await;
    let csrf = field(&html, "csrf");
    // Without the page's CSRF token: refused.
    let (status, body) = options(&browser, "forged", "sign-in").await;
    assert_eq!(status, 403, "{body}");
    assert!(body["error"].is_string());
    let (status, _) = options(&browser, &csrf, "everything").await;
    assert_eq!(status, 400);
    // A sign-in: any discoverable credential of this relying party, verified.
    let (status, body) = options(&browser, &csrf, "sign-in").await;
    assert_eq!(status, 200, "{body}");
    assert!(body["ceremony"].as_str().unwrap().len() >= 32);
    let pk = &body["options"]["publicKey"];
    assert_eq!(pk["rpId"], "tessera.test", "{body}");
    assert_eq!(pk["userVerification"], "required");
    assert!(pk["allowCredentials"].as_array().is_none_or(Vec::is_empty));
    assert!(pk["challenge"].as_str().unwrap().len() >= 43);
    assert!(body["options"].get("mediation").is_none());
    // Adding one needs a session; a second step, a password first.
    let (status, body) = options(&browser, &csrf, "register").await;
    assert_eq!(status, 400, "{body}");
    for asked in ["second-step", "enrol"] {
        let (status, body) = options(&browser, &csrf, asked).await;
        assert_eq!(status, 400, "{asked}: {body}");
        assert!(body["error"].as_str().unwrap().contains("Sign in again"));
    }
    let (browser, csrf) = signed_in(&app).await;
    let (status, body) = options(&browser, &csrf, "register").await;
    assert_eq!(status, 200, "{body}");
    let pk = &body["options"]["publicKey"];
    assert_eq!(pk["rp"]["id"], "tessera.test");
    assert_eq!(pk["user"]["name"], "alice");
    assert_eq!(pk["authenticatorSelection"]["residentKey"], "required");
    assert_eq!(pk["authenticatorSelection"]["userVerification"], "required");
    // The user handle is no id of ours and nothing personal: 16 bytes, base64url.
    assert_eq!(pk["user"]["id"].as_str().unwrap().len(), 22);
    // A second step for a user without a passkey: there is nothing to ask for.
    let (status, body) = options(&browser, &csrf, "second-step").await;
    assert_eq!(status, 400, "{body}");
}

async fn answers_that_do_not_verify_are_refused(db: Db) {
    let app = TestApp::spawn(db).await;
    app.user("alice").await;
    let browser = Browser::new(&app);
    let html = browser.page("/account").await;
    let csrf = field(&html, "csrf");
    let (_, body) = options(&browser, &csrf, "sign-in").await;
    let ceremony = body["ceremony"].as_str().unwrap().to_owned();
    let res = browser
        .post(
            "/login/passkey",
            &[
                ("csrf", &csrf),
                ("next", "account"),
                ("ceremony", &ceremony),
                (
                    "credential",
                    r#"{"id":"x","rawId":"eA","type":"public-key","response":{}}"#,
                ),
            ],
        )
        .await;
    assert_eq!(res.status(), 401);
    let page = res.text().await.unwrap();
    assert!(page.contains("That passkey was not accepted"), "{page}");
    assert!(
        browser.page("/account").await.contains("Sign in"),
        "nobody signed in"
    );
    // Adding one: the current password first, then the browser's answer.
    let (browser, csrf) = signed_in(&app).await;
    let (_, body) = options(&browser, &csrf, "register").await;
    let ceremony = body["ceremony"].as_str().unwrap().to_owned();
    let add = |current: &'static str, ceremony: String| {
        let (browser, csrf) = (&browser, csrf.clone());
        async move {
            browser
                .post(
                    "/account/passkeys",
                    &[
                        ("csrf", &csrf),
                        ("ceremony", &ceremony),
                        ("credential", "{}"),
                        ("name", "Laptop"),
                        ("current", current),
                    ],
                )
                .await
        }
    };
    let res = add("wrong password", ceremony.clone()).await;
    assert_eq!(res.status(), 400);
    assert!(res
        .text()
        .await
        .unwrap()
        .contains("The current password or code is incorrect"));
    let res = add(PASSWORD, ceremony).await;
    assert_eq!(res.status(), 400);
    let page = res.text().await.unwrap();
    assert!(page.contains("The passkey was not accepted"), "{page}");
    assert!(page.contains("You have none."), "nothing was added");
}

/// alice's passkey, made by a software key for the relying party `https://tessera.test` (the
/// software key takes only https origins; the page lists and removes any row).
pub(crate) async fn with_a_passkey(app: &TestApp) -> String {
    use webauthn_authenticator_rs::prelude::WebauthnAuthenticator;
    use webauthn_authenticator_rs::softpasskey::SoftPasskey;
    let now = app.clock.now();
    app.with_conn(move |c| {
        let user = tessera::domain::user::by_name(c, "alice").unwrap();
        let rp = tessera::grant::passkey::RelyingParty::new("https://tessera.test").unwrap();
        let begun = rp.begin_registration(c, &user, now).unwrap();
        let mut options = begun.options.clone();
        options["publicKey"]["authenticatorSelection"]["residentKey"] = "discouraged".into();
        options["publicKey"]["authenticatorSelection"]["requireResidentKey"] = false.into();
        let mut key = WebauthnAuthenticator::new(SoftPasskey::new(true));
        let answer = key
            .do_registration(
                url::Url::parse("https://tessera.test").unwrap(),
                serde_json::from_value(options).unwrap(),
            )
            .unwrap();
        let answer = serde_json::to_string(&answer).unwrap();
        rp.finish_registration(c, &user.id, &begun.ceremony, &answer, "Security key", now)
            .unwrap()
            .id
    })
    .await
}

async fn a_passkey_is_listed_asked_for_and_removed(db: Db) {
    let app = TestApp::spawn(db).await;
    app.user("alice").await;
    // Signed in with the password, then a passkey added (as the account page does).
    let (browser, _) = signed_in(&app).await;
    let id = with_a_passkey(&app).await;
    // From now on, the second step after a password asks for the passkey only.
    let other = Browser::new(&app);
    let res = other.account_login("alice").await;
    assert_eq!(res.status(), 200);
    let step = res.text().await.unwrap();
    assert!(
        step.contains("Use your passkey.") && !step.contains("name=\"code\""),
        "{step}"
    );
    let (status, body) = options(&other, &field(&step, "csrf"), "second-step").await;
    assert_eq!(status, 200, "{body}");
    let allowed = body["options"]["publicKey"]["allowCredentials"]
        .as_array()
        .unwrap();
    assert_eq!(allowed.len(), 1);
    assert_eq!(allowed[0]["id"], id.as_str());

    // The first browser's page lists it, and removes it with the password.
    let html = browser.page("/account/sign-in-methods").await;
    assert!(
        html.contains("Security key") && html.contains("never used"),
        "{html}"
    );
    let remove = |current: &'static str, which: String| {
        let browser = &browser;
        async move {
            let html = browser.page("/account/sign-in-methods").await;
            browser
                .post(
                    "/account/sign-in-methods",
                    &[
                        ("csrf", &field(&html, "csrf")),
                        ("change", "remove_passkey"),
                        ("passkey", &which),
                        ("current", current),
                    ],
                )
                .await
        }
    };
    let res = remove("wrong password", id.clone()).await;
    assert_eq!(res.status(), 400);
    let res = remove(PASSWORD, id.clone()).await;
    assert_eq!(
        res.headers()["location"],
        "/account/sign-in-methods?done=passkey_removed"
    );
    let html = browser.page("/account/sign-in-methods").await;
    assert!(html.contains("You have none."), "{html}");
    let activity = browser.page("/account/activity").await;
    // (Added through the relying party directly, not the page: only the removal is audited.)
    assert!(activity.contains("You removed a passkey"), "{activity}");
}
