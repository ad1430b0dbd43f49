use actix_web::{web, HttpResponse};

use crate::grant::OAuthError;
use crate::http::{oauth_error, AppState};
use crate::store::models::Client;

/// Authorization server metadata (RFC 8414): only what is actually supported.
pub async fn metadata(state: web::Data<AppState>) -> HttpResponse {
    let s = state.service.clone();
    let scopes = web::block(move || -> Result<Vec<String>, OAuthError> {
        Ok(Client::all_scopes(&mut *s.pool.get()?)?)
    })
    .await;
    let scopes = match scopes {
        Ok(Ok(scopes)) => scopes,
        Ok(Err(e)) => return oauth_error(&e),
        Err(_) => return oauth_error(&OAuthError::ServerError),
    };
    let s = &state.service;
    let issuer = &s.issuer;
    HttpResponse::Ok()
        .insert_header(("Cache-Control", "public, max-age=300"))
        .json(serde_json::json!({
            "issuer": issuer,
            "authorization_endpoint": format!("{issuer}/authorize"),
            "token_endpoint": format!("{issuer}/token"),
            "jwks_uri": format!("{issuer}/jwks.json"),
            "userinfo_endpoint": format!("{issuer}/userinfo"),
            "revocation_endpoint": format!("{issuer}/revoke"),
            "introspection_endpoint": format!("{issuer}/introspect"),
            "grant_types_supported": ["authorization_code", "client_credentials", "password", "refresh_token"],
            "response_types_supported": ["code"],
            "response_modes_supported": ["query"],
            "code_challenge_methods_supported": ["S256"],
            "authorization_response_iss_parameter_supported": true,
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
            "revocation_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
            "introspection_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
            "scopes_supported": scopes,
            "access_token_signing_alg_values_supported": s.keys.get().algorithms(),
        }))
}
