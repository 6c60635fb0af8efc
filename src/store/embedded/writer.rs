//! Group commit: one thread applies every write. It takes whatever writes are waiting, applies
//! them in one transaction and commits it once (one fsync when any of them must be durable),
//! then answers each: a request is answered only after the commit that holds it.

use std::any::Any;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use redb::{Durability, WriteTransaction};

use super::{Shared, storage_error};
use crate::metrics as m;
use crate::store::StoreError;
use crate::store::ids::IdClock;

/// What one write sees: the transaction, the id clock, the time, and what it should wake.
pub struct Tx<'a> {
    pub txn: &'a WriteTransaction,
    pub clock: &'a mut IdClock,
    pub now_ms: u64,
    pub wake_journal: bool,
    pub wake_deliveries: bool,
}

impl Tx<'_> {
    pub fn next_id(&mut self) -> crate::store::ids::EntryId {
        self.clock.next(self.now_ms)
    }
}

pub type Output = Box<dyn Any + Send>;
/// A write. It may run twice: when another write of its group fails, the group's
/// transaction is dropped and the others run again in a new one.
pub type Op = Box<dyn FnMut(&mut Tx<'_>) -> Result<Output, StoreError> + Send>;
pub type Reply = Box<dyn FnOnce(Result<Output, StoreError>) + Send>;

pub struct Job {
    pub op: Op,
    /// Must be on disk before it is answered.
    pub durable: bool,
    pub reply: Reply,
}

/// Writes applied per transaction at most, so one commit never grows without bound.
const MAX_GROUP: usize = 512;

pub fn run(shared: Arc<Shared>, jobs: Receiver<Job>, mut clock: IdClock) {
    let mut unsynced = false;
    let mut last_sync = Instant::now();
    loop {
        let wait = if unsynced {
            shared.sync_interval.saturating_sub(last_sync.elapsed())
        } else {
            Duration::from_secs(3600)
        };
        let first = match jobs.recv_timeout(wait) {
            Ok(job) => job,
            Err(RecvTimeoutError::Timeout) => {
                // Nothing to do for a while: put what is only in memory on disk.
                if unsynced && sync(&shared).is_ok() {
                    unsynced = false;
                    last_sync = Instant::now();
                }
                continue;
            }
            Err(RecvTimeoutError::Disconnected) => break,
        };
        let mut group = vec![first];
        while group.len() < MAX_GROUP {
            match jobs.try_recv() {
                Ok(job) => group.push(job),
                Err(_) => break,
            }
        }
        let must_sync = group.iter().any(|j| j.durable) && shared.sync_each_commit
            || last_sync.elapsed() >= shared.sync_interval;
        match commit_group(&shared, &mut clock, group, must_sync) {
            true if must_sync => {
                unsynced = false;
                last_sync = Instant::now();
            }
            true => unsynced = true,
            false => {}
        }
    }
    if unsynced {
        let _ = sync(&shared);
    }
}

/// An empty durable commit: makes every earlier non-durable commit durable.
fn sync(shared: &Shared) -> Result<(), StoreError> {
    let db = shared.db();
    let db = db?;
    let txn = db
        .begin_write()
        .map_err(|e| shared.failed(storage_error(e.into())))?;
    txn.commit()
        .map_err(|e| shared.failed(storage_error(e.into())))
}

/// Applies `group` in one transaction; true when it was committed.
fn commit_group(shared: &Shared, clock: &mut IdClock, group: Vec<Job>, durable: bool) -> bool {
    let started = Instant::now();
    let db = match shared.db() {
        Ok(db) => db,
        Err(e) => {
            answer_all(group, &e);
            return false;
        }
    };
    let mut pending: Vec<Job> = group;
    // A write that fails is answered with its error and the rest are applied again without
    // it: a failed write leaves nothing behind, and does not fail its neighbours.
    loop {
        let mut txn = match db.begin_write() {
            Ok(t) => t,
            Err(e) => {
                let err = shared.failed(storage_error(e.into()));
                answer_all(pending, &err);
                return false;
            }
        };
        let durability = if durable {
            Durability::Immediate
        } else {
            Durability::None
        };
        if let Err(e) = txn.set_durability(durability) {
            answer_all(pending, &StoreError::Unavailable(e.to_string()));
            return false;
        }
        let restore = clock.snapshot();
        let mut tx = Tx {
            txn: &txn,
            clock,
            now_ms: crate::time::unix_ms(),
            wake_journal: false,
            wake_deliveries: false,
        };
        let mut outputs = Vec::with_capacity(pending.len());
        let mut failed_at = None;
        for (i, job) in pending.iter_mut().enumerate() {
            match (job.op)(&mut tx) {
                Ok(out) => outputs.push(out),
                Err(e) => {
                    failed_at = Some((i, e));
                    break;
                }
            }
        }
        let (wake_journal, wake_deliveries) = (tx.wake_journal, tx.wake_deliveries);
        if let Some((i, e)) = failed_at {
            drop(txn);
            clock.restore(restore);
            let job = pending.remove(i);
            (job.reply)(Err(e));
            if pending.is_empty() {
                return false;
            }
            continue;
        }
        let committed = txn.commit();
        metrics::histogram!(m::STORAGE_COMMIT_DURATION, "durable" => if durable { "true" } else { "false" })
            .record(started.elapsed().as_secs_f64());
        return match committed {
            Ok(()) => {
                if wake_journal {
                    shared.journal_ready.notify_waiters();
                }
                if wake_deliveries {
                    shared.deliveries_ready.notify_waiters();
                }
                for (job, out) in pending.into_iter().zip(outputs) {
                    (job.reply)(Ok(out));
                }
                true
            }
            Err(e) => {
                clock.restore(restore);
                let err = shared.failed(storage_error(e.into()));
                answer_all(pending, &err);
                false
            }
        };
    }
}

fn answer_all(jobs: Vec<Job>, err: &StoreError) {
    for job in jobs {
        (job.reply)(Err(err.clone()));
    }
}
