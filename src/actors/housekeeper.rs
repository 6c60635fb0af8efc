//! `Housekeeper`: trims streams to their retention and samples backlog gauges.

use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use metrics_exporter_prometheus::PrometheusHandle;

use super::messages::Tick;
use crate::metrics as m;
use crate::store::{Store, StoreError, StreamGauges};

pub struct Housekeeper {
    store: Arc<dyn Store>,
    interval: Duration,
    prometheus: PrometheusHandle,
}

impl Housekeeper {
    pub fn new(store: Arc<dyn Store>, interval: Duration, prometheus: PrometheusHandle) -> Self {
        Housekeeper {
            store,
            interval,
            prometheus,
        }
    }
}

fn publish(g: &StreamGauges) {
    metrics::gauge!(m::STREAM_LENGTH, "stream" => "inbound").set(g.inbound_length as f64);
    metrics::gauge!(m::STREAM_LENGTH, "stream" => "events").set(g.events_length as f64);
    metrics::gauge!(m::STREAM_LENGTH, "stream" => "quarantine").set(g.quarantine_length as f64);
    metrics::gauge!(m::STREAM_LAG, "stream" => "inbound").set(g.inbound_lag as f64);
    metrics::gauge!(m::STREAM_PENDING, "stream" => "inbound").set(g.inbound_pending as f64);
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
        AtomicResponse::new(Box::pin(
            async move {
                store.trim().await?;
                store.stream_gauges().await
            }
            .into_actor(self)
            .map(
                |result: Result<StreamGauges, StoreError>, _act, _ctx| match result {
                    Ok(g) => {
                        metrics::gauge!(m::REDIS_UP).set(1.0);
                        publish(&g);
                    }
                    Err(e) => {
                        metrics::gauge!(m::REDIS_UP).set(0.0);
                        tracing::warn!(error = %e, "housekeeping failed");
                    }
                },
            ),
        ))
    }
}
