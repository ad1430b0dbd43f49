//! What an operator relies on: request ids (in responses, audit events and every log line of a
//! request), readiness, and a graceful stop on SIGTERM. The outage case of `/readyz` is in
//! `db_faults`.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::helpers::{both_backends, test_env, Db, TestApp, PASSWORD};

both_backends!(
    every_response_has_a_request_id_and_audit_events_carry_it,
    readyz_answers_when_the_database_and_a_key_are_there,
);

async fn every_response_has_a_request_id_and_audit_events_carry_it(db: Db) {
    // The test's own address is a trusted proxy on one server and not on the other.
    let trusting =
        TestApp::spawn_with(db, &[("TESSERA_SERVER__TRUSTED_PROXIES", "127.0.0.1")]).await;
    let res = trusting
        .http
        .get(format!("{}/healthz", trusting.address))
        .send()
        .await
        .unwrap();
    let generated = res.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert!(generated.len() >= 13, "{generated}");
    let res = trusting
        .http
        .get(format!("{}/healthz", trusting.address))
        .send()
        .await
        .unwrap();
    assert_ne!(
        res.headers()["x-request-id"],
        generated.as_str(),
        "one per request"
    );

    // A proxy's id is kept beside the server's own, and the reuse incident it leads to
    // records both.
    let proxy_id = "edge-7f3a9c.1";
    let given = replay_with_request_id(&trusting, proxy_id).await;
    assert_ne!(given, proxy_id);
    let recorded = audit_request_ids(&trusting, "refresh.reuse_detected").await;
    assert_eq!(recorded, vec![(Some(given), Some(proxy_id.to_owned()))]);
    // An id that could be mistaken for log structure is replaced, even from a proxy.
    let res = trusting
        .http
        .get(format!("{}/healthz", trusting.address))
        .header("x-request-id", "a\" forged=1")
        .send()
        .await
        .unwrap();
    assert_ne!(res.headers()["x-request-id"], "a\" forged=1");

    // From anyone else the header is ignored: the id is the server's own, and that is the one
    // recorded.
    let app = TestApp::spawn(db).await;
    let given = replay_with_request_id(&app, proxy_id).await;
    assert_ne!(given, proxy_id);
    let recorded = audit_request_ids(&app, "refresh.reuse_detected").await;
    assert_eq!(recorded, vec![(Some(given), None)]);
}

/// Signs in, refreshes twice, then replays the first refresh token with `X-Request-Id: id`:
/// a reuse incident. The request id the response carries.
async fn replay_with_request_id(app: &TestApp, id: &str) -> String {
    let (client, secret) = app.password_client().await;
    app.user("alice").await;
    let first = app.password_grant((&client, &secret), "alice").await["refresh_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let second = app.refreshed((&client, &secret), &first).await;
    app.refreshed(
        (&client, &secret),
        second["refresh_token"].as_str().unwrap(),
    )
    .await;
    let res = app
        .http
        .post(format!("{}/token", app.address))
        .basic_auth(&client, Some(&secret))
        .header("x-request-id", id)
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", first.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    res.headers()["x-request-id"].to_str().unwrap().to_owned()
}

/// The (server's, proxy's) request ids of the audit events of `kind`.
async fn audit_request_ids(
    app: &TestApp,
    kind: &'static str,
) -> Vec<(Option<String>, Option<String>)> {
    use diesel::prelude::*;
    use tessera::store::schema::audit_events::dsl;
    app.with_conn(move |c| {
        dsl::audit_events
            .filter(dsl::kind.eq(kind))
            .select((dsl::request_id, dsl::upstream_request_id))
            .load::<(Option<String>, Option<String>)>(c)
            .unwrap()
    })
    .await
}

async fn readyz_answers_when_the_database_and_a_key_are_there(db: Db) {
    let app = TestApp::spawn(db).await;
    let res = app
        .http
        .get(format!("{}/readyz", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["cache-control"], "no-store");
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["status"], "ready");
    let jwks: serde_json::Value = app
        .http
        .get(format!("{}/jwks.json", app.address))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body["signing_key"], jwks["keys"][0]["kid"]);
}

/// The real binary on a test database, its log (JSON lines) read as it goes.
/// Alice's password grant to the server at `base`.
fn password_grant(
    http: &reqwest::Client,
    base: &str,
    id: &str,
    secret: &str,
) -> reqwest::RequestBuilder {
    http.post(format!("{base}/token"))
        .basic_auth(id, Some(secret))
        .form(&[
            ("grant_type", "password"),
            ("username", "alice"),
            ("password", PASSWORD),
        ])
}

struct Binary {
    child: std::process::Child,
    base: String,
    log: std::sync::mpsc::Receiver<String>,
    pid: u32,
}

impl Binary {
    async fn start(app: &TestApp, extra: &[(&str, &str)]) -> Binary {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut env = test_env(&app.db_url, &app.master_key);
        env.retain(|(k, _)| k != "TESSERA_SERVER__LISTEN");
        let mut child = Command::new(env!("CARGO_BIN_EXE_tessera"))
            .env_clear()
            .envs(env)
            .envs(extra.iter().copied())
            .env("TESSERA_SERVER__LISTEN", format!("127.0.0.1:{port}"))
            .env("TESSERA_LOG_FORMAT", "json")
            .env("RUST_LOG", "info")
            .current_dir(std::env::temp_dir())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, log) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        let base = format!("http://127.0.0.1:{port}");
        let pid = child.id();
        crate::helpers::wait_healthy(&base).await;
        Binary {
            child,
            base,
            log,
            pid,
        }
    }

    /// The log lines written so far.
    fn lines(&self) -> Vec<String> {
        self.log.try_iter().collect()
    }

    fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .args([format!("-{name}"), self.pid.to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }
}

impl Drop for Binary {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn every_log_line_of_a_request_carries_its_id() {
    let app = TestApp::spawn(Db::Sqlite).await;
    let (id, secret) = app.password_client().await;
    app.user("alice").await;
    let server = Binary::start(&app, &[]).await;
    let http = reqwest::Client::new();
    // A refused password grant logs from the handler, the grant (on a blocking thread), the
    // throttle's audit trail and the access log.
    let res = http
        .post(format!("{}/token", server.base))
        .basic_auth(&id, Some(&secret))
        .form(&[
            ("grant_type", "password"),
            ("username", "alice"),
            ("password", "wrong"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    let request_id = res.headers()["x-request-id"].to_str().unwrap().to_owned();
    // Until the grant's line and the access log's are both written.
    let mut lines = Vec::new();
    crate::helpers::eventually("the request's lines", Duration::from_secs(5), || {
        lines.extend(server.lines());
        let logged = |what: &str| {
            lines
                .iter()
                .any(|l| l.contains(&request_id) && l.contains(what))
        };
        let done = logged("password grant refused") && logged("POST /token");
        async move { done.then_some(()) }
    })
    .await;
    let refused: Vec<&String> = lines
        .iter()
        .filter(|l| l.contains("password grant refused"))
        .collect();
    assert_eq!(refused.len(), 1, "{lines:#?}");
    let of_request: Vec<&String> = lines.iter().filter(|l| l.contains(&request_id)).collect();
    assert!(
        of_request.len() >= 2,
        "the grant's line and the access log line: {lines:#?}"
    );
    assert!(
        of_request
            .iter()
            .any(|l| l.contains("password grant refused")),
        "{lines:#?}"
    );
    assert!(
        of_request.iter().any(|l| l.contains("POST /token")),
        "{lines:#?}"
    );
    // Lines about requests carry an id; only start-up and background lines have none.
    for line in &lines {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        let in_request = v["target"].as_str().is_some_and(|t| {
            t.starts_with("tessera::grant") || t.starts_with("actix_web::middleware::logger")
        });
        if in_request {
            assert!(line.contains("request_id"), "without a request id: {line}");
        }
    }
}

/// SIGTERM while slow password grants are in flight: each accepted request gets its answer,
/// new connections are refused, and the server exits 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigterm_lets_accepted_requests_finish_then_exits_0() {
    // The user's password is hashed with Argon2 heavier than production's, and verifying it is
    // what a grant spends its time on; with one hashing slot the grants queue behind each
    // other and take seconds in all.
    let app = TestApp::spawn_with(
        Db::Sqlite,
        &[
            ("TESSERA_PASSWORDS__ARGON2_MEMORY_KIB", "65536"),
            ("TESSERA_PASSWORDS__ARGON2_ITERATIONS", "3"),
        ],
    )
    .await;
    let (id, secret) = app.password_client().await;
    app.user("alice").await;
    let server = Binary::start(
        &app,
        &[
            ("TESSERA_PASSWORDS__MAX_CONCURRENT_HASHES", "1"),
            ("TESSERA_PASSWORDS__MAX_WAIT", "30s"),
            ("TESSERA_THROTTLE__MAX_FAILURES_PER_USER", "1000"),
            ("TESSERA_THROTTLE__MAX_FAILURES_PER_IP", "1000"),
        ],
    )
    .await;
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    const IN_FLIGHT: usize = 12;
    let mut grants = tokio::task::JoinSet::new();
    for _ in 0..IN_FLIGHT {
        let (http, base, id, secret) = (
            http.clone(),
            server.base.clone(),
            id.clone(),
            secret.clone(),
        );
        grants.spawn(async move {
            let res = password_grant(&http, &base, &id, &secret)
                .send()
                .await
                .map_err(|e| e.to_string())?;
            let status = res.status().as_u16();
            let body: serde_json::Value = res.json().await.map_err(|e| e.to_string())?;
            Ok::<_, String>((status, body, Instant::now()))
        });
    }
    // All accepted and being served (the last one waits for the hashing slot).
    tokio::time::sleep(Duration::from_millis(150)).await;
    let signalled = Instant::now();
    server.signal("TERM");
    let base = server.base.clone();
    let mut server = server;
    let exit = tokio::task::spawn_blocking(move || {
        let status = server.child.wait().unwrap();
        (status, Instant::now(), server.lines())
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let refused = reqwest::Client::new()
        .get(format!("{base}/healthz"))
        .timeout(Duration::from_secs(2))
        .send()
        .await;
    assert!(
        refused.is_err(),
        "a new connection after SIGTERM: {refused:?}"
    );

    let mut last_answer = signalled;
    let mut answered = 0;
    while let Some(done) = grants.join_next().await {
        let (status, body, at) = done
            .unwrap()
            .unwrap_or_else(|e| panic!("a request lost: {e}"));
        assert_eq!(status, 200, "{body}");
        assert!(body["access_token"].is_string());
        last_answer = last_answer.max(at);
        answered += 1;
    }
    assert_eq!(answered, IN_FLIGHT);
    let (status, exited, log) = exit.await.unwrap();
    assert_eq!(status.code(), Some(0), "{log:#?}");
    assert!(exited >= last_answer, "exited before answering");
    eprintln!(
        "shutdown: {IN_FLIGHT} grants in flight at SIGTERM, all answered 200; last answer {:?} after the signal, exit 0 after {:?}",
        last_answer - signalled,
        exited - signalled
    );
}

/// With `server.drain`, SIGTERM first turns `/readyz` to 503 while every request is still
/// served, new connections included, so that a load balancer takes the instance out before it
/// stops accepting; then the server stops as without it. A second signal cuts the drain short.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigterm_with_a_drain_turns_readyz_away_first_and_keeps_serving() {
    let app = TestApp::spawn(Db::Sqlite).await;
    let (id, secret) = app.password_client().await;
    app.user("alice").await;
    let server = Binary::start(&app, &[("TESSERA_SERVER__DRAIN", "2s")]).await;
    // A new connection per request: what is served during the drain is not only what was
    // already connected.
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let readyz = |http: reqwest::Client, base: String| async move {
        let res = http.get(format!("{base}/readyz")).send().await?;
        let status = res.status().as_u16();
        let body: serde_json::Value = res.json().await?;
        Ok::<_, reqwest::Error>((status, body))
    };
    assert_eq!(
        readyz(http.clone(), server.base.clone()).await.unwrap().0,
        200
    );
    let grant = |http: reqwest::Client, base: String| {
        let (id, secret) = (id.clone(), secret.clone());
        async move {
            password_grant(&http, &base, &id, &secret)
                .send()
                .await
                .map(|r| r.status().as_u16())
        }
    };

    let signalled = Instant::now();
    server.signal("TERM");
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (status, body) = readyz(http.clone(), server.base.clone()).await.unwrap();
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["reason"], "shutting down");
    let mut served = 0;
    while signalled.elapsed() < Duration::from_millis(1500) {
        assert_eq!(grant(http.clone(), server.base.clone()).await.unwrap(), 200);
        served += 1;
    }
    assert!(served >= 3, "{served} grants during the drain");
    let base = server.base.clone();
    let mut server = server;
    let exit = tokio::task::spawn_blocking(move || {
        let status = server.child.wait().unwrap();
        (status, signalled.elapsed(), server.lines())
    });
    let (status, after, log) = exit.await.unwrap();
    assert_eq!(status.code(), Some(0), "{log:#?}");
    assert!(
        after >= Duration::from_secs(2),
        "stopped before the drain ended: {after:?}"
    );
    assert!(
        grant(http.clone(), base).await.is_err(),
        "served after the stop"
    );

    // A second signal ends the drain at once.
    let server = Binary::start(&app, &[("TESSERA_SERVER__DRAIN", "60s")]).await;
    let signalled = Instant::now();
    server.signal("TERM");
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        readyz(http.clone(), server.base.clone()).await.unwrap().0,
        503
    );
    server.signal("INT");
    let mut server = server;
    let status = tokio::task::spawn_blocking(move || server.child.wait().unwrap())
        .await
        .unwrap();
    assert_eq!(status.code(), Some(0));
    assert!(
        signalled.elapsed() < Duration::from_secs(10),
        "the second signal did not end the drain: {:?}",
        signalled.elapsed()
    );
}
