//! Counting requests for the metrics, and the `/metrics` endpoint, served on its own address
//! (`server.metrics_listen`) so that it need not be exposed where the API is.

use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{web, HttpResponse};

use crate::http::AppState;

/// The middleware: each answered request by route (the matched pattern), method and status.
pub async fn record(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = Instant::now();
    let state = req.app_data::<web::Data<AppState>>().cloned();
    let method = method_label(req.method());
    let res = next.call(req).await?;
    if let Some(state) = state {
        let route = res.request().match_pattern();
        state.services.operations.metrics().http_request(
            route.as_deref().unwrap_or("unmatched"),
            method,
            res.status().as_str(),
            started.elapsed(),
        );
    }
    Ok(res)
}

/// Methods as labels: anything unusual is `other`, so that a client cannot add label values.
fn method_label(method: &actix_web::http::Method) -> &'static str {
    use actix_web::http::Method;
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::HEAD => "HEAD",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        Method::PATCH => "PATCH",
        _ => "other",
    }
}

/// `GET /metrics`, in the Prometheus text format.
pub async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    let text = state.services.operations.render_metrics();
    HttpResponse::Ok()
        .insert_header((
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        ))
        .body(text)
}
