//! The second step of a browser sign-in: after the password, a code from the authenticator
//! app (each accepted once) or a recovery code (each used once); throttled under its own key;
//! expiring; and the password grant, which cannot ask for it, refused for such users.

use std::time::Duration;

use serde_json::Value;
use tessera::domain::crypto::MasterKey;
use tessera::domain::second_factor as factor;

use crate::helpers::browser::{code_at, field, Browser};
use crate::helpers::{both_backends, Db, TestApp, PASSWORD};

both_backends!(
    a_user_with_an_app_signs_in_with_a_code_after_the_password,
    the_second_step_is_throttled_under_its_own_key_and_expires,
    the_password_grant_is_refused_to_a_user_with_an_app,
    an_admin_shows_and_resets_a_users_second_factors,
);

/// Sets up alice's authenticator app; returns its key and her recovery codes.
async fn enrolled(app: &TestApp) -> (String, Vec<String>) {
    app.user("alice").await;
    let master = MasterKey::from_text(&app.master_key).unwrap();
    let now = app.clock.now();
    app.with_conn(move |c| {
        let user = tessera::domain::user::by_name(c, "alice").unwrap();
        let e = factor::begin_totp(c, &master, &user, "tessera.test", now).unwrap();
        assert!(factor::confirm_totp(c, &master, &user.id, &code_at(&e.secret, now), now).unwrap());
        let codes = factor::new_recovery_codes(c, &master, &user.id, now).unwrap();
        (e.secret, codes)
    })
    .await
}

/// Signs in from the account page with the password: the answer (the second step's page).
async fn password_step(browser: &Browser<'_>) -> reqwest::Response {
    browser.account_login("alice").await
}

async fn second_step(browser: &Browser<'_>, page: &str, code: &str) -> reqwest::Response {
    browser
        .post(
            "/login/second-step",
            &[
                ("csrf", &field(page, "csrf")),
                ("authorize", ""),
                ("next", "account"),
                ("code", code),
            ],
        )
        .await
}

async fn a_user_with_an_app_signs_in_with_a_code_after_the_password(db: Db) {
    let app = TestApp::spawn(db).await;
    let (secret, recovery) = enrolled(&app).await;
    // The code that confirmed the set-up was spent: the next step's is the one to use.
    app.advance(Duration::from_secs(30));
    let browser = Browser::new(&app);
    let res = password_step(&browser).await;
    assert_eq!(res.status(), 200);
    let page = res.text().await.unwrap();
    assert!(page.contains("Confirm it is you"), "{page}");
    // The password alone signed nobody in.
    assert!(browser.page("/account").await.contains("Sign in"));

    let code = code_at(&secret, app.clock.now());
    let wrong = if code == "000000" { "111111" } else { "000000" };
    let res = second_step(&browser, &page, wrong).await;
    assert_eq!(res.status(), 401);
    assert!(res.text().await.unwrap().contains("That code is not right"));
    let res = second_step(&browser, &page, &code).await;
    assert_eq!(res.status(), 303);
    assert_eq!(res.headers()["location"], "/account");
    let html = browser.page("/account").await;
    assert!(html.contains("<h1>Devices</h1>"), "{html}");

    // The same code again, in another browser: refused, it was used.
    let other = Browser::new(&app);
    let page = password_step(&other).await.text().await.unwrap();
    assert_eq!(second_step(&other, &page, &code).await.status(), 401);
    // A recovery code works, once.
    let res = second_step(&other, &page, &recovery[0].to_uppercase()).await;
    assert_eq!(res.status(), 303);
    let third = Browser::new(&app);
    let page = password_step(&third).await.text().await.unwrap();
    assert_eq!(second_step(&third, &page, &recovery[0]).await.status(), 401);
    // Without the second step's cookie (another browser), a right code does nothing.
    let fourth = Browser::new(&app);
    let html = fourth.page("/account").await;
    let res = second_step(&fourth, &html, &recovery[1]).await;
    assert_eq!(res.status(), 401);
    assert!(res.text().await.unwrap().contains("took too long"));
}

async fn the_second_step_is_throttled_under_its_own_key_and_expires(db: Db) {
    let app = TestApp::spawn_with(db, &[("TESSERA_THROTTLE__MAX_FAILURES_PER_USER", "2")]).await;
    let (secret, _) = enrolled(&app).await;
    app.advance(Duration::from_secs(30));
    let browser = Browser::new(&app);
    let page = password_step(&browser).await.text().await.unwrap();
    let right = code_at(&secret, app.clock.now());
    let wrong = if right == "111111" {
        "222222"
    } else {
        "111111"
    };
    for _ in 0..2 {
        assert_eq!(second_step(&browser, &page, wrong).await.status(), 401);
    }
    // Over the limit: the right code too is refused, and a right password does not clear it.
    assert_eq!(second_step(&browser, &page, &right).await.status(), 401);
    let page = password_step(&browser).await.text().await.unwrap();
    assert!(
        page.contains("Confirm it is you"),
        "the password's own counter is apart"
    );
    assert_eq!(second_step(&browser, &page, &right).await.status(), 401);

    // Later, past the throttle's window and the second step's lifetime: sign in again.
    app.advance(Duration::from_secs(3600));
    let code = code_at(&secret, app.clock.now());
    let res = second_step(&browser, &page, &code).await;
    assert_eq!(res.status(), 401);
    assert!(res.text().await.unwrap().contains("took too long"));
    let page = password_step(&browser).await.text().await.unwrap();
    assert_eq!(second_step(&browser, &page, &code).await.status(), 303);
}

async fn the_password_grant_is_refused_to_a_user_with_an_app(db: Db) {
    let app = TestApp::spawn(db).await;
    let (id, secret) = app.password_client().await;
    enrolled(&app).await;
    let res = app.sign_in((&id, &secret), "alice", PASSWORD).await;
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
    app.user("bob").await;
    assert_eq!(
        app.sign_in((&id, &secret), "bob", PASSWORD).await.status(),
        200
    );
}

async fn an_admin_shows_and_resets_a_users_second_factors(db: Db) {
    use crate::cli::json;
    let app = TestApp::spawn(db).await;
    let (secret, _) = enrolled(&app).await;
    let shown = json(
        &app.admin(&["user", "mfa", "show", "alice", "-o", "json"], None)
            .await,
    );
    assert!(shown["totp_since"].is_string(), "{shown}");
    assert_eq!(shown["recovery_codes_left"], 10);
    assert!(!shown.to_string().contains(&secret), "no secret is shown");
    // Signed in (with the app) in a browser; the admin resets the app only.
    app.advance(Duration::from_secs(30));
    let browser = Browser::new(&app);
    let page = password_step(&browser).await.text().await.unwrap();
    let code = code_at(&secret, app.clock.now());
    assert_eq!(second_step(&browser, &page, &code).await.status(), 303);
    let out = app
        .admin(
            &[
                "user", "mfa", "reset", "alice", "--totp", "--yes", "-o", "json",
            ],
            None,
        )
        .await;
    let reset = json(&out);
    assert_eq!(reset["totp_removed"], true);
    assert_eq!(reset["recovery_codes_removed"], 0);
    // The browser was signed out; the next sign-in takes the password alone.
    let html = browser.page("/account").await;
    assert!(html.contains("Sign in"), "{html}");
    let res = password_step(&browser).await;
    assert_eq!(res.status(), 303, "no second step without an app");
    let activity = browser.page("/account/activity").await;
    assert!(
        activity.contains("An administrator reset your second factors"),
        "{activity}"
    );
    let shown = json(
        &app.admin(&["user", "mfa", "show", "alice", "-o", "json"], None)
            .await,
    );
    assert!(
        shown["totp_since"].is_null() && shown["recovery_codes_left"] == 10,
        "{shown}"
    );
    // Without a flag, both go.
    let reset = json(
        &app.admin(
            &["user", "mfa", "reset", "alice", "--yes", "-o", "json"],
            None,
        )
        .await,
    );
    assert_eq!(reset["recovery_codes_removed"], 10);
    let text = crate::cli::ok(&app.admin(&["user", "mfa", "show", "alice"], None).await);
    assert!(
        text.contains("authenticator app  none") && text.contains("0 left"),
        "{text}"
    );
}
