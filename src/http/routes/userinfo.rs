use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};

use crate::grant::BearerError;
use crate::http::error::{bearer_challenge, bearer_invalid_request};
use crate::http::{no_store, oauth_error, AppState};

/// `GET|POST /userinfo` (OpenID Connect Core §5.3) with the access token in
/// `Authorization: Bearer …` (RFC 6750 §2.1) or, for a POST, as `access_token` in a form body
/// (§2.2). Both at once is `invalid_request` (§2).
pub async fn userinfo(
    req: HttpRequest,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> HttpResponse {
    let from_header = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, rest) = v.trim().split_once(' ')?;
            scheme
                .eq_ignore_ascii_case("bearer")
                .then(|| rest.trim().to_owned())
        })
        .filter(|t| !t.is_empty());
    let from_body = body_token(&req, &body);
    let token = match (from_header, from_body) {
        (Some(_), Some(_)) => {
            return bearer_invalid_request("the access token is in the header and in the body")
        }
        (Some(t), None) | (None, Some(t)) => t,
        // RFC 6750 §3.1: no credentials at all gets the challenge without an error code.
        (None, None) => return bearer_challenge(None),
    };
    match state.blocking(move |s| s.tokens.userinfo(&token)).await {
        Ok(info) => no_store(&mut HttpResponse::Ok()).json(info),
        Err(BearerError::InvalidToken(why)) => bearer_challenge(Some(&why)),
        Err(BearerError::Unavailable(e)) => oauth_error(&e),
    }
}

/// `access_token` from a form-encoded POST body, as RFC 6750 §2.2 allows.
fn body_token(req: &HttpRequest, body: &[u8]) -> Option<String> {
    let form = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    if req.method() != actix_web::http::Method::POST || !form {
        return None;
    }
    url::form_urlencoded::parse(body)
        .find(|(k, _)| k == "access_token")
        .map(|(_, v)| v.into_owned())
        .filter(|t| !t.is_empty())
}
