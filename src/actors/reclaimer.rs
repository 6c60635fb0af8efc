//! `Reclaimer`: takes over journal entries and deliveries that another consumer read but never
//! acknowledged (its instance died), and hands them to this instance's `Normalizer` and
//! `Dispatcher`.

use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;

use super::dispatcher::Dispatcher;
use super::messages::{ReadPending, Tick};
use super::normalizer::Normalizer;
use crate::metrics as m;
use crate::stage_health::StageReport;
use crate::store::{Backend, StoreError};

const CLAIM_BATCH: usize = 256;

/// The delivery side of the reclaimer: whose deliveries it takes over and for whom.
pub struct DeliveryClaims {
    pub store: Arc<dyn Backend>,
    /// Must exceed the longest endpoint timeout.
    pub min_idle: Duration,
    pub dispatcher: Addr<Dispatcher>,
}

pub struct Reclaimer {
    store: Arc<dyn Backend>,
    health: StageReport,
    consumer: String,
    min_idle: Duration,
    interval: Duration,
    normalizer: Addr<Normalizer>,
    deliveries: Arc<DeliveryClaims>,
}

impl Reclaimer {
    pub fn new(
        store: Arc<dyn Backend>,
        consumer: String,
        min_idle: Duration,
        interval: Duration,
        normalizer: Addr<Normalizer>,
        deliveries: Arc<DeliveryClaims>,
        health: StageReport,
    ) -> Self {
        Reclaimer {
            store,
            health,
            consumer,
            min_idle,
            interval,
            normalizer,
            deliveries,
        }
    }
}

/// Claims stalled journal entries, then stalled deliveries: (journal, deliveries) taken.
async fn claim(
    store: Arc<dyn Backend>,
    consumer: String,
    min_idle: Duration,
    deliveries: Arc<DeliveryClaims>,
) -> Result<(usize, usize), StoreError> {
    // The engine starts a reclaimer only for a backend with shared work.
    let Some(work) = store.shared_work() else {
        return Ok((0, 0));
    };
    let journal = work
        .claim_stale_journal(&consumer, min_idle, CLAIM_BATCH)
        .await?;
    let d = &deliveries;
    let delivery = match d.store.shared_work() {
        Some(w) => {
            w.claim_stale_deliveries(&consumer, d.min_idle, CLAIM_BATCH)
                .await?
        }
        None => 0,
    };
    Ok((journal, delivery))
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
        let fut = claim(
            self.store.clone(),
            self.consumer.clone(),
            self.min_idle,
            self.deliveries.clone(),
        );
        AtomicResponse::new(Box::pin(fut.into_actor(self).map(|result, act, _ctx| {
            act.health.note(&result);
            let (journal, deliveries) = match result {
                Ok(counts) => counts,
                Err(e) => {
                    tracing::warn!(error = %e, "reclaim failed");
                    return;
                }
            };
            if journal > 0 {
                tracing::info!(entries = journal, "took over stalled journal entries");
                metrics::counter!(m::JOURNAL_CLAIMED).increment(journal as u64);
                if act.normalizer.try_send(ReadPending).is_err() {
                    // A full mailbox means the normalizer is busy; it reads its pending
                    // entries at the next claim.
                    metrics::counter!(m::MAILBOX_FULL, "actor" => "normalizer").increment(1);
                }
            }
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
