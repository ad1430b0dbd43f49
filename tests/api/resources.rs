//! Resource indicators (RFC 8707): access tokens for one API carry it as `aud`, with only its
//! scopes; a grant keeps its resources and a later request may narrow them, never widen.

use serde_json::{json, Value};
use tessera::domain::client::GrantType;

use crate::helpers::browser::{
    code_for, confidential, exchange, query, redirect_params, setup, Browser, REDIRECT, VERIFIER,
};
use crate::helpers::{assert_oauth_error, both_backends, claims, Db, TestApp, PASSWORD};

both_backends!(
    a_token_for_a_resource_names_it_as_audience_with_only_its_scopes,
    a_refresh_may_narrow_to_some_of_the_familys_resources,
    an_authorization_request_names_resources_and_the_exchange_may_narrow,
    a_remembered_consent_covers_only_the_resources_it_showed,
    before_sign_in_an_unknown_resource_reads_like_a_registered_one,
);

const PHOTOS: &str = "https://photos.example.com/api";
const PROFILE: &str = "https://profile.example.com";
const BILLING: &str = "urn:example:billing";

/// Registers the three resource servers with the real CLI.
async fn register_resources(app: &TestApp) {
    for (uri, scope) in [
        (PHOTOS, "photos:read photos:write"),
        (PROFILE, "profile"),
        (BILLING, "billing"),
    ] {
        let out = app
            .admin(
                &["resource", "add", uri, "--scope", scope, "-o", "json"],
                None,
            )
            .await;
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let json: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(json["uri"], uri);
    }
}

/// A confidential client with the password, refresh and client_credentials grants.
async fn client(app: &TestApp) -> (String, String) {
    let (id, secret) = app
        .client(
            &[
                GrantType::Password,
                GrantType::RefreshToken,
                GrantType::ClientCredentials,
            ],
            false,
            "profile photos:read",
        )
        .await;
    (id, secret.unwrap())
}

async fn password_grant(
    app: &TestApp,
    c: (&str, &str),
    extra: &[(&str, &str)],
) -> reqwest::Response {
    let mut form = vec![
        ("grant_type", "password"),
        ("username", "alice"),
        ("password", PASSWORD),
    ];
    form.extend_from_slice(extra);
    app.token(Some(c), &form).await
}

async fn ok(res: reqwest::Response) -> Value {
    let status = res.status();
    let body: Value = res.json().await.unwrap();
    assert_eq!(status, 200, "{body}");
    body
}

async fn a_token_for_a_resource_names_it_as_audience_with_only_its_scopes(db: Db) {
    let app = TestApp::spawn(db).await;
    register_resources(&app).await;
    let (id, secret) = client(&app).await;
    let c = (id.as_str(), secret.as_str());
    app.user("alice").await;

    // Without a resource, nothing changes: the issuer is the audience.
    let plain = ok(password_grant(&app, c, &[]).await).await;
    let at = claims(plain["access_token"].as_str().unwrap());
    assert_eq!(at["aud"], at["iss"]);
    assert_eq!(plain["scope"], "photos:read profile");

    // One resource: its URI, and only the scopes it accepts.
    let photos = ok(password_grant(&app, c, &[("resource", PHOTOS)]).await).await;
    assert_eq!(photos["scope"], "photos:read");
    let at = claims(photos["access_token"].as_str().unwrap());
    assert_eq!(at["aud"], PHOTOS);
    assert_eq!(at["scope"], "photos:read");

    // Two: both, as an array.
    let both =
        ok(password_grant(&app, c, &[("resource", PROFILE), ("resource", PHOTOS)]).await).await;
    assert_eq!(both["scope"], "photos:read profile");
    assert_eq!(
        claims(both["access_token"].as_str().unwrap())["aud"],
        json!([PHOTOS, PROFILE])
    );

    // Unknown or malformed resources are invalid_target; no scope in common is invalid_scope.
    for bad in [
        "https://unknown.example.com",
        "https://photos.example.com/api#frag",
        "/api",
    ] {
        assert_oauth_error(
            password_grant(&app, c, &[("resource", bad)]).await,
            400,
            "invalid_target",
        )
        .await;
    }
    assert_oauth_error(
        password_grant(&app, c, &[("resource", PROFILE), ("scope", "photos:read")]).await,
        400,
        "invalid_scope",
    )
    .await;
    // At most eight per request; the same one twice is once.
    let many: Vec<String> = (0..9)
        .map(|i| format!("https://api{i}.example.com"))
        .collect();
    let form: Vec<(&str, &str)> = many.iter().map(|u| ("resource", u.as_str())).collect();
    assert_oauth_error(password_grant(&app, c, &form).await, 400, "invalid_target").await;
    let twice =
        ok(password_grant(&app, c, &[("resource", PHOTOS), ("resource", PHOTOS)]).await).await;
    assert_eq!(
        claims(twice["access_token"].as_str().unwrap())["aud"],
        PHOTOS
    );

    // client_credentials too.
    let cc = ok(app
        .token(
            Some(c),
            &[("grant_type", "client_credentials"), ("resource", PHOTOS)],
        )
        .await)
    .await;
    assert_eq!(claims(cc["access_token"].as_str().unwrap())["aud"], PHOTOS);
    assert_oauth_error(
        app.token(
            Some(c),
            &[
                ("grant_type", "client_credentials"),
                ("resource", "https://x.example"),
            ],
        )
        .await,
        400,
        "invalid_target",
    )
    .await;

    // A token for another API is not accepted here; one for this server is.
    let res = app.userinfo(photos["access_token"].as_str().unwrap()).await;
    assert_eq!(res.status(), 401);
    assert!(res.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .contains("invalid_token"));
    assert_eq!(
        app.userinfo(plain["access_token"].as_str().unwrap())
            .await
            .status(),
        200
    );
    // The resource server that introspects it sees it active, for itself.
    let seen = app
        .introspect(c, photos["access_token"].as_str().unwrap())
        .await;
    assert_eq!(seen["active"], true, "{seen}");
    assert_eq!(seen["aud"], PHOTOS);
    let seen = app
        .introspect(c, both["refresh_token"].as_str().unwrap())
        .await;
    assert_eq!(seen["aud"], json!([PHOTOS, PROFILE]), "{seen}");

    // The CLI lists them, refuses duplicates and bad URIs, and removes them.
    let list: Value = serde_json::from_slice(
        &app.admin(&["resource", "list", "-o", "json"], None)
            .await
            .stdout,
    )
    .unwrap();
    let uris: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["uri"].as_str().unwrap())
        .collect();
    assert_eq!(uris, [PHOTOS, PROFILE, BILLING]);
    for (args, says) in [
        (
            vec!["resource", "add", PHOTOS, "--scope", "photos:read"],
            "already registered",
        ),
        (
            vec!["resource", "add", "not a uri", "--scope", "x"],
            "absolute URI",
        ),
        (
            vec!["resource", "remove", "https://nothing", "--yes"],
            "no resource",
        ),
    ] {
        let out = app.admin(&args, None).await;
        assert!(!out.status.success(), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(says), "{args:?}: {stderr}");
    }
    let out = app
        .admin(&["resource", "remove", BILLING, "--yes"], None)
        .await;
    assert!(out.status.success());
    assert_oauth_error(
        app.token(
            Some(c),
            &[("grant_type", "client_credentials"), ("resource", BILLING)],
        )
        .await,
        400,
        "invalid_target",
    )
    .await;
    let events: Value = serde_json::from_slice(
        &app.admin(&["audit", "list", "--kind", "resource", "-o", "json"], None)
            .await
            .stdout,
    )
    .unwrap();
    assert_eq!(events.as_array().unwrap().len(), 4, "{events}");
}

async fn a_refresh_may_narrow_to_some_of_the_familys_resources(db: Db) {
    let app = TestApp::spawn(db).await;
    register_resources(&app).await;
    let (id, secret) = client(&app).await;
    let c = (id.as_str(), secret.as_str());
    app.user("alice").await;
    let refresh = |token: String, resource: Option<&'static str>| {
        let app = &app;
        async move {
            let mut form = vec![
                ("grant_type", "refresh_token"),
                ("refresh_token", token.as_str()),
            ];
            if let Some(r) = resource {
                form.push(("resource", r));
            }
            app.token(Some(c), &form).await
        }
    };
    let first =
        ok(password_grant(&app, c, &[("resource", PHOTOS), ("resource", PROFILE)]).await).await;
    let rt = first["refresh_token"].as_str().unwrap().to_owned();

    // Narrowed to one: its audience and its scopes.
    let narrowed = ok(refresh(rt.clone(), Some(PHOTOS)).await).await;
    let at = claims(narrowed["access_token"].as_str().unwrap());
    assert_eq!(at["aud"], PHOTOS);
    assert_eq!(narrowed["scope"], "photos:read");
    // The family keeps both: a plain refresh is for both again (on PostgreSQL this is the
    // one-statement rotation).
    let rt = narrowed["refresh_token"].as_str().unwrap().to_owned();
    let plain = ok(refresh(rt, None).await).await;
    assert_eq!(
        claims(plain["access_token"].as_str().unwrap())["aud"],
        json!([PHOTOS, PROFILE])
    );
    assert_eq!(plain["scope"], "photos:read profile");

    // Outside the family (registered or not): invalid_target; a resource that accepts none of
    // the requested scope: invalid_scope. Neither spends the token.
    let rt = plain["refresh_token"].as_str().unwrap().to_owned();
    let with_scope = |token: String, resource: &'static str, scope: &'static str| {
        let app = &app;
        async move {
            app.token(
                Some(c),
                &[
                    ("grant_type", "refresh_token"),
                    ("refresh_token", token.as_str()),
                    ("resource", resource),
                    ("scope", scope),
                ],
            )
            .await
        }
    };
    assert_oauth_error(
        with_scope(rt.clone(), PROFILE, "photos:read").await,
        400,
        "invalid_scope",
    )
    .await;
    for outside in [BILLING, "https://unknown.example.com"] {
        assert_oauth_error(
            refresh(rt.clone(), Some(outside)).await,
            400,
            "invalid_target",
        )
        .await;
    }
    let still = ok(refresh(rt, Some(PROFILE)).await).await;
    assert_eq!(
        claims(still["access_token"].as_str().unwrap())["aud"],
        PROFILE
    );
    assert_eq!(still["scope"], "profile");
    // A scope and a resource together: both narrow.
    let rt = still["refresh_token"].as_str().unwrap().to_owned();
    let both = ok(with_scope(rt, PHOTOS, "photos:read").await).await;
    assert_eq!(
        claims(both["access_token"].as_str().unwrap())["aud"],
        PHOTOS
    );
    assert_eq!(both["scope"], "photos:read");

    // A family granted for no resource cannot be narrowed to one.
    let plain = ok(password_grant(&app, c, &[]).await).await;
    let rt = plain["refresh_token"].as_str().unwrap().to_owned();
    assert_oauth_error(
        refresh(rt.clone(), Some(PHOTOS)).await,
        400,
        "invalid_target",
    )
    .await;
    let again = ok(refresh(rt, None).await).await;
    let at = claims(again["access_token"].as_str().unwrap());
    assert_eq!(at["aud"], at["iss"]);

    // `family show` says what the family is for.
    let sid = claims(first["access_token"].as_str().unwrap())["sid"]
        .as_str()
        .unwrap()
        .to_owned();
    let shown: Value = serde_json::from_slice(
        &app.admin(&["family", "show", &sid, "-o", "json"], None)
            .await
            .stdout,
    )
    .unwrap();
    assert_eq!(
        shown["family"]["resources"],
        json!([PHOTOS, PROFILE]),
        "{shown}"
    );
}

async fn an_authorization_request_names_resources_and_the_exchange_may_narrow(db: Db) {
    let app = TestApp::spawn(db).await;
    register_resources(&app).await;
    let client_id = setup(&app).await;
    let browser = Browser::new(&app);
    let base = query(&client_id, &[("resource", PHOTOS), ("resource", PROFILE)])
        .replace("scope=profile", "scope=profile+photos%3Aread");

    // The consent page says where the access is for.
    let html = browser
        .sign_in(&base, "alice", PASSWORD)
        .await
        .text()
        .await
        .unwrap();
    assert!(html.contains(PHOTOS) && html.contains(PROFILE), "{html}");

    // Signed in: an unknown or malformed resource goes back to the client as invalid_target;
    // one that accepts none of the scope, as invalid_scope.
    for (q, error) in [
        (
            format!("{base}&resource=https%3A%2F%2Funknown.example.com"),
            "invalid_target",
        ),
        (
            format!("{base}&resource=https%3A%2F%2Fx.example%2F%23frag"),
            "invalid_target",
        ),
        (query(&client_id, &[("resource", BILLING)]), "invalid_scope"),
    ] {
        let params = redirect_params(&browser.authorize(&q).await);
        assert_eq!(params["error"], error, "{q}");
        assert_eq!(params["state"], "af0ifjsldkj");
    }
    let code = redirect_params(&browser.decide(&html, "approve").await)["code"].clone();

    // A resource the request did not name: invalid_target, and the code is not spent.
    let with = |resource: &'static str| {
        let (app, client_id, code) = (&app, client_id.clone(), code.clone());
        async move {
            app.token(
                None,
                &[
                    ("grant_type", "authorization_code"),
                    ("client_id", &client_id),
                    ("code", &code),
                    ("redirect_uri", REDIRECT),
                    ("code_verifier", VERIFIER),
                    ("resource", resource),
                ],
            )
            .await
        }
    };
    assert_oauth_error(with(BILLING).await, 400, "invalid_target").await;
    let tokens = ok(with(PROFILE).await).await;
    assert_eq!(
        claims(tokens["access_token"].as_str().unwrap())["aud"],
        PROFILE
    );
    assert_eq!(tokens["scope"], "profile");
    // The family has both; a plain refresh is for both.
    let refreshed = ok(app
        .token(
            None,
            &[
                ("grant_type", "refresh_token"),
                ("client_id", &client_id),
                ("refresh_token", tokens["refresh_token"].as_str().unwrap()),
            ],
        )
        .await)
    .await;
    assert_eq!(
        claims(refreshed["access_token"].as_str().unwrap())["aud"],
        json!([PHOTOS, PROFILE])
    );

    // Without resources the flow is as it always was.
    let plain = query(&client_id, &[]);
    let res = browser.authorize(&plain).await;
    let res = if res.status() == 200 {
        let html = res.text().await.unwrap();
        browser.decide(&html, "approve").await
    } else {
        res
    };
    let code = redirect_params(&res)["code"].clone();
    let tokens = ok(exchange(&app, &client_id, &code, VERIFIER).await).await;
    let at = claims(tokens["access_token"].as_str().unwrap());
    assert_eq!(at["aud"], at["iss"]);
}

/// A consent covers the resources its page named as well as the scope: a request that names a
/// resource the user never saw asks again, even for scopes already allowed.
async fn a_remembered_consent_covers_only_the_resources_it_showed(db: Db) {
    let app = TestApp::spawn(db).await;
    register_resources(&app).await;
    setup(&app).await;
    let client_id = confidential(&app).await;
    let browser = Browser::new(&app);
    code_for(&app, &browser, &client_id).await;
    // The same scope again: remembered, straight back with a code.
    let res = browser.authorize(&query(&client_id, &[])).await;
    assert!(redirect_params(&res).contains_key("code"));

    let for_profile = query(&client_id, &[("resource", PROFILE)]);
    let res = browser.authorize(&for_profile).await;
    assert_eq!(res.status(), 200, "a new resource asks again");
    let html = res.text().await.unwrap();
    assert!(html.contains(PROFILE), "{html}");
    let res = browser.decide(&html, "approve").await;
    assert!(redirect_params(&res).contains_key("code"));
    // Now remembered, with or without the resource.
    for q in [&for_profile, &query(&client_id, &[])] {
        let res = browser.authorize(q).await;
        assert!(redirect_params(&res).contains_key("code"), "{q}");
    }
    let out = app
        .admin(&["user", "consents", "alice", "-o", "json"], None)
        .await;
    let consents: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(consents[0]["resources"], json!([PROFILE]), "{consents}");
}

/// Until someone signs in, `/authorize` does not say which resource URIs are registered: an
/// unknown one, and one that accepts none of the scope, lead to the login page like any other.
/// Signed in, each goes back to the client with its error.
async fn before_sign_in_an_unknown_resource_reads_like_a_registered_one(db: Db) {
    let app = TestApp::spawn(db).await;
    register_resources(&app).await;
    let client_id = setup(&app).await;
    let browser = Browser::new(&app);
    let unknown = query(&client_id, &[("resource", "https://unknown.example.com")]);
    let unscoped = query(&client_id, &[("resource", BILLING)]);
    let known = query(&client_id, &[("resource", PROFILE)]);
    let page = |q: String| {
        let browser = &browser;
        async move {
            let res = browser.authorize(&q).await;
            assert_eq!(res.status(), 200, "{q}");
            let html = res.text().await.unwrap();
            assert!(html.contains("Sign in"), "{q}: {html}");
            html.replace(&q, "")
        }
    };
    let shown = page(known.clone()).await;
    for q in [&unknown, &unscoped] {
        let html = page(q.clone()).await;
        // The same page but for the hidden fields that carry each request and its CSRF token.
        let strip = |h: &str| {
            h.lines()
                .filter(|l| !l.contains("type=\"hidden\""))
                .collect::<Vec<_>>()
                .join("\n")
        };
        assert_eq!(strip(&html), strip(&shown), "{q}");
    }
    browser.sign_in(&known, "alice", PASSWORD).await;
    for (q, error) in [(unknown, "invalid_target"), (unscoped, "invalid_scope")] {
        let params = redirect_params(&browser.authorize(&q).await);
        assert_eq!(params["error"], error, "{q}");
    }
}
