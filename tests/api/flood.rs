//! A flood of password grants is bounded (a hashing slot or a quick 503) and does not starve
//! refreshes.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::helpers::{Db, TestApp};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn refreshes_keep_answering_during_a_password_flood() {
    let app = TestApp::spawn_with(
        Db::Sqlite,
        &[
            // Production Argon2 parameters, one hash at a time, short patience.
            ("TESSERA_PASSWORDS__ARGON2_MEMORY_KIB", "19456"),
            ("TESSERA_PASSWORDS__ARGON2_ITERATIONS", "2"),
            ("TESSERA_PASSWORDS__MAX_CONCURRENT_HASHES", "1"),
            ("TESSERA_PASSWORDS__MAX_WAIT", "200ms"),
            ("TESSERA_THROTTLE__MAX_FAILURES_PER_IP", "100000"),
        ],
    )
    .await;
    let (id, secret) = app.password_client().await;
    app.user("alice").await;
    let first = app.password_grant((&id, &secret), "alice").await;

    let flood = {
        let (address, id, secret) = (app.address.clone(), id.clone(), secret.clone());
        tokio::spawn(async move {
            let http = reqwest::Client::new();
            let mut statuses = Vec::new();
            for wave in 0..4 {
                let mut tasks = tokio::task::JoinSet::new();
                for i in 0..40 {
                    let req = http
                        .post(format!("{address}/token"))
                        .basic_auth(&id, Some(&secret))
                        .form(&[
                            ("grant_type", "password"),
                            ("username", &format!("flood{wave}-{i}")),
                            ("password", "guess"),
                        ]);
                    tasks.spawn(async move {
                        let res = req.send().await.unwrap();
                        let retry_after = res.headers().get("retry-after").is_some();
                        let status = res.status().as_u16();
                        let body: Value = res.json().await.unwrap();
                        (
                            status,
                            body["error"].as_str().unwrap_or_default().to_owned(),
                            retry_after,
                        )
                    });
                }
                statuses.extend(tasks.join_all().await);
            }
            statuses
        })
    };

    // Meanwhile, the app keeps refreshing.
    let mut refresh = first["refresh_token"].as_str().unwrap().to_owned();
    let mut latencies = Vec::new();
    for _ in 0..20 {
        let start = Instant::now();
        let res = app.refresh((&id, &secret), &refresh).await;
        latencies.push(start.elapsed());
        assert_eq!(res.status(), 200, "a refresh failed during the flood");
        let body: Value = res.json().await.unwrap();
        refresh = body["refresh_token"].as_str().unwrap().to_owned();
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let statuses = flood.await.unwrap();
    for (status, error, retry_after) in &statuses {
        match status {
            400 => assert_eq!(error, "invalid_grant"),
            503 => assert!(
                error == "temporarily_unavailable" && *retry_after,
                "{error}"
            ),
            other => panic!("unexpected {other} {error}"),
        }
    }
    let shed = statuses.iter().filter(|s| s.0 == 503).count();
    assert!(
        shed > 0,
        "with one hashing slot and 200 ms of patience, some sign-ins are shed"
    );
    latencies.sort();
    // For the record (cargo test --test api flood -- --nocapture).
    println!(
        "password flood: {} requests ({} shed with 503); refresh latency p50 {:?}, max {:?}",
        statuses.len(),
        shed,
        latencies[latencies.len() / 2],
        latencies[latencies.len() - 1]
    );
}
