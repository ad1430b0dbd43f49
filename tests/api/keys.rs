//! Access tokens verify against the published JWKS with an independent verifier (RustCrypto's
//! p256, not the server's ring), and discovery points at the right places.

use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use p256::ecdsa::signature::Verifier;
use p256::ecdsa::{Signature, VerifyingKey};
use serde_json::Value;

use crate::helpers::{both_backends, Db, TestApp};

both_backends!(
    access_token_verifies_against_the_jwks_independently,
    metadata_lists_what_is_supported,
    eddsa_keys_sign_when_configured
);

fn b64(s: &str) -> Vec<u8> {
    URL_SAFE_NO_PAD.decode(s).unwrap()
}

async fn jwks(app: &TestApp) -> Value {
    let res = app
        .http
        .get(format!("{}/jwks.json", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    res.json().await.unwrap()
}

async fn access_token_verifies_against_the_jwks_independently(db: Db) {
    let app = TestApp::spawn(db).await;
    let (id, secret) = app.password_client().await;
    app.user("alice").await;
    let tokens = app.password_grant((&id, &secret), "alice").await;
    let jwt = tokens["access_token"].as_str().unwrap();
    let parts: Vec<&str> = jwt.split('.').collect();
    assert_eq!(parts.len(), 3);
    let header: Value = serde_json::from_slice(&b64(parts[0])).unwrap();
    assert_eq!(header["typ"], "at+jwt");
    assert_eq!(header["alg"], "ES256");

    let keys = jwks(&app).await;
    let jwk = keys["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == header["kid"])
        .expect("kid in JWKS");
    assert_eq!(jwk["kty"], "EC");
    assert_eq!(jwk["crv"], "P-256");
    assert_eq!(jwk["use"], "sig");
    assert!(jwk.get("d").is_none(), "no private material in the JWKS");

    let mut point = vec![4u8];
    point.extend(b64(jwk["x"].as_str().unwrap()));
    point.extend(b64(jwk["y"].as_str().unwrap()));
    let key = VerifyingKey::from_sec1_bytes(&point).unwrap();
    let sig = Signature::from_slice(&b64(parts[2])).unwrap();
    let input = format!("{}.{}", parts[0], parts[1]);
    key.verify(input.as_bytes(), &sig)
        .expect("signature verifies with p256");
    assert!(key.verify(b"tampered", &sig).is_err());
}

async fn metadata_lists_what_is_supported(db: Db) {
    let app = TestApp::spawn_with(
        db,
        &[("TESSERA_TOKENS__PUBLIC_SCOPES", "profile read write")],
    )
    .await;
    app.client(
        &[tessera::domain::client::GrantType::Password],
        false,
        "profile read",
    )
    .await;
    app.client(
        &[tessera::domain::client::GrantType::Password],
        true,
        "read write",
    )
    .await;
    let res = app
        .http
        .get(format!(
            "{}/.well-known/oauth-authorization-server",
            app.address
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let m: Value = res.json().await.unwrap();
    assert_eq!(m["issuer"], "http://tessera.test");
    assert_eq!(m["token_endpoint"], "http://tessera.test/token");
    assert_eq!(m["jwks_uri"], "http://tessera.test/jwks.json");
    assert_eq!(
        m["grant_types_supported"],
        serde_json::json!([
            "authorization_code",
            "client_credentials",
            "password",
            "refresh_token"
        ])
    );
    assert_eq!(m["revocation_endpoint"], "http://tessera.test/revoke");
    assert_eq!(
        m["revocation_endpoint_auth_methods_supported"],
        serde_json::json!(["client_secret_basic", "client_secret_post", "none"])
    );
    assert_eq!(
        m["introspection_endpoint_auth_methods_supported"],
        serde_json::json!(["client_secret_basic", "client_secret_post"]),
        "introspection needs a confidential client"
    );
    assert_eq!(
        m["introspection_endpoint"],
        "http://tessera.test/introspect"
    );
    assert_eq!(m["authorization_endpoint"], "http://tessera.test/authorize");
    assert_eq!(m["response_types_supported"], serde_json::json!(["code"]));
    assert_eq!(
        m["code_challenge_methods_supported"],
        serde_json::json!(["S256"])
    );
    assert_eq!(m["authorization_response_iss_parameter_supported"], true);
    assert_eq!(
        m["token_endpoint_auth_methods_supported"],
        serde_json::json!(["client_secret_basic", "client_secret_post", "none"])
    );
    assert_eq!(
        m["scopes_supported"],
        serde_json::json!(["profile", "read", "write"])
    );
}

async fn eddsa_keys_sign_when_configured(db: Db) {
    let app = TestApp::spawn_with(db, &[("TESSERA_KEYS__ALGORITHM", "EdDSA")]).await;
    let (id, secret) = app.password_client().await;
    app.user("alice").await;
    let tokens = app.password_grant((&id, &secret), "alice").await;
    let jwt = tokens["access_token"].as_str().unwrap();
    let header: Value = serde_json::from_slice(&b64(jwt.split('.').next().unwrap())).unwrap();
    assert_eq!(header["alg"], "EdDSA");
    let keys = jwks(&app).await;
    assert_eq!(keys["keys"][0]["kty"], "OKP");
    assert_eq!(keys["keys"][0]["crv"], "Ed25519");
    assert_eq!(app.userinfo(jwt).await.status(), 200);
}

/// Forged tokens: `alg: none`, HS256 keyed with the public key, and a foreign key's signature.
#[tokio::test]
async fn forged_access_tokens_are_rejected() {
    let app = TestApp::spawn(Db::Sqlite).await;
    let (id, secret) = app.password_client().await;
    app.user("alice").await;
    let tokens = app.password_grant((&id, &secret), "alice").await;
    let jwt = tokens["access_token"].as_str().unwrap();
    let parts: Vec<&str> = jwt.split('.').collect();
    let header: Value = serde_json::from_slice(&b64(parts[0])).unwrap();
    let kid = header["kid"].as_str().unwrap();
    let enc = |v: Value| URL_SAFE_NO_PAD.encode(v.to_string());

    let none = format!(
        "{}.{}.",
        enc(serde_json::json!({"alg": "none", "typ": "at+jwt", "kid": kid})),
        parts[1]
    );
    let jwk = jwks(&app).await["keys"][0].to_string();
    let hs_header = enc(serde_json::json!({"alg": "HS256", "typ": "at+jwt", "kid": kid}));
    let hs_input = format!("{hs_header}.{}", parts[1]);
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, jwk.as_bytes());
    let hs = format!(
        "{hs_input}.{}",
        URL_SAFE_NO_PAD.encode(ring::hmac::sign(&key, hs_input.as_bytes()))
    );
    let wrong_typ = format!(
        "{}.{}.{}",
        enc(serde_json::json!({"alg": "ES256", "typ": "JWT", "kid": kid})),
        parts[1],
        parts[2]
    );
    let mut tampered_claims: Value = serde_json::from_slice(&b64(parts[1])).unwrap();
    tampered_claims["sub"] = "someone-else".into();
    let tampered = format!("{}.{}.{}", parts[0], enc(tampered_claims), parts[2]);

    for forged in [
        none,
        hs,
        wrong_typ,
        tampered,
        "garbage".to_owned(),
        format!("{}.{}", parts[0], parts[1]),
    ] {
        let res = app.userinfo(&forged).await;
        assert_eq!(res.status(), 401, "{forged}");
        assert!(res.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("invalid_token"));
    }
    // No credentials at all: a bare challenge (RFC 6750 §3.1).
    let res = app
        .http
        .get(format!("{}/userinfo", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    assert_eq!(
        res.headers()["www-authenticate"],
        r#"Bearer realm="tessera""#
    );
}

/// Tokens signed with the server's own key but wrong claims, and tokens of another key, are
/// all refused; a well-formed one made the same way is accepted (so the forging works).
#[tokio::test]
async fn tokens_with_wrong_claims_or_a_foreign_key_are_rejected() {
    use jsonwebtoken::{encode, Header};
    use tessera::domain::crypto::MasterKey;
    use tessera::domain::keys::{KeyAlgorithm, KeySet, SigningKey};

    let app = TestApp::spawn(Db::Sqlite).await;
    let (id, _) = app.password_client().await;
    let user_id = app.user("alice").await;
    let master = MasterKey::from_text(&app.master_key).unwrap();
    let now_ms = app.clock.now();
    let keys = app
        .with_conn(move |c| KeySet::load(c, &master, Duration::from_secs(60), now_ms).unwrap())
        .await;
    let ours = keys.signing();
    let now = jsonwebtoken::get_current_timestamp() as i64;
    let claims = |changes: serde_json::Value| {
        let mut c = serde_json::json!({
            "iss": "http://tessera.test", "aud": "http://tessera.test", "sub": user_id, "client_id": id,
            "scope": "read", "iat": now, "exp": now + 300, "jti": uuid::Uuid::new_v4().to_string(),
        });
        for (k, v) in changes.as_object().unwrap() {
            c[k] = v.clone();
        }
        c
    };
    let sign = |key: &SigningKey, kid: &str, claims: &serde_json::Value| {
        let mut header = Header::new(key.alg.jwt());
        header.typ = Some("at+jwt".into());
        header.kid = Some(kid.into());
        encode(&header, claims, &key.encoding).unwrap()
    };

    let good = sign(ours, &ours.kid, &claims(serde_json::json!({})));
    assert_eq!(
        app.userinfo(&good).await.status(),
        200,
        "the forging itself works"
    );

    let (foreign, _) = SigningKey::generate(KeyAlgorithm::ES256).unwrap();
    let cases = [
        (
            "wrong aud",
            sign(
                ours,
                &ours.kid,
                &claims(serde_json::json!({"aud": "https://other.example"})),
            ),
        ),
        (
            "wrong iss",
            sign(
                ours,
                &ours.kid,
                &claims(serde_json::json!({"iss": "https://evil.example"})),
            ),
        ),
        (
            "expired",
            sign(
                ours,
                &ours.kid,
                &claims(serde_json::json!({"iat": now - 600, "exp": now - 300})),
            ),
        ),
        (
            "not yet valid",
            sign(
                ours,
                &ours.kid,
                &claims(serde_json::json!({"nbf": now + 600})),
            ),
        ),
        (
            "issued in the future",
            sign(
                ours,
                &ours.kid,
                &claims(serde_json::json!({"iat": now + 600, "exp": now + 900})),
            ),
        ),
        (
            "foreign key, our kid",
            sign(&foreign, &ours.kid, &claims(serde_json::json!({}))),
        ),
        (
            "foreign key, its kid",
            sign(&foreign, &foreign.kid, &claims(serde_json::json!({}))),
        ),
        ("no exp", {
            let mut c = claims(serde_json::json!({}));
            c.as_object_mut().unwrap().remove("exp");
            sign(ours, &ours.kid, &c)
        }),
    ];
    for (what, token) in cases {
        let res = app.userinfo(&token).await;
        assert_eq!(res.status(), 401, "{what}");
        assert!(
            res.headers()["www-authenticate"]
                .to_str()
                .unwrap()
                .contains("invalid_token"),
            "{what}"
        );
    }
}

/// A header larger than the server accepts is refused with 431, not a 500 or a hang.
#[tokio::test]
async fn oversized_headers_are_refused() {
    let app = TestApp::spawn(Db::Sqlite).await;
    let res = app
        .http
        .get(format!("{}/userinfo", app.address))
        .header("Authorization", format!("Bearer {}", "a".repeat(64 * 1024)))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 431);
}
