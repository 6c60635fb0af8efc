//! `Router`: keeps the routing table current. Endpoint changes made through this instance's
//! API reload it at once ([`RefreshRoutes`]); changes made elsewhere (another instance, hookd
//! disabling an endpoint) are seen by polling a version counter.
//!
//! Matching itself happens where events are created: the normalizer looks each new event up
//! in the table and its commit writes the deliveries with the events, atomically.

use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;

use super::messages::{RefreshRoutes, Tick};
use crate::delivery::routes::{RouteTable, Routes};
use crate::metrics as m;
use crate::stage_health::StageReport;
use crate::store::{Backend, StoreError};

pub struct Router {
    store: Arc<dyn Backend>,
    health: StageReport,
    routes: Routes,
    interval: Duration,
    /// The version the current table was built from.
    version: Option<u64>,
}

impl Router {
    pub fn new(
        store: Arc<dyn Backend>,
        routes: Routes,
        interval: Duration,
        health: StageReport,
    ) -> Self {
        Router {
            store,
            health,
            routes,
            interval,
            version: None,
        }
    }
}

/// Loads the table when the version moved (or always, with `force`); returns the version.
async fn reload(
    store: Arc<dyn Backend>,
    routes: Routes,
    known: Option<u64>,
    force: bool,
) -> Result<u64, StoreError> {
    let version = store.catalogue_version().await?;
    if !force && known == Some(version) {
        return Ok(version);
    }
    let endpoints = store.list_endpoints().await?;
    let owners = store.account_owners().await?;
    publish_gauges(&endpoints);
    routes.replace(RouteTable::build(endpoints, owners));
    metrics::counter!(m::ROUTE_RELOADS).increment(1);
    Ok(version)
}

fn publish_gauges(endpoints: &[crate::model::LiveEndpoint]) {
    let mut counts = [0u64; 4];
    for e in endpoints {
        let i = match (e.endpoint.enabled, e.health.disabled_reason.as_deref()) {
            (_, Some("gone")) => 2,
            (_, Some(_)) => 3,
            (false, None) => 1,
            (true, None) => 0,
        };
        counts[i] += 1;
    }
    for (state, n) in ["active", "disabled", "gone", "failing"]
        .into_iter()
        .zip(counts)
    {
        metrics::gauge!(m::ENDPOINTS, "state" => state).set(n as f64);
    }
}

impl Actor for Router {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.notify(Tick);
        ctx.run_interval(self.interval, |_, ctx| ctx.notify(Tick));
    }
}

impl Supervised for Router {
    fn restarting(&mut self, _ctx: &mut Self::Context) {
        metrics::counter!(m::ACTOR_RESTARTS, "actor" => "router").increment(1);
        self.version = None;
    }
}

impl Handler<Tick> for Router {
    type Result = AtomicResponse<Self, ()>;

    fn handle(&mut self, _msg: Tick, _ctx: &mut Self::Context) -> Self::Result {
        let fut = reload(self.store.clone(), self.routes.clone(), self.version, false);
        AtomicResponse::new(Box::pin(fut.into_actor(self).map(|result, act, _| {
            act.health.note(&result);
            match result {
                Ok(v) => act.version = Some(v),
                Err(e) => tracing::warn!(error = %e, "cannot refresh the endpoint table"),
            }
        })))
    }
}

impl Handler<RefreshRoutes> for Router {
    type Result = AtomicResponse<Self, Result<(), StoreError>>;

    fn handle(&mut self, _msg: RefreshRoutes, _ctx: &mut Self::Context) -> Self::Result {
        let fut = reload(self.store.clone(), self.routes.clone(), self.version, true);
        AtomicResponse::new(Box::pin(fut.into_actor(self).map(|result, act, _| {
            let v = result?;
            act.version = Some(v);
            Ok(())
        })))
    }
}
