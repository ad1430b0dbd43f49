//! `GET|POST /authorize`, `POST /login`, `POST /consent`, `POST /logout`, `GET|POST
//! /end_session`: the browser sign-in and sign-out.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};

use crate::domain::secret::Secret;
use crate::grant::authorize::{after_sign_in, canonical_query, Step};
use crate::grant::browser::{Asked, LoginStep, OptionsError};
use crate::grant::logout::LogoutStep;
use crate::grant::{OAuthError, Params, SignInError};
use crate::http::pages::{
    self, csrf, describe_scope, error_page, render, render_with_script, see_other,
    signed_in_cookies, ConsentPage, EndSessionPage, EnrolPage, LoginPage, SecondStepPage,
    SignedOutPage, StillSignedInPage,
};
use crate::http::AppState;

/// Largest value in a page form: the whole authorization request travels in one field.
const FORM_VALUE_LIMIT: usize = 16 * 1024;

pub(super) fn session(req: &HttpRequest, secure: bool) -> Option<String> {
    req.cookie(pages::session_cookie(secure))
        .map(|c| c.value().to_owned())
        .filter(|v| !v.is_empty())
}

pub(super) fn unavailable() -> HttpResponse {
    error_page(
        StatusCode::SERVICE_UNAVAILABLE,
        "The service is busy or unavailable. Try again in a moment.",
    )
}

/// Renders a step of the flow. `authorize` is the original query string, carried by forms.
fn show(req: &HttpRequest, state: &AppState, step: Step, authorize: &str) -> HttpResponse {
    let secure = state.secure_cookies;
    match step {
        Step::Redirect(url) => see_other(&url, Vec::new()),
        Step::Page(message) => error_page(StatusCode::BAD_REQUEST, &message),
        Step::Login {
            client_name,
            login_hint,
        } => {
            let (token, set) = csrf(req, &state.services.browser, secure);
            let page = LoginPage {
                client_name: &client_name,
                csrf: &token,
                authorize,
                username: login_hint.as_deref().unwrap_or_default(),
                error: None,
                next: "",
            };
            render_with_script(StatusCode::OK, &page, set.into_iter().collect())
        }
        Step::Consent {
            client_name,
            username,
            scope,
            resources,
        } => {
            let (token, set) = csrf(req, &state.services.browser, secure);
            let cookie = match &set {
                Some(c) => c.value().to_owned(),
                None => csrf_cookie_value(req, secure).unwrap_or_default(),
            };
            let shown = state.services.browser.consent_token(&cookie, authorize);
            let scopes = scope
                .iter()
                .map(|s| (s.to_owned(), describe_scope(s)))
                .collect();
            let page = ConsentPage {
                client_name: &client_name,
                username: &username,
                scopes,
                resources: resources.uris(),
                csrf: &token,
                shown: &shown,
                authorize,
            };
            render(StatusCode::OK, &page, set.into_iter().collect())
        }
    }
}

/// `GET /authorize` (RFC 6749 §4.1.1).
pub async fn authorize(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let query = req.query_string().to_owned();
    authorize_with(req, state, query).await
}

/// `POST /authorize` (OpenID Connect Core §3.1.2.1): the same request, form-encoded in the
/// body. Its forms and redirects carry it on as a query.
pub async fn authorize_post(
    req: HttpRequest,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> HttpResponse {
    let query = canonical_query(&String::from_utf8_lossy(&body));
    authorize_with(req, state, query).await
}

async fn authorize_with(
    req: HttpRequest,
    state: web::Data<AppState>,
    query: String,
) -> HttpResponse {
    let cookie = session(&req, state.secure_cookies);
    let q = query.clone();
    match state
        .blocking(move |s| s.browser.authorize(&q, cookie.as_deref()))
        .await
    {
        Ok(step) => show(&req, &state, step, &query),
        Err(_) => unavailable(),
    }
}

/// Parses a page form and checks its CSRF token.
pub(super) fn checked_form(
    req: &HttpRequest,
    body: &[u8],
    state: &AppState,
) -> Result<Params, Box<HttpResponse>> {
    let form = Params::parse_with_limit(body, FORM_VALUE_LIMIT)
        .map_err(|e| Box::new(error_page(StatusCode::BAD_REQUEST, e.description())))?;
    let cookie = csrf_cookie_value(req, state.secure_cookies);
    if !state
        .services
        .browser
        .csrf_ok(cookie.as_deref(), form.get("csrf"))
    {
        return Err(Box::new(error_page(
            StatusCode::FORBIDDEN,
            "This form has expired or did not come from this site. Go back, reload the page and try again.",
        )));
    }
    Ok(form)
}

fn csrf_cookie_value(req: &HttpRequest, secure: bool) -> Option<String> {
    req.cookie(pages::csrf_cookie(secure))
        .map(|c| c.value().to_owned())
        .filter(|v| !v.is_empty())
}

fn field<'a>(form: &'a Params, name: &str) -> &'a str {
    form.get(name).unwrap_or_default()
}

/// `POST /login`.
pub async fn login(req: HttpRequest, body: web::Bytes, state: web::Data<AppState>) -> HttpResponse {
    let form = match checked_form(&req, &body, &state) {
        Ok(f) => f,
        Err(page) => return *page,
    };
    // Re-encoded: whatever was posted, the Location header stays valid ASCII.
    let authorize = canonical_query(field(&form, "authorize"));
    // Signing in for the account page rather than for an app: back there after.
    let to_account = field(&form, "next") == "account";
    let username = field(&form, "username").to_owned();
    let password = field(&form, "password").to_owned();
    let origin = state.request_meta(&req);
    let previous = session(&req, state.secure_cookies);
    let q = authorize.clone();
    let result = state
        .blocking(move |s| {
            let started = s.browser.login(&username, &password, &origin, &q);
            // A new sign-in replaces whatever session this browser had.
            if let (Ok(_), Some(old)) = (&started, previous) {
                let _ = s.browser.logout(&old);
            }
            started
        })
        .await;
    let secure = state.secure_cookies;
    match result {
        Ok(LoginStep::Session(session)) => {
            let to = after_login(to_account, &authorize);
            let cookies = signed_in_cookies(&state.services.browser, &session, secure);
            see_other(&to, cookies)
        }
        Ok(LoginStep::SecondStep(pending, methods)) => {
            let (token, set) = csrf(&req, &state.services.browser, secure);
            let pending = pages::cookie(
                pages::second_step_cookie(secure),
                pending.expose().to_owned(),
                secure,
            );
            let page = SecondStepPage {
                csrf: &token,
                code: methods.code,
                passkey: methods.passkey,
                authorize: &authorize,
                next: if to_account { "account" } else { "" },
                error: None,
            };
            let mut cookies: Vec<_> = set.into_iter().collect();
            cookies.push(pending);
            render_with_script(StatusCode::OK, &page, cookies)
        }
        Ok(LoginStep::Enrol(pending)) => {
            let value = pending.expose().to_owned();
            let cookie = pages::cookie(pages::second_step_cookie(secure), value.clone(), secure);
            let next = if to_account { "account" } else { "" };
            enrol_page(&req, &state, value, &authorize, next, None, vec![cookie]).await
        }
        Err(e @ (SignInError::Invalid | SignInError::Throttled)) => {
            tracing::info!(reason = %e, "sign-in refused");
            // One message whatever the reason: nothing about which part was wrong.
            let client_name = if to_account {
                "your account".to_owned()
            } else {
                client_name(&state, &authorize).await
            };
            let (token, set) = csrf(&req, &state.services.browser, secure);
            let page = LoginPage {
                client_name: &client_name,
                csrf: &token,
                authorize: &authorize,
                username: field(&form, "username"),
                error: Some("The username or password is incorrect, or there were too many attempts. Try again later."),
                next: if to_account { "account" } else { "" },
            };
            render_with_script(StatusCode::UNAUTHORIZED, &page, set.into_iter().collect())
        }
        Err(_) => unavailable(),
    }
}

/// Where a browser goes once signed in: the account page, or back to the authorization request.
fn after_login(to_account: bool, authorize: &str) -> String {
    if to_account {
        "/account".to_owned()
    } else {
        format!("/authorize?{}", after_sign_in(authorize))
    }
}

/// A sign-in completed by its second step (or its set-up): the session's cookies, the waiting
/// sign-in's cookie gone, and on to where the sign-in was for.
fn finished(state: &AppState, session: &Secret, to_account: bool, authorize: &str) -> HttpResponse {
    let secure = state.secure_cookies;
    let mut cookies = signed_in_cookies(&state.services.browser, session, secure);
    cookies.push(pages::removal(pages::second_step_cookie(secure), secure));
    see_other(&after_login(to_account, authorize), cookies)
}

/// `POST /login/second-step`: the code that completes a sign-in.
pub async fn second_step(
    req: HttpRequest,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> HttpResponse {
    let form = match checked_form(&req, &body, &state) {
        Ok(f) => f,
        Err(page) => return *page,
    };
    let secure = state.secure_cookies;
    let authorize = canonical_query(field(&form, "authorize"));
    let to_account = field(&form, "next") == "account";
    let pending = pending_sign_in(&req, secure);
    let code = field(&form, "code").to_owned();
    // A passkey's answer, from the page's script; else a code typed in.
    let ceremony = field(&form, "ceremony").to_owned();
    let credential = field(&form, "credential").to_owned();
    let origin = state.request_meta(&req);
    let previous = session(&req, secure);
    let p = pending.clone();
    let with_passkey = !credential.is_empty();
    let result = state
        .blocking(move |s| {
            let done = if !with_passkey {
                s.browser.second_step(&p, &code, &origin)
            } else {
                s.browser
                    .passkey_second_step(&p, &ceremony, &credential, &origin)
            };
            if let (Ok(Some(_)), Some(old)) = (&done, previous) {
                let _ = s.browser.logout(&old);
            }
            done
        })
        .await;
    let error = match result {
        Ok(Some(session)) => return finished(&state, &session, to_account, &authorize),
        Ok(None) => "This sign-in took too long. Go back and sign in again.",
        Err(e @ (SignInError::Invalid | SignInError::Throttled)) => {
            tracing::info!(reason = %e, "second step refused");
            if with_passkey {
                "That passkey was not accepted, or there were too many attempts. Try again later."
            } else {
                "That code is not right, or there were too many attempts. Try again later."
            }
        }
        Err(_) => return unavailable(),
    };
    let methods = match state
        .blocking(move |s| Ok::<_, OAuthError>(s.browser.second_methods(&pending)))
        .await
    {
        Ok(m) => m,
        Err(_) => return unavailable(),
    };
    let (token, set) = csrf(&req, &state.services.browser, secure);
    let page = SecondStepPage {
        csrf: &token,
        code: methods.code,
        passkey: methods.passkey,
        authorize: &authorize,
        next: if to_account { "account" } else { "" },
        error: Some(error),
    };
    render_with_script(StatusCode::UNAUTHORIZED, &page, set.into_iter().collect())
}

/// The page that sets up an authenticator app for the pending sign-in `pending`.
async fn enrol_page(
    req: &HttpRequest,
    state: &AppState,
    pending: String,
    authorize: &str,
    next: &str,
    error: Option<&str>,
    mut cookies: Vec<actix_web::cookie::Cookie<'static>>,
) -> HttpResponse {
    let secure = state.secure_cookies;
    let (username, app) = match state.blocking(move |s| s.browser.enrolment(&pending)).await {
        Ok(Some(found)) => found,
        Ok(None) => {
            return error_page(
                StatusCode::BAD_REQUEST,
                "This sign-in took too long. Go back and sign in again.",
            )
        }
        Err(_) => return unavailable(),
    };
    let (token, set) = csrf(req, &state.services.browser, secure);
    let page = EnrolPage {
        username: &username,
        qr_svg: &app.qr_svg,
        secret: &app.secret,
        csrf: &token,
        authorize,
        next,
        error,
    };
    cookies.extend(set);
    let status = if error.is_some() {
        StatusCode::UNAUTHORIZED
    } else {
        StatusCode::OK
    };
    render_with_script(status, &page, cookies)
}

/// `POST /login/enrol`: the first code of the authenticator app set up during a sign-in that
/// requires a second factor; completes the sign-in.
pub async fn enrol(req: HttpRequest, body: web::Bytes, state: web::Data<AppState>) -> HttpResponse {
    let form = match checked_form(&req, &body, &state) {
        Ok(f) => f,
        Err(page) => return *page,
    };
    let secure = state.secure_cookies;
    let authorize = canonical_query(field(&form, "authorize"));
    let next = if field(&form, "next") == "account" {
        "account"
    } else {
        ""
    };
    let pending = pending_sign_in(&req, secure);
    let code = field(&form, "code").to_owned();
    // A passkey made by the page's script; else the app's first code.
    let ceremony = field(&form, "ceremony").to_owned();
    let credential = field(&form, "credential").to_owned();
    let name = field(&form, "name").to_owned();
    let with_passkey = !credential.is_empty();
    let origin = state.request_meta(&req);
    let previous = session(&req, secure);
    let p = pending.clone();
    let result = state
        .blocking(move |s| {
            let done = if with_passkey {
                let answer = (ceremony.as_str(), credential.as_str(), name.as_str());
                s.browser.enrol_passkey(&p, answer, &origin)
            } else {
                s.browser.enrol(&p, &code, &origin)
            };
            if let (Ok(Some(_)), Some(old)) = (&done, previous) {
                let _ = s.browser.logout(&old);
            }
            done
        })
        .await;
    let error = match result {
        Ok(Some(session)) => return finished(&state, &session, next == "account", &authorize),
        Ok(None) => {
            return error_page(
                StatusCode::BAD_REQUEST,
                "This sign-in took too long. Go back and sign in again.",
            )
        }
        Err(e @ (SignInError::Invalid | SignInError::Throttled)) => {
            tracing::info!(reason = %e, "second factor set-up refused");
            if with_passkey {
                "That passkey was not accepted. Try again, or set up an authenticator app."
            } else {
                "That code is not right, or there were too many attempts. Try again later."
            }
        }
        Err(_) => return unavailable(),
    };
    enrol_page(
        &req,
        &state,
        pending,
        &authorize,
        next,
        Some(error),
        Vec::new(),
    )
    .await
}

/// The cookie of a sign-in waiting for its second step.
fn pending_sign_in(req: &HttpRequest, secure: bool) -> String {
    req.cookie(pages::second_step_cookie(secure))
        .map(|c| c.value().to_owned())
        .unwrap_or_default()
}

/// `POST /webauthn/options` (`purpose` = `sign-in`, `second-step` or `register`, with the
/// page's CSRF token): begins a passkey ceremony for the page's script, as JSON: `ceremony`
/// (its id, posted back with the answer) and `options` (`publicKey` for
/// `navigator.credentials`, binary fields in base64url).
pub async fn webauthn_options(
    req: HttpRequest,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> HttpResponse {
    let json_error = |status: StatusCode, message: &str| {
        HttpResponse::build(status)
            .insert_header(("Cache-Control", "no-store"))
            .json(serde_json::json!({ "error": message }))
    };
    let form = match checked_form(&req, &body, &state) {
        Ok(f) => f,
        Err(_) => {
            return json_error(
                StatusCode::FORBIDDEN,
                "This page has expired. Reload it and try again.",
            )
        }
    };
    let Some(purpose) = Asked::parse(field(&form, "purpose")) else {
        return json_error(StatusCode::BAD_REQUEST, "Unknown purpose.");
    };
    let secure = state.secure_cookies;
    let cookie = session(&req, secure);
    let pending = req
        .cookie(pages::second_step_cookie(secure))
        .map(|c| c.value().to_owned());
    let begun = state
        .blocking(move |s| {
            Ok::<_, OAuthError>(s.browser.passkey_options(
                purpose,
                cookie.as_deref(),
                pending.as_deref(),
            ))
        })
        .await;
    match begun {
        Ok(Ok(begun)) => HttpResponse::Ok()
            .insert_header(("Cache-Control", "no-store"))
            .json(serde_json::json!({
                "ceremony": begun.ceremony,
                "options": begun.options,
            })),
        Ok(Err(OptionsError::SignedOut)) => json_error(
            StatusCode::BAD_REQUEST,
            "This sign-in has expired. Sign in again.",
        ),
        Ok(Err(OptionsError::NoPasskey)) => json_error(
            StatusCode::BAD_REQUEST,
            "No passkey is registered for this account.",
        ),
        _ => json_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "The service is busy or unavailable. Try again in a moment.",
        ),
    }
}

/// `POST /login/passkey`: a sign-in with a passkey alone.
pub async fn login_passkey(
    req: HttpRequest,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> HttpResponse {
    let form = match checked_form(&req, &body, &state) {
        Ok(f) => f,
        Err(page) => return *page,
    };
    let authorize = canonical_query(field(&form, "authorize"));
    let to_account = field(&form, "next") == "account";
    let ceremony = field(&form, "ceremony").to_owned();
    let credential = field(&form, "credential").to_owned();
    let origin = state.request_meta(&req);
    let secure = state.secure_cookies;
    let previous = session(&req, secure);
    let result = state
        .blocking(move |s| {
            let done = s.browser.passkey_sign_in(&ceremony, &credential, &origin);
            if let (Ok(_), Some(old)) = (&done, previous) {
                let _ = s.browser.logout(&old);
            }
            done
        })
        .await;
    match result {
        Ok(session) => {
            let cookies = signed_in_cookies(&state.services.browser, &session, secure);
            see_other(&after_login(to_account, &authorize), cookies)
        }
        Err(SignInError::Invalid | SignInError::Throttled) => {
            let client_name = if to_account {
                "your account".to_owned()
            } else {
                client_name(&state, &authorize).await
            };
            let (token, set) = csrf(&req, &state.services.browser, secure);
            let page = LoginPage {
                client_name: &client_name,
                csrf: &token,
                authorize: &authorize,
                username: "",
                error: Some(
                    "That passkey was not accepted. Try again, or sign in with your password.",
                ),
                next: if to_account { "account" } else { "" },
            };
            render_with_script(StatusCode::UNAUTHORIZED, &page, set.into_iter().collect())
        }
        Err(_) => unavailable(),
    }
}

/// The script of the passkey forms, compiled in.
pub async fn webauthn_script() -> HttpResponse {
    static_file(
        "text/javascript; charset=utf-8",
        include_str!("../../../static/webauthn.js"),
    )
}

/// The name of the client an authorize query string names, for the login page.
async fn client_name(state: &AppState, authorize: &str) -> String {
    let authorize = authorize.to_owned();
    match state
        .blocking(move |s| s.browser.authorize(&authorize, None))
        .await
    {
        Ok(Step::Login { client_name, .. }) => client_name,
        _ => "the application".to_owned(),
    }
}

/// `POST /consent`.
pub async fn consent(
    req: HttpRequest,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> HttpResponse {
    let form = match checked_form(&req, &body, &state) {
        Ok(f) => f,
        Err(page) => return *page,
    };
    let authorize = field(&form, "authorize").to_owned();
    let cookie = csrf_cookie_value(&req, state.secure_cookies);
    if !state
        .services
        .browser
        .consent_token_ok(cookie.as_deref(), &authorize, form.get("shown"))
    {
        // Valid for this browser, but not for the request being approved: refused, so that
        // nothing is granted that its page did not show.
        return error_page(
            StatusCode::FORBIDDEN,
            "This form does not match the request it was shown for. Go back, reload the page and try again.",
        );
    }
    let approve = match form.get("decision") {
        Some("approve") => true,
        Some("deny") => false,
        _ => return error_page(StatusCode::BAD_REQUEST, "Choose Allow or Deny."),
    };
    let cookie = session(&req, state.secure_cookies);
    let q = authorize.clone();
    match state
        .blocking(move |s| s.browser.consent(&q, cookie.as_deref(), approve))
        .await
    {
        Ok(step) => show(&req, &state, step, &authorize),
        Err(_) => unavailable(),
    }
}

/// `POST /logout`: the pages' own "Sign out".
pub async fn logout(
    req: HttpRequest,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> HttpResponse {
    if let Err(page) = checked_form(&req, &body, &state) {
        return *page;
    }
    let secure = state.secure_cookies;
    if let Some(cookie) = session(&req, secure) {
        let meta = state.request_meta(&req);
        if state
            .blocking(move |s| s.browser.sign_out(&cookie, &meta))
            .await
            .is_err()
        {
            return unavailable();
        }
    }
    render(
        StatusCode::OK,
        &SignedOutPage,
        vec![pages::removal(pages::session_cookie(secure), secure)],
    )
}

/// `GET|POST /end_session` (OpenID Connect RP-Initiated Logout 1.0). A POST that answers the
/// confirmation page carries its CSRF token, the original request and the decision; any other
/// POST is the logout request itself, form-encoded.
pub async fn end_session(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let query = req.query_string().to_owned();
    end_session_with(req, state, query, false).await
}

pub async fn end_session_post(
    req: HttpRequest,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> HttpResponse {
    // A body naming `decision` answers the confirmation page, whatever else it holds.
    let answered = url::form_urlencoded::parse(&body).any(|(k, _)| k == "decision");
    if !answered {
        let query = canonical_query(&String::from_utf8_lossy(&body));
        return end_session_with(req, state, query, false).await;
    }
    let form = match checked_form(&req, &body, &state) {
        Ok(f) => f,
        Err(page) => return *page,
    };
    let request = canonical_query(field(&form, "request"));
    match form.get("decision") {
        Some("sign_out") => end_session_with(req, state, request, true).await,
        Some("stay") => render(StatusCode::OK, &StillSignedInPage, Vec::new()),
        _ => error_page(
            StatusCode::BAD_REQUEST,
            "Choose Sign out or Stay signed in.",
        ),
    }
}

async fn end_session_with(
    req: HttpRequest,
    state: web::Data<AppState>,
    query: String,
    confirmed: bool,
) -> HttpResponse {
    let secure = state.secure_cookies;
    let cookie = session(&req, secure);
    let meta = state.request_meta(&req);
    let q = query.clone();
    let step = state
        .blocking(move |s| {
            s.browser
                .end_session(&q, cookie.as_deref(), confirmed, &meta)
        })
        .await;
    let removal = || vec![pages::removal(pages::session_cookie(secure), secure)];
    match step {
        Ok(LogoutStep::Done { redirect: Some(to) }) => see_other(&to, removal()),
        Ok(LogoutStep::Done { redirect: None }) => {
            render(StatusCode::OK, &SignedOutPage, removal())
        }
        Ok(LogoutStep::Page(message)) => error_page(StatusCode::BAD_REQUEST, &message),
        Ok(LogoutStep::Confirm {
            client_name,
            username,
        }) => {
            let (token, set) = csrf(&req, &state.services.browser, secure);
            let page = EndSessionPage {
                client_name: client_name.as_deref(),
                username: &username,
                csrf: &token,
                request: &query,
            };
            render(StatusCode::OK, &page, set.into_iter().collect())
        }
        Err(_) => unavailable(),
    }
}

/// The stylesheet of the pages, compiled in.
pub async fn stylesheet() -> HttpResponse {
    static_file(
        "text/css; charset=utf-8",
        include_str!("../../../static/tessera.css"),
    )
}

fn static_file(content_type: &'static str, body: &'static str) -> HttpResponse {
    HttpResponse::Ok()
        .content_type(content_type)
        .insert_header(("Cache-Control", "public, max-age=3600"))
        .insert_header(("X-Content-Type-Options", "nosniff"))
        .body(body)
}
