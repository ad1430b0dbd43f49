use actix_web::{web, HttpResponse};

use crate::grant::OAuthError;
use crate::http::{oauth_error, AppState};

/// Authorization server metadata (RFC 8414).
pub async fn metadata(state: web::Data<AppState>) -> HttpResponse {
    let s = state.service.clone();
    match web::block(move || s.metadata()).await {
        Ok(Ok(document)) => HttpResponse::Ok()
            .insert_header(("Cache-Control", "public, max-age=300"))
            .json(document),
        Ok(Err(e)) => oauth_error(&e),
        Err(_) => oauth_error(&OAuthError::ServerError),
    }
}
