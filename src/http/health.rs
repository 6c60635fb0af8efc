//! Liveness, readiness and the Prometheus scrape endpoint.

use actix_web::{HttpResponse, web};
use std::time::Instant;

use serde_json::json;

use super::AppState;

/// The process is up and serving HTTP.
#[utoipa::path(get, path = "/health/live", operation_id = "live", tag = "health", responses((status = 200, description = "The process serves HTTP", body = Object)), security(()))]
pub async fn live() -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": "live"}))
}

/// Storage answers, every actor is running and no stage has been failing its storage calls for
/// longer than `server.stage_failure_after`: safe to send traffic here.
#[utoipa::path(get, path = "/health/ready", operation_id = "ready", tag = "health", responses((status = 200, description = "Ready", body = Object), (status = 503, description = "Not ready, naming the failing stages", body = Object)), security(()))]
pub async fn ready(state: web::Data<AppState>) -> HttpResponse {
    let storage = state.store.ping().await;
    let actors = state.engine.is_running();
    let failing = state
        .engine
        .stage_health()
        .failing_longer_than(state.settings.server.stage_failure_after, Instant::now());
    let ready = storage.is_ok() && actors && failing.is_empty();
    let body = json!({
        "status": if ready { "ready" } else { "not_ready" },
        "storage": match &storage { Ok(()) => "ok".to_string(), Err(e) => e.to_string() },
        "actors": if actors { "running" } else { "stopped" },
        "failing_stages": failing,
        "stages": state.engine.stage_health().states(Instant::now()),
    });
    if ready {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable().json(body)
    }
}

#[utoipa::path(get, path = "/metrics", operation_id = "metrics", tag = "health", responses((status = 200, description = "Prometheus text format", body = String, content_type = "text/plain")), security(()))]
pub async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    crate::metrics::collect_process();
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(state.prometheus.render())
}
