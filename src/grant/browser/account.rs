//! The account page's service: what each section shows to the signed-in user, and what they
//! may do there. No web framework here; `http::routes::account` renders it.

use super::BrowserFlow;
use crate::domain::account::{self, Activity, Actor, App, Device};
use crate::domain::audit::AuditKind;
use crate::domain::browser::SignedIn;
use crate::domain::request::RequestMeta;
use crate::domain::second_factor::{self, FactorError, Factors, TotpEnrolment};
use crate::domain::secret::Secret;
use crate::domain::user;
use crate::grant::{OAuthError, SignInError};
use crate::store::{write_tx, AnyConnection};
use crate::value::{ClientId, FamilyId};

/// A section of the account page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    Devices,
    Apps,
    Activity,
    Password,
    SignInMethods,
}

/// What a section shows.
#[derive(Debug, Clone)]
pub enum Shown {
    Devices(Vec<Device>),
    Apps(Vec<App>),
    Activity(Vec<Activity>),
    Password,
    SignInMethods(Factors),
}

/// What the sign-in methods section may change, each after the current password again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MethodChange {
    SetUpApp,
    RemoveApp,
    NewRecoveryCodes,
    /// One of the user's passkeys, by its credential id.
    RemovePasskey(String),
}

/// What a [`MethodChange`] gave.
#[derive(Debug)]
pub enum MethodChanged {
    /// The set-up began: the page that finishes it shows the QR code.
    SettingUp,
    Removed,
    PasskeyRemoved,
    /// Shown once.
    RecoveryCodes(Vec<String>),
}

/// The account page for the signed-in user.
#[derive(Debug, Clone)]
pub struct AccountView {
    pub username: String,
    pub shown: Shown,
}

/// What the user asked to do.
#[derive(Debug, Clone)]
pub enum Action {
    SignOut(FamilyId),
    SignOutOthers,
    RemoveAccess(ClientId),
}

/// What the confirmation page of an [`Action`] names.
#[derive(Debug, Clone)]
pub enum Subject {
    Device(Device),
    OtherDevices(usize),
    App(App),
}

/// Why an account change was refused.
#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    #[error("no one is signed in")]
    SignedOut,
    /// The current password was wrong, or there were too many attempts: one answer for both.
    #[error("the current password is incorrect, or there were too many attempts")]
    Refused,
    #[error("the new passwords do not match")]
    Mismatch,
    #[error("{0}")]
    Weak(String),
    /// The browser's passkey was not accepted, or its name.
    #[error("{0}")]
    Passkey(String),
    #[error("{0}")]
    Unavailable(OAuthError),
}

impl BrowserFlow {
    /// `section` for the user of the session cookie; `None`: no one is signed in.
    pub fn account(
        &self,
        session: Option<&str>,
        section: Section,
    ) -> Result<Option<AccountView>, OAuthError> {
        let conn = &mut *self.core.conn()?;
        let Some(signed_in) = self.session_user(conn, session)? else {
            return Ok(None);
        };
        let user = &signed_in.user;
        let shown = match section {
            Section::Devices => Shown::Devices(self.devices(conn, &signed_in)?),
            Section::Apps => Shown::Apps(account::apps(conn, &user.id)?),
            Section::Activity => {
                Shown::Activity(account::activity(conn, &user.id, &user.username)?)
            }
            Section::Password => Shown::Password,
            Section::SignInMethods => Shown::SignInMethods(second_factor::factors(conn, &user.id)?),
        };
        Ok(Some(AccountView {
            username: user.username.clone(),
            shown,
        }))
    }

    fn devices(
        &self,
        conn: &mut AnyConnection,
        signed_in: &SignedIn,
    ) -> Result<Vec<Device>, OAuthError> {
        let now = self.core.clock.now();
        Ok(account::devices(
            conn,
            &signed_in.user.id,
            &signed_in.sid,
            now,
        )?)
    }

    /// What the confirmation page of `action` names, for the session's user: their username,
    /// and the device or app (`None`: not theirs, or gone). `None`: no one is signed in.
    pub fn account_subject(
        &self,
        session: Option<&str>,
        action: &Action,
    ) -> Result<Option<(String, Option<Subject>)>, OAuthError> {
        let conn = &mut *self.core.conn()?;
        let Some(signed_in) = self.session_user(conn, session)? else {
            return Ok(None);
        };
        let subject = match action {
            Action::SignOut(id) => self
                .devices(conn, &signed_in)?
                .into_iter()
                .find(|d| d.family_id == *id)
                .map(Subject::Device),
            Action::SignOutOthers => {
                let others = self.devices(conn, &signed_in)?;
                Some(Subject::OtherDevices(
                    others.iter().filter(|d| !d.this_browser).count(),
                ))
            }
            Action::RemoveAccess(id) => account::apps(conn, &signed_in.user.id)?
                .into_iter()
                .find(|a| a.client_id == *id)
                .map(Subject::App),
        };
        Ok(Some((signed_in.user.username, subject)))
    }

    /// Does `action` for the user of the session cookie. `None`: no one is signed in; else
    /// how many devices were signed out (or apps' access removed).
    pub fn account_act(
        &self,
        session: Option<&str>,
        action: &Action,
        meta: &RequestMeta,
    ) -> Result<Option<usize>, OAuthError> {
        let conn = &mut *self.core.conn()?;
        let Some(signed_in) = self.session_user(conn, session)? else {
            return Ok(None);
        };
        let actor = Actor {
            user_id: &signed_in.user.id,
            meta,
        };
        let now = self.core.clock.now();
        let done = match action {
            Action::SignOut(id) => usize::from(account::sign_out_device(conn, &actor, id, now)?),
            Action::SignOutOthers => account::sign_out_others(conn, &actor, &signed_in.sid, now)?,
            Action::RemoveAccess(id) => usize::from(account::remove_access(conn, &actor, id, now)?),
        };
        Ok(Some(done))
    }

    /// The session's user, once they proved it is them again: with their current password,
    /// checked as a sign-in is (throttled, the same cost whatever happens), or, where
    /// `code_allowed`, with a current code from their authenticator app (six digits, which no
    /// password is), checked as the second step is (throttled, each code once).
    pub(super) fn reauthenticated(
        &self,
        session: Option<&str>,
        current: &str,
        meta: &RequestMeta,
        code_allowed: bool,
    ) -> Result<SignedIn, AccountError> {
        let (signed_in, has_app) = {
            let conn = &mut *self.core.conn().map_err(|e| unavailable(e.into()))?;
            let signed_in = self.session_user(conn, session).map_err(unavailable)?;
            let signed_in = signed_in.ok_or(AccountError::SignedOut)?;
            let factors = second_factor::factors(conn, &signed_in.user.id)
                .map_err(|e| unavailable(e.into()))?;
            (signed_in, factors.totp.is_some())
        };
        let code: String = current.chars().filter(|c| !c.is_whitespace()).collect();
        if code_allowed && has_app && code.len() == 6 && code.chars().all(|c| c.is_ascii_digit()) {
            let master = &self.core.master;
            let user = &signed_in.user;
            let checked = self.passwords.second_step(user, meta, |c| {
                let now = self.core.clock.now();
                second_factor::check_totp(c, master, &user.id, &code, now).map_err(|e| match e {
                    FactorError::Database(d) => d.into(),
                    _ => OAuthError::ServerError,
                })
            });
            return match checked {
                Ok(()) => Ok(signed_in),
                Err(SignInError::Invalid | SignInError::Throttled) => Err(AccountError::Refused),
                Err(e) => Err(unavailable(e.into_oauth())),
            };
        }
        let username = &signed_in.user.username;
        match self
            .passwords
            .sign_in(username, current, meta, "account page")
        {
            Ok(_) => Ok(signed_in),
            Err(SignInError::Invalid | SignInError::Throttled) => Err(AccountError::Refused),
            Err(e) => Err(unavailable(e.into_oauth())),
        }
    }

    /// The issuer's host: what an authenticator app names the account with.
    pub(super) fn issuer_host(&self) -> String {
        url::Url::parse(&self.core.issuer)
            .ok()
            .and_then(|u| u.host_str().map(str::to_owned))
            .unwrap_or_else(|| "Tessera".to_owned())
    }

    /// Changes a sign-in method of the session's user, after their current password again.
    pub fn change_method(
        &self,
        session: Option<&str>,
        current: &str,
        change: MethodChange,
        meta: &RequestMeta,
    ) -> Result<MethodChanged, AccountError> {
        let signed_in = self.reauthenticated(session, current, meta, true)?;
        let user = &signed_in.user;
        let actor = Actor {
            user_id: &user.id,
            meta,
        };
        let conn = &mut *self.core.conn().map_err(|e| unavailable(e.into()))?;
        let now = self.core.clock.now();
        match change {
            MethodChange::SetUpApp => {
                let host = self.issuer_host();
                second_factor::begin_totp(conn, &self.core.master, user, &host, now)
                    .map_err(factor_error)?;
                Ok(MethodChanged::SettingUp)
            }
            MethodChange::RemoveApp => {
                write_tx(conn, |c| {
                    if second_factor::remove_totp(c, &user.id)? {
                        actor.audit(c, AuditKind::UserFactorRemoved, "an authenticator app", now);
                    }
                    Ok::<_, diesel::result::Error>(())
                })
                .map_err(|e| unavailable(e.into()))?;
                Ok(MethodChanged::Removed)
            }
            MethodChange::RemovePasskey(id) => {
                write_tx(conn, |c| {
                    if second_factor::remove_passkey(c, &user.id, &id)? {
                        actor.audit(c, AuditKind::UserFactorRemoved, "a passkey", now);
                    }
                    Ok::<_, diesel::result::Error>(())
                })
                .map_err(|e| unavailable(e.into()))?;
                Ok(MethodChanged::PasskeyRemoved)
            }
            MethodChange::NewRecoveryCodes => {
                let master = &self.core.master;
                let codes = write_tx(conn, |c| {
                    let codes = second_factor::new_recovery_codes_in(c, master, &user.id, now)?;
                    actor.audit(c, AuditKind::UserRecoveryCodesIssued, "10 codes", now);
                    Ok::<_, diesel::result::Error>(codes)
                })
                .map_err(|e| unavailable(e.into()))?;
                Ok(MethodChanged::RecoveryCodes(codes))
            }
        }
    }

    /// The authenticator app being set up for the session's user, to show (again): the
    /// username and the set-up; `None`: none is being set up.
    pub fn app_set_up(
        &self,
        session: Option<&str>,
    ) -> Result<Option<(String, TotpEnrolment)>, AccountError> {
        let conn = &mut *self.core.conn().map_err(|e| unavailable(e.into()))?;
        let signed_in = self.session_user(conn, session).map_err(unavailable)?;
        let user = signed_in.ok_or(AccountError::SignedOut)?.user;
        let host = self.issuer_host();
        let now = self.core.clock.now();
        let pending = second_factor::pending_totp(conn, &self.core.master, &user, &host, now)
            .map_err(factor_error)?;
        Ok(pending.map(|p| (user.username, p)))
    }

    /// Finishes setting up the authenticator app with a first code from it. Returns whether
    /// the code was right.
    pub fn confirm_app(
        &self,
        session: Option<&str>,
        code: &str,
        meta: &RequestMeta,
    ) -> Result<bool, AccountError> {
        let conn = &mut *self.core.conn().map_err(|e| unavailable(e.into()))?;
        let signed_in = self.session_user(conn, session).map_err(unavailable)?;
        let user = signed_in.ok_or(AccountError::SignedOut)?.user;
        let now = self.core.clock.now();
        let master = &self.core.master;
        let confirmed = write_tx(conn, |c| {
            let ok = second_factor::confirm_totp(c, master, &user.id, code, now)?;
            if ok {
                let actor = Actor {
                    user_id: &user.id,
                    meta,
                };
                actor.audit(c, AuditKind::UserFactorAdded, "an authenticator app", now);
            }
            Ok::<_, FactorError>(ok)
        });
        match confirmed {
            Err(FactorError::NotEnrolling) => Ok(false),
            other => other.map_err(factor_error),
        }
    }

    /// Changes the password of the session's user: the current one checked as a sign-in is
    /// (throttled, the same cost whatever happens), the new one hashed with no connection held.
    /// Every session and device of the user ends; returns the new session's cookie value for
    /// this browser.
    pub fn change_password(
        &self,
        session: Option<&str>,
        (current, new, again): (&str, &str, &str),
        meta: &RequestMeta,
    ) -> Result<Secret, AccountError> {
        // The password itself: a phone and an open browser must not be enough to change it.
        let signed_in = self.reauthenticated(session, current, meta, false)?;
        if new != again {
            return Err(AccountError::Mismatch);
        }
        user::check_password(new).map_err(|e| AccountError::Weak(e.to_string()))?;
        let hash = self.passwords.hasher.hash(new).map_err(|e| {
            tracing::error!(error = %e, "hashing a new password failed");
            unavailable(OAuthError::ServerError)
        })?;
        let actor = Actor {
            user_id: &signed_in.user.id,
            meta,
        };
        let conn = &mut *self.core.conn().map_err(|e| unavailable(e.into()))?;
        let now = self.core.clock.now();
        let (revoked, cookie) = account::set_password(
            conn,
            &self.core.master,
            &actor,
            &hash,
            (&signed_in.amr, signed_in.auth_time),
            now,
        )
        .map_err(|e| unavailable(e.into()))?;
        tracing::info!(user_id = %signed_in.user.id, revoked, "password changed on the account page");
        Ok(cookie)
    }
}

impl From<diesel::result::Error> for AccountError {
    fn from(e: diesel::result::Error) -> Self {
        AccountError::Unavailable(e.into())
    }
}

fn unavailable(e: OAuthError) -> AccountError {
    AccountError::Unavailable(e)
}

fn factor_error(e: FactorError) -> AccountError {
    match e {
        FactorError::Database(d) => unavailable(d.into()),
        other => AccountError::Weak(other.to_string()),
    }
}
