//! Passkeys in real Chromium, with chromedriver's virtual authenticator (the WebAuthn
//! extension commands of WebDriver: CTAP2, resident keys, user verification): the account
//! page adds a passkey; signed out, the login page's "Sign in with a passkey" signs in with it
//! alone (no username) through the authorization code flow; then a password sign-in takes it
//! as the second step. Each page on the way passes axe-core; screenshots in target/screenshots/.

use serde_json::{json, Value};
use tessera::domain::client::{ClientSpec, GrantType};
use tessera::domain::scope::Scope;

use super::account::{axe_source, Audit};
use super::callback_server;
use crate::helpers::browser::{CHALLENGE, VERIFIER};
use crate::helpers::webdriver::Driver;
use crate::helpers::{Db, TestApp, PASSWORD};

const TEST: &str =
    "real_browser::passkeys::a_passkey_is_added_then_signs_in_alone_and_as_the_second_step";

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_passkey_is_added_then_signs_in_alone_and_as_the_second_step() {
    let profile = std::env::temp_dir().join(format!(
        "tessera-chromium-{}",
        uuid::Uuid::new_v4().simple()
    ));
    let Some(driver) = Driver::start(&profile).await else {
        crate::helpers::skipped(
            TEST,
            "chromedriver is not installed (apt install chromium chromium-driver)",
        );
        return;
    };
    let source = match axe_source() {
        Ok(s) => s,
        Err(why) => {
            crate::helpers::skipped(TEST, &why);
            return;
        }
    };
    // WebAuthn wants a secure context and a domain for its relying party id: localhost is
    // both, over plain http.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let (listen, issuer) = (
        format!("127.0.0.1:{port}"),
        format!("http://localhost:{port}"),
    );
    let app = TestApp::spawn_with(
        Db::Sqlite,
        &[
            ("TESSERA_SERVER__LISTEN", &listen),
            ("TESSERA_SERVER__ISSUER", &issuer),
        ],
    )
    .await;
    let (callback, _) = callback_server().await;
    let redirect = format!("http://127.0.0.1:{callback}/callback");
    let client_id = app
        .register(ClientSpec {
            name: "Photo Sharing".into(),
            public: true,
            grants: vec![GrantType::AuthorizationCode, GrantType::RefreshToken],
            scope: Scope::parse("openid profile").unwrap(),
            redirect_uris: vec![url::Url::parse(&redirect).unwrap()],
            openid: Default::default(),
            app: Default::default(),
        })
        .await
        .0;
    let console_id = app
        .register(ClientSpec {
            name: "Admin Console".into(),
            public: true,
            grants: vec![GrantType::AuthorizationCode],
            scope: Scope::parse("profile").unwrap(),
            redirect_uris: vec![url::Url::parse(&redirect).unwrap()],
            openid: Default::default(),
            app: tessera::domain::client::AppOptions {
                require_second_factor: true,
                ..Default::default()
            },
        })
        .await
        .0;
    app.user("alice").await;
    app.user("bob").await;
    let authenticator = driver
        .session(
            "POST",
            "/webauthn/authenticator",
            json!({
                "protocol": "ctap2",
                "transport": "internal",
                "hasResidentKey": true,
                "hasUserVerification": true,
                "isUserVerified": true,
            }),
        )
        .await;
    let authenticator = authenticator
        .as_str()
        .expect("a virtual authenticator")
        .to_owned();
    let mut audit = Audit::default();

    // Signed in with the password, the account page adds a passkey.
    driver.goto(&format!("{issuer}/account")).await;
    driver.wait_for("to continue to your account").await;
    driver.type_into("#username", "alice").await;
    driver.type_into("#password", PASSWORD).await;
    driver.click("form[action='/login'] button").await;
    driver.wait_for("Devices").await;
    driver
        .goto(&format!("{issuer}/account/sign-in-methods"))
        .await;
    driver.wait_for("Passkeys").await;
    driver.type_into("#passkey-name", "This laptop").await;
    driver.type_into("#current-passkey", PASSWORD).await;
    driver.click("form[data-webauthn=register] button").await;
    let added = driver.wait_for("Your passkey was added").await;
    assert!(
        added.contains("This laptop") && added.contains("never used"),
        "{added}"
    );
    audit
        .check(&driver, &source, "account: sign-in methods with a passkey")
        .await;
    driver.screenshot("account_passkeys.png").await;
    let credentials = driver
        .session(
            "GET",
            &format!("/webauthn/authenticator/{authenticator}/credentials"),
            Value::Null,
        )
        .await;
    let credentials = credentials.as_array().unwrap();
    assert_eq!(credentials.len(), 1);
    assert_eq!(credentials[0]["isResidentCredential"], true, "discoverable");
    assert_eq!(credentials[0]["rpId"], "localhost");

    // Signed out, the app's sign-in takes the passkey alone: no username typed.
    driver.goto(&format!("{issuer}/account")).await;
    driver.wait_for("Devices").await;
    driver.click("form.switch button").await;
    driver.wait_for("You are signed out").await;
    let mut authorize = url::Url::parse(&format!("{issuer}/authorize")).unwrap();
    authorize
        .query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", &client_id)
        .append_pair("redirect_uri", &redirect)
        .append_pair("scope", "openid profile")
        .append_pair("nonce", "n-0S6_WzA2Mj")
        .append_pair("code_challenge", CHALLENGE)
        .append_pair("code_challenge_method", "S256");
    driver.goto(authorize.as_str()).await;
    driver.wait_for("Sign in with a passkey").await;
    audit
        .check(&driver, &source, "login, with the passkey button")
        .await;
    driver.screenshot("login_passkey.png").await;
    driver.click("form[data-webauthn=sign-in] button").await;
    driver.wait_for("Allow Photo Sharing?").await;
    driver.click("button[value=approve]").await;
    driver
        .wait_for("Signed in. You can close this window.")
        .await;
    let landed = driver.session("GET", "/url", Value::Null).await;
    let landed = url::Url::parse(landed.as_str().unwrap()).unwrap();
    let code = landed
        .query_pairs()
        .find(|(k, _)| k == "code")
        .unwrap()
        .1
        .into_owned();
    let res = app
        .token(
            None,
            &[
                ("grant_type", "authorization_code"),
                ("client_id", &client_id),
                ("code", &code),
                ("redirect_uri", &redirect),
                ("code_verifier", VERIFIER),
            ],
        )
        .await;
    assert_eq!(res.status(), 200, "the code exchange");
    let tokens: Value = res.json().await.unwrap();
    let claims = tokens["id_token"]
        .as_str()
        .unwrap()
        .split('.')
        .nth(1)
        .unwrap()
        .to_owned();
    use base64::Engine;
    let claims: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(claims)
            .unwrap(),
    )
    .unwrap();
    assert_eq!(claims["amr"], json!(["hwk", "user", "mfa"]), "{claims}");
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
    assert_eq!(refreshed.status(), 200, "the family refreshes");

    // Signed out again: the password, then the passkey as the second step.
    driver.goto(&format!("{issuer}/account")).await;
    driver.wait_for("Devices").await;
    driver.click("form.switch button").await;
    driver.wait_for("You are signed out").await;
    driver.goto(&format!("{issuer}/account")).await;
    driver.wait_for("to continue to your account").await;
    driver.type_into("#username", "alice").await;
    driver.type_into("#password", PASSWORD).await;
    driver.click("form[action='/login'] button").await;
    driver.wait_for("Use your passkey.").await;
    audit
        .check(&driver, &source, "second step, with a passkey")
        .await;
    driver.screenshot("second_step_passkey.png").await;
    driver.click("form[data-webauthn=second-step] button").await;
    driver.wait_for("Devices").await;
    let activity = {
        driver.goto(&format!("{issuer}/account/activity")).await;
        driver.wait_for("Security activity").await
    };
    assert!(
        activity.contains("You set up a passkey, \"This laptop\"")
            && activity.contains("Signed in with a passkey"),
        "{activity}"
    );
    let shown = crate::cli::json(
        &app.admin(&["user", "mfa", "show", "alice", "-o", "json"], None)
            .await,
    );
    assert!(shown["passkeys"][0]["last_used_at"].is_string(), "{shown}");

    // An app that requires a second factor, for a user who has none: after the password, the
    // set-up page; a passkey made there completes the sign-in, and the app gets its code.
    driver.goto(&format!("{issuer}/account")).await;
    driver.wait_for("Devices").await;
    driver.click("form.switch button").await;
    driver.wait_for("You are signed out").await;
    let mut console = url::Url::parse(&format!("{issuer}/authorize")).unwrap();
    console
        .query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", &console_id)
        .append_pair("redirect_uri", &redirect)
        .append_pair("scope", "profile")
        .append_pair("code_challenge", CHALLENGE)
        .append_pair("code_challenge_method", "S256");
    driver.goto(console.as_str()).await;
    driver.wait_for("to continue to Admin Console").await;
    driver.type_into("#username", "bob").await;
    driver.type_into("#password", PASSWORD).await;
    driver.click("form[action='/login'] button").await;
    driver.wait_for("Add a passkey and continue").await;
    audit
        .check(&driver, &source, "second factor set-up at sign-in")
        .await;
    driver.screenshot("enrol.png").await;
    driver.click("form[data-webauthn=enrol] button").await;
    driver.wait_for("Allow Admin Console?").await;
    driver.click("button[value=approve]").await;
    driver
        .wait_for("Signed in. You can close this window.")
        .await;
    let landed = driver.session("GET", "/url", Value::Null).await;
    assert!(landed.as_str().unwrap().contains("code="), "{landed}");
    let shown = crate::cli::json(
        &app.admin(&["user", "mfa", "show", "bob", "-o", "json"], None)
            .await,
    );
    assert_eq!(shown["passkeys"][0]["name"], "Passkey", "{shown}");

    println!(
        "passkeys: axe-core {} on {} pages: {}; {} violations",
        audit.version,
        audit.pages.len(),
        audit.pages.join(", "),
        audit.violations.len()
    );
    assert!(
        audit.violations.is_empty(),
        "accessibility violations:\n{}",
        audit.violations.join("\n")
    );
    driver.session("DELETE", "", Value::Null).await;
    drop(driver);
    let _ = std::fs::remove_dir_all(&profile);
}
