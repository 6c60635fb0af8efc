//! Reads of new or pending entries (journal, deliveries) over every partition.
//!
//! New entries: the partitions in turn without waiting, the first that has some answers; when
//! none has, one partition (the next in turn) is waited on, for at most [`WAIT_ONE`], so that
//! an entry arriving elsewhere waits no longer than that. A partition that fails (its master
//! is down, or failing over) is passed over; the read fails only when every one does.
//! Pending entries: one pass goes through the partitions in order, each until its own pass
//! ends (a read that brings fewer than asked); after the last, the next pass starts with the
//! first. A read answers empty only when no partition holds anything for the consumer.

use std::future::Future;
use std::sync::Mutex;
use std::time::Duration;

use super::{PartitionedStore, lock};
use crate::store::{ReadFrom, StoreError};

/// Longest wait on one partition when none had anything new.
const WAIT_ONE: Duration = Duration::from_millis(100);

impl PartitionedStore {
    /// `read(p, from, block)` reads up to `count` of partition p; `mark` marks what it
    /// returns as p's.
    pub(super) async fn read_in_turn<T, F, Fut>(
        &self,
        from: ReadFrom,
        count: usize,
        block: Duration,
        pass: &Mutex<usize>,
        read: F,
        mark: impl Fn(&mut T, usize),
    ) -> Result<Vec<T>, StoreError>
    where
        F: Fn(usize, ReadFrom, Duration) -> Fut,
        Fut: Future<Output = Result<Vec<T>, StoreError>>,
    {
        let marked = |p: usize, mut got: Vec<T>| {
            for item in &mut got {
                mark(item, p);
            }
            got
        };
        match from {
            ReadFrom::New => {
                let order: Vec<usize> = self.in_turn().collect();
                let mut failed = None;
                let mut answered = None;
                for &p in &order {
                    match read(p, from, Duration::ZERO).await {
                        Ok(got) if !got.is_empty() => return Ok(marked(p, got)),
                        Ok(_) => answered = answered.or(Some(p)),
                        Err(e) => failed = failed.or(Some(e)),
                    }
                }
                // Waited on: the first that answered (every one is there to wait on a healthy
                // store, the next in turn).
                let Some(p) = answered else {
                    return Err(
                        failed.unwrap_or_else(|| StoreError::Unavailable("no partitions".into()))
                    );
                };
                if block.is_zero() {
                    return Ok(Vec::new());
                }
                Ok(marked(p, read(p, from, block.min(WAIT_ONE)).await?))
            }
            ReadFrom::Pending => {
                for _ in 0..self.count() {
                    let p = *lock(pass);
                    let got = read(p, from, Duration::ZERO).await?;
                    // Fewer than asked: the partition's own pass is over (its next pending
                    // read would start again from its oldest); the next read goes on with the
                    // next partition.
                    if got.len() < count {
                        *lock(pass) = (p + 1) % self.count();
                    }
                    if !got.is_empty() {
                        return Ok(marked(p, got));
                    }
                }
                Ok(Vec::new())
            }
        }
    }
}
