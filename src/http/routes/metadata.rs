use actix_web::{web, HttpResponse};

use crate::http::AppState;

/// Authorization server metadata (RFC 8414), which is also the OpenID Provider metadata
/// (OpenID Connect Discovery 1.0 §3): one document at both addresses, so the two cannot
/// disagree. Built from configuration and the keys in memory: nothing blocks, so it is
/// answered on the worker.
pub async fn metadata(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header(("Cache-Control", "public, max-age=300"))
        .json(state.services.operations.metadata())
}
