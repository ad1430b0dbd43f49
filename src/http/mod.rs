//! The HTTP surface (actix-web). Handlers parse, hand the work to a blocking thread, and render.

mod error;
pub mod pages;
mod routes;

pub use error::{no_store, oauth_error};

use actix_web::web;

use crate::grant::TokenService;

/// Shared by every worker.
pub struct AppState {
    pub service: TokenService,
    /// Cookies get `Secure` (the issuer is https).
    pub secure_cookies: bool,
}

/// Mounts every route.
pub fn configure(cfg: &mut web::ServiceConfig) {
    routes::configure(cfg);
}
