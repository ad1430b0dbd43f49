use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};

use crate::grant::BearerError;
use crate::http::{error::sanitize, no_store, oauth_error, AppState};

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
        return challenge(None);
    };
    let service = state.service.clone();
    match web::block(move || service.userinfo(&token)).await {
        Ok(Ok(info)) => no_store(&mut HttpResponse::Ok()).json(info),
        Ok(Err(BearerError::InvalidToken(why))) => challenge(Some(&why)),
        Ok(Err(BearerError::Unavailable(e))) => oauth_error(&e),
        Err(_) => oauth_error(&crate::grant::OAuthError::ServerError),
    }
}

fn challenge(error: Option<&str>) -> HttpResponse {
    let value = match error {
        None => r#"Bearer realm="tessera""#.to_owned(),
        Some(why) => format!(
            r#"Bearer realm="tessera", error="invalid_token", error_description="{}""#,
            sanitize(why)
        ),
    };
    let mut builder = HttpResponse::Unauthorized();
    no_store(&mut builder).insert_header((header::WWW_AUTHENTICATE, value));
    match error {
        None => builder.finish(),
        Some(why) => builder.json(
            serde_json::json!({"error": "invalid_token", "error_description": sanitize(why)}),
        ),
    }
}
