//! `kill -9` during a refresh load leaves every family consistent: the invariants in
//! tests/sql/family_invariants.sql hold, and the server starts again on the same database.

use std::process::{Command, Stdio};
use std::time::Duration;

use diesel::sql_types::BigInt;
use diesel::{QueryableByName, RunQueryDsl};
use serde_json::Value;

use crate::helpers::{both_backends, test_env, Db, TestApp};

both_backends!(killing_the_server_mid_refresh_leaves_families_consistent);

#[derive(QueryableByName)]
struct Violations {
    #[diesel(sql_type = BigInt)]
    violations: i64,
}

const INVARIANTS: &str = include_str!("../sql/family_invariants.sql");

/// Runs each query of the invariants script; returns the violation counts.
pub(crate) async fn check_invariants(app: &TestApp) -> Vec<i64> {
    // Comments first (they may hold a `;`), then one query per statement.
    let sql: String = INVARIANTS
        .lines()
        .filter(|l| !l.trim_start().starts_with("--"))
        .collect::<Vec<_>>()
        .join("\n");
    let queries: Vec<String> = sql
        .split(';')
        .map(str::trim)
        .filter(|q| !q.is_empty())
        .map(str::to_owned)
        .collect();
    app.with_conn(move |c| {
        queries
            .iter()
            .map(|q| {
                diesel::sql_query(q)
                    .get_result::<Violations>(c)
                    .unwrap()
                    .violations
            })
            .collect()
    })
    .await
}

/// The real binary on `db_url`, at `port`.
fn start_server(app: &TestApp, port: u16) -> std::process::Child {
    let mut env = test_env(&app.db_url, &app.master_key);
    env.retain(|(k, _)| k != "TESSERA_SERVER__LISTEN");
    Command::new(env!("CARGO_BIN_EXE_tessera"))
        .env_clear()
        .envs(env)
        .env("TESSERA_SERVER__LISTEN", format!("127.0.0.1:{port}"))
        .current_dir(std::env::temp_dir())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

async fn wait_ready(base: &str) {
    crate::helpers::wait_healthy(base).await
}

async fn killing_the_server_mid_refresh_leaves_families_consistent(db: Db) {
    // The in-process server of TestApp prepares the database, clients and users.
    let app = TestApp::spawn(db).await;
    let (id, secret) = app.password_client().await;
    app.user("alice").await;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let base = format!("http://127.0.0.1:{port}");
    let mut server = start_server(&app, port);
    wait_ready(&base).await;

    // 16 families, each refreshed in a chain as fast as it goes.
    let http = reqwest::Client::new();
    let mut chains = tokio::task::JoinSet::new();
    for _ in 0..16 {
        let (http, base, id, secret) = (http.clone(), base.clone(), id.clone(), secret.clone());
        chains.spawn(async move {
            let res = http
                .post(format!("{base}/token"))
                .basic_auth(&id, Some(&secret))
                .form(&[
                    ("grant_type", "password"),
                    ("username", "alice"),
                    ("password", crate::helpers::PASSWORD),
                ])
                .send()
                .await;
            let Ok(res) = res else { return 0 };
            let Ok(mut body) = res.json::<Value>().await else {
                return 0;
            };
            let mut rotations = 0;
            loop {
                let Some(token) = body["refresh_token"].as_str().map(str::to_owned) else {
                    return rotations;
                };
                let sent = http
                    .post(format!("{base}/token"))
                    .basic_auth(&id, Some(&secret))
                    .form(&[
                        ("grant_type", "refresh_token"),
                        ("refresh_token", token.as_str()),
                    ])
                    .send()
                    .await;
                match sent {
                    Ok(res) => match res.json::<Value>().await {
                        Ok(next) => body = next,
                        Err(_) => return rotations,
                    },
                    Err(_) => return rotations,
                }
                rotations += 1;
            }
        });
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    // SIGKILL: no graceful shutdown, transactions cut wherever they are.
    server.kill().unwrap();
    server.wait().unwrap();
    let rotations: i32 = chains.join_all().await.iter().sum();
    assert!(rotations > 16, "the load ran ({rotations} rotations)");

    assert_eq!(
        check_invariants(&app).await,
        vec![0, 0, 0, 0],
        "after {rotations} rotations and a kill -9"
    );

    // The server starts again on the same database, and families go on.
    let mut again = start_server(&app, port);
    wait_ready(&base).await;
    let fresh = app.password_grant((&id, &secret), "alice").await;
    assert_eq!(
        app.refresh((&id, &secret), fresh["refresh_token"].as_str().unwrap())
            .await
            .status(),
        200
    );
    again.kill().unwrap();
    again.wait().unwrap();
    println!("kill -9 after {rotations} rotations: invariants hold");
}
