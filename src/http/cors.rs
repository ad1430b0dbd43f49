//! CORS (the Fetch standard) for the endpoints a browser app calls from its own origin:
//! `/token`, `/revoke` and `/userinfo` answer only an origin registered by the client the
//! request is for; discovery and the JWKS are public documents any origin may read. Nothing
//! here allows credentials (cookies): a browser app authenticates with its tokens and PKCE,
//! and the sign-in pages, whose session cookie is the credential, never allow CORS.

use actix_web::http::header::{self, HeaderValue};
use actix_web::http::Method;
use actix_web::{web, HttpRequest, HttpResponse};

use crate::domain::origin::Origin;
use crate::grant::OAuthError;
use crate::http::AppState;

/// Who may read an endpoint's answers from another origin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    /// Discovery and the JWKS: any origin (`Access-Control-Allow-Origin: *`).
    AnyOrigin,
    /// `/token`, `/revoke`, `/userinfo`: an origin the request's client registered.
    ClientOrigins,
}

/// The request headers a browser app may send: its client authentication or bearer token,
/// the form's content type, and a DPoP proof (RFC 9449).
pub const ALLOW_HEADERS: &str = "Authorization, Content-Type, DPoP";
/// The response headers its scripts may read beyond the safelisted ones.
pub const EXPOSE_HEADERS: &str = "DPoP-Nonce, WWW-Authenticate";
/// How long a browser may keep a preflight's answer, in seconds. A removed origin loses the
/// answers themselves at once: every response is checked again.
pub const MAX_AGE: &str = "3600";

/// The origin a browser named, if the request came from a script on another origin (or the
/// opaque `null`).
pub fn request_origin(req: &HttpRequest) -> Option<Origin> {
    req.headers()
        .get(header::ORIGIN)
        .map(|v| Origin::from_header(v.to_str().unwrap_or_default()))
}

/// Marks an answer of a [`Policy::ClientOrigins`] endpoint: `Vary: Origin` always (a cache
/// must not hand one origin's answer to another), and, for an origin that may read it, that
/// origin and the headers it may read.
pub fn client_response(res: &mut HttpResponse, readable_by: Option<&Origin>) {
    let headers = res.headers_mut();
    headers.append(header::VARY, HeaderValue::from_static("Origin"));
    if let Some(origin) = readable_by {
        if let Ok(value) = HeaderValue::from_str(origin.as_str()) {
            headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, value);
            headers.insert(
                header::ACCESS_CONTROL_EXPOSE_HEADERS,
                HeaderValue::from_static(EXPOSE_HEADERS),
            );
        }
    }
}

/// `origin`, if some enabled client registered it: it may read an error (an app reads why it
/// was refused, and whether the client it named exists shows nowhere), and send the request a
/// preflight asks about.
pub async fn registered(state: &AppState, origin: Option<Origin>) -> Option<Origin> {
    let origin = origin?;
    state
        .blocking(move |s| {
            let readable = s.tokens.origin_registered(&origin);
            Ok::<_, OAuthError>(readable.then_some(origin))
        })
        .await
        .ok()
        .flatten()
}

/// `DPoP-Nonce` (RFC 9449 §8) on an answer to a request with a DPoP proof, when proofs must
/// carry one: the nonce for the app's next proof. (Browser apps read it: it is exposed.)
pub fn dpop_nonce(res: &mut HttpResponse, state: &AppState) {
    if let Some(nonce) = state.services.tokens.dpop_nonce() {
        if let Ok(value) = HeaderValue::from_str(&nonce) {
            res.headers_mut()
                .insert(header::HeaderName::from_static("dpop-nonce"), value);
        }
    }
}

/// `Access-Control-Allow-Origin: *`, on every answer of a [`Policy::AnyOrigin`] endpoint.
pub fn any_origin() -> actix_web::middleware::DefaultHeaders {
    actix_web::middleware::DefaultHeaders::new().add((header::ACCESS_CONTROL_ALLOW_ORIGIN, "*"))
}

/// `OPTIONS`: a CORS preflight, or a plain question about the methods (`Allow`). A preflight
/// from an origin that may not call the endpoint, or for a method it does not take, gets no
/// CORS headers, and the browser does not send the request.
pub async fn preflight(
    req: HttpRequest,
    state: web::Data<AppState>,
    policy: Policy,
    methods: &'static [&'static str],
) -> HttpResponse {
    let mut res = HttpResponse::NoContent().finish();
    let headers = res.headers_mut();
    if let Ok(allow) = HeaderValue::from_str(&methods.join(", ")) {
        headers.insert(header::ALLOW, allow);
    }
    headers.insert(header::VARY, HeaderValue::from_static("Origin"));
    let Some(origin) = request_origin(&req) else {
        return res;
    };
    let method = req
        .headers()
        .get(header::ACCESS_CONTROL_REQUEST_METHOD)
        .and_then(|m| Method::from_bytes(m.as_bytes()).ok());
    if !method.is_some_and(|m| m != Method::OPTIONS && methods.contains(&m.as_str())) {
        return res;
    }
    let allow_origin = match policy {
        Policy::AnyOrigin => HeaderValue::from_static("*"),
        Policy::ClientOrigins => match registered(&state, Some(origin))
            .await
            .and_then(|o| HeaderValue::from_str(o.as_str()).ok())
        {
            Some(value) => value,
            None => return res,
        },
    };
    let headers = res.headers_mut();
    headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, allow_origin);
    let cors_methods: Vec<&str> = methods
        .iter()
        .copied()
        .filter(|m| *m != "OPTIONS")
        .collect();
    if let Ok(value) = HeaderValue::from_str(&cors_methods.join(", ")) {
        headers.insert(header::ACCESS_CONTROL_ALLOW_METHODS, value);
    }
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static(ALLOW_HEADERS),
    );
    headers.insert(
        header::ACCESS_CONTROL_MAX_AGE,
        HeaderValue::from_static(MAX_AGE),
    );
    res
}
