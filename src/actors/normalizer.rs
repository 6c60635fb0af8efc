//! `Normalizer`: the journal's consumer. Reads a batch, splits each body into events
//! ([`crate::normalize`]), and commits events, dedup keys and acknowledgements together.
//!
//! It runs on an arbiter of its own: parsing is CPU work that must not delay the ingress writer.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use tokio::sync::oneshot;

use super::messages::{Drain, Poll, ReadPending};
use crate::config::NormalizerSettings;
use crate::delivery::routes::Routes;
use crate::meta::{Event, type_label};
use crate::metrics as m;
use crate::model::test_suite::TestSuite;
use crate::normalize::{attach_routes, normalize, restrict_to_suite};
use crate::stage_health::StageReport;
use crate::store::{
    Backend, CommitOutcome, JournalLease, JournalRecord, Normalized, ReadFrom, StoreError,
};

const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// How often an instance without the lease asks for it.
const LEASE_POLL: Duration = Duration::from_secs(1);
/// Journal entries taken over at most when the lease changes hands: more than all consumers
/// together hold (each holds a batch and a batch read ahead, at most 2,000).
const TAKEOVER_MAX: usize = 100_000;

/// Doubles from 100 ms up to [`MAX_BACKOFF`].
fn next_backoff(current: Duration) -> Duration {
    (current * 2).clamp(Duration::from_millis(100), MAX_BACKOFF)
}

pub struct Normalizer {
    store: Arc<dyn Backend>,
    health: StageReport,
    consumer: String,
    settings: NormalizerSettings,
    routes: Routes,
    /// Pending first: after a crash or restart this consumer may hold unacknowledged entries.
    mode: ReadFrom,
    /// The next batch, read while the last one was being committed.
    read_ahead: Vec<JournalRecord>,
    backoff: Duration,
    polling: bool,
    draining: Vec<oneshot::Sender<()>>,
}

impl Normalizer {
    pub fn new(
        store: Arc<dyn Backend>,
        consumer: String,
        settings: NormalizerSettings,
        routes: Routes,
        health: StageReport,
    ) -> Self {
        Normalizer {
            store,
            health,
            consumer,
            settings,
            routes,
            mode: ReadFrom::Pending,
            read_ahead: Vec::new(),
            backoff: Duration::ZERO,
            polling: false,
            draining: Vec::new(),
        }
    }

    fn stop_if_draining(&mut self, ctx: &mut Context<Self>) -> bool {
        if self.draining.is_empty() {
            return false;
        }
        for waiter in self.draining.drain(..) {
            let _ = waiter.send(());
        }
        ctx.stop();
        true
    }
}

/// What one batch did, for metrics, and the batch read behind it.
struct BatchReport {
    /// Another instance splits the journal: nothing was read.
    lease_elsewhere: bool,
    /// The lease was just taken: what the previous holder left is read first.
    took_over: bool,
    read: usize,
    outcomes: Vec<(Normalized, CommitOutcome)>,
    read_ahead: Vec<JournalRecord>,
}

/// Splits and commits one batch (`read_ahead`, or one read now). New entries for the next
/// batch are read while the commit runs, on another connection, so Redis's round trips
/// overlap instead of adding up; the commits themselves stay in order.
async fn run_batch(
    store: Arc<dyn Backend>,
    consumer: String,
    mode: ReadFrom,
    settings: NormalizerSettings,
    routes: Routes,
    read_ahead: Vec<JournalRecord>,
) -> Result<BatchReport, StoreError> {
    let mut report = BatchReport {
        lease_elsewhere: false,
        took_over: false,
        read: 0,
        outcomes: Vec::new(),
        read_ahead: Vec::new(),
    };
    let lease = take_lease(store.as_ref(), &consumer, settings.reclaim_idle).await?;
    let (mode, read_ahead) = match lease {
        JournalLease::Kept => (mode, read_ahead),
        JournalLease::HeldElsewhere => {
            report.lease_elsewhere = true;
            return Ok(report);
        }
        // What was read ahead is pending for this consumer and is read again, in order,
        // with what the previous holder left.
        JournalLease::Taken => {
            report.took_over = true;
            (ReadFrom::Pending, Vec::new())
        }
    };
    let records = if read_ahead.is_empty() {
        store
            .read_journal(&consumer, mode, settings.batch, settings.block)
            .await?
    } else {
        read_ahead
    };
    let read = records.len();
    report.read = read;
    if read == 0 {
        return Ok(report);
    }
    let started = Instant::now();
    let table = routes.current();
    let mut normalized: Vec<Normalized> = records
        .into_iter()
        .map(|r| {
            let mut n = normalize(r);
            store.keep_own_share(&mut n);
            attach_routes(&table, &mut n);
            n
        })
        .collect();
    restrict_tests(store.as_ref(), &mut normalized).await?;
    // Only a full batch suggests a backlog worth reading ahead; otherwise the read would
    // mostly come back empty, a round trip for nothing.
    let full = read == settings.batch;
    let ahead = async {
        match mode {
            // Without waiting: an empty journal must not hold back this commit's result.
            ReadFrom::New if full => {
                store
                    .read_journal(&consumer, ReadFrom::New, settings.batch, Duration::ZERO)
                    .await
            }
            _ => Ok(Vec::new()),
        }
    };
    let (committed, ahead) =
        futures_util::future::join(store.commit_normalized(&normalized), ahead).await;
    // Entries read ahead of a failed commit stay pending for this consumer and are read
    // again with the rest; a failed read ahead is read again the same way.
    let outcomes = committed?;
    let read_ahead = ahead?;
    metrics::histogram!(m::NORMALIZER_BATCH_DURATION).record(started.elapsed().as_secs_f64());
    report.outcomes = normalized.into_iter().zip(outcomes).collect();
    report.read_ahead = read_ahead;
    Ok(report)
}

/// Takes or keeps the journal lease where instances share the journal (always held on a
/// backend of one instance). On taking it, everything other consumers read and did not
/// commit becomes this one's, to be stored before anything newer.
async fn take_lease(
    store: &dyn Backend,
    consumer: &str,
    lease: Duration,
) -> Result<JournalLease, StoreError> {
    let Some(work) = store.shared_work() else {
        return Ok(JournalLease::Kept);
    };
    let lease = work.hold_journal_lease(consumer, lease).await?;
    if lease == JournalLease::Taken {
        let taken = work
            .claim_stale_journal(consumer, Duration::ZERO, TAKEOVER_MAX)
            .await?;
        tracing::info!(
            consumer,
            taken_over = taken,
            "this instance splits the journal now"
        );
        metrics::counter!(m::JOURNAL_CLAIMED).increment(taken as u64);
    }
    Ok(lease)
}

/// Test samples go only to their suite's endpoints: each suite of the batch is read once.
async fn restrict_tests(store: &dyn Backend, batch: &mut [Normalized]) -> Result<(), StoreError> {
    let mut suites: HashMap<String, Option<TestSuite>> = HashMap::new();
    for item in batch.iter_mut() {
        let Normalized::Events { request_id, .. } = &*item else {
            continue;
        };
        let Some((suite_id, _)) = crate::suites::test_of(request_id) else {
            continue;
        };
        let suite_id = suite_id.to_string();
        if !suites.contains_key(&suite_id) {
            let suite = store.test_suite(&suite_id).await?;
            suites.insert(suite_id.clone(), suite);
        }
        restrict_to_suite(item, suites.get(&suite_id).and_then(Option::as_ref));
    }
    Ok(())
}

fn record_metrics(report: &BatchReport) {
    for (item, outcome) in &report.outcomes {
        match item {
            Normalized::Events {
                events,
                journal_id,
                request_id,
                ..
            } => {
                metrics::counter!(m::NORMALIZER_BODIES, "outcome" => "split").increment(1);
                if crate::suites::is_test(request_id) {
                    // Counted apart, so a test run never shows in the traffic's figures.
                    let stored = outcome.event_ids.iter().flatten().count();
                    metrics::counter!(m::TEST_EVENTS).increment(stored as u64);
                } else {
                    count_events(events, outcome);
                }
                tracing::debug!(
                    %request_id,
                    %journal_id,
                    // `None` marks an event dropped as a duplicate.
                    event_ids = ?outcome.event_ids,
                    "split"
                );
            }
            Normalized::Quarantine {
                journal_id,
                entry,
                error,
            } => {
                tracing::warn!(
                    request_id = %entry.request_id,
                    %journal_id,
                    %error,
                    "body does not split; quarantined"
                );
                metrics::counter!(m::NORMALIZER_BODIES, "outcome" => "quarantined").increment(1);
                metrics::counter!(m::QUARANTINED).increment(1);
            }
            Normalized::Missing { .. } => {
                metrics::counter!(m::NORMALIZER_BODIES, "outcome" => "missing").increment(1);
            }
        }
    }
}

fn count_events(events: &[Event], outcome: &CommitOutcome) {
    for (e, id) in events.iter().zip(&outcome.event_ids) {
        let labels = [
            ("platform", e.platform.as_str()),
            ("type", type_label(&e.event_type)),
        ];
        let name = if id.is_some() {
            m::EVENTS
        } else {
            m::DUPLICATES
        };
        metrics::counter!(name, &labels).increment(1);
    }
}

impl Actor for Normalizer {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.set_mailbox_capacity(16);
        // After a restart the backoff is kept, so an entry that keeps failing cannot make the
        // actor spin against Redis.
        ctx.notify_later(Poll, self.backoff);
    }
}

impl Supervised for Normalizer {
    fn restarting(&mut self, _ctx: &mut Self::Context) {
        metrics::counter!(m::ACTOR_RESTARTS, "actor" => "normalizer").increment(1);
        // Whatever was read ahead is pending for this consumer: the pending read gets it.
        self.read_ahead.clear();
        self.mode = ReadFrom::Pending;
        self.polling = false;
    }
}

impl Handler<Poll> for Normalizer {
    type Result = ();

    fn handle(&mut self, _msg: Poll, ctx: &mut Self::Context) {
        if self.polling || self.stop_if_draining(ctx) {
            return;
        }
        self.polling = true;
        let mode = self.mode;
        let batch = run_batch(
            self.store.clone(),
            self.consumer.clone(),
            mode,
            self.settings.clone(),
            self.routes.clone(),
            std::mem::take(&mut self.read_ahead),
        );
        ctx.spawn(batch.into_actor(self).map(move |result, act, ctx| {
            act.polling = false;
            act.health.note(&result);
            if result.is_err() {
                // Whatever the failed batch had read is still pending for this consumer: read
                // it again first, instead of leaving it to the reclaimer's idle timeout.
                act.mode = ReadFrom::Pending;
            }
            match result {
                Ok(report) if report.lease_elsewhere => {
                    act.backoff = Duration::ZERO;
                    act.mode = ReadFrom::Pending;
                    if !act.stop_if_draining(ctx) {
                        ctx.notify_later(Poll, LEASE_POLL);
                    }
                }
                Ok(mut report) => {
                    act.backoff = Duration::ZERO;
                    act.read_ahead = std::mem::take(&mut report.read_ahead);
                    record_metrics(&report);
                    if report.took_over {
                        act.mode = ReadFrom::Pending;
                    }
                    let read_pending = mode == ReadFrom::Pending || report.took_over;
                    if read_pending && report.read == 0 {
                        act.mode = ReadFrom::New;
                    }
                    if act.stop_if_draining(ctx) {
                        return;
                    }
                    // A short batch means the journal is nearly empty: let a few more entries
                    // gather so the next batch costs fewer round trips per entry.
                    let short = report.read > 0 && report.read < act.settings.batch;
                    if short && act.read_ahead.is_empty() && !act.settings.linger.is_zero() {
                        ctx.notify_later(Poll, act.settings.linger);
                    } else {
                        ctx.notify(Poll);
                    }
                }
                Err(StoreError::Protocol(e)) => {
                    // Something hookd does not understand: start over from a clean state.
                    act.backoff = next_backoff(act.backoff);
                    tracing::error!(error = %e, retry_in = ?act.backoff, "normalizer failed; restarting it");
                    ctx.stop();
                }
                Err(e) => {
                    act.backoff = next_backoff(act.backoff);
                    tracing::warn!(error = %e, retry_in = ?act.backoff, "normalizer cannot reach the store");
                    if !act.stop_if_draining(ctx) {
                        ctx.notify_later(Poll, act.backoff);
                    }
                }
            }
        }));
    }
}

impl Handler<ReadPending> for Normalizer {
    type Result = ();

    fn handle(&mut self, _msg: ReadPending, _ctx: &mut Self::Context) {
        self.mode = ReadFrom::Pending;
    }
}

impl Handler<Drain> for Normalizer {
    type Result = ResponseFuture<()>;

    fn handle(&mut self, _msg: Drain, ctx: &mut Self::Context) -> Self::Result {
        let (tx, rx) = oneshot::channel();
        self.draining.push(tx);
        if !self.polling {
            self.stop_if_draining(ctx);
        }
        let (store, consumer) = (self.store.clone(), self.consumer.clone());
        Box::pin(async move {
            let _ = rx.await;
            // Another instance takes over at once rather than when the lease runs out.
            if let Some(work) = store.shared_work()
                && let Err(e) = work.release_journal_lease(&consumer).await
            {
                tracing::warn!(error = %e, "cannot give up the journal lease; it runs out by itself");
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_100ms_up_to_the_cap() {
        let mut b = Duration::ZERO;
        let mut seen = Vec::new();
        for _ in 0..8 {
            b = next_backoff(b);
            seen.push(b.as_millis());
        }
        assert_eq!(seen, [100, 200, 400, 800, 1600, 3200, 5000, 5000]);
    }
}
