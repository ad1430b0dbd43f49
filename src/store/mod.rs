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
    /// Held by the transaction that applies migrations.
    pub const MIGRATIONS: i64 = 7365726101;
    /// Held by a transaction that creates or retires signing keys.
    pub const SIGNING_KEYS: i64 = 7365726102;
    /// Held by each pruning batch's transaction: one instance prunes at a time.
    pub const PRUNING: i64 = 7365726103;
    /// Held by the transaction that creates the rotation's function.
    pub const ROTATION_FUNCTION: i64 = 7365726104;

    /// Takes the transaction-level advisory lock `id` (PostgreSQL); SQLite's one writer at a
    /// time (`BEGIN IMMEDIATE`) already serialises.
    /// Every advisory lock is transaction-level: a session-level one would stay with a server
    /// connection that a transaction pooler hands to someone else.
    pub fn lock(conn: &mut super::AnyConnection, id: i64) -> diesel::QueryResult<()> {
        if let super::AnyConnection::Postgresql(pg) = conn {
            lock_pg(pg, id)?;
        }
        Ok(())
    }

    /// [`lock`] on a PostgreSQL connection.
    pub(crate) fn lock_pg(pg: &mut diesel::PgConnection, id: i64) -> diesel::QueryResult<()> {
        use diesel::RunQueryDsl;
        diesel::sql_query("SELECT pg_advisory_xact_lock($1)")
            .bind::<diesel::sql_types::BigInt, _>(id)
            .execute(pg)
            .map(drop)
    }
}

/// One line of text: error messages from libraries may span several.
pub fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

pub use pool::{
    connect_and_migrate, connection_limits, migrate_url, open, pool_size, AnyConnection, Backend,
    ConnectionEvent, ConnectionObserver, Options, Pool, PooledConn, Pooler, Schema,
};

/// Runs `$body` with `$c` bound to the backend's own connection, for the statements diesel
/// builds per backend (upserts, row locks). With the pool and [`write_tx`], the only places
/// that tell the backends apart.
macro_rules! per_backend {
    ($conn:expr, |$c:ident| $body:expr) => {
        match $conn {
            $crate::store::AnyConnection::Postgresql($c) => $body,
            $crate::store::AnyConnection::Sqlite($c) => $body,
        }
    };
}
pub(crate) use per_backend;

/// Locks one row of `$table` (by primary key) until the end of the write transaction, so that
/// whatever else locks it waits: PostgreSQL `SELECT … FOR UPDATE`. On SQLite the transaction's
/// `BEGIN IMMEDIATE` already holds the one write lock, and nothing more is needed. `FOR UPDATE`
/// (not `FOR NO KEY UPDATE`) also waits for the key-share locks that inserting a referencing
/// row takes: locking a client waits for a family being started for it.
macro_rules! lock_row {
    ($conn:expr, $table:ident, $key:expr) => {{
        use diesel::prelude::*;
        match $conn {
            $crate::store::AnyConnection::Postgresql(pg) => $crate::store::schema::$table::table
                .find($key)
                .for_update()
                .execute(pg)
                .map(|_| ()),
            $crate::store::AnyConnection::Sqlite(_) => Ok(()),
        }
    }};
}
pub(crate) use lock_row;

/// Whether a database error is worth a retry: contention, a lost connection, a primary that
/// turned standby. By diesel's kinds where it maps the SQLSTATE; deadlocks (40P01), an
/// administrator's termination (57P01) and SQLite's `SQLITE_BUSY` reach diesel as `Unknown`
/// (it exposes no SQLSTATE), so their messages are read instead, here only.
///
/// A server that dies during `COMMIT` fails the commit and then the rollback diesel tries
/// after it: that comes back as `RollbackErrorOnCommit`, transient when either half is. A
/// connection whose transaction state diesel lost (`BrokenTransactionManager`) is dropped by
/// the pool on its return; a retry gets another.
pub fn is_transient(e: &diesel::result::Error) -> bool {
    use diesel::result::{DatabaseErrorKind, Error};
    match e {
        Error::RollbackErrorOnCommit {
            rollback_error,
            commit_error,
        } => is_transient(commit_error) || is_transient(rollback_error),
        Error::BrokenTransactionManager => true,
        Error::DatabaseError(
            DatabaseErrorKind::SerializationFailure
            | DatabaseErrorKind::ClosedConnection
            | DatabaseErrorKind::UnableToSendCommand
            | DatabaseErrorKind::ReadOnlyTransaction,
            _,
        ) => true,
        Error::DatabaseError(DatabaseErrorKind::Unknown, info) => {
            let m = info.message();
            // "connection" also covers "terminating connection due to administrator command".
            m.contains("database is locked")
                || m.contains("deadlock detected")
                || m.contains("connection")
        }
        _ => false,
    }
}

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
            match <AnyConnection as Connection>::TransactionManager::rollback_transaction(conn) {
                // A connection lost inside the transaction leaves diesel's transaction manager
                // broken, and the rollback says only that: the error that lost it is the one to
                // answer with (a retry, not a bug). The pool drops the connection on its return,
                // and the server ends the transaction it had. As diesel's own `transaction` does.
                Ok(()) | Err(diesel::result::Error::BrokenTransactionManager) => Err(e),
                Err(rollback) => Err(rollback.into()),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::is_transient;
    use diesel::result::{DatabaseErrorKind, Error};

    fn database(kind: DatabaseErrorKind, message: &str) -> Error {
        Error::DatabaseError(kind, Box::new(message.to_owned()))
    }

    #[test]
    fn lost_connections_contention_and_standbys_are_transient() {
        for kind in [
            DatabaseErrorKind::ClosedConnection,
            DatabaseErrorKind::UnableToSendCommand,
            DatabaseErrorKind::SerializationFailure,
            DatabaseErrorKind::ReadOnlyTransaction,
        ] {
            assert!(is_transient(&database(kind, "")));
        }
        for message in [
            "deadlock detected",
            "database is locked",
            "terminating connection due to administrator command",
        ] {
            assert!(is_transient(&database(DatabaseErrorKind::Unknown, message)));
        }
    }

    #[test]
    fn a_commit_lost_with_its_server_is_transient() {
        let lost = Error::RollbackErrorOnCommit {
            rollback_error: Box::new(database(DatabaseErrorKind::UnableToSendCommand, "")),
            commit_error: Box::new(database(
                DatabaseErrorKind::ClosedConnection,
                "server closed the connection unexpectedly",
            )),
        };
        assert!(is_transient(&lost));
        assert!(is_transient(&Error::BrokenTransactionManager));
    }

    #[test]
    fn bugs_are_not_transient() {
        assert!(!is_transient(&database(
            DatabaseErrorKind::UniqueViolation,
            "duplicate key"
        )));
        assert!(!is_transient(&database(
            DatabaseErrorKind::Unknown,
            "syntax error at or near"
        )));
        assert!(!is_transient(&Error::NotFound));
        let both_bugs = Error::RollbackErrorOnCommit {
            rollback_error: Box::new(database(DatabaseErrorKind::Unknown, "syntax error")),
            commit_error: Box::new(database(DatabaseErrorKind::CheckViolation, "check")),
        };
        assert!(!is_transient(&both_bugs));
    }
}
