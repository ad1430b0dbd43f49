//! Security events: stored in `audit_events` for `tessera-admin audit list`, and written to the
//! log (target `audit`). Events carry ids, addresses and reasons, never a secret.

use std::cell::RefCell;

use crate::domain::crypto::random_id;
use crate::store::models::AuditEvent;
use crate::store::AnyConnection;
use diesel::Connection;

/// An event to record.
#[derive(Debug, Default, Clone)]
pub struct Event<'a> {
    pub kind: &'a str,
    pub actor: Option<&'a str>,
    pub subject: Option<&'a str>,
    pub client_ip: Option<&'a str>,
    pub detail: Option<&'a str>,
}

impl Event<'_> {
    /// Stores and logs the event. A failure to store is logged, never passed on: auditing must
    /// not turn a refused login into a server error.
    pub fn record(&self, conn: &mut AnyConnection, now: i64) {
        let request_id = request_id();
        tracing::info!(
            target: "audit",
            kind = self.kind,
            actor = self.actor,
            subject = self.subject,
            client_ip = self.client_ip,
            detail = self.detail,
            request_id,
            "audit event"
        );
        let row = AuditEvent {
            id: random_id(),
            occurred_at: now,
            kind: self.kind.to_owned(),
            actor: self.actor.map(str::to_owned),
            subject: self.subject.map(str::to_owned),
            client_ip: self.client_ip.map(str::to_owned),
            detail: self.detail.map(|d| d.chars().take(500).collect()),
            request_id,
        };
        // In a savepoint when the caller is in a transaction: on PostgreSQL a failed INSERT
        // would abort it, and its COMMIT would quietly roll back what the event records.
        if let Err(e) = conn.transaction(|c| row.insert(c)) {
            tracing::error!(error = %e, kind = self.kind, "could not store an audit event");
        }
    }
}

thread_local! {
    static REQUEST_ID: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Runs `f` with `id` as the request id that the events it records carry (the HTTP layer's
/// request id; the thread is one of the blocking pool's, serving one request at a time).
pub fn with_request_id<T>(id: Option<String>, f: impl FnOnce() -> T) -> T {
    struct Restore(Option<String>);
    impl Drop for Restore {
        fn drop(&mut self) {
            REQUEST_ID.with(|r| *r.borrow_mut() = self.0.take());
        }
    }
    let _restore = Restore(REQUEST_ID.with(|r| r.replace(id)));
    f()
}

fn request_id() -> Option<String> {
    REQUEST_ID.with(|r| r.borrow().clone())
}

/// The actor for changes made with the admin CLI: `admin:<operating-system user>`.
pub fn admin_actor() -> String {
    let who = std::env::var("SUDO_USER")
        .or_else(|_| std::env::var("USER"))
        .unwrap_or_else(|_| "unknown".into());
    format!("admin:{who}")
}
