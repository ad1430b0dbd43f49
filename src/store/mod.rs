//! Storage: one code path over PostgreSQL and SQLite, and all the SQL. Models are plain rows
//! (one file per table under [`models`]); queries are associated functions over a connection
//! that take "now" as a parameter and know no rule but the one their SQL states. The hot
//! path's single statement is in [`rotation`].

pub mod models;
pub mod pool;
pub mod prune;
pub mod rotation;
pub mod schema;

/// PostgreSQL advisory lock ids, one per thing that must not run twice at once.
pub mod advisory {
    /// Held while migrations run (session-level).
    pub const MIGRATIONS: i64 = 7365726101;
    /// Held by a transaction that creates or retires signing keys.
    pub const SIGNING_KEYS: i64 = 7365726102;
    /// Held by each pruning batch's transaction: one instance prunes at a time.
    pub const PRUNING: i64 = 7365726103;
}

/// One line of text: error messages from libraries may span several.
pub fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

pub use pool::{connect, migrate_url, open, AnyConnection, Backend, Pool, PooledConn, Schema};

use diesel::connection::{AnsiTransactionManager, TransactionManager};
use diesel::Connection;

/// Runs `f` in a write transaction. On SQLite it is `BEGIN IMMEDIATE`, which takes the write
/// lock up front: a deferred transaction that reads and then writes fails with
/// `database is locked` when another writer got in between, instead of waiting.
pub fn write_tx<T, E, F>(conn: &mut AnyConnection, f: F) -> Result<T, E>
where
    F: FnOnce(&mut AnyConnection) -> Result<T, E>,
    E: From<diesel::result::Error>,
{
    match conn {
        AnyConnection::Sqlite(c) => {
            AnsiTransactionManager::begin_transaction_sql(c, "BEGIN IMMEDIATE")?
        }
        // Explicit, so that a server default of SERIALIZABLE cannot turn concurrent refreshes
        // into serialization failures: the conditional UPDATEs are correct under READ COMMITTED.
        AnyConnection::Postgresql(c) => AnsiTransactionManager::begin_transaction_sql(
            c,
            "BEGIN ISOLATION LEVEL READ COMMITTED",
        )?,
    }
    match f(conn) {
        Ok(value) => {
            <AnyConnection as Connection>::TransactionManager::commit_transaction(conn)?;
            Ok(value)
        }
        Err(e) => {
            <AnyConnection as Connection>::TransactionManager::rollback_transaction(conn)?;
            Err(e)
        }
    }
}
