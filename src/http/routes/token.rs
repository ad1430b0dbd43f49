use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};

use crate::domain::family::RequestMeta;
use crate::grant::{OAuthError, Params};
use crate::http::{no_store, oauth_error, AppState};

/// A client's form request to /token, /revoke or /introspect (RFC 6749 §3.2, RFC 7009 §2.1,
/// RFC 7662 §2.1): form-encoded, parameters once each, credentials in the header or the body.
pub struct ClientForm {
    pub params: Params,
    pub authorization: Option<String>,
    pub meta: RequestMeta,
}

pub fn client_form(
    req: &HttpRequest,
    body: &[u8],
    state: &AppState,
) -> Result<ClientForm, OAuthError> {
    let form = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|essence| {
            essence
                .trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        });
    if !form {
        return Err(OAuthError::InvalidRequest(
            "the body must be application/x-www-form-urlencoded".into(),
        ));
    }
    let params = Params::parse(body)?;
    let authorization = match req.headers().get(header::AUTHORIZATION) {
        Some(v) => Some(
            v.to_str()
                .map_err(|_| OAuthError::InvalidClient("malformed Authorization header".into()))?
                .to_owned(),
        ),
        None => None,
    };
    let meta = state.request_meta(req);
    Ok(ClientForm {
        params,
        authorization,
        meta,
    })
}

/// Runs `f` on a blocking thread with the parsed form; renders errors per RFC 6749 §5.2.
async fn handle<T: Send + 'static>(
    req: &HttpRequest,
    body: &[u8],
    state: &AppState,
    f: impl FnOnce(&crate::grant::TokenEndpoint, ClientForm) -> Result<T, OAuthError> + Send + 'static,
) -> Result<T, OAuthError> {
    let form = client_form(req, body, state)?;
    state.blocking(move |s| f(&s.tokens, form)).await
}

/// `POST /token` (RFC 6749 §3.2).
pub async fn token(req: HttpRequest, body: web::Bytes, state: web::Data<AppState>) -> HttpResponse {
    let result = handle(&req, &body, &state, |s, f| {
        s.token(f.authorization.as_deref(), &f.params, &f.meta)
    })
    .await;
    match result {
        Ok(response) => no_store(&mut HttpResponse::Ok()).json(response),
        Err(e) => oauth_error(&e),
    }
}

/// `POST /revoke` (RFC 7009): 200 whether or not there was anything to revoke.
pub async fn revoke(
    req: HttpRequest,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> HttpResponse {
    match handle(&req, &body, &state, |s, f| {
        s.revoke(f.authorization.as_deref(), &f.params, &f.meta)
    })
    .await
    {
        Ok(()) => no_store(&mut HttpResponse::Ok()).finish(),
        Err(e) => oauth_error(&e),
    }
}

/// `POST /introspect` (RFC 7662).
pub async fn introspect(
    req: HttpRequest,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> HttpResponse {
    match handle(&req, &body, &state, |s, f| {
        s.introspect(f.authorization.as_deref(), &f.params)
    })
    .await
    {
        Ok(answer) => no_store(&mut HttpResponse::Ok()).json(answer),
        Err(e) => oauth_error(&e),
    }
}
