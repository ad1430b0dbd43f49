//! PostgreSQL stopped mid-load: answers are 503 `temporarily_unavailable` within a bounded
//! time, never a 500 or a hang; when it comes back, the server recovers without a restart.
//! The test runs its own PostgreSQL (initdb/pg_ctl as the `postgres` user) so it may stop it.

use std::time::{Duration, Instant};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::Value;

use crate::helpers::postgres::OwnPostgres;
use crate::helpers::{assert_oauth_error, Db, TestApp};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_outage_answers_503_and_the_server_recovers_by_itself() {
    let Some(pg) = tokio::task::spawn_blocking(|| OwnPostgres::start(&[]))
        .await
        .unwrap()
    else {
        crate::helpers::skipped(
            "db_faults::postgres_outage_answers_503_and_the_server_recovers_by_itself",
            "no PostgreSQL binaries or no `postgres` user",
        );
        return;
    };
    let key = URL_SAFE_NO_PAD.encode([7u8; 32]);
    let app = TestApp::spawn_on(
        Db::Postgres,
        &pg.url(),
        &key,
        &[("TESSERA_DATABASE__CONNECT_TIMEOUT", "1s")],
    )
    .await;
    let (id, secret) = app.password_client().await;
    app.user("alice").await;
    let tokens = app.password_grant((&id, &secret), "alice").await;
    let refresh = tokens["refresh_token"].as_str().unwrap().to_owned();
    let access = tokens["access_token"].as_str().unwrap().to_owned();

    // The database goes away.
    let pg = tokio::task::spawn_blocking(move || {
        pg.ctl("stop");
        pg
    })
    .await
    .unwrap();
    for _ in 0..3 {
        let start = Instant::now();
        let res = app.refresh((&id, &secret), &refresh).await;
        let took = start.elapsed();
        assert!(res.headers().contains_key("retry-after"));
        assert_oauth_error(res, 503, "temporarily_unavailable").await;
        assert!(
            took < Duration::from_secs(5),
            "answered in {took:?}: bounded by the pool's checkout timeout"
        );
    }
    // Not ready, so a load balancer looks elsewhere; alive all the same, so nothing restarts it.
    let ready = |app: &TestApp| {
        app.http
            .get(format!("{}/readyz", app.address))
            .timeout(Duration::from_secs(10))
            .send()
    };
    let res = ready(&app).await.unwrap();
    assert_eq!(res.status(), 503);
    assert!(res.headers().contains_key("retry-after"));
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["status"], "unavailable");
    let res = app
        .http
        .get(format!("{}/healthz", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let res = app.userinfo(&access).await;
    assert_eq!(
        res.status(),
        503,
        "an outage is not the token's fault: not a 401"
    );
    let res = app
        .token(
            Some((&id, &secret)),
            &[
                ("grant_type", "password"),
                ("username", "alice"),
                ("password", "x"),
            ],
        )
        .await;
    assert_eq!(res.status(), 503);

    // It comes back: the same server answers again, without a restart.
    let pg = tokio::task::spawn_blocking(move || {
        pg.ctl("start");
        pg
    })
    .await
    .unwrap();
    let back = Instant::now();
    let mut recovered = None;
    while back.elapsed() < Duration::from_secs(30) {
        let res = app.refresh((&id, &secret), &refresh).await;
        if res.status() == 200 {
            let body: Value = res.json().await.unwrap();
            assert!(body["refresh_token"].as_str().unwrap().starts_with("tsr_"));
            recovered = Some(back.elapsed());
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let recovered = recovered.expect("the server did not recover within 30 s");
    assert_eq!(ready(&app).await.unwrap().status(), 200);
    println!("database outage: 503 within the checkout timeout; recovered {recovered:?} after PostgreSQL was back");
    drop(pg);
}

/// A connection that dies inside a write transaction (a primary killed, a backend terminated)
/// fails the transaction with the lost connection's own error, which asks for a retry: not
/// with the broken transaction manager diesel is left with, which would answer 500.
#[test]
fn a_connection_lost_inside_a_write_transaction_is_a_retry() {
    use diesel::prelude::*;
    use diesel::result::{DatabaseErrorKind, Error};
    use tessera::store::{is_transient, write_tx, AnyConnection};

    if crate::helpers::postgres_url().is_none() {
        crate::helpers::skipped(
            "db_faults::a_connection_lost_inside_a_write_transaction_is_a_retry",
            "TESSERA_TEST_POSTGRES_URL is not set",
        );
        return;
    }
    let db = crate::helpers::TestDb::new(Db::Postgres);
    let mut conn = AnyConnection::establish(&db.url).unwrap();
    let lost = write_tx(&mut conn, |c| -> Result<(), Error> {
        diesel::sql_query("SELECT pg_terminate_backend(pg_backend_pid())").execute(c)?;
        Ok(())
    })
    .unwrap_err();
    assert!(
        matches!(
            lost,
            Error::DatabaseError(DatabaseErrorKind::ClosedConnection, _)
        ),
        "{lost:?}"
    );
    assert!(is_transient(&lost));
    // A live connection's failure is rolled back and comes back as it was.
    let mut conn = AnyConnection::establish(&db.url).unwrap();
    let bug = write_tx(&mut conn, |c| -> Result<(), Error> {
        diesel::sql_query("SELECT no_such_column").execute(c)?;
        Ok(())
    })
    .unwrap_err();
    assert!(!is_transient(&bug), "{bug:?}");
    diesel::sql_query("SELECT 1").execute(&mut conn).unwrap();
}
