//! Request ids: every request gets one of the server's own, unguessable (128 random bits),
//! echoed in `X-Request-Id`, carried by every log line of the request (a tracing span) and by
//! the audit events it records. The id a trusted proxy sent (`server.trusted_proxies`) is kept
//! beside it as `upstream_request_id`, so that the proxy's logs and ours line up; it never
//! replaces ours, since a proxy that passes the client's header through would let the client
//! choose it. From any other peer the header is ignored.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::web;
use tracing::Instrument;

use crate::domain::crypto::random_id;
use crate::domain::request::RequestIds;
use crate::http::AppState;

pub const HEADER: HeaderName = HeaderName::from_static("x-request-id");

/// Longest id taken from a proxy; longer ones are replaced.
const MAX_LEN: usize = 128;

tokio::task_local! {
    static CURRENT: RequestIds;
}

/// The ids of the request this task is serving, if any.
pub fn current() -> Option<RequestIds> {
    CURRENT.try_with(Clone::clone).ok()
}

/// The middleware: outermost, so that every response has the header, errors included.
pub async fn request_id(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let trusted = req
        .app_data::<web::Data<AppState>>()
        .zip(req.peer_addr())
        .is_some_and(|(state, peer)| state.is_trusted_proxy(peer.ip()));
    let upstream = trusted
        .then(|| req.headers().get(&HEADER))
        .flatten()
        .and_then(|v| v.to_str().ok())
        .filter(|v| acceptable(v))
        .map(str::to_owned);
    let ids = RequestIds {
        own: random_id(),
        upstream,
    };
    let span = match &ids.upstream {
        Some(up) => {
            tracing::info_span!("request", request_id = %ids.own, upstream_request_id = %up)
        }
        None => tracing::info_span!("request", request_id = %ids.own),
    };
    let id = ids.own.clone();
    let mut res = CURRENT.scope(ids, next.call(req).instrument(span)).await?;
    if let Ok(value) = HeaderValue::from_str(&id) {
        res.headers_mut().insert(HEADER, value);
    }
    Ok(res)
}

/// What a proxy's id may be: short, and nothing a log reader could mistake for structure.
fn acceptable(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_LEN
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:/+=@~".contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_short_ids_are_taken() {
        assert!(acceptable("3f2c9a7e-1b4d-4c8e-9f00-2a6b5d7c8e91"));
        assert!(acceptable("lb:1700000000.123/abc"));
        assert!(!acceptable(""));
        assert!(!acceptable("a b"));
        assert!(!acceptable("id\"} forged=1"));
        assert!(!acceptable(&"a".repeat(MAX_LEN + 1)));
    }
}
