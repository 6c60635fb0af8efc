//! The Redis backend over several partitions (`redis.partitions` > 1): each partition is a
//! [`RedisStore`] whose keys share one hash tag, so that a cluster spreads partitions over its
//! masters while every script stays on one slot. The catalogue (tenants, endpoints, keys…)
//! lives in partition 0; a request and its events live in the partition of its Meta account
//! ([`super::partitions`]); listings merge the partitions; ids say their partition ([`ids`]).
//!
//! Each instance splits the journals of its share of partitions (one normalizer each, see
//! [`Backend::journal_partitions`]); every instance's dispatcher reads deliveries from every
//! partition in turn.

mod catalogue;
mod deliveries;
mod events;
mod ids;
mod merge;
mod reads;
mod upkeep;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use super::RedisStore;
use crate::store::{Backend, JournalLease, SharedWork, StoreError};

pub struct PartitionedStore {
    parts: Vec<RedisStore>,
    /// The partition the next read of new entries starts at, so that each gets its turn.
    turn: AtomicUsize,
    /// The partition a pass of pending reads is at, per kind of read.
    pending_journal: Mutex<usize>,
    pending_deliveries: Mutex<usize>,
    /// A round of delivery outcomes that some partitions committed and another refused: the
    /// caller commits the same round again, and those that took it are not given it twice.
    partly_committed: Mutex<Option<(u64, Vec<usize>)>>,
}

impl PartitionedStore {
    /// The partitions of `first` (partition 0, which knows how many there are), on its
    /// connections.
    pub fn new(first: RedisStore) -> PartitionedStore {
        let count = first.partition.count;
        let mut parts = vec![first];
        for p in 1..count {
            let part = parts[0].partition(p);
            parts.push(part);
        }
        PartitionedStore {
            parts,
            turn: AtomicUsize::new(0),
            pending_journal: Mutex::new(0),
            pending_deliveries: Mutex::new(0),
            partly_committed: Mutex::new(None),
        }
    }

    fn count(&self) -> usize {
        self.parts.len()
    }

    /// Partition 0: the catalogue's.
    fn catalogue(&self) -> &RedisStore {
        &self.parts[0]
    }

    /// The partition id `id` names, and the id as it knows it.
    fn part_of<'a>(
        &self,
        parameter: &'static str,
        id: &'a str,
    ) -> Result<(&RedisStore, usize, &'a str), StoreError> {
        let (p, own) = ids::split(parameter, id, self.count())?;
        Ok((&self.parts[p], p, own))
    }

    /// Partitions in the order the next read of new entries visits them.
    fn in_turn(&self) -> impl Iterator<Item = usize> + '_ {
        let start = self.turn.fetch_add(1, Ordering::Relaxed) % self.count();
        (0..self.count()).map(move |i| (start + i) % self.count())
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Backend for PartitionedStore {
    fn for_consumer(&self) -> Arc<dyn Backend> {
        // One pair of connections for all partitions: a consumer reads them in turn.
        Arc::new(PartitionedStore::new(self.parts[0].with_own_connection()))
    }

    fn shared_work(&self) -> Option<&dyn SharedWork> {
        Some(self)
    }

    fn journal_partitions(&self) -> Vec<Arc<dyn Backend>> {
        self.parts
            .iter()
            .map(|p| Arc::new(p.with_own_connection()) as Arc<dyn Backend>)
            .collect()
    }

    fn keep_own_share(&self, _item: &mut crate::store::Normalized) {
        // Done by the partition that commits it (see `commit_normalized`).
    }
}

/// What one instance's consumer does across every partition. The normalizers hold each
/// partition's lease through the partition's own store; this combined view serves callers
/// that see the store as one.
#[async_trait::async_trait]
impl SharedWork for PartitionedStore {
    async fn claim_stale_journal(
        &self,
        consumer: &str,
        min_idle: Duration,
        count: usize,
    ) -> Result<usize, StoreError> {
        let mut claimed = 0;
        for part in &self.parts {
            claimed += part.claim_stale_journal(consumer, min_idle, count).await?;
        }
        Ok(claimed)
    }

    async fn hold_journal_lease(
        &self,
        consumer: &str,
        lease: Duration,
    ) -> Result<JournalLease, StoreError> {
        let mut combined = JournalLease::HeldElsewhere;
        for part in &self.parts {
            match part.hold_journal_lease(consumer, lease).await? {
                JournalLease::Taken => combined = JournalLease::Taken,
                JournalLease::Kept if combined == JournalLease::HeldElsewhere => {
                    combined = JournalLease::Kept
                }
                _ => {}
            }
        }
        Ok(combined)
    }

    async fn release_journal_lease(&self, consumer: &str) -> Result<(), StoreError> {
        for part in &self.parts {
            part.release_journal_lease(consumer).await?;
        }
        Ok(())
    }

    async fn claim_stale_deliveries(
        &self,
        consumer: &str,
        min_idle: Duration,
        count: usize,
    ) -> Result<usize, StoreError> {
        // A partition that fails does not hold back the others' claims.
        let (mut claimed, mut failed) = (0, None);
        for part in &self.parts {
            match part.claim_stale_deliveries(consumer, min_idle, count).await {
                Ok(n) => claimed += n,
                Err(e) => failed = failed.or(Some(e)),
            }
        }
        match failed {
            Some(e) if claimed == 0 => Err(e),
            _ => Ok(claimed),
        }
    }
}
