use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};

use crate::domain::family::RequestMeta;
use crate::grant::{OAuthError, Params};
use crate::http::{no_store, oauth_error, AppState};

/// `POST /token` (RFC 6749 §3.2).
pub async fn token(req: HttpRequest, body: web::Bytes, state: web::Data<AppState>) -> HttpResponse {
    match handle(&req, &body, &state).await {
        Ok(response) => no_store(&mut HttpResponse::Ok()).json(response),
        Err(e) => oauth_error(&e),
    }
}

async fn handle(
    req: &HttpRequest,
    body: &[u8],
    state: &AppState,
) -> Result<crate::grant::TokenResponse, OAuthError> {
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
    let meta = RequestMeta::new(
        req.peer_addr().map(|a| a.ip().to_string()),
        req.headers()
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok()),
    );
    let service = state.service.clone();
    web::block(move || service.token(authorization.as_deref(), &params, &meta))
        .await
        .map_err(|_| OAuthError::ServerError)?
}
