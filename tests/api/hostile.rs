//! Hostile input: random and mutated requests at every endpoint. Never a 500, never a panic;
//! the OAuth2 endpoints always answer with a JSON `error` from the RFCs' lists.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use serde_json::Value;

use crate::helpers::{Db, TestApp, PASSWORD};

/// Every `error` code an OAuth2 endpoint of Tessera may answer.
const KNOWN: &[&str] = &[
    "invalid_request",
    "invalid_client",
    "invalid_grant",
    "unauthorized_client",
    "unsupported_grant_type",
    "invalid_scope",
    "unsupported_token_type",
    "invalid_token",
    "temporarily_unavailable",
];

/// A request to throw: endpoint, content type, Authorization header, body.
#[derive(Debug, Clone)]
struct Throw {
    path: &'static str,
    content_type: Option<String>,
    authorization: Option<Vec<u8>>,
    body: Vec<u8>,
}

/// A valid form, then mutated: parameters dropped, repeated, bytes flipped, inserted, cut.
fn mutated(valid: Vec<(String, String)>) -> impl Strategy<Value = Vec<u8>> {
    let encoded = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(&valid)
        .finish()
        .into_bytes();
    (
        Just(encoded),
        prop::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..5), 0..6),
    )
        .prop_map(|(mut body, edits)| {
            for (at, byte, op) in edits {
                if body.is_empty() {
                    body.push(byte);
                    continue;
                }
                let i = at.index(body.len());
                match op {
                    0 => body[i] = byte,
                    1 => body.insert(i, byte),
                    2 => body.truncate(i),
                    3 => {
                        let copy = body.clone();
                        body.push(b'&');
                        body.extend_from_slice(&copy[..i]);
                    }
                    _ => {
                        body.remove(i);
                    }
                }
            }
            body
        })
}

fn throws(forms: Vec<Vec<(String, String)>>, basic: Vec<u8>) -> impl Strategy<Value = Throw> {
    let body = prop_oneof![
        3 => prop::sample::select(forms).prop_flat_map(mutated),
        1 => prop::collection::vec(any::<u8>(), 0..300),
    ];
    let content_type = prop_oneof![
        6 => Just(Some("application/x-www-form-urlencoded".to_owned())),
        1 => Just(None),
        1 => "[ -~]{0,40}".prop_map(Some),
    ];
    let authorization = prop_oneof![
        3 => Just(Some(basic)),
        2 => Just(None),
        1 => prop::collection::vec(any::<u8>(), 0..80).prop_map(|mut b| {
            let mut v = b"Basic ".to_vec();
            v.append(&mut b);
            Some(v)
        }),
        1 => "Bearer [ -~]{0,80}".prop_map(|s| Some(s.into_bytes())),
    ];
    let path = prop::sample::select(vec![
        "/token",
        "/revoke",
        "/introspect",
        "/userinfo",
        "/authorize",
        "/login",
        "/consent",
        "/logout",
    ]);
    (path, content_type, authorization, body).prop_map(
        |(path, content_type, authorization, body)| Throw {
            path,
            content_type,
            authorization,
            body,
        },
    )
}

#[test]
fn random_and_mutated_requests_never_give_a_500() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let app = rt.block_on(TestApp::spawn(Db::Sqlite));
    let (id, secret) = rt.block_on(app.password_client());
    rt.block_on(app.user("alice"));
    let tokens = rt.block_on(app.password_grant((&id, &secret), "alice"));
    let refresh = tokens["refresh_token"].as_str().unwrap().to_owned();
    let access = tokens["access_token"].as_str().unwrap().to_owned();
    let pairs = |p: &[(&str, &str)]| {
        p.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<Vec<_>>()
    };
    let forms = vec![
        pairs(&[
            ("grant_type", "password"),
            ("username", "alice"),
            ("password", PASSWORD),
            ("scope", "read"),
        ]),
        pairs(&[("grant_type", "refresh_token"), ("refresh_token", &refresh)]),
        pairs(&[
            ("grant_type", "client_credentials"),
            ("client_id", &id),
            ("client_secret", &secret),
        ]),
        pairs(&[
            ("grant_type", "authorization_code"),
            ("code", "tsc_x"),
            ("code_verifier", "v"),
            ("redirect_uri", "http://x"),
        ]),
        pairs(&[("token", &access), ("token_type_hint", "access_token")]),
        pairs(&[("token", &refresh), ("token_type_hint", "refresh_token")]),
        pairs(&[
            ("csrf", "x"),
            ("authorize", "response_type=code&client_id=x"),
            ("decision", "approve"),
        ]),
    ];
    let basic = {
        use base64::Engine;
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}"))
        )
        .into_bytes()
    };
    let sent = Arc::new(AtomicUsize::new(0));
    let cases = std::env::var("TESSERA_PROPTEST_CASES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(400);
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    });
    let result = runner.run(&throws(forms, basic), |t| {
        let (status, content_type, body) = rt.block_on(async {
            let mut req = app
                .http
                .post(format!("{}{}", app.address, t.path))
                .body(t.body.clone());
            if t.path == "/userinfo" {
                req = app.http.get(format!("{}/userinfo", app.address));
            }
            if t.path == "/authorize" {
                // The body's bytes as a query string, percent-encoded where they must be.
                let query: String = t
                    .body
                    .iter()
                    .map(|&b| match b {
                        b'!'..=b'~' if b != b'#' => (b as char).to_string(),
                        _ => format!("%{b:02X}"),
                    })
                    .collect();
                req = app.http.get(format!("{}/authorize?{query}", app.address));
            }
            if let Some(ct) = &t.content_type {
                if let Ok(v) = reqwest::header::HeaderValue::from_str(ct) {
                    req = req.header("Content-Type", v);
                }
            }
            if let Some(a) = &t.authorization {
                if let Ok(v) = reqwest::header::HeaderValue::from_bytes(a) {
                    req = req.header("Authorization", v);
                }
            }
            let res = req.send().await.unwrap();
            let status = res.status().as_u16();
            let ct = res
                .headers()
                .get("content-type")
                .map(|v| v.to_str().unwrap_or("").to_owned());
            (status, ct, res.bytes().await.unwrap())
        });
        sent.fetch_add(1, Ordering::Relaxed);
        prop_assert!(status < 500, "{} answered {status}", t.path);
        let oauth = matches!(t.path, "/token" | "/revoke" | "/introspect");
        if oauth && status >= 400 && status != 413 && status != 405 {
            let json: Value = serde_json::from_slice(&body)
                .map_err(|e| TestCaseError::fail(format!("{e}: not JSON")))?;
            let code = json["error"].as_str().unwrap_or_default();
            prop_assert!(KNOWN.contains(&code), "{}: unknown error {json}", t.path);
            prop_assert!(content_type
                .unwrap_or_default()
                .starts_with("application/json"));
        }
        Ok(())
    });
    let total = sent.load(Ordering::Relaxed);
    // Reported for the record (cargo test --test api hostile -- --nocapture).
    println!("hostile input: {total} requests, 0 answered 5xx");
    result.unwrap();
    assert!(total >= cases as usize);
}
