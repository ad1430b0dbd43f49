pub mod browser;
pub mod dpop;
pub mod postgres;
pub mod receiver;
pub mod webdriver;

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::sync::Once;
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use diesel::connection::SimpleConnection;
use diesel::pg::PgConnection;
use diesel::Connection;
use serde_json::Value;
use tessera::domain::client::{self, ClientSpec, GrantType};
use tessera::domain::password::PasswordHasher;
use tessera::domain::scope::Scope;
use tessera::domain::user::{self, Username};
use tessera::domain::{Clock, ClockHand};
use tessera::settings::Settings;
use tessera::startup::Application;
use tessera::store::{self, AnyConnection, Pool};

pub const PASSWORD: &str = "correct horse battery staple";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Db {
    Sqlite,
    Postgres,
}

/// Generates one test per backend from an `async fn(Db)`.
macro_rules! both_backends {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn sqlite() {
                    super::$name(crate::helpers::Db::Sqlite).await
                }
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn postgres() {
                    if crate::helpers::postgres_url().is_some() {
                        super::$name(crate::helpers::Db::Postgres).await
                    } else {
                        crate::helpers::skipped(
                            concat!(module_path!(), "::postgres"),
                            "TESSERA_TEST_POSTGRES_URL is not set",
                        );
                    }
                }
            }
        )*
    };
}
pub(crate) use both_backends;

/// The PostgreSQL server for the suite, or `None` (said once, loudly, on stderr).
pub fn postgres_url() -> Option<String> {
    static NOTICE: Once = Once::new();
    let url = std::env::var("TESSERA_TEST_POSTGRES_URL")
        .ok()
        .filter(|u| !u.is_empty());
    if url.is_none() {
        NOTICE.call_once(|| {
            // Written past the test harness's capture so that it shows in every run.
            let _ = writeln!(
                std::io::stderr(),
                "\n*** TESSERA_TEST_POSTGRES_URL is not set: the PostgreSQL suite was SKIPPED (SQLite only) ***\n"
            );
        });
    }
    url
}

/// Says, past the test harness's capture, that a test returned without running; `.ci/run`
/// fails on any such line. A test that cannot run here calls this and returns.
pub fn skipped(test: &str, why: &str) {
    let _ = writeln!(std::io::stderr(), "\nSKIPPED: {test}: {why}\n");
}

/// A database that exists for one test and is dropped after it.
pub struct TestDb {
    pub url: String,
    cleanup: Cleanup,
}

enum Cleanup {
    Dir(PathBuf),
    Pg { admin_url: String, name: String },
}

impl TestDb {
    pub fn new(db: Db) -> Self {
        let id = uuid::Uuid::new_v4().simple().to_string();
        match db {
            Db::Sqlite => {
                let dir = std::env::temp_dir().join(format!("tessera-test-{id}"));
                std::fs::create_dir_all(&dir).unwrap();
                let url = format!("sqlite://{}", dir.join("tessera.db").display());
                TestDb {
                    url,
                    cleanup: Cleanup::Dir(dir),
                }
            }
            Db::Postgres => {
                let admin_url = postgres_url().expect("TESSERA_TEST_POSTGRES_URL");
                let name = format!("tessera_test_{id}");
                let mut conn = PgConnection::establish(&admin_url).unwrap_or_else(|e| {
                    panic!("TESSERA_TEST_POSTGRES_URL is set but unreachable: {e}")
                });
                conn.batch_execute(&format!("CREATE DATABASE {name}"))
                    .unwrap();
                let mut url = url::Url::parse(&admin_url).unwrap();
                url.set_path(&name);
                TestDb {
                    url: url.to_string(),
                    cleanup: Cleanup::Pg { admin_url, name },
                }
            }
        }
    }
}

impl TestDb {
    /// A new PostgreSQL database made from this one as it stands (`CREATE DATABASE … TEMPLATE`),
    /// dropped after the test like any other. Connections to this one are closed first: a
    /// template must have none.
    pub fn copy(&self) -> TestDb {
        let Cleanup::Pg { admin_url, name } = &self.cleanup else {
            panic!("only a PostgreSQL database is copied");
        };
        let copy = format!("tessera_test_{}", uuid::Uuid::new_v4().simple());
        let mut conn = PgConnection::establish(admin_url).unwrap();
        conn.batch_execute(&format!(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
              WHERE datname = '{name}' AND pid <> pg_backend_pid()"
        ))
        .unwrap();
        conn.batch_execute(&format!("CREATE DATABASE {copy} TEMPLATE {name}"))
            .unwrap();
        let mut url = url::Url::parse(admin_url).unwrap();
        url.set_path(&copy);
        TestDb {
            url: url.to_string(),
            cleanup: Cleanup::Pg {
                admin_url: admin_url.clone(),
                name: copy,
            },
        }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        match &self.cleanup {
            Cleanup::Dir(dir) => {
                let _ = std::fs::remove_dir_all(dir);
            }
            Cleanup::Pg { admin_url, name } => {
                if let Ok(mut conn) = PgConnection::establish(admin_url) {
                    let _ =
                        conn.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
                }
            }
        }
    }
}

/// Environment for a server or CLI on `db_url`: fast Argon2 and a fixed master key.
/// On PostgreSQL, `database.pooler` is `TESSERA_TEST_POSTGRES_POOLER` when set: the suite then
/// runs through a pooler (`tests/scale/pgbouncer.sh`).
pub fn test_env(db_url: &str, master_key: &str) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = [
        ("TESSERA_SERVER__LISTEN", "127.0.0.1:0"),
        ("TESSERA_SERVER__ISSUER", "http://tessera.test"),
        ("TESSERA_DATABASE__URL", db_url),
        ("TESSERA_MASTER_KEY", master_key),
        ("TESSERA_PASSWORDS__ARGON2_MEMORY_KIB", "4096"),
        ("TESSERA_PASSWORDS__ARGON2_ITERATIONS", "1"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    if db_url.starts_with("postgres") {
        if let Ok(pooler) = std::env::var("TESSERA_TEST_POSTGRES_POOLER") {
            env.push(("TESSERA_DATABASE__POOLER".to_owned(), pooler));
        }
    }
    env
}

pub struct TestApp {
    pub address: String,
    /// `http://…/metrics` when `TESSERA_SERVER__METRICS_LISTEN` was given.
    pub metrics: Option<String>,
    pub http: reqwest::Client,
    pub db_url: String,
    pub master_key: String,
    pub pool: Pool,
    pub settings: Settings,
    /// The server's `TESSERA_…` environment, given to the CLI too.
    pub env: Vec<(String, String)>,
    /// The server's clock: [`TestApp::advance`] moves it.
    pub clock: Clock,
    hand: ClockHand,
    /// Stop the server when the test is done (see `Drop`).
    servers: Vec<actix_web::dev::ServerHandle>,
    thread: Option<std::thread::JoinHandle<()>>,
    _db: Option<TestDb>,
}

impl Drop for TestApp {
    /// Stops the server and waits for its thread, before the test's database is dropped: a
    /// server left running would keep its connection pool, whose threads would try to reconnect
    /// to the dropped database until the test binary exits. (`stop` sends the command when
    /// called; the future it returns only waits for it.)
    fn drop(&mut self) {
        for server in &self.servers {
            drop(server.stop(false));
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl TestApp {
    pub async fn spawn(db: Db) -> TestApp {
        Self::spawn_with(db, &[]).await
    }

    /// Spawns a server on a fresh database, with extra `TESSERA_…` variables.
    pub async fn spawn_with(db: Db, extra: &[(&str, &str)]) -> TestApp {
        let test_db = TestDb::new(db);
        let master_key = URL_SAFE_NO_PAD.encode(uuid::Uuid::new_v4().as_bytes().repeat(2));
        let mut app = Self::spawn_on(db, &test_db.url, &master_key, extra).await;
        app._db = Some(test_db);
        app
    }

    /// Spawns another server on an existing database (a second instance).
    pub async fn spawn_on(
        _db: Db,
        db_url: &str,
        master_key: &str,
        extra: &[(&str, &str)],
    ) -> TestApp {
        let mut env = test_env(db_url, master_key);
        env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        let settings = Settings::from_env(env.clone()).unwrap();
        let (clock, hand) = Clock::adjustable();
        // On a thread and runtime of its own, as `main` runs it: the server lives until `Drop`
        // stops it, not until the test's runtime happens to end.
        let (tx, rx) = std::sync::mpsc::channel();
        let (build_settings, build_clock) = (settings.clone(), clock.clone());
        let thread = std::thread::spawn(move || {
            actix_web::rt::System::new().block_on(async move {
                match Application::build_with_clock(build_settings, build_clock).await {
                    Ok(app) => {
                        let _ = tx.send(Ok((app.port(), app.metrics_port(), app.handles())));
                        let _ = app.run_until_stopped().await;
                    }
                    Err(e) => {
                        let _ = tx.send(Err(format!("{e:#}")));
                    }
                }
            });
        });
        let (port, metrics_port, servers) = tokio::task::spawn_blocking(move || rx.recv())
            .await
            .unwrap()
            .expect("the server's thread ended")
            .unwrap_or_else(|e| panic!("the server did not start: {e}"));
        let address = format!("http://127.0.0.1:{port}");
        let metrics = metrics_port.map(|port| format!("http://127.0.0.1:{port}/metrics"));
        let url = db_url.to_owned();
        let options = store::Options {
            pool_size: 2,
            connect_timeout: Duration::from_secs(10),
            ..settings.database.options()
        };
        let pool = tokio::task::spawn_blocking(move || {
            store::connect_and_migrate(&url, &options).unwrap().0
        })
        .await
        .unwrap();
        TestApp {
            address,
            metrics,
            http: reqwest::Client::builder()
                .user_agent("tessera-tests/1.0")
                .build()
                .unwrap(),
            db_url: db_url.to_owned(),
            master_key: master_key.to_owned(),
            pool,
            settings,
            env,
            clock,
            hand,
            servers,
            thread: Some(thread),
            _db: None,
        }
    }

    /// Moves the server's clock forward: lifetimes and windows pass without a sleep.
    pub fn advance(&self, by: Duration) {
        self.hand.advance(by);
    }

    /// Runs `f` on a connection to the test database.
    pub async fn with_conn<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut AnyConnection) -> T + Send + 'static,
    ) -> T {
        let pool = self.pool.clone();
        tokio::task::spawn_blocking(move || f(&mut pool.get().unwrap()))
            .await
            .unwrap()
    }

    /// Registers a client through the domain layer; returns (id, secret).
    pub async fn client(
        &self,
        grants: &[GrantType],
        public: bool,
        scope: &str,
    ) -> (String, Option<String>) {
        let spec = ClientSpec {
            name: "test client".into(),
            public,
            grants: grants.to_vec(),
            scope: Scope::parse(scope).unwrap(),
            redirect_uris: vec![],
            openid: Default::default(),
            app: Default::default(),
        };
        self.register(spec).await
    }

    /// Registers `spec` through the domain layer; returns (id, secret).
    pub async fn register(&self, spec: ClientSpec) -> (String, Option<String>) {
        let clock = self.clock.clone();
        self.with_conn(move |c| {
            let (client, secret) = client::register(c, &spec, &clock).unwrap();
            (
                client.id.into_string(),
                secret.map(|s| s.expose().to_owned()),
            )
        })
        .await
    }

    /// A confidential client allowed password and refresh_token, scope "read write".
    pub async fn password_client(&self) -> (String, String) {
        let (id, secret) = self
            .client(
                &[GrantType::Password, GrantType::RefreshToken],
                false,
                "read write",
            )
            .await;
        (id, secret.unwrap())
    }

    pub async fn user(&self, name: &str) -> String {
        self.user_with(name, Default::default()).await
    }

    /// A user with a profile (name, email) for OpenID Connect.
    pub async fn user_with(
        &self,
        name: &str,
        profile: tessera::domain::profile::ProfileChange,
    ) -> String {
        let hasher = PasswordHasher::new(&self.settings.hash_policy(Some(1))).unwrap();
        let name = Username::parse(name).unwrap();
        let clock = self.clock.clone();
        self.with_conn(move |c| {
            user::create(c, &hasher, &name, PASSWORD, &profile, &clock)
                .unwrap()
                .id
                .into_string()
        })
        .await
    }

    /// `POST /token` with a form body and optional Basic credentials.
    pub async fn token(
        &self,
        basic: Option<(&str, &str)>,
        form: &[(&str, &str)],
    ) -> reqwest::Response {
        let mut req = self.http.post(format!("{}/token", self.address)).form(form);
        if let Some((id, secret)) = basic {
            req = req.basic_auth(id, Some(secret));
        }
        req.send().await.unwrap()
    }

    /// `POST /token` with a `DPoP` header: the client authenticates in the form.
    pub async fn token_with_dpop(&self, proof: &str, form: &[(&str, &str)]) -> reqwest::Response {
        let url = format!("{}/token", self.address);
        let req = self.http.post(url).header("DPoP", proof).form(form);
        req.send().await.unwrap()
    }

    /// A password grant with `password`, whatever its outcome.
    pub async fn sign_in(
        &self,
        client: (&str, &str),
        username: &str,
        password: &str,
    ) -> reqwest::Response {
        self.token(
            Some(client),
            &[
                ("grant_type", "password"),
                ("username", username),
                ("password", password),
            ],
        )
        .await
    }

    pub async fn password_grant(&self, client: (&str, &str), username: &str) -> Value {
        let res = self.sign_in(client, username, PASSWORD).await;
        assert_eq!(res.status(), 200);
        res.json().await.unwrap()
    }

    /// A password grant sent by an app with its own user agent (a phone app, say).
    pub async fn password_grant_from(
        &self,
        (id, secret): (&str, &str),
        username: &str,
        user_agent: &str,
    ) -> Value {
        let res = reqwest::Client::new()
            .post(format!("{}/token", self.address))
            .header("User-Agent", user_agent)
            .basic_auth(id, Some(secret))
            .form(&[
                ("grant_type", "password"),
                ("username", username),
                ("password", PASSWORD),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        res.json().await.unwrap()
    }

    pub async fn refresh(&self, client: (&str, &str), refresh_token: &str) -> reqwest::Response {
        self.token(
            Some(client),
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", refresh_token),
            ],
        )
        .await
    }

    /// A refresh that must succeed; returns the token response.
    pub async fn refreshed(&self, client: (&str, &str), refresh_token: &str) -> Value {
        let res = self.refresh(client, refresh_token).await;
        assert_eq!(res.status(), 200, "refresh refused");
        res.json().await.unwrap()
    }

    pub async fn userinfo(&self, access_token: &str) -> reqwest::Response {
        self.http
            .get(format!("{}/userinfo", self.address))
            .bearer_auth(access_token)
            .send()
            .await
            .unwrap()
    }

    /// `POST path` with Basic client credentials and a form body.
    pub async fn post_as(
        &self,
        path: &str,
        basic: (&str, &str),
        form: &[(&str, &str)],
    ) -> reqwest::Response {
        self.http
            .post(format!("{}{path}", self.address))
            .basic_auth(basic.0, Some(basic.1))
            .form(form)
            .send()
            .await
            .unwrap()
    }

    /// `POST /revoke` (RFC 7009) for `token`.
    pub async fn revoke(&self, basic: (&str, &str), token: &str) -> reqwest::Response {
        self.post_as("/revoke", basic, &[("token", token)]).await
    }

    /// `POST /introspect` (RFC 7662) for `token`: a 200, uncached; its JSON.
    pub async fn introspect(&self, basic: (&str, &str), token: &str) -> Value {
        let res = self
            .post_as("/introspect", basic, &[("token", token)])
            .await;
        assert_eq!(res.status(), 200);
        assert_eq!(res.headers()["cache-control"], "no-store");
        res.json().await.unwrap()
    }

    /// Runs the real `tessera-admin` binary against this test's database.
    pub async fn admin(&self, args: &[&str], stdin: Option<&str>) -> Output {
        let env = self.env.clone();
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        let stdin = stdin.map(str::to_owned);
        tokio::task::spawn_blocking(move || run_admin(&env, &args, stdin.as_deref()))
            .await
            .unwrap()
    }
}

/// Runs `tessera-admin` with exactly `env` (plus PATH) and `stdin`.
pub fn run_admin(env: &[(String, String)], args: &[String], stdin: Option<&str>) -> Output {
    let mut cmd = Command::new(admin_bin());
    // Away from the repository, so a developer's ./tessera.toml is not read.
    cmd.current_dir(std::env::temp_dir());
    cmd.args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default());
    cmd.envs(env.iter().map(|(k, v)| (k, v)));
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let mut pipe = child.stdin.take().unwrap();
    if let Some(input) = stdin {
        pipe.write_all(input.as_bytes()).unwrap();
    }
    drop(pipe);
    child.wait_with_output().unwrap()
}

/// `tessera-admin`, built beside this test binary by `cargo test --workspace`.
pub fn admin_bin() -> PathBuf {
    if let Ok(path) = std::env::var("TESSERA_ADMIN_BIN") {
        return path.into();
    }
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().and_then(|d| d.parent()).unwrap();
    let bin = dir.join(format!("tessera-admin{}", std::env::consts::EXE_SUFFIX));
    assert!(
        bin.exists(),
        "{} is missing: run the tests with `cargo test --workspace`",
        bin.display()
    );
    bin
}

/// Asserts an RFC 6749 §5.2 error: status, `error`, JSON body and no-store headers.
pub async fn assert_oauth_error(res: reqwest::Response, status: u16, code: &str) -> Value {
    assert_eq!(res.status(), status, "expected {status} {code}");
    assert_eq!(res.headers()["cache-control"], "no-store");
    assert_eq!(res.headers()["pragma"], "no-cache");
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"], code, "body: {body}");
    body
}

/// Polls `check` every 20 ms until it returns `Some`, and returns that; panics naming `what`
/// after `within`. For a state the test can observe: a fixed sleep would either waste time or,
/// on a slow machine, be too short.
pub async fn eventually<T, F, Fut>(what: &str, within: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = std::time::Instant::now() + within;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "waited {within:?} in vain: {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits until the server at `base` answers `/healthz` with 200 (a server started as a process).
pub async fn wait_healthy(base: &str) {
    let url = format!("{base}/healthz");
    eventually(
        "the server answers /healthz",
        Duration::from_secs(10),
        || {
            let url = url.clone();
            async move {
                reqwest::get(url)
                    .await
                    .is_ok_and(|r| r.status() == 200)
                    .then_some(())
            }
        },
    )
    .await
}

/// Decodes a JWT's header.
pub fn jwt_header(jwt: &str) -> Value {
    let header = jwt.split('.').next().unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).unwrap()).unwrap()
}

/// Decodes a JWT's claims without verifying (the verifying tests are in keys.rs).
pub fn claims(jwt: &str) -> Value {
    let payload = jwt.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}
