//! The authorization request's OpenID Connect parameters: `prompt`, `login_hint`, request
//! objects (refused),
//! parameters the server does not act on (accepted), and the request sent by POST.

use crate::helpers::browser::{code_for, confidential, query, redirect_params, setup, Browser};
use crate::helpers::{both_backends, Db, TestApp};

both_backends!(
    request_objects_are_refused_as_not_supported,
    prompt_none_asks_nothing_and_says_what_was_needed,
    prompt_consent_asks_again,
    unknown_and_informational_parameters_are_accepted,
    a_post_to_authorize_works_like_a_get,
    login_hint_fills_in_the_username,
);

/// The error the client is sent back with, after checking `state` and `iss` came too.
fn error_of(res: &reqwest::Response, app: &TestApp) -> String {
    let params = redirect_params(res);
    assert_eq!(params["state"], "af0ifjsldkj");
    assert_eq!(params["iss"], app.settings.issuer());
    params["error"].clone()
}

/// OpenID Connect Core §6: `request` and `request_uri` get their own errors.
async fn request_objects_are_refused_as_not_supported(db: Db) {
    let app = TestApp::spawn(db).await;
    let client_id = setup(&app).await;
    let browser = Browser::new(&app);
    for (name, error) in [
        ("request", "request_not_supported"),
        ("request_uri", "request_uri_not_supported"),
    ] {
        let q = query(&client_id, &[(name, "eyJhbGciOiJub25lIn0.e30.")]);
        assert_eq!(error_of(&browser.authorize(&q).await, &app), error);
    }
    let q = query(&client_id, &[("prompt", "sometimes")]);
    assert_eq!(
        error_of(&browser.authorize(&q).await, &app),
        "invalid_request"
    );
    let q = query(&client_id, &[("prompt", "none login")]);
    assert_eq!(
        error_of(&browser.authorize(&q).await, &app),
        "invalid_request"
    );
    // Codes go back in the query: another response_mode is refused, not ignored.
    let q = query(&client_id, &[("response_mode", "form_post")]);
    assert_eq!(
        error_of(&browser.authorize(&q).await, &app),
        "invalid_request"
    );
}

/// `prompt=none`: straight back with a code when nothing needs asking, else `login_required`
/// or `consent_required`, never a page.
async fn prompt_none_asks_nothing_and_says_what_was_needed(db: Db) {
    let app = TestApp::spawn(db).await;
    setup(&app).await;
    let client_id = confidential(&app).await;
    let browser = Browser::new(&app);
    let none = query(&client_id, &[("prompt", "none")]);
    assert_eq!(
        error_of(&browser.authorize(&none).await, &app),
        "login_required"
    );
    code_for(&app, &browser, &client_id).await;
    assert!(redirect_params(&browser.authorize(&none).await).contains_key("code"));
    let wider = none.replace("scope=profile", "scope=profile+photos%3Aread");
    assert_eq!(
        error_of(&browser.authorize(&wider).await, &app),
        "consent_required"
    );
}

async fn prompt_consent_asks_again(db: Db) {
    let app = TestApp::spawn(db).await;
    setup(&app).await;
    let client_id = confidential(&app).await;
    let browser = Browser::new(&app);
    code_for(&app, &browser, &client_id).await;
    assert!(
        redirect_params(&browser.authorize(&query(&client_id, &[])).await).contains_key("code")
    );
    let res = browser
        .authorize(&query(&client_id, &[("prompt", "consent")]))
        .await;
    assert_eq!(res.status(), 200);
    let html = res.text().await.unwrap();
    assert!(
        html.contains("Allow <strong>Photo Sharing</strong>?"),
        "{html}"
    );
}

/// What a provider may ignore (`display`, `ui_locales`, `claims_locales`, `acr_values`,
/// `prompt=login`, `prompt=select_account`) and parameters it does not know do not stop the
/// request.
async fn unknown_and_informational_parameters_are_accepted(db: Db) {
    let app = TestApp::spawn(db).await;
    let client_id = setup(&app).await;
    let browser = Browser::new(&app);
    let q = query(
        &client_id,
        &[
            ("display", "popup"),
            ("response_mode", "query"),
            ("ui_locales", "fr-CA fr en"),
            ("claims_locales", "de"),
            ("acr_values", "urn:mace:incommon:iap:silver"),
            ("login_hint", "alice"),
            ("prompt", "login select_account"),
            ("extra", "whatever"),
        ],
    );
    let res = browser.authorize(&q).await;
    assert_eq!(res.status(), 200);
    assert!(res.text().await.unwrap().contains("Sign in"));
}

/// OpenID Connect Core §3.1.2.1: the request may come form-encoded in a POST.
async fn a_post_to_authorize_works_like_a_get(db: Db) {
    let app = TestApp::spawn(db).await;
    setup(&app).await;
    let client_id = confidential(&app).await;
    let browser = Browser::new(&app);
    let q = query(&client_id, &[]);
    let form: Vec<(String, String)> = url::form_urlencoded::parse(q.as_bytes())
        .into_owned()
        .collect();
    let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let res = browser.post("/authorize", &form).await;
    assert_eq!(res.status(), 200);
    assert!(res.text().await.unwrap().contains("Sign in"));
    code_for(&app, &browser, &client_id).await;
    let res = browser.post("/authorize", &form).await;
    assert!(redirect_params(&res).contains_key("code"));
}

/// `login_hint` fills in the username on the login page, escaped; one that could not be a
/// username is left out.
async fn login_hint_fills_in_the_username(db: Db) {
    let app = TestApp::spawn(db).await;
    let client_id = setup(&app).await;
    let browser = Browser::new(&app);
    let page = |hint: &'static str| {
        let q = query(&client_id, &[("login_hint", hint)]);
        let browser = &browser;
        async move { browser.authorize(&q).await.text().await.unwrap() }
    };
    let html = page("alice").await;
    assert!(html.contains(r#"autofocus value="alice""#), "{html}");
    let html = page("<b>bob</b>").await;
    assert!(!html.contains("<b>bob"), "escaped: {html}");
    assert!(
        html.contains("&#60;b&#62;bob") || html.contains("&lt;b&gt;bob"),
        "{html}"
    );
    let html = page(" spaced ").await;
    assert!(html.contains(r#"autofocus value="""#), "{html}");
}
