use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};

use crate::grant::BearerError;
use crate::http::error::bearer_challenge;
use crate::http::{no_store, oauth_error, AppState};

/// `GET|POST /userinfo` with `Authorization: Bearer …` (RFC 6750 §2.1).
pub async fn userinfo(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let token = req
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
    let Some(token) = token else {
        // RFC 6750 §3.1: no credentials at all gets the challenge without an error code.
        return bearer_challenge(None);
    };
    match state.blocking(move |s| s.tokens.userinfo(&token)).await {
        Ok(info) => no_store(&mut HttpResponse::Ok()).json(info),
        Err(BearerError::InvalidToken(why)) => bearer_challenge(Some(&why)),
        Err(BearerError::Unavailable(e)) => oauth_error(&e),
    }
}
