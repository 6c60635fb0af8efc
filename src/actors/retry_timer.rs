//! `RetryTimer`: moves due retries from the retry set back to the deliveries stream. The move
//! is one script per batch, so any number of instances can run it and each retry moves once;
//! a restart loses nothing, since every retry lives in Redis.

use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;

use super::messages::Tick;
use crate::metrics as m;
use crate::stage_health::StageReport;
use crate::store::{Backend, StoreError};
use crate::time::unix_ms;

/// Retries moved per script call; a larger backlog takes several calls in one tick.
const PROMOTE_BATCH: usize = 500;
/// Calls per tick at most, so one tick cannot hold Redis for long.
const MAX_CALLS_PER_TICK: usize = 20;

pub struct RetryTimer {
    store: Arc<dyn Backend>,
    interval: Duration,
    health: StageReport,
}

impl RetryTimer {
    pub fn new(store: Arc<dyn Backend>, interval: Duration, health: StageReport) -> Self {
        RetryTimer {
            store,
            interval,
            health,
        }
    }
}

async fn promote(store: Arc<dyn Backend>) -> Result<(usize, usize), StoreError> {
    let (mut moved, mut dropped) = (0, 0);
    for _ in 0..MAX_CALLS_PER_TICK {
        let (m, d) = store.promote_due_retries(unix_ms(), PROMOTE_BATCH).await?;
        moved += m;
        dropped += d;
        if m + d < PROMOTE_BATCH {
            break;
        }
    }
    Ok((moved, dropped))
}

impl Actor for RetryTimer {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.run_interval(self.interval, |_, ctx| ctx.notify(Tick));
    }
}

impl Supervised for RetryTimer {
    fn restarting(&mut self, _ctx: &mut Self::Context) {
        metrics::counter!(m::ACTOR_RESTARTS, "actor" => "retry_timer").increment(1);
    }
}

impl Handler<Tick> for RetryTimer {
    type Result = AtomicResponse<Self, ()>;

    fn handle(&mut self, _msg: Tick, _ctx: &mut Self::Context) -> Self::Result {
        let fut = promote(self.store.clone());
        AtomicResponse::new(Box::pin(fut.into_actor(self).map(|result, act, _| {
            act.health.note(&result);
            match result {
                Ok((moved, dropped)) => {
                    if moved > 0 {
                        metrics::counter!(m::RETRIES_PROMOTED, "outcome" => "moved")
                            .increment(moved as u64);
                    }
                    if dropped > 0 {
                        tracing::warn!(
                            dropped,
                            "retries dropped: their events were already trimmed"
                        );
                        metrics::counter!(m::RETRIES_PROMOTED, "outcome" => "dropped")
                            .increment(dropped as u64);
                    }
                }
                Err(e) => tracing::warn!(error = %e, "cannot move due retries"),
            }
        })))
    }
}
