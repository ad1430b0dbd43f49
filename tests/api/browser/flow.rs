//! The authorization-code flow through the pages: sign-in, consent, and what comes back.

use serde_json::Value;

use crate::helpers::browser::{
    code_for, confidential, exchange, query, redirect_params, setup, Browser, VERIFIER,
};
use crate::helpers::{both_backends, claims, Db, TestApp, PASSWORD};

both_backends!(
    user_signs_in_consents_and_the_app_gets_tokens,
    denied_consent_redirects_with_access_denied,
    untrusted_client_or_redirect_never_redirects,
    redirect_uri_may_be_omitted_with_a_single_registration,
    malformed_authorize_requests_redirect_once_the_client_is_trusted,
    consent_is_remembered_until_revoked,
);

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
            tessera::store::models::TokenFamily::find(c, &sid.into())
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
