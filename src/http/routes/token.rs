use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};

use crate::domain::client::OriginCheck;
use crate::domain::family::RequestMeta;
use crate::domain::origin::Origin;
use crate::grant::client_auth::FAILED;
use crate::grant::{credentials, OAuthError, Params};
use crate::http::{cors, no_store, oauth_error, AppState};

/// A client's form request to /token, /revoke or /introspect (RFC 6749 §3.2, RFC 7009 §2.1,
/// RFC 7662 §2.1): form-encoded, parameters once each, credentials in the header or the body.
pub struct ClientForm {
    pub params: Params,
    pub authorization: Option<String>,
    /// The `DPoP` proof (RFC 9449 §4.1), for `/token`.
    pub dpop: Option<String>,
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
    let dpop = dpop_header(req)?;
    let meta = state.request_meta(req);
    Ok(ClientForm {
        params,
        authorization,
        dpop,
        meta,
    })
}

/// The request's `DPoP` proof (RFC 9449 §4.1), if any: exactly one; two are refused, not one
/// of them picked.
pub(super) fn dpop_header(req: &HttpRequest) -> Result<Option<String>, OAuthError> {
    let mut proofs = req.headers().get_all("dpop");
    match (proofs.next(), proofs.next()) {
        (None, _) => Ok(None),
        (Some(v), None) => v
            .to_str()
            .map(|v| Some(v.to_owned()))
            .map_err(|_| OAuthError::InvalidDpopProof("malformed DPoP header".into())),
        (Some(_), Some(_)) => Err(OAuthError::InvalidDpopProof(
            "the request has more than one DPoP header".into(),
        )),
    }
}

/// Runs `f` on a blocking thread with the parsed form. A request from a script on another
/// origin is first checked against the client it names ([`OriginCheck`]), and learns there
/// which origin may read the answer: the client's own for a success, any registered one for
/// an error. Requests without `Origin` (servers, native apps) pay nothing for it.
async fn handle<T: Send + 'static>(
    req: &HttpRequest,
    body: &[u8],
    state: &AppState,
    f: impl FnOnce(&crate::grant::TokenEndpoint, ClientForm) -> Result<T, OAuthError> + Send + 'static,
) -> (Result<T, OAuthError>, Option<Origin>) {
    let form = client_form(req, body, state);
    let Some(origin) = cors::request_origin(req) else {
        let result = match form {
            Ok(form) => state.blocking(move |s| f(&s.tokens, form)).await,
            Err(e) => Err(e),
        };
        return (result, None);
    };
    state
        .blocking(move |s| {
            let named = form.as_ref().ok().and_then(|f| {
                credentials(f.authorization.as_deref(), &f.params)
                    .ok()
                    .map(|c| c.client_id)
            });
            let check = s.tokens.check_origin(named.as_ref(), &origin);
            let result = match check {
                OriginCheck::Refused => {
                    tracing::info!(origin = %origin, "a public client's request from an origin it did not register");
                    Err(OAuthError::InvalidClient(FAILED.into()))
                }
                OriginCheck::Allowed { .. } => form.and_then(|form| f(&s.tokens, form)),
            };
            let readable = match (&result, check) {
                (Ok(_), OriginCheck::Allowed { readable }) => readable,
                (Ok(_), OriginCheck::Refused) => false,
                (Err(_), _) => s.tokens.origin_registered(&origin),
            };
            Ok::<_, OAuthError>((result, readable.then_some(origin)))
        })
        .await
        .unwrap_or_else(|e| (Err(e), None))
}

/// The response, with CORS headers for the origin that may read it.
fn answer(mut res: HttpResponse, readable_by: Option<Origin>) -> HttpResponse {
    cors::client_response(&mut res, readable_by.as_ref());
    res
}

/// `POST /token` (RFC 6749 §3.2).
pub async fn token(req: HttpRequest, body: web::Bytes, state: web::Data<AppState>) -> HttpResponse {
    let (result, readable_by) = handle(&req, &body, &state, |s, f| {
        s.token(
            f.authorization.as_deref(),
            f.dpop.as_deref(),
            &f.params,
            &f.meta,
        )
    })
    .await;
    let res = match result {
        Ok(response) => no_store(&mut HttpResponse::Ok()).json(response),
        Err(e) => oauth_error(&e),
    };
    let mut res = answer(res, readable_by);
    if req.headers().contains_key("dpop") {
        cors::dpop_nonce(&mut res, &state);
    }
    res
}

/// `POST /revoke` (RFC 7009): 200 whether or not there was anything to revoke.
pub async fn revoke(
    req: HttpRequest,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> HttpResponse {
    let (result, readable_by) = handle(&req, &body, &state, |s, f| {
        s.revoke(f.authorization.as_deref(), &f.params, &f.meta)
    })
    .await;
    let res = match result {
        Ok(()) => no_store(&mut HttpResponse::Ok()).finish(),
        Err(e) => oauth_error(&e),
    };
    answer(res, readable_by)
}

/// `POST /introspect` (RFC 7662): for resource servers, not browsers (no CORS).
pub async fn introspect(
    req: HttpRequest,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> HttpResponse {
    let form = match client_form(&req, &body, &state) {
        Ok(form) => form,
        Err(e) => return oauth_error(&e),
    };
    let result = state
        .blocking(move |s| {
            s.tokens
                .introspect(form.authorization.as_deref(), &form.params)
        })
        .await;
    match result {
        Ok(answer) => no_store(&mut HttpResponse::Ok()).json(answer),
        Err(e) => oauth_error(&e),
    }
}
