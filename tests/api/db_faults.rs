//! PostgreSQL stopped mid-load: answers are 503 `temporarily_unavailable` within a bounded
//! time, never a 500 or a hang; when it comes back, the server recovers without a restart.
//! The test runs its own PostgreSQL (initdb/pg_ctl as the `postgres` user) so it may stop it.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::Value;

use crate::helpers::{assert_oauth_error, Db, TestApp};

/// A throwaway PostgreSQL cluster, stopped and removed on drop.
struct OwnPostgres {
    dir: PathBuf,
    bin: PathBuf,
    port: u16,
}

impl OwnPostgres {
    fn start() -> Option<Self> {
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .ok()?
            .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
            .find(|b| b.join("pg_ctl").exists())?;
        let runuser_ok = Command::new("runuser")
            .args(["-u", "postgres", "--", "true"])
            .status()
            .is_ok_and(|s| s.success());
        if !runuser_ok {
            return None;
        }
        let dir =
            std::env::temp_dir().join(format!("tessera-pg-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        let chown = Command::new("chown")
            .args(["postgres:postgres", dir.to_str().unwrap()])
            .status()
            .unwrap();
        assert!(chown.success());
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let pg = OwnPostgres { dir, bin, port };
        let data = pg.dir.join("data");
        pg.as_postgres(
            "initdb",
            &[
                "-D",
                data.to_str().unwrap(),
                "-A",
                "trust",
                "-U",
                "postgres",
                "--no-sync",
            ],
        );
        pg.ctl("start");
        Some(pg)
    }

    fn as_postgres(&self, tool: &str, args: &[&str]) {
        let out = Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(self.bin.join(tool))
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{tool}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn ctl(&self, action: &str) {
        let data = self.dir.join("data");
        let log = self.dir.join("log");
        let opts = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
            self.port,
            self.dir.display()
        );
        let mut args = vec![
            "-D",
            data.to_str().unwrap(),
            "-l",
            log.to_str().unwrap(),
            "-o",
            &opts,
            "-w",
        ];
        if action == "stop" {
            args.extend(["-m", "fast"]);
        }
        args.push(action);
        self.as_postgres("pg_ctl", &args);
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }
}

impl Drop for OwnPostgres {
    fn drop(&mut self) {
        let data = self.dir.join("data");
        let _ = Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(self.bin.join("pg_ctl"))
            .args(["-D", data.to_str().unwrap(), "-m", "immediate", "stop"])
            .output();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_outage_answers_503_and_the_server_recovers_by_itself() {
    let Some(pg) = tokio::task::spawn_blocking(OwnPostgres::start)
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
    println!("database outage: 503 within the checkout timeout; recovered {recovered:?} after PostgreSQL was back");
    drop(pg);
}
