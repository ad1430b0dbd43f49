mod account;
mod authorize;
mod health;
mod jwks;
mod metadata;
pub(crate) mod openapi;
mod token;
mod userinfo;

use actix_web::http::Method;
use actix_web::middleware::Condition;
use actix_web::{web, HttpRequest, HttpResponse};

use crate::http::{cors, AppState};

/// Declares every route once: `configure` mounts them, and [`ROUTES`] lists them (the OpenAPI
/// document must describe exactly these; a test compares the two). A method a path does not
/// take gets 405 with `Allow`. A route marked `[cors Policy]` also answers `OPTIONS`
/// (preflights) and carries that policy's CORS headers ([`cors`]).
macro_rules! routes {
    (@method GET) => { web::get() };
    (@method POST) => { web::post() };
    (@options $policy:ident) => { "OPTIONS" };
    (@policy) => { None };
    (@policy $policy:ident) => { Some(cors::Policy::$policy) };
    ($($path:literal $([cors $policy:ident])? => { $($method:ident => $handler:path),+ $(,)? })*) => {
        /// Every route: its path and methods.
        pub const ROUTES: &[(&str, &[&str])] =
            &[$(($path, &[$(stringify!($method)),+ $(, routes!(@options $policy))?])),*];

        pub fn configure(cfg: &mut web::ServiceConfig) {
            $(
                let allow: &'static [&'static str] =
                    &[$(stringify!($method)),+ $(, routes!(@options $policy))?];
                let policy: Option<cors::Policy> = routes!(@policy $($policy)?);
                let mut resource = web::resource($path)
                    $(.route(routes!(@method $method).to($handler)))+;
                if let Some(policy) = policy {
                    resource = resource.route(web::method(Method::OPTIONS).to(
                        move |req: HttpRequest, state: web::Data<AppState>| {
                            cors::preflight(req, state, policy, allow)
                        },
                    ));
                }
                cfg.service(
                    resource
                        .default_service(web::to(move || method_not_allowed(allow)))
                        .wrap(Condition::new(
                            policy == Some(cors::Policy::AnyOrigin),
                            cors::any_origin(),
                        )),
                );
            )*
        }
    };
}

routes! {
    "/token" [cors ClientOrigins] => { POST => token::token }
    "/revoke" [cors ClientOrigins] => { POST => token::revoke }
    "/introspect" => { POST => token::introspect }
    "/userinfo" [cors ClientOrigins] => { GET => userinfo::userinfo, POST => userinfo::userinfo }
    "/jwks.json" [cors AnyOrigin] => { GET => jwks::jwks }
    "/.well-known/oauth-authorization-server" [cors AnyOrigin] => { GET => metadata::metadata }
    "/.well-known/openid-configuration" [cors AnyOrigin] => { GET => metadata::metadata }
    "/openapi.json" => { GET => openapi::openapi }
    "/healthz" => { GET => health::healthz }
    "/readyz" => { GET => health::readyz }
    "/authorize" => { GET => authorize::authorize, POST => authorize::authorize_post }
    "/login" => { POST => authorize::login }
    "/login/second-step" => { POST => authorize::second_step }
    "/login/enrol" => { POST => authorize::enrol }
    "/login/passkey" => { POST => authorize::login_passkey }
    "/webauthn/options" => { POST => authorize::webauthn_options }
    "/consent" => { POST => authorize::consent }
    "/logout" => { POST => authorize::logout }
    "/end_session" => { GET => authorize::end_session, POST => authorize::end_session_post }
    "/account" => { GET => account::devices }
    "/account/apps" => { GET => account::apps }
    "/account/activity" => { GET => account::activity }
    "/account/password" => { GET => account::password, POST => account::change_password }
    "/account/sign-out" => { GET => account::confirm_sign_out, POST => account::sign_out }
    "/account/remove-access" => { GET => account::confirm_remove_access, POST => account::remove_access }
    "/account/sign-in-methods" => { GET => account::sign_in_methods, POST => account::change_method }
    "/account/authenticator" => { GET => account::app_set_up, POST => account::confirm_app }
    "/account/passkeys" => { POST => account::add_passkey }
    "/static/tessera.css" => { GET => authorize::stylesheet }
    "/static/webauthn.js" => { GET => authorize::webauthn_script }
}

async fn method_not_allowed(allow: &'static [&'static str]) -> HttpResponse {
    crate::http::error::method_not_allowed(&allow.join(", "))
}
