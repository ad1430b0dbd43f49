//! The HTTP surface (actix-web). Handlers parse, hand the work to a blocking thread, and render.

mod error;
mod routes;

pub use error::{no_store, oauth_error};

use actix_web::web;

use crate::grant::TokenService;

/// Shared by every worker.
pub struct AppState {
    pub service: TokenService,
}

/// Mounts every route.
pub fn configure(cfg: &mut web::ServiceConfig) {
    routes::configure(cfg);
}
