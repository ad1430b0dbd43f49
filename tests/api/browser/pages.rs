//! The pages themselves: CSRF, throttled sign-in, headers and cookies, odd input, sessions.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use tessera::domain::client::GrantType;

use crate::helpers::browser::{field, query, setup, Browser, REDIRECT};
use crate::helpers::{both_backends, Db, TestApp, PASSWORD};

both_backends!(
    forms_need_their_csrf_token,
    failed_logins_show_one_message_and_are_throttled,
    pages_carry_security_headers_and_safe_cookies,
    odd_form_fields_never_give_a_500,
    signing_out_ends_the_session,
);

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
    let csp = h["content-security-policy"].to_str().unwrap().to_owned();
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
    // One script, Tessera's own file, for the passkey button; nothing inline.
    assert_eq!(html.matches("<script").count(), 1, "{html}");
    assert!(html.contains("<script src=\"/static/webauthn.js\" defer></script>"));
    assert!(
        csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"),
        "{csp}"
    );
    assert!(html.contains("<label for=\"username\">") && html.contains("<label for=\"password\">"));

    // HTML is escaped: a client name with markup shows as text.
    let evil = tessera::domain::client::ClientSpec {
        name: "<script>alert(1)</script>".into(),
        public: true,
        grants: vec![GrantType::AuthorizationCode],
        scope: tessera::domain::scope::Scope::parse("profile").unwrap(),
        redirect_uris: vec![url::Url::parse(REDIRECT).unwrap()],
        openid: Default::default(),
        app: Default::default(),
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
