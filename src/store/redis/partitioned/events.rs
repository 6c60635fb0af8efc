//! The journal, events and their corrections over partitions: a request is journaled in the
//! partition of each account it speaks of, an event is found in the partition its id names.

use async_trait::async_trait;

use super::PartitionedStore;
use super::ids::{mark, qualify};
use super::merge::merged;
use crate::model::audit::AuditRecord;
use crate::store::redis::partitions::{keep_own, of_body};
use crate::store::types::*;
use crate::store::{Corrections, EventLog, Journal, StoreError};

#[async_trait]
impl Journal for PartitionedStore {
    async fn append_journal(&self, batch: &[JournalEntry]) -> Result<Vec<String>, StoreError> {
        let count = self.count();
        // Per partition: (request, whether this partition is its first, which counts it).
        let mut per: Vec<Vec<(usize, bool)>> = vec![Vec::new(); count];
        for (i, entry) in batch.iter().enumerate() {
            for (k, p) in of_body(&entry.body, count).into_iter().enumerate() {
                per[p].push((i, k == 0));
            }
        }
        let appends = per
            .iter()
            .enumerate()
            .filter(|(_, l)| !l.is_empty())
            .map(|(p, list)| {
                let entries: Vec<JournalEntry> =
                    list.iter().map(|(i, _)| batch[*i].clone()).collect();
                let received = list
                    .iter()
                    .filter(|(i, first)| *first && !crate::suites::is_test(&batch[*i].request_id))
                    .count();
                async move {
                    let ids = self.parts[p].append_entries(&entries, received).await?;
                    Ok::<_, StoreError>((p, ids))
                }
            });
        let appended = futures_util::future::try_join_all(appends).await?;
        let mut out = vec![String::new(); batch.len()];
        for (p, ids) in appended {
            for ((i, first), id) in per[p].iter().zip(ids) {
                if *first {
                    out[*i] = qualify(&id, p);
                }
            }
        }
        Ok(out)
    }

    async fn read_journal(
        &self,
        consumer: &str,
        from: ReadFrom,
        count: usize,
        block: std::time::Duration,
    ) -> Result<Vec<JournalRecord>, StoreError> {
        self.read_in_turn(
            from,
            count,
            block,
            &self.pending_journal,
            |p, from, block| self.parts[p].read_journal(consumer, from, count, block),
            |r: &mut JournalRecord, p| mark(&mut r.id, p),
        )
        .await
    }

    async fn journal_entry(&self, journal_id: &str) -> Result<Option<JournalEntry>, StoreError> {
        let (part, _, own) = self.part_of("journal_id", journal_id)?;
        part.journal_entry(own).await
    }
}

/// Marks an event's ids as partition `p`'s.
fn mark_event(e: &mut StoredEvent, p: usize) {
    mark(&mut e.id, p);
    mark(&mut e.journal_id, p);
}

#[async_trait]
impl EventLog for PartitionedStore {
    async fn commit_normalized(
        &self,
        batch: &[Normalized],
    ) -> Result<Vec<CommitOutcome>, StoreError> {
        let mut out = vec![CommitOutcome::default(); batch.len()];
        for p in 0..self.count() {
            let part = &self.parts[p];
            let mut mine = Vec::new();
            let mut positions = Vec::new();
            for (i, item) in batch.iter().enumerate() {
                let (_, q, own) = self.part_of("journal_id", journal_id_of(item))?;
                if q == p {
                    let mut item = item.clone();
                    set_journal_id(&mut item, own);
                    keep_own(&mut item, part.partition);
                    mine.push(item);
                    positions.push(i);
                }
            }
            if mine.is_empty() {
                continue;
            }
            for (i, mut outcome) in positions
                .into_iter()
                .zip(part.commit_normalized(&mine).await?)
            {
                for id in outcome.event_ids.iter_mut().flatten() {
                    mark(id, p);
                }
                out[i] = outcome;
            }
        }
        Ok(out)
    }

    async fn record_rejection(&self, rejection: &Rejection) -> Result<(), StoreError> {
        self.catalogue().record_rejection(rejection).await
    }

    async fn list_events(&self, q: &EventQuery) -> Result<Page<StoredEvent>, StoreError> {
        merged(
            self.count(),
            q.cursor.as_deref(),
            q.limit,
            |p, cursor| {
                let query = EventQuery {
                    cursor,
                    ..q.clone()
                };
                async move { self.parts[p].list_events(&query).await }
            },
            |e: &StoredEvent| e.id.as_str(),
            mark_event,
        )
        .await
    }

    async fn get_event(&self, id: &str) -> Result<Option<StoredEvent>, StoreError> {
        let (part, p, own) = self.part_of("id", id)?;
        let mut found = part.get_event(own).await?;
        if let Some(e) = &mut found {
            mark_event(e, p);
        }
        Ok(found)
    }

    async fn list_quarantine(
        &self,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<Page<QuarantinedBody>, StoreError> {
        merged(
            self.count(),
            cursor,
            limit,
            |p, cursor| async move {
                self.parts[p]
                    .list_quarantine(cursor.as_deref(), limit)
                    .await
            },
            |b: &QuarantinedBody| b.id.as_str(),
            |b, p| {
                mark(&mut b.id, p);
                mark(&mut b.journal_id, p);
            },
        )
        .await
    }

    async fn list_rejected(
        &self,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<Page<RejectedRequest>, StoreError> {
        self.catalogue().list_rejected(cursor, limit).await
    }

    async fn stats(&self) -> Result<Stats, StoreError> {
        let mut total = Stats::default();
        for part in &self.parts {
            let s = part.stats().await?;
            total.received += s.received;
            total.rejected += s.rejected;
            total.duplicates += s.duplicates;
            total.quarantined += s.quarantined;
            total.events += s.events;
            total.test_events += s.test_events;
            total.stale_statuses += s.stale_statuses;
            for (t, n) in s.events_by_type {
                *total.events_by_type.entry(t).or_default() += n;
            }
        }
        Ok(total)
    }
}

fn journal_id_of(item: &Normalized) -> &str {
    match item {
        Normalized::Events { journal_id, .. }
        | Normalized::Quarantine { journal_id, .. }
        | Normalized::Missing { journal_id } => journal_id,
    }
}

fn set_journal_id(item: &mut Normalized, id: &str) {
    match item {
        Normalized::Events { journal_id, .. }
        | Normalized::Quarantine { journal_id, .. }
        | Normalized::Missing { journal_id } => *journal_id = id.to_string(),
    }
}

#[async_trait]
impl Corrections for PartitionedStore {
    async fn requeue_quarantined(
        &self,
        id: &str,
        audit: &AuditRecord,
    ) -> Result<Option<String>, StoreError> {
        let (part, p, own) = self.part_of("id", id)?;
        let Some(journal_id) = part.requeue_quarantined(own, audit).await? else {
            return Ok(None);
        };
        // A body hookd can now split may speak of accounts of other partitions: they get
        // their copy, as at ingress.
        if let Some(entry) = part.journal_entry(&journal_id).await? {
            for q in of_body(&entry.body, self.count()) {
                if q != p {
                    self.parts[q]
                        .append_entries(std::slice::from_ref(&entry), 0)
                        .await?;
                }
            }
        }
        Ok(Some(qualify(&journal_id, p)))
    }

    async fn delete_quarantined(&self, id: &str, audit: &AuditRecord) -> Result<bool, StoreError> {
        let (part, _, own) = self.part_of("id", id)?;
        part.delete_quarantined(own, audit).await
    }

    async fn delete_event(&self, id: &str, audit: &AuditRecord) -> Result<bool, StoreError> {
        let (part, _, own) = self.part_of("id", id)?;
        part.delete_event(own, audit).await
    }
}
