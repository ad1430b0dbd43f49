//! Tessera's own HTML pages (askama): headers every page carries, cookies, CSRF.

use actix_web::cookie::{Cookie, SameSite};
use actix_web::http::header;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, HttpResponseBuilder};
use askama::Template;

use crate::domain::browser;
use crate::grant::BrowserFlow;

/// Cookie names; on https with the `__Host-` prefix, which browsers accept only from this host,
/// with `Secure` and `Path=/`, so a sibling subdomain cannot plant them.
pub fn session_cookie(secure: bool) -> &'static str {
    if secure {
        "__Host-tessera_session"
    } else {
        "tessera_session"
    }
}

/// The cookie of a sign-in waiting for its second step.
pub fn second_step_cookie(secure: bool) -> &'static str {
    if secure {
        "__Host-tessera_second_step"
    } else {
        "tessera_second_step"
    }
}

pub fn csrf_cookie(secure: bool) -> &'static str {
    if secure {
        "__Host-tessera_csrf"
    } else {
        "tessera_csrf"
    }
}

/// No framing, no script, no referrer, no caching (README, "Browser sign-in").
const CSP: &str =
    "default-src 'none'; style-src 'self'; img-src 'self'; frame-ancestors 'none'; base-uri 'none'";

/// The pages with a passkey form: the same, and Tessera's own script file, which may call
/// Tessera only (`/webauthn/options`). Still no inline script.
const CSP_WITH_SCRIPT: &str = "default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'self'; img-src 'self'; frame-ancestors 'none'; base-uri 'none'";

pub fn page_headers(builder: &mut HttpResponseBuilder) -> &mut HttpResponseBuilder {
    page_headers_with(builder, CSP)
}

fn page_headers_with<'b>(
    builder: &'b mut HttpResponseBuilder,
    csp: &'static str,
) -> &'b mut HttpResponseBuilder {
    builder
        .insert_header((header::CONTENT_SECURITY_POLICY, csp))
        .insert_header((header::X_FRAME_OPTIONS, "DENY"))
        .insert_header((header::REFERRER_POLICY, "no-referrer"))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header((header::CACHE_CONTROL, "no-store"))
}

#[derive(Template)]
#[template(path = "login.html")]
pub struct LoginPage<'a> {
    pub client_name: &'a str,
    pub csrf: &'a str,
    pub authorize: &'a str,
    pub username: &'a str,
    pub error: Option<&'a str>,
    /// `account`: back to the account page after signing in, not to an authorization request.
    pub next: &'a str,
}

#[derive(Template)]
#[template(path = "consent.html")]
pub struct ConsentPage<'a> {
    pub client_name: &'a str,
    pub username: &'a str,
    pub scopes: Vec<(String, String)>,
    /// The resource servers (RFC 8707) the access is for; empty: not named.
    pub resources: &'a [String],
    pub csrf: &'a str,
    /// Binds the decision to this page's request.
    pub shown: &'a str,
    pub authorize: &'a str,
}

#[derive(Template)]
#[template(path = "error.html")]
pub struct ErrorPage<'a> {
    pub message: &'a str,
}

#[derive(Template)]
#[template(path = "signed_out.html")]
pub struct SignedOutPage;

#[derive(Template)]
#[template(path = "still_signed_in.html")]
pub struct StillSignedInPage;

/// "Sign out?": an app asked to sign the user out without showing it is theirs.
#[derive(Template)]
#[template(path = "end_session.html")]
pub struct EndSessionPage<'a> {
    pub client_name: Option<&'a str>,
    pub username: &'a str,
    pub csrf: &'a str,
    /// The logout request, carried by the form.
    pub request: &'a str,
}

/// Renders `page` with the page headers, and sets `cookies`.
pub fn render(
    status: StatusCode,
    page: &impl Template,
    cookies: Vec<Cookie<'static>>,
) -> HttpResponse {
    render_under(CSP, status, page, cookies)
}

/// [`render`], for a page that loads `/static/webauthn.js`.
pub fn render_with_script(
    status: StatusCode,
    page: &impl Template,
    cookies: Vec<Cookie<'static>>,
) -> HttpResponse {
    render_under(CSP_WITH_SCRIPT, status, page, cookies)
}

fn render_under(
    csp: &'static str,
    status: StatusCode,
    page: &impl Template,
    cookies: Vec<Cookie<'static>>,
) -> HttpResponse {
    let mut builder = HttpResponse::build(status);
    page_headers_with(&mut builder, csp).content_type("text/html; charset=utf-8");
    for c in cookies {
        builder.cookie(c);
    }
    match page.render() {
        Ok(html) => builder.body(html),
        Err(e) => {
            tracing::error!(error = %e, "rendering a page failed");
            HttpResponse::InternalServerError().finish()
        }
    }
}

pub fn error_page(status: StatusCode, message: &str) -> HttpResponse {
    render(status, &ErrorPage { message }, Vec::new())
}

/// A cookie with Tessera's attributes: HttpOnly, SameSite=Lax, Secure on https.
pub fn cookie(name: &'static str, value: String, secure: bool) -> Cookie<'static> {
    Cookie::build(name, value)
        .path("/")
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(secure)
        .finish()
}

pub fn removal(name: &'static str, secure: bool) -> Cookie<'static> {
    let mut c = cookie(name, String::new(), secure);
    c.make_removal();
    c
}

/// A new CSRF cookie and its token (at sign-in: a planted cookie does not survive it).
pub fn fresh_csrf(service: &BrowserFlow, secure: bool) -> (String, Cookie<'static>) {
    let value = browser::new_csrf_cookie();
    let token = service.csrf_token(&value);
    (token, cookie(csrf_cookie(secure), value, secure))
}

/// The cookies of a browser that just signed in: the new session, and a new CSRF cookie (one
/// planted before the sign-in does not outlive it).
pub fn signed_in_cookies(
    service: &BrowserFlow,
    session: &crate::domain::secret::Secret,
    secure: bool,
) -> Vec<Cookie<'static>> {
    let (_, csrf_cookie) = fresh_csrf(service, secure);
    let session = cookie(session_cookie(secure), session.expose().to_owned(), secure);
    vec![session, csrf_cookie]
}

/// The CSRF cookie of the request, or a new one to set; and the token forms must carry.
pub fn csrf(
    req: &HttpRequest,
    service: &BrowserFlow,
    secure: bool,
) -> (String, Option<Cookie<'static>>) {
    match req
        .cookie(csrf_cookie(secure))
        .map(|c| c.value().to_owned())
        .filter(|v| !v.is_empty())
    {
        Some(value) => (service.csrf_token(&value), None),
        None => {
            let (token, set) = fresh_csrf(service, secure);
            (token, Some(set))
        }
    }
}

/// A 303 to `location`, uncacheable.
pub fn see_other(location: &str, cookies: Vec<Cookie<'static>>) -> HttpResponse {
    let mut builder = HttpResponse::SeeOther();
    builder
        .insert_header((header::LOCATION, location))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((header::REFERRER_POLICY, "no-referrer"));
    for c in cookies {
        builder.cookie(c);
    }
    builder.finish()
}

/// What a scope lets the client do, in plain words.
pub fn describe_scope(scope: &str) -> String {
    match scope {
        "openid" => "Confirm who you are".to_owned(),
        "profile" => "See your username and profile".to_owned(),
        "email" => "See your email address".to_owned(),
        "offline_access" => "Stay signed in when you are not using it".to_owned(),
        "read" => "Read your data".to_owned(),
        "write" => "Change your data".to_owned(),
        other => match other.split_once(':') {
            Some((what, "read")) => format!("Read your {what}"),
            Some((what, "write")) => format!("Change your {what}"),
            _ => format!("Use the “{other}” permission"),
        },
    }
}

/// What every account page shows around its section.
pub struct AccountFrame<'a> {
    pub username: &'a str,
    /// The section's name, as its tab says it.
    pub heading: &'static str,
    pub tabs: &'static [(&'static str, &'static str)],
    /// What was just done, in words.
    pub notice: Option<&'static str>,
    pub csrf: &'a str,
}

/// The account page's sections: name and address.
pub const ACCOUNT_TABS: &[(&str, &str)] = &[
    ("Devices", "/account"),
    ("Apps with access", "/account/apps"),
    ("Security activity", "/account/activity"),
    ("Password", "/account/password"),
    ("Sign-in methods", "/account/sign-in-methods"),
];

/// A time on the pages: `2026-12-02 14:30 UTC`, and its machine-readable form.
pub fn shown_time(at: crate::value::UnixMs) -> (String, String) {
    let ms = u64::try_from(at.millis()).unwrap_or_default();
    let iso = humantime::format_rfc3339_seconds(
        std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms),
    )
    .to_string();
    (format!("{} {} UTC", &iso[..10], &iso[11..16]), iso)
}

pub struct DeviceRow {
    pub id: String,
    pub app: String,
    pub device: String,
    pub ip: Option<String>,
    pub signed_in: String,
    pub signed_in_iso: String,
    pub last_used: String,
    pub last_used_iso: String,
    pub this_browser: bool,
}

#[derive(Template)]
#[template(path = "account_devices.html")]
pub struct AccountDevicesPage<'a> {
    pub frame: AccountFrame<'a>,
    pub devices: Vec<DeviceRow>,
    /// How many are not this browser's.
    pub others: usize,
}

pub struct AppRow {
    pub id: String,
    pub name: String,
    pub granted: String,
    pub granted_iso: String,
    /// What it may do, in words.
    pub scopes: Vec<String>,
}

#[derive(Template)]
#[template(path = "account_apps.html")]
pub struct AccountAppsPage<'a> {
    pub frame: AccountFrame<'a>,
    pub apps: Vec<AppRow>,
}

pub struct EventRow {
    pub what: String,
    pub at: String,
    pub at_iso: String,
    pub ip: Option<String>,
    pub alarming: bool,
}

#[derive(Template)]
#[template(path = "account_activity.html")]
pub struct AccountActivityPage<'a> {
    pub frame: AccountFrame<'a>,
    pub events: Vec<EventRow>,
}

#[derive(Template)]
#[template(path = "account_password.html")]
pub struct AccountPasswordPage<'a> {
    pub frame: AccountFrame<'a>,
    pub error: Option<&'a str>,
}

/// "Sign out this device?": the form that does it, and the way back.
#[derive(Template)]
#[template(path = "account_confirm.html")]
pub struct AccountConfirmPage<'a> {
    pub frame: AccountFrame<'a>,
    pub question: String,
    pub action: &'static str,
    pub fields: Vec<(&'static str, String)>,
    pub confirm: &'static str,
    pub back: &'static str,
}

#[derive(Template)]
#[template(path = "account_methods.html")]
pub struct AccountMethodsPage<'a> {
    pub frame: AccountFrame<'a>,
    /// When the authenticator app was set up, and last used (shown, machine-readable).
    pub app_since: Option<(String, String)>,
    pub app_used: Option<(String, String)>,
    pub codes_left: i64,
    pub passkeys: Vec<PasskeyRow>,
    pub error: Option<&'a str>,
}

/// A passkey on the sign-in methods page: its name, when it was added and last used.
pub struct PasskeyRow {
    pub id: String,
    pub name: String,
    pub added: (String, String),
    pub used: Option<(String, String)>,
}

#[derive(Template)]
#[template(path = "account_app_setup.html")]
pub struct AccountAppSetupPage<'a> {
    pub frame: AccountFrame<'a>,
    /// Made by the `qrcode` crate from the otpauth:// URI: markup of our own, not the user's.
    pub qr_svg: &'a str,
    pub secret: &'a str,
    pub error: Option<&'a str>,
}

#[derive(Template)]
#[template(path = "account_recovery_codes.html")]
pub struct AccountRecoveryCodesPage<'a> {
    pub frame: AccountFrame<'a>,
    pub codes: &'a [String],
}

/// A sign-in that requires a second factor, for a user without one: an authenticator app set
/// up before going on.
#[derive(Template)]
#[template(path = "enrol.html")]
pub struct EnrolPage<'a> {
    pub username: &'a str,
    pub qr_svg: &'a str,
    pub secret: &'a str,
    pub csrf: &'a str,
    pub authorize: &'a str,
    pub next: &'a str,
    pub error: Option<&'a str>,
}

/// The second step of a sign-in: a code from the authenticator app, or a recovery code.
#[derive(Template)]
#[template(path = "second_step.html")]
pub struct SecondStepPage<'a> {
    pub csrf: &'a str,
    /// A code field (the user has an app or recovery codes), a passkey button (a passkey).
    pub code: bool,
    pub passkey: bool,
    pub authorize: &'a str,
    pub next: &'a str,
    pub error: Option<&'a str>,
}
