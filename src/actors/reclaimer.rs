//! `Reclaimer`: takes over deliveries that another consumer read but never acknowledged (its
//! instance died), and hands them to this instance's `Dispatcher`. Journal entries are not
//! its business: the instance that takes the journal lease takes them over (see the
//! `Normalizer`), so that they are still stored in the order received.

use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;

use super::dispatcher::Dispatcher;
use super::messages::{ReadPending, Tick};
use crate::metrics as m;
use crate::stage_health::StageReport;
use crate::store::{Backend, StoreError};

const CLAIM_BATCH: usize = 256;

/// Whose deliveries the reclaimer takes over and for whom.
pub struct DeliveryClaims {
    pub store: Arc<dyn Backend>,
    /// Must exceed the longest endpoint timeout.
    pub min_idle: Duration,
    pub dispatcher: Addr<Dispatcher>,
}

pub struct Reclaimer {
    health: StageReport,
    consumer: String,
    interval: Duration,
    deliveries: Arc<DeliveryClaims>,
}

impl Reclaimer {
    pub fn new(
        consumer: String,
        interval: Duration,
        deliveries: Arc<DeliveryClaims>,
        health: StageReport,
    ) -> Self {
        Reclaimer {
            health,
            consumer,
            interval,
            deliveries,
        }
    }
}

/// Claims stalled deliveries; returns how many were taken.
async fn claim(consumer: String, d: Arc<DeliveryClaims>) -> Result<usize, StoreError> {
    // The engine starts a reclaimer only for a backend with shared work.
    match d.store.shared_work() {
        Some(w) => {
            w.claim_stale_deliveries(&consumer, d.min_idle, CLAIM_BATCH)
                .await
        }
        None => Ok(0),
    }
}

impl Actor for Reclaimer {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        // Timers vanish on restart, so the interval is set up again here every time.
        ctx.run_interval(self.interval, |_, ctx| ctx.notify(Tick));
    }
}

impl Supervised for Reclaimer {
    fn restarting(&mut self, _ctx: &mut Self::Context) {
        metrics::counter!(m::ACTOR_RESTARTS, "actor" => "reclaimer").increment(1);
    }
}

impl Handler<Tick> for Reclaimer {
    type Result = AtomicResponse<Self, ()>;

    fn handle(&mut self, _msg: Tick, _ctx: &mut Self::Context) -> Self::Result {
        let fut = claim(self.consumer.clone(), self.deliveries.clone());
        AtomicResponse::new(Box::pin(fut.into_actor(self).map(|result, act, _ctx| {
            act.health.note(&result);
            let deliveries = match result {
                Ok(n) => n,
                Err(e) => {
                    tracing::warn!(error = %e, "reclaim failed");
                    return;
                }
            };
            if deliveries > 0 {
                tracing::info!(entries = deliveries, "took over stalled deliveries");
                metrics::counter!(m::DELIVERY_CLAIMED).increment(deliveries as u64);
                if act.deliveries.dispatcher.try_send(ReadPending).is_err() {
                    metrics::counter!(m::MAILBOX_FULL, "actor" => "dispatcher").increment(1);
                }
            }
        })))
    }
}
