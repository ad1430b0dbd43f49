mod authorize;
mod health;
mod jwks;
mod metadata;
mod token;
mod userinfo;

use actix_web::{web, HttpResponse};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/token")
            .route(web::post().to(token::token))
            .default_service(web::to(|| method_not_allowed("POST"))),
    )
    .service(
        web::resource("/revoke")
            .route(web::post().to(token::revoke))
            .default_service(web::to(|| method_not_allowed("POST"))),
    )
    .service(
        web::resource("/introspect")
            .route(web::post().to(token::introspect))
            .default_service(web::to(|| method_not_allowed("POST"))),
    )
    .service(
        web::resource("/userinfo")
            .route(web::get().to(userinfo::userinfo))
            .route(web::post().to(userinfo::userinfo))
            .default_service(web::to(|| method_not_allowed("GET, POST"))),
    )
    .service(web::resource("/jwks.json").route(web::get().to(jwks::jwks)))
    .service(
        web::resource("/.well-known/oauth-authorization-server")
            .route(web::get().to(metadata::metadata)),
    )
    .service(web::resource("/healthz").route(web::get().to(health::healthz)))
    .service(web::resource("/authorize").route(web::get().to(authorize::authorize)))
    .service(web::resource("/login").route(web::post().to(authorize::login)))
    .service(web::resource("/consent").route(web::post().to(authorize::consent)))
    .service(web::resource("/logout").route(web::post().to(authorize::logout)))
    .service(web::resource("/static/tessera.css").route(web::get().to(authorize::stylesheet)));
}

async fn method_not_allowed(allow: &'static str) -> HttpResponse {
    crate::http::error::method_not_allowed(allow)
}
