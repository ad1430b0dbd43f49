//! A real browser (headless Chromium through chromedriver's WebDriver API) signs in, consents
//! and lands on the application's redirect target with a code. Screenshots of the pages are
//! saved under target/screenshots/. It also signs out at the app's request (`/end_session`).
//! [`spa`]: a single-page app on another origin signs in through it with oidc-client-ts.

mod account;
mod passkeys;
mod spa;

use std::sync::{Arc, Mutex};

use serde_json::Value;
use tessera::domain::client::{ClientSpec, GrantType};
use tessera::domain::scope::Scope;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::helpers::browser::{CHALLENGE, VERIFIER};
use crate::helpers::webdriver::Driver;
use crate::helpers::{Db, TestApp, PASSWORD};

/// Installs the npm packages `dir`'s package-lock.json pins (unless `file` is there already);
/// `Err` when npm is missing.
fn npm_ci(dir: &std::path::Path, file: &str) -> Result<(), String> {
    if dir.join(file).exists() {
        return Ok(());
    }
    let status = std::process::Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
        .current_dir(dir)
        .status()
        .map_err(|e| format!("npm: {e} (apt install npm)"))?;
    assert!(status.success(), "npm ci in {} failed", dir.display());
    Ok(())
}

/// The application's redirect target: answers every request, remembers each request line.
async fn callback_server() -> (u16, Arc<Mutex<Vec<String>>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let mut buf = vec![0u8; 8192];
            let n = socket.read(&mut buf).await.unwrap_or(0);
            let request = String::from_utf8_lossy(&buf[..n])
                .lines()
                .next()
                .unwrap_or_default()
                .to_owned();
            log.lock().unwrap().push(request);
            let body = "<!doctype html><title>Photo Sharing</title><p>Signed in. You can close this window.</p>";
            let reply = format!("HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len());
            let _ = socket.write_all(reply.as_bytes()).await;
        }
    });
    (port, seen)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_real_browser_signs_in_consents_and_returns_with_a_code() {
    let profile = std::env::temp_dir().join(format!(
        "tessera-chromium-{}",
        uuid::Uuid::new_v4().simple()
    ));
    let Some(driver) = Driver::start(&profile).await else {
        crate::helpers::skipped(
            "real_browser::a_real_browser_signs_in_consents_and_returns_with_a_code",
            "chromedriver is not installed (apt install chromium chromium-driver)",
        );
        return;
    };
    let app = TestApp::spawn(Db::Sqlite).await;
    let (port, seen) = callback_server().await;
    let redirect = format!("http://127.0.0.1:{port}/callback");
    let spec = ClientSpec {
        name: "Photo Sharing".into(),
        public: true,
        grants: vec![GrantType::AuthorizationCode, GrantType::RefreshToken],
        scope: Scope::parse("profile photos:read").unwrap(),
        redirect_uris: vec![url::Url::parse(&redirect).unwrap()],
        openid: Default::default(),
        app: Default::default(),
    };
    let client_id = app.register(spec).await.0;
    app.user("alice").await;

    let mut authorize = url::Url::parse(&format!("{}/authorize", app.address)).unwrap();
    authorize
        .query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", &client_id)
        .append_pair("redirect_uri", &redirect)
        .append_pair("scope", "profile photos:read")
        .append_pair("state", "s-123")
        .append_pair("code_challenge", CHALLENGE)
        .append_pair("code_challenge_method", "S256");
    driver.goto(authorize.as_str()).await;
    driver.wait_for("to continue to Photo Sharing").await;
    driver.screenshot("login.png").await;

    // A wrong password first: the page says so, generically.
    driver.type_into("#username", "alice").await;
    driver.type_into("#password", "not the password").await;
    driver.click("button[type=submit]").await;
    driver
        .wait_for("The username or password is incorrect")
        .await;
    driver.type_into("#password", PASSWORD).await;
    driver.click("button[type=submit]").await;

    let consent = driver.wait_for("Allow Photo Sharing?").await;
    assert!(
        consent.contains("Read your photos") && consent.contains("Signed in as alice"),
        "{consent}"
    );
    driver.screenshot("consent.png").await;
    driver.click("button[value=approve]").await;

    driver
        .wait_for("Signed in. You can close this window.")
        .await;
    let landed = driver
        .session("GET", "/url", Value::Null)
        .await
        .as_str()
        .unwrap()
        .to_owned();
    let landed = url::Url::parse(&landed).unwrap();
    assert_eq!(landed.path(), "/callback");
    let params: std::collections::HashMap<_, _> = landed.query_pairs().into_owned().collect();
    assert_eq!(params["state"], "s-123");
    assert!(seen
        .lock()
        .unwrap()
        .iter()
        .any(|r| r.starts_with("GET /callback?code=")));

    let res = app
        .token(
            None,
            &[
                ("grant_type", "authorization_code"),
                ("client_id", &client_id),
                ("code", &params["code"]),
                ("redirect_uri", &redirect),
                ("code_verifier", VERIFIER),
            ],
        )
        .await;
    assert_eq!(res.status(), 200);
    let tokens: Value = res.json().await.unwrap();
    assert_eq!(
        app.userinfo(tokens["access_token"].as_str().unwrap())
            .await
            .status(),
        200
    );

    // The app asks Tessera to sign the user out (no ID token hint): the page asks first, then
    // signs out, and the session's tokens stop working.
    let mut end = url::Url::parse(&format!("{}/end_session", app.address)).unwrap();
    end.query_pairs_mut().append_pair("client_id", &client_id);
    driver.goto(end.as_str()).await;
    let asked = driver.wait_for("Sign out?").await;
    assert!(
        asked.contains("Photo Sharing asks to sign you out") && asked.contains("alice"),
        "{asked}"
    );
    driver.screenshot("end_session.png").await;
    driver.click("button[value=sign_out]").await;
    driver.wait_for("You are signed out").await;
    assert_eq!(
        app.userinfo(tokens["access_token"].as_str().unwrap())
            .await
            .status(),
        401
    );

    driver.session("DELETE", "", Value::Null).await;
    drop(driver);
    let _ = std::fs::remove_dir_all(&profile);
}
