//! Authorization codes: PKCE, single use, short life, concurrent exchanges.

use serde_json::Value;
use tessera::domain::client::GrantType;

use crate::helpers::browser::{
    code_for, exchange, query, redirect_params, setup, Browser, CHALLENGE, REDIRECT, VERIFIER,
};
use crate::helpers::{assert_oauth_error, both_backends, Db, TestApp};

both_backends!(
    pkce_is_required_and_checked,
    codes_are_single_use_and_short_lived,
    concurrent_exchanges_of_one_code_revoke_what_it_issued,
);

async fn pkce_is_required_and_checked(db: Db) {
    let app = TestApp::spawn(db).await;
    let client_id = setup(&app).await;
    let browser = Browser::new(&app);
    let base = query(&client_id, &[]);
    let missing = base.replace(
        &format!("&code_challenge={CHALLENGE}&code_challenge_method=S256"),
        "",
    );
    let plain = base.replace("code_challenge_method=S256", "code_challenge_method=plain");
    let no_method = base.replace("&code_challenge_method=S256", "");
    for q in [missing, plain, no_method] {
        let params = redirect_params(&browser.authorize(&q).await);
        assert_eq!(params["error"], "invalid_request", "{q}");
        assert_eq!(params["state"], "af0ifjsldkj");
    }
    // A wrong verifier fails, and spends the code.
    let code = code_for(&app, &browser, &client_id).await;
    let wrong = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXx";
    assert_oauth_error(
        exchange(&app, &client_id, &code, wrong).await,
        400,
        "invalid_grant",
    )
    .await;
    assert_oauth_error(
        exchange(&app, &client_id, &code, VERIFIER).await,
        400,
        "invalid_grant",
    )
    .await;
    // No verifier at all.
    let code = code_for(&app, &browser, &client_id).await;
    let res = app
        .token(
            None,
            &[
                ("grant_type", "authorization_code"),
                ("client_id", &client_id),
                ("code", &code),
                ("redirect_uri", REDIRECT),
            ],
        )
        .await;
    assert_oauth_error(res, 400, "invalid_grant").await;
    // The redirect_uri must match the authorization request's.
    let code = code_for(&app, &browser, &client_id).await;
    let res = app
        .token(
            None,
            &[
                ("grant_type", "authorization_code"),
                ("client_id", &client_id),
                ("code", &code),
                ("redirect_uri", "http://localhost:9000/other"),
                ("code_verifier", VERIFIER),
            ],
        )
        .await;
    assert_oauth_error(res, 400, "invalid_grant").await;
}

async fn codes_are_single_use_and_short_lived(db: Db) {
    let app = TestApp::spawn_with(db, &[("TESSERA_TOKENS__CODE_TTL", "1s")]).await;
    let client_id = setup(&app).await;
    let browser = Browser::new(&app);
    let code = code_for(&app, &browser, &client_id).await;
    let tokens: Value = exchange(&app, &client_id, &code, VERIFIER)
        .await
        .json()
        .await
        .unwrap();
    // A replayed code: refused, and the tokens issued from it are revoked (RFC 6749 §4.1.2).
    let body = assert_oauth_error(
        exchange(&app, &client_id, &code, VERIFIER).await,
        400,
        "invalid_grant",
    )
    .await;
    assert!(body["error_description"]
        .as_str()
        .unwrap()
        .contains("already used"));
    assert_eq!(
        app.userinfo(tokens["access_token"].as_str().unwrap())
            .await
            .status(),
        401
    );
    let res = app
        .token(
            None,
            &[
                ("grant_type", "refresh_token"),
                ("client_id", &client_id),
                ("refresh_token", tokens["refresh_token"].as_str().unwrap()),
            ],
        )
        .await;
    assert_oauth_error(res, 400, "invalid_grant").await;
    // Expired.
    let code = code_for(&app, &browser, &client_id).await;
    app.advance(std::time::Duration::from_millis(1200));
    let body = assert_oauth_error(
        exchange(&app, &client_id, &code, VERIFIER).await,
        400,
        "invalid_grant",
    )
    .await;
    assert!(body["error_description"]
        .as_str()
        .unwrap()
        .contains("expired"));
    // Made-up and foreign codes.
    assert_oauth_error(
        exchange(&app, &client_id, "tsc_madeup", VERIFIER).await,
        400,
        "invalid_grant",
    )
    .await;
    let (other, _) = app
        .client(&[GrantType::AuthorizationCode], true, "profile")
        .await;
    let code = code_for(&app, &browser, &client_id).await;
    assert_oauth_error(
        exchange(&app, &other, &code, VERIFIER).await,
        400,
        "invalid_grant",
    )
    .await;
}

async fn concurrent_exchanges_of_one_code_revoke_what_it_issued(db: Db) {
    let app = TestApp::spawn(db).await;
    let client_id = setup(&app).await;
    let browser = Browser::new(&app);
    let code = code_for(&app, &browser, &client_id).await;
    let (a, b) = tokio::join!(
        exchange(&app, &client_id, &code, VERIFIER),
        exchange(&app, &client_id, &code, VERIFIER)
    );
    let mut statuses = [a.status().as_u16(), b.status().as_u16()];
    statuses.sort_unstable();
    assert_eq!(statuses, [200, 400], "one exchange wins");
    let winner: Value = if a.status() == 200 {
        a.json().await.unwrap()
    } else {
        b.json().await.unwrap()
    };
    // The loser saw a replay: the winner's tokens are revoked.
    assert_eq!(
        app.userinfo(winner["access_token"].as_str().unwrap())
            .await
            .status(),
        401
    );
}
