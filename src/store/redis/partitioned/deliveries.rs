//! Deliveries and their log over partitions: a delivery lives in the partition of its event
//! (or raw request), so each round of outcomes is committed partition by partition.

use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};

use async_trait::async_trait;

use super::ids::{mark, own_in, split};
use super::merge::merged;
use super::{PartitionedStore, lock};
use crate::model::audit::AuditRecord;
use crate::store::types::Page;
use crate::store::{
    AttemptCommit, AttemptEntry, DeadDelivery, DeadQuery, DeliveryKind, DeliveryLog, DeliveryQueue,
    DeliveryRecord, DeliveryState, ReadFrom, StoreError,
};

/// A round's identity, to recognise it when the caller commits it again.
fn fingerprint(c: &AttemptCommit) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    c.acks.hash(&mut h);
    for r in &c.resolutions {
        (&r.subject, &r.endpoint_id, r.attempt).hash(&mut h);
        std::mem::discriminant(&r.next).hash(&mut h);
    }
    h.finish()
}

impl PartitionedStore {
    /// The part of round `c` that partition `p` commits, with its ids as `p` knows them. The
    /// round's statistics go with the first partition's part.
    fn part_of_round(&self, c: &AttemptCommit, p: usize, first: bool) -> AttemptCommit {
        let count = self.count();
        let resolutions = c
            .resolutions
            .iter()
            .filter_map(|r| {
                let subject = own_in(&r.subject, p, count)?;
                let mut r = r.clone();
                r.subject = subject.to_string();
                if let Some(log) = &mut r.log
                    && let Some(own) = own_in(&log.event_id, p, count)
                {
                    log.event_id = own.to_string();
                }
                Some(r)
            })
            .collect();
        AttemptCommit {
            resolutions,
            acks: c
                .acks
                .iter()
                .filter_map(|id| own_in(id, p, count).map(str::to_string))
                .collect(),
            stats: if first { c.stats.clone() } else { Vec::new() },
        }
    }
}

fn mark_record(r: &mut DeliveryRecord, p: usize) {
    mark(&mut r.id, p);
    mark(&mut r.subject, p);
}

fn mark_attempt(a: &mut AttemptEntry, p: usize) {
    mark(&mut a.id, p);
    mark(&mut a.log.event_id, p);
}

fn mark_dead(d: &mut DeadDelivery, p: usize) {
    mark(&mut d.id, p);
    mark(&mut d.event_id, p);
}

#[async_trait]
impl DeliveryQueue for PartitionedStore {
    async fn read_deliveries(
        &self,
        consumer: &str,
        from: ReadFrom,
        count: usize,
        block: std::time::Duration,
    ) -> Result<Vec<DeliveryRecord>, StoreError> {
        self.read_in_turn(
            from,
            count,
            block,
            &self.pending_deliveries,
            |p, from, block| self.parts[p].read_deliveries(consumer, from, count, block),
            mark_record,
        )
        .await
    }

    async fn commit_attempts(&self, c: &AttemptCommit) -> Result<(), StoreError> {
        for id in c
            .acks
            .iter()
            .chain(c.resolutions.iter().map(|r| &r.subject))
        {
            split("id", id, self.count())?;
        }
        // Only a round that follows a partly committed one needs recognising.
        let mut done = match lock(&self.partly_committed).take() {
            Some((fp, done)) if fp == fingerprint(c) => done,
            _ => Vec::new(),
        };
        let mut first = true;
        for p in 0..self.count() {
            let part = self.part_of_round(c, p, first);
            if part.resolutions.is_empty() && part.acks.is_empty() {
                continue;
            }
            first = false;
            if done.contains(&p) {
                continue;
            }
            if let Err(e) = self.parts[p].commit_attempts(&part).await {
                *lock(&self.partly_committed) = Some((fingerprint(c), done));
                return Err(e);
            }
            done.push(p);
        }
        Ok(())
    }

    async fn promote_due_retries(
        &self,
        now_ms: u64,
        max: usize,
    ) -> Result<(usize, usize), StoreError> {
        // A partition that fails does not hold back the others' retries.
        let (mut moved, mut dropped, mut failed) = (0, 0, None);
        for part in &self.parts {
            match part.promote_due_retries(now_ms, max).await {
                Ok((m, d)) => {
                    moved += m;
                    dropped += d;
                }
                Err(e) => failed = failed.or(Some(e)),
            }
        }
        match failed {
            Some(e) if moved + dropped == 0 => Err(e),
            _ => Ok((moved, dropped)),
        }
    }

    async fn requeue_dead(&self, ids: &[String]) -> Result<usize, StoreError> {
        let mut per: Vec<Vec<String>> = vec![Vec::new(); self.count()];
        for id in ids {
            let (p, own) = split("id", id, self.count())?;
            per[p].push(own.to_string());
        }
        let mut moved = 0;
        for (part, ids) in self.parts.iter().zip(per) {
            moved += part.requeue_dead(&ids).await?;
        }
        Ok(moved)
    }

    async fn retry_delivery(
        &self,
        kind: DeliveryKind,
        subject: &str,
        endpoint_id: &str,
        event_type: &str,
        audit: &AuditRecord,
    ) -> Result<bool, StoreError> {
        let (part, _, own) = self.part_of("subject", subject)?;
        part.retry_delivery(kind, own, endpoint_id, event_type, audit)
            .await
    }
}

#[async_trait]
impl DeliveryLog for PartitionedStore {
    async fn list_attempts(
        &self,
        endpoint_id: &str,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<Page<AttemptEntry>, StoreError> {
        merged(
            self.count(),
            cursor,
            limit,
            |p, cursor| async move {
                self.parts[p]
                    .list_attempts(endpoint_id, cursor.as_deref(), limit)
                    .await
            },
            |a: &AttemptEntry| a.id.as_str(),
            mark_attempt,
        )
        .await
    }

    async fn get_attempt(
        &self,
        endpoint_id: &str,
        id: &str,
    ) -> Result<Option<AttemptEntry>, StoreError> {
        let (part, p, own) = self.part_of("id", id)?;
        let mut found = part.get_attempt(endpoint_id, own).await?;
        if let Some(a) = &mut found {
            mark_attempt(a, p);
        }
        Ok(found)
    }

    async fn delivery_states(
        &self,
        kind: DeliveryKind,
        subject: &str,
        routed: &[String],
    ) -> Result<Vec<DeliveryState>, StoreError> {
        let (part, p, own) = self.part_of("id", subject)?;
        let mut states = part.delivery_states(kind, own, routed).await?;
        for s in &mut states {
            for id in [&mut s.last_attempt_id, &mut s.dead_id]
                .into_iter()
                .flatten()
            {
                mark(id, p);
            }
        }
        Ok(states)
    }

    async fn list_dead(&self, q: &DeadQuery) -> Result<Page<DeadDelivery>, StoreError> {
        merged(
            self.count(),
            q.cursor.as_deref(),
            q.limit,
            |p, cursor| {
                let query = DeadQuery {
                    cursor,
                    ..q.clone()
                };
                async move { self.parts[p].list_dead(&query).await }
            },
            |d: &DeadDelivery| d.id.as_str(),
            mark_dead,
        )
        .await
    }

    async fn stats_buckets(
        &self,
        scope: &str,
        from_ms: u64,
        to_ms: u64,
    ) -> Result<Vec<BTreeMap<String, u64>>, StoreError> {
        let mut total: Vec<BTreeMap<String, u64>> = Vec::new();
        for part in &self.parts {
            let buckets = part.stats_buckets(scope, from_ms, to_ms).await?;
            if total.len() < buckets.len() {
                total.resize(buckets.len(), BTreeMap::new());
            }
            for (sum, bucket) in total.iter_mut().zip(buckets) {
                for (field, n) in bucket {
                    *sum.entry(field).or_default() += n;
                }
            }
        }
        Ok(total)
    }

    async fn purge_attempt_logs(
        &self,
        endpoint_ids: &[String],
        before_ms: u64,
    ) -> Result<u64, StoreError> {
        let mut purged = 0;
        for part in &self.parts {
            purged += part.purge_attempt_logs(endpoint_ids, before_ms).await?;
        }
        Ok(purged)
    }
}
