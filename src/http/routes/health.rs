use std::sync::atomic::Ordering;

use actix_web::http::header;
use actix_web::{web, HttpResponse};

use crate::http::AppState;

/// Liveness: answers without touching the database.
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({"status": "ok"}))
}

/// Readiness: 200 when the database answers and a signing key is loaded, else 503, so that a
/// load balancer sends requests elsewhere until this instance can serve them.
pub async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    if state.draining.load(Ordering::Relaxed) {
        return HttpResponse::ServiceUnavailable()
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .insert_header((header::RETRY_AFTER, "1"))
            .json(serde_json::json!({"status": "unavailable", "reason": "shutting down"}));
    }
    match state.blocking(|s| s.operations.readiness()).await {
        Ok(kid) => HttpResponse::Ok()
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .json(serde_json::json!({"status": "ready", "database": "ok", "signing_key": kid})),
        Err(why) => HttpResponse::ServiceUnavailable()
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .insert_header((header::RETRY_AFTER, "1"))
            .json(serde_json::json!({"status": "unavailable", "reason": why.description()})),
    }
}
