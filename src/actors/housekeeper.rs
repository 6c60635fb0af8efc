//! `Housekeeper`: trims streams to their retention, deletes old attempt logs, and samples
//! backlog gauges.

use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use metrics_exporter_prometheus::PrometheusHandle;

use super::messages::Tick;
use crate::delivery::routes::Routes;
use crate::metrics as m;
use crate::stage_health::StageReport;
use crate::store::{Backend, DeliveryGauges, StoreError, StreamGauges};
use crate::time::unix_ms;

pub struct Housekeeper {
    store: Arc<dyn Backend>,
    health: StageReport,
    routes: Routes,
    log_retention: Duration,
    interval: Duration,
    prometheus: PrometheusHandle,
}

impl Housekeeper {
    pub fn new(
        store: Arc<dyn Backend>,
        routes: Routes,
        log_retention: Duration,
        interval: Duration,
        prometheus: PrometheusHandle,
        health: StageReport,
    ) -> Self {
        Housekeeper {
            store,
            health,
            routes,
            log_retention,
            interval,
            prometheus,
        }
    }
}

fn publish_delivery(g: &DeliveryGauges) {
    metrics::gauge!(m::STREAM_LAG, "stream" => "deliveries").set(g.lag as f64);
    metrics::gauge!(m::STREAM_PENDING, "stream" => "deliveries").set(g.pending as f64);
    metrics::gauge!(m::STREAM_LENGTH, "stream" => "dead").set(g.dead as f64);
    metrics::gauge!(m::RETRY_QUEUE, "state" => "scheduled").set(g.scheduled as f64);
    metrics::gauge!(m::RETRY_QUEUE, "state" => "due").set(g.due as f64);
}

fn publish(g: &StreamGauges) {
    metrics::gauge!(m::STREAM_LENGTH, "stream" => "inbound").set(g.inbound_length as f64);
    metrics::gauge!(m::STREAM_LENGTH, "stream" => "events").set(g.events_length as f64);
    metrics::gauge!(m::STREAM_LENGTH, "stream" => "quarantine").set(g.quarantine_length as f64);
    metrics::gauge!(m::STREAM_LAG, "stream" => "inbound").set(g.inbound_lag as f64);
    metrics::gauge!(m::STREAM_PENDING, "stream" => "inbound").set(g.inbound_pending as f64);
    metrics::gauge!(m::STORAGE_BYTES).set(g.storage_bytes as f64);
    if let Some(free) = g.free_bytes {
        metrics::gauge!(m::STORAGE_FREE_BYTES).set(free as f64);
    }
}

impl Actor for Housekeeper {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.notify(Tick);
        ctx.run_interval(self.interval, |_, ctx| ctx.notify(Tick));
    }
}

impl Supervised for Housekeeper {
    fn restarting(&mut self, _ctx: &mut Self::Context) {
        metrics::counter!(m::ACTOR_RESTARTS, "actor" => "housekeeper").increment(1);
    }
}

impl Handler<Tick> for Housekeeper {
    type Result = AtomicResponse<Self, ()>;

    fn handle(&mut self, _msg: Tick, _ctx: &mut Self::Context) -> Self::Result {
        self.prometheus.run_upkeep();
        let store = self.store.clone();
        let endpoints: Vec<String> = self
            .routes
            .current()
            .endpoints()
            .map(|e| e.endpoint.id.clone())
            .collect();
        let log_cutoff = unix_ms().saturating_sub(self.log_retention.as_millis() as u64);
        AtomicResponse::new(Box::pin(
            async move {
                store.trim().await?;
                store.trim_deliveries().await?;
                store.purge_attempt_logs(&endpoints, log_cutoff).await?;
                let d = store.delivery_gauges(unix_ms()).await?;
                Ok((store.stream_gauges().await?, d))
            }
            .into_actor(self)
            .map(
                |result: Result<(StreamGauges, DeliveryGauges), StoreError>, act, _ctx| {
                    act.health.note(&result);
                    match result {
                        Ok((g, d)) => {
                            metrics::gauge!(m::STORAGE_UP).set(1.0);
                            publish(&g);
                            publish_delivery(&d);
                        }
                        Err(e) => {
                            metrics::gauge!(m::STORAGE_UP).set(0.0);
                            tracing::warn!(error = %e, "housekeeping failed");
                        }
                    }
                },
            ),
        ))
    }
}
