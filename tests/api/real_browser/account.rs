//! The account page in a real browser: sign in, see two devices (this browser's app and a
//! phone's), sign the phone out, read the activity, set up an authenticator app and get
//! recovery codes; screenshots of the devices, activity and sign-in methods pages in
//! target/screenshots/. Every page on the way (login, consent, account, confirmation,
//! errors, signed out) is checked with axe-core, injected through the WebDriver session, for
//! the WCAG 2.0/2.1 A and AA rules: none may be violated.

use std::path::{Path, PathBuf};

use serde_json::{json, Value};
use tessera::domain::client::{ClientSpec, GrantType};
use tessera::domain::scope::Scope;

use super::callback_server;
use crate::helpers::browser::{CHALLENGE, VERIFIER};
use crate::helpers::webdriver::Driver;
use crate::helpers::{Db, TestApp, PASSWORD};

const AXE: &str = "node_modules/axe-core/axe.min.js";
const TAGS: [&str; 4] = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"];

pub(super) fn a11y_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/a11y")
}

/// axe-core from the npm registry, as tests/a11y/package-lock.json pins it.
pub(super) fn axe_source() -> Result<String, String> {
    super::npm_ci(&a11y_dir(), AXE)?;
    Ok(std::fs::read_to_string(a11y_dir().join(AXE)).unwrap())
}

/// What axe-core found on the page now: (its version, how many rules it ran, violations).
async fn axe(driver: &Driver, source: &str, page: &str) -> (String, usize, Vec<String>) {
    // Injected through WebDriver, which the page's Content-Security-Policy does not govern.
    driver.script(&format!("{source}\nreturn true;")).await;
    let run = format!(
        "const done = arguments[arguments.length - 1];
         axe.run(document, {{ runOnly: {{ type: 'tag', values: {tags} }} }})
           .then(r => done({{
             version: axe.version,
             rules: r.passes.length + r.violations.length + r.incomplete.length + r.inapplicable.length,
             violations: r.violations.map(v => v.id + ' (' + v.impact + '): ' + v.help + ' at '
               + v.nodes.map(n => n.target.join(' ')).join(', ')),
           }}))
           .catch(e => done({{ error: String(e) }}));",
        tags = json!(TAGS)
    );
    let result = driver
        .session("POST", "/execute/async", json!({"script": run, "args": []}))
        .await;
    assert!(result["error"].is_null(), "{page}: axe failed: {result}");
    let violations = result["violations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| format!("{page}: {}", v.as_str().unwrap()))
        .collect();
    (
        result["version"].as_str().unwrap().to_owned(),
        result["rules"].as_u64().unwrap() as usize,
        violations,
    )
}

/// The pages checked, and everything axe-core found.
#[derive(Default)]
pub(super) struct Audit {
    pub(super) version: String,
    pub(super) rules: usize,
    pub(super) pages: Vec<String>,
    pub(super) violations: Vec<String>,
}

impl Audit {
    pub(super) async fn check(&mut self, driver: &Driver, source: &str, page: &str) {
        let (version, rules, violations) = axe(driver, source, page).await;
        self.version = version;
        self.rules = self.rules.max(rules);
        self.pages.push(page.to_owned());
        self.violations.extend(violations);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_real_browser_manages_the_account_and_every_page_passes_axe() {
    let profile = std::env::temp_dir().join(format!(
        "tessera-chromium-{}",
        uuid::Uuid::new_v4().simple()
    ));
    let Some(driver) = Driver::start(&profile).await else {
        crate::helpers::skipped(
            "real_browser::account::a_real_browser_manages_the_account_and_every_page_passes_axe",
            "chromedriver is not installed (apt install chromium chromium-driver)",
        );
        return;
    };
    let source = match axe_source() {
        Ok(s) => s,
        Err(why) => {
            crate::helpers::skipped(
                "real_browser::account::a_real_browser_manages_the_account_and_every_page_passes_axe",
                &why,
            );
            return;
        }
    };
    let app = TestApp::spawn(Db::Sqlite).await;
    let (port, _) = callback_server().await;
    let redirect = format!("http://127.0.0.1:{port}/callback");
    let web = ClientSpec {
        name: "Photo Sharing".into(),
        public: true,
        grants: vec![GrantType::AuthorizationCode, GrantType::RefreshToken],
        scope: Scope::parse("profile photos:read").unwrap(),
        redirect_uris: vec![url::Url::parse(&redirect).unwrap()],
        openid: Default::default(),
        app: Default::default(),
    };
    let web_id = app.register(web).await.0;
    let phone_app = ClientSpec {
        name: "ExampleApp".into(),
        public: false,
        grants: vec![GrantType::Password, GrantType::RefreshToken],
        scope: Scope::parse("profile").unwrap(),
        redirect_uris: vec![],
        openid: Default::default(),
        app: Default::default(),
    };
    let (phone_id, phone_secret) = app.register(phone_app).await;
    let phone_secret = phone_secret.unwrap();
    app.user("alice").await;
    // The phone signs in with the password grant.
    let phone = app
        .password_grant_from(
            (&phone_id, &phone_secret),
            "alice",
            "ExampleApp/2.1 (Android 14; Pixel 8)",
        )
        .await;
    let mut audit = Audit::default();

    // This browser signs in to the web app: the login and consent pages.
    let mut authorize = url::Url::parse(&format!("{}/authorize", app.address)).unwrap();
    authorize
        .query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", &web_id)
        .append_pair("redirect_uri", &redirect)
        .append_pair("scope", "profile photos:read")
        .append_pair("code_challenge", CHALLENGE)
        .append_pair("code_challenge_method", "S256");
    driver.goto(authorize.as_str()).await;
    driver.wait_for("to continue to Photo Sharing").await;
    audit.check(&driver, &source, "login").await;
    driver.type_into("#username", "alice").await;
    driver.type_into("#password", "not the password").await;
    driver.click("button[type=submit]").await;
    driver
        .wait_for("The username or password is incorrect")
        .await;
    audit.check(&driver, &source, "login, with its error").await;
    driver.type_into("#password", PASSWORD).await;
    driver.click("button[type=submit]").await;
    driver.wait_for("Allow Photo Sharing?").await;
    audit.check(&driver, &source, "consent").await;
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
                ("client_id", &web_id),
                ("code", &code),
                ("redirect_uri", &redirect),
                ("code_verifier", VERIFIER),
            ],
        )
        .await;
    assert_eq!(res.status(), 200, "the web app's code exchange");

    // The account page: two devices, this browser's and the phone's.
    driver.goto(&format!("{}/account", app.address)).await;
    let devices = driver.wait_for("Devices").await;
    assert!(
        devices.contains("Photo Sharing")
            && devices.contains("This browser")
            && devices.contains("ExampleApp 2.1 on Android 14"),
        "{devices}"
    );
    audit.check(&driver, &source, "account: devices").await;
    driver.screenshot("account_devices.png").await;

    // Sign the phone out: the row's button, then the confirmation page.
    driver
        .click("button[aria-label^='Sign out ExampleApp']")
        .await;
    driver.wait_for("Sign out ExampleApp on").await;
    audit
        .check(&driver, &source, "account: confirm sign-out")
        .await;
    driver.click("form.decision button[type=submit]").await;
    let after = driver.wait_for("The device was signed out").await;
    assert!(!after.contains("ExampleApp 2.1 on Android 14"), "{after}");
    audit
        .check(&driver, &source, "account: devices, after")
        .await;
    let refresh = phone["refresh_token"].as_str().unwrap();
    let res = app.refresh((&phone_id, &phone_secret), refresh).await;
    assert_eq!(res.status(), 400, "the phone was signed out");

    for (path, shows, page) in [
        (
            "/account/activity",
            "Security activity",
            "account: activity",
        ),
        ("/account/apps", "Apps with access", "account: apps"),
        ("/account/password", "Change password", "account: password"),
    ] {
        driver.goto(&format!("{}{path}", app.address)).await;
        driver.wait_for(shows).await;
        audit.check(&driver, &source, page).await;
        if path == "/account/activity" {
            let text = driver.text().await;
            assert!(
                text.contains("Signed in to ExampleApp")
                    && text.contains("You signed a device out"),
                "{text}"
            );
            driver.screenshot("account_activity.png").await;
        }
    }

    // Sign-in methods: an authenticator app set up with the QR page's key, recovery codes.
    driver
        .goto(&format!("{}/account/sign-in-methods", app.address))
        .await;
    driver.wait_for("Authenticator app").await;
    audit
        .check(&driver, &source, "account: sign-in methods")
        .await;
    driver.type_into("#current-app", PASSWORD).await;
    driver.click("#current-app ~ button").await;
    let setup = driver.wait_for("Type this key into the app instead").await;
    audit
        .check(&driver, &source, "account: authenticator set-up")
        .await;
    driver.screenshot("account_authenticator.png").await;
    let key = setup
        .split("Type this key into the app instead:")
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned();
    let totp = totp_rs::Totp::from_url(format!("otpauth://totp/T:a?secret={key}")).unwrap();
    let seconds = u64::try_from(app.clock.now().millis() / 1000).unwrap();
    driver
        .type_into("#code", &totp.generate(seconds).to_string())
        .await;
    driver.click("form button.primary").await;
    driver.wait_for("Your authenticator app is set up").await;
    driver.type_into("#current-codes", PASSWORD).await;
    driver.click("#current-codes ~ button").await;
    driver.wait_for("Your new recovery codes").await;
    audit
        .check(&driver, &source, "account: recovery codes")
        .await;
    driver
        .goto(&format!("{}/account/sign-in-methods", app.address))
        .await;
    let methods = driver.wait_for("10 left.").await;
    assert!(
        methods.contains("Remove the authenticator app"),
        "{methods}"
    );
    driver.screenshot("account_sign_in_methods.png").await;

    // An error page, and signing out of the browser.
    driver
        .goto(&format!("{}/authorize?client_id=nobody", app.address))
        .await;
    driver.wait_for("not known to this server").await;
    audit.check(&driver, &source, "error page").await;
    driver.goto(&format!("{}/account", app.address)).await;
    driver.wait_for("Devices").await;
    driver.click("form.switch button").await;
    driver.wait_for("You are signed out").await;
    audit.check(&driver, &source, "signed out").await;

    // Signing in again takes the password, then a code from the app (a step later: the code
    // that finished the set-up was spent).
    app.advance(std::time::Duration::from_secs(30));
    driver.goto(&format!("{}/account", app.address)).await;
    driver.wait_for("to continue to your account").await;
    driver.type_into("#username", "alice").await;
    driver.type_into("#password", PASSWORD).await;
    driver.click("button[type=submit]").await;
    driver.wait_for("Confirm it is you").await;
    audit.check(&driver, &source, "second step").await;
    driver.screenshot("second_step.png").await;
    let seconds = u64::try_from(app.clock.now().millis() / 1000).unwrap();
    driver
        .type_into("#code", &totp.generate(seconds).to_string())
        .await;
    driver.click("button[type=submit]").await;
    driver.wait_for("Devices").await;

    println!(
        "axe-core {}: {} rules (WCAG 2.0/2.1 A and AA) on {} pages: {}; {} violations",
        audit.version,
        audit.rules,
        audit.pages.len(),
        audit.pages.join(", "),
        audit.violations.len()
    );
    assert!(audit.rules > 20, "axe ran {} rules", audit.rules);
    assert!(
        audit.violations.is_empty(),
        "accessibility violations:\n{}",
        audit.violations.join("\n")
    );

    driver.session("DELETE", "", Value::Null).await;
    drop(driver);
    let _ = std::fs::remove_dir_all(&profile);
}
