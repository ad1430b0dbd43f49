//! `/account`: the user's own page. Devices, apps with access, security activity, password.
//! Without a session, the login page, which comes back here. Every change is a CSRF-checked
//! POST, and signing out or removing access is confirmed on a page of its own first.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};

use super::authorize::{checked_form, session, unavailable};
use crate::domain::account::{Activity, App, Device};
use crate::domain::second_factor::Factors;
use crate::grant::account::{
    AccountError, AccountView, Action, MethodChange, MethodChanged, Section, Shown, Subject,
};
use crate::grant::Params;
use crate::http::pages::{
    csrf, describe_scope, error_page, render, render_with_script, see_other, shown_time,
    signed_in_cookies, AccountActivityPage, AccountAppSetupPage, AccountAppsPage,
    AccountConfirmPage, AccountDevicesPage, AccountFrame, AccountMethodsPage, AccountPasswordPage,
    AccountRecoveryCodesPage, AppRow, DeviceRow, EventRow, LoginPage, PasskeyRow, ACCOUNT_TABS,
};
use crate::http::AppState;

/// What was just done, named in the query of the page it returns to (`?done=…`): fixed
/// words, never anything from the request.
fn notice(req: &HttpRequest) -> Option<&'static str> {
    let done = url::form_urlencoded::parse(req.query_string().as_bytes())
        .find(|(k, _)| k == "done")
        .map(|(_, v)| v.into_owned());
    Some(match done.as_deref()? {
        "signed_out" => "The device was signed out. Its apps stopped working there.",
        "signed_out_others" => "Every other device was signed out.",
        "removed" => "The app's access was removed, and it was signed out everywhere.",
        "password" => "Your password was changed. Every other browser and app was signed out.",
        "nothing" => "There was nothing to do: it had already ended.",
        "app_added" => {
            "Your authenticator app is set up. Keep recovery codes for when you cannot use it."
        }
        "app_removed" => "The authenticator app was removed.",
        "passkey_added" => {
            "Your passkey was added. It signs you in on its own, or after your password."
        }
        "passkey_removed" => "The passkey was removed.",
        _ => return None,
    })
}

/// The login page, coming back to the account page.
fn login(req: &HttpRequest, state: &AppState) -> HttpResponse {
    let (token, set) = csrf(req, &state.services.browser, state.secure_cookies);
    let page = LoginPage {
        client_name: "your account",
        csrf: &token,
        authorize: "",
        username: "",
        error: None,
        next: "account",
    };
    render_with_script(StatusCode::OK, &page, set.into_iter().collect())
}

async fn view(
    req: &HttpRequest,
    state: &web::Data<AppState>,
    section: Section,
) -> Result<Option<AccountView>, HttpResponse> {
    let cookie = session(req, state.secure_cookies);
    state
        .blocking(move |s| s.browser.account(cookie.as_deref(), section))
        .await
        .map_err(|_| unavailable())
}

fn heading(section: Section) -> &'static str {
    match section {
        Section::Devices => ACCOUNT_TABS[0].0,
        Section::Apps => ACCOUNT_TABS[1].0,
        Section::Activity => ACCOUNT_TABS[2].0,
        Section::Password => ACCOUNT_TABS[3].0,
        Section::SignInMethods => ACCOUNT_TABS[4].0,
    }
}

/// `GET /account`, `/account/apps`, `/account/activity`, `/account/password`.
async fn show(req: HttpRequest, state: web::Data<AppState>, section: Section) -> HttpResponse {
    let view = match view(&req, &state, section).await {
        Ok(Some(view)) => view,
        Ok(None) => return login(&req, &state),
        Err(page) => return page,
    };
    let mut token = String::new();
    let (mut frame, cookies) = frame_for(&req, &state, &view.username, section, &mut token);
    frame.notice = notice(&req);
    match view.shown {
        Shown::Devices(devices) => {
            let others = devices.iter().filter(|d| !d.this_browser).count();
            let devices = devices.into_iter().map(device_row).collect();
            let page = AccountDevicesPage {
                frame,
                devices,
                others,
            };
            render(StatusCode::OK, &page, cookies)
        }
        Shown::Apps(apps) => {
            let apps = apps.into_iter().map(app_row).collect();
            render(StatusCode::OK, &AccountAppsPage { frame, apps }, cookies)
        }
        Shown::Activity(events) => {
            let events = events.into_iter().map(event_row).collect();
            render(
                StatusCode::OK,
                &AccountActivityPage { frame, events },
                cookies,
            )
        }
        Shown::Password => {
            let page = AccountPasswordPage { frame, error: None };
            render(StatusCode::OK, &page, cookies)
        }
        Shown::SignInMethods(factors) => render_with_script(
            StatusCode::OK,
            &methods_page(frame, &factors, None),
            cookies,
        ),
    }
}

/// The sign-in methods page again, saying what was wrong with the change asked for.
async fn methods_again(
    req: &HttpRequest,
    state: &web::Data<AppState>,
    error: &str,
) -> HttpResponse {
    let view = match view(req, state, Section::SignInMethods).await {
        Ok(Some(view)) => view,
        Ok(None) => return login(req, state),
        Err(page) => return page,
    };
    let Shown::SignInMethods(factors) = &view.shown else {
        return unavailable();
    };
    let mut token = String::new();
    let (frame, cookies) = frame_for(
        req,
        state,
        &view.username,
        Section::SignInMethods,
        &mut token,
    );
    let page = methods_page(frame, factors, Some(error));
    render_with_script(StatusCode::BAD_REQUEST, &page, cookies)
}

fn methods_page<'a>(
    frame: AccountFrame<'a>,
    factors: &Factors,
    error: Option<&'a str>,
) -> AccountMethodsPage<'a> {
    AccountMethodsPage {
        frame,
        app_since: factors.totp.map(|(since, _)| shown_time(since)),
        app_used: factors.totp.and_then(|(_, used)| used.map(shown_time)),
        passkeys: factors
            .passkeys
            .iter()
            .map(|p| PasskeyRow {
                id: p.id.clone(),
                name: p.name.clone(),
                added: shown_time(p.created_at),
                used: p.last_used_at.map(shown_time),
            })
            .collect(),
        codes_left: factors.recovery_codes_left,
        error,
    }
}

fn device_row(d: Device) -> DeviceRow {
    let (signed_in, signed_in_iso) = shown_time(d.signed_in_at);
    let (last_used, last_used_iso) = shown_time(d.last_used_at);
    DeviceRow {
        id: d.family_id.as_str().to_owned(),
        app: d.app,
        device: d.device,
        ip: d.ip,
        signed_in,
        signed_in_iso,
        last_used,
        last_used_iso,
        this_browser: d.this_browser,
    }
}

fn app_row(a: App) -> AppRow {
    let (granted, granted_iso) = shown_time(a.granted_at);
    AppRow {
        id: a.client_id.as_str().to_owned(),
        name: a.name,
        granted,
        granted_iso,
        scopes: a.scopes.iter().map(|s| describe_scope(s)).collect(),
    }
}

fn event_row(e: Activity) -> EventRow {
    let (at, at_iso) = shown_time(e.at);
    EventRow {
        what: e.what,
        at,
        at_iso,
        ip: e.ip,
        alarming: e.alarming,
    }
}

pub async fn devices(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    show(req, state, Section::Devices).await
}

pub async fn apps(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    show(req, state, Section::Apps).await
}

pub async fn activity(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    show(req, state, Section::Activity).await
}

pub async fn password(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    show(req, state, Section::Password).await
}

pub async fn sign_in_methods(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    show(req, state, Section::SignInMethods).await
}

/// The frame of a section for `username`, with a fresh CSRF token and its cookie, if new.
fn frame_for<'a>(
    req: &HttpRequest,
    state: &AppState,
    username: &'a str,
    section: Section,
    token: &'a mut String,
) -> (AccountFrame<'a>, Vec<actix_web::cookie::Cookie<'static>>) {
    let (t, set) = csrf(req, &state.services.browser, state.secure_cookies);
    *token = t;
    let frame = AccountFrame {
        username,
        heading: heading(section),
        tabs: ACCOUNT_TABS,
        notice: None,
        csrf: token,
    };
    (frame, set.into_iter().collect())
}

/// `POST /account/sign-in-methods`: set up or remove the authenticator app, or get new
/// recovery codes, each with the current password again.
pub async fn change_method(
    req: HttpRequest,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> HttpResponse {
    let form = match checked_form(&req, &body, &state) {
        Ok(f) => f,
        Err(page) => return *page,
    };
    let change = match form.get("change") {
        Some("set_up_app") => MethodChange::SetUpApp,
        Some("remove_app") => MethodChange::RemoveApp,
        Some("recovery_codes") => MethodChange::NewRecoveryCodes,
        Some("remove_passkey") => match form.get("passkey") {
            Some(id) if !id.is_empty() => MethodChange::RemovePasskey(id.to_owned()),
            _ => return error_page(StatusCode::BAD_REQUEST, "Choose a passkey."),
        },
        _ => return error_page(StatusCode::BAD_REQUEST, "Choose what to change."),
    };
    let current = form.get("current").unwrap_or_default().to_owned();
    let cookie = session(&req, state.secure_cookies);
    let meta = state.request_meta(&req);
    let changed = state
        .blocking(move |s| {
            s.browser
                .change_method(cookie.as_deref(), &current, change, &meta)
        })
        .await;
    let error = match changed {
        Ok(MethodChanged::SettingUp) => return see_other("/account/authenticator", Vec::new()),
        Ok(MethodChanged::Removed) => {
            return see_other("/account/sign-in-methods?done=app_removed", Vec::new())
        }
        Ok(MethodChanged::PasskeyRemoved) => {
            return see_other("/account/sign-in-methods?done=passkey_removed", Vec::new())
        }
        Ok(MethodChanged::RecoveryCodes(codes)) => {
            let Ok(Some(view)) = view(&req, &state, Section::SignInMethods).await else {
                return unavailable();
            };
            let mut token = String::new();
            let (frame, cookies) = frame_for(
                &req,
                &state,
                &view.username,
                Section::SignInMethods,
                &mut token,
            );
            let page = AccountRecoveryCodesPage {
                frame,
                codes: &codes,
            };
            return render(StatusCode::OK, &page, cookies);
        }
        Err(e) => match refusal(&req, &state, e) {
            Ok(text) => text,
            Err(page) => return *page,
        },
    };
    methods_again(&req, &state, &error).await
}

/// `POST /account/passkeys`: the passkey the page's script had the browser make, named, with
/// the current password (or an app's code) again.
pub async fn add_passkey(
    req: HttpRequest,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> HttpResponse {
    let form = match checked_form(&req, &body, &state) {
        Ok(f) => f,
        Err(page) => return *page,
    };
    let field = |name| form.get(name).unwrap_or_default().to_owned();
    let (current, ceremony, credential, name) = (
        field("current"),
        field("ceremony"),
        field("credential"),
        field("name"),
    );
    let cookie = session(&req, state.secure_cookies);
    let meta = state.request_meta(&req);
    let added = state
        .blocking(move |s| {
            s.browser.add_passkey(
                cookie.as_deref(),
                &current,
                (&ceremony, &credential, &name),
                &meta,
            )
        })
        .await;
    let error = match added {
        Ok(_) => return see_other("/account/sign-in-methods?done=passkey_added", Vec::new()),
        Err(e) => match refusal(&req, &state, e) {
            Ok(text) => text,
            Err(page) => return *page,
        },
    };
    methods_again(&req, &state, &error).await
}

/// `GET /account/authenticator`: the set-up under way (the QR code, the key as text, the
/// form for the first code).
pub async fn app_set_up(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    app_set_up_page(&req, &state, None).await
}

async fn app_set_up_page(
    req: &HttpRequest,
    state: &web::Data<AppState>,
    error: Option<&str>,
) -> HttpResponse {
    let cookie = session(req, state.secure_cookies);
    let pending = state
        .blocking(move |s| s.browser.app_set_up(cookie.as_deref()))
        .await;
    let (username, setup) = match pending {
        Ok(Some(p)) => p,
        Ok(None) => return see_other("/account/sign-in-methods", Vec::new()),
        Err(AccountError::SignedOut) => return login(req, state),
        Err(_) => return unavailable(),
    };
    let mut token = String::new();
    let (frame, cookies) = frame_for(req, state, &username, Section::SignInMethods, &mut token);
    let page = AccountAppSetupPage {
        frame,
        qr_svg: &setup.qr_svg,
        secret: &setup.secret,
        error,
    };
    let status = if error.is_some() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    render(status, &page, cookies)
}

/// `POST /account/authenticator`: the first code from the app finishes the set-up.
pub async fn confirm_app(
    req: HttpRequest,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> HttpResponse {
    let form = match checked_form(&req, &body, &state) {
        Ok(f) => f,
        Err(page) => return *page,
    };
    let code = form.get("code").unwrap_or_default().to_owned();
    let cookie = session(&req, state.secure_cookies);
    let meta = state.request_meta(&req);
    let confirmed = state
        .blocking(move |s| s.browser.confirm_app(cookie.as_deref(), &code, &meta))
        .await;
    match confirmed {
        Ok(true) => see_other("/account/sign-in-methods?done=app_added", Vec::new()),
        Ok(false) => {
            let error = "That code is not the one the app shows now. Check the app and try again.";
            app_set_up_page(&req, &state, Some(error)).await
        }
        Err(AccountError::SignedOut) => login(&req, &state),
        Err(_) => unavailable(),
    }
}

/// The action a query or form names: `device=ID`, `others=1` or `app=ID`.
fn action(params: &Params, remove: bool) -> Option<Action> {
    let value = |name| params.get(name).filter(|v| !v.is_empty() && v.len() <= 64);
    if remove {
        return value("app").map(|id| Action::RemoveAccess(id.into()));
    }
    match (value("device"), value("others")) {
        (Some(id), None) => Some(Action::SignOut(id.into())),
        (None, Some("1")) => Some(Action::SignOutOthers),
        _ => None,
    }
}

/// `GET /account/sign-out` and `GET /account/remove-access`: the confirmation page.
async fn confirm(req: HttpRequest, state: web::Data<AppState>, remove: bool) -> HttpResponse {
    let params = Params::parse(req.query_string().as_bytes()).unwrap_or_default();
    let Some(action) = action(&params, remove) else {
        return see_other(
            if remove { "/account/apps" } else { "/account" },
            Vec::new(),
        );
    };
    let cookie = session(&req, state.secure_cookies);
    let asked = action.clone();
    let subject = state
        .blocking(move |s| s.browser.account_subject(cookie.as_deref(), &asked))
        .await;
    let (section, back) = if remove {
        (Section::Apps, "/account/apps")
    } else {
        (Section::Devices, "/account")
    };
    let (username, subject) = match subject {
        Ok(Some((username, Some(subject)))) => (username, subject),
        // Not the user's, or gone: back to the list, which shows what there is.
        Ok(Some((_, None))) => return see_other(&format!("{back}?done=nothing"), Vec::new()),
        Ok(None) => return login(&req, &state),
        Err(_) => return unavailable(),
    };
    let (question, fields, confirm, action) = match (&subject, &action) {
        (Subject::Device(d), Action::SignOut(id)) => (
            format!(
                "Sign out {} on {}? Its tokens stop working at once; to use it again there, you sign in again.",
                d.app, d.device
            ),
            vec![("device", id.as_str().to_owned())],
            "Sign out",
            "/account/sign-out",
        ),
        (Subject::OtherDevices(n), _) => (
            format!(
                "Sign out every other device ({n})? Only this browser stays signed in."
            ),
            vec![("others", "1".to_owned())],
            "Sign out everywhere else",
            "/account/sign-out",
        ),
        (Subject::App(a), Action::RemoveAccess(id)) => (
            format!(
                "Remove the access of {}? It is signed out everywhere, and asks you again next time.",
                a.name
            ),
            vec![("app", id.as_str().to_owned())],
            "Remove access",
            "/account/remove-access",
        ),
        _ => return unavailable(),
    };
    let mut token = String::new();
    let (frame, cookies) = frame_for(&req, &state, &username, section, &mut token);
    let page = AccountConfirmPage {
        frame,
        question,
        action,
        fields,
        confirm,
        back,
    };
    render(StatusCode::OK, &page, cookies)
}

pub async fn confirm_sign_out(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    confirm(req, state, false).await
}

pub async fn confirm_remove_access(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    confirm(req, state, true).await
}

/// `POST /account/sign-out` and `POST /account/remove-access`: does it, and back to the list.
async fn act(
    req: HttpRequest,
    body: web::Bytes,
    state: web::Data<AppState>,
    remove: bool,
) -> HttpResponse {
    let form = match checked_form(&req, &body, &state) {
        Ok(f) => f,
        Err(page) => return *page,
    };
    let Some(action) = action(&form, remove) else {
        return error_page(StatusCode::BAD_REQUEST, "Choose a device or an app.");
    };
    let cookie = session(&req, state.secure_cookies);
    let meta = state.request_meta(&req);
    let asked = action.clone();
    let done = state
        .blocking(move |s| s.browser.account_act(cookie.as_deref(), &asked, &meta))
        .await;
    let (back, word) = match action {
        Action::SignOut(_) => ("/account", "signed_out"),
        Action::SignOutOthers => ("/account", "signed_out_others"),
        Action::RemoveAccess(_) => ("/account/apps", "removed"),
    };
    match done {
        Ok(Some(0)) if !matches!(action, Action::SignOutOthers) => {
            see_other(&format!("{back}?done=nothing"), Vec::new())
        }
        Ok(Some(_)) => see_other(&format!("{back}?done={word}"), Vec::new()),
        Ok(None) => login(&req, &state),
        Err(_) => unavailable(),
    }
}

pub async fn sign_out(
    req: HttpRequest,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> HttpResponse {
    act(req, body, state, false).await
}

pub async fn remove_access(
    req: HttpRequest,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> HttpResponse {
    act(req, body, state, true).await
}

/// `POST /account/password`.
pub async fn change_password(
    req: HttpRequest,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> HttpResponse {
    let form = match checked_form(&req, &body, &state) {
        Ok(f) => f,
        Err(page) => return *page,
    };
    let field = |name| form.get(name).unwrap_or_default().to_owned();
    let (current, new, again) = (field("current"), field("new"), field("again"));
    let cookie = session(&req, state.secure_cookies);
    let meta = state.request_meta(&req);
    let changed = state
        .blocking(move |s| {
            s.browser
                .change_password(cookie.as_deref(), (&current, &new, &again), &meta)
        })
        .await;
    let secure = state.secure_cookies;
    let error = match changed {
        Ok(session) => {
            let cookies = signed_in_cookies(&state.services.browser, &session, secure);
            return see_other("/account/password?done=password", cookies);
        }
        Err(e) => match refusal(&req, &state, e) {
            Ok(text) => text,
            Err(page) => return *page,
        },
    };
    let view = match view(&req, &state, Section::Password).await {
        Ok(Some(view)) => view,
        Ok(None) => return login(&req, &state),
        Err(page) => return page,
    };
    let mut token = String::new();
    let (frame, cookies) = frame_for(&req, &state, &view.username, Section::Password, &mut token);
    let page = AccountPasswordPage {
        frame,
        error: Some(&error),
    };
    render(StatusCode::BAD_REQUEST, &page, cookies)
}

/// What a refused account change says on its page, shown again; `Err`: a page of its own
/// instead (the login page, or the service being unavailable).
fn refusal(
    req: &HttpRequest,
    state: &AppState,
    e: AccountError,
) -> Result<String, Box<HttpResponse>> {
    match e {
        AccountError::SignedOut => Err(Box::new(login(req, state))),
        AccountError::Unavailable(_) => Err(Box::new(unavailable())),
        AccountError::Refused => Ok(
            "The current password or code is incorrect, or there were too many attempts. Try again later."
                .to_owned(),
        ),
        AccountError::Passkey(why) => Ok(format!("{}.", capitalised(&why))),
        AccountError::Weak(why) => Ok(format!("{}.", capitalised(&why))),
        e @ AccountError::Mismatch => Ok(format!("{}.", capitalised(&e.to_string()))),
    }
}

fn capitalised(text: &str) -> String {
    let mut chars = text.chars();
    chars
        .next()
        .map(|c| c.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}
