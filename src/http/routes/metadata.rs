use actix_web::{web, HttpResponse};

use crate::http::{oauth_error, AppState};

/// Authorization server metadata (RFC 8414).
pub async fn metadata(state: web::Data<AppState>) -> HttpResponse {
    match state.blocking(|s| s.metadata()).await {
        Ok(document) => HttpResponse::Ok()
            .insert_header(("Cache-Control", "public, max-age=300"))
            .json(document),
        Err(e) => oauth_error(&e),
    }
}
