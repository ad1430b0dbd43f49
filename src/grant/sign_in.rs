//! Username and password sign-in, shared by the password grant and the login page: throttled
//! per username and per client IP, the same cost for unknown users, and no connection held
//! while the password is hashed.

use std::time::{Duration, Instant};

use crate::domain::audit::AuditKind;
use crate::domain::audit::Event;
use crate::domain::crypto::random_id;
use crate::domain::password::PasswordHasher;
use crate::domain::request::RequestMeta;
use crate::domain::throttle::Policy;
use crate::domain::throttle::{Admission, Outcome};
use crate::domain::user::Username;
use crate::domain::Clock;
use crate::grant::{Core, OAuthError};
use crate::store::models::User;
use crate::store::{write_tx, AnyConnection};

/// Password sign-in, as the password grant and the login page both use it.
#[derive(Clone)]
pub struct SignIn {
    pub(crate) core: Core,
    pub(crate) hasher: PasswordHasher,
    pub(crate) throttle: Policy,
}

impl SignIn {
    /// Checks a username and password, with throttling (per username and per IP) and a dummy
    /// hash for unknown users. Shared by the password grant and the login page.
    pub fn sign_in(
        &self,
        username: &str,
        password: &str,
        origin: &RequestMeta,
        via: &str,
    ) -> Result<User, SignInError> {
        self.sign_in_then(username, password, origin, via, |_, _| Ok(()))
            .map(|(user, ())| user)
    }

    /// [`SignIn::sign_in`], then `then` in the same transaction as the records of the
    /// success (throttle counters, audit): one commit for all of it. No connection is held
    /// while the password is hashed.
    pub(crate) fn sign_in_then<T>(
        &self,
        username: &str,
        password: &str,
        origin: &RequestMeta,
        via: &str,
        then: impl FnOnce(&mut AnyConnection, &User) -> Result<T, OAuthError>,
    ) -> Result<(User, T), SignInError> {
        let ip = origin.client_ip.as_deref();
        let name = Username::parse(username).ok();
        let name = name.as_ref().map(Username::as_str);
        let events = AttemptEvents {
            via,
            origin,
            shown: username
                .chars()
                .filter(|c| !c.is_control())
                .take(64)
                .collect(),
            clock: &self.core.clock,
        };
        let attempt = random_id();
        let user = self.admit(&attempt, name, ip, |c, key| {
            let detail = format!(
                "{key} is over its limit (username {:?}); further refusals in this window \
                 are counted, not logged",
                events.shown
            );
            events.record(c, AuditKind::LoginThrottled, None, &detail);
        })?;
        // From here on the attempt holds its places; the guard gives them back on any way out
        // that does not settle them itself (an error, no hashing slot, a panic).
        let mut place = Place {
            sign_in: self,
            attempt: &attempt,
            name,
            ip,
            outcome: Outcome::Abandoned,
            settled: false,
        };
        // Verified against a dummy hash when the user does not exist: same cost either way.
        let valid = self
            .hasher
            .verify(password, user.as_ref().map(|u| u.password_hash.as_str()))
            .map_err(|_| SignInError::Busy)?;
        let now = || self.core.clock.now();
        match user {
            Some(u) if valid && u.disabled_at.is_none() => {
                let done = write_tx(&mut *self.core.conn()?, |c| -> Result<T, SignInError> {
                    self.throttle
                        .settle(c, &attempt, name, ip, Outcome::Succeeded, now())?;
                    events.audit(c, AuditKind::LoginSuccess, Some(u.id.as_str()));
                    then(c, &u).map_err(SignInError::Then)
                })?;
                place.settled = true;
                Ok((u, done))
            }
            other => {
                // Should the write fail, the guard counts the failure on another connection.
                place.outcome = Outcome::Failed;
                write_tx(&mut *self.core.conn()?, |c| -> Result<(), SignInError> {
                    self.throttle
                        .settle(c, &attempt, name, ip, Outcome::Failed, now())?;
                    let subject = other.as_ref().map(|u| u.id.as_str());
                    events.audit(c, AuditKind::LoginFailure, subject);
                    Ok(())
                })?;
                place.settled = true;
                Err(SignInError::Invalid)
            }
        }
    }

    /// The second step of a sign-in, for `user` whose password was right: `check` tests the
    /// code (in the transaction that records the outcome). Throttled per user and per address
    /// like passwords, under a key of its own for the user, which a right password does not
    /// clear: a password does not buy more guesses at the code.
    pub fn second_step(
        &self,
        user: &User,
        origin: &RequestMeta,
        check: impl FnOnce(&mut AnyConnection) -> Result<bool, OAuthError>,
    ) -> Result<(), SignInError> {
        let ip = origin.client_ip.as_deref();
        let name = format!("second step of {}", user.username);
        let events = AttemptEvents {
            via: "second step",
            origin,
            shown: user.username.chars().take(64).collect(),
            clock: &self.core.clock,
        };
        let attempt = random_id();
        self.admit(&attempt, Some(&name), ip, |c, key| {
            let detail = format!(
                "{key} is over its limit (second step of {:?})",
                events.shown
            );
            events.record(
                c,
                AuditKind::LoginThrottled,
                Some(user.id.as_str()),
                &detail,
            );
        })?;
        let mut place = Place {
            sign_in: self,
            attempt: &attempt,
            name: Some(&name),
            ip,
            outcome: Outcome::Abandoned,
            settled: false,
        };
        let now = || self.core.clock.now();
        let accepted = write_tx(&mut *self.core.conn()?, |c| -> Result<bool, SignInError> {
            let accepted = check(c).map_err(SignInError::Then)?;
            let outcome = if accepted {
                Outcome::Succeeded
            } else {
                Outcome::Failed
            };
            self.throttle
                .settle(c, &attempt, Some(&name), ip, outcome, now())?;
            let (kind, detail) = if accepted {
                (AuditKind::LoginSuccess, "second step passed")
            } else {
                (AuditKind::LoginFailure, "second step: a wrong code")
            };
            events.record(
                c,
                kind,
                Some(user.id.as_str()),
                &format!("username {:?}, {detail}", events.shown),
            );
            Ok(accepted)
        })?;
        place.settled = true;
        if accepted {
            Ok(())
        } else {
            Err(SignInError::Invalid)
        }
    }

    /// Waits until the throttle lets `attempt` check its password (see
    /// [`crate::domain::throttle`]), then reads the user. `refused` audits the first refusal
    /// under a key in a window. While it waits it only reads, and holds no connection between
    /// tries.
    fn admit(
        &self,
        attempt: &str,
        name: Option<&str>,
        ip: Option<&str>,
        refused: impl Fn(&mut AnyConnection, &str),
    ) -> Result<Option<User>, SignInError> {
        let deadline = Instant::now() + self.throttle.max_wait;
        let mut pause = Duration::from_millis(10);
        let mut waited = false;
        loop {
            let mut conn = self.core.conn()?;
            let admitted = if self
                .throttle
                .must_wait(&mut conn, name, ip, self.core.clock.now())?
            {
                None
            } else {
                // Committed even when refused: the refusal is counted, and audited once.
                write_tx(&mut conn, |c| -> Result<_, SignInError> {
                    let now = self.core.clock.now();
                    Ok(match self.throttle.admit(c, attempt, name, ip, now)? {
                        Admission::Go => Some(Ok(match name {
                            Some(name) => User::find_by_username(c, name)?,
                            None => None,
                        })),
                        Admission::Wait => None,
                        Admission::Refused { key, first } => {
                            if first {
                                refused(c, &key);
                            }
                            Some(Err(SignInError::Throttled))
                        }
                    })
                })?
            };
            drop(conn);
            match admitted {
                Some(done) => {
                    match &done {
                        Err(SignInError::Throttled) => self.core.metrics.throttled(true),
                        _ if waited => self.core.metrics.throttled(false),
                        _ => {}
                    }
                    return done;
                }
                None if Instant::now() + pause < deadline => {
                    waited = true;
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(Duration::from_millis(50));
                }
                None => {
                    self.core.metrics.throttled(true);
                    return Err(SignInError::Busy);
                }
            }
        }
    }
}

/// The places an admitted sign-in holds: given back, with the outcome known so far, when the
/// sign-in ends without settling them. Should even that fail, they expire by themselves.
struct Place<'a> {
    sign_in: &'a SignIn,
    attempt: &'a str,
    name: Option<&'a str>,
    ip: Option<&'a str>,
    outcome: Outcome,
    settled: bool,
}

impl Drop for Place<'_> {
    fn drop(&mut self) {
        if self.settled {
            return;
        }
        let s = self.sign_in;
        let settled = s.core.conn().map_err(|e| e.to_string()).and_then(|mut c| {
            write_tx(&mut c, |c| {
                s.throttle.settle(
                    c,
                    self.attempt,
                    self.name,
                    self.ip,
                    self.outcome,
                    s.core.clock.now(),
                )
            })
            .map_err(|e| e.to_string())
        });
        if let Err(e) = settled {
            tracing::warn!(error = %e, "could not give back a sign-in's throttle places; they expire by themselves");
        }
    }
}

/// Why [`SignIn::sign_in`] refused.
#[derive(Debug, thiserror::Error)]
pub enum SignInError {
    #[error("invalid username or password")]
    Invalid,
    #[error("too many failed sign-in attempts; try again later")]
    Throttled,
    #[error("too many sign-ins at once; retry shortly")]
    Busy,
    #[error("{0}")]
    Unavailable(OAuthError),
    /// What the caller asked to do after a successful sign-in failed.
    #[error("{0}")]
    Then(OAuthError),
}

impl SignInError {
    pub fn into_oauth(self) -> OAuthError {
        match self {
            SignInError::Invalid | SignInError::Throttled => {
                OAuthError::InvalidGrant(self.to_string())
            }
            SignInError::Busy => OAuthError::TemporarilyUnavailable(self.to_string()),
            SignInError::Unavailable(e) | SignInError::Then(e) => e,
        }
    }
}

impl From<r2d2::Error> for SignInError {
    fn from(e: r2d2::Error) -> Self {
        SignInError::Unavailable(e.into())
    }
}

impl From<diesel::result::Error> for SignInError {
    fn from(e: diesel::result::Error) -> Self {
        SignInError::Unavailable(e.into())
    }
}

/// The audit events of one sign-in attempt: who asked (`via`: a client or the login page),
/// from where, with which request, under which username (as typed, printable and short).
struct AttemptEvents<'a> {
    via: &'a str,
    origin: &'a RequestMeta,
    shown: String,
    clock: &'a Clock,
}

impl AttemptEvents<'_> {
    fn record(
        &self,
        conn: &mut AnyConnection,
        kind: AuditKind,
        subject: Option<&str>,
        detail: &str,
    ) {
        Event {
            kind,
            actor: Some(self.via),
            subject,
            client_ip: self.origin.client_ip.as_deref(),
            detail: Some(detail),
            request: self.origin.request.as_ref(),
        }
        .record(conn, self.clock.now());
    }

    /// An event whose detail is the username.
    fn audit(&self, conn: &mut AnyConnection, kind: AuditKind, subject: Option<&str>) {
        self.record(conn, kind, subject, &format!("username {:?}", self.shown));
    }
}
