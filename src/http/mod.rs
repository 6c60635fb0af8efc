//! HTTP: Meta's webhooks, the management API, health and metrics.

pub mod api;
pub mod api_limits;
pub mod audit;
pub mod auth;
pub mod client_addr;
pub mod corrections;
pub mod deliveries;
pub mod endpoints;
pub mod error;
pub mod event_types;
pub mod graph;
pub mod health;
pub mod idempotency;
pub mod ingress;
pub mod json;
pub mod openapi;
pub mod rejections;
pub mod storage_gate;
pub mod stream;
pub mod tenants;
pub mod test_suites;
pub mod tls;
pub mod ui;

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
    /// Shared by every worker: the limits are per instance.
    pub api_limits: Arc<api_limits::ApiLimits>,
    /// `settings.api.admin_key` is emptied once this is made from it.
    pub admin_key: auth::AdminKey,
    /// For the subscription management API.
    pub graph: crate::graph::GraphClient,
    /// The handshakes answered lately, for the subscription check.
    pub handshakes: crate::graph::handshakes::HandshakeLog,
    /// The `GET /api/v1/stream` clients being served.
    pub stream_clients: Arc<std::sync::atomic::AtomicUsize>,
    /// Becomes true when hookd begins to stop: streams end then, rather than holding a
    /// graceful shutdown open until its timeout.
    pub closing: Arc<tokio::sync::watch::Sender<bool>>,
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
        admin_key: auth::AdminKey,
        store: Arc<dyn Backend>,
        engine: Engine,
        prometheus: PrometheusHandle,
    ) -> AppState {
        let address_policy = AddressPolicy::new(settings.delivery.ssrf.allow.clone());
        let settings_graph = settings.graph.clone();
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
                    client_cert_name: s.require_client_cert.then(|| s.client_cert_name.clone()),
                };
                (name.clone(), source)
            })
            .collect();
        AppState {
            api_limits: Arc::new(api_limits::ApiLimits::new(&settings.api)),
            admin_key,
            settings,
            sources,
            store,
            engine,
            outbound: Outbound::new(address_policy.clone()),
            address_policy,
            prometheus,
            rejections,
            storage_gate: Arc::default(),
            graph: crate::graph::GraphClient::new(&settings_graph),
            handshakes: Default::default(),
            stream_clients: Arc::default(),
            closing: Arc::new(tokio::sync::watch::Sender::new(false)),
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

/// Registers `path` with its methods; any other method is answered `405` with `Allow`.
macro_rules! resource {
    ($cfg:expr, $path:expr, $($method:ident => $handler:expr),+ $(,)?) => {{
        let allow: &'static str = concat!($(stringify!($method), " "),+);
        $cfg.service(
            web::resource($path)
                $(.route(web::$method().to($handler)))+
                .default_service(web::to(move || method_not_allowed(allow))),
        );
    }};
}

/// `405` naming the methods the route has (given as `"get post "`).
async fn method_not_allowed(allow: &'static str) -> HttpResponse {
    let allow = allow
        .split_whitespace()
        .map(str::to_ascii_uppercase)
        .collect::<Vec<_>>()
        .join(", ");
    HttpResponse::MethodNotAllowed()
        .insert_header((actix_web::http::header::ALLOW, allow.clone()))
        .json(serde_json::json!({"error": {
            "code": "method_not_allowed",
            "message": format!("this route takes {allow}"),
        }}))
}

/// The routes of one listener.
pub fn routes(cfg: &mut web::ServiceConfig, serves: Serves) {
    let query_errors = web::QueryConfig::default()
        .error_handler(|e, _| ApiError::BadRequest(format!("invalid query: {e}")).into());
    // JSON bodies are read by `json::ApiJson`, which names the offending field itself.
    cfg.app_data(query_errors);
    if serves.webhooks {
        resource!(cfg, "/webhooks/{source}", get => ingress::handshake, post => ingress::receive);
    }
    if serves.api {
        cfg.service(
            web::scope("/api/v1")
                .wrap(actix_web::middleware::from_fn(audit::middleware))
                .wrap(actix_web::middleware::from_fn(idempotency::middleware))
                .wrap(actix_web::middleware::from_fn(api_limits::middleware))
                .configure(api_routes),
        );
    }
    if serves.api {
        resource!(cfg, "/", get => ui::root);
        resource!(cfg, "/dashboard", get => ui::dashboard);
        resource!(cfg, "/docs/api", get => ui::reference);
        resource!(cfg, "/ui/{file}", get => ui::asset);
    }
    if serves.metrics {
        resource!(cfg, "/metrics", get => health::metrics);
    }
    resource!(cfg, "/health/live", get => health::live);
    resource!(cfg, "/health/ready", get => health::ready);
    cfg.default_service(web::to(|| async {
        HttpResponse::NotFound()
            .json(serde_json::json!({"error": {"code": "not_found", "message": "no such route"}}))
    }));
}

fn api_routes(cfg: &mut web::ServiceConfig) {
    resource!(cfg, "/events", get => api::list_events);
    resource!(cfg, "/events/{id}", get => api::get_event, delete => corrections::delete_event);
    resource!(cfg, "/events/{id}/deliveries/{endpoint_id}/retry", post => deliveries::retry_one);
    resource!(cfg, "/stream", get => stream::stream);
    resource!(cfg, "/test-suites", get => test_suites::list, post => test_suites::create);
    resource!(cfg, "/test-suites/{id}", get => test_suites::get, delete => test_suites::delete);
    resource!(cfg, "/test-suites/{id}/run", post => test_suites::run);
    resource!(cfg, "/test-suites/{id}/runs/{run_id}", get => test_suites::results);
    resource!(cfg, "/event-types", get => event_types::list);
    // Subscription management through Meta's Graph API (admin only).
    resource!(cfg, "/sources/{source}/graph/subscriptions", get => graph::list_subscriptions, post => graph::subscribe);
    resource!(cfg, "/sources/{source}/graph/subscriptions/{object}", delete => graph::unsubscribe);
    resource!(cfg, "/sources/{source}/graph/subscriptions/{object}/check", post => graph::check);
    resource!(cfg, "/sources/{source}/graph/wabas/{waba_id}/subscribed-apps", get => graph::waba_apps, post => graph::waba_subscribe, delete => graph::waba_unsubscribe);
    resource!(cfg, "/sources/{source}/graph/phone-numbers/{phone_number_id}/webhook", get => graph::phone_webhook, put => graph::set_phone_webhook);
    resource!(cfg, "/sources/{source}/graph/pages", get => graph::list_pages);
    resource!(cfg, "/sources/{source}/graph/pages/{page_id}/token", put => graph::put_page_token, delete => graph::delete_page_token);
    resource!(cfg, "/sources/{source}/graph/pages/{page_id}/subscribed-apps", get => graph::page_apps, post => graph::page_subscribe, delete => graph::page_unsubscribe);
    resource!(cfg, "/event-types/{name}", get => event_types::get);
    resource!(cfg, "/tenants", post => tenants::create, get => tenants::list);
    resource!(cfg, "/tenants/{id}", get => tenants::get);
    resource!(cfg, "/tenants/{id}/keys", post => tenants::create_key);
    resource!(cfg, "/tenants/{id}/accounts", post => tenants::add_accounts);
    resource!(cfg, "/tenants/{id}/accounts/{account_id}", delete => tenants::remove_account);
    resource!(cfg, "/tenants/{id}/keys/{key_id}", delete => tenants::delete_key);
    resource!(cfg, "/endpoints", post => endpoints::create, get => endpoints::list);
    resource!(
        cfg,
        "/endpoints/{id}",
        get => endpoints::get,
        patch => endpoints::update,
        delete => endpoints::delete,
    );
    resource!(cfg, "/endpoints/{id}/secret", get => endpoints::secret);
    resource!(cfg, "/endpoints/{id}/secret/rotate", post => endpoints::rotate_secret);
    resource!(cfg, "/endpoints/{id}/test", post => endpoints::test_send);
    resource!(cfg, "/endpoints/{id}/attempts", get => endpoints::attempts);
    resource!(cfg, "/endpoints/{id}/stats", get => endpoints::endpoint_stats);
    resource!(cfg, "/deliveries/stats", get => deliveries::overall_stats);
    resource!(cfg, "/dead", get => deliveries::list_dead);
    resource!(cfg, "/dead/replay", post => deliveries::replay);
    resource!(cfg, "/attempts", delete => deliveries::purge_attempts);
    resource!(cfg, "/stats", get => api::stats);
    resource!(cfg, "/me", get => api::me);
    resource!(cfg, "/quarantine", get => api::list_quarantine);
    resource!(cfg, "/quarantine/{id}", delete => corrections::delete);
    resource!(cfg, "/quarantine/{id}/reprocess", post => corrections::reprocess);
    resource!(cfg, "/rejected", get => api::list_rejected);
    resource!(cfg, "/audit", get => audit::list);
    resource!(cfg, "/openapi.json", get => openapi::openapi_json);
}
