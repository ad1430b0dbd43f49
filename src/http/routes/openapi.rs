use actix_web::http::header;
use actix_web::HttpResponse;

/// The OpenAPI 3.1 document of this API, kept beside the routes it describes.
pub const DOCUMENT: &str = include_str!("../openapi.json");

/// `GET /openapi.json`.
pub async fn openapi() -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, "application/json"))
        .body(DOCUMENT)
}
