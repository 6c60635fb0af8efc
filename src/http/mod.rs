//! HTTP: Meta's webhooks, the management API, health and metrics.

pub mod api;
pub mod auth;
pub mod client_addr;
pub mod deliveries;
pub mod endpoints;
pub mod error;
pub mod health;
pub mod ingress;
pub mod json;
pub mod rejections;
pub mod storage_gate;
pub mod tenants;

use std::collections::HashMap;
use std::sync::Arc;

use actix_web::{HttpResponse, web};
use metrics_exporter_prometheus::PrometheusHandle;

use crate::actors::Engine;
use crate::config::Settings;
use crate::delivery::client::Outbound;
use crate::delivery::ssrf::AddressPolicy;
use crate::store::Backend;
use error::ApiError;
use ingress::Source;

/// This HTTP worker's journal writer (one per worker, on the worker's thread).
pub struct JournalWriter(pub actix::Addr<crate::actors::ingress_writer::IngressWriter>);

/// Shared by every worker; built once before the server starts.
pub struct AppState {
    pub settings: Arc<Settings>,
    pub sources: HashMap<String, Source>,
    pub store: Arc<dyn Backend>,
    pub engine: Engine,
    /// For test sends from the API (deliveries use the dispatcher's own client).
    pub outbound: Outbound,
    pub address_policy: AddressPolicy,
    pub prometheus: PrometheusHandle,
    /// Bounds the records kept of refused webhook requests.
    pub rejections: rejections::RejectionLimits,
    /// Whether ingress should answer 503 without trying storage.
    pub storage_gate: Arc<storage_gate::StorageGate>,
}

impl AppState {
    /// The source a webhook path names, and its configured name: exactly, or else in any
    /// letter case (environment variables give lower-case names: `HOOKD_SOURCES__MYAPP__…`
    /// configures `myapp`, and `/webhooks/MYAPP` reaches it).
    pub fn source(&self, name: &str) -> Option<(&str, &Source)> {
        self.sources
            .get_key_value(name)
            .or_else(|| {
                self.sources
                    .iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case(name))
            })
            .map(|(k, s)| (k.as_str(), s))
    }

    pub fn new(
        settings: Arc<Settings>,
        store: Arc<dyn Backend>,
        engine: Engine,
        prometheus: PrometheusHandle,
    ) -> AppState {
        let address_policy = AddressPolicy::new(settings.delivery.ssrf.allow.clone());
        let rejections =
            rejections::RejectionLimits::new(settings.ingress.rejected_per_peer_per_minute);
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
            outbound: Outbound::new(address_policy.clone()),
            address_policy,
            prometheus,
            rejections,
            storage_gate: Arc::default(),
        }
    }
}

/// What one listener serves (health answers on every one).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Serves {
    pub webhooks: bool,
    pub api: bool,
    pub metrics: bool,
}

impl Serves {
    /// For the log: what it serves, by name.
    pub fn names(self) -> Vec<&'static str> {
        [
            (self.webhooks, "webhooks"),
            (self.api, "api"),
            (self.metrics, "metrics"),
            (true, "health"),
        ]
        .into_iter()
        .filter_map(|(on, name)| on.then_some(name))
        .collect()
    }
}

/// The routes of one listener.
pub fn routes(cfg: &mut web::ServiceConfig, serves: Serves) {
    let query_errors = web::QueryConfig::default()
        .error_handler(|e, _| ApiError::BadRequest(format!("invalid query: {e}")).into());
    // JSON bodies are read by `json::ApiJson`, which names the offending field itself.
    cfg.app_data(query_errors);
    if serves.webhooks {
        cfg.route("/webhooks/{source}", web::get().to(ingress::handshake))
            .route("/webhooks/{source}", web::post().to(ingress::receive));
    }
    if serves.api {
        api_routes(cfg);
    }
    if serves.metrics {
        cfg.route("/metrics", web::get().to(health::metrics));
    }
    cfg.route("/health/live", web::get().to(health::live))
        .route("/health/ready", web::get().to(health::ready))
        .default_service(web::to(|| async {
            HttpResponse::NotFound().json(
                serde_json::json!({"error": {"code": "not_found", "message": "no such route"}}),
            )
        }));
}

fn api_routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/api/v1")
            .route("/events", web::get().to(api::list_events))
            .route("/events/{id}", web::get().to(api::get_event))
            .route(
                "/events/{id}/deliveries/{endpoint_id}/retry",
                web::post().to(deliveries::retry_one),
            )
            .route("/event-types", web::get().to(deliveries::event_types))
            .route("/tenants", web::post().to(tenants::create))
            .route("/tenants", web::get().to(tenants::list))
            .route("/tenants/{id}", web::get().to(tenants::get))
            .route("/tenants/{id}/keys", web::post().to(tenants::create_key))
            .route(
                "/tenants/{id}/accounts",
                web::post().to(tenants::add_accounts),
            )
            .route(
                "/tenants/{id}/accounts/{account_id}",
                web::delete().to(tenants::remove_account),
            )
            .route(
                "/tenants/{id}/keys/{key_id}",
                web::delete().to(tenants::delete_key),
            )
            .route("/endpoints", web::post().to(endpoints::create))
            .route("/endpoints", web::get().to(endpoints::list))
            .route("/endpoints/{id}", web::get().to(endpoints::get))
            .route("/endpoints/{id}", web::patch().to(endpoints::update))
            .route("/endpoints/{id}", web::delete().to(endpoints::delete))
            .route("/endpoints/{id}/secret", web::get().to(endpoints::secret))
            .route(
                "/endpoints/{id}/secret/rotate",
                web::post().to(endpoints::rotate_secret),
            )
            .route("/endpoints/{id}/test", web::post().to(endpoints::test_send))
            .route(
                "/endpoints/{id}/attempts",
                web::get().to(endpoints::attempts),
            )
            .route(
                "/endpoints/{id}/stats",
                web::get().to(endpoints::endpoint_stats),
            )
            .route(
                "/deliveries/stats",
                web::get().to(deliveries::overall_stats),
            )
            .route("/dead", web::get().to(deliveries::list_dead))
            .route("/dead/replay", web::post().to(deliveries::replay))
            .route("/attempts", web::delete().to(deliveries::purge_attempts))
            .route("/stats", web::get().to(api::stats))
            .route("/quarantine", web::get().to(api::list_quarantine))
            .route("/rejected", web::get().to(api::list_rejected)),
    );
}
