//! `IngressWriter`: group commit of verified requests into the journal.
//!
//! Requests arriving while a commit is in flight wait for the next one, so under load one Redis
//! pipeline carries many requests and at low load a request is committed at once. Each request
//! is answered only after the pipeline holding it was acknowledged by Redis.
//!
//! Every HTTP worker runs a writer of its own, on its own thread and with its own connection:
//! a request never crosses threads on its way to Redis. On shutdown nothing needs flushing:
//! every buffered request belongs to a handler still waiting for it, and the server lets
//! those finish before it stops.

use std::sync::Arc;
use std::time::Instant;

use actix::prelude::*;
use tokio::sync::oneshot;

use super::messages::{Journal, JournalError};
use crate::config::IngressSettings;
use crate::metrics as m;
use crate::stage_health::StageReport;
use crate::store::{Backend, JournalEntry};

/// When to start a commit. Kept apart from the actor so the policy is tested on its own.
#[derive(Debug, Clone, Copy)]
pub struct CommitPolicy {
    pub batch_max: usize,
    pub max_inflight: usize,
}

impl CommitPolicy {
    /// Start a commit now: a slot is free, and either nothing is in flight (no reason to wait)
    /// or a full batch is ready.
    pub fn flush_now(&self, buffered: usize, inflight: usize) -> bool {
        buffered > 0
            && inflight < self.max_inflight
            && (inflight == 0 || buffered >= self.batch_max)
    }

    /// The wait timer fired: commit whatever is buffered if a slot is free.
    pub fn flush_on_timer(&self, buffered: usize, inflight: usize) -> bool {
        buffered > 0 && inflight < self.max_inflight
    }
}

type Reply = oneshot::Sender<Result<String, JournalError>>;

pub struct IngressWriter {
    store: Arc<dyn Backend>,
    health: StageReport,
    settings: IngressSettings,
    policy: CommitPolicy,
    buffer: Vec<(JournalEntry, Reply)>,
    inflight: usize,
    timer: Option<SpawnHandle>,
}

impl IngressWriter {
    pub fn new(
        store: Arc<dyn Backend>,
        settings: IngressSettings,
        health: StageReport,
    ) -> IngressWriter {
        let policy = CommitPolicy {
            batch_max: settings.batch_max,
            max_inflight: settings.max_inflight_commits,
        };
        IngressWriter {
            store,
            health,
            settings,
            policy,
            buffer: Vec::new(),
            inflight: 0,
            timer: None,
        }
    }

    fn commit(&mut self, ctx: &mut Context<Self>) {
        let take = self.buffer.len().min(self.policy.batch_max);
        let (entries, replies): (Vec<_>, Vec<_>) = self.buffer.drain(..take).unzip();
        self.inflight += 1;
        let store = self.store.clone();
        let started = Instant::now();
        let batch_size = entries.len();
        let write = async move { store.append_journal(&entries).await };
        ctx.spawn(write.into_actor(self).map(move |result, act, ctx| {
            act.inflight -= 1;
            metrics::histogram!(m::JOURNAL_BATCH_SIZE).record(batch_size as f64);
            metrics::histogram!(m::JOURNAL_COMMIT_DURATION).record(started.elapsed().as_secs_f64());
            act.health.note(&result);
            match result {
                Ok(ids) => {
                    metrics::counter!(m::JOURNAL_COMMITS, "outcome" => "ok").increment(1);
                    for (reply, id) in replies.into_iter().zip(ids) {
                        let _ = reply.send(Ok(id));
                    }
                }
                Err(e) => {
                    metrics::counter!(m::JOURNAL_COMMITS, "outcome" => "error").increment(1);
                    tracing::warn!(error = %e, batch_size, "journal commit failed");
                    for reply in replies {
                        let _ = reply.send(Err(JournalError::Unavailable(e.to_string())));
                    }
                }
            }
            act.after_commit(ctx);
        }));
    }

    fn after_commit(&mut self, ctx: &mut Context<Self>) {
        while self.policy.flush_now(self.buffer.len(), self.inflight) {
            self.commit(ctx);
        }
        if !self.buffer.is_empty() {
            self.arm_timer(ctx);
        }
    }

    fn arm_timer(&mut self, ctx: &mut Context<Self>) {
        if self.timer.is_some() {
            return;
        }
        self.timer = Some(ctx.run_later(self.settings.batch_max_wait, |act, ctx| {
            act.timer = None;
            if act.policy.flush_on_timer(act.buffer.len(), act.inflight) {
                act.commit(ctx);
            }
            if !act.buffer.is_empty() {
                act.arm_timer(ctx);
            }
        }));
    }
}

impl Actor for IngressWriter {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.set_mailbox_capacity(self.settings.queue_capacity);
    }
}

impl Supervised for IngressWriter {
    fn restarting(&mut self, _ctx: &mut Self::Context) {
        metrics::counter!(m::ACTOR_RESTARTS, "actor" => "ingress_writer").increment(1);
        // Commits in flight died with the old context; their callers see a closed channel.
        for (_, reply) in self.buffer.drain(..) {
            let _ = reply.send(Err(JournalError::Unavailable(
                "journal writer restarted".into(),
            )));
        }
        self.inflight = 0;
        self.timer = None;
    }
}

impl Handler<Journal> for IngressWriter {
    type Result = ();

    fn handle(&mut self, msg: Journal, ctx: &mut Self::Context) {
        // The mailbox bounds what waits to be handled; this bounds what waits to be committed.
        if self.buffer.len() >= self.settings.queue_capacity {
            metrics::counter!(m::MAILBOX_FULL, "actor" => "ingress_writer").increment(1);
            let _ = msg.reply.send(Err(JournalError::Overloaded));
            return;
        }
        self.buffer.push((msg.entry, msg.reply));
        if self.policy.flush_now(self.buffer.len(), self.inflight) {
            self.commit(ctx);
        } else {
            self.arm_timer(ctx);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: CommitPolicy = CommitPolicy {
        batch_max: 4,
        max_inflight: 2,
    };

    #[test]
    fn an_idle_writer_commits_at_once() {
        assert!(P.flush_now(1, 0));
    }

    #[test]
    fn a_busy_writer_waits_for_a_full_batch() {
        assert!(!P.flush_now(3, 1));
        assert!(P.flush_now(4, 1));
    }

    #[test]
    fn no_commit_beyond_the_inflight_limit() {
        assert!(!P.flush_now(100, 2));
        assert!(!P.flush_on_timer(100, 2));
    }

    #[test]
    fn the_timer_commits_a_partial_batch() {
        assert!(P.flush_on_timer(1, 1));
        assert!(!P.flush_on_timer(0, 0));
    }
}
