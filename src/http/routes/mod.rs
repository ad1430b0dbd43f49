mod authorize;
mod health;
mod jwks;
mod metadata;
pub(crate) mod openapi;
mod token;
mod userinfo;

use actix_web::{web, HttpResponse};

/// Declares every route once: `configure` mounts them, and [`ROUTES`] lists them (the OpenAPI
/// document must describe exactly these; a test compares the two). A method a path does not
/// take gets 405 with `Allow`.
macro_rules! routes {
    (@method GET) => { web::get() };
    (@method POST) => { web::post() };
    ($($path:literal => { $($method:ident => $handler:path),+ $(,)? })*) => {
        /// Every route: its path and methods.
        pub const ROUTES: &[(&str, &[&str])] = &[$(($path, &[$(stringify!($method)),+])),*];

        pub fn configure(cfg: &mut web::ServiceConfig) {
            $(
                let allow: &'static [&'static str] = &[$(stringify!($method)),+];
                cfg.service(
                    web::resource($path)
                        $(.route(routes!(@method $method).to($handler)))+
                        .default_service(web::to(move || method_not_allowed(allow))),
                );
            )*
        }
    };
}

routes! {
    "/token" => { POST => token::token }
    "/revoke" => { POST => token::revoke }
    "/introspect" => { POST => token::introspect }
    "/userinfo" => { GET => userinfo::userinfo, POST => userinfo::userinfo }
    "/jwks.json" => { GET => jwks::jwks }
    "/.well-known/oauth-authorization-server" => { GET => metadata::metadata }
    "/.well-known/openid-configuration" => { GET => metadata::metadata }
    "/openapi.json" => { GET => openapi::openapi }
    "/healthz" => { GET => health::healthz }
    "/readyz" => { GET => health::readyz }
    "/authorize" => { GET => authorize::authorize, POST => authorize::authorize_post }
    "/login" => { POST => authorize::login }
    "/consent" => { POST => authorize::consent }
    "/logout" => { POST => authorize::logout }
    "/end_session" => { GET => authorize::end_session, POST => authorize::end_session_post }
    "/static/tessera.css" => { GET => authorize::stylesheet }
}

async fn method_not_allowed(allow: &'static [&'static str]) -> HttpResponse {
    crate::http::error::method_not_allowed(&allow.join(", "))
}
