//! The authorization endpoint's request (RFC 6749 §4.1.1), checked without any web framework.

use crate::domain::authcode::pkce_challenge;
use crate::domain::client::GrantType;
use crate::domain::scope::Scope;
use crate::store::models::Client;
use crate::store::AnyConnection;

/// A request that passed every check.
#[derive(Debug, Clone)]
pub struct AuthorizeRequest {
    pub client: Client,
    pub redirect_uri: String,
    /// The request named `redirect_uri` (rather than relying on the only registered one).
    pub redirect_uri_given: bool,
    pub scope: Scope,
    pub state: Option<String>,
    /// The PKCE challenge, encoded for storage.
    pub pkce: String,
}

/// Why a request was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthorizeError {
    /// The client or its redirect URI cannot be trusted: show an error page, never redirect
    /// (RFC 6749 §4.1.2.1).
    Page(String),
    /// Redirect back to the client with `error` (RFC 6749 §4.1.2.1).
    Redirect {
        redirect_uri: String,
        state: Option<String>,
        error: &'static str,
        description: String,
    },
}

impl AuthorizeError {
    fn redirect(
        to: &str,
        state: Option<&str>,
        error: &'static str,
        description: impl Into<String>,
    ) -> Self {
        AuthorizeError::Redirect {
            redirect_uri: to.to_owned(),
            state: state.map(str::to_owned),
            error,
            description: description.into(),
        }
    }
}

/// Longest query value accepted (a `state` may be long, but not unbounded).
const MAX_VALUE: usize = 2048;

/// The query's parameters (first value of each), and the names that were repeated or too long.
fn lenient(query: &str) -> (std::collections::HashMap<String, String>, Vec<String>) {
    let mut values = std::collections::HashMap::new();
    let mut bad = Vec::new();
    for (k, v) in url::form_urlencoded::parse(query.as_bytes()).take(64) {
        if v.is_empty() {
            continue;
        }
        if v.len() > MAX_VALUE || values.contains_key(k.as_ref()) {
            bad.push(k.chars().take(32).collect());
        }
        values
            .entry(k.into_owned())
            .or_insert_with(|| v.into_owned());
    }
    (values, bad)
}

/// The query string, re-encoded: safe to put in a `Location` header whatever was posted.
pub fn canonical_query(query: &str) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(url::form_urlencoded::parse(query.as_bytes()).take(64))
        .finish()
}

/// Checks an authorization request (its raw query string) against the registered client.
pub fn check(conn: &mut AnyConnection, query: &str) -> Result<AuthorizeRequest, AuthorizeError> {
    let (params, bad) = lenient(query);
    let get = |name: &str| params.get(name).map(String::as_str);
    // RFC 6749 §4.1.2.1: while the client or its redirect URI is in doubt, never redirect.
    if bad.iter().any(|n| n == "client_id" || n == "redirect_uri") {
        return Err(AuthorizeError::Page(
            "The request repeats client_id or redirect_uri.".into(),
        ));
    }
    let client_id = get("client_id").ok_or_else(|| {
        AuthorizeError::Page("The request names no client (client_id is missing).".into())
    })?;
    let plausible = client_id.len() <= 128
        && client_id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    let client = if plausible {
        Client::find(conn, client_id)
            .map_err(|_| AuthorizeError::Page("The service is unavailable; try again.".into()))?
    } else {
        None
    };
    let client = client.filter(|c| c.disabled_at.is_none()).ok_or_else(|| {
        AuthorizeError::Page(
            "The application that sent you here is not known to this server.".into(),
        )
    })?;
    let registered: Vec<&str> = client
        .redirect_uris
        .split(' ')
        .filter(|u| !u.is_empty())
        .collect();
    // RFC 9700 §4.1.3: exact string match; without one in the request, only an unambiguous
    // registration will do.
    let redirect_uri = match get("redirect_uri") {
        Some(uri) if registered.contains(&uri) => uri.to_owned(),
        Some(_) => {
            return Err(AuthorizeError::Page(
                "The application sent you with a return address it has not registered.".into(),
            ))
        }
        None if registered.len() == 1 => registered[0].to_owned(),
        None => {
            return Err(AuthorizeError::Page(
                "The application did not say where to return you (redirect_uri is missing).".into(),
            ))
        }
    };
    let state = get("state");
    let fail = |error, description: &str| {
        AuthorizeError::redirect(&redirect_uri, state, error, description)
    };
    if let Some(name) = bad.first() {
        return Err(fail(
            "invalid_request",
            &format!("parameter {name} is repeated or too long"),
        ));
    }
    match get("response_type") {
        Some("code") => {}
        None => return Err(fail("invalid_request", "response_type is missing")),
        Some(_) => {
            return Err(fail(
                "unsupported_response_type",
                "response_type must be code",
            ))
        }
    }
    if !client.allows(GrantType::AuthorizationCode) {
        return Err(fail(
            "unauthorized_client",
            "this client may not use the authorization_code grant",
        ));
    }
    let allowed = client.scope();
    let scope = match get("scope") {
        None => allowed.clone(),
        Some(text) => {
            Scope::parse(text).map_err(|_| fail("invalid_scope", "the scope is malformed"))?
        }
    };
    if !scope.is_subset_of(&allowed) {
        return Err(fail(
            "invalid_scope",
            "the requested scope is not allowed for this client",
        ));
    }
    let pkce = pkce_challenge(get("code_challenge_method"), get("code_challenge"))
        .map_err(|why| fail("invalid_request", why))?;
    Ok(AuthorizeRequest {
        redirect_uri,
        redirect_uri_given: get("redirect_uri").is_some(),
        scope,
        state: state.map(str::to_owned),
        pkce,
        client,
    })
}

/// Where the authorization endpoint goes next.
#[derive(Debug)]
pub enum Step {
    /// Show the login page.
    Login { client_name: String },
    /// Show the consent page.
    Consent {
        client_name: String,
        username: String,
        scope: Scope,
    },
    /// Redirect (back to the client, with a code or an error).
    Redirect(String),
    /// Show an error page: the client or redirect URI cannot be trusted.
    Page(String),
}

/// `redirect_uri` with `pairs` added to its query.
fn with_query(redirect_uri: &str, pairs: &[(&str, &str)]) -> String {
    match url::Url::parse(redirect_uri) {
        Ok(mut url) => {
            url.query_pairs_mut().extend_pairs(pairs);
            url.to_string()
        }
        // Registered URIs were parsed when registered; keep the raw string if that changed.
        Err(_) => redirect_uri.to_owned(),
    }
}

impl From<AuthorizeError> for Step {
    fn from(e: AuthorizeError) -> Self {
        match e {
            AuthorizeError::Page(message) => Step::Page(message),
            AuthorizeError::Redirect {
                redirect_uri,
                state,
                error,
                description,
            } => {
                let description = crate::grant::error::sanitize(&description);
                let mut pairs = vec![
                    ("error", error),
                    ("error_description", description.as_str()),
                ];
                if let Some(s) = &state {
                    pairs.push(("state", s));
                }
                Step::Redirect(with_query(&redirect_uri, &pairs))
            }
        }
    }
}

impl crate::grant::TokenService {
    /// `GET /authorize`: login, consent, or straight back with a code when consent exists.
    pub fn authorize(
        &self,
        query: &str,
        session: Option<&str>,
    ) -> Result<Step, crate::grant::OAuthError> {
        let conn = &mut *self.pool.get()?;
        let request = match check(conn, query) {
            Ok(r) => r,
            Err(e) => return Ok(self.with_iss(e.into())),
        };
        let user = self.session_user(conn, session)?;
        let Some(user) = user else {
            return Ok(Step::Login {
                client_name: request.client.name.clone(),
            });
        };
        // A remembered consent answers without a page only where the redirect reaches the
        // real client: a confidential client, or an https redirect URI. A public client on a
        // custom scheme or loopback could be impersonated (RFC 6749 §10.2, RFC 8252 §8.6).
        let trusted_redirect =
            !request.client.is_public() || request.redirect_uri.starts_with("https://");
        if trusted_redirect
            && crate::domain::browser::consent_covers(
                conn,
                &user.id,
                &request.client.id,
                &request.scope,
            )?
        {
            return self.issue_code(conn, &request, &user.id);
        }
        Ok(Step::Consent {
            client_name: request.client.name.clone(),
            username: user.username,
            scope: request.scope,
        })
    }

    /// `POST /consent`: the user approved or denied.
    pub fn consent(
        &self,
        query: &str,
        session: Option<&str>,
        approve: bool,
    ) -> Result<Step, crate::grant::OAuthError> {
        let conn = &mut *self.pool.get()?;
        let request = match check(conn, query) {
            Ok(r) => r,
            Err(e) => return Ok(self.with_iss(e.into())),
        };
        let now = self.clock.now_ms();
        let user = self.session_user(conn, session)?;
        let Some(user) = user else {
            return Ok(Step::Login {
                client_name: request.client.name.clone(),
            });
        };
        if !approve {
            let e = AuthorizeError::redirect(
                &request.redirect_uri,
                request.state.as_deref(),
                "access_denied",
                "the user denied the request",
            );
            return Ok(self.with_iss(e.into()));
        }
        crate::domain::browser::remember_consent(
            conn,
            &user.id,
            &request.client.id,
            &request.scope,
            now,
        )?;
        self.issue_code(conn, &request, &user.id)
    }

    /// The signed-in user of the session cookie, if it still stands.
    fn session_user(
        &self,
        conn: &mut AnyConnection,
        session: Option<&str>,
    ) -> Result<Option<crate::store::models::User>, crate::grant::OAuthError> {
        Ok(match session {
            Some(cookie) => crate::domain::browser::session_user(
                conn,
                &self.master,
                cookie,
                self.sessions,
                self.clock.now_ms(),
            )?,
            None => None,
        })
    }

    fn issue_code(
        &self,
        conn: &mut AnyConnection,
        request: &AuthorizeRequest,
        user_id: &str,
    ) -> Result<Step, crate::grant::OAuthError> {
        let code = crate::domain::authcode::issue(
            conn,
            &crate::domain::authcode::CodeGrant {
                client_id: &request.client.id,
                user_id,
                scope: &request.scope,
                redirect_uri: &request.redirect_uri,
                pkce: &request.pkce,
                ttl_ms: self.code_ttl_ms,
                redirect_uri_given: request.redirect_uri_given,
            },
            self.clock.now_ms(),
        )?;
        let mut pairs = vec![("code", code.as_str())];
        if let Some(s) = &request.state {
            pairs.push(("state", s));
        }
        // RFC 9207: say who issued the code, against mix-up attacks.
        pairs.push(("iss", &self.issuer));
        Ok(Step::Redirect(with_query(&request.redirect_uri, &pairs)))
    }

    /// Adds `iss` (RFC 9207) to error redirects too.
    fn with_iss(&self, step: Step) -> Step {
        match step {
            Step::Redirect(url) => Step::Redirect(with_query(&url, &[("iss", &self.issuer)])),
            other => other,
        }
    }

    /// `POST /login`: a session cookie value for a good username and password.
    pub fn login(
        &self,
        username: &str,
        password: &str,
        ip: Option<&str>,
    ) -> Result<String, crate::grant::SignInError> {
        let user = self.sign_in(username, password, ip, "login page")?;
        Ok(crate::domain::browser::start_session(
            &mut *self.pool.get()?,
            &self.master,
            &user.id,
            self.clock.now_ms(),
        )?)
    }

    /// `POST /logout`.
    pub fn logout(&self, session: &str) -> Result<(), crate::grant::OAuthError> {
        Ok(crate::domain::browser::end_session(
            &mut *self.pool.get()?,
            &self.master,
            session,
        )?)
    }
}
