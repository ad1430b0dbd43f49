//! A browser for the sign-in pages, and the authorization-code flow's other helpers.

use tessera::domain::client::GrantType;
use tessera::value::UnixMs;

use crate::helpers::{TestApp, PASSWORD};

pub const REDIRECT: &str = "http://localhost:9000/callback";

pub const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";

pub const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

/// A public client for browser sign-in, and a user.
pub async fn setup(app: &TestApp) -> String {
    let spec = tessera::domain::client::ClientSpec {
        name: "Photo Sharing".into(),
        public: true,
        grants: vec![GrantType::AuthorizationCode, GrantType::RefreshToken],
        scope: tessera::domain::scope::Scope::parse("profile photos:read").unwrap(),
        redirect_uris: vec![url::Url::parse(REDIRECT).unwrap()],
        openid: Default::default(),
        app: Default::default(),
    };
    let id = app.register(spec).await.0;
    app.user("alice").await;
    id
}

/// A browser: cookies kept, redirects not followed (the tests look at each one).
pub struct Browser<'a> {
    app: &'a TestApp,
    http: reqwest::Client,
}

impl<'a> Browser<'a> {
    pub fn new(app: &'a TestApp) -> Self {
        let http = reqwest::Client::builder()
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        Self { app, http }
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.http
            .get(format!("{}{path}", self.app.address))
            .send()
            .await
            .unwrap()
    }

    /// The page at `path`, as text.
    pub async fn page(&self, path: &str) -> String {
        self.get(path).await.text().await.unwrap()
    }

    pub async fn post(&self, path: &str, form: &[(&str, &str)]) -> reqwest::Response {
        self.http
            .post(format!("{}{path}", self.app.address))
            .form(form)
            .send()
            .await
            .unwrap()
    }

    pub async fn authorize(&self, q: &str) -> reqwest::Response {
        self.get(&format!("/authorize?{q}")).await
    }

    /// Opens /authorize, signs in; returns the page /authorize shows next.
    pub async fn sign_in(&self, q: &str, username: &str, password: &str) -> reqwest::Response {
        let html = self.authorize(q).await.text().await.unwrap();
        assert!(html.contains("Sign in"), "{html}");
        let res = self
            .post(
                "/login",
                &[
                    ("csrf", &field(&html, "csrf")),
                    ("authorize", &field(&html, "authorize")),
                    ("username", username),
                    ("password", password),
                ],
            )
            .await;
        if res.status() != 303 {
            return res;
        }
        let next = res.headers()["location"].to_str().unwrap().to_owned();
        self.get(&next).await
    }

    /// The account page's sign-in: `/account`, then its login form with `username` and the
    /// test password; the answer (a redirect back, or the second step or its set-up).
    pub async fn account_login(&self, username: &str) -> reqwest::Response {
        let html = self.page("/account").await;
        self.post(
            "/login",
            &[
                ("csrf", &field(&html, "csrf")),
                ("next", "account"),
                ("username", username),
                ("password", PASSWORD),
            ],
        )
        .await
    }

    /// Answers the consent page in `html`; returns the response (a redirect).
    pub async fn decide(&self, html: &str, decision: &str) -> reqwest::Response {
        self.post(
            "/consent",
            &[
                ("csrf", &field(html, "csrf")),
                ("shown", &field(html, "shown")),
                ("authorize", &field(html, "authorize")),
                ("decision", decision),
            ],
        )
        .await
    }
}

pub fn query(client_id: &str, extra: &[(&str, &str)]) -> String {
    let mut q = url::form_urlencoded::Serializer::new(String::new());
    q.append_pair("response_type", "code")
        .append_pair("client_id", client_id)
        .append_pair("redirect_uri", REDIRECT)
        .append_pair("scope", "profile")
        .append_pair("state", "af0ifjsldkj")
        .append_pair("code_challenge", CHALLENGE)
        .append_pair("code_challenge_method", "S256");
    for (k, v) in extra {
        q.append_pair(k, v);
    }
    q.finish()
}

/// The value of a hidden form field.
pub fn field(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html
        .find(&marker)
        .unwrap_or_else(|| panic!("no {name} field in:\n{html}"))
        + marker.len();
    let end = html[start..].find('"').unwrap() + start;
    html[start..end].replace("&#38;", "&").replace("&amp;", "&")
}

/// The query of a redirect back to the client.
pub fn redirect_params(res: &reqwest::Response) -> std::collections::HashMap<String, String> {
    assert_eq!(res.status(), 303, "expected a redirect");
    let location = res.headers()["location"].to_str().unwrap();
    assert!(location.starts_with(REDIRECT), "{location}");
    url::Url::parse(location)
        .unwrap()
        .query_pairs()
        .into_owned()
        .collect()
}

pub async fn exchange(
    app: &TestApp,
    client_id: &str,
    code: &str,
    verifier: &str,
) -> reqwest::Response {
    app.token(
        None,
        &[
            ("grant_type", "authorization_code"),
            ("client_id", client_id),
            ("code", code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", verifier),
        ],
    )
    .await
}

/// Gets a code the way a browser would: signing in and consenting only when asked.
pub async fn code_for(app: &TestApp, browser: &Browser<'_>, client_id: &str) -> String {
    code_for_with(app, browser, client_id, &[]).await
}

/// [`code_for`], with `extra` parameters in the authorization request.
pub async fn code_for_with(
    app: &TestApp,
    browser: &Browser<'_>,
    client_id: &str,
    extra: &[(&str, &str)],
) -> String {
    let q = query(client_id, extra);
    let mut res = browser.authorize(&q).await;
    if res.status() == 200 {
        let html = res.text().await.unwrap();
        if html.contains("Sign in") {
            res = browser.sign_in(&q, "alice", PASSWORD).await;
        } else {
            res = browser.decide(&html, "approve").await;
        }
    }
    if res.status() == 200 {
        let html = res.text().await.unwrap();
        res = browser.decide(&html, "approve").await;
    }
    let _ = app;
    redirect_params(&res)["code"].clone()
}

/// A confidential client with the same redirect URI as [`setup`]'s public one.
pub async fn confidential(app: &TestApp) -> String {
    let spec = tessera::domain::client::ClientSpec {
        name: "Photo Sharing".into(),
        public: false,
        grants: vec![GrantType::AuthorizationCode],
        scope: tessera::domain::scope::Scope::parse("profile photos:read").unwrap(),
        redirect_uris: vec![url::Url::parse(REDIRECT).unwrap()],
        openid: Default::default(),
        app: Default::default(),
    };
    app.register(spec).await.0
}

/// The code an authenticator app with the key `secret` (base32) shows at `at`.
pub fn code_at(secret: &str, at: UnixMs) -> String {
    let app = totp_rs::Totp::from_url(format!("otpauth://totp/T:a?secret={secret}")).unwrap();
    app.generate(u64::try_from(at.millis() / 1000).unwrap())
        .to_string()
}
