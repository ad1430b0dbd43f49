//! Security events: stored in `audit_events` for `tessera-admin audit list`, and written to the
//! log (target `audit`). Events carry ids, addresses and reasons, never a secret.

use crate::domain::crypto::random_id;
use crate::domain::request::RequestIds;
use crate::store::models::AuditEvent;
use crate::store::AnyConnection;
use crate::value::UnixMs;
use diesel::Connection;

/// What an audit event records. [`AuditKind::as_str`] is the name stored in `audit_events.kind`
/// and shown by `tessera-admin audit list`: the stored data does not depend on the Rust names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AuditKind {
    /// A password was accepted (the password grant or the login page).
    LoginSuccess,
    /// A password was refused.
    LoginFailure,
    /// A sign-in was refused unchecked: too many recent failures.
    LoginThrottled,
    /// A rotated refresh token came back: its family was revoked.
    RefreshReuseDetected,
    /// A just-rotated token retried within the grace window by the same app instance, answered with its successor.
    RefreshGraceRetry,
    /// An authorization code was presented again: its family was revoked.
    CodeReplayed,
    /// Families revoked: by a client's `/revoke`, the CLI, a password change or a disabled user.
    FamilyRevoked,
    ClientRegistered,
    ClientUpdated,
    ClientSecretRotated,
    ClientDisabled,
    ClientEnabled,
    ClientDeleted,
    UserCreated,
    UserUpdated,
    UserPasswordChanged,
    UserDisabled,
    UserEnabled,
    /// Throttling cleared for a user (and perhaps an address) by an administrator.
    UserUnlocked,
    /// A second factor set up (its kind in the detail).
    UserFactorAdded,
    UserFactorRemoved,
    /// A new set of recovery codes, replacing the old.
    UserRecoveryCodesIssued,
    ConsentRevoked,
    KeyCreated,
    KeyRetired,
    ResourceAdded,
    ResourceRemoved,
}

impl AuditKind {
    /// Every kind, for listings and tests.
    pub const ALL: [AuditKind; 27] = [
        AuditKind::LoginSuccess,
        AuditKind::LoginFailure,
        AuditKind::LoginThrottled,
        AuditKind::RefreshReuseDetected,
        AuditKind::RefreshGraceRetry,
        AuditKind::CodeReplayed,
        AuditKind::FamilyRevoked,
        AuditKind::ClientRegistered,
        AuditKind::ClientUpdated,
        AuditKind::ClientSecretRotated,
        AuditKind::ClientDisabled,
        AuditKind::ClientEnabled,
        AuditKind::ClientDeleted,
        AuditKind::UserCreated,
        AuditKind::UserUpdated,
        AuditKind::UserPasswordChanged,
        AuditKind::UserDisabled,
        AuditKind::UserEnabled,
        AuditKind::UserUnlocked,
        AuditKind::UserFactorAdded,
        AuditKind::UserFactorRemoved,
        AuditKind::UserRecoveryCodesIssued,
        AuditKind::ConsentRevoked,
        AuditKind::KeyCreated,
        AuditKind::KeyRetired,
        AuditKind::ResourceAdded,
        AuditKind::ResourceRemoved,
    ];

    /// The stored name: `family.revoked`.
    pub fn as_str(self) -> &'static str {
        match self {
            AuditKind::LoginSuccess => "login.success",
            AuditKind::LoginFailure => "login.failure",
            AuditKind::LoginThrottled => "login.throttled",
            AuditKind::RefreshReuseDetected => "refresh.reuse_detected",
            AuditKind::RefreshGraceRetry => "refresh.grace_retry",
            AuditKind::CodeReplayed => "code.replayed",
            AuditKind::FamilyRevoked => "family.revoked",
            AuditKind::ClientRegistered => "client.registered",
            AuditKind::ClientUpdated => "client.updated",
            AuditKind::ClientSecretRotated => "client.secret_rotated",
            AuditKind::ClientDisabled => "client.disabled",
            AuditKind::ClientEnabled => "client.enabled",
            AuditKind::ClientDeleted => "client.deleted",
            AuditKind::UserCreated => "user.created",
            AuditKind::UserUpdated => "user.updated",
            AuditKind::UserPasswordChanged => "user.password_changed",
            AuditKind::UserDisabled => "user.disabled",
            AuditKind::UserEnabled => "user.enabled",
            AuditKind::UserUnlocked => "user.unlocked",
            AuditKind::UserFactorAdded => "user.factor_added",
            AuditKind::UserFactorRemoved => "user.factor_removed",
            AuditKind::UserRecoveryCodesIssued => "user.recovery_codes_issued",
            AuditKind::ConsentRevoked => "consent.revoked",
            AuditKind::KeyCreated => "key.created",
            AuditKind::KeyRetired => "key.retired",
            AuditKind::ResourceAdded => "resource.added",
            AuditKind::ResourceRemoved => "resource.removed",
        }
    }
}

impl std::fmt::Display for AuditKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An event to record.
#[derive(Debug, Clone)]
pub struct Event<'a> {
    pub kind: AuditKind,
    pub actor: Option<&'a str>,
    pub subject: Option<&'a str>,
    pub client_ip: Option<&'a str>,
    pub detail: Option<&'a str>,
    /// The ids of the request that caused it (`RequestMeta::request`); `None` from the CLI
    /// and background work.
    pub request: Option<&'a RequestIds>,
}

impl Event<'_> {
    /// Stores and logs the event. A failure to store is logged, never passed on: auditing must
    /// not turn a refused login into a server error.
    pub fn record(&self, conn: &mut AnyConnection, now: UnixMs) {
        let request_id = self.request.map(|r| r.own.as_str());
        let upstream_request_id = self.request.and_then(|r| r.upstream.as_deref());
        tracing::info!(
            target: "audit",
            kind = self.kind.as_str(),
            actor = self.actor,
            subject = self.subject,
            client_ip = self.client_ip,
            detail = self.detail,
            request_id,
            upstream_request_id,
            "audit event"
        );
        let row = AuditEvent {
            id: random_id(),
            occurred_at: now,
            kind: self.kind.as_str().to_owned(),
            actor: self.actor.map(str::to_owned),
            subject: self.subject.map(str::to_owned),
            client_ip: self.client_ip.map(str::to_owned),
            detail: self.detail.map(|d| d.chars().take(500).collect()),
            request_id: request_id.map(str::to_owned),
            upstream_request_id: upstream_request_id.map(str::to_owned),
        };
        // In a savepoint when the caller is in a transaction: on PostgreSQL a failed INSERT
        // would abort it, and its COMMIT would quietly roll back what the event records.
        if let Err(e) = conn.transaction(|c| row.insert(c)) {
            tracing::error!(error = %e, kind = self.kind.as_str(), "could not store an audit event");
        }
    }
}

/// The actor for changes made with the admin CLI: `admin:<operating-system user>`.
pub fn admin_actor() -> String {
    let who = std::env::var("SUDO_USER")
        .or_else(|_| std::env::var("USER"))
        .unwrap_or_else(|_| "unknown".into());
    format!("admin:{who}")
}

#[cfg(test)]
mod tests {
    use super::AuditKind;

    #[test]
    fn every_kind_has_its_own_dotted_name() {
        let names: std::collections::HashSet<&str> =
            AuditKind::ALL.iter().map(|k| k.as_str()).collect();
        assert_eq!(names.len(), AuditKind::ALL.len());
        assert!(names.iter().all(|n| n.split_once('.').is_some()));
    }
}
