//! The authorization endpoint's request (RFC 6749 §4.1.1), checked without any web framework.

use std::time::Duration;

use crate::domain::client::GrantType;
use crate::domain::client::{self, Client};
use crate::domain::resource::{self, LookupError, Targets};
use crate::domain::scope::Scope;
use crate::domain::user::Username;
use crate::store::AnyConnection;
use crate::value::ClientId;

/// A request that passed every check.
#[derive(Debug, Clone)]
pub struct AuthorizeRequest {
    pub client: Client,
    pub redirect_uri: String,
    /// The request named `redirect_uri` (rather than relying on the only registered one).
    pub redirect_uri_given: bool,
    pub scope: Scope,
    /// The resource servers (RFC 8707) the tokens are for; empty: none named.
    pub resources: Targets,
    pub state: Option<String>,
    /// The PKCE challenge, encoded for storage.
    pub pkce: String,
    pub prompt: Prompt,
    /// `login_hint`, when it could be a username.
    pub login_hint: Option<String>,
    /// OpenID Connect: the `nonce` to echo in the ID token.
    pub nonce: Option<String>,
    /// OpenID Connect `max_age`: a sign-in older than this is asked again.
    pub max_age: Option<Duration>,
    /// OpenID Connect `id_token_hint`, as sent (checked by the flow, which has the keys).
    pub id_token_hint: Option<String>,
    /// RFC 9449 §10: the thumbprint of the DPoP key the code is bound to.
    pub dpop_jkt: Option<String>,
}

/// `prompt` (OpenID Connect Core §3.1.2.1): whether the user may be asked anything, whether
/// they must sign in again, and whether consent must be asked again. `select_account` is
/// accepted (one account per browser: nothing to select).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Prompt {
    /// Ask nothing: sign-in or consent that would be needed is an error to the client
    /// (`login_required`, `consent_required`).
    pub none: bool,
    /// Ask for the password even when a session stands.
    pub login: bool,
    /// Ask for consent even when it is remembered.
    pub consent: bool,
}

impl Prompt {
    fn parse(value: Option<&str>) -> Result<Prompt, &'static str> {
        let mut prompt = Prompt::default();
        let values: Vec<&str> = value.unwrap_or_default().split_whitespace().collect();
        for v in &values {
            match *v {
                "none" => prompt.none = true,
                "consent" => prompt.consent = true,
                "login" => prompt.login = true,
                "select_account" => {}
                _ => return Err("prompt takes none, login, consent or select_account"),
            }
        }
        if prompt.none && values.len() > 1 {
            return Err("prompt=none goes with no other value");
        }
        Ok(prompt)
    }
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
    pub(crate) fn redirect(
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

/// The query's parameters (first value of each) and its `resource` values (which RFC 8707 lets
/// a client repeat), and the names that were repeated or too long.
pub(super) fn lenient(
    query: &str,
) -> (
    std::collections::HashMap<String, String>,
    Vec<String>,
    Vec<String>,
) {
    let mut values = std::collections::HashMap::new();
    let mut resources = Vec::new();
    let mut bad = Vec::new();
    for (k, v) in url::form_urlencoded::parse(query.as_bytes()).take(64) {
        if v.is_empty() {
            continue;
        }
        if k == "resource" && v.len() <= MAX_VALUE {
            resources.push(v.into_owned());
            continue;
        }
        if v.len() > MAX_VALUE || values.contains_key(k.as_ref()) {
            bad.push(k.chars().take(32).collect());
        }
        values
            .entry(k.into_owned())
            .or_insert_with(|| v.into_owned());
    }
    (values, resources, bad)
}

/// The query string, re-encoded: safe to put in a `Location` header whatever was posted.
pub fn canonical_query(query: &str) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(url::form_urlencoded::parse(query.as_bytes()).take(64))
        .finish()
}

/// The authorization request to return to after a sign-in: the same, but for `prompt=login`,
/// which that sign-in has answered (so that the request does not ask for it again).
pub fn after_sign_in(query: &str) -> String {
    let pairs = url::form_urlencoded::parse(query.as_bytes())
        .take(64)
        .filter_map(|(k, v)| {
            if k != "prompt" {
                return Some((k, v));
            }
            let rest: Vec<&str> = v.split_whitespace().filter(|p| *p != "login").collect();
            (!rest.is_empty()).then(|| (k, rest.join(" ").into()))
        });
    url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
}

/// Checks an authorization request (its raw query string) against the registered client: first
/// the client and where to return (until both are certain, errors are pages, RFC 6749
/// §4.1.2.1), then the rest (errors go back to the client). Until the user has `signed_in`,
/// resources are only checked for form: whether one is registered, and which scopes it
/// takes, is not for anyone who can open the page to learn.
pub fn check(
    conn: &mut AnyConnection,
    query: &str,
    signed_in: bool,
) -> Result<AuthorizeRequest, AuthorizeError> {
    let (params, resources, bad) = lenient(query);
    let get = |name: &str| params.get(name).map(String::as_str);
    if bad.iter().any(|n| n == "client_id" || n == "redirect_uri") {
        return Err(AuthorizeError::Page(
            "The request repeats client_id or redirect_uri.".into(),
        ));
    }
    let client = known_client(conn, get("client_id"))?;
    let redirect_uri = redirect_uri_for(&client, get("redirect_uri"))?;
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
    // OpenID Connect Core §6: request objects, by value or by reference, are not taken.
    if get("request").is_some() {
        return Err(fail(
            "request_not_supported",
            "request objects are not supported; send the parameters themselves",
        ));
    }
    if get("request_uri").is_some() {
        return Err(fail(
            "request_uri_not_supported",
            "request_uri is not supported; send the parameters themselves",
        ));
    }
    // Codes go back in the query only (no form_post, no fragment).
    if get("response_mode").is_some_and(|m| m != "query") {
        return Err(fail(
            "invalid_request",
            "response_mode must be query (the only one supported)",
        ));
    }
    let prompt = Prompt::parse(get("prompt")).map_err(|why| fail("invalid_request", why))?;
    let max_age = get("max_age")
        .map(|v| v.parse::<u64>().map(Duration::from_secs))
        .transpose()
        .map_err(|_| fail("invalid_request", "max_age is a number of seconds"))?;
    if !client.allows(GrantType::AuthorizationCode) {
        return Err(fail(
            "unauthorized_client",
            "this client may not use the authorization_code grant",
        ));
    }
    let pkce = crate::grant::pkce::challenge(get("code_challenge_method"), get("code_challenge"))
        .map_err(|why| fail("invalid_request", why))?;
    let resources = if signed_in {
        Some(resources.as_slice())
    } else {
        resource::check_form(&resources).map_err(|e| fail("invalid_target", &e.to_string()))?;
        None
    };
    let (scope, resources) = scope_and_resources(conn, &client, get("scope"), resources, &fail)?;
    // A JWK SHA-256 thumbprint: 32 bytes, base64url.
    let dpop_jkt = get("dpop_jkt")
        .map(|jkt| {
            let bytes =
                base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, jkt);
            match bytes {
                Ok(b) if b.len() == 32 => Ok(jkt.to_owned()),
                _ => Err(fail(
                    "invalid_request",
                    "dpop_jkt must be a JWK SHA-256 thumbprint (RFC 9449 §10)",
                )),
            }
        })
        .transpose()?;
    Ok(AuthorizeRequest {
        dpop_jkt,
        prompt,
        login_hint: get("login_hint")
            .and_then(|h| Username::parse(h).ok())
            .map(|u| u.as_str().to_owned()),
        nonce: get("nonce").map(str::to_owned),
        max_age,
        id_token_hint: get("id_token_hint").map(str::to_owned),
        redirect_uri_given: get("redirect_uri").is_some(),
        redirect_uri,
        scope,
        resources,
        state: state.map(str::to_owned),
        pkce,
        client,
    })
}

/// The enabled client `client_id` names; a page if there is none.
fn known_client(
    conn: &mut AnyConnection,
    client_id: Option<&str>,
) -> Result<Client, AuthorizeError> {
    let client_id = client_id.ok_or_else(|| {
        AuthorizeError::Page("The request names no client (client_id is missing).".into())
    })?;
    let client = if crate::grant::client_auth::plausible(client_id) {
        client::get(conn, &ClientId::from(client_id))
            .map_err(|_| AuthorizeError::Page("The service is unavailable; try again.".into()))?
    } else {
        None
    };
    client.filter(|c| c.disabled_at.is_none()).ok_or_else(|| {
        AuthorizeError::Page(
            "The application that sent you here is not known to this server.".into(),
        )
    })
}

/// Where to send the user back: the request's `redirect_uri` if registered, byte for byte
/// (RFC 9700 §4.1.3); without one, only an unambiguous registration will do.
fn redirect_uri_for(client: &Client, asked: Option<&str>) -> Result<String, AuthorizeError> {
    let registered: Vec<&str> = client.redirect_uris.iter().map(url::Url::as_str).collect();
    match asked {
        Some(uri) if registered.contains(&uri) => Ok(uri.to_owned()),
        Some(_) => Err(AuthorizeError::Page(
            "The application sent you with a return address it has not registered.".into(),
        )),
        None if registered.len() == 1 => Ok(registered[0].to_owned()),
        None => Err(AuthorizeError::Page(
            "The application did not say where to return you (redirect_uri is missing).".into(),
        )),
    }
}

/// The scope asked for (the client's own by default) and the resources named (RFC 8707),
/// narrowed to what those accept (`None`: not looked up yet); `fail` makes the error that goes
/// back to the client.
fn scope_and_resources(
    conn: &mut AnyConnection,
    client: &Client,
    asked: Option<&str>,
    resources: Option<&[String]>,
    fail: &dyn Fn(&'static str, &str) -> AuthorizeError,
) -> Result<(Scope, Targets), AuthorizeError> {
    let allowed = client.scope.clone();
    let scope = match asked {
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
    let Some(resources) = resources else {
        return Ok((scope, Targets::default()));
    };
    match resource::lookup(conn, resources) {
        Ok(None) => Ok((scope, Targets::default())),
        Ok(Some(r)) => match r.scope_for(&scope) {
            Some(scope) => Ok((scope, r.targets)),
            None => Err(fail(
                "invalid_scope",
                "the resource accepts none of the requested scopes",
            )),
        },
        Err(LookupError::Target(e)) => Err(fail("invalid_target", &e.to_string())),
        Err(LookupError::Database(_)) => Err(AuthorizeError::Page(
            "The service is unavailable; try again.".into(),
        )),
    }
}

/// Where the authorization endpoint goes next.
pub enum Step {
    /// Show the login page.
    Login {
        client_name: String,
        /// `login_hint` (OpenID Connect Core §3.1.2.1): the username to fill in, if it could be one.
        login_hint: Option<String>,
    },
    /// Show the consent page.
    Consent {
        client_name: String,
        username: String,
        scope: Scope,
        /// The resource servers (RFC 8707) the access would be for.
        resources: Targets,
    },
    /// Redirect (back to the client, with a code or an error).
    Redirect(String),
    /// Show an error page: the client or redirect URI cannot be trusted.
    Page(String),
}

/// A redirect may carry an authorization code: `Debug` shows where it goes, not its query.
impl std::fmt::Debug for Step {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Step::Login { client_name, .. } => f
                .debug_struct("Login")
                .field("client_name", client_name)
                .finish_non_exhaustive(),
            Step::Consent {
                client_name,
                username,
                scope,
                resources,
            } => f
                .debug_struct("Consent")
                .field("client_name", client_name)
                .field("username", username)
                .field("scope", scope)
                .field("resources", resources)
                .finish(),
            Step::Redirect(url) => {
                let target = url.split(['?', '#']).next().unwrap_or_default();
                f.debug_tuple("Redirect")
                    .field(&format_args!("{target}?[redacted]"))
                    .finish()
            }
            Step::Page(message) => f.debug_tuple("Page").field(message).finish(),
        }
    }
}

/// `redirect_uri` with `pairs` added to its query.
pub(crate) fn with_query(redirect_uri: &str, pairs: &[(&str, &str)]) -> String {
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

#[cfg(test)]
mod tests {
    use super::Step;

    #[test]
    fn a_redirect_shows_where_it_goes_but_not_its_code() {
        let step = Step::Redirect("https://app.example/cb?code=tsc_secret&state=s".into());
        let shown = format!("{step:?}");
        assert!(!shown.contains("tsc_secret"), "{shown}");
        assert!(shown.contains("https://app.example/cb"), "{shown}");
    }
}
