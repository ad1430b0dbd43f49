use actix_web::{web, HttpResponse};

use crate::http::{oauth_error, AppState};

/// The public signing keys (RFC 7517), at the metadata's `jwks_uri`.
pub async fn jwks(state: web::Data<AppState>) -> HttpResponse {
    match state.blocking(|s| s.operations.jwks()).await {
        Ok(jwks) => HttpResponse::Ok()
            .insert_header(("Cache-Control", "public, max-age=60"))
            .json(jwks),
        Err(e) => oauth_error(&e),
    }
}
