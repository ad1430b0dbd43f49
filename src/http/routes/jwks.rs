use actix_web::{web, HttpResponse};

use crate::http::AppState;

/// The public signing keys (RFC 7517), at the metadata's `jwks_uri`.
pub async fn jwks(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header(("Cache-Control", "public, max-age=60"))
        .json(state.service.keys.jwks())
}
