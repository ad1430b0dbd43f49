//! The r2d2 pool over either backend, and the embedded migrations.

use crate::store::{advisory, one_line};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use diesel::connection::{AnsiTransactionManager, CacheSize, SimpleConnection, TransactionManager};
use diesel::pg::PgConnection;
use diesel::r2d2::{self, ManageConnection};
use diesel::sqlite::SqliteConnection;
use diesel::Connection;
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};

const PG_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/postgres");
const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/sqlite");

/// One connection type for both backends: queries written once run on either.
#[derive(diesel::MultiConnection)]
pub enum AnyConnection {
    Postgresql(PgConnection),
    Sqlite(SqliteConnection),
}

pub type Pool = r2d2::Pool<Manager>;
pub type PooledConn = r2d2::PooledConnection<Manager>;

/// A connection used within this long is not checked with a round trip at checkout; see
/// [`Manager::is_valid`]. HikariCP's default (`aliveBypassWindowMs`).
const RECENTLY_USED: Duration = Duration::from_millis(500);

/// A pooled connection: the connection and when it last went back to the pool.
pub struct Conn {
    conn: AnyConnection,
    returned_at: Instant,
}

impl std::ops::Deref for Conn {
    type Target = AnyConnection;
    fn deref(&self) -> &AnyConnection {
        &self.conn
    }
}

impl std::ops::DerefMut for Conn {
    fn deref_mut(&mut self) -> &mut AnyConnection {
        &mut self.conn
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Postgres,
    Sqlite,
}

impl Backend {
    /// Picks the backend from the URL scheme and returns the address diesel expects.
    pub fn parse(url: &str) -> anyhow::Result<(Self, String)> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok((Self::Postgres, url.to_owned()))
        } else if let Some(path) = url.strip_prefix("sqlite://") {
            if path.is_empty() {
                anyhow::bail!(
                    "database.url: sqlite:// needs a file path, e.g. sqlite://data/tessera.db"
                );
            }
            Ok((Self::Sqlite, path.to_owned()))
        } else {
            anyhow::bail!("database.url must start with postgres:// or sqlite://")
        }
    }
}

/// What stands between Tessera and PostgreSQL (`database.pooler`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Pooler {
    /// Nothing, or a pooler that gives each client a server connection of its own for as long
    /// as it stays connected (PgBouncer's `pool_mode = session`). Statements are prepared once
    /// per connection and reused.
    #[default]
    None,
    /// A pooler that lends a server connection for one transaction at a time (PgBouncer's
    /// `pool_mode = transaction`). Nothing is prepared under a name: a named statement would
    /// outlive the transaction that made it and meet, or miss, another client's. Each statement
    /// is sent with its parameters in one message and planned where it runs.
    Transaction,
}

/// What the pool reports about its connections, to whoever watches (the metrics).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConnectionEvent {
    /// A connection was found dead at checkout or broken after use, and will be replaced.
    Lost,
    /// A new connection reached another server than the one before it: the database failed
    /// over (or the pooler moved). `to` is the server's `address:port`.
    ServerChanged { from: String, to: String },
}

/// Receives [`ConnectionEvent`]s; called on the pool's threads.
pub type ConnectionObserver = Arc<dyn Fn(ConnectionEvent) + Send + Sync>;

/// How to open the pool, beside the database's URL.
#[derive(Clone)]
pub struct Options {
    /// Connections in the pool; 0 picks a default for the backend.
    pub pool_size: u32,
    /// How long a checkout waits for a connection.
    pub connect_timeout: Duration,
    pub pooler: Pooler,
    pub observer: Option<ConnectionObserver>,
}

impl Options {
    pub fn new(pool_size: u32, connect_timeout: Duration, pooler: Pooler) -> Self {
        Self {
            pool_size,
            connect_timeout,
            pooler,
            observer: None,
        }
    }
}

/// Opens connections of the configured backend only: the derived `establish` would try every
/// backend in turn, and SQLite accepts almost any string as a file name.
pub struct Manager {
    backend: Backend,
    address: String,
    pooler: Pooler,
    observer: Option<ConnectionObserver>,
    /// The server the last new PostgreSQL connection reached.
    server: Mutex<Option<String>>,
}

impl std::fmt::Debug for Manager {
    /// The address may hold a password: only the backend and the pooler are shown.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Manager")
            .field("backend", &self.backend)
            .field("pooler", &self.pooler)
            .finish_non_exhaustive()
    }
}

#[derive(diesel::QueryableByName)]
struct Server {
    #[diesel(sql_type = diesel::sql_types::Text)]
    server: String,
}

impl Manager {
    fn new(backend: Backend, address: String, options: &Options) -> Self {
        Self {
            backend,
            address,
            pooler: options.pooler,
            observer: options.observer.clone(),
            server: Mutex::new(None),
        }
    }

    fn event(&self, event: ConnectionEvent) {
        if let Some(observe) = &self.observer {
            observe(event);
        }
    }

    /// Notes which server `conn` reached, and reports a change from the last one. A URL with
    /// several hosts (`target_session_attrs=read-write`) reaches whichever is the primary.
    fn note_server(&self, conn: &mut PgConnection) {
        use diesel::RunQueryDsl;
        let Ok(now) = diesel::sql_query(
            "SELECT coalesce(host(inet_server_addr()) || ':' || inet_server_port(), 'local') AS server",
        )
        .get_result::<Server>(conn)
        .map(|s| s.server) else {
            return;
        };
        let before = self
            .server
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .replace(now.clone());
        if let Some(from) = before.filter(|b| *b != now) {
            tracing::warn!(%from, to = %now, "new database connections reach another server");
            self.event(ConnectionEvent::ServerChanged { from, to: now });
        }
    }

    fn check(conn: &mut Conn) -> Result<(), r2d2::Error> {
        if conn.returned_at.elapsed() < RECENTLY_USED {
            return match &mut conn.conn {
                // Reads whatever the server sent since: nothing, normally. A server shutting
                // down sends a FATAL message, which libpq takes as a notice, then closes the
                // socket; the second read finds the end of the stream and fails.
                AnyConnection::Postgresql(pg) => {
                    for _ in 0..2 {
                        if let Some(Err(e)) = pg.notifications_iter().next() {
                            return Err(r2d2::Error::QueryError(e));
                        }
                    }
                    Ok(())
                }
                AnyConnection::Sqlite(_) => Ok(()),
            };
        }
        conn.conn
            .batch_execute("SELECT 1")
            .map_err(r2d2::Error::QueryError)
    }

    fn open(&self) -> Result<AnyConnection, r2d2::Error> {
        match self.backend {
            Backend::Postgres => {
                let mut conn =
                    PgConnection::establish(&self.address).map_err(r2d2::Error::ConnectionError)?;
                if self.pooler == Pooler::Transaction {
                    conn.set_prepared_statement_cache_size(CacheSize::Disabled);
                }
                self.note_server(&mut conn);
                Ok(AnyConnection::Postgresql(conn))
            }
            Backend::Sqlite => {
                let mut conn = SqliteConnection::establish(&self.address)
                    .map_err(r2d2::Error::ConnectionError)?;
                // busy_timeout first: every later statement then waits for a lock instead of
                // failing. WAL lets readers run beside the writer.
                conn.batch_execute("PRAGMA busy_timeout = 10000")
                    .map_err(r2d2::Error::QueryError)?;
                // Switching to WAL while another process opens the same new file can fail
                // with "database is locked" at once: SQLite skips the busy handler where
                // waiting could deadlock. So it is retried here, within the same 10 s.
                let started = Instant::now();
                loop {
                    match conn.batch_execute(
                        "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; \
                         PRAGMA foreign_keys = ON;",
                    ) {
                        Ok(()) => break,
                        Err(e)
                            if e.to_string().contains("database is locked")
                                && started.elapsed() < Duration::from_secs(10) =>
                        {
                            std::thread::sleep(Duration::from_millis(10));
                        }
                        Err(e) => return Err(r2d2::Error::QueryError(e)),
                    }
                }
                Ok(AnyConnection::Sqlite(conn))
            }
        }
    }
}

impl ManageConnection for Manager {
    type Connection = Conn;
    type Error = r2d2::Error;

    fn connect(&self) -> Result<Conn, r2d2::Error> {
        Ok(Conn {
            conn: self.open()?,
            returned_at: Instant::now(),
        })
    }

    /// Runs at every checkout, so that a connection that died with the database (a restart, a
    /// failover) is replaced and the server recovers by itself. A connection back in the pool
    /// for less than [`RECENTLY_USED`] is only checked for a closed socket, which costs a
    /// non-blocking read instead of a round trip: under load, that is every checkout. Older
    /// ones run `SELECT 1`, which also finds a silently dropped network path.
    fn is_valid(&self, conn: &mut Conn) -> Result<(), r2d2::Error> {
        let alive = Self::check(conn);
        if alive.is_err() {
            self.event(ConnectionEvent::Lost);
        }
        alive
    }

    fn has_broken(&self, conn: &mut Conn) -> bool {
        conn.returned_at = Instant::now();
        let broken = std::thread::panicking()
            || <<AnyConnection as Connection>::TransactionManager as TransactionManager<
                AnyConnection,
            >>::is_broken_transaction_manager(&mut conn.conn);
        if broken {
            self.event(ConnectionEvent::Lost);
        }
        broken
    }
}

/// What opening a pool does about the schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Schema {
    /// Apply pending migrations (the server at start-up).
    Migrate,
    /// Refuse to work on a schema with pending migrations (the admin CLI: only `migrate`
    /// changes the schema under running servers).
    RequireCurrent,
}

/// Opens the pool and applies pending migrations. Fails with one line naming the problem.
pub fn connect_and_migrate(url: &str, options: &Options) -> anyhow::Result<(Pool, Backend)> {
    open(url, options, Schema::Migrate)
}

/// Opens the pool; `schema` says what to do about pending migrations.
pub fn open(url: &str, options: &Options, schema: Schema) -> anyhow::Result<(Pool, Backend)> {
    let (backend, address) = Backend::parse(url)?;
    create_sqlite_dir(backend, &address)?;
    let size = pool_size(backend, options.pool_size);
    let manager = Manager::new(backend, address, options);
    // Fail fast with the real reason rather than r2d2's generic time-out.
    let mut first = manager
        .open()
        .map_err(|e| anyhow::anyhow!("database unreachable: {}", one_line(&e.to_string())))?;
    match schema {
        Schema::Migrate => {
            let applied = migrate(&mut first)?;
            if !applied.is_empty() {
                tracing::info!(migrations = ?applied, "applied database migrations");
            }
            if let AnyConnection::Postgresql(pg) = &mut first {
                crate::store::rotation::install(pg)
                    .map_err(|e| anyhow::anyhow!("cannot create the rotation's function: {e}"))?;
            }
        }
        Schema::RequireCurrent => {
            let pending = pending(&mut first)?;
            if !pending.is_empty() {
                anyhow::bail!(
                    "the database schema is not up to date ({} migrations pending): run `tessera-admin migrate`",
                    pending.len()
                );
            }
        }
    }
    drop(first);
    let pool = r2d2::Pool::builder()
        .max_size(size)
        .min_idle(Some(1))
        .connection_timeout(options.connect_timeout)
        // See `Manager::is_valid`.
        .test_on_check_out(true)
        .build(manager)
        .map_err(|e| anyhow::anyhow!("database unreachable: {}", one_line(&e.to_string())))?;
    Ok((pool, backend))
}

/// The pool's size for `configured` (`database.pool_size`): 0 picks the backend's default.
pub fn pool_size(backend: Backend, configured: u32) -> u32 {
    match (configured, backend) {
        (0, Backend::Postgres) => 10,
        (0, Backend::Sqlite) => 4,
        (n, _) => n,
    }
}

/// How many connections a PostgreSQL server takes, and how many of them it keeps for
/// superusers; `None` on SQLite.
pub fn connection_limits(conn: &mut AnyConnection) -> diesel::QueryResult<Option<(i64, i64)>> {
    #[derive(diesel::QueryableByName)]
    struct Limits {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        max: i64,
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        reserved: i64,
    }
    use diesel::RunQueryDsl;
    let AnyConnection::Postgresql(pg) = conn else {
        return Ok(None);
    };
    let l: Limits = diesel::sql_query(
        "SELECT current_setting('max_connections')::bigint AS max, \
                current_setting('superuser_reserved_connections')::bigint AS reserved",
    )
    .get_result(pg)?;
    Ok(Some((l.max, l.reserved)))
}

/// Versions of the migrations not yet applied.
pub fn pending(conn: &mut AnyConnection) -> anyhow::Result<Vec<String>> {
    fn versions<DB: diesel::backend::Backend>(
        v: Vec<Box<dyn diesel::migration::Migration<DB>>>,
    ) -> Vec<String> {
        v.iter().map(|m| m.name().version().to_string()).collect()
    }
    let result = match conn {
        AnyConnection::Postgresql(c) => c.pending_migrations(PG_MIGRATIONS).map(versions),
        AnyConnection::Sqlite(c) => c.pending_migrations(SQLITE_MIGRATIONS).map(versions),
    };
    result.map_err(|e| anyhow::anyhow!("cannot read the database's migrations: {e}"))
}

/// Connects to `url` once and applies pending migrations; returns the versions applied.
pub fn migrate_url(url: &str, pooler: Pooler) -> anyhow::Result<Vec<String>> {
    let (backend, address) = Backend::parse(url)?;
    create_sqlite_dir(backend, &address)?;
    let options = Options::new(1, Duration::from_secs(5), pooler);
    let mut conn = Manager::new(backend, address, &options)
        .open()
        .map_err(|e| anyhow::anyhow!("database unreachable: {}", one_line(&e.to_string())))?;
    migrate(&mut conn)
}

/// Applies pending migrations; returns the versions applied. On PostgreSQL they run in one
/// transaction that first takes an advisory lock: two instances starting at once run them
/// once, and a pooler that lends connections per transaction keeps the lock and the
/// migrations on one server connection. A failed migration leaves none of them applied.
pub fn migrate(conn: &mut AnyConnection) -> anyhow::Result<Vec<String>> {
    let versions = |v: Vec<diesel::migration::MigrationVersion<'_>>| {
        v.iter().map(ToString::to_string).collect::<Vec<_>>()
    };
    let result = match conn {
        AnyConnection::Postgresql(c) => {
            // READ COMMITTED whatever the server's default: after waiting for the lock, the
            // migrations must see what the instance that held it applied.
            return c
                .build_transaction()
                .read_committed()
                .run::<_, anyhow::Error, _>(|c| {
                    advisory::lock_pg(c, advisory::MIGRATIONS)
                        .context("cannot lock the database for migrations")?;
                    c.run_pending_migrations(PG_MIGRATIONS)
                        .map(versions)
                        .map_err(|e| anyhow::anyhow!("database migration failed: {e}"))
                });
        }
        // BEGIN IMMEDIATE takes the write lock first: a second instance starting at the same
        // moment waits, then finds nothing pending (each migration becomes a savepoint).
        AnyConnection::Sqlite(c) => {
            AnsiTransactionManager::begin_transaction_sql(&mut *c, "BEGIN IMMEDIATE")
                .context("cannot lock the database for migrations")?;
            match c.run_pending_migrations(SQLITE_MIGRATIONS).map(versions) {
                Ok(v) => {
                    AnsiTransactionManager::commit_transaction(&mut *c)
                        .context("cannot commit the migrations")?;
                    Ok(v)
                }
                Err(e) => {
                    let _ = AnsiTransactionManager::rollback_transaction(&mut *c);
                    Err(e)
                }
            }
        }
    };
    result.map_err(|e| anyhow::anyhow!("database migration failed: {e}"))
}

/// Creates a SQLite database's folder (0700) and file (0600) when they do not exist yet, and
/// makes an existing database file that others may read 0600, so that other local users
/// cannot read password hashes. SQLite gives its WAL and shared-memory files the database
/// file's mode.
fn create_sqlite_dir(backend: Backend, address: &str) -> anyhow::Result<()> {
    if backend != Backend::Sqlite || address == ":memory:" || address.starts_with("file:") {
        return Ok(());
    }
    let path = Path::new(address);
    for suffix in ["", "-wal", "-shm"] {
        let file = format!("{address}{suffix}");
        if make_private(Path::new(&file)).with_context(|| format!("cannot make {file} private"))? {
            tracing::warn!(file = %file, "the database file was readable by other users; it is now 0600");
        }
    }
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        private_dir(dir)
            .with_context(|| format!("cannot create the database directory {}", dir.display()))?;
    }
    match private_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => {
            Err(e).with_context(|| format!("cannot create the database file {}", path.display()))
        }
        _ => Ok(()),
    }
}

#[cfg(unix)]
fn private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

#[cfg(unix)]
fn private_file(path: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
}

/// Takes group and others' access away from an existing file; whether it had any.
#[cfg(unix)]
fn make_private(path: &Path) -> std::io::Result<bool> {
    use std::os::unix::fs::PermissionsExt;
    let mode = match std::fs::metadata(path) {
        Ok(m) => m.permissions().mode() & 0o777,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(e),
    };
    if mode & 0o077 == 0 {
        return Ok(false);
    }
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode & 0o700))?;
    Ok(true)
}

#[cfg(not(unix))]
fn make_private(_: &Path) -> std::io::Result<bool> {
    Ok(false)
}

#[cfg(not(unix))]
fn private_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)
}

#[cfg(not(unix))]
fn private_file(path: &Path) -> std::io::Result<std::fs::File> {
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
}
