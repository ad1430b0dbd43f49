//! The one place where errors become HTTP responses.

use actix_web::error::BlockingError;
use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, HttpResponseBuilder};

use crate::grant::{BearerError, OAuthError, SignInError};

/// `Cache-Control: no-store` and `Pragma: no-cache` (RFC 6749 §5.1).
pub fn no_store(builder: &mut HttpResponseBuilder) -> &mut HttpResponseBuilder {
    builder
        .insert_header((header::CACHE_CONTROL, HeaderValue::from_static("no-store")))
        .insert_header((header::PRAGMA, HeaderValue::from_static("no-cache")))
}

pub use crate::grant::error::sanitize;

/// An RFC 6749 §5.2 error response.
pub fn oauth_error(e: &OAuthError) -> HttpResponse {
    let status = match e {
        OAuthError::InvalidClient(_) => StatusCode::UNAUTHORIZED,
        OAuthError::TemporarilyUnavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        OAuthError::ServerError => StatusCode::INTERNAL_SERVER_ERROR,
        _ => StatusCode::BAD_REQUEST,
    };
    let mut builder = HttpResponse::build(status);
    no_store(&mut builder);
    match e {
        OAuthError::InvalidClient(_) => {
            builder.insert_header((
                header::WWW_AUTHENTICATE,
                r#"Basic realm="tessera", charset="UTF-8""#,
            ));
        }
        OAuthError::TemporarilyUnavailable(_) => {
            builder.insert_header((header::RETRY_AFTER, "1"));
        }
        _ => {}
    }
    builder.json(serde_json::json!({
        "error": e.code(),
        "error_description": sanitize(e.description()),
    }))
}

/// RFC 6750 §3: the 401 for a bearer token that is missing (`None`: the challenge alone) or
/// refused (`Some(why)`: `invalid_token`, in the challenge and the body).
///
/// Every refused token gets the same description: which check failed (expired, revoked,
/// forged, the library's parse error) goes to the log, not to whoever holds the token.
pub fn bearer_challenge(refused: Option<&str>) -> HttpResponse {
    const INVALID_TOKEN: &str = "the access token is invalid, expired or revoked";
    let value = match refused {
        None => r#"Bearer realm="tessera""#.to_owned(),
        Some(why) => {
            tracing::info!(reason = %sanitize(why), "bearer token refused");
            format!(
                r#"Bearer realm="tessera", error="invalid_token", error_description="{INVALID_TOKEN}""#
            )
        }
    };
    let mut builder = HttpResponse::Unauthorized();
    no_store(&mut builder).insert_header((header::WWW_AUTHENTICATE, value));
    match refused {
        None => builder.finish(),
        Some(_) => builder.json(
            serde_json::json!({"error": "invalid_token", "error_description": INVALID_TOKEN}),
        ),
    }
}

/// RFC 9449 §7.1: the 401 for a DPoP-bound token refused (`invalid_token`) or whose proof
/// failed (`invalid_dpop_proof`), with the algorithms a proof may use. The description is the
/// same for every refusal of a kind; why goes to the log.
pub fn dpop_challenge(error: &str, why: &str) -> HttpResponse {
    tracing::info!(reason = %sanitize(why), error, "DPoP-bound token refused");
    let description = match error {
        "invalid_dpop_proof" => "the DPoP proof is missing or invalid",
        "use_dpop_nonce" => "the DPoP proof must carry the nonce in DPoP-Nonce",
        _ => "the access token is invalid, expired or revoked",
    };
    let algs = crate::domain::dpop::ALGORITHMS.join(" ");
    let mut builder = HttpResponse::Unauthorized();
    no_store(&mut builder)
        .insert_header((
            header::WWW_AUTHENTICATE,
            format!(r#"DPoP error="{error}", error_description="{description}", algs="{algs}""#),
        ))
        .json(serde_json::json!({"error": error, "error_description": description}))
}

/// 400 `invalid_request` for a malformed bearer request (RFC 6750 §3.1), such as a token sent
/// in two places at once.
pub fn bearer_invalid_request(why: &str) -> HttpResponse {
    let mut builder = HttpResponse::BadRequest();
    no_store(&mut builder)
        .insert_header((
            header::WWW_AUTHENTICATE,
            format!(
                r#"Bearer realm="tessera", error="invalid_request", error_description="{why}""#
            ),
        ))
        .json(serde_json::json!({"error": "invalid_request", "error_description": why}))
}

/// 405 with the methods the resource takes.
pub fn method_not_allowed(allow: &str) -> HttpResponse {
    HttpResponse::MethodNotAllowed()
        .insert_header((header::ALLOW, allow))
        .json(serde_json::json!({"error": "invalid_request", "error_description": "method not allowed"}))
}

/// 431 for requests whose headers are larger than the server takes.
pub fn headers_too_large() -> HttpResponse {
    HttpResponse::build(StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE).json(
        serde_json::json!({"error": "invalid_request", "error_description": "the request headers are too large"}),
    )
}

/// The blocking pool failed (a panic in the closure, or shutdown): a server error.
impl From<BlockingError> for OAuthError {
    fn from(_: BlockingError) -> Self {
        OAuthError::ServerError
    }
}

impl From<BlockingError> for BearerError {
    fn from(_: BlockingError) -> Self {
        BearerError::Unavailable(OAuthError::ServerError)
    }
}

impl From<BlockingError> for SignInError {
    fn from(_: BlockingError) -> Self {
        SignInError::Unavailable(OAuthError::ServerError)
    }
}

impl From<BlockingError> for crate::grant::account::AccountError {
    fn from(_: BlockingError) -> Self {
        crate::grant::account::AccountError::Unavailable(OAuthError::ServerError)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptions_keep_only_allowed_characters() {
        assert_eq!(sanitize("a \"b\" \\ é\n"), "a ?b? ? ??");
    }
}
