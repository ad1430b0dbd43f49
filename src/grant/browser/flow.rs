//! The steps of the browser flow: the authorization request, login, consent (remembered or
//! asked), the code at the end, logout, and the CSRF tokens of the forms.

use super::authorize::{check, with_query, AuthorizeError, AuthorizeRequest, Step};
use super::BrowserFlow;
use crate::domain::account::Actor;
use crate::domain::audit::AuditKind;
use crate::domain::authcode::{self, CodeGrant};
use crate::domain::browser::{self, SignedIn};
use crate::domain::client;
use crate::domain::id_token;
use crate::domain::request::RequestMeta;
use crate::domain::second_factor::{self, SecondFactorPolicy, TotpEnrolment};
use crate::domain::secret::Secret;
use crate::grant::{OAuthError, SignInError};
use crate::store::models::User;
use crate::store::AnyConnection;
use crate::value::{Amr, ClientId};

/// How long the second step of a sign-in may wait for its code.
pub const SECOND_STEP_TTL: std::time::Duration = std::time::Duration::from_secs(5 * 60);

/// What a second step can be answered with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SecondMethods {
    /// A code: from an authenticator app, or a recovery code.
    pub code: bool,
    pub passkey: bool,
}

/// What a right password leads to.
#[derive(Debug)]
pub enum LoginStep {
    /// Signed in: the session cookie's value.
    Session(Secret),
    /// The second step is due: the value of its cookie, and what the user can answer with.
    SecondStep(Secret, SecondMethods),
    /// A second factor is required and the user has none: they set one up now, with the
    /// same cookie as the second step's.
    Enrol(Secret),
}

impl BrowserFlow {
    /// `GET /authorize`: login, consent, or straight back with a code when consent exists.
    pub fn authorize(&self, query: &str, session: Option<&str>) -> Result<Step, OAuthError> {
        let conn = &mut *self.core.conn()?;
        let signed_in = self.session_user(conn, session)?;
        let request = match check(conn, query, signed_in.is_some()) {
            Ok(r) => r,
            Err(e) => return Ok(self.with_iss(e.into())),
        };
        let signed_in = match self.sign_in_stands(&request, signed_in) {
            Ok(s) => s,
            Err(step) => return Ok(step),
        };
        let Some(signed_in) = signed_in else {
            if request.prompt.none {
                return Ok(self.refuse(&request, "login_required", "no one is signed in"));
            }
            return Ok(Step::Login {
                client_name: request.client.name.clone(),
                login_hint: request.login_hint.clone(),
            });
        };
        // A remembered consent answers without a page only where the redirect reaches the
        // real client: a confidential client, or an https redirect URI. A public client on a
        // custom scheme or loopback could be impersonated (RFC 6749 §10.2, RFC 8252 §8.6).
        let trusted_redirect =
            !request.client.is_public() || request.redirect_uri.starts_with("https://");
        if trusted_redirect
            && !request.prompt.consent
            && browser::consent_covers(
                conn,
                &signed_in.user.id,
                &request.client.id,
                &request.scope,
                &request.resources,
            )?
        {
            return self.issue_code(conn, &request, &signed_in);
        }
        if request.prompt.none {
            return Ok(self.refuse(
                &request,
                "consent_required",
                "the user has not allowed this",
            ));
        }
        Ok(Step::Consent {
            client_name: request.client.name.clone(),
            username: signed_in.user.username,
            scope: request.scope,
            resources: request.resources,
        })
    }

    /// The browser's sign-in, if the request accepts it (OpenID Connect Core §3.1.2.1): not
    /// with `prompt=login`, not older than `max_age`, and not another user than the one
    /// `id_token_hint` names. A hint this server did not issue is an error to the client.
    fn sign_in_stands(
        &self,
        request: &AuthorizeRequest,
        signed_in: Option<SignedIn>,
    ) -> Result<Option<SignedIn>, Step> {
        let hinted = match &request.id_token_hint {
            None => None,
            Some(hint) => {
                let keys = self.core.keys.get();
                let claims = id_token::hinted(&keys, &self.core.issuer, hint).ok_or_else(|| {
                    self.refuse(
                        request,
                        "invalid_request",
                        "id_token_hint is not an ID token from this server",
                    )
                })?;
                Some(claims.sub)
            }
        };
        let now = self.core.clock.now();
        Ok(signed_in.filter(|s| {
            self.factors_suffice(request, s)
                && !request.prompt.login
                && request
                    .max_age
                    .is_none_or(|max| now.since(s.auth_time) <= max)
                && hinted.as_ref().is_none_or(|sub| s.user.id == *sub)
        }))
    }

    /// Whether `signed_in` took the factors `request`'s client needs: a password-only sign-in
    /// does not stand where a second factor is required (the server's policy, or the
    /// client's); the login page asks again, and the second step (or its set-up) follows.
    fn factors_suffice(&self, request: &AuthorizeRequest, signed_in: &SignedIn) -> bool {
        let required = self.second_factor == SecondFactorPolicy::Required
            || request.client.app.require_second_factor;
        !required || signed_in.amr.multi_factor()
    }

    /// `POST /consent`: the user approved or denied.
    pub fn consent(
        &self,
        query: &str,
        session: Option<&str>,
        approve: bool,
    ) -> Result<Step, OAuthError> {
        let conn = &mut *self.core.conn()?;
        let user = self.session_user(conn, session)?;
        let request = match check(conn, query, user.is_some()) {
            Ok(r) => r,
            Err(e) => return Ok(self.with_iss(e.into())),
        };
        let now = self.core.clock.now();
        // The sign-in was checked against the request when its page was shown: a consent
        // that took longer than `max_age` is not sent back to sign in. Its factors are checked
        // again: the session posting the form need not be the one the page was shown to.
        let Some(signed_in) = user.filter(|s| self.factors_suffice(&request, s)) else {
            return Ok(Step::Login {
                client_name: request.client.name.clone(),
                login_hint: request.login_hint.clone(),
            });
        };
        if !approve {
            return Ok(self.refuse(&request, "access_denied", "the user denied the request"));
        }
        let granted = (&request.scope, &request.resources);
        browser::remember_consent(conn, &signed_in.user.id, &request.client.id, granted, now)?;
        self.issue_code(conn, &request, &signed_in)
    }

    /// The sign-in of the session cookie, if it still stands.
    pub(super) fn session_user(
        &self,
        conn: &mut AnyConnection,
        session: Option<&str>,
    ) -> Result<Option<SignedIn>, OAuthError> {
        Ok(match session {
            Some(cookie) => browser::session_user(
                conn,
                &self.core.master,
                cookie,
                self.sessions,
                self.core.clock.now(),
            )?,
            None => None,
        })
    }

    fn issue_code(
        &self,
        conn: &mut AnyConnection,
        request: &AuthorizeRequest,
        signed_in: &SignedIn,
    ) -> Result<Step, OAuthError> {
        if !self.factors_suffice(request, signed_in) {
            // Every way here checked it first; a code is never issued without it.
            tracing::error!(client_id = %request.client.id, "a code was asked for a sign-in without the second factor the client requires");
            return Err(OAuthError::ServerError);
        }
        let code = authcode::issue(
            conn,
            &CodeGrant {
                client_id: &request.client.id,
                user_id: &signed_in.user.id,
                scope: &request.scope,
                resources: &request.resources,
                redirect_uri: &request.redirect_uri,
                pkce: &request.pkce,
                ttl: self.code_ttl,
                redirect_uri_given: request.redirect_uri_given,
                nonce: request.nonce.as_deref(),
                auth_time: signed_in.auth_time,
                sid: &signed_in.sid,
                dpop_jkt: request.dpop_jkt.as_deref(),
                amr: &signed_in.amr,
            },
            self.core.clock.now(),
        )?;
        let mut pairs = vec![("code", code.expose())];
        if let Some(s) = &request.state {
            pairs.push(("state", s));
        }
        // RFC 9207: say who issued the code, against mix-up attacks.
        pairs.push(("iss", &self.core.issuer));
        Ok(Step::Redirect(with_query(&request.redirect_uri, &pairs)))
    }

    /// Back to the client with `error` (and `iss`).
    fn refuse(&self, request: &AuthorizeRequest, error: &'static str, description: &str) -> Step {
        let e = AuthorizeError::redirect(
            &request.redirect_uri,
            request.state.as_deref(),
            error,
            description,
        );
        self.with_iss(e.into())
    }

    /// Adds `iss` (RFC 9207) to error redirects too.
    fn with_iss(&self, step: Step) -> Step {
        match step {
            Step::Redirect(url) => Step::Redirect(with_query(&url, &[("iss", &self.core.issuer)])),
            other => other,
        }
    }

    /// `POST /login`: for a good username and password, a session cookie value; or, for a
    /// user with a second factor, the cookie of the second step that must follow; or, where
    /// one is required (`signin.second_factor`, or the client of `authorize`) and the user
    /// has none, the same cookie for setting one up.
    pub fn login(
        &self,
        username: &str,
        password: &str,
        origin: &RequestMeta,
        authorize: &str,
    ) -> Result<LoginStep, SignInError> {
        let user = self
            .passwords
            .sign_in(username, password, origin, "login page")?;
        let conn = &mut *self.core.conn()?;
        let now = self.core.clock.now();
        let pending = || {
            let until = now + SECOND_STEP_TTL;
            Secret::new(browser::pending_second_step(
                &self.core.master,
                &user.id,
                until,
            ))
        };
        let factors = second_factor::factors(conn, &user.id)?;
        if factors.second_step_due() {
            let methods = SecondMethods {
                code: factors.totp.is_some() || factors.recovery_codes_left > 0,
                passkey: !factors.passkeys.is_empty(),
            };
            return Ok(LoginStep::SecondStep(pending(), methods));
        }
        if self
            .second_factor_required(conn, authorize)
            .map_err(SignInError::Unavailable)?
        {
            // A set-up of this sign-in's own: one left unfinished (by whoever knew the
            // password before) is replaced, never shown again.
            let host = self.issuer_host();
            second_factor::begin_totp(conn, &self.core.master, &user, &host, now)
                .map_err(|e| SignInError::Unavailable(factor_error(e)))?;
            return Ok(LoginStep::Enrol(pending()));
        }
        Ok(LoginStep::Session(browser::start_session(
            conn,
            &self.core.master,
            &user.id,
            &Amr::password(),
            now,
        )?))
    }

    /// `POST /login/second-step`: a code from the user's authenticator app, or one of their
    /// recovery codes, for the sign-in `pending` holds. A session cookie value when it is
    /// right; `Ok(None)` when the second step has expired (sign in again).
    pub fn second_step(
        &self,
        pending: &str,
        code: &str,
        origin: &RequestMeta,
    ) -> Result<Option<Secret>, SignInError> {
        let Some(user) = self.pending_sign_in(pending)? else {
            return Ok(None);
        };
        let master = &self.core.master;
        self.passwords.second_step(&user, origin, |c| {
            let now = self.core.clock.now();
            // Six digits: the app's code; anything else: a recovery code.
            let digits = code.chars().filter(|c| !c.is_whitespace()).count() == 6
                && code
                    .chars()
                    .all(|c| c.is_ascii_digit() || c.is_whitespace());
            let accepted = if digits {
                second_factor::check_totp(c, master, &user.id, code, now).map_err(factor_error)?
            } else {
                second_factor::spend_recovery_code(c, master, &user.id, code, now)?
            };
            Ok(accepted)
        })?;
        // An app's code and a recovery code are both one-time passwords.
        let amr = Amr::password_and_code();
        Ok(Some(browser::start_session(
            &mut *self.core.conn()?,
            &self.core.master,
            &user.id,
            &amr,
            self.core.clock.now(),
        )?))
    }

    /// What the sign-in waiting in `pending` can take as its second step (both, when it has
    /// expired: the page then says so).
    pub fn second_methods(&self, pending: &str) -> SecondMethods {
        let both = SecondMethods {
            code: true,
            passkey: true,
        };
        let now = self.core.clock.now();
        let Some(user_id) = browser::pending_user(&self.core.master, pending, now) else {
            return both;
        };
        let Ok(mut conn) = self.core.conn() else {
            return both;
        };
        match second_factor::factors(&mut conn, &user_id) {
            Ok(f) => SecondMethods {
                code: f.totp.is_some() || f.recovery_codes_left > 0,
                passkey: !f.passkeys.is_empty(),
            },
            Err(_) => both,
        }
    }

    /// Whether a sign-in for the authorization request `authorize` (empty: for the account
    /// page) needs a second factor: the server's policy, or the client's.
    fn second_factor_required(
        &self,
        conn: &mut AnyConnection,
        authorize: &str,
    ) -> Result<bool, OAuthError> {
        if self.second_factor == SecondFactorPolicy::Required {
            return Ok(true);
        }
        let client_id = form_urlencoded::parse(authorize.as_bytes())
            .find(|(k, _)| k == "client_id")
            .map(|(_, v)| ClientId::new(v.into_owned()));
        Ok(match client_id {
            Some(id) => client::get(conn, &id)?.is_some_and(|c| c.app.require_second_factor),
            None => false,
        })
    }

    /// The authenticator app the user of the pending sign-in `pending` sets up before going
    /// on: their username and the app's set-up (the same while it is unfinished); `None` when
    /// the sign-in has expired.
    pub fn enrolment(&self, pending: &str) -> Result<Option<(String, TotpEnrolment)>, OAuthError> {
        let now = self.core.clock.now();
        let Some(user_id) = browser::pending_user(&self.core.master, pending, now) else {
            return Ok(None);
        };
        let conn = &mut *self.core.conn()?;
        let Some(user) = User::find(conn, &user_id)?.filter(|u| u.disabled_at.is_none()) else {
            return Ok(None);
        };
        if !may_enrol(conn, &user.id)? {
            return Ok(None);
        }
        let host = self.issuer_host();
        let master = &self.core.master;
        let app = match second_factor::pending_totp(conn, master, &user, &host, now) {
            Ok(Some(app)) => app,
            Ok(None) => {
                second_factor::begin_totp(conn, master, &user, &host, now).map_err(factor_error)?
            }
            Err(e) => return Err(factor_error(e)),
        };
        Ok(Some((user.username, app)))
    }

    /// `POST /login/enrol`: the first code from the app being set up for the pending
    /// sign-in. A session cookie value when it is right (the app is then the user's second
    /// factor); `Ok(None)` when the sign-in has expired. Throttled as the second step is.
    pub fn enrol(
        &self,
        pending: &str,
        code: &str,
        origin: &RequestMeta,
    ) -> Result<Option<Secret>, SignInError> {
        let Some(user) = self.pending_sign_in(pending)? else {
            return Ok(None);
        };
        let master = &self.core.master;
        self.passwords.second_step(&user, origin, |c| {
            let now = self.core.clock.now();
            if !may_enrol(c, &user.id)? {
                return Ok(false);
            }
            let confirmed = second_factor::confirm_totp(c, master, &user.id, code, now);
            let ok = match confirmed {
                Ok(ok) => ok,
                Err(second_factor::FactorError::NotEnrolling) => false,
                Err(e) => return Err(factor_error(e)),
            };
            if ok {
                let actor = Actor {
                    user_id: &user.id,
                    meta: origin,
                };
                let what = "an authenticator app, set up at sign-in";
                actor.audit(c, AuditKind::UserFactorAdded, what, now);
            }
            Ok(ok)
        })?;
        Ok(Some(browser::start_session(
            &mut *self.core.conn()?,
            &self.core.master,
            &user.id,
            &Amr::password_and_code(),
            self.core.clock.now(),
        )?))
    }

    /// The user of the sign-in waiting in `pending` for its second step, if it has not
    /// expired and they are still enabled.
    pub(super) fn pending_sign_in(&self, pending: &str) -> Result<Option<User>, SignInError> {
        let now = self.core.clock.now();
        let Some(user_id) = browser::pending_user(&self.core.master, pending, now) else {
            return Ok(None);
        };
        let user = User::find(&mut *self.core.conn()?, &user_id)?;
        Ok(user.filter(|u| u.disabled_at.is_none()))
    }

    /// The token a page's form carries for the CSRF cookie `cookie`.
    pub fn csrf_token(&self, cookie: &str) -> String {
        browser::csrf_token(&self.core.master, cookie)
    }

    /// Whether a posted form's CSRF token matches the request's CSRF cookie.
    pub fn csrf_ok(&self, cookie: Option<&str>, token: Option<&str>) -> bool {
        browser::csrf_ok(&self.core.master, cookie, token)
    }

    /// The token the consent form carries for the request it shows (see
    /// [`browser::consent_token`]).
    pub fn consent_token(&self, csrf_cookie: &str, authorize: &str) -> String {
        browser::consent_token(&self.core.master, csrf_cookie, authorize)
    }

    /// Whether a posted consent is for the very request its page showed.
    pub fn consent_token_ok(
        &self,
        csrf_cookie: Option<&str>,
        authorize: &str,
        token: Option<&str>,
    ) -> bool {
        browser::consent_token_ok(&self.core.master, csrf_cookie, authorize, token)
    }

    /// `POST /logout`: ends the session and the token families begun in it.
    pub fn sign_out(&self, session: &str, meta: &RequestMeta) -> Result<(), OAuthError> {
        let now = self.core.clock.now();
        let conn = &mut *self.core.conn()?;
        browser::sign_out(conn, &self.core.master, session, meta, now)?;
        Ok(())
    }

    /// Ends a session that a new sign-in in the same browser replaces (its families stay).
    pub fn logout(&self, session: &str) -> Result<(), OAuthError> {
        Ok(browser::end_session(
            &mut *self.core.conn()?,
            &self.core.master,
            session,
        )?)
    }
}

fn factor_error(e: second_factor::FactorError) -> OAuthError {
    match e {
        second_factor::FactorError::Database(d) => OAuthError::from(d),
        _ => OAuthError::ServerError,
    }
}

/// Whether the user of a waiting sign-in may set up a second factor as part of it: only while
/// they have none. A user with a passkey or an app answers the second step instead; setting up
/// another one there would let a password alone past it.
pub(super) fn may_enrol(
    conn: &mut AnyConnection,
    user_id: &crate::value::UserId,
) -> diesel::QueryResult<bool> {
    Ok(!second_factor::factors(conn, user_id)?.second_step_due())
}
