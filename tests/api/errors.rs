//! Every error of the token endpoint: status, `error` code and headers (RFC 6749 §5.2).

use serde_json::Value;
use tessera::domain::client::GrantType;

use crate::helpers::{assert_oauth_error, both_backends, Db, TestApp, PASSWORD};

both_backends!(
    odd_values_from_an_authenticated_client_never_give_a_500,
    malformed_requests_are_invalid_request,
    bad_client_credentials_are_invalid_client,
    bad_user_credentials_are_invalid_grant,
    grants_and_scopes_are_checked_against_the_client,
    bad_refresh_tokens_are_invalid_grant,
    method_content_type_and_size_are_checked,
    a_refresh_refused_for_its_client_consumes_nothing,
    a_client_changed_elsewhere_is_seen_by_the_next_request,
);

async fn malformed_requests_are_invalid_request(db: Db) {
    let app = TestApp::spawn(db).await;
    let (id, secret) = app.password_client().await;
    let c = Some((id.as_str(), secret.as_str()));

    let res = app.token(c, &[("username", "x")]).await;
    let body = assert_oauth_error(res, 400, "invalid_request").await;
    assert!(body["error_description"]
        .as_str()
        .unwrap()
        .contains("grant_type"));

    let res = app
        .token(c, &[("grant_type", "password"), ("password", PASSWORD)])
        .await;
    assert_oauth_error(res, 400, "invalid_request").await;

    let res = app.token(c, &[("grant_type", "refresh_token")]).await;
    assert_oauth_error(res, 400, "invalid_request").await;

    // A parameter sent twice (§3.2).
    let res = app
        .token(
            c,
            &[
                ("grant_type", "password"),
                ("username", "a"),
                ("username", "b"),
                ("password", "x"),
            ],
        )
        .await;
    assert_oauth_error(res, 400, "invalid_request").await;

    // Two authentication methods at once (§2.3).
    let res = app
        .token(
            c,
            &[
                ("grant_type", "password"),
                ("client_secret", &secret),
                ("username", "a"),
                ("password", "x"),
            ],
        )
        .await;
    assert_oauth_error(res, 400, "invalid_request").await;

    // A body client_id contradicting the Authorization header.
    let res = app
        .token(
            c,
            &[
                ("grant_type", "password"),
                ("client_id", "other"),
                ("username", "a"),
                ("password", "x"),
            ],
        )
        .await;
    assert_oauth_error(res, 400, "invalid_request").await;

    // Too many parameters.
    let many: Vec<(String, String)> = (0..40).map(|i| (format!("p{i}"), "v".to_owned())).collect();
    let many: Vec<(&str, &str)> = many.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    assert_oauth_error(app.token(c, &many).await, 400, "invalid_request").await;
}

async fn bad_client_credentials_are_invalid_client(db: Db) {
    let app = TestApp::spawn(db).await;
    let (id, secret) = app.password_client().await;
    app.user("alice").await;
    let form = [
        ("grant_type", "password"),
        ("username", "alice"),
        ("password", PASSWORD),
    ];

    for basic in [
        (id.as_str(), "wrong-secret"),
        ("no-such-client", secret.as_str()),
        (id.as_str(), ""),
    ] {
        let res = app.token(Some(basic), &form).await;
        let www = res
            .headers()
            .get("www-authenticate")
            .map(|v| v.to_str().unwrap().to_owned());
        assert_oauth_error(res, 401, "invalid_client").await;
        assert!(
            www.unwrap().starts_with("Basic"),
            "401 via Basic carries a Basic challenge"
        );
    }

    // client_secret_post with a wrong secret, and a confidential client sending no secret.
    let mut wrong = form.to_vec();
    wrong.extend([("client_id", id.as_str()), ("client_secret", "nope")]);
    assert_oauth_error(app.token(None, &wrong).await, 401, "invalid_client").await;
    let mut none = form.to_vec();
    none.push(("client_id", id.as_str()));
    assert_oauth_error(app.token(None, &none).await, 401, "invalid_client").await;

    // No credentials at all.
    assert_oauth_error(app.token(None, &form).await, 401, "invalid_client").await;

    // A malformed Basic header.
    let res = app
        .http
        .post(format!("{}/token", app.address))
        .header("Authorization", "Basic %%%")
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_oauth_error(res, 401, "invalid_client").await;

    // A client_id that cannot exist, NUL byte included: 401, never a 500.
    for bogus in ["a\u{0}b", "../etc", "é", "x y"] {
        let mut f = form.to_vec();
        f.push(("client_id", bogus));
        assert_oauth_error(app.token(None, &f).await, 401, "invalid_client").await;
        assert_oauth_error(
            app.token(Some((bogus, "x")), &form).await,
            401,
            "invalid_client",
        )
        .await;
    }

    // A public client must not present a secret.
    let (public_id, _) = app.client(&[GrantType::Password], true, "").await;
    assert_oauth_error(
        app.token(Some((&public_id, "anything")), &form).await,
        401,
        "invalid_client",
    )
    .await;

    // A disabled client.
    let disabled = id.clone();
    app.with_conn(move |c| {
        use diesel::prelude::*;
        use tessera::store::schema::clients;
        diesel::update(clients::table.find(disabled))
            .set(clients::disabled_at.eq(1_i64))
            .execute(c)
            .unwrap();
    })
    .await;
    assert_oauth_error(
        app.token(Some((&id, &secret)), &form).await,
        401,
        "invalid_client",
    )
    .await;
}

async fn bad_user_credentials_are_invalid_grant(db: Db) {
    let app = TestApp::spawn(db).await;
    let (id, secret) = app.password_client().await;
    app.user("alice").await;
    let c = Some((id.as_str(), secret.as_str()));
    let wrong = app
        .token(
            c,
            &[
                ("grant_type", "password"),
                ("username", "alice"),
                ("password", "nope"),
            ],
        )
        .await;
    let body_wrong = assert_oauth_error(wrong, 400, "invalid_grant").await;
    let unknown = app
        .token(
            c,
            &[
                ("grant_type", "password"),
                ("username", "mallory"),
                ("password", "nope"),
            ],
        )
        .await;
    let body_unknown = assert_oauth_error(unknown, 400, "invalid_grant").await;
    assert_eq!(
        body_wrong, body_unknown,
        "the answer must not reveal whether the user exists"
    );
    let odd = app
        .token(
            c,
            &[
                ("grant_type", "password"),
                ("username", " bad\u{7}"),
                ("password", "nope"),
            ],
        )
        .await;
    assert_oauth_error(odd, 400, "invalid_grant").await;
}

async fn grants_and_scopes_are_checked_against_the_client(db: Db) {
    let app = TestApp::spawn(db).await;
    app.user("alice").await;
    let login = [
        ("grant_type", "password"),
        ("username", "alice"),
        ("password", PASSWORD),
    ];

    // The password grant is off unless enabled for the client.
    let (id, secret) = app.client(&[GrantType::RefreshToken], false, "read").await;
    let secret = secret.unwrap();
    assert_oauth_error(
        app.token(Some((&id, &secret)), &login).await,
        400,
        "unauthorized_client",
    )
    .await;

    // Grants Tessera does not implement here are unsupported, whatever the client may use.
    for grant in ["urn:ietf:params:oauth:grant-type:device_code", "implicit"] {
        let res = app
            .token(Some((&id, &secret)), &[("grant_type", grant)])
            .await;
        assert_oauth_error(res, 400, "unsupported_grant_type").await;
    }

    for grant in ["authorization_code", "client_credentials"] {
        let res = app
            .token(
                Some((&id, &secret)),
                &[("grant_type", grant), ("code", "x")],
            )
            .await;
        assert_oauth_error(res, 400, "unauthorized_client").await;
    }

    // An unknown grant type.
    let res = app
        .token(Some((&id, &secret)), &[("grant_type", "urn:example:magic")])
        .await;
    assert_oauth_error(res, 400, "unsupported_grant_type").await;

    // A client with the password grant but not refresh_token gets no refresh token.
    let (id2, secret2) = app.client(&[GrantType::Password], false, "read").await;
    let secret2 = secret2.unwrap();
    let res = app.token(Some((&id2, &secret2)), &login).await;
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    assert!(body.get("refresh_token").is_none(), "{body}");
    let res = app
        .token(
            Some((&id2, &secret2)),
            &[("grant_type", "refresh_token"), ("refresh_token", "x")],
        )
        .await;
    assert_oauth_error(res, 400, "unauthorized_client").await;

    // Scope outside the client's, and malformed scope.
    let (id3, secret3) = app.password_client().await;
    let mut wide = login.to_vec();
    wide.push(("scope", "read admin"));
    assert_oauth_error(
        app.token(Some((&id3, &secret3)), &wide).await,
        400,
        "invalid_scope",
    )
    .await;
    let mut bad = login.to_vec();
    bad.push(("scope", "re\"ad"));
    assert_oauth_error(
        app.token(Some((&id3, &secret3)), &bad).await,
        400,
        "invalid_scope",
    )
    .await;

    // No scope: the client's. Refresh may narrow, never widen.
    let res = app.token(Some((&id3, &secret3)), &login).await;
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["scope"], "read write");
    let refresh = body["refresh_token"].as_str().unwrap();
    let narrow = app
        .token(
            Some((&id3, &secret3)),
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", refresh),
                ("scope", "read"),
            ],
        )
        .await;
    assert_eq!(narrow.status(), 200);
    let narrow: Value = narrow.json().await.unwrap();
    assert_eq!(narrow["scope"], "read");
    // Narrowing does not shrink the family: the next refresh gets the full scope back.
    let full = app
        .refresh((&id3, &secret3), narrow["refresh_token"].as_str().unwrap())
        .await;
    let full: Value = full.json().await.unwrap();
    assert_eq!(full["scope"], "read write");
    let widen = app
        .token(
            Some((&id3, &secret3)),
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", full["refresh_token"].as_str().unwrap()),
                ("scope", "read admin"),
            ],
        )
        .await;
    assert_oauth_error(widen, 400, "invalid_scope").await;
    // A refused scope leaves the token usable.
    assert_eq!(
        app.refresh((&id3, &secret3), full["refresh_token"].as_str().unwrap())
            .await
            .status(),
        200
    );
}

async fn bad_refresh_tokens_are_invalid_grant(db: Db) {
    let app = TestApp::spawn(db).await;
    let (id, secret) = app.password_client().await;
    let (other_id, other_secret) = app.password_client().await;
    app.user("alice").await;
    let tokens = app.password_grant((&id, &secret), "alice").await;
    let refresh = tokens["refresh_token"].as_str().unwrap();

    let last = if refresh.ends_with('A') { "B" } else { "A" };
    let flipped = format!("{}{last}", &refresh[..refresh.len() - 1]);
    let prefix = refresh.replacen("tsr_", "tsx_", 1);
    for bad in [
        "tsr_",
        "not-a-token",
        &refresh[..refresh.len() - 1],
        flipped.as_str(),
        prefix.as_str(),
        tokens["access_token"].as_str().unwrap(),
    ] {
        assert_oauth_error(app.refresh((&id, &secret), bad).await, 400, "invalid_grant").await;
    }
    // Another client's token, and the original still works afterwards (it was not consumed).
    let res = app.refresh((&other_id, &other_secret), refresh).await;
    assert_oauth_error(res, 400, "invalid_grant").await;
    assert_eq!(app.refresh((&id, &secret), refresh).await.status(), 200);
}

async fn method_content_type_and_size_are_checked(db: Db) {
    let app = TestApp::spawn(db).await;
    let url = format!("{}/token", app.address);

    let res = app.http.get(&url).send().await.unwrap();
    assert_eq!(res.status(), 405);
    assert_eq!(
        res.headers()["allow"],
        "POST, OPTIONS",
        "a CORS path answers preflights"
    );

    let res = app
        .http
        .post(&url)
        .header("Content-Type", "application/json")
        .body(r#"{"grant_type":"password"}"#)
        .send()
        .await
        .unwrap();
    assert_oauth_error(res, 400, "invalid_request").await;

    let res = app
        .http
        .post(&url)
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(format!(
            "grant_type=password&username={}",
            "a".repeat(64 * 1024)
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 413);

    // Bytes that are not UTF-8 and not valid percent-encoding: a clean 4xx, never a 500.
    for body in [
        &b"grant_type=%FF%FE&x=%"[..],
        b"\xff\xfe=\x00",
        b"&&&==&",
        b"grant_type=password&scope=%00",
    ] {
        let res = app
            .http
            .post(&url)
            .header(
                "Content-Type",
                "application/x-www-form-urlencoded; charset=UTF-8",
            )
            .body(body.to_vec())
            .send()
            .await
            .unwrap();
        assert!(
            res.status().is_client_error(),
            "{:?} -> {}",
            body,
            res.status()
        );
        let json: Value = res.json().await.unwrap();
        assert!(json["error"].is_string());
    }
}

async fn odd_values_from_an_authenticated_client_never_give_a_500(db: Db) {
    let app = TestApp::spawn(db).await;
    let (id, secret) = app.password_client().await;
    app.user("alice").await;
    let c = Some((id.as_str(), secret.as_str()));
    let long = "x".repeat(4096);
    let odd = [
        "\u{0}",
        "a\u{0}b",
        "é\u{1F600}",
        long.as_str(),
        "' OR 1=1 --",
        "%00",
        "\r\n",
    ];
    for v in odd {
        for form in [
            vec![
                ("grant_type", "password"),
                ("username", v),
                ("password", "x"),
            ],
            vec![
                ("grant_type", "password"),
                ("username", "alice"),
                ("password", v),
            ],
            vec![
                ("grant_type", "password"),
                ("username", "alice"),
                ("password", PASSWORD),
                ("scope", v),
            ],
            vec![("grant_type", "refresh_token"), ("refresh_token", v)],
            vec![
                ("grant_type", "refresh_token"),
                ("refresh_token", "tsr_x"),
                ("scope", v),
            ],
            vec![("grant_type", v)],
        ] {
            let res = app.token(c, &form).await;
            let status = res.status().as_u16();
            let body: Value = res.json().await.unwrap();
            assert!((400..500).contains(&status), "{form:?} -> {status} {body}");
            let code = body["error"].as_str().unwrap();
            assert!(
                [
                    "invalid_request",
                    "invalid_grant",
                    "invalid_scope",
                    "unsupported_grant_type"
                ]
                .contains(&code),
                "{form:?} -> {body}"
            );
        }
    }
}

/// Client authentication on a refresh happens before the token is touched (on PostgreSQL, in
/// the same statement as the rotation): every refusal leaves the token as it was.
async fn a_refresh_refused_for_its_client_consumes_nothing(db: Db) {
    // No grace: a token consumed by any of the refusals would make the last refresh a replay.
    let app = TestApp::spawn_with(db, &[("TESSERA_TOKENS__REUSE_GRACE", "0s")]).await;
    let (id, secret) = app.password_client().await;
    app.user("alice").await;
    let tokens = app.password_grant((&id, &secret), "alice").await;
    let token = tokens["refresh_token"].as_str().unwrap().to_owned();
    let refresh = [("grant_type", "refresh_token"), ("refresh_token", &token)];
    let with = |extra: &[(&'static str, &'static str)]| {
        let mut form: Vec<(&str, &str)> = refresh.to_vec();
        form.extend_from_slice(extra);
        form
    };

    assert_oauth_error(
        app.refresh((&id, "wrong-secret"), &token).await,
        401,
        "invalid_client",
    )
    .await;
    assert_oauth_error(app.refresh((&id, ""), &token).await, 401, "invalid_client").await;
    let mut no_secret = with(&[]);
    no_secret.push(("client_id", &id));
    assert_oauth_error(app.token(None, &no_secret).await, 401, "invalid_client").await;
    assert_oauth_error(
        app.refresh(("a\u{0}b", &secret), &token).await,
        401,
        "invalid_client",
    )
    .await;
    // Another client, even one allowed to refresh, cannot use it.
    let (other, other_secret) = app.password_client().await;
    assert_oauth_error(
        app.refresh((&other, &other_secret), &token).await,
        400,
        "invalid_grant",
    )
    .await;
    // A client without the refresh_token grant.
    let (no_refresh, no_refresh_secret) = app.client(&[GrantType::Password], false, "read").await;
    assert_oauth_error(
        app.refresh((&no_refresh, &no_refresh_secret.unwrap()), &token)
            .await,
        400,
        "unauthorized_client",
    )
    .await;
    // A disabled client, then enabled again.
    let set_disabled = |at: Option<i64>| {
        let id = id.clone();
        app.with_conn(move |c| {
            use diesel::prelude::*;
            use tessera::store::schema::clients;
            diesel::update(clients::table.find(id))
                .set(clients::disabled_at.eq(at))
                .execute(c)
                .unwrap();
        })
    };
    set_disabled(Some(1)).await;
    assert_oauth_error(
        app.refresh((&id, &secret), &token).await,
        401,
        "invalid_client",
    )
    .await;
    set_disabled(None).await;

    // None of that consumed the token, or counted as a replay.
    let res = app.refresh((&id, &secret), &token).await;
    assert_eq!(res.status(), 200);
    let next: Value = res.json().await.unwrap();
    assert_ne!(next["refresh_token"], tokens["refresh_token"]);
    assert_eq!(next["scope"], tokens["scope"]);

    // A public client refreshes with its id alone, and not with a secret.
    let (public, _) = app
        .client(
            &[GrantType::Password, GrantType::RefreshToken],
            true,
            "read",
        )
        .await;
    let login = [
        ("grant_type", "password"),
        ("username", "alice"),
        ("password", PASSWORD),
        ("client_id", public.as_str()),
    ];
    let res = app.token(None, &login).await;
    assert_eq!(res.status(), 200);
    let public_tokens: Value = res.json().await.unwrap();
    let public_token = public_tokens["refresh_token"].as_str().unwrap();
    assert_oauth_error(
        app.refresh((&public, "a-secret"), public_token).await,
        401,
        "invalid_client",
    )
    .await;
    let form = [
        ("grant_type", "refresh_token"),
        ("refresh_token", public_token),
        ("client_id", public.as_str()),
    ];
    assert_eq!(app.token(None, &form).await.status(), 200);
}

/// A change to a client committed by anyone else (here: another connection, as the CLI or
/// another instance would) applies to the very next request: clients are not cached.
async fn a_client_changed_elsewhere_is_seen_by_the_next_request(db: Db) {
    let app = TestApp::spawn(db).await;
    let (id, _) = app
        .client(&[GrantType::ClientCredentials], false, "read")
        .await;
    let form = [("grant_type", "client_credentials")];
    let mut secret = String::new();
    for round in 0..30 {
        let (id2, previous) = (id.clone(), secret.clone());
        let fresh = app
            .with_conn(move |c| {
                tessera::domain::client::rotate_secret(c, &id2.into())
                    .unwrap()
                    .expose()
                    .to_owned()
            })
            .await;
        if round > 0 {
            assert_oauth_error(
                app.token(Some((&id, &previous)), &form).await,
                401,
                "invalid_client",
            )
            .await;
        }
        assert_eq!(
            app.token(Some((&id, &fresh)), &form).await.status(),
            200,
            "round {round}"
        );
        secret = fresh;
    }
    let disabled = id.clone();
    let clock = app.clock.clone();
    app.with_conn(move |c| {
        tessera::domain::client::set_disabled(c, &disabled.into(), true, &clock).unwrap()
    })
    .await;
    assert_oauth_error(
        app.token(Some((&id, &secret)), &form).await,
        401,
        "invalid_client",
    )
    .await;
}
