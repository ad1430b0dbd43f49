use actix_web::{web, HttpResponse};

use crate::http::AppState;

/// Authorization server metadata (RFC 8414): only what is actually supported.
pub async fn metadata(state: web::Data<AppState>) -> HttpResponse {
    let s = &state.service;
    let issuer = &s.issuer;
    HttpResponse::Ok()
        .insert_header(("Cache-Control", "public, max-age=300"))
        .json(serde_json::json!({
            "issuer": issuer,
            "token_endpoint": format!("{issuer}/token"),
            "jwks_uri": format!("{issuer}/jwks.json"),
            "userinfo_endpoint": format!("{issuer}/userinfo"),
            "grant_types_supported": ["password", "refresh_token"],
            "response_types_supported": [],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
            "scopes_supported": [],
            "access_token_signing_alg_values_supported": s.keys.algorithms(),
        }))
}
