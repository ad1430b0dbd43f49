//! Back-channel logout (OpenID Connect Back-Channel Logout 1.0): the app's server hears, with a
//! logout token, of every way a sign-in of it ends; one test per path, and the token checked
//! as the certification suite checks it. Delivery: retried with backoff, given up in bounded
//! time, one instance per notice.

use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use p256::ecdsa::signature::Verifier;
use p256::ecdsa::{Signature, VerifyingKey};
use serde_json::Value;
use tessera::domain::client::{ClientSpec, GrantType, OpenIdOptions};
use tessera::domain::scope::Scope;

use super::{exchange, id_claims, request, visit};
use crate::helpers::browser::{Browser, REDIRECT};
use crate::helpers::receiver::Receiver;
use crate::helpers::{both_backends, claims, jwt_header, Db, TestApp, PASSWORD};

both_backends!(
    the_logout_token_is_what_the_certification_suite_validates,
    rp_initiated_logout_tells_the_app,
    reuse_detection_tells_the_app,
    revoking_the_refresh_token_tells_the_app,
    family_revoke_tells_the_app,
    a_password_change_tells_the_app,
    disabling_the_user_tells_the_app,
    a_family_at_its_absolute_lifetime_tells_the_app,
    a_failing_app_is_retried_with_backoff,
    an_app_that_refuses_the_token_is_not_retried,
    delivery_is_given_up_after_retry_for,
    a_client_that_needs_sid_hears_only_of_browser_sign_ins,
    two_instances_deliver_each_logout_once,
);

const WAIT: Duration = Duration::from_secs(30);
const LOGGED_OUT: &str = "http://localhost:9000/logged-out";

/// A server polling every 100 ms, a receiver, a client telling it of logouts, and alice signed
/// in through the browser: the app, the receiver, the client id, the tokens.
struct Setup {
    app: TestApp,
    receiver: Receiver,
    client_id: String,
    tokens: Value,
}

async fn setup(db: Db, extra: &[(&str, &str)], sid_required: bool) -> Setup {
    let mut env = vec![("TESSERA_BACKCHANNEL__POLL_INTERVAL", "100ms")];
    env.extend_from_slice(extra);
    let app = TestApp::spawn_with(db, &env).await;
    let receiver = Receiver::start().await;
    super::setup(&app).await;
    let client_id = register(&app, &receiver, sid_required).await;
    let browser = Browser::new(&app);
    let params = visit(&browser, &request(&client_id, &[("nonce", "n")])).await;
    let tokens = exchange(&app, &client_id, &params["code"]).await;
    Setup {
        app,
        receiver,
        client_id,
        tokens,
    }
}

async fn register(app: &TestApp, receiver: &Receiver, sid_required: bool) -> String {
    app.register(ClientSpec {
        name: "Photo Sharing".into(),
        public: true,
        grants: vec![
            GrantType::AuthorizationCode,
            GrantType::RefreshToken,
            GrantType::Password,
        ],
        scope: Scope::parse("openid profile").unwrap(),
        redirect_uris: vec![url::Url::parse(REDIRECT).unwrap()],
        openid: OpenIdOptions {
            post_logout_redirect_uris: vec![url::Url::parse(LOGGED_OUT).unwrap()],
            backchannel_logout_uri: Some(url::Url::parse(&receiver.url).unwrap()),
            backchannel_logout_session_required: sid_required,
            ..OpenIdOptions::default()
        },
        app: Default::default(),
    })
    .await
    .0
}

/// Checks a logout token as the certification suite does (Back-Channel Logout 1.0 §2.4, §2.6):
/// `typ`, a signature by a key of the JWKS, `iss`, `aud`, `iat`, `exp`, `jti`, `sub` and `sid` as
/// in the ID token, the event, and no `nonce`. Returns its claims.
async fn check_logout_token(s: &Setup, token: &str) -> Value {
    let header = jwt_header(token);
    assert_eq!(header["typ"], "logout+jwt");
    assert_eq!(header["alg"], "ES256");
    let jwks: Value = s
        .app
        .http
        .get(format!("{}/jwks.json", s.app.address))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let jwk = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == header["kid"])
        .expect("signed by a published key");
    let b64 = |v: &Value| URL_SAFE_NO_PAD.decode(v.as_str().unwrap()).unwrap();
    let mut point = vec![4u8];
    point.extend(b64(&jwk["x"]));
    point.extend(b64(&jwk["y"]));
    let key = VerifyingKey::from_sec1_bytes(&point).unwrap();
    let (input, sig) = token.rsplit_once('.').unwrap();
    let sig = Signature::from_slice(&URL_SAFE_NO_PAD.decode(sig).unwrap()).unwrap();
    key.verify(input.as_bytes(), &sig)
        .expect("the signature verifies");

    let c = claims(token);
    let id = id_claims(&s.tokens);
    assert_eq!(c["iss"], s.app.settings.issuer());
    assert_eq!(c["aud"], s.client_id.as_str());
    assert_eq!(c["sub"], id["sub"]);
    let (iat, exp) = (c["iat"].as_i64().unwrap(), c["exp"].as_i64().unwrap());
    assert!(exp > iat && exp - iat <= 300, "{c}");
    assert!(c["jti"].as_str().is_some_and(|j| j.len() >= 16), "{c}");
    assert!(
        c["events"]["http://schemas.openid.net/event/backchannel-logout"].is_object(),
        "{c}"
    );
    assert!(c.get("nonce").is_none(), "{c}");
    c
}

/// The one logout token this path sent, checked, with the session's `sid`.
async fn told(s: &Setup) -> Value {
    let tokens = s.receiver.wait_for(1, WAIT).await;
    let c = check_logout_token(s, &tokens[0]).await;
    assert_eq!(c["sid"], id_claims(&s.tokens)["sid"]);
    c
}

fn refresh_token(s: &Setup) -> &str {
    s.tokens["refresh_token"].as_str().unwrap()
}

async fn the_logout_token_is_what_the_certification_suite_validates(db: Db) {
    let s = setup(db, &[], false).await;
    s.app
        .admin(&["user", "disable", "alice", "--yes"], None)
        .await;
    told(&s).await;
    assert_eq!(
        s.receiver.content_types()[0],
        "application/x-www-form-urlencoded"
    );
    // Nothing more: one notice per app session.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(s.receiver.tokens().len(), 1);
}

/// The user signs out at the app's request (with the session's ID token as hint): the app is
/// told of the end of the family begun in that session.
async fn rp_initiated_logout_tells_the_app(db: Db) {
    let s = setup(db, &[], false).await;
    let browser = Browser::new(&s.app);
    let params = visit(&browser, &request(&s.client_id, &[])).await;
    let hinted = exchange(&s.app, &s.client_id, &params["code"]).await;
    let res = browser
        .get(&format!(
            "/end_session?id_token_hint={}",
            hinted["id_token"].as_str().unwrap()
        ))
        .await;
    assert_eq!(res.status(), 200);
    let tokens = s.receiver.wait_for(1, WAIT).await;
    let c = claims(&tokens[0]);
    assert_eq!(c["sid"], id_claims(&hinted)["sid"]);
    assert_eq!(c["sub"], id_claims(&hinted)["sub"]);
    assert_ne!(c["sid"], id_claims(&s.tokens)["sid"], "only that session");
}

async fn reuse_detection_tells_the_app(db: Db) {
    let s = setup(db, &[], false).await;
    let refresh = |token: String| {
        let (app, id) = (&s.app, s.client_id.clone());
        async move {
            app.token(
                None,
                &[
                    ("grant_type", "refresh_token"),
                    ("client_id", &id),
                    ("refresh_token", &token),
                ],
            )
            .await
        }
    };
    assert_eq!(refresh(refresh_token(&s).to_owned()).await.status(), 200);
    // Past the grace window, the rotated token comes back: a replay.
    s.app.advance(Duration::from_secs(60));
    assert_eq!(refresh(refresh_token(&s).to_owned()).await.status(), 400);
    told(&s).await;
}

async fn revoking_the_refresh_token_tells_the_app(db: Db) {
    let s = setup(db, &[], false).await;
    let res = s
        .app
        .http
        .post(format!("{}/revoke", s.app.address))
        .form(&[
            ("token", refresh_token(&s)),
            ("client_id", s.client_id.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    told(&s).await;
}

async fn family_revoke_tells_the_app(db: Db) {
    let s = setup(db, &[], false).await;
    let family = claims(s.tokens["access_token"].as_str().unwrap())["sid"]
        .as_str()
        .unwrap()
        .to_owned();
    let out = s
        .app
        .admin(&["family", "revoke", &family, "--yes"], None)
        .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let c = told(&s).await;
    // `family show` says what became of the notice.
    let shown = s
        .app
        .admin(&["family", "show", &family, "-o", "json"], None)
        .await;
    let shown: Value = serde_json::from_slice(&shown.stdout).unwrap();
    let notices = &shown["logout_notices"];
    crate::helpers::eventually("the notice is marked delivered", WAIT, || async {
        let shown = s
            .app
            .admin(&["family", "show", &family, "-o", "json"], None)
            .await;
        let shown: Value = serde_json::from_slice(&shown.stdout).unwrap();
        (shown["logout_notices"][0]["state"] == "delivered").then_some(())
    })
    .await;
    assert_eq!(notices[0]["id"], c["jti"]);
}

async fn a_password_change_tells_the_app(db: Db) {
    let s = setup(db, &[], false).await;
    let out = s
        .app
        .admin(
            &["user", "set-password", "alice", "--password-stdin", "--yes"],
            Some(&format!("{PASSWORD}-new\n")),
        )
        .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    told(&s).await;
}

async fn disabling_the_user_tells_the_app(db: Db) {
    let s = setup(db, &[], false).await;
    s.app
        .admin(&["user", "disable", "alice", "--yes"], None)
        .await;
    let c = told(&s).await;
    assert!(c["sid"].is_string());
}

/// Nothing revokes it: the family simply reaches `tokens.refresh_absolute_ttl`.
async fn a_family_at_its_absolute_lifetime_tells_the_app(db: Db) {
    let lifetimes = [
        ("TESSERA_TOKENS__REFRESH_IDLE_TTL", "1h"),
        ("TESSERA_TOKENS__REFRESH_ABSOLUTE_TTL", "1h"),
    ];
    let s = setup(db, &lifetimes, false).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(s.receiver.tokens().is_empty(), "not before its end");
    s.app.advance(Duration::from_secs(3601));
    told(&s).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(s.receiver.tokens().len(), 1, "once");
}

/// A 500 and a dropped connection are retried after a backoff; the same token id comes again.
async fn a_failing_app_is_retried_with_backoff(db: Db) {
    let s = setup(
        db,
        &[("TESSERA_SERVER__METRICS_LISTEN", "127.0.0.1:0")],
        false,
    )
    .await;
    s.receiver.answer(&[500]);
    s.app
        .admin(&["user", "disable", "alice", "--yes"], None)
        .await;
    let first = s.receiver.wait_for(1, WAIT).await;
    // Not before the backoff (1 s on the server's clock).
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(s.receiver.tokens().len(), 1);
    s.app.advance(Duration::from_secs(2));
    let both = s.receiver.wait_for(2, WAIT).await;
    assert_eq!(claims(&both[1])["jti"], claims(&first[0])["jti"]);
    let metrics = crate::helpers::eventually("delivery is counted", WAIT, || async {
        let metrics = s
            .app
            .http
            .get(s.app.metrics.as_deref().unwrap())
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        metrics
            .contains("tessera_backchannel_logouts_total{outcome=\"delivered\"} 1")
            .then_some(metrics)
    })
    .await;
    assert!(
        metrics.contains("tessera_backchannel_logouts_total{outcome=\"retried\"} 1"),
        "{metrics}"
    );
}

async fn an_app_that_refuses_the_token_is_not_retried(db: Db) {
    let s = setup(db, &[], false).await;
    s.receiver.answer(&[400]);
    s.app
        .admin(&["user", "disable", "alice", "--yes"], None)
        .await;
    s.receiver.wait_for(1, WAIT).await;
    s.app.advance(Duration::from_secs(600));
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(s.receiver.tokens().len(), 1);
}

/// Always failing: attempts at 0 s, 1 s and 3 s; the next would be at 7 s, past `retry_for`.
async fn delivery_is_given_up_after_retry_for(db: Db) {
    let s = setup(db, &[("TESSERA_BACKCHANNEL__RETRY_FOR", "5s")], false).await;
    s.receiver.answer(&[503; 20]);
    s.app
        .admin(&["user", "disable", "alice", "--yes"], None)
        .await;
    s.receiver.wait_for(1, WAIT).await;
    s.app.advance(Duration::from_secs(1));
    s.receiver.wait_for(2, WAIT).await;
    s.app.advance(Duration::from_secs(2));
    s.receiver.wait_for(3, WAIT).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    s.app.advance(Duration::from_secs(600));
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(s.receiver.tokens().len(), 3, "given up after 5 s");
}

/// `--backchannel-logout-session-required`: a password-grant family has no browser session,
/// so nothing is sent for it; a browser sign-in's family is told, with `sid`.
async fn a_client_that_needs_sid_hears_only_of_browser_sign_ins(db: Db) {
    let s = setup(db, &[], true).await;
    let res = s
        .app
        .token(
            None,
            &[
                ("grant_type", "password"),
                ("client_id", &s.client_id),
                ("username", "alice"),
                ("password", PASSWORD),
                ("scope", "openid"),
            ],
        )
        .await;
    assert_eq!(res.status(), 200);
    s.app
        .admin(&["user", "disable", "alice", "--yes"], None)
        .await;
    let c = told(&s).await;
    assert!(c["sid"].is_string());
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(s.receiver.tokens().len(), 1);
}

/// Two instances on one database, both polling: each of five notices is delivered once.
async fn two_instances_deliver_each_logout_once(db: Db) {
    let s = setup(db, &[], false).await;
    let env = [("TESSERA_BACKCHANNEL__POLL_INTERVAL", "50ms")];
    let _second = TestApp::spawn_on(db, &s.app.db_url, &s.app.master_key, &env).await;
    for _ in 0..4 {
        let browser = Browser::new(&s.app);
        let params = visit(&browser, &request(&s.client_id, &[])).await;
        exchange(&s.app, &s.client_id, &params["code"]).await;
    }
    s.app
        .admin(&["user", "disable", "alice", "--yes"], None)
        .await;
    let tokens = s.receiver.wait_for(5, WAIT).await;
    tokio::time::sleep(Duration::from_millis(700)).await;
    let mut ids: Vec<String> = s
        .receiver
        .tokens()
        .iter()
        .map(|t| claims(t)["jti"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids.len(), 5, "{tokens:?}");
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 5, "five distinct notices");
}
