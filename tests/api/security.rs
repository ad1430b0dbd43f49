//! Findings of the security review, each pinned by a test that failed before its fix.

use serde_json::Value;
use tessera::domain::client::GrantType;

use crate::helpers::browser::{
    code_for, exchange, field, query, setup, Browser, REDIRECT, VERIFIER,
};
use crate::helpers::{assert_oauth_error, both_backends, claims, Db, TestApp, PASSWORD};

both_backends!(
    introspection_by_a_public_client_reads_as_failed_authentication,
    an_access_token_without_a_refresh_token_can_still_be_revoked,
    another_clients_token_or_code_reads_as_unknown,
    every_refused_bearer_token_gets_one_description,
    a_code_replay_without_proof_of_possession_changes_nothing,
    a_grace_retry_is_audited_and_another_user_agent_is_reuse,
    a_consent_approves_only_the_request_its_page_showed,
    narrowing_a_clients_scope_reaches_its_families,
    the_metadata_lists_only_scopes_published_on_purpose,
    only_a_trusted_proxy_names_the_client_address,
);

/// A password grant for a client that may not refresh still starts a family, so its access
/// token has a `sid` and revoking the user's families reaches it.
async fn an_access_token_without_a_refresh_token_can_still_be_revoked(db: Db) {
    let app = TestApp::spawn(db).await;
    let (id, secret) = app.client(&[GrantType::Password], false, "read").await;
    let secret = secret.unwrap();
    app.user("alice").await;
    let tokens: Value = app.password_grant((&id, &secret), "alice").await;
    assert!(tokens.get("refresh_token").is_none(), "{tokens}");
    let access = tokens["access_token"].as_str().unwrap();
    assert!(claims(access)["sid"].is_string(), "{}", claims(access));
    assert_eq!(app.userinfo(access).await.status(), 200);
    let out = app
        .admin(&["family", "revoke", "--user", "alice", "--yes"], None)
        .await;
    assert!(out.status.success());
    assert_eq!(app.userinfo(access).await.status(), 401);
}

/// A refresh token or an authorization code presented by another client gets the answer an
/// unknown one gets: the description must not confirm that it is live.
async fn another_clients_token_or_code_reads_as_unknown(db: Db) {
    let app = TestApp::spawn(db).await;
    let (id, secret) = app.password_client().await;
    let (other, other_secret) = app.password_client().await;
    // A public client for the browser flow, and alice.
    let public = setup(&app).await;
    let tokens = app.password_grant((&id, &secret), "alice").await;
    let description = |body: Value| body["error_description"].as_str().unwrap().to_owned();
    let foreign = description(
        assert_oauth_error(
            app.refresh(
                (&other, &other_secret),
                tokens["refresh_token"].as_str().unwrap(),
            )
            .await,
            400,
            "invalid_grant",
        )
        .await,
    );
    let unknown_token = format!("tsr_{}", "A".repeat(65));
    let unknown = description(
        assert_oauth_error(
            app.refresh((&other, &other_secret), &unknown_token).await,
            400,
            "invalid_grant",
        )
        .await,
    );
    assert_eq!(foreign, unknown);

    let spec = tessera::domain::client::ClientSpec {
        name: "Another app".into(),
        public: true,
        grants: vec![GrantType::AuthorizationCode],
        scope: tessera::domain::scope::Scope::parse("profile").unwrap(),
        redirect_uris: vec![url::Url::parse(REDIRECT).unwrap()],
        openid: Default::default(),
        app: Default::default(),
    };
    let other_public = app.register(spec).await.0;
    let code = code_for(&app, &Browser::new(&app), &public).await;
    let foreign = description(
        assert_oauth_error(
            exchange(&app, &other_public, &code, VERIFIER).await,
            400,
            "invalid_grant",
        )
        .await,
    );
    let unknown = description(
        assert_oauth_error(
            exchange(&app, &other_public, "tsc_unknown", VERIFIER).await,
            400,
            "invalid_grant",
        )
        .await,
    );
    assert_eq!(foreign, unknown);
}

/// Expired, revoked, forged and malformed access tokens all get one fixed description: no
/// library text, nothing that tells which check failed.
async fn every_refused_bearer_token_gets_one_description(db: Db) {
    let app = TestApp::spawn_with(db, &[("TESSERA_TOKENS__ACCESS_TTL", "60s")]).await;
    let (id, secret) = app.password_client().await;
    app.user("alice").await;
    let c = (id.as_str(), secret.as_str());
    let revoked = app.password_grant(c, "alice").await;
    let revoked = revoked["access_token"].as_str().unwrap().to_owned();
    assert_eq!(app.revoke(c, &revoked).await.status(), 200);
    let expiring = app.password_grant(c, "alice").await;
    let expiring = expiring["access_token"].as_str().unwrap().to_owned();
    let mut parts: Vec<String> = expiring.split('.').map(str::to_owned).collect();
    parts[1] = "eyJub3QiOiJjbGFpbXMifQ".into();
    let wrong_claims = parts.join(".");
    app.advance(std::time::Duration::from_secs(120));
    let mut descriptions = std::collections::BTreeSet::new();
    for token in [
        revoked.as_str(),
        &expiring,
        &wrong_claims,
        "garbage",
        "a.b.c",
    ] {
        let res = app.userinfo(token).await;
        assert_eq!(res.status(), 401, "{token}");
        let challenge = res.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .to_owned();
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["error"], "invalid_token");
        let text = body["error_description"].as_str().unwrap().to_owned();
        assert!(challenge.contains(&text), "{challenge}");
        descriptions.insert(text);
    }
    assert_eq!(descriptions.len(), 1, "{descriptions:?}");
}

/// Whoever saw a used authorization code (in a log, say) but has no verifier cannot sign its
/// user out: the replay is refused and the family stands. A replay with the verifier still
/// revokes it (RFC 6749 §4.1.2).
async fn a_code_replay_without_proof_of_possession_changes_nothing(db: Db) {
    let app = TestApp::spawn(db).await;
    let client_id = setup(&app).await;
    let code = code_for(&app, &Browser::new(&app), &client_id).await;
    let res = exchange(&app, &client_id, &code, VERIFIER).await;
    assert_eq!(res.status(), 200);
    let tokens: Value = res.json().await.unwrap();
    let wrong = "A".repeat(43);
    for verifier in [wrong.as_str(), ""] {
        assert_oauth_error(
            exchange(&app, &client_id, &code, verifier).await,
            400,
            "invalid_grant",
        )
        .await;
    }
    let refresh = |rt: String| {
        let app = &app;
        let client_id = client_id.clone();
        async move {
            app.token(
                None,
                &[
                    ("grant_type", "refresh_token"),
                    ("client_id", &client_id),
                    ("refresh_token", &rt),
                ],
            )
            .await
        }
    };
    let res = refresh(tokens["refresh_token"].as_str().unwrap().to_owned()).await;
    assert_eq!(res.status(), 200, "the family still stands");
    let next: Value = res.json().await.unwrap();
    // With the verifier, the replay proves possession and revokes the family.
    assert_oauth_error(
        exchange(&app, &client_id, &code, VERIFIER).await,
        400,
        "invalid_grant",
    )
    .await;
    assert_oauth_error(
        refresh(next["refresh_token"].as_str().unwrap().to_owned()).await,
        400,
        "invalid_grant",
    )
    .await;
}

/// A retry inside the grace window is answered, audited and shown in the lineage; the same
/// token from another user agent inside the window is reuse.
async fn a_grace_retry_is_audited_and_another_user_agent_is_reuse(db: Db) {
    let app = TestApp::spawn(db).await;
    let (id, secret) = app.password_client().await;
    app.user("alice").await;
    let c = (id.as_str(), secret.as_str());
    let first = app.password_grant(c, "alice").await;
    let sid = claims(first["access_token"].as_str().unwrap())["sid"]
        .as_str()
        .unwrap()
        .to_owned();
    let rt = first["refresh_token"].as_str().unwrap();
    let second = app.refreshed(c, rt).await;
    let retry = app.refreshed(c, rt).await;
    assert_eq!(retry["refresh_token"], second["refresh_token"]);

    let json = |out: std::process::Output| -> Value {
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let events = json(
        app.admin(
            &[
                "audit",
                "list",
                "--kind",
                "refresh.grace_retry",
                "-o",
                "json",
            ],
            None,
        )
        .await,
    );
    let events = events.as_array().unwrap();
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["subject"], sid.as_str());
    let detail = events[0]["detail"].as_str().unwrap();
    assert!(
        detail.contains("retried") && detail.contains("tessera-tests/1.0"),
        "{detail}"
    );
    let shown = json(
        app.admin(&["family", "show", &sid, "-o", "json"], None)
            .await,
    );
    assert_eq!(
        shown["grace_retries"].as_array().unwrap().len(),
        1,
        "{shown}"
    );
    let text = String::from_utf8(app.admin(&["family", "show", &sid], None).await.stdout).unwrap();
    assert!(text.contains("grace retries"), "{text}");

    // Inside the window, but another user agent: reuse, and the family is revoked.
    let res = app
        .http
        .post(format!("{}/token", app.address))
        .header(reqwest::header::USER_AGENT, "someone-else/1.0")
        .basic_auth(c.0, Some(c.1))
        .form(&[("grant_type", "refresh_token"), ("refresh_token", rt)])
        .send()
        .await
        .unwrap();
    let body = assert_oauth_error(res, 400, "invalid_grant").await;
    assert!(body["error_description"]
        .as_str()
        .unwrap()
        .contains("reuse"));
    assert_oauth_error(
        app.refresh(c, second["refresh_token"].as_str().unwrap())
            .await,
        400,
        "invalid_grant",
    )
    .await;
}

/// The consent form's tokens are valid for this browser, but a decision posted with them for
/// another request (a wider scope here) is refused: nothing is granted that no page showed.
async fn a_consent_approves_only_the_request_its_page_showed(db: Db) {
    let app = TestApp::spawn(db).await;
    let client_id = setup(&app).await;
    let browser = Browser::new(&app);
    let q = query(&client_id, &[]);
    let page = browser
        .sign_in(&q, "alice", PASSWORD)
        .await
        .text()
        .await
        .unwrap();
    assert!(page.contains("Allow"), "{page}");
    let shown = field(&page, "authorize");
    assert!(shown.contains("scope=profile&"), "{shown}");
    let wider = shown.replacen("scope=profile&", "scope=profile+photos%3Aread&", 1);
    let mut form = vec![
        ("csrf", field(&page, "csrf")),
        ("authorize", wider),
        ("decision", "approve".to_owned()),
    ];
    if page.contains("name=\"shown\"") {
        form.push(("shown", field(&page, "shown")));
    }
    let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let res = browser.post("/consent", &form).await;
    assert_eq!(res.status(), 403);
    assert!(res.headers().get("location").is_none());
    // The page's own request is still approved.
    let res = browser.decide(&page, "approve").await;
    assert_eq!(res.status(), 303);
}

/// After `client update --scope`, a family granted more refreshes to what the client may
/// still ask for, and the command says how many families it narrowed.
async fn narrowing_a_clients_scope_reaches_its_families(db: Db) {
    let app = TestApp::spawn(db).await;
    let (id, secret) = app.password_client().await;
    app.user("alice").await;
    let c = (id.as_str(), secret.as_str());
    let tokens = app.password_grant(c, "alice").await;
    assert_eq!(tokens["scope"], "read write");
    let out = app
        .admin(
            &["client", "update", &id, "--scope", "read", "-o", "json"],
            None,
        )
        .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let shown: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(shown["narrowed_families"], 1, "{shown}");
    let next = app
        .refreshed(c, tokens["refresh_token"].as_str().unwrap())
        .await;
    assert_eq!(next["scope"], "read");
    assert_eq!(
        claims(next["access_token"].as_str().unwrap())["scope"],
        "read"
    );

    // A code issued before the change starts its family within the client's new scope.
    let spec = tessera::domain::client::ClientSpec {
        name: "Photo Sharing".into(),
        public: true,
        grants: vec![GrantType::AuthorizationCode, GrantType::RefreshToken],
        scope: tessera::domain::scope::Scope::parse("profile photos:read").unwrap(),
        redirect_uris: vec![url::Url::parse(REDIRECT).unwrap()],
        openid: Default::default(),
        app: Default::default(),
    };
    let public = app.register(spec).await.0;
    let code = code_for(&app, &Browser::new(&app), &public).await;
    let out = app
        .admin(
            &["client", "update", &public, "--scope", "photos:read"],
            None,
        )
        .await;
    assert!(out.status.success());
    let res = exchange(&app, &public, &code, VERIFIER).await;
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["scope"], "", "profile was taken away: {body}");
}

/// `scopes_supported` lists what the configuration publishes, never what clients were granted.
async fn the_metadata_lists_only_scopes_published_on_purpose(db: Db) {
    let metadata = |app: &TestApp| {
        let url = format!("{}/.well-known/oauth-authorization-server", app.address);
        let http = app.http.clone();
        async move {
            let m: Value = http.get(url).send().await.unwrap().json().await.unwrap();
            m
        }
    };
    let app = TestApp::spawn(db).await;
    app.client(&[GrantType::Password], false, "payroll:admin read")
        .await;
    let m = metadata(&app).await;
    assert!(m.get("scopes_supported").is_none(), "{m}");
    assert!(!m.to_string().contains("payroll"), "{m}");
    let app = TestApp::spawn_with(db, &[("TESSERA_TOKENS__PUBLIC_SCOPES", "openid profile")]).await;
    app.client(&[GrantType::Password], false, "payroll:admin read")
        .await;
    assert_eq!(
        metadata(&app).await["scopes_supported"],
        serde_json::json!(["openid", "profile"])
    );
}

/// Behind a trusted reverse proxy the client's address comes from `X-Forwarded-For`; from
/// any other peer the header is ignored.
async fn only_a_trusted_proxy_names_the_client_address(db: Db) {
    for (trusted, expected) in [("127.0.0.1/32", "198.51.100.7"), ("", "127.0.0.1")] {
        let app = TestApp::spawn_with(db, &[("TESSERA_SERVER__TRUSTED_PROXIES", trusted)]).await;
        let (id, secret) = app.password_client().await;
        app.user("alice").await;
        let res = app
            .http
            .post(format!("{}/token", app.address))
            .header("X-Forwarded-For", "203.0.113.1, 198.51.100.7")
            .basic_auth(&id, Some(&secret))
            .form(&[
                ("grant_type", "password"),
                ("username", "alice"),
                ("password", PASSWORD),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        let out = app
            .admin(
                &["audit", "list", "--kind", "login.success", "-o", "json"],
                None,
            )
            .await;
        let events: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(
            events[0]["client_ip"], expected,
            "trusted {trusted:?}: {events}"
        );
    }
}

/// RFC 7662 §2.1 lets only authenticated clients introspect. A public client is refused with
/// the answer an unknown client gets, so that the refusal does not confirm that its id exists
/// and is public.
async fn introspection_by_a_public_client_reads_as_failed_authentication(db: Db) {
    let app = TestApp::spawn(db).await;
    let (public, _) = app
        .client(&[GrantType::AuthorizationCode], true, "read")
        .await;
    let ask = |client_id: String| {
        let app = &app;
        async move {
            let res = app
                .http
                .post(format!("{}/introspect", app.address))
                .form(&[("client_id", client_id.as_str()), ("token", "tsr_x")])
                .send()
                .await
                .unwrap();
            let status = res.status();
            let body: Value = res.json().await.unwrap();
            (status, body)
        }
    };
    let (status, body) = ask(public).await;
    assert_eq!(status, 401, "{body}");
    assert_eq!((status, body), ask("no-such-client".into()).await);
}
