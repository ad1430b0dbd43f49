//! Passkeys on the pages: the options a page's script asks for, a sign-in with a passkey
//! alone, a passkey as the second step, and adding one on the account page.

use super::account::AccountError;
use super::flow::may_enrol;
use super::BrowserFlow;
use crate::domain::account::Actor;
use crate::domain::audit::{AuditKind, Event};
use crate::domain::browser;
use crate::domain::request::RequestMeta;
use crate::domain::second_factor::PasskeyInfo;
use crate::domain::secret::Secret;
use crate::grant::passkey::{Begun, PasskeyError, RelyingParty};
use crate::grant::{OAuthError, SignInError};
use crate::store::models::User;
use crate::store::write_tx;
use crate::value::Amr;

/// What a page's script asks a ceremony for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Asked {
    /// Signing in with a passkey alone.
    SignIn,
    /// The second step of the sign-in waiting in its cookie.
    SecondStep,
    /// Adding a passkey on the account page (the session's user).
    Register,
    /// Adding a passkey as the second factor a sign-in requires (the waiting sign-in's user).
    Enrol,
}

impl Asked {
    pub fn parse(s: &str) -> Option<Asked> {
        Some(match s {
            "sign-in" => Asked::SignIn,
            "second-step" => Asked::SecondStep,
            "register" => Asked::Register,
            "enrol" => Asked::Enrol,
            _ => return None,
        })
    }
}

/// Why the options of a ceremony were not given.
#[derive(Debug, thiserror::Error)]
pub enum OptionsError {
    /// No session (adding one), or no sign-in waiting for its second step.
    #[error("sign in again")]
    SignedOut,
    /// The user has no passkey to ask for.
    #[error("no passkey is registered for this account")]
    NoPasskey,
    #[error("{0}")]
    Unavailable(OAuthError),
}

impl BrowserFlow {
    fn relying_party(&self) -> Result<&RelyingParty, OAuthError> {
        self.passkeys.as_deref().ok_or(OAuthError::ServerError)
    }

    /// `POST /webauthn/options`: begins a ceremony for what the page `asked`. Adding a passkey
    /// on the account page needs the session; the second step and adding one during a
    /// sign-in, the sign-in waiting for it (`pending`).
    pub fn passkey_options(
        &self,
        asked: Asked,
        session: Option<&str>,
        pending: Option<&str>,
    ) -> Result<Begun, OptionsError> {
        let unavailable = |e: OAuthError| OptionsError::Unavailable(e);
        let rp = self.relying_party().map_err(unavailable)?;
        let conn = &mut *self.core.conn().map_err(|e| unavailable(e.into()))?;
        let now = self.core.clock.now();
        let pending_user = || {
            pending
                .and_then(|p| browser::pending_user(&self.core.master, p, now))
                .ok_or(OptionsError::SignedOut)
        };
        let begun = match asked {
            Asked::SignIn => rp.begin_sign_in(conn, now).map(Some),
            Asked::Register => {
                let signed_in = self.session_user(conn, session).map_err(unavailable)?;
                let user = signed_in.ok_or(OptionsError::SignedOut)?.user;
                rp.begin_registration(conn, &user, now).map(Some)
            }
            Asked::SecondStep => rp.begin_second_step(conn, &pending_user()?, now),
            Asked::Enrol => {
                let user = User::find(conn, &pending_user()?)
                    .map_err(|e| unavailable(e.into()))?
                    .filter(|u| u.disabled_at.is_none())
                    .ok_or(OptionsError::SignedOut)?;
                if !may_enrol(conn, &user.id).map_err(|e| unavailable(e.into()))? {
                    return Err(OptionsError::SignedOut);
                }
                rp.begin_registration(conn, &user, now).map(Some)
            }
        };
        begun
            .map_err(|e| unavailable(passkey_error(e)))?
            .ok_or(OptionsError::NoPasskey)
    }

    /// `POST /login/passkey`: a sign-in with a passkey alone. The session cookie value.
    pub fn passkey_sign_in(
        &self,
        ceremony: &str,
        credential: &str,
        origin: &RequestMeta,
    ) -> Result<Secret, SignInError> {
        let rp = self.relying_party().map_err(SignInError::Unavailable)?;
        let conn = &mut *self.core.conn()?;
        let now = self.core.clock.now();
        let master = &self.core.master;
        let signed_in = write_tx(conn, |c| {
            let user_id = match rp.finish_sign_in(c, ceremony, credential, now) {
                Ok(id) => id,
                Err(PasskeyError::Database(d)) => return Err(SignInError::from(d)),
                Err(e) => {
                    tracing::info!(reason = %e, "passkey sign-in refused");
                    return Err(SignInError::Invalid);
                }
            };
            let user = User::find(c, &user_id)?
                .filter(|u| u.disabled_at.is_none())
                .ok_or(SignInError::Invalid)?;
            Event {
                kind: AuditKind::LoginSuccess,
                actor: Some("passkey"),
                subject: Some(user.id.as_str()),
                client_ip: origin.client_ip.as_deref(),
                detail: Some(&format!("username {:?}, with a passkey", user.username)),
                request: origin.request.as_ref(),
            }
            .record(c, now);
            Ok(browser::start_session(
                c,
                master,
                &user.id,
                &Amr::passkey(),
                now,
            )?)
        })?;
        Ok(signed_in)
    }

    /// `POST /login/second-step` with a passkey's answer: the second step of the sign-in
    /// `pending` holds, throttled as codes are. A session cookie value; `Ok(None)` when the
    /// sign-in has expired.
    pub fn passkey_second_step(
        &self,
        pending: &str,
        ceremony: &str,
        credential: &str,
        origin: &RequestMeta,
    ) -> Result<Option<Secret>, SignInError> {
        let rp = self.relying_party().map_err(SignInError::Unavailable)?;
        let Some(user) = self.pending_sign_in(pending)? else {
            return Ok(None);
        };
        self.passwords.second_step(&user, origin, |c| {
            let now = self.core.clock.now();
            match rp.finish_second_step(c, &user.id, ceremony, credential, now) {
                Ok(()) => Ok(true),
                Err(PasskeyError::Database(d)) => Err(d.into()),
                Err(e) => {
                    tracing::info!(reason = %e, "passkey second step refused");
                    Ok(false)
                }
            }
        })?;
        Ok(Some(browser::start_session(
            &mut *self.core.conn()?,
            &self.core.master,
            &user.id,
            &Amr::password_and_passkey(),
            self.core.clock.now(),
        )?))
    }

    /// `POST /login/enrol` with a passkey's answer: the passkey the browser made becomes the
    /// second factor of the user of the sign-in waiting in `pending`, which it completes (a
    /// password, then a passkey with user verification). `Ok(None)` when the sign-in expired.
    pub fn enrol_passkey(
        &self,
        pending: &str,
        (ceremony, credential, name): (&str, &str, &str),
        origin: &RequestMeta,
    ) -> Result<Option<Secret>, SignInError> {
        let rp = self.relying_party().map_err(SignInError::Unavailable)?;
        let Some(user) = self.pending_sign_in(pending)? else {
            return Ok(None);
        };
        let conn = &mut *self.core.conn()?;
        let now = self.core.clock.now();
        let master = &self.core.master;
        let session = write_tx(conn, |c| {
            if !may_enrol(c, &user.id)? {
                return Err(SignInError::Invalid);
            }
            let added = match rp.finish_registration(c, &user.id, ceremony, credential, name, now) {
                Ok(added) => added,
                Err(PasskeyError::Database(d)) => return Err(SignInError::from(d)),
                Err(e) => {
                    tracing::info!(reason = %e, "passkey registration at sign-in refused");
                    return Err(SignInError::Invalid);
                }
            };
            let actor = Actor {
                user_id: &user.id,
                meta: origin,
            };
            let what = format!("a passkey, {:?}, at sign-in", added.name);
            actor.audit(c, AuditKind::UserFactorAdded, &what, now);
            Ok(browser::start_session(
                c,
                master,
                &user.id,
                &Amr::password_and_passkey(),
                now,
            )?)
        })?;
        Ok(Some(session))
    }

    /// `POST /account/passkeys`: adds the passkey the browser made, named `name`, once the
    /// user proved it is them again (`current`: their password or an app's code).
    pub fn add_passkey(
        &self,
        session: Option<&str>,
        current: &str,
        (ceremony, credential, name): (&str, &str, &str),
        meta: &RequestMeta,
    ) -> Result<PasskeyInfo, AccountError> {
        let signed_in = self.reauthenticated(session, current, meta, true)?;
        let rp = self.relying_party().map_err(AccountError::Unavailable)?;
        let conn = &mut *self
            .core
            .conn()
            .map_err(|e| AccountError::Unavailable(e.into()))?;
        let now = self.core.clock.now();
        let user_id = &signed_in.user.id;
        write_tx(conn, |c| {
            let added = rp
                .finish_registration(c, user_id, ceremony, credential, name, now)
                .map_err(|e| match e {
                    PasskeyError::Database(d) => AccountError::Unavailable(d.into()),
                    PasskeyError::BadName => AccountError::Passkey(e.to_string()),
                    other => {
                        tracing::info!(reason = %other, "passkey registration refused");
                        AccountError::Passkey(other.to_string())
                    }
                })?;
            let actor = Actor { user_id, meta };
            let what = format!("a passkey, {:?}", added.name);
            actor.audit(c, AuditKind::UserFactorAdded, &what, now);
            Ok(added)
        })
    }
}

fn passkey_error(e: PasskeyError) -> OAuthError {
    match e {
        PasskeyError::Database(d) => d.into(),
        other => {
            tracing::error!(error = %other, "a passkey ceremony could not begin");
            OAuthError::ServerError
        }
    }
}
