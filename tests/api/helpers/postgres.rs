//! Throwaway PostgreSQL clusters that a test may stop, kill or promote: initdb, pg_basebackup
//! and pg_ctl run as the `postgres` user.

use std::path::PathBuf;
use std::process::Command;

/// A cluster of its own, stopped and removed on drop.
pub struct OwnPostgres {
    dir: PathBuf,
    bin: PathBuf,
    pub port: u16,
    /// `-c name=value` settings it runs with.
    settings: Vec<String>,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl OwnPostgres {
    /// A directory owned by `postgres` and the server binaries, if this machine has both.
    fn prepare(settings: &[&str]) -> Option<Self> {
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
        Some(OwnPostgres {
            dir,
            bin,
            port: free_port(),
            settings: settings.iter().map(|s| (*s).to_owned()).collect(),
        })
    }

    /// A new cluster, started; `settings` are `name=value` pairs. `None` when this machine has
    /// no PostgreSQL binaries or no `postgres` user.
    pub fn start(settings: &[&str]) -> Option<Self> {
        let pg = Self::prepare(settings)?;
        let data = pg.data();
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

    /// A streaming standby of `primary`, started, known to it as `name`.
    pub fn standby_of(primary: &OwnPostgres, name: &str, settings: &[&str]) -> Self {
        let pg = Self::prepare(settings).expect("the primary ran");
        let data = pg.data();
        let port = primary.port.to_string();
        pg.as_postgres(
            "pg_basebackup",
            &[
                "-h",
                "127.0.0.1",
                "-p",
                &port,
                "-U",
                "postgres",
                "-D",
                data.to_str().unwrap(),
                "-R",
                "-X",
                "stream",
                "--no-sync",
            ],
        );
        // -R wrote how to reach the primary; the name makes it a synchronous standby.
        let conninfo = format!(
            "\nprimary_conninfo = 'host=127.0.0.1 port={port} user=postgres application_name={name}'\n"
        );
        let auto = data.join("postgresql.auto.conf");
        let mut text = std::fs::read_to_string(&auto).unwrap();
        text.push_str(&conninfo);
        std::fs::write(&auto, text).unwrap();
        pg.ctl("start");
        pg
    }

    fn data(&self) -> PathBuf {
        self.dir.join("data")
    }

    fn as_postgres(&self, tool: &str, args: &[&str]) -> String {
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
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `pg_ctl start`, `stop` (fast) or `promote`, waiting for it to finish.
    pub fn ctl(&self, action: &str) {
        let data = self.data();
        let log = self.dir.join("log");
        let mut opts = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
            self.port,
            self.dir.display()
        );
        for s in &self.settings {
            opts.push_str(&format!(" -c {s}"));
        }
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

    /// Stops it the way a crash would: no shutdown checkpoint, clients cut off.
    pub fn kill(&self) {
        let data = self.data();
        self.as_postgres(
            "pg_ctl",
            &["-D", data.to_str().unwrap(), "-m", "immediate", "stop"],
        );
    }

    /// Runs `sql` with psql; its unaligned output.
    pub fn psql(&self, sql: &str) -> String {
        let port = self.port.to_string();
        self.as_postgres(
            "psql",
            &[
                "-h",
                "127.0.0.1",
                "-p",
                &port,
                "-U",
                "postgres",
                "-At",
                "-c",
                sql,
            ],
        )
    }

    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }
}

impl Drop for OwnPostgres {
    fn drop(&mut self) {
        let data = self.data();
        let _ = Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(self.bin.join("pg_ctl"))
            .args(["-D", data.to_str().unwrap(), "-m", "immediate", "stop"])
            .output();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
