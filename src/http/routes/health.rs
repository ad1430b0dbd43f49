use actix_web::HttpResponse;

/// Liveness: answers without touching the database.
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({"status": "ok"}))
}
