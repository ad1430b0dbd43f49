use actix_web::{web, HttpResponse};

use crate::grant::OAuthError;
use crate::http::{oauth_error, AppState};

/// The public signing keys (RFC 7517), at the metadata's `jwks_uri`.
pub async fn jwks(state: web::Data<AppState>) -> HttpResponse {
    let service = state.service.clone();
    match web::block(move || service.jwks()).await {
        Ok(Ok(jwks)) => HttpResponse::Ok()
            .insert_header(("Cache-Control", "public, max-age=60"))
            .json(jwks),
        Ok(Err(e)) => oauth_error(&e),
        Err(_) => oauth_error(&OAuthError::ServerError),
    }
}
