//! HTTP: Meta's webhooks, the management API, health and metrics.

pub mod api;
pub mod auth;
pub mod error;
pub mod health;
pub mod ingress;

use std::collections::HashMap;
use std::sync::Arc;

use actix_web::{HttpResponse, web};
use metrics_exporter_prometheus::PrometheusHandle;
use tokio::sync::Semaphore;

use crate::actors::Engine;
use crate::config::Settings;
use crate::store::Store;
use error::ApiError;
use ingress::Source;

/// This HTTP worker's journal writer (one per worker, on the worker's thread).
pub struct JournalWriter(pub actix::Addr<crate::actors::ingress_writer::IngressWriter>);

/// Shared by every worker; built once before the server starts.
pub struct AppState {
    pub settings: Arc<Settings>,
    pub sources: HashMap<String, Source>,
    pub store: Arc<dyn Store>,
    pub engine: Engine,
    pub prometheus: PrometheusHandle,
    /// Bounds the background writes of rejection records.
    pub rejection_writers: Arc<Semaphore>,
}

impl AppState {
    pub fn new(
        settings: Arc<Settings>,
        store: Arc<dyn Store>,
        engine: Engine,
        prometheus: PrometheusHandle,
    ) -> AppState {
        let sources = settings
            .sources
            .iter()
            .map(|(name, s)| {
                let source = Source {
                    secrets: s
                        .app_secrets
                        .iter()
                        .map(|k| k.as_bytes().to_vec())
                        .collect(),
                    verify_token: s.verify_token.clone(),
                };
                (name.clone(), source)
            })
            .collect();
        AppState {
            settings,
            sources,
            store,
            engine,
            prometheus,
            rejection_writers: ingress::rejection_writers(),
        }
    }
}

/// Every route.
pub fn routes(cfg: &mut web::ServiceConfig) {
    let query_errors = web::QueryConfig::default()
        .error_handler(|e, _| ApiError::BadRequest(format!("invalid query: {e}")).into());
    cfg.app_data(query_errors)
        .route("/webhooks/{source}", web::get().to(ingress::handshake))
        .route("/webhooks/{source}", web::post().to(ingress::receive))
        .service(
            web::scope("/api/v1")
                .route("/events", web::get().to(api::list_events))
                .route("/events/{id}", web::get().to(api::get_event))
                .route("/stats", web::get().to(api::stats))
                .route("/quarantine", web::get().to(api::list_quarantine))
                .route("/rejected", web::get().to(api::list_rejected)),
        )
        .route("/health/live", web::get().to(health::live))
        .route("/health/ready", web::get().to(health::ready))
        .route("/metrics", web::get().to(health::metrics))
        .default_service(web::to(|| async {
            HttpResponse::NotFound().json(
                serde_json::json!({"error": {"code": "not_found", "message": "no such route"}}),
            )
        }));
}
