//! RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0): an app sends the user to
//! `/end_session` to sign out of this server, and may ask to be sent back to one of its
//! registered post-logout redirect URIs. Signing out ends the browser session and every token
//! family begun in it.

use std::collections::HashMap;

use super::authorize::{lenient, with_query};
use super::BrowserFlow;
use crate::domain::browser::{self, SignedIn};
use crate::domain::client::{self, Client};
use crate::domain::id_token::{self, IdClaims};
use crate::domain::request::RequestMeta;
use crate::grant::OAuthError;
use crate::store::AnyConnection;
use crate::value::ClientId;

/// Where a logout request goes next.
#[derive(Debug)]
pub enum LogoutStep {
    /// Ask the user first: nothing shows that the request comes from an app of this session
    /// (an `id_token_hint` of the signed-in session would).
    Confirm {
        client_name: Option<String>,
        username: String,
    },
    /// Signed out, or nobody was signed in: back to the app when it asked, else the
    /// signed-out page.
    Done { redirect: Option<String> },
    /// The request cannot be honoured: an error page, never a redirect.
    Page(String),
}

/// Why a logout request is not honoured.
enum Refusal {
    /// An error page with this message.
    Page(&'static str),
    Failed(OAuthError),
}

/// A logout request's parameters (first value of each), read as leniently as an
/// authorization request's.
struct EndSession {
    params: HashMap<String, String>,
}

impl EndSession {
    fn parse(query: &str) -> Self {
        let (params, _, _) = lenient(query);
        Self { params }
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.params.get(name).map(String::as_str)
    }
}

impl BrowserFlow {
    /// `GET|POST /end_session`. `confirmed`: the user answered the confirmation page.
    pub fn end_session(
        &self,
        query: &str,
        session: Option<&str>,
        confirmed: bool,
        meta: &RequestMeta,
    ) -> Result<LogoutStep, OAuthError> {
        let request = EndSession::parse(query);
        let conn = &mut *self.core.conn()?;
        let (hint, client) = match self.logout_client(conn, &request) {
            Ok(found) => found,
            Err(Refusal::Page(message)) => return Ok(LogoutStep::Page(message.into())),
            Err(Refusal::Failed(e)) => return Err(e),
        };
        let redirect = match back_to(client.as_ref(), &request) {
            Ok(redirect) => redirect,
            Err(message) => return Ok(LogoutStep::Page(message.into())),
        };
        let Some(signed_in) = self.session_user(conn, session)? else {
            return Ok(LogoutStep::Done { redirect });
        };
        if !(confirmed || hint.as_ref().is_some_and(|h| names(h, &signed_in))) {
            return Ok(LogoutStep::Confirm {
                client_name: client.map(|c| c.name),
                username: signed_in.user.username,
            });
        }
        if let Some(cookie) = session {
            let now = self.core.clock.now();
            if let Some(out) = browser::sign_out(conn, &self.core.master, cookie, meta, now)? {
                tracing::info!(user_id = %out.user_id, sid = %out.sid, "signed out");
            }
        }
        Ok(LogoutStep::Done { redirect })
    }

    /// The ID token hint's claims and the app the request is from (by the hint's audience or
    /// `client_id`, which must agree).
    fn logout_client(
        &self,
        conn: &mut AnyConnection,
        request: &EndSession,
    ) -> Result<(Option<IdClaims>, Option<Client>), Refusal> {
        let hint = match request.get("id_token_hint") {
            None => None,
            Some(token) => {
                let keys = self.core.keys.get();
                let claims =
                    id_token::hinted(&keys, &self.core.issuer, token).ok_or(Refusal::Page(
                        "The sign-out request carries an ID token this server did not issue.",
                    ))?;
                Some(claims)
            }
        };
        let hinted_client = hint.as_ref().map(|h| h.aud.as_str());
        let client_id = match (request.get("client_id"), hinted_client) {
            (Some(a), Some(b)) if a != b => return Err(Refusal::Page(
                "The sign-out request names one application and carries an ID token of another.",
            )),
            (Some(id), _) | (None, Some(id)) => Some(id),
            (None, None) => None,
        };
        let client = match client_id {
            Some(id) if crate::grant::client_auth::plausible(id) => {
                client::get(conn, &ClientId::from(id)).map_err(|e| Refusal::Failed(e.into()))?
            }
            _ => None,
        };
        Ok((hint, client))
    }
}

/// Whether the hint names this sign-in: its user, and the browser session it began in.
fn names(hint: &IdClaims, signed_in: &SignedIn) -> bool {
    signed_in.user.id == hint.sub && hint.sid.as_deref() == Some(signed_in.sid.as_str())
}

/// Where to send the user after signing out: the request's `post_logout_redirect_uri` if the
/// app registered it (exactly), with `state`; `Err` with the error page's message otherwise.
fn back_to(client: Option<&Client>, request: &EndSession) -> Result<Option<String>, &'static str> {
    let Some(uri) = request.get("post_logout_redirect_uri") else {
        return Ok(None);
    };
    let Some(client) = client else {
        return Err(
            "The application that sent you here is not known, so it cannot be sent back to.",
        );
    };
    let registered = client
        .openid
        .post_logout_redirect_uris
        .iter()
        .any(|u| u.as_str() == uri);
    if !registered {
        return Err("The application asked to return you to an address it has not registered.");
    }
    Ok(Some(match request.get("state") {
        Some(state) => with_query(uri, &[("state", state)]),
        None => uri.to_owned(),
    }))
}
