//! The HTTP surface (actix-web). Handlers parse, hand the work to a blocking thread, and render.

pub mod client_ip;
pub mod cors;
mod error;
pub mod metrics;
pub mod pages;
pub mod request_id;
mod routes;

pub use error::{no_store, oauth_error};

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use actix_web::error::BlockingError;
use actix_web::web;

use crate::grant::Services;

/// Shared by every worker.
pub struct AppState {
    pub services: Services,
    /// Cookies get `Secure` (the issuer is https).
    pub secure_cookies: bool,
    /// `server.trusted_proxies` and `server.forwarded_header`.
    pub proxies: client_ip::Proxies,
    /// Set on SIGTERM or SIGINT: `/readyz` answers 503 until the server stops accepting.
    pub draining: Arc<AtomicBool>,
}

impl AppState {
    /// The client's address (see [`client_ip`]).
    pub fn client_ip(&self, req: &actix_web::HttpRequest) -> Option<std::net::IpAddr> {
        client_ip::client_ip(req, &self.proxies)
    }

    /// Who asked: the client's address, its user agent and the request's id.
    pub fn request_meta(
        &self,
        req: &actix_web::HttpRequest,
    ) -> crate::domain::request::RequestMeta {
        let user_agent = req
            .headers()
            .get(actix_web::http::header::USER_AGENT)
            .and_then(|v| v.to_str().ok());
        crate::domain::request::RequestMeta::new(
            self.client_ip(req).map(|ip| ip.to_string()),
            user_agent,
        )
        .with_request(request_id::current())
    }

    /// Whether `peer` is one of `server.trusted_proxies`.
    pub fn is_trusted_proxy(&self, peer: std::net::IpAddr) -> bool {
        self.proxies.trusts(&peer)
    }
}

impl AppState {
    /// Runs `f` with the services on a blocking thread (diesel, r2d2 and Argon2 block), so that
    /// the async workers never wait on them.
    pub async fn blocking<T, E>(
        &self,
        f: impl FnOnce(&Services) -> Result<T, E> + Send + 'static,
    ) -> Result<T, E>
    where
        T: Send + 'static,
        E: Send + 'static + From<BlockingError>,
    {
        let services = self.services.clone();
        // The request's span goes with the work: its log lines carry the request id. (Audit
        // events get it through the request's `RequestMeta`.)
        let span = tracing::Span::current();
        web::block(move || {
            let _entered = span.enter();
            f(&services)
        })
        .await?
    }
}

/// Mounts every route.
pub fn configure(cfg: &mut web::ServiceConfig) {
    routes::configure(cfg);
}

pub use routes::ROUTES;

/// The OpenAPI document served at `/openapi.json`.
pub const OPENAPI: &str = routes::openapi::DOCUMENT;

/// Largest total size of request headers accepted.
pub const MAX_HEADER_BYTES: usize = 16 * 1024;

/// Refuses requests whose headers exceed [`MAX_HEADER_BYTES`] with 431 and a JSON error.
pub async fn limit_headers(
    req: actix_web::dev::ServiceRequest,
    next: actix_web::middleware::Next<impl actix_web::body::MessageBody + 'static>,
) -> Result<
    actix_web::dev::ServiceResponse<actix_web::body::EitherBody<impl actix_web::body::MessageBody>>,
    actix_web::Error,
> {
    let size: usize = req
        .headers()
        .iter()
        .map(|(k, v)| k.as_str().len() + v.len() + 4)
        .sum();
    if size > MAX_HEADER_BYTES {
        let res = error::headers_too_large();
        return Ok(req.into_response(res).map_into_right_body());
    }
    next.call(req)
        .await
        .map(actix_web::dev::ServiceResponse::map_into_left_body)
}
