//! Behind a reverse proxy: which header names the client, how IPv6 addresses are grouped for
//! throttling, and which request id is whose.

use serde_json::Value;

use crate::helpers::{both_backends, Db, TestApp, PASSWORD};

both_backends!(
    a_clients_own_forwarded_header_is_ignored_behind_an_x_forwarded_for_proxy,
    a_proxy_that_writes_forwarded_is_read_and_x_forwarded_for_ignored,
    addresses_of_one_ipv6_prefix_are_throttled_as_one,
    the_servers_request_id_is_its_own_and_the_proxys_is_kept_apart,
);

/// A password-grant attempt with extra request headers (what the proxy passes on).
async fn attempt(
    app: &TestApp,
    (id, secret): (&str, &str),
    user: &str,
    password: &str,
    headers: &[(&str, &str)],
) -> reqwest::Response {
    let mut req = app
        .http
        .post(format!("{}/token", app.address))
        .basic_auth(id, Some(secret))
        .form(&[
            ("grant_type", "password"),
            ("username", user),
            ("password", password),
        ]);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    req.send().await.unwrap()
}

/// A server behind a proxy on loopback that allows three failures per address (and many per
/// username), with a password client and the user alice.
async fn behind_a_proxy_with_three_guesses_per_address(db: Db) -> (TestApp, (String, String)) {
    let app = TestApp::spawn_with(
        db,
        &[
            ("TESSERA_SERVER__TRUSTED_PROXIES", "127.0.0.1"),
            ("TESSERA_THROTTLE__MAX_FAILURES_PER_IP", "3"),
            ("TESSERA_THROTTLE__MAX_FAILURES_PER_USER", "100"),
        ],
    )
    .await;
    let client = app.password_client().await;
    app.user("alice").await;
    (app, client)
}

async fn audit(app: &TestApp, kind: &str) -> Value {
    let out = app
        .admin(&["audit", "list", "--kind", kind, "-o", "json"], None)
        .await;
    assert!(out.status.success(), "{out:?}");
    serde_json::from_slice(&out.stdout).unwrap()
}

/// nginx's `proxy_add_x_forwarded_for` passes a client's own `Forwarded` header through: read
/// it, and a client names any address it likes, escapes the per-address limit and can lock
/// another address out.
async fn a_clients_own_forwarded_header_is_ignored_behind_an_x_forwarded_for_proxy(db: Db) {
    let (app, (id, secret)) = behind_a_proxy_with_three_guesses_per_address(db).await;
    let c = (id.as_str(), secret.as_str());
    for i in 0..3 {
        let forged = format!("for=10.66.0.{i}");
        let res = attempt(
            &app,
            c,
            &format!("guess{i}"),
            "wrong",
            &[("Forwarded", &forged)],
        )
        .await;
        assert_eq!(res.status(), 400);
    }
    // The three failures counted against the proxy's view of the client (here, the peer), so
    // the address is over its limit whatever the client writes in `Forwarded`.
    let res = attempt(
        &app,
        c,
        "alice",
        PASSWORD,
        &[("Forwarded", "for=10.66.0.99")],
    )
    .await;
    assert_eq!(res.status(), 400, "{:?}", res.text().await);
    let failures = audit(&app, "login.failure").await;
    assert_eq!(failures.as_array().unwrap().len(), 3, "{failures}");
    for e in failures.as_array().unwrap() {
        assert_eq!(e["client_ip"], "127.0.0.1", "{e}");
    }
}

/// `server.forwarded_header = "forwarded"`: a proxy that writes RFC 7239 `Forwarded` is read,
/// and `X-Forwarded-For`, which it would pass through, is not.
async fn a_proxy_that_writes_forwarded_is_read_and_x_forwarded_for_ignored(db: Db) {
    let app = TestApp::spawn_with(
        db,
        &[
            ("TESSERA_SERVER__TRUSTED_PROXIES", "127.0.0.1"),
            ("TESSERA_SERVER__FORWARDED_HEADER", "forwarded"),
        ],
    )
    .await;
    let (id, secret) = app.password_client().await;
    app.user("alice").await;
    let headers = [
        ("Forwarded", "for=198.51.100.7;proto=https"),
        ("X-Forwarded-For", "203.0.113.66"),
    ];
    let res = attempt(&app, (&id, &secret), "alice", PASSWORD, &headers).await;
    assert_eq!(res.status(), 200);
    let events = audit(&app, "login.success").await;
    assert_eq!(events[0]["client_ip"], "198.51.100.7", "{events}");
}

/// One IPv6 customer usually has a whole /64: its addresses count as one for the per-address
/// limit (`throttle.ipv6_prefix`), while audit events keep the full address.
async fn addresses_of_one_ipv6_prefix_are_throttled_as_one(db: Db) {
    let (app, (id, secret)) = behind_a_proxy_with_three_guesses_per_address(db).await;
    let c = (id.as_str(), secret.as_str());
    for i in 1..=3 {
        let from = format!("2001:db8:1:2::{i}");
        let res = attempt(
            &app,
            c,
            &format!("guess{i}"),
            "wrong",
            &[("X-Forwarded-For", &from)],
        )
        .await;
        assert_eq!(res.status(), 400);
    }
    let same_prefix = [("X-Forwarded-For", "2001:db8:1:2:ffff::99")];
    let res = attempt(&app, c, "alice", PASSWORD, &same_prefix).await;
    assert_eq!(res.status(), 400, "the /64 is over its limit");
    let other_prefix = [("X-Forwarded-For", "2001:db8:1:3::1")];
    assert_eq!(
        attempt(&app, c, "alice", PASSWORD, &other_prefix)
            .await
            .status(),
        200
    );
    let failures = audit(&app, "login.failure").await;
    let mut seen: Vec<&str> = failures
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["client_ip"].as_str().unwrap())
        .collect();
    seen.sort_unstable();
    assert_eq!(
        seen,
        ["2001:db8:1:2::1", "2001:db8:1:2::2", "2001:db8:1:2::3"]
    );
    let throttled = audit(&app, "login.throttled").await;
    assert!(
        throttled[0]["detail"]
            .as_str()
            .unwrap()
            .contains("2001:db8:1:2::/64"),
        "{throttled}"
    );
}

/// The server's request ids cannot be guessed from earlier ones, and one a trusted proxy sends
/// is kept beside the server's own (`upstream_request_id`) instead of replacing it.
async fn the_servers_request_id_is_its_own_and_the_proxys_is_kept_apart(db: Db) {
    let app = TestApp::spawn_with(db, &[("TESSERA_SERVER__TRUSTED_PROXIES", "127.0.0.1")]).await;
    let id_of =
        |res: &reqwest::Response| res.headers()["x-request-id"].to_str().unwrap().to_owned();
    let health = format!("{}/health", app.address);
    let a = id_of(&app.http.get(&health).send().await.unwrap());
    let b = id_of(&app.http.get(&health).send().await.unwrap());
    assert_ne!(a, b);
    // No shared prefix and no counter: two ids in a row have nothing in common to extrapolate.
    let common = a.chars().zip(b.chars()).take_while(|(x, y)| x == y).count();
    assert!(common < 4, "{a} and {b} share {common} leading characters");
    assert!(a.len() >= 22, "{a} is too short to be unguessable");

    let (id, secret) = app.password_client().await;
    app.user("alice").await;
    let chosen = "lb-7f3a9c";
    let res = attempt(
        &app,
        (&id, &secret),
        "alice",
        PASSWORD,
        &[("X-Request-Id", chosen)],
    )
    .await;
    assert_eq!(res.status(), 200);
    let own = id_of(&res);
    assert_ne!(own, chosen, "a proxy's id does not replace the server's");
    let events = audit(&app, "login.success").await;
    assert_eq!(events[0]["request_id"], own.as_str(), "{events}");
    assert_eq!(events[0]["upstream_request_id"], chosen, "{events}");
}
