//! `Reclaimer`: takes over journal entries that another consumer read but never acknowledged
//! (its instance died), and hands them to this instance's `Normalizer`.

use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;

use super::messages::{ReadPending, Tick};
use super::normalizer::Normalizer;
use crate::metrics as m;
use crate::store::Store;

const CLAIM_BATCH: usize = 256;

pub struct Reclaimer {
    store: Arc<dyn Store>,
    consumer: String,
    min_idle: Duration,
    interval: Duration,
    normalizer: Addr<Normalizer>,
}

impl Reclaimer {
    pub fn new(
        store: Arc<dyn Store>,
        consumer: String,
        min_idle: Duration,
        interval: Duration,
        normalizer: Addr<Normalizer>,
    ) -> Self {
        Reclaimer {
            store,
            consumer,
            min_idle,
            interval,
            normalizer,
        }
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
        let store = self.store.clone();
        let consumer = self.consumer.clone();
        let min_idle = self.min_idle;
        AtomicResponse::new(Box::pin(
            async move {
                store
                    .claim_stale_journal(&consumer, min_idle, CLAIM_BATCH)
                    .await
            }
            .into_actor(self)
            .map(|result, act, _ctx| match result {
                Ok(0) => {}
                Ok(n) => {
                    tracing::info!(entries = n, "took over stalled journal entries");
                    metrics::counter!(m::JOURNAL_CLAIMED).increment(n as u64);
                    if act.normalizer.try_send(ReadPending).is_err() {
                        // A full mailbox means the normalizer is busy; it reads its
                        // pending entries at the next claim.
                        metrics::counter!(m::MAILBOX_FULL, "actor" => "normalizer").increment(1);
                    }
                }
                Err(e) => tracing::warn!(error = %e, "reclaim failed"),
            }),
        ))
    }
}
