//! A single-page app on its own origin (tests/spa: a static page with oidc-client-ts, served
//! here from a second loopback port) signs in through Tessera's real pages with code + PKCE,
//! calls `/userinfo`, renews with the library's refresh (rotated), and signs out; the same
//! page on an origin the client did not register gets no token. Screenshots go to
//! target/screenshots/spa_*.png.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{json, Value};
use tessera::domain::client::{AppOptions, ClientSpec, GrantType, OpenIdOptions};
use tessera::domain::origin::Origin;
use tessera::domain::scope::Scope;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::helpers::webdriver::Driver;
use crate::helpers::{Db, TestApp, PASSWORD};

const LIBRARY: &str = "node_modules/oidc-client-ts/dist/browser/oidc-client-ts.min.js";

fn spa_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/spa")
}

/// oidc-client-ts from the npm registry, as tests/spa/package-lock.json pins it; `Err` when
/// npm is missing.
fn install_library() -> Result<(), String> {
    super::npm_ci(&spa_dir(), LIBRARY)
}

/// One origin of the app: tests/spa's files and a `/config.js` naming the server and the
/// client, on a free loopback port. Returns the origin.
async fn serve_app(config: String) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let origin = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let config = config.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 16 * 1024];
                let n = socket.read(&mut buf).await.unwrap_or(0);
                let head = String::from_utf8_lossy(&buf[..n]);
                let target = head.split_whitespace().nth(1).unwrap_or("/");
                let path = target.split('?').next().unwrap_or("/");
                let (status, kind, body) = match path {
                    "/config.js" => ("200 OK", "text/javascript", config.into_bytes()),
                    p if p.contains("..") => ("404 Not Found", "text/plain", Vec::new()),
                    p => match std::fs::read(spa_dir().join(p.trim_start_matches('/'))) {
                        Ok(bytes) if p.ends_with(".js") => ("200 OK", "text/javascript", bytes),
                        Ok(bytes) => ("200 OK", "text/html; charset=utf-8", bytes),
                        Err(_) => ("404 Not Found", "text/plain", Vec::new()),
                    },
                };
                let head = format!(
                    "HTTP/1.1 {status}\r\nContent-Type: {kind}\r\nContent-Length: {}\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n",
                    body.len()
                );
                let _ = socket.write_all(head.as_bytes()).await;
                let _ = socket.write_all(&body).await;
            });
        }
    });
    origin
}

/// The page's outcome once it is idle (loaded, no button's action running).
async fn outcome(driver: &Driver) -> Value {
    let read = r#"const o = document.getElementById('outcome');
        if (!o || o.dataset.ready !== 'true' || o.dataset.busy) return null;
        return o.textContent;"#;
    for _ in 0..150 {
        if let Some(text) = driver.script(read).await.as_str() {
            return serde_json::from_str(text).unwrap();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the app never settled: {}", driver.text().await);
}

/// What the console said about CORS since the last look.
async fn cors_messages(driver: &Driver) -> Vec<String> {
    let entries = driver.console().await;
    for (level, message) in &entries {
        eprintln!("console {level}: {message}");
    }
    entries
        .into_iter()
        .map(|(_, message)| message)
        .filter(|m| m.contains("CORS") || m.contains("Access-Control-Allow-Origin"))
        .collect()
}

/// Signs in on Tessera's pages as alice, approving if asked, until the browser is back on
/// `app` (an origin).
async fn sign_in_on_tessera(driver: &Driver, app: &str) {
    driver.wait_for("to continue to Photo Sharing").await;
    driver.type_into("#username", "alice").await;
    driver.type_into("#password", PASSWORD).await;
    driver.click("button[type=submit]").await;
    for _ in 0..150 {
        let url = driver.session("GET", "/url", Value::Null).await;
        if url.as_str().is_some_and(|u| u.starts_with(app)) {
            return;
        }
        if driver.text().await.contains("Allow Photo Sharing?") {
            driver.click("button[value=approve]").await;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("never back on {app}: {}", driver.text().await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_single_page_app_signs_in_renews_and_signs_out_from_its_own_origin() {
    const TEST: &str =
        "real_browser::spa::a_single_page_app_signs_in_renews_and_signs_out_from_its_own_origin";
    if let Err(why) = tokio::task::spawn_blocking(install_library).await.unwrap() {
        crate::helpers::skipped(TEST, &why);
        return;
    }
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
    // The library follows the discovery document, so the issuer is where the server listens.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let (listen, issuer) = (
        format!("127.0.0.1:{port}"),
        format!("http://127.0.0.1:{port}"),
    );
    let app = TestApp::spawn_with(
        Db::Sqlite,
        &[
            ("TESSERA_SERVER__LISTEN", &listen),
            ("TESSERA_SERVER__ISSUER", &issuer),
        ],
    )
    .await;
    assert_eq!(app.address, issuer);
    app.user("alice").await;

    // The client is registered before its origins are known, then given them.
    let placeholder = url::Url::parse("http://127.0.0.1/").unwrap();
    let (client_id, _) = app
        .register(ClientSpec {
            name: "Photo Sharing".into(),
            public: true,
            grants: vec![GrantType::AuthorizationCode, GrantType::RefreshToken],
            scope: Scope::parse("openid profile").unwrap(),
            redirect_uris: vec![placeholder],
            openid: OpenIdOptions::default(),
            app: AppOptions::default(),
        })
        .await;
    let config = format!(
        "window.SPA_CONFIG = {};",
        json!({"authority": app.address, "client_id": client_id, "scope": "openid profile"})
    );
    let home = serve_app(config.clone()).await;
    let stranger = serve_app(config).await;
    // Both origins may be redirected to and signed out to; only `home` may read responses.
    let mut args = vec!["client", "update", &client_id];
    let (home_cb, stranger_cb) = (
        format!("{home}/index.html"),
        format!("{stranger}/index.html"),
    );
    let (home_out, stranger_out) = (
        format!("{home}/index.html?signed_out=1"),
        format!("{stranger}/index.html?signed_out=1"),
    );
    for uri in [&home_cb, &stranger_cb] {
        args.extend(["--redirect-uri", uri]);
    }
    for uri in [&home_out, &stranger_out] {
        args.extend(["--post-logout-redirect-uri", uri]);
    }
    args.extend(["--allowed-origin", &home]);
    let updated = app.admin(&args, None).await;
    assert!(
        updated.status.success(),
        "{}",
        String::from_utf8_lossy(&updated.stderr)
    );
    assert!(Origin::parse(&home).is_ok());

    // Sign in: the library's redirect, Tessera's pages, the callback's token request.
    driver.goto(&home_cb).await;
    assert_eq!(outcome(&driver).await["signed_in"], false);
    driver.click("#signin").await;
    sign_in_on_tessera(&driver, &home).await;
    driver.wait_for("Signed in as").await;
    let signed_in = outcome(&driver).await;
    assert_eq!(signed_in["errors"], json!([]), "{signed_in:#}");
    assert_eq!(signed_in["signed_in"], true);
    assert_eq!(signed_in["access_token"], true);
    assert_eq!(signed_in["id_token"], true);
    let first = signed_in["refresh_token_sha"].as_str().unwrap().to_owned();
    driver.screenshot("spa_signed_in.png").await;

    // `/userinfo` with the access token: a preflighted request (Authorization).
    driver.click("#userinfo").await;
    driver.wait_for("User info loaded").await;
    let info = outcome(&driver).await;
    assert_eq!(info["errors"], json!([]), "{info:#}");
    assert_eq!(info["userinfo"]["sub"], signed_in["sub"]);

    // The library's own renew: the refresh_token grant, and a new refresh token.
    driver.click("#renew").await;
    driver.wait_for("Tokens renewed").await;
    let renewed = outcome(&driver).await;
    assert_eq!(renewed["errors"], json!([]), "{renewed:#}");
    assert_eq!(renewed["renewed"], 1);
    let second = renewed["refresh_token_sha"].as_str().unwrap().to_owned();
    assert_ne!(first, second, "the refresh token rotated");
    driver.screenshot("spa_renewed.png").await;
    let seen = cors_messages(&driver).await;
    assert!(
        seen.is_empty(),
        "CORS errors on the registered origin: {seen:?}"
    );

    // Sign out: the library revokes the tokens, then Tessera ends the session (the ID token
    // hint names it, so no question is asked) and sends the user back.
    driver.click("#signout").await;
    driver.wait_for("Signed out").await;
    let out = outcome(&driver).await;
    assert_eq!(out["errors"], json!([]), "{out:#}");
    assert_eq!(out["signed_out"], true);
    assert_eq!(out["signed_in"], false);
    driver.screenshot("spa_signed_out.png").await;
    let seen = cors_messages(&driver).await;
    assert!(
        seen.is_empty(),
        "CORS errors on the registered origin: {seen:?}"
    );
    let families = app
        .admin(
            &["family", "list", "--client", &client_id, "-o", "json"],
            None,
        )
        .await;
    let families: Value = serde_json::from_slice(&families.stdout).unwrap();
    assert!(
        families
            .as_array()
            .unwrap()
            .iter()
            .all(|f| f["state"] == "revoked"),
        "{families:#}"
    );

    // The same app on an origin the client did not register: Tessera redirects back with a
    // code, but the browser hides the token response from the script.
    driver.goto(&stranger_cb).await;
    assert_eq!(outcome(&driver).await["signed_in"], false);
    driver.click("#signin").await;
    sign_in_on_tessera(&driver, &stranger).await;
    driver.wait_for("Error during callback").await;
    let blocked = outcome(&driver).await;
    assert_eq!(blocked["signed_in"], false, "{blocked:#}");
    assert_eq!(blocked["access_token"], false);
    let errors = blocked["errors"].as_array().unwrap();
    assert!(
        errors
            .iter()
            .any(|e| e.as_str().unwrap().contains("Failed to fetch")),
        "{blocked:#}"
    );
    driver.screenshot("spa_blocked.png").await;
    let seen = cors_messages(&driver).await;
    assert!(
        seen.iter().any(|m| m.contains(&stranger)
            && m.contains("/token")
            && m.contains("No 'Access-Control-Allow-Origin' header")),
        "the console does not say the token response was blocked: {seen:?}"
    );

    driver.session("DELETE", "", Value::Null).await;
    drop(driver);
    let _ = std::fs::remove_dir_all(&profile);
}
