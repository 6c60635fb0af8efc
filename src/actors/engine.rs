//! Starts the actors under supervision and stops them in order.

use std::sync::Arc;

use actix::prelude::*;
use metrics_exporter_prometheus::PrometheusHandle;

use super::housekeeper::Housekeeper;
use super::ingress_writer::IngressWriter;
use super::messages::{Drain, FlushJournal};
use super::normalizer::Normalizer;
use super::reclaimer::Reclaimer;
use crate::config::Settings;
use crate::store::Store;

/// The running actors. Cheap to clone: addresses only.
#[derive(Clone)]
pub struct Engine {
    pub ingress: Addr<IngressWriter>,
    normalizer: Addr<Normalizer>,
    reclaimer: Addr<Reclaimer>,
    housekeeper: Addr<Housekeeper>,
    normalizer_arbiter: ArbiterHandle,
}

impl Engine {
    /// Must be called from within an actix system.
    pub fn start(settings: &Settings, store: Arc<dyn Store>, prometheus: PrometheusHandle) -> Self {
        let consumer = settings.instance_id();

        let ingress = {
            let (store, s) = (store.clone(), settings.ingress.clone());
            Supervisor::start(move |_| IngressWriter::new(store, s))
        };

        // Parsing is CPU work: a thread of its own keeps it off the ingress writer's.
        let normalizer_arbiter = Arbiter::new().handle();
        let normalizer = {
            let (store, c, s) = (store.clone(), consumer.clone(), settings.normalizer.clone());
            Supervisor::start_in_arbiter(&normalizer_arbiter, move |_| Normalizer::new(store, c, s))
        };

        let reclaimer = {
            let (store, n) = (store.clone(), normalizer.clone());
            let s = settings.normalizer.clone();
            Supervisor::start(move |_| {
                Reclaimer::new(store, consumer, s.reclaim_idle, s.reclaim_interval, n)
            })
        };

        let housekeeper = {
            let interval = settings.retention.housekeeping_interval;
            Supervisor::start(move |_| Housekeeper::new(store, interval, prometheus))
        };

        Engine {
            ingress,
            normalizer,
            reclaimer,
            housekeeper,
            normalizer_arbiter,
        }
    }

    /// Every actor is alive (restarting counts as alive).
    pub fn is_running(&self) -> bool {
        self.ingress.connected()
            && self.normalizer.connected()
            && self.reclaimer.connected()
            && self.housekeeper.connected()
    }

    /// Commits what the ingress writer holds, lets the normalizer finish its batch, then stops.
    /// Call after the HTTP server stopped taking requests.
    pub async fn shutdown(&self) {
        if let Err(e) = self.ingress.send(FlushJournal).await {
            tracing::warn!(error = %e, "journal writer was gone at shutdown");
        }
        if let Err(e) = self.normalizer.send(Drain).await {
            tracing::warn!(error = %e, "normalizer was gone at shutdown");
        }
        self.normalizer_arbiter.stop();
    }
}
