use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};

use crate::grant::{BearerError, Scheme};
use crate::http::error::{bearer_challenge, bearer_invalid_request, dpop_challenge};
use crate::http::{cors, no_store, oauth_error, AppState};

/// `GET|POST /userinfo` (OpenID Connect Core §5.3) with the access token in
/// `Authorization: Bearer …` (RFC 6750 §2.1) or, for a POST, as `access_token` in a form body
/// (§2.2). Both at once is `invalid_request` (§2).
pub async fn userinfo(
    req: HttpRequest,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> HttpResponse {
    // `Bearer` (RFC 6750) or `DPoP` (RFC 9449 §7.1), each with its token.
    let authorization = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, rest) = v.trim().split_once(' ')?;
            let dpop = scheme.eq_ignore_ascii_case("dpop");
            (dpop || scheme.eq_ignore_ascii_case("bearer")).then(|| (dpop, rest.trim().to_owned()))
        })
        .filter(|(_, t)| !t.is_empty());
    let dpop_scheme = authorization.as_ref().is_some_and(|(dpop, _)| *dpop);
    let from_header = authorization.map(|(_, t)| t);
    let from_body = body_token(&req, &body);
    let origin = cors::request_origin(&req);
    let token = match (from_header, from_body) {
        (Some(t), None) | (None, Some(t)) => t,
        refused => {
            let mut res = match refused {
                (Some(_), Some(_)) => {
                    bearer_invalid_request("the access token is in the header and in the body")
                }
                // RFC 6750 §3.1: no credentials at all gets the challenge without an error code.
                _ => bearer_challenge(None),
            };
            let readable_by = cors::registered(&state, origin).await;
            cors::client_response(&mut res, readable_by.as_ref());
            return res;
        }
    };
    // Two proofs, or a malformed one, are no proof.
    let proof = super::token::dpop_header(&req).ok().flatten();
    let method = req.method().as_str().to_owned();
    let answered = state
        .blocking(move |s| {
            let scheme = if dpop_scheme {
                Scheme::Dpop {
                    proof: proof.as_deref(),
                    method: &method,
                }
            } else {
                Scheme::Bearer
            };
            let result = s.tokens.userinfo(&token, scheme);
            // The app the token was issued to decides who reads the claims; anyone registered
            // reads a refusal.
            let readable = origin.filter(|o| match &result {
                Ok(info) => s.tokens.origin_may_read(&info.client_id, o),
                Err(_) => s.tokens.origin_registered(o),
            });
            Ok::<_, BearerError>((result, readable))
        })
        .await;
    let (result, readable_by) = answered.unwrap_or_else(|e| (Err(e), None));
    let mut res = match result {
        Ok(info) => no_store(&mut HttpResponse::Ok()).json(info.claims),
        Err(BearerError::InvalidToken(why)) if dpop_scheme => dpop_challenge("invalid_token", &why),
        Err(BearerError::InvalidToken(why)) => bearer_challenge(Some(&why)),
        Err(BearerError::InvalidDpopProof(why)) => dpop_challenge("invalid_dpop_proof", &why),
        Err(BearerError::UseDpopNonce(why)) => dpop_challenge("use_dpop_nonce", &why),
        Err(BearerError::Unavailable(e)) => oauth_error(&e),
    };
    cors::client_response(&mut res, readable_by.as_ref());
    if dpop_scheme {
        cors::dpop_nonce(&mut res, &state);
    }
    res
}

/// `access_token` from a form-encoded POST body, as RFC 6750 §2.2 allows.
fn body_token(req: &HttpRequest, body: &[u8]) -> Option<String> {
    let form = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    if req.method() != actix_web::http::Method::POST || !form {
        return None;
    }
    url::form_urlencoded::parse(body)
        .find(|(k, _)| k == "access_token")
        .map(|(_, v)| v.into_owned())
        .filter(|t| !t.is_empty())
}
