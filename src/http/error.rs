//! The one place where errors become HTTP responses.

use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, HttpResponseBuilder};

use crate::grant::OAuthError;

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptions_keep_only_allowed_characters() {
        assert_eq!(sanitize("a \"b\" \\ é\n"), "a ?b? ? ??");
    }
}
