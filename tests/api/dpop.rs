//! DPoP at the token endpoint (RFC 9449): every check of a proof (§4.3) refuses with
//! `invalid_dpop_proof` and changes nothing; a good proof binds the access token (`cnf.jkt`,
//! `token_type: DPoP`) and, for a public client, the refresh-token family to the key.

use std::time::Duration;

use serde_json::{json, Value};
use tessera::domain::client::{ClientSpec, GrantType};
use tessera::domain::scope::Scope;

use crate::helpers::browser::{
    code_for, code_for_with, query, redirect_params, Browser, REDIRECT, VERIFIER,
};
use crate::helpers::dpop::DpopKey;
use crate::helpers::{both_backends, claims, Db, TestApp};

both_backends!(
    a_public_clients_tokens_are_bound_to_its_key,
    every_failed_check_is_invalid_dpop_proof_and_changes_nothing,
    a_confidential_clients_refresh_token_is_bound_to_the_client,
    userinfo_takes_a_bound_token_only_with_a_proof_from_its_key,
    a_client_that_requires_dpop_gets_no_token_without_a_proof,
    server_nonces_are_asked_for_and_handed_out,
    a_code_bound_to_a_key_goes_only_with_a_proof_from_it,
);

/// The token endpoint as the issuer names it (`server.issuer` is `http://tessera.test` in the
/// tests, while requests go to 127.0.0.1): what `htu` must say.
const HTU: &str = "http://tessera.test/token";

/// A password grant's form for alice.
const ALICE: [(&str, &str); 3] = [
    ("grant_type", "password"),
    ("username", "alice"),
    ("password", crate::helpers::PASSWORD),
];

fn now(app: &TestApp) -> i64 {
    app.clock.now().unix_seconds()
}

/// `POST /token` with `proofs` as `DPoP` headers, optional Basic credentials and a user agent.
async fn token(
    app: &TestApp,
    proofs: &[&str],
    basic: Option<(&str, &str)>,
    form: &[(&str, &str)],
) -> reqwest::Response {
    let mut req = reqwest::Client::new()
        .post(format!("{}/token", app.address))
        .header("User-Agent", "photos-app/1.0")
        .form(form);
    for proof in proofs {
        req = req.header("DPoP", *proof);
    }
    if let Some((id, secret)) = basic {
        req = req.basic_auth(id, Some(secret));
    }
    req.send().await.unwrap()
}

async fn error_of(res: reqwest::Response) -> (u16, String) {
    let status = res.status().as_u16();
    let body: Value = res.json().await.unwrap();
    (
        status,
        body["error"].as_str().unwrap_or_default().to_owned(),
    )
}

async fn public_client(app: &TestApp) -> String {
    app.register(ClientSpec {
        name: "Photos".into(),
        public: true,
        grants: vec![GrantType::AuthorizationCode, GrantType::RefreshToken],
        scope: Scope::parse("profile").unwrap(),
        redirect_uris: vec![url::Url::parse(REDIRECT).unwrap()],
        openid: Default::default(),
        app: Default::default(),
    })
    .await
    .0
}

fn refresh_form<'a>(client_id: &'a str, refresh: &'a str) -> [(&'a str, &'a str); 3] {
    [
        ("grant_type", "refresh_token"),
        ("client_id", client_id),
        ("refresh_token", refresh),
    ]
}

/// The key the access token is bound to, if any.
fn bound_to(tokens: &Value) -> Option<String> {
    claims(tokens["access_token"].as_str().unwrap())["cnf"]["jkt"]
        .as_str()
        .map(str::to_owned)
}

/// A mobile app with a key that never leaves it: the code exchange binds the access token and
/// the family; each refresh needs a proof from that key, or is refused without consuming the
/// token; a grace retry is recognised by the key, not the user agent; and a stolen token
/// replayed without the key neither works nor revokes the owner's family.
async fn a_public_clients_tokens_are_bound_to_its_key(db: Db) {
    let app = TestApp::spawn(db).await;
    let client_id = public_client(&app).await;
    app.user("alice").await;
    let key = DpopKey::new();
    let browser = Browser::new(&app);
    let code = code_for(&app, &browser, &client_id).await;
    let res = token(
        &app,
        &[&key.proof("POST", HTU, now(&app))],
        None,
        &[
            ("grant_type", "authorization_code"),
            ("client_id", &client_id),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", VERIFIER),
        ],
    )
    .await;
    assert_eq!(res.status(), 200);
    let first: Value = res.json().await.unwrap();
    assert_eq!(first["token_type"], "DPoP");
    assert_eq!(bound_to(&first).as_deref(), Some(key.thumbprint().as_str()));
    let t1 = first["refresh_token"].as_str().unwrap();
    let family = claims(first["access_token"].as_str().unwrap())["sid"]
        .as_str()
        .unwrap()
        .to_owned();
    let shown = app.admin(&["family", "show", &family], None).await;
    let text = String::from_utf8_lossy(&shown.stdout);
    assert!(
        text.contains(&format!("dpop     bound to key {}", key.thumbprint())),
        "{text}"
    );

    // Without a proof, or with another key's: refused, and the token stays unspent.
    let thief = DpopKey::new();
    for proofs in [vec![], vec![thief.proof("POST", HTU, now(&app))]] {
        let proofs: Vec<&str> = proofs.iter().map(String::as_str).collect();
        let res = token(&app, &proofs, None, &refresh_form(&client_id, t1)).await;
        assert_eq!(error_of(res).await, (400, "invalid_grant".into()));
    }
    let res = token(
        &app,
        &[&key.proof("POST", HTU, now(&app))],
        None,
        &refresh_form(&client_id, t1),
    )
    .await;
    assert_eq!(res.status(), 200, "the refusals did not consume the token");
    let second: Value = res.json().await.unwrap();
    assert_eq!(second["token_type"], "DPoP");
    assert_eq!(
        bound_to(&second).as_deref(),
        Some(key.thumbprint().as_str())
    );
    let t2 = second["refresh_token"].as_str().unwrap();

    // A lost response: the retry with the key (from another user agent) gets the same
    // successor.
    let retry = reqwest::Client::new()
        .post(format!("{}/token", app.address))
        .header("User-Agent", "photos-app/1.0 (after a network switch)")
        .header("DPoP", key.proof("POST", HTU, now(&app)))
        .form(&refresh_form(&client_id, t1))
        .send()
        .await
        .unwrap();
    assert_eq!(retry.status(), 200);
    let retried: Value = retry.json().await.unwrap();
    assert_eq!(retried["refresh_token"], second["refresh_token"]);

    // Later, the spent token without the key is refused and revokes nothing: the owner's
    // current token still works.
    app.advance(Duration::from_secs(60));
    let res = token(
        &app,
        &[&thief.proof("POST", HTU, now(&app))],
        None,
        &refresh_form(&client_id, t1),
    )
    .await;
    assert_eq!(error_of(res).await, (400, "invalid_grant".into()));
    let res = token(
        &app,
        &[&key.proof("POST", HTU, now(&app))],
        None,
        &refresh_form(&client_id, t2),
    )
    .await;
    assert_eq!(res.status(), 200);
    // With the key, the spent token is a replay as ever: the family is revoked.
    let res = token(
        &app,
        &[&key.proof("POST", HTU, now(&app))],
        None,
        &refresh_form(&client_id, t1),
    )
    .await;
    let (status, error) = error_of(res).await;
    assert_eq!((status, error.as_str()), (400, "invalid_grant"));
    let families = app
        .admin(
            &["family", "list", "--client", &client_id, "-o", "json"],
            None,
        )
        .await;
    let families: Value = serde_json::from_slice(&families.stdout).unwrap();
    assert_eq!(families[0]["state"], "revoked", "{families:#}");
    // The incident says the replay came with a proof, and from which key.
    let incidents = app.admin(&["incident", "list", "-o", "json"], None).await;
    let incidents: Value = serde_json::from_slice(&incidents.stdout).unwrap();
    assert_eq!(incidents[0]["dpop_jkt"], key.thumbprint(), "{incidents:#}");
}

/// RFC 9449 §4.3, each check on its own through the real endpoint: the answer is
/// `invalid_dpop_proof`, and no family was started. `htu` is the issuer's URL, not the
/// address the request was sent to (as behind a proxy).
async fn every_failed_check_is_invalid_dpop_proof_and_changes_nothing(db: Db) {
    let app = TestApp::spawn(db).await;
    let (id, secret) = app.password_client().await;
    app.user("alice").await;
    let key = DpopKey::new();
    let other = DpopKey::new();
    let t = now(&app);
    let fresh = || DpopKey::claims("POST", HTU, t);
    let with = |mut v: Value, k: &str, x: Value| {
        v[k] = x;
        v
    };
    let without = |mut v: Value, k: &str| {
        v.as_object_mut().unwrap().remove(k);
        v
    };
    let mut private = key.jwk();
    private["d"] = json!("c2VjcmV0");
    let used = key.proof("POST", HTU, t);
    let cases: Vec<(&str, Vec<String>)> = vec![
        ("not a JWT", vec!["not-a-jwt".into()]),
        (
            "typ",
            vec![key.sign(&with(key.header(), "typ", json!("JWT")), &fresh())],
        ),
        (
            "alg none",
            vec![key.sign(&with(key.header(), "alg", json!("none")), &fresh())],
        ),
        (
            "alg HS256",
            vec![key.sign(&with(key.header(), "alg", json!("HS256")), &fresh())],
        ),
        (
            "private jwk",
            vec![key.sign(&with(key.header(), "jwk", private), &fresh())],
        ),
        (
            "no jwk",
            vec![key.sign(&without(key.header(), "jwk"), &fresh())],
        ),
        (
            "signed by another key",
            vec![other.sign(&key.header(), &fresh())],
        ),
        (
            "htm",
            vec![key.sign(&key.header(), &with(fresh(), "htm", json!("GET")))],
        ),
        (
            "htu of the address sent to",
            vec![key.sign(
                &key.header(),
                &with(fresh(), "htu", json!(format!("{}/token", app.address))),
            )],
        ),
        (
            "htu of another endpoint",
            vec![key.proof("POST", "http://tessera.test/revoke", t)],
        ),
        ("iat too old", vec![key.proof("POST", HTU, t - 3600)]),
        ("iat in the future", vec![key.proof("POST", HTU, t + 3600)]),
        (
            "no jti",
            vec![key.sign(&key.header(), &without(fresh(), "jti"))],
        ),
        (
            "no iat",
            vec![key.sign(&key.header(), &without(fresh(), "iat"))],
        ),
        (
            "two proofs",
            vec![key.proof("POST", HTU, t), key.proof("POST", HTU, t)],
        ),
    ];
    let form = ALICE;
    for (why, proofs) in &cases {
        let proofs: Vec<&str> = proofs.iter().map(String::as_str).collect();
        let res = token(&app, &proofs, Some((&id, &secret)), &form).await;
        let (status, error) = error_of(res).await;
        assert_eq!(
            (status, error.as_str()),
            (400, "invalid_dpop_proof"),
            "{why}"
        );
    }
    let families = app.admin(&["family", "list", "-o", "json"], None).await;
    let families: Value = serde_json::from_slice(&families.stdout).unwrap();
    assert_eq!(families, json!([]), "a refused proof starts nothing");

    // A good proof passes once; the same proof again (its jti) is refused.
    let res = token(&app, &[&used], Some((&id, &secret)), &form).await;
    assert_eq!(res.status(), 200);
    let res = token(&app, &[&used], Some((&id, &secret)), &form).await;
    assert_eq!(error_of(res).await, (400, "invalid_dpop_proof".into()));
    // Within the clock skew either way, a proof is accepted.
    for iat in [t - 65, t + 9] {
        let res = token(
            &app,
            &[&key.proof("POST", HTU, iat)],
            Some((&id, &secret)),
            &form,
        )
        .await;
        assert_eq!(res.status(), 200, "iat {iat} against {t}");
    }
    let metadata: Value = reqwest::get(format!(
        "{}/.well-known/oauth-authorization-server",
        app.address
    ))
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    assert_eq!(
        metadata["dpop_signing_alg_values_supported"],
        json!(["ES256", "EdDSA", "RS256", "PS256"])
    );
}

/// RFC 9449 §5: a confidential client's refresh token is bound to the client (its secret);
/// each access token to the key of the request that got it, if any.
async fn a_confidential_clients_refresh_token_is_bound_to_the_client(db: Db) {
    let app = TestApp::spawn(db).await;
    let (id, secret) = app.password_client().await;
    app.user("alice").await;
    let key = DpopKey::new();
    let res = token(
        &app,
        &[&key.proof("POST", HTU, now(&app))],
        Some((&id, &secret)),
        &ALICE,
    )
    .await;
    assert_eq!(res.status(), 200);
    let first: Value = res.json().await.unwrap();
    assert_eq!(bound_to(&first).as_deref(), Some(key.thumbprint().as_str()));
    let plain = app
        .refreshed((&id, &secret), first["refresh_token"].as_str().unwrap())
        .await;
    assert_eq!(plain["token_type"], "Bearer");
    assert_eq!(bound_to(&plain), None);
    let other = DpopKey::new();
    let res = token(
        &app,
        &[&other.proof("POST", HTU, now(&app))],
        Some((&id, &secret)),
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", plain["refresh_token"].as_str().unwrap()),
        ],
    )
    .await;
    assert_eq!(res.status(), 200);
    let bound: Value = res.json().await.unwrap();
    assert_eq!(
        bound_to(&bound).as_deref(),
        Some(other.thumbprint().as_str())
    );
    // client_credentials: an access token bound to the key too.
    let (cc, cc_secret) = app.client(&[GrantType::ClientCredentials], false, "").await;
    let res = token(
        &app,
        &[&key.proof("POST", HTU, now(&app))],
        Some((&cc, cc_secret.as_deref().unwrap())),
        &[("grant_type", "client_credentials")],
    )
    .await;
    let answer: Value = res.json().await.unwrap();
    assert_eq!(answer["token_type"], "DPoP");
    assert_eq!(
        bound_to(&answer).as_deref(),
        Some(key.thumbprint().as_str())
    );
}

/// `/userinfo` as a resource (RFC 9449 §7): a bound token with `Authorization: DPoP` and a
/// proof from its key for this request (`htm`, `htu`, `ath`), each proof once; never as a
/// bearer token; and a bearer token never with the DPoP scheme. Refusals are 401 with a
/// `DPoP` challenge naming the algorithms.
async fn userinfo_takes_a_bound_token_only_with_a_proof_from_its_key(db: Db) {
    let app = TestApp::spawn(db).await;
    let (id, secret) = app.password_client().await;
    app.user("alice").await;
    let key = DpopKey::new();
    let form = ALICE;
    let res = token(
        &app,
        &[&key.proof("POST", HTU, now(&app))],
        Some((&id, &secret)),
        &form,
    )
    .await;
    let bound: Value = res.json().await.unwrap();
    let access = bound["access_token"].as_str().unwrap().to_owned();
    // Introspection tells a resource server the binding to check.
    let seen = app.introspect((&id, &secret), &access).await;
    assert_eq!(seen["token_type"], "DPoP");
    assert_eq!(seen["cnf"]["jkt"], key.thumbprint());
    const USERINFO: &str = "http://tessera.test/userinfo";
    let call = |scheme: &'static str, token: String, proof: Option<String>, post: bool| {
        let url = format!("{}/userinfo", app.address);
        async move {
            let client = reqwest::Client::new();
            let mut req = if post {
                client.post(url)
            } else {
                client.get(url)
            };
            req = req.header("Authorization", format!("{scheme} {token}"));
            if let Some(p) = proof {
                req = req.header("DPoP", p);
            }
            req.send().await.unwrap()
        }
    };
    let challenge = |res: &reqwest::Response| {
        res.headers()
            .get("www-authenticate")
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default()
    };

    let res = call("Bearer", access.clone(), None, false).await;
    assert_eq!(res.status(), 401, "a bound token is no bearer token");
    assert!(challenge(&res).starts_with("Bearer"), "{}", challenge(&res));

    let t = now(&app);
    let other = DpopKey::new();
    let refused = [
        ("no proof", None),
        ("no ath", Some(key.proof("GET", USERINFO, t))),
        (
            "another key",
            Some(other.proof_for("GET", USERINFO, t, &access)),
        ),
        ("htm", Some(key.proof_for("POST", USERINFO, t, &access))),
        ("htu", Some(key.proof_for("GET", HTU, t, &access))),
        (
            "ath of another token",
            Some(key.proof_for("GET", USERINFO, t, "another token")),
        ),
        (
            "iat",
            Some(key.proof_for("GET", USERINFO, t - 3600, &access)),
        ),
    ];
    for (why, proof) in refused {
        let res = call("DPoP", access.clone(), proof, false).await;
        assert_eq!(res.status(), 401, "{why}");
        let c = challenge(&res);
        assert!(
            c.starts_with(r#"DPoP error="invalid_dpop_proof""#)
                && c.contains(r#"algs="ES256 EdDSA RS256 PS256""#),
            "{why}: {c}"
        );
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["error"], "invalid_dpop_proof", "{why}");
    }

    let good = key.proof_for("GET", USERINFO, t, &access);
    let res = call("DPoP", access.clone(), Some(good.clone()), false).await;
    assert_eq!(res.status(), 200);
    let info: Value = res.json().await.unwrap();
    assert_eq!(info["sub"], claims(&access)["sub"]);
    let res = call("DPoP", access.clone(), Some(good), false).await;
    assert_eq!(res.status(), 401, "a proof is used once");
    let res = call(
        "DPoP",
        access.clone(),
        Some(key.proof_for("POST", USERINFO, now(&app), &access)),
        true,
    )
    .await;
    assert_eq!(res.status(), 200, "POST with a proof for POST");

    // A bearer token presented with the DPoP scheme.
    let plain = app.password_grant((&id, &secret), "alice").await;
    let plain = plain["access_token"].as_str().unwrap().to_owned();
    let res = call(
        "DPoP",
        plain.clone(),
        Some(key.proof_for("GET", USERINFO, now(&app), &plain)),
        false,
    )
    .await;
    assert_eq!(res.status(), 401);
    assert!(
        challenge(&res).starts_with(r#"DPoP error="invalid_token""#),
        "{}",
        challenge(&res)
    );
    assert_eq!(app.userinfo(&plain).await.status(), 200);
}

/// `client update --require-dpop true`: every token request of the client needs a proof, the
/// refresh too (on PostgreSQL it would otherwise take the one-statement path).
async fn a_client_that_requires_dpop_gets_no_token_without_a_proof(db: Db) {
    let app = TestApp::spawn(db).await;
    let (id, secret) = app.password_client().await;
    app.user("alice").await;
    // A sign-in from before the requirement: its family is bound to no key.
    let before = app.password_grant((&id, &secret), "alice").await;
    let out = app
        .admin(
            &[
                "client",
                "update",
                &id,
                "--require-dpop",
                "true",
                "-o",
                "json",
            ],
            None,
        )
        .await;
    let shown: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(shown["require_dpop"], true, "{shown}");
    let form = ALICE;
    let res = token(&app, &[], Some((&id, &secret)), &form).await;
    assert_eq!(error_of(res).await, (400, "invalid_dpop_proof".into()));
    let key = DpopKey::new();
    let res = token(
        &app,
        &[&key.proof("POST", HTU, now(&app))],
        Some((&id, &secret)),
        &form,
    )
    .await;
    assert_eq!(res.status(), 200);
    let tokens: Value = res.json().await.unwrap();
    let refresh = [
        ("grant_type", "refresh_token"),
        ("refresh_token", tokens["refresh_token"].as_str().unwrap()),
    ];
    let res = token(&app, &[], Some((&id, &secret)), &refresh).await;
    assert_eq!(error_of(res).await, (400, "invalid_dpop_proof".into()));
    let res = token(
        &app,
        &[&key.proof("POST", HTU, now(&app))],
        Some((&id, &secret)),
        &refresh,
    )
    .await;
    assert_eq!(res.status(), 200, "the refusal did not spend the token");

    let unbound = [
        ("grant_type", "refresh_token"),
        ("refresh_token", before["refresh_token"].as_str().unwrap()),
    ];
    let res = token(&app, &[], Some((&id, &secret)), &unbound).await;
    assert_eq!(error_of(res).await, (400, "invalid_dpop_proof".into()));

    app.admin(&["client", "update", &id, "--require-dpop", "false"], None)
        .await;
    let res = token(&app, &[], Some((&id, &secret)), &form).await;
    assert_eq!(res.status(), 200);
}

/// `tokens.dpop_nonce` (RFC 9449 §8): a proof without the current nonce, or with a stale one,
/// is always answered `use_dpop_nonce` with a fresh `DPoP-Nonce`, at the token endpoint (400)
/// and at `/userinfo` (401, in the challenge); answers to DPoP requests carry the next nonce.
async fn server_nonces_are_asked_for_and_handed_out(db: Db) {
    let app = TestApp::spawn_with(db, &[("TESSERA_TOKENS__DPOP_NONCE", "true")]).await;
    let (id, secret) = app.password_client().await;
    app.user("alice").await;
    let key = DpopKey::new();
    let with_nonce = |method: &str, url: &str, nonce: &str, access: Option<&str>| {
        let mut c = DpopKey::claims(method, url, now(&app));
        c["nonce"] = nonce.into();
        if let Some(token) = access {
            c["ath"] = crate::helpers::dpop::ath(token).into();
        }
        key.sign(&key.header(), &c)
    };
    let nonce_of = |res: &reqwest::Response| {
        res.headers()
            .get("dpop-nonce")
            .map(|v| v.to_str().unwrap().to_owned())
    };
    let form = ALICE;

    for proof in [
        key.proof("POST", HTU, now(&app)),
        with_nonce("POST", HTU, "made-up", None),
    ] {
        let res = token(&app, &[&proof], Some((&id, &secret)), &form).await;
        assert!(
            nonce_of(&res).is_some(),
            "a fresh nonce comes with the refusal"
        );
        assert_eq!(error_of(res).await, (400, "use_dpop_nonce".into()));
    }
    let res = token(
        &app,
        &[&key.proof("POST", HTU, now(&app))],
        Some((&id, &secret)),
        &form,
    )
    .await;
    let nonce = nonce_of(&res).unwrap();
    let res = token(
        &app,
        &[&with_nonce("POST", HTU, &nonce, None)],
        Some((&id, &secret)),
        &form,
    )
    .await;
    assert_eq!(res.status(), 200);
    assert!(
        nonce_of(&res).is_some(),
        "the next nonce comes with the answer"
    );
    let tokens: Value = res.json().await.unwrap();
    let access = tokens["access_token"].as_str().unwrap().to_owned();

    // At /userinfo: the nonce in the challenge, then accepted.
    const USERINFO: &str = "http://tessera.test/userinfo";
    let get = |proof: String| {
        let req = reqwest::Client::new()
            .get(format!("{}/userinfo", app.address))
            .header("Authorization", format!("DPoP {access}"))
            .header("DPoP", proof);
        async move { req.send().await.unwrap() }
    };
    let mut c = DpopKey::claims("GET", USERINFO, now(&app));
    c["ath"] = crate::helpers::dpop::ath(&access).into();
    let res = get(key.sign(&key.header(), &c)).await;
    assert_eq!(res.status(), 401);
    let challenge = res.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        challenge.starts_with(r#"DPoP error="use_dpop_nonce""#),
        "{challenge}"
    );
    let fresh = nonce_of(&res).unwrap();
    let res = get(with_nonce("GET", USERINFO, &fresh, Some(&access))).await;
    assert_eq!(res.status(), 200);

    // Two periods (of tokens.dpop_max_age) later the nonce is stale.
    app.advance(Duration::from_secs(125));
    let res = token(
        &app,
        &[&with_nonce("POST", HTU, &nonce, None)],
        Some((&id, &secret)),
        &form,
    )
    .await;
    let newer = nonce_of(&res).unwrap();
    assert_ne!(newer, nonce);
    assert_eq!(error_of(res).await, (400, "use_dpop_nonce".into()));
}

/// `dpop_jkt` at `/authorize` (RFC 9449 §10): the code is bound to the key; an exchange without
/// a proof from it is refused, and the code stays unspent for the app. A `dpop_jkt` that is no
/// thumbprint is `invalid_request`.
async fn a_code_bound_to_a_key_goes_only_with_a_proof_from_it(db: Db) {
    let app = TestApp::spawn(db).await;
    let client_id = public_client(&app).await;
    app.user("alice").await;
    let key = DpopKey::new();
    let jkt = key.thumbprint();
    let browser = Browser::new(&app);
    let code = code_for_with(&app, &browser, &client_id, &[("dpop_jkt", &jkt)]).await;
    let exchange = [
        ("grant_type", "authorization_code"),
        ("client_id", client_id.as_str()),
        ("code", code.as_str()),
        ("redirect_uri", REDIRECT),
        ("code_verifier", VERIFIER),
    ];
    let thief = DpopKey::new();
    for proofs in [vec![], vec![thief.proof("POST", HTU, now(&app))]] {
        let proofs: Vec<&str> = proofs.iter().map(String::as_str).collect();
        let res = token(&app, &proofs, None, &exchange).await;
        assert_eq!(error_of(res).await, (400, "invalid_grant".into()));
    }
    let res = token(&app, &[&key.proof("POST", HTU, now(&app))], None, &exchange).await;
    assert_eq!(res.status(), 200, "the refusals did not spend the code");
    let tokens: Value = res.json().await.unwrap();
    assert_eq!(bound_to(&tokens).as_deref(), Some(jkt.as_str()));

    let res = browser
        .authorize(&query(&client_id, &[("dpop_jkt", "not-a-thumbprint")]))
        .await;
    assert_eq!(redirect_params(&res)["error"], "invalid_request");
}
