//! Browser apps (single-page applications) calling from their own origin: CORS on `/token`,
//! `/revoke` and `/userinfo` for the origins the client registered, on discovery and the JWKS
//! for any origin, on nothing else; and a client's shorter refresh-token lifetime.

use std::time::Duration;

use reqwest::header::HeaderMap;
use reqwest::Method;
use serde_json::Value;
use tessera::domain::client::{AppOptions, ClientSpec, GrantType};
use tessera::domain::origin::Origin;
use tessera::domain::scope::Scope;

use crate::helpers::browser::{code_for, Browser, REDIRECT, VERIFIER};
use crate::helpers::{both_backends, Db, TestApp};

both_backends!(
    a_registered_origin_reads_sign_in_refresh_userinfo_and_revocation,
    other_origins_read_nothing_of_a_clients_answers,
    preflights_answer_registered_origins_and_the_methods_taken,
    discovery_and_keys_are_readable_from_any_origin,
    sign_in_pages_and_introspection_never_allow_cors,
    a_clients_refresh_tokens_live_no_longer_than_it_allows,
);

/// Where the app's scripts run (the redirect URI's origin).
const APP: &str = "http://localhost:9000";
/// An origin no client registered.
const ELSEWHERE: &str = "https://elsewhere.example";

/// A single-page app: public, code + PKCE with refresh tokens, allowed `origins`.
async fn spa(app: &TestApp, origins: &[&str], refresh_ttl: Option<Duration>) -> String {
    app.register(ClientSpec {
        name: "Photo Sharing".into(),
        public: true,
        grants: vec![GrantType::AuthorizationCode, GrantType::RefreshToken],
        scope: Scope::parse("openid profile").unwrap(),
        redirect_uris: vec![url::Url::parse(REDIRECT).unwrap()],
        openid: Default::default(),
        app: AppOptions {
            allowed_origins: origins.iter().map(|o| Origin::parse(o).unwrap()).collect(),
            refresh_absolute_ttl: refresh_ttl,
            require_dpop: false,
            require_second_factor: false,
        },
    })
    .await
    .0
}

/// A request as a script on `origin` sends it (the browser adds `Origin`).
async fn from(
    app: &TestApp,
    origin: &str,
    method: Method,
    path: &str,
    form: Option<&[(&str, &str)]>,
    bearer: Option<&str>,
) -> reqwest::Response {
    let mut req = reqwest::Client::new()
        .request(method, format!("{}{path}", app.address))
        .header("Origin", origin);
    if let Some(form) = form {
        req = req.form(form);
    }
    if let Some(token) = bearer {
        req = req.bearer_auth(token);
    }
    req.send().await.unwrap()
}

/// A token request from `origin` that names no client.
async fn nameless(app: &TestApp, origin: &str) -> reqwest::Response {
    let form: &[(&str, &str)] = &[("grant_type", "password")];
    from(app, origin, Method::POST, "/token", Some(form), None).await
}

/// A preflight for `method` from `origin`, as a browser sends it before a request with an
/// `Authorization` or `DPoP` header.
async fn preflight(app: &TestApp, origin: &str, path: &str, method: &str) -> reqwest::Response {
    reqwest::Client::new()
        .request(Method::OPTIONS, format!("{}{path}", app.address))
        .header("Origin", origin)
        .header("Access-Control-Request-Method", method)
        .header("Access-Control-Request-Headers", "authorization,dpop")
        .send()
        .await
        .unwrap()
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).map(|v| v.to_str().unwrap())
}

/// `origin` may read the answer: exactly that origin, the headers it may read, `Vary: Origin`,
/// and never credentials.
fn readable_by(headers: &HeaderMap, origin: &str) {
    assert_eq!(
        header(headers, "access-control-allow-origin"),
        Some(origin),
        "{headers:?}"
    );
    assert_eq!(
        header(headers, "access-control-expose-headers"),
        Some("DPoP-Nonce, WWW-Authenticate")
    );
    varies_by_origin(headers);
}

/// No origin may read the answer; caches still know that the answer depends on the origin.
fn unreadable(headers: &HeaderMap) {
    assert_eq!(
        header(headers, "access-control-allow-origin"),
        None,
        "{headers:?}"
    );
    assert_eq!(header(headers, "access-control-expose-headers"), None);
    varies_by_origin(headers);
}

fn varies_by_origin(headers: &HeaderMap) {
    assert!(
        headers.get_all("vary").iter().any(|v| v
            .to_str()
            .unwrap()
            .split(',')
            .any(|p| p.trim() == "Origin")),
        "no Vary: Origin in {headers:?}"
    );
    assert_eq!(
        header(headers, "access-control-allow-credentials"),
        None,
        "credentials are never allowed"
    );
}

/// The code exchange, as the app's script sends it from `origin`.
async fn exchange_from(app: &TestApp, origin: &str, client_id: &str) -> reqwest::Response {
    let browser = Browser::new(app);
    let code = code_for(app, &browser, client_id).await;
    from(
        app,
        origin,
        Method::POST,
        "/token",
        Some(&[
            ("grant_type", "authorization_code"),
            ("client_id", client_id),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", VERIFIER),
        ]),
        None,
    )
    .await
}

async fn refresh_from(
    app: &TestApp,
    origin: &str,
    client_id: &str,
    refresh: &str,
) -> reqwest::Response {
    from(
        app,
        origin,
        Method::POST,
        "/token",
        Some(&[
            ("grant_type", "refresh_token"),
            ("client_id", client_id),
            ("refresh_token", refresh),
        ]),
        None,
    )
    .await
}

/// The app's whole life in the browser: the code exchange, a refresh (rotated), userinfo,
/// and revocation on sign-out are all readable from its origin; so are its refusals, which
/// it must be able to tell from a network failure.
async fn a_registered_origin_reads_sign_in_refresh_userinfo_and_revocation(db: Db) {
    let app = TestApp::spawn(db).await;
    let client_id = spa(&app, &[APP], None).await;
    app.user("alice").await;

    let res = exchange_from(&app, APP, &client_id).await;
    assert_eq!(res.status(), 200);
    readable_by(res.headers(), APP);
    let tokens: Value = res.json().await.unwrap();
    let first = tokens["refresh_token"].as_str().unwrap().to_owned();

    let res = refresh_from(&app, APP, &client_id, &first).await;
    assert_eq!(res.status(), 200);
    readable_by(res.headers(), APP);
    let renewed: Value = res.json().await.unwrap();
    let second = renewed["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(first, second, "a browser app's refresh token rotates");

    // The rotated token again, past the retry grace, is a replay: refused, and the app can
    // read why.
    app.advance(Duration::from_secs(10));
    let res = refresh_from(&app, APP, &client_id, &first).await;
    assert_eq!(res.status(), 400);
    readable_by(res.headers(), APP);
    let refused: Value = res.json().await.unwrap();
    assert_eq!(refused["error"], "invalid_grant");

    let access = renewed["access_token"].as_str().unwrap();
    let res = from(&app, APP, Method::GET, "/userinfo", None, Some(access)).await;
    // The whole family went with the replay, this token too: a 401 the app can read.
    assert_eq!(res.status(), 401);
    readable_by(res.headers(), APP);
    assert!(header(res.headers(), "www-authenticate").is_some_and(|v| v.contains("invalid_token")));

    // A new sign-in: userinfo, then revocation at sign-out.
    let res = exchange_from(&app, APP, &client_id).await;
    let tokens: Value = res.json().await.unwrap();
    let access = tokens["access_token"].as_str().unwrap();
    let res = from(&app, APP, Method::GET, "/userinfo", None, Some(access)).await;
    assert_eq!(res.status(), 200);
    readable_by(res.headers(), APP);
    let res = from(
        &app,
        APP,
        Method::POST,
        "/revoke",
        Some(&[
            ("client_id", &client_id),
            ("token", tokens["refresh_token"].as_str().unwrap()),
        ]),
        None,
    )
    .await;
    assert_eq!(res.status(), 200);
    readable_by(res.headers(), APP);
    let res = refresh_from(
        &app,
        APP,
        &client_id,
        tokens["refresh_token"].as_str().unwrap(),
    )
    .await;
    assert_eq!(res.status(), 400);

    // A request that names no client can still be read by an origin a client registered.
    let res = nameless(&app, APP).await;
    assert_eq!(res.status(), 401);
    readable_by(res.headers(), APP);
}

/// A public client's requests come from its browser app: from an origin it did not register
/// (even one another client did, or the opaque `null`) they are refused before the code or the
/// refresh token is spent, and its answers are read by nobody else. Refusals are readable by
/// any registered origin, and read the same whether the client named exists, is disabled or
/// is refused for its origin.
async fn other_origins_read_nothing_of_a_clients_answers(db: Db) {
    let app = TestApp::spawn(db).await;
    let client_id = spa(&app, &[APP], None).await;
    let neighbour = "https://neighbour.example";
    let neighbour_id = spa(&app, &[neighbour], None).await;
    app.user("alice").await;
    let browser = Browser::new(&app);
    let code = code_for(&app, &browser, &client_id).await;
    let exchange = [
        ("grant_type", "authorization_code"),
        ("client_id", client_id.as_str()),
        ("code", code.as_str()),
        ("redirect_uri", REDIRECT),
        ("code_verifier", VERIFIER),
    ];

    for origin in [ELSEWHERE, neighbour, "null"] {
        let res = from(&app, origin, Method::POST, "/token", Some(&exchange), None).await;
        assert_eq!(res.status(), 401, "{origin}");
        if origin == neighbour {
            readable_by(res.headers(), neighbour);
        } else {
            unreadable(res.headers());
        }
        assert_eq!(
            res.json::<Value>().await.unwrap()["error"],
            "invalid_client"
        );
    }
    // Nothing was spent: the app's own origin redeems the code.
    let res = from(&app, APP, Method::POST, "/token", Some(&exchange), None).await;
    assert_eq!(res.status(), 200);
    let tokens: Value = res.json().await.unwrap();
    let refresh = tokens["refresh_token"].as_str().unwrap();
    let access = tokens["access_token"].as_str().unwrap();

    for origin in [ELSEWHERE, neighbour, "null"] {
        let res = refresh_from(&app, origin, &client_id, refresh).await;
        assert_eq!(res.status(), 401);
        let res = from(&app, origin, Method::GET, "/userinfo", None, Some(access)).await;
        assert_eq!(
            res.status(),
            200,
            "userinfo spends nothing: answered, unreadable"
        );
        unreadable(res.headers());
    }
    let res = refresh_from(&app, APP, &client_id, refresh).await;
    assert_eq!(
        res.status(),
        200,
        "the refusals did not rotate the refresh token"
    );

    // Without an Origin (a server, a native app), or from the issuer's own pages, nothing
    // changes but Vary.
    let renewed: Value = res.json().await.unwrap();
    let refresh = renewed["refresh_token"].as_str().unwrap();
    let plain = app
        .token(
            None,
            &[
                ("grant_type", "refresh_token"),
                ("client_id", &client_id),
                ("refresh_token", refresh),
            ],
        )
        .await;
    assert_eq!(plain.status(), 200);
    unreadable(plain.headers());
    let own = app.settings.server.issuer.origin().ascii_serialization();
    let next: Value = plain.json().await.unwrap();
    let res = refresh_from(
        &app,
        &own,
        &client_id,
        next["refresh_token"].as_str().unwrap(),
    )
    .await;
    assert_eq!(
        res.status(),
        200,
        "a page on the issuer's origin is not another origin"
    );
    unreadable(res.headers());

    // A confidential client is never refused for an Origin (a gateway may add one), and no
    // origin reads its answers.
    let (confidential, secret) = app.client(&[GrantType::ClientCredentials], false, "").await;
    let res = reqwest::Client::new()
        .post(format!("{}/token", app.address))
        .header("Origin", APP)
        .basic_auth(&confidential, secret.as_deref())
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    unreadable(res.headers());

    // From a registered origin, a refusal reads the same whoever it named: an unknown client,
    // a client refused for the origin, a disabled one.
    let disabled = spa(&app, &[APP], None).await;
    app.admin(&["client", "disable", &disabled, "--yes"], None)
        .await;
    let mut answers = Vec::new();
    for named in ["no-such-client", neighbour_id.as_str(), disabled.as_str()] {
        let res = refresh_from(&app, APP, named, "tsr_not_a_token").await;
        assert_eq!(res.status(), 401, "{named}");
        readable_by(res.headers(), APP);
        answers.push(res.json::<Value>().await.unwrap());
    }
    assert!(answers.windows(2).all(|w| w[0] == w[1]), "{answers:?}");

    // Disabled, the neighbour's origin reads nothing, not even refusals.
    app.admin(&["client", "disable", &neighbour_id, "--yes"], None)
        .await;
    let res = nameless(&app, neighbour).await;
    unreadable(res.headers());
    let res = preflight(&app, neighbour, "/userinfo", "GET").await;
    unreadable(res.headers());
}

/// A preflight names no client: it is answered for an origin some enabled client registered,
/// for the methods the path takes, with the headers a browser app sends (its client
/// authentication or bearer token, a DPoP proof) and how long to keep the answer.
async fn preflights_answer_registered_origins_and_the_methods_taken(db: Db) {
    let app = TestApp::spawn(db).await;
    spa(&app, &[APP], None).await;

    for (path, method, methods) in [
        ("/token", "POST", "POST"),
        ("/revoke", "POST", "POST"),
        ("/userinfo", "GET", "GET, POST"),
        ("/userinfo", "POST", "GET, POST"),
    ] {
        let res = preflight(&app, APP, path, method).await;
        assert_eq!(res.status(), 204, "{path}");
        let h = res.headers();
        assert_eq!(
            header(h, "access-control-allow-origin"),
            Some(APP),
            "{path}"
        );
        assert_eq!(header(h, "access-control-allow-methods"), Some(methods));
        assert_eq!(
            header(h, "access-control-allow-headers"),
            Some("Authorization, Content-Type, DPoP")
        );
        assert_eq!(header(h, "access-control-max-age"), Some("3600"));
        varies_by_origin(h);
    }

    // Another origin, a method the path does not take, no Origin at all: no CORS headers.
    for (origin, path, method) in [
        (ELSEWHERE, "/token", "POST"),
        ("null", "/token", "POST"),
        (APP, "/token", "GET"),
        (APP, "/revoke", "DELETE"),
    ] {
        let res = preflight(&app, origin, path, method).await;
        assert_eq!(res.status(), 204);
        unreadable(res.headers());
        assert_eq!(header(res.headers(), "access-control-allow-methods"), None);
    }
    let res = reqwest::Client::new()
        .request(Method::OPTIONS, format!("{}/token", app.address))
        .header("Origin", APP)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204, "an OPTIONS that asks about no method");
    unreadable(res.headers());
    let res = reqwest::Client::new()
        .request(Method::OPTIONS, format!("{}/token", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    assert_eq!(header(res.headers(), "allow"), Some("POST, OPTIONS"));
    assert_eq!(header(res.headers(), "access-control-allow-origin"), None);
}

/// Discovery and the JWKS are public documents: any origin reads them, no preflight needed
/// (and one answered anyway).
async fn discovery_and_keys_are_readable_from_any_origin(db: Db) {
    let app = TestApp::spawn(db).await;
    for path in [
        "/.well-known/openid-configuration",
        "/.well-known/oauth-authorization-server",
        "/jwks.json",
    ] {
        let res = from(&app, ELSEWHERE, Method::GET, path, None, None).await;
        assert_eq!(res.status(), 200, "{path}");
        assert_eq!(
            header(res.headers(), "access-control-allow-origin"),
            Some("*")
        );
        assert_eq!(
            header(res.headers(), "access-control-allow-credentials"),
            None
        );
        let res = preflight(&app, ELSEWHERE, path, "GET").await;
        assert_eq!(res.status(), 204);
        assert_eq!(
            header(res.headers(), "access-control-allow-origin"),
            Some("*")
        );
        assert_eq!(
            header(res.headers(), "access-control-allow-methods"),
            Some("GET")
        );
    }
}

/// The pages a user signs in on, whose session cookie is the credential, and introspection
/// (for resource servers) allow no other origin, whatever it registered.
async fn sign_in_pages_and_introspection_never_allow_cors(db: Db) {
    let app = TestApp::spawn(db).await;
    let client_id = spa(&app, &[APP], None).await;
    let authorize = format!(
        "/authorize?response_type=code&client_id={client_id}&redirect_uri={REDIRECT}&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256"
    );
    for (method, path) in [
        (Method::GET, authorize.as_str()),
        (Method::POST, "/login"),
        (Method::POST, "/consent"),
        (Method::POST, "/logout"),
        (Method::GET, "/end_session"),
        (Method::POST, "/introspect"),
        (Method::GET, "/static/tessera.css"),
        (Method::GET, "/openapi.json"),
        (Method::GET, "/healthz"),
    ] {
        let form: Option<&[(&str, &str)]> = (method == Method::POST).then_some(&[]);
        let res = from(&app, APP, method.clone(), path, form, None).await;
        assert_eq!(
            header(res.headers(), "access-control-allow-origin"),
            None,
            "{method} {path}"
        );
        let res = preflight(&app, APP, path, method.as_str()).await;
        assert_eq!(res.status(), 405, "OPTIONS {path}");
        assert_eq!(header(res.headers(), "access-control-allow-origin"), None);
    }
}

/// `--refresh-absolute-ttl`: the client's families end when it says, well before the
/// server's 30 days; another client's do not.
async fn a_clients_refresh_tokens_live_no_longer_than_it_allows(db: Db) {
    let app = TestApp::spawn(db).await;
    let short = spa(&app, &[APP], Some(Duration::from_secs(3600))).await;
    let long = spa(&app, &[APP], None).await;
    app.user("alice").await;
    let mut tokens = Vec::new();
    for client in [&short, &long] {
        let res = exchange_from(&app, APP, client).await;
        let body: Value = res.json().await.unwrap();
        tokens.push(body["refresh_token"].as_str().unwrap().to_owned());
    }

    // Within the hour, a refresh works and its successor keeps the family's end.
    app.advance(Duration::from_secs(50 * 60));
    let res = refresh_from(&app, APP, &short, &tokens[0]).await;
    assert_eq!(res.status(), 200);
    let next: Value = res.json().await.unwrap();
    app.advance(Duration::from_secs(11 * 60));
    let res = refresh_from(&app, APP, &short, next["refresh_token"].as_str().unwrap()).await;
    assert_eq!(res.status(), 400, "past the client's hour");
    readable_by(res.headers(), APP);
    assert_eq!(res.json::<Value>().await.unwrap()["error"], "invalid_grant");

    let res = refresh_from(&app, APP, &long, &tokens[1]).await;
    assert_eq!(
        res.status(),
        200,
        "the server's lifetime for the other client"
    );
    let longer: Value = res.json().await.unwrap();

    // Shortening a client's lifetime ends its families sooner, counted from their start: this
    // one began an hour ago.
    let out = app
        .admin(
            &[
                "client",
                "update",
                &long,
                "--refresh-absolute-ttl",
                "30m",
                "-o",
                "json",
            ],
            None,
        )
        .await;
    let updated: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(updated["shortened_families"], 1, "{updated}");
    let res = refresh_from(&app, APP, &long, longer["refresh_token"].as_str().unwrap()).await;
    assert_eq!(res.status(), 400);

    // The password grant's families (a confidential client) obey the cap too.
    let (id, secret) = app.password_client().await;
    app.admin(
        &["client", "update", &id, "--refresh-absolute-ttl", "1h"],
        None,
    )
    .await;
    let tokens = app.password_grant((&id, &secret), "alice").await;
    app.advance(Duration::from_secs(61 * 60));
    let res = app
        .refresh((&id, &secret), tokens["refresh_token"].as_str().unwrap())
        .await;
    assert_eq!(res.status(), 400);
}
