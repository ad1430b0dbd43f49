//! The account page, through a browser with a cookie jar: signing in to it, the devices and
//! signing one (or every other) out, the apps with access, the activity, the password.

use diesel::prelude::*;
use serde_json::Value;
use tessera::domain::client::{ClientSpec, GrantType};
use tessera::domain::scope::Scope;

use crate::helpers::browser::{code_for, exchange, field, setup, Browser, VERIFIER};
use crate::helpers::{both_backends, Db, TestApp, PASSWORD};

both_backends!(
    the_account_page_asks_for_a_sign_in_and_comes_back,
    signing_a_device_out_stops_its_tokens_at_once,
    signing_out_everywhere_else_keeps_this_browser,
    removing_an_apps_access_forgets_the_consent_and_signs_it_out,
    a_password_change_needs_the_current_one_and_ends_everything_else,
    wrong_current_passwords_are_throttled_as_sign_ins_are,
    the_activity_shows_sign_ins_failures_and_replays,
    an_authenticator_app_is_set_up_with_the_password_and_a_first_code,
    recovery_codes_are_shown_once_and_replaced_as_a_set,
);

const MOBILE: &str = "ExampleApp/2.1 (Android 14; Pixel 8)";

/// Signs the browser in from the account page; returns the devices page.
async fn signed_in(browser: &Browser<'_>) -> String {
    let html = browser.page("/account").await;
    assert!(
        html.contains("Sign in") && html.contains("your account"),
        "{html}"
    );
    assert_eq!(field(&html, "next"), "account");
    let res = browser
        .post(
            "/login",
            &[
                ("csrf", &field(&html, "csrf")),
                ("authorize", ""),
                ("next", "account"),
                ("username", "alice"),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert_eq!(res.status(), 303);
    assert_eq!(res.headers()["location"], "/account");
    page(browser, "/account").await
}

async fn page(browser: &Browser<'_>, path: &str) -> String {
    let res = browser.get(path).await;
    assert_eq!(res.status(), 200, "{path}");
    res.text().await.unwrap()
}

/// A password client named `name`: (id, secret).
async fn app_named(app: &TestApp, name: &str) -> (String, String) {
    let spec = ClientSpec {
        name: name.into(),
        public: false,
        grants: vec![GrantType::Password, GrantType::RefreshToken],
        scope: Scope::parse("read").unwrap(),
        redirect_uris: vec![],
        openid: Default::default(),
        app: Default::default(),
    };
    let (id, secret) = app.register(spec).await;
    (id, secret.unwrap())
}

/// A password grant sent by a phone app.
async fn phone_sign_in(app: &TestApp, client: (&str, &str)) -> Value {
    app.password_grant_from(client, "alice", MOBILE).await
}

/// The `device` (family id) of every sign-out form on the devices page, in order.
fn device_ids(html: &str) -> Vec<String> {
    html.split("name=\"device\" value=\"")
        .skip(1)
        .map(|rest| rest[..rest.find('"').unwrap()].to_owned())
        .collect()
}

async fn revoked_reason(app: &TestApp, family: &str) -> Option<String> {
    use tessera::store::schema::token_families::dsl::*;
    let family = family.to_owned();
    app.with_conn(move |c| {
        token_families
            .filter(id.eq(family))
            .select(revoked_reason)
            .first::<Option<String>>(c)
            .unwrap()
    })
    .await
}

async fn the_account_page_asks_for_a_sign_in_and_comes_back(db: Db) {
    let app = TestApp::spawn(db).await;
    app.user("alice").await;
    let browser = Browser::new(&app);
    for path in [
        "/account",
        "/account/apps",
        "/account/activity",
        "/account/password",
    ] {
        let html = page(&browser, path).await;
        assert!(html.contains("Sign in"), "{path}: {html}");
    }
    // A wrong password: the login page again, still on its way to the account page.
    let html = browser.page("/account").await;
    let res = browser
        .post(
            "/login",
            &[
                ("csrf", &field(&html, "csrf")),
                ("next", "account"),
                ("username", "alice"),
                ("password", "wrong password"),
            ],
        )
        .await;
    assert_eq!(res.status(), 401);
    let html = res.text().await.unwrap();
    assert_eq!(field(&html, "next"), "account");
    let html = signed_in(&browser).await;
    assert!(
        html.contains("<h1>Devices</h1>") && html.contains("alice"),
        "{html}"
    );
    assert!(html.contains("No app is signed in"), "{html}");
    for (path, heading) in [
        ("/account", "Devices"),
        ("/account/apps", "Apps with access"),
        ("/account/activity", "Security activity"),
        ("/account/password", "Password"),
    ] {
        let res = browser.get(path).await;
        let headers = res.headers().clone();
        assert_eq!(headers["x-frame-options"], "DENY", "{path}");
        assert_eq!(headers["cache-control"], "no-store", "{path}");
        let csp = headers["content-security-policy"].to_str().unwrap();
        assert!(
            csp.contains("default-src 'none'") && !csp.contains("script-src"),
            "{path}"
        );
        assert!(
            headers.get("access-control-allow-origin").is_none(),
            "{path}"
        );
        let html = res.text().await.unwrap();
        assert!(
            html.contains(&format!("<h1>{heading}</h1>")),
            "{path}: {html}"
        );
        assert!(html.contains("aria-current=\"page\""), "{path}");
        // Every form that changes something carries the CSRF token.
        for form in html.split("<form").skip(1) {
            let form = &form[..form.find("</form>").unwrap()];
            if form.contains("method=\"post\"") {
                assert!(form.contains("name=\"csrf\""), "{path}: {form}");
            }
        }
    }
    // A change without the CSRF token is refused, whatever it is.
    for (path, form) in [
        ("/account/sign-out", ("others", "1")),
        ("/account/remove-access", ("app", "any")),
        ("/account/password", ("current", PASSWORD)),
    ] {
        let res = browser.post(path, &[form]).await;
        assert_eq!(res.status(), 403, "{path}");
    }
}

async fn signing_a_device_out_stops_its_tokens_at_once(db: Db) {
    let app = TestApp::spawn(db).await;
    app.user("alice").await;
    let (id, secret) = app_named(&app, "ExampleApp").await;
    let phone = phone_sign_in(&app, (&id, &secret)).await;
    let browser = Browser::new(&app);
    let html = signed_in(&browser).await;
    assert!(html.contains("ExampleApp 2.1 on Android 14"), "{html}");
    let devices = device_ids(&html);
    assert_eq!(devices.len(), 1, "{html}");
    let device = &devices[0];

    // The confirmation page names the device; nothing is done yet.
    let confirm = page(&browser, &format!("/account/sign-out?device={device}")).await;
    assert!(
        confirm.contains("Sign out ExampleApp on ExampleApp 2.1 on Android 14?"),
        "{confirm}"
    );
    assert_eq!(revoked_reason(&app, device).await, None);

    // Without its CSRF token, the form is refused and changes nothing.
    let res = browser
        .post("/account/sign-out", &[("device", device)])
        .await;
    assert_eq!(res.status(), 403);
    assert_eq!(revoked_reason(&app, device).await, None);

    // Another user's device cannot be signed out from here, nor even named.
    let bob = app.user("bob").await;
    let bobs = app.password_grant((&id, &secret), "bob").await;
    let bobs = bobs["refresh_token"].as_str().unwrap();
    let bobs_family = app
        .with_conn(move |c| {
            use tessera::store::schema::token_families::dsl::*;
            token_families
                .filter(user_id.eq(bob))
                .select(id)
                .first::<String>(c)
                .unwrap()
        })
        .await;
    assert_ne!(&bobs_family, device);
    let res = browser
        .get(&format!("/account/sign-out?device={bobs_family}"))
        .await;
    assert_eq!(res.headers()["location"], "/account?done=nothing");
    let res = browser
        .post(
            "/account/sign-out",
            &[("csrf", &field(&confirm, "csrf")), ("device", &bobs_family)],
        )
        .await;
    assert_eq!(res.headers()["location"], "/account?done=nothing");
    assert_eq!(revoked_reason(&app, &bobs_family).await, None);
    assert_eq!(app.refresh((&id, &secret), bobs).await.status(), 200);

    let res = browser
        .post(
            "/account/sign-out",
            &[("csrf", &field(&confirm, "csrf")), ("device", device)],
        )
        .await;
    assert_eq!(res.status(), 303);
    assert_eq!(res.headers()["location"], "/account?done=signed_out");
    assert_eq!(
        revoked_reason(&app, device).await.as_deref(),
        Some("user_signed_out")
    );
    let html = page(&browser, "/account?done=signed_out").await;
    assert!(
        html.contains("The device was signed out") && html.contains("No app is signed in"),
        "{html}"
    );

    // The phone's tokens stopped: the refresh token and the access token alike.
    let refresh = phone["refresh_token"].as_str().unwrap();
    assert_eq!(app.refresh((&id, &secret), refresh).await.status(), 400);
    let access = phone["access_token"].as_str().unwrap();
    assert_eq!(app.userinfo(access).await.status(), 401);
}

async fn signing_out_everywhere_else_keeps_this_browser(db: Db) {
    let app = TestApp::spawn(db).await;
    let public = setup(&app).await;
    let phone_app = app_named(&app, "ExampleApp").await;
    let phone = phone_sign_in(&app, (&phone_app.0, &phone_app.1)).await;
    let other_phone = phone_sign_in(&app, (&phone_app.0, &phone_app.1)).await;
    let browser = Browser::new(&app);
    signed_in(&browser).await;
    // An app this browser signed in to: its family began in this browser's session.
    let code = code_for(&app, &browser, &public).await;
    let res = exchange(&app, &public, &code, VERIFIER).await;
    assert_eq!(res.status(), 200);
    let web: Value = res.json().await.unwrap();

    let html = page(&browser, "/account").await;
    assert_eq!(device_ids(&html).len(), 3, "{html}");
    assert_eq!(html.matches("This browser").count(), 1, "{html}");
    let confirm = page(&browser, "/account/sign-out?others=1").await;
    assert!(
        confirm.contains("Sign out every other device (2)?"),
        "{confirm}"
    );
    let res = browser
        .post(
            "/account/sign-out",
            &[("csrf", &field(&confirm, "csrf")), ("others", "1")],
        )
        .await;
    assert_eq!(res.headers()["location"], "/account?done=signed_out_others");
    for tokens in [&phone, &other_phone] {
        let refresh = tokens["refresh_token"].as_str().unwrap();
        let res = app.refresh((&phone_app.0, &phone_app.1), refresh).await;
        assert_eq!(res.status(), 400);
    }
    let refreshed = app
        .token(
            None,
            &[
                ("grant_type", "refresh_token"),
                ("client_id", &public),
                ("refresh_token", web["refresh_token"].as_str().unwrap()),
            ],
        )
        .await;
    assert_eq!(
        refreshed.status(),
        200,
        "this browser's app stays signed in"
    );
    let html = page(&browser, "/account").await;
    assert_eq!(device_ids(&html).len(), 1, "{html}");
}

async fn removing_an_apps_access_forgets_the_consent_and_signs_it_out(db: Db) {
    let app = TestApp::spawn(db).await;
    let public = setup(&app).await;
    let browser = Browser::new(&app);
    signed_in(&browser).await;
    let code = code_for(&app, &browser, &public).await;
    let tokens: Value = exchange(&app, &public, &code, VERIFIER)
        .await
        .json()
        .await
        .unwrap();
    let html = page(&browser, "/account/apps").await;
    assert!(
        html.contains("Photo Sharing") && html.contains("See your username and profile"),
        "{html}"
    );

    // Another user's app, or one never allowed: nothing to do.
    let res = browser.get("/account/remove-access?app=no-such-app").await;
    assert_eq!(res.headers()["location"], "/account/apps?done=nothing");

    let confirm = page(&browser, &format!("/account/remove-access?app={public}")).await;
    assert!(
        confirm.contains("Remove the access of Photo Sharing?"),
        "{confirm}"
    );
    let res = browser
        .post(
            "/account/remove-access",
            &[("csrf", &field(&confirm, "csrf")), ("app", &public)],
        )
        .await;
    assert_eq!(res.headers()["location"], "/account/apps?done=removed");
    let html = page(&browser, "/account/apps?done=removed").await;
    assert!(html.contains("You have not allowed any app yet"), "{html}");
    let res = app
        .token(
            None,
            &[
                ("grant_type", "refresh_token"),
                ("client_id", &public),
                ("refresh_token", tokens["refresh_token"].as_str().unwrap()),
            ],
        )
        .await;
    assert_eq!(res.status(), 400, "the app was signed out");
    // The next authorization request asks for consent again.
    let q = crate::helpers::browser::query(&public, &[]);
    let res = browser.authorize(&q).await;
    assert_eq!(res.status(), 200);
    assert!(res.text().await.unwrap().contains("Allow"));
}

async fn a_password_change_needs_the_current_one_and_ends_everything_else(db: Db) {
    let app = TestApp::spawn(db).await;
    app.user("alice").await;
    let phone_app = app_named(&app, "ExampleApp").await;
    let phone = phone_sign_in(&app, (&phone_app.0, &phone_app.1)).await;
    let browser = Browser::new(&app);
    signed_in(&browser).await;
    let laptop = Browser::new(&app);
    signed_in(&laptop).await;

    let new = "a much better passphrase";
    let change = |current: &'static str, new: &'static str, again: &'static str| {
        let browser = &browser;
        async move {
            let html = page(browser, "/account/password").await;
            browser
                .post(
                    "/account/password",
                    &[
                        ("csrf", &field(&html, "csrf")),
                        ("current", current),
                        ("new", new),
                        ("again", again),
                    ],
                )
                .await
        }
    };
    for (current, again, error) in [
        (
            "wrong password",
            new,
            "The current password or code is incorrect",
        ),
        (
            PASSWORD,
            "something else entirely",
            "The new passwords do not match",
        ),
    ] {
        let res = change(current, new, again).await;
        assert_eq!(res.status(), 400);
        let html = res.text().await.unwrap();
        assert!(html.contains(error), "{html}");
    }
    let res = change(PASSWORD, "short", "short").await;
    assert_eq!(res.status(), 400);
    // Nothing changed so far.
    assert!(page(&laptop, "/account").await.contains("<h1>Devices</h1>"));

    let res = change(PASSWORD, new, new).await;
    assert_eq!(res.status(), 303);
    assert_eq!(res.headers()["location"], "/account/password?done=password");
    let html = page(&browser, "/account/password?done=password").await;
    assert!(html.contains("Your password was changed"), "{html}");
    // The other browser is signed out, and the phone's tokens stopped.
    assert!(page(&laptop, "/account").await.contains("Sign in"));
    let refresh = phone["refresh_token"].as_str().unwrap();
    assert_eq!(
        app.refresh((&phone_app.0, &phone_app.1), refresh)
            .await
            .status(),
        400
    );
    // The new password is the one that works.
    let client = (phone_app.0.as_str(), phone_app.1.as_str());
    assert_eq!(app.sign_in(client, "alice", PASSWORD).await.status(), 400);
    assert_eq!(app.sign_in(client, "alice", new).await.status(), 200);
}

async fn the_activity_shows_sign_ins_failures_and_replays(db: Db) {
    let app = TestApp::spawn(db).await;
    app.user("alice").await;
    let phone_app = app_named(&app, "ExampleApp").await;
    let client = (phone_app.0.as_str(), phone_app.1.as_str());
    assert_eq!(
        app.sign_in(client, "alice", "not my password")
            .await
            .status(),
        400
    );
    let first = phone_sign_in(&app, client).await;
    let stolen = first["refresh_token"].as_str().unwrap();
    app.refreshed(client, stolen).await;
    // Past the grace window, the rotated token comes back: a replay.
    app.advance(std::time::Duration::from_secs(60));
    assert_eq!(app.refresh(client, stolen).await.status(), 400);

    let browser = Browser::new(&app);
    signed_in(&browser).await;
    let html = page(&browser, "/account/activity").await;
    assert!(html.contains("Signed in to ExampleApp"), "{html}");
    assert!(html.contains("Signed in on the sign-in page"), "{html}");
    assert!(
        html.contains("Someone tried to sign in with a wrong password"),
        "{html}"
    );
    assert!(
        html.contains("A copy of a sign-in on ExampleApp was used again; we signed that device out to protect you"),
        "{html}"
    );
    assert!(html.contains("class=\"alarming\""), "{html}");
    // Another user's activity is not shown.
    app.user("bob").await;
    let bob = app.sign_in(client, "bob", "wrong").await;
    assert_eq!(bob.status(), 400);
    let html = page(&browser, "/account/activity").await;
    assert_eq!(html.matches("wrong password").count(), 1, "{html}");
}

async fn wrong_current_passwords_are_throttled_as_sign_ins_are(db: Db) {
    let app = TestApp::spawn_with(db, &[("TESSERA_THROTTLE__MAX_FAILURES_PER_USER", "2")]).await;
    app.user("alice").await;
    let browser = Browser::new(&app);
    signed_in(&browser).await;
    let new = "a much better passphrase";
    for current in ["wrong one", "wrong two", PASSWORD] {
        let html = page(&browser, "/account/password").await;
        let res = browser
            .post(
                "/account/password",
                &[
                    ("csrf", &field(&html, "csrf")),
                    ("current", current),
                    ("new", new),
                    ("again", new),
                ],
            )
            .await;
        // The right password too, once over the limit: one answer, nothing changed.
        assert_eq!(res.status(), 400, "{current}");
        let html = res.text().await.unwrap();
        assert!(html.contains("or there were too many attempts"), "{html}");
    }
    let throttled = app
        .with_conn(|c| {
            tessera::store::models::AuditEvent::list(c, None, Some("login.throttled"), 10)
                .unwrap()
                .len()
        })
        .await;
    assert_eq!(throttled, 1);
    let (id, secret) = app_named(&app, "ExampleApp").await;
    app.advance(std::time::Duration::from_secs(3600));
    assert_eq!(
        app.sign_in((&id, &secret), "alice", new).await.status(),
        400
    );
    assert_eq!(
        app.sign_in((&id, &secret), "alice", PASSWORD)
            .await
            .status(),
        200
    );
}

/// Posts a change on the sign-in methods page, with `current` as the password.
async fn change_method(browser: &Browser<'_>, change: &str, current: &str) -> reqwest::Response {
    let html = page(browser, "/account/sign-in-methods").await;
    browser
        .post(
            "/account/sign-in-methods",
            &[
                ("csrf", &field(&html, "csrf")),
                ("change", change),
                ("current", current),
            ],
        )
        .await
}

/// The text between `start` and the next `end` in `html`.
fn between<'a>(html: &'a str, start: &str, end: &str) -> &'a str {
    let from = html
        .find(start)
        .unwrap_or_else(|| panic!("no {start} in {html}"))
        + start.len();
    &html[from..from + html[from..].find(end).unwrap()]
}

async fn an_authenticator_app_is_set_up_with_the_password_and_a_first_code(db: Db) {
    let app = TestApp::spawn(db).await;
    app.user("alice").await;
    let browser = Browser::new(&app);
    signed_in(&browser).await;
    let html = page(&browser, "/account/sign-in-methods").await;
    assert!(
        html.contains("<h1>Sign-in methods</h1>") && html.contains("Not set up"),
        "{html}"
    );

    // Without the current password, nothing starts.
    let res = change_method(&browser, "set_up_app", "wrong password").await;
    assert_eq!(res.status(), 400);
    assert!(res
        .text()
        .await
        .unwrap()
        .contains("The current password or code is incorrect"));
    let res = browser.get("/account/authenticator").await;
    assert_eq!(res.headers()["location"], "/account/sign-in-methods");
    // Nor without the CSRF token.
    let res = browser
        .post(
            "/account/sign-in-methods",
            &[("change", "set_up_app"), ("current", PASSWORD)],
        )
        .await;
    assert_eq!(res.status(), 403);

    let res = change_method(&browser, "set_up_app", PASSWORD).await;
    assert_eq!(res.headers()["location"], "/account/authenticator");
    let setup = page(&browser, "/account/authenticator").await;
    assert!(
        setup.contains("<svg") && setup.contains("aria-label=\"QR code"),
        "{setup}"
    );
    let secret = between(&setup, "<code class=\"secret\">", "</code>").to_owned();
    let code_now = |secret: &str| {
        let app_totp =
            totp_rs::Totp::from_url(format!("otpauth://totp/T:a?secret={secret}")).unwrap();
        app_totp
            .generate(u64::try_from(app.clock.now().millis() / 1000).unwrap())
            .to_string()
    };
    let right = code_now(&secret);
    let wrong = if right == "000000" {
        "111111"
    } else {
        "000000"
    };
    let res = browser
        .post(
            "/account/authenticator",
            &[("csrf", &field(&setup, "csrf")), ("code", wrong)],
        )
        .await;
    assert_eq!(res.status(), 400);
    let again = res.text().await.unwrap();
    assert!(
        again.contains("not the one the app shows") && again.contains(&secret),
        "{again}"
    );
    let res = browser
        .post(
            "/account/authenticator",
            &[("csrf", &field(&again, "csrf")), ("code", &right)],
        )
        .await;
    assert_eq!(
        res.headers()["location"],
        "/account/sign-in-methods?done=app_added"
    );
    let html = page(&browser, "/account/sign-in-methods?done=app_added").await;
    assert!(html.contains("Your authenticator app is set up"), "{html}");
    assert!(html.contains("Remove the authenticator app"), "{html}");
    // Set up already: a second set-up is refused until it is removed.
    let res = change_method(&browser, "set_up_app", PASSWORD).await;
    assert_eq!(res.status(), 400);
    // A current code from the app proves it is the user as the password does, once: the
    // code that finished the set-up is spent, the next step's works, and not twice.
    app.advance(std::time::Duration::from_secs(30));
    let spent = change_method(&browser, "recovery_codes", &right).await;
    assert_eq!(spent.status(), 400, "the set-up's code, again");
    let next = code_now(&secret);
    let res = change_method(&browser, "recovery_codes", &next).await;
    assert_eq!(res.status(), 200);
    assert!(res
        .text()
        .await
        .unwrap()
        .contains("Your new recovery codes"));
    let res = change_method(&browser, "recovery_codes", &next).await;
    assert_eq!(res.status(), 400, "a code proves it once");
    // A new password takes the current one: a phone and an open browser are not enough.
    app.advance(std::time::Duration::from_secs(30));
    let html = page(&browser, "/account/password").await;
    let code = code_now(&secret);
    let res = browser
        .post(
            "/account/password",
            &[
                ("csrf", &field(&html, "csrf")),
                ("current", &code),
                ("new", "a brand new passphrase"),
                ("again", "a brand new passphrase"),
            ],
        )
        .await;
    assert_eq!(
        res.status(),
        400,
        "an app code does not change the password"
    );

    let res = change_method(&browser, "remove_app", PASSWORD).await;
    assert_eq!(
        res.headers()["location"],
        "/account/sign-in-methods?done=app_removed"
    );
    let html = page(&browser, "/account/sign-in-methods").await;
    assert!(html.contains("Not set up"), "{html}");
    let activity = page(&browser, "/account/activity").await;
    assert!(
        activity.contains("You set up an authenticator app"),
        "{activity}"
    );
    assert!(
        activity.contains("You removed an authenticator app"),
        "{activity}"
    );
}

async fn recovery_codes_are_shown_once_and_replaced_as_a_set(db: Db) {
    let app = TestApp::spawn(db).await;
    let user = app.user("alice").await;
    let browser = Browser::new(&app);
    signed_in(&browser).await;
    assert!(page(&browser, "/account/sign-in-methods")
        .await
        .contains("You have none."));
    let res = change_method(&browser, "recovery_codes", PASSWORD).await;
    assert_eq!(res.status(), 200);
    let html = res.text().await.unwrap();
    let codes: Vec<String> = html
        .split("<li><code>")
        .skip(1)
        .map(|rest| rest[..rest.find("</code>").unwrap()].to_owned())
        .collect();
    assert_eq!(codes.len(), 10, "{html}");
    assert!(page(&browser, "/account/sign-in-methods")
        .await
        .contains("10 left."));
    // One used: nine left. A new set: the old codes are gone.
    let master = tessera::domain::crypto::MasterKey::from_text(&app.master_key).unwrap();
    let (first, now) = (codes[0].clone(), app.clock.now());
    let id = user.clone();
    let spent = app
        .with_conn(move |c| {
            tessera::domain::second_factor::spend_recovery_code(c, &master, &id.into(), &first, now)
                .unwrap()
        })
        .await;
    assert!(spent);
    assert!(page(&browser, "/account/sign-in-methods")
        .await
        .contains("9 left."));
    let res = change_method(&browser, "recovery_codes", PASSWORD).await;
    let fresh = res.text().await.unwrap();
    assert!(codes.iter().all(|c| !fresh.contains(c.as_str())), "{fresh}");
    assert!(page(&browser, "/account/sign-in-methods")
        .await
        .contains("10 left."));
    let activity = page(&browser, "/account/activity").await;
    assert_eq!(
        activity.matches("You got new recovery codes").count(),
        2,
        "{activity}"
    );
}
