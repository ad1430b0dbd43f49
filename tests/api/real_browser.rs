//! A real browser (headless Chromium through chromedriver's WebDriver API) signs in, consents
//! and lands on the application's redirect target with a code. Screenshots of the pages are
//! saved under target/screenshots/. It also signs out at the app's request (`/end_session`).

use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde_json::{json, Value};
use tessera::domain::client::{ClientSpec, GrantType};
use tessera::domain::scope::Scope;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::helpers::browser::{CHALLENGE, VERIFIER};
use crate::helpers::{Db, TestApp, PASSWORD};

const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// chromedriver on a free port, stopped on drop.
struct Driver {
    child: Child,
    url: String,
    http: reqwest::Client,
    session: String,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Driver {
    async fn start(profile: &std::path::Path) -> Option<Driver> {
        let binary = ["/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver"]
            .into_iter()
            .find(|p| std::path::Path::new(p).exists())?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(binary)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let http = reqwest::Client::new();
        let url = format!("http://127.0.0.1:{port}");
        let mut driver = Driver {
            child,
            url,
            http,
            session: String::new(),
        };
        for _ in 0..100 {
            let ready = driver
                .http
                .get(format!("{}/status", driver.url))
                .send()
                .await;
            if let Ok(r) = ready {
                if r.json::<Value>()
                    .await
                    .is_ok_and(|v| v["value"]["ready"] == true)
                {
                    break;
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        // The flags this machine needs: no sandbox as root, and nothing that calls out to the
        // internet (there is none).
        let caps = json!({"capabilities": {"alwaysMatch": {"goog:chromeOptions": {
            "binary": "/usr/bin/chromium",
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--disable-quic", "--no-first-run", "--disable-background-networking",
                     "--disable-component-update", "--disable-sync", "--window-size=480,900",
                     format!("--user-data-dir={}", profile.display())]
        }}}});
        let created = driver.call("POST", "/session", caps).await;
        driver.session = created["sessionId"]
            .as_str()
            .expect("a WebDriver session")
            .to_owned();
        Some(driver)
    }

    async fn call(&self, method: &str, path: &str, body: Value) -> Value {
        let url = format!("{}{path}", self.url);
        let req = match method {
            "GET" => self.http.get(url),
            "DELETE" => self.http.delete(url),
            _ => self.http.post(url).json(&body),
        };
        let v: Value = req.send().await.unwrap().json().await.unwrap();
        assert!(v["value"].get("error").is_none(), "{method} {path}: {v}");
        v["value"].clone()
    }

    async fn session(&self, method: &str, path: &str, body: Value) -> Value {
        self.call(method, &format!("/session/{}{path}", self.session), body)
            .await
    }

    async fn goto(&self, url: &str) {
        self.session("POST", "/url", json!({"url": url})).await;
    }

    async fn find(&self, css: &str) -> String {
        let v = self
            .session(
                "POST",
                "/element",
                json!({"using": "css selector", "value": css}),
            )
            .await;
        v[ELEMENT].as_str().unwrap().to_owned()
    }

    async fn type_into(&self, css: &str, text: &str) {
        let id = self.find(css).await;
        self.session(
            "POST",
            &format!("/element/{id}/value"),
            json!({"text": text}),
        )
        .await;
    }

    async fn click(&self, css: &str) {
        let id = self.find(css).await;
        self.session("POST", &format!("/element/{id}/click"), json!({}))
            .await;
    }

    /// The page's text, read in one step (the page may be changing under us).
    async fn text(&self) -> String {
        let script =
            json!({"script": "return document.body ? document.body.innerText : '';", "args": []});
        let url = format!("{}/session/{}/execute/sync", self.url, self.session);
        let v: Value = self
            .http
            .post(url)
            .json(&script)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        v["value"].as_str().unwrap_or_default().to_owned()
    }

    /// Waits (up to 10 s) for the page to show `needle`: a click returns before the next page
    /// has loaded when the server takes a moment (Argon2) to answer.
    async fn wait_for(&self, needle: &str) -> String {
        let mut text = String::new();
        for _ in 0..100 {
            text = self.text().await;
            if text.contains(needle) {
                return text;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("the page never showed {needle:?}; it shows:\n{text}");
    }

    async fn screenshot(&self, name: &str) {
        let png = self.session("GET", "/screenshot", Value::Null).await;
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/screenshots");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join(name),
            STANDARD.decode(png.as_str().unwrap()).unwrap(),
        )
        .unwrap();
    }
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
        browser_app: Default::default(),
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
