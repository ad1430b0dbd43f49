//! PostgreSQL failover: a primary with a synchronous streaming standby (`remote_apply`). Under a
//! refresh load the primary dies and the standby is promoted. The server, given both hosts in
//! `database.url`, serves again by itself; every refresh token a client holds still works;
//! during the outage clients get 503 `temporarily_unavailable` with `Retry-After`, never a 500.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::Value;

use crate::helpers::postgres::OwnPostgres;
use crate::helpers::{skipped, Db, TestApp};

/// Chains of refreshes running at once, each on its own family.
const CHAINS: usize = 6;

/// What one chain saw: every status, and the refresh token it holds at the end.
struct Chain {
    statuses: Vec<u16>,
    /// 503s without `Retry-After` or without `temporarily_unavailable`.
    bad_503s: usize,
    current: String,
}

/// Refreshes `token` in a loop until `stop`, as an app would: a new token on 200, the same
/// one again after a 503.
async fn run_chain(
    app: Arc<TestApp>,
    c: (String, String),
    token: String,
    stop: Arc<AtomicBool>,
) -> Chain {
    let mut chain = Chain {
        statuses: Vec::new(),
        bad_503s: 0,
        current: token,
    };
    while !stop.load(Ordering::Relaxed) {
        let res = app.refresh((&c.0, &c.1), &chain.current).await;
        let status = res.status().as_u16();
        chain.statuses.push(status);
        match status {
            200 => {
                let body: Value = res.json().await.unwrap();
                chain.current = body["refresh_token"].as_str().unwrap().to_owned();
            }
            503 => {
                let retry_after = res.headers().contains_key("retry-after");
                let body: Value = res.json().await.unwrap_or_default();
                if !retry_after || body["error"] != "temporarily_unavailable" {
                    chain.bad_503s += 1;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            _ => break,
        }
    }
    chain
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_promoted_standby_takes_over_and_nothing_acknowledged_is_lost() {
    let clusters = tokio::task::spawn_blocking(|| {
        let primary = OwnPostgres::start(&[
            "wal_level=replica",
            "max_wal_senders=4",
            "hot_standby=on",
            "synchronous_standby_names=standby1",
            "synchronous_commit=remote_apply",
        ])?;
        let standby = OwnPostgres::standby_of(&primary, "standby1", &["hot_standby=on"]);
        Some((primary, standby))
    })
    .await
    .unwrap();
    let Some((primary, standby)) = clusters else {
        skipped(
            "failover::a_promoted_standby_takes_over_and_nothing_acknowledged_is_lost",
            "no PostgreSQL binaries or no `postgres` user",
        );
        return;
    };
    // Every commit waits for the standby to apply it.
    let (primary, standby) =
        tokio::task::spawn_blocking(move || {
            let deadline = Instant::now() + Duration::from_secs(30);
            while primary.psql(
            "SELECT sync_state FROM pg_stat_replication WHERE application_name = 'standby1'",
        ) .trim() != "sync"
        {
            assert!(Instant::now() < deadline, "the standby never became synchronous");
            std::thread::sleep(Duration::from_millis(100));
        }
            (primary, standby)
        })
        .await
        .unwrap();

    let url = format!(
        "postgres://postgres@127.0.0.1:{},127.0.0.1:{}/postgres?target_session_attrs=read-write",
        primary.port, standby.port
    );
    let key = URL_SAFE_NO_PAD.encode([7u8; 32]);
    let app = Arc::new(
        TestApp::spawn_on(
            Db::Postgres,
            &url,
            &key,
            &[
                ("TESSERA_DATABASE__CONNECT_TIMEOUT", "1s"),
                // An app retries a refresh that got no answer; the grace window covers the
                // failover, so a rotation that committed unseen is answered again.
                ("TESSERA_TOKENS__REUSE_GRACE", "30s"),
                ("TESSERA_SERVER__METRICS_LISTEN", "127.0.0.1:0"),
            ],
        )
        .await,
    );
    let (id, secret) = app.password_client().await;
    app.user("alice").await;
    let mut tokens = Vec::new();
    for _ in 0..=CHAINS {
        let t = app.password_grant((&id, &secret), "alice").await;
        tokens.push(t["refresh_token"].as_str().unwrap().to_owned());
    }
    let probe = tokens.pop().unwrap();

    let stop = Arc::new(AtomicBool::new(false));
    let chains: Vec<_> = tokens
        .into_iter()
        .map(|t| {
            tokio::spawn(run_chain(
                app.clone(),
                (id.clone(), secret.clone()),
                t,
                stop.clone(),
            ))
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(1500)).await;

    // The primary dies; a moment later the standby is promoted.
    let primary = tokio::task::spawn_blocking(move || {
        primary.kill();
        primary
    })
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let (standby, promoted) = tokio::task::spawn_blocking(move || {
        standby.ctl("promote");
        (standby, Instant::now())
    })
    .await
    .unwrap();
    let mut probe_token = probe;
    let back = loop {
        let res = app.refresh((&id, &secret), &probe_token).await;
        if res.status() == 200 {
            let body: Value = res.json().await.unwrap();
            probe_token = body["refresh_token"].as_str().unwrap().to_owned();
            break promoted.elapsed();
        }
        assert_eq!(res.status(), 503, "during the failover only 503s");
        assert!(
            promoted.elapsed() < Duration::from_secs(30),
            "no recovery within 30 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    tokio::time::sleep(Duration::from_millis(1500)).await;
    stop.store(true, Ordering::Relaxed);

    let mut total = 0;
    let mut unavailable = 0;
    for chain in chains {
        let chain = chain.await.unwrap();
        total += chain.statuses.len();
        unavailable += chain.statuses.iter().filter(|s| **s == 503).count();
        assert!(
            chain.statuses.iter().all(|s| *s == 200 || *s == 503),
            "only 200 and 503: {:?}",
            chain.statuses
        );
        assert_eq!(
            chain.bad_503s, 0,
            "every 503 is temporarily_unavailable with Retry-After"
        );
        assert!(
            chain.statuses.ends_with(&[200]),
            "each chain refreshes again after the failover: {:?}",
            chain.statuses
        );
        // The token the app holds was acknowledged: it works on the new primary.
        let res = app.refresh((&id, &secret), &chain.current).await;
        assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
    }
    assert!(unavailable > 0, "the load saw the outage");
    assert_eq!(
        app.refresh((&id, &secret), &probe_token).await.status(),
        200
    );
    let violations = crate::crash::check_invariants(&app).await;
    assert!(violations.iter().all(|v| *v == 0), "{violations:?}");
    // The metrics saw it: connections lost with the primary, new ones on another server.
    let metrics = crate::metrics::Metrics::scrape(&app).await;
    assert!(metrics.get("tessera_db_connections_lost_total{}") >= 1.0);
    assert!(metrics.get("tessera_db_server_changes_total{}") >= 1.0);
    println!(
        "failover: first successful refresh {back:?} after the promotion; {total} refreshes, {unavailable} answered 503"
    );
    drop(standby);
    drop(primary);
}
