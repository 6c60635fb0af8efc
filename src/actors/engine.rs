//! Starts the actors under supervision and stops them in order.

use std::sync::{Arc, Mutex, PoisonError};

use actix::prelude::*;
use metrics_exporter_prometheus::PrometheusHandle;

use super::dispatcher::Dispatcher;
use super::housekeeper::Housekeeper;
use super::ingress_writer::IngressWriter;
use super::messages::{Drain, DrainDeliveries, RefreshRoutes};
use super::normalizer::Normalizer;
use super::reclaimer::{DeliveryClaims, Reclaimer};
use super::retry_timer::RetryTimer;
use super::router::Router;
use crate::config::{IngressSettings, Settings};
use crate::delivery::client::Outbound;
use crate::delivery::routes::{RouteTable, Routes};
use crate::delivery::ssrf::AddressPolicy;
use crate::stage_health::StageHealth;
use crate::store::{Backend, StoreError};

/// The running actors. Cheap to clone: addresses and handles only.
#[derive(Clone)]
pub struct Engine {
    /// Whether each stage reaches its storage; readiness reads it.
    health: StageHealth,
    /// One per HTTP worker, started by [`Engine::start_journal_writer`].
    writers: Arc<Mutex<Vec<Addr<IngressWriter>>>>,
    store: Arc<dyn Backend>,
    ingress_settings: IngressSettings,
    /// One per journal partition.
    normalizers: Vec<Addr<Normalizer>>,
    /// Only for a backend whose work several instances share.
    reclaimer: Option<Addr<Reclaimer>>,
    housekeeper: Addr<Housekeeper>,
    normalizer_arbiter: ArbiterHandle,
    routes: Routes,
    router: Addr<Router>,
    dispatcher: Addr<Dispatcher>,
    retry_timer: Addr<RetryTimer>,
    dispatcher_arbiter: ArbiterHandle,
}

impl Engine {
    /// Loads the routing table, then starts the actors. Must be called from within an actix
    /// system. The table comes first: an event split, or a delivery read, before it is known
    /// would find no endpoints.
    pub async fn start(
        settings: &Settings,
        store: Arc<dyn Backend>,
        prometheus: PrometheusHandle,
    ) -> Result<Self, StoreError> {
        let consumer = settings.instance_id();
        let health = StageHealth::default();
        let routes = Routes::default();
        routes.replace(RouteTable::build(
            store.list_endpoints().await?,
            store.account_owners().await?,
        ));
        let router = {
            let (store, routes) = (store.clone(), routes.clone());
            let interval = settings.delivery.route_refresh;
            let health = health.stage("router");
            Supervisor::start(move |_| Router::new(store, routes, interval, health))
        };

        // Parsing is CPU work: a thread of its own (at a lower priority) keeps it off the HTTP
        // workers, and a connection of its own keeps its commits from delaying journal writes.
        let normalizer_arbiter = Arbiter::new().handle();
        let nice = settings.normalizer.nice;
        normalizer_arbiter.spawn_fn(move || lower_thread_priority(nice));
        let normalizers = store
            .journal_partitions()
            .into_iter()
            .map(|store| {
                let (c, s) = (consumer.clone(), settings.normalizer.clone());
                let (r, health) = (routes.clone(), health.stage("normalizer"));
                Supervisor::start_in_arbiter(&normalizer_arbiter, move |_| {
                    Normalizer::new(store, c, s, r, health)
                })
            })
            .collect();

        // Outbound HTTP (signing, TLS) gets a thread of its own too, and its own connection.
        let dispatcher_arbiter = Arbiter::new().handle();
        let dispatcher = {
            let (store, c, s, r) = (
                store.for_consumer(),
                consumer.clone(),
                (settings.delivery.clone(), settings.normalizer.block),
                routes.clone(),
            );
            let client = Outbound::new(AddressPolicy::new(settings.delivery.ssrf.allow.clone()));
            let health = health.stage("dispatcher");
            Supervisor::start_in_arbiter(&dispatcher_arbiter, move |_| {
                Dispatcher::new(store, c, s, r, client, health)
            })
        };
        let retry_timer = {
            let (store, interval) = (store.clone(), settings.delivery.retry_poll);
            let health = health.stage("retry_timer");
            Supervisor::start(move |_| RetryTimer::new(store, interval, health))
        };
        let claims = Arc::new(DeliveryClaims {
            store: store.clone(),
            min_idle: settings.delivery.reclaim_idle,
            dispatcher: dispatcher.clone(),
        });

        let reclaimer = store.shared_work().is_some().then(|| {
            let interval = settings.normalizer.reclaim_interval;
            let health = health.stage("reclaimer");
            Supervisor::start(move |_| Reclaimer::new(consumer, interval, claims, health))
        });

        let housekeeper = {
            let (store, interval) = (store.clone(), settings.retention.housekeeping_interval);
            let routes = routes.clone();
            let log_retention = settings.delivery.log_retention;
            let health = health.stage("housekeeper");
            Supervisor::start(move |_| {
                Housekeeper::new(store, routes, log_retention, interval, prometheus, health)
            })
        };

        Ok(Engine {
            health,
            writers: Arc::new(Mutex::new(Vec::new())),
            store,
            ingress_settings: settings.ingress.clone(),
            normalizers,
            reclaimer,
            housekeeper,
            normalizer_arbiter,
            routes,
            router,
            dispatcher,
            retry_timer,
            dispatcher_arbiter,
        })
    }

    /// The routing table in use.
    pub fn routes(&self) -> &Routes {
        &self.routes
    }

    /// Reloads the routing table now (after an endpoint change through this instance's API).
    pub async fn refresh_routes(&self) -> Result<(), StoreError> {
        self.router
            .send(RefreshRoutes)
            .await
            .map_err(|e| StoreError::Unavailable(format!("router: {e}")))?
    }

    /// Starts a journal writer on the current thread's arbiter, with a connection of its own.
    /// Called once by each HTTP worker as it starts.
    pub fn start_journal_writer(&self) -> Addr<IngressWriter> {
        let (store, settings) = (self.store.for_consumer(), self.ingress_settings.clone());
        let health = self.health.stage("ingress");
        let writer = Supervisor::start(move |_| IngressWriter::new(store, settings, health));
        self.writers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(writer.clone());
        writer
    }

    /// Whether each stage reaches its storage.
    pub fn stage_health(&self) -> &StageHealth {
        &self.health
    }

    /// Every actor is alive (restarting counts as alive).
    pub fn is_running(&self) -> bool {
        let writers_ok = self
            .writers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .all(Addr::connected);
        writers_ok
            && self.normalizers.iter().all(Addr::connected)
            && self.reclaimer.as_ref().is_none_or(Addr::connected)
            && self.housekeeper.connected()
            && self.router.connected()
            && self.dispatcher.connected()
            && self.retry_timer.connected()
    }

    /// Lets the normalizer finish its batch, then stops it. Call after the HTTP server stopped:
    /// by then every journal write was answered (see [`IngressWriter`]).
    pub async fn shutdown(&self) {
        let drains = self.normalizers.iter().map(|n| n.send(Drain));
        for drained in futures_util::future::join_all(drains).await {
            if let Err(e) = drained {
                tracing::warn!(error = %e, "normalizer was gone at shutdown");
            }
        }
        self.normalizer_arbiter.stop();
        if let Err(e) = self.dispatcher.send(DrainDeliveries).await {
            tracing::warn!(error = %e, "dispatcher was gone at shutdown");
        }
        self.dispatcher_arbiter.stop();
    }
}

/// Lowers the calling thread's scheduling priority by `nice` (Linux applies `setpriority` to the
/// calling thread, not the process). A failure only costs priority, so it is logged, not fatal.
fn lower_thread_priority(nice: i32) {
    if nice == 0 {
        return;
    }
    #[cfg(target_os = "linux")]
    {
        // SAFETY: setpriority takes plain integers and touches no memory of ours.
        let rc = unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, nice) };
        if rc != 0 {
            tracing::warn!(nice, error = %std::io::Error::last_os_error(), "cannot lower the normalizer's priority");
        }
    }
}
