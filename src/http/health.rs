//! Liveness, readiness and the Prometheus scrape endpoint.

use actix_web::{HttpResponse, web};
use serde_json::json;

use super::AppState;

/// The process is up and serving HTTP.
pub async fn live() -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": "live"}))
}

/// Redis answers and every actor is running: safe to send traffic here.
pub async fn ready(state: web::Data<AppState>) -> HttpResponse {
    let redis = state.store.ping().await;
    let actors = state.engine.is_running();
    let body = json!({
        "status": if redis.is_ok() && actors { "ready" } else { "not_ready" },
        "redis": match &redis { Ok(()) => "ok".to_string(), Err(e) => e.to_string() },
        "actors": if actors { "running" } else { "stopped" },
    });
    if redis.is_ok() && actors {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable().json(body)
    }
}

pub async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(state.prometheus.render())
}
