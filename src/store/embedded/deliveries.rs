//! The delivery queue: deliveries waiting for an attempt, retries waiting for their time, and
//! the commit of a round of outcomes.

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use redb::{ReadableDatabase, ReadableTable, WriteTransaction};

use super::catalogue::{bump_version, health_in};
use super::conversations::{release, release_gone, released_note};
use super::events::{delivery_state, state_rec};
use super::lanes::{self, LaneCursors, Owners, cursor_of, ids_to_read, lanes_in};
use super::records::*;
use super::tables::*;
use super::writer::Tx;
use super::{EmbeddedStore, advance, db_error, lock, parse_id};
use crate::model::audit::AuditRecord;
use crate::model::delivery::*;
use crate::model::rules::{RoundOutcome, StateChange, health_after, state_after, state_requeued};
use crate::store::ids::{EntryId, lane_entry_id, split_lane_entry_id};
use crate::store::types::*;
use crate::store::{DeliveryQueue, StoreError};

/// A queued delivery (its lane, its id, its record) whose event retention removed.
type GoneDelivery = (String, EntryId, QueuedRec);

fn lock_cursors(m: &std::sync::Mutex<LaneCursors>) -> std::sync::MutexGuard<'_, LaneCursors> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl EmbeddedStore {
    /// Each lane's cursors, as they are now.
    pub(super) fn lane_cursors(&self) -> LaneCursors {
        lock_cursors(&self.inner.delivery_lanes).clone()
    }

    /// Whether some lane holds a delivery not handed out yet.
    fn has_new_deliveries(&self) -> bool {
        let start = *lock(&self.inner.delivery_cursor);
        let cursors = lock_cursors(&self.inner.delivery_lanes).clone();
        let Ok(db) = self.inner.shared.db() else {
            return false;
        };
        db.begin_read()
            .ok()
            .and_then(|t| t.open_table(DELIVERY_LANES).ok())
            .and_then(|t| lanes::any_new(&t, &cursors, start).ok())
            .unwrap_or(false)
    }

    /// Queued deliveries after each lane's cursor (new) or up to it (pending), a share of
    /// every lane, with their events' data. A delivery whose event retention trimmed is
    /// acknowledged and skipped.
    fn delivery_batch(
        &self,
        from: ReadFrom,
        count: usize,
    ) -> Result<(Vec<DeliveryRecord>, Vec<GoneDelivery>), StoreError> {
        let db = self.inner.shared.db()?;
        let txn = db.begin_read().map_err(db_error)?;
        let index = txn.open_table(DELIVERY_LANES).map_err(db_error)?;
        let lanes = lanes_in(&index)?;
        let per_lane = count.div_ceil(lanes.len().max(1)).max(1);
        let start = *lock(&self.inner.delivery_cursor);
        let mut cursors = lock_cursors(&self.inner.delivery_lanes);
        let (mut out, mut gone) = (Vec::new(), Vec::new());
        for lane in lanes {
            let first = cursor_of(&cursors, &lane, start);
            let at = cursors.entry(lane.clone()).or_insert(first);
            let ids = ids_to_read(&index, &lane, from, *at, per_lane)?;
            let last = ids.last().map(|id| id.key());
            let read = ids.len();
            self.lane_batch(&txn, &lane, ids, &mut out, &mut gone)?;
            advance(from, &mut at.cursor, &mut at.pass, last, read, per_lane);
        }
        Ok((out, gone))
    }

    /// The deliveries `ids` of `lane`, read into `out` (or `gone`).
    fn lane_batch(
        &self,
        txn: &redb::ReadTransaction,
        lane: &str,
        ids: Vec<EntryId>,
        out: &mut Vec<DeliveryRecord>,
        gone: &mut Vec<GoneDelivery>,
    ) -> Result<(), StoreError> {
        let queue = txn.open_table(DELIVERIES).map_err(db_error)?;
        let events = txn.open_table(EVENTS).map_err(db_error)?;
        let heads = txn.open_table(CONVERSATION_HEADS).map_err(db_error)?;
        for id in ids {
            let key = id.key();
            let Some(v) = queue.get(key).map_err(db_error)? else {
                continue;
            };
            let q: QueuedRec = decode("delivery", v.value())?;
            let (data, identity, conversation) = match q.kind {
                DeliveryKind::Raw => Default::default(),
                DeliveryKind::Event => {
                    let subject = EntryId::parse(&q.subject);
                    let found = subject
                        .map(|id| events.get(id.key()))
                        .transpose()
                        .map_err(db_error)?
                        .flatten();
                    match (found, subject) {
                        (Some(ev), Some(subject)) => {
                            let e = decode_event(ev.value())?;
                            // Only a conversation's head has a conversation to release.
                            let head = match q.endpoints.as_slice() {
                                [ep] => heads
                                    .get(state_key(subject, ep).as_slice())
                                    .map_err(db_error)?
                                    .is_some(),
                                _ => false,
                            };
                            let conversation = if head { e.conversation } else { String::new() };
                            (e.data, e.identity, conversation)
                        }
                        _ => {
                            gone.push((lane.to_string(), id, q));
                            continue;
                        }
                    }
                }
            };
            out.push(DeliveryRecord {
                id: lane_entry_id(lane, &id.to_string()),
                kind: q.kind,
                subject: q.subject,
                endpoints: q.endpoints,
                attempt: q.attempt.max(1),
                event_type: q.event_type,
                platform: q.platform,
                account_id: q.account_id,
                source: q.source,
                received_at_ms: q.received_at_ms,
                occurred_at_ms: q.occurred_at_ms,
                request_id: q.request_id,
                data,
                identity,
                conversation,
            });
        }
        Ok(())
    }

    async fn read_delivery_batch(
        &self,
        from: ReadFrom,
        count: usize,
    ) -> Result<Vec<DeliveryRecord>, StoreError> {
        let this = self.clone();
        let (records, gone) = self
            .read_blocking(move || this.delivery_batch(from, count))
            .await?;
        if !gone.is_empty() {
            tracing::warn!(
                count = gone.len(),
                "deliveries whose event retention removed; acknowledged"
            );
            self.write("ack_unreadable", false, move |tx| {
                for (lane, id, rec) in &gone {
                    lanes::remove(tx.txn, lane, *id)?;
                    if let Some(subject) = EntryId::parse(&rec.subject) {
                        for ep in &rec.endpoints {
                            release_gone(tx, ep, subject)?;
                        }
                    }
                }
                Ok(())
            })
            .await?;
        }
        Ok(records)
    }
}

/// Queues `kind`/`subject` for `endpoint` at `attempt`, reading what the queue entry needs
/// from the event (or, raw, from the journal). False when retention removed it.
pub(super) fn enqueue(tx: &mut Tx<'_>, r: &RetryRec, retry: bool) -> Result<bool, StoreError> {
    let Some(subject) = EntryId::parse(&r.subject) else {
        return Ok(false);
    };
    let queued = match r.kind {
        DeliveryKind::Event => {
            let events = tx.txn.open_table(EVENTS).map_err(db_error)?;
            let Some(v) = events.get(subject.key()).map_err(db_error)? else {
                return Ok(false);
            };
            let e = decode_event(v.value())?;
            QueuedRec {
                kind: r.kind,
                subject: r.subject.clone(),
                endpoints: vec![r.endpoint_id.clone()],
                attempt: r.attempt,
                event_type: e.event_type,
                platform: e.platform,
                account_id: e.account_id,
                source: e.source,
                received_at_ms: e.received_at_ms,
                occurred_at_ms: e.occurred_at_ms,
                request_id: e.request_id,
            }
        }
        DeliveryKind::Raw => {
            let journal = tx.txn.open_table(JOURNAL).map_err(db_error)?;
            let Some(v) = journal.get(subject.key()).map_err(db_error)? else {
                return Ok(false);
            };
            let j: JournalRec = decode("journal entry", v.value())?;
            QueuedRec {
                kind: r.kind,
                subject: r.subject.clone(),
                endpoints: vec![r.endpoint_id.clone()],
                attempt: r.attempt,
                event_type: r.event_type.clone(),
                platform: String::new(),
                account_id: String::new(),
                source: j.source,
                received_at_ms: j.received_at_ms,
                occurred_at_ms: None,
                request_id: j.request_id,
            }
        }
    };
    let lane = Owners::default().of(tx.txn, &r.endpoint_id)?;
    lanes::queue(tx, &lane, &queued)?;
    let state = state_requeued(&r.endpoint_id, r.attempt, retry);
    put_state(tx.txn, subject, &r.endpoint_id, &state_rec(&state, None))?;
    Ok(true)
}

pub(super) fn put_state(
    txn: &WriteTransaction,
    subject: EntryId,
    endpoint: &str,
    rec: &StateRec,
) -> Result<(), StoreError> {
    let mut states = txn.open_table(STATES).map_err(db_error)?;
    states
        .insert(
            state_key(subject, endpoint).as_slice(),
            encode("state", rec)?.as_slice(),
        )
        .map_err(db_error)?;
    Ok(())
}

fn get_state(
    txn: &WriteTransaction,
    subject: EntryId,
    endpoint: &str,
) -> Result<Option<StateRec>, StoreError> {
    let states = txn.open_table(STATES).map_err(db_error)?;
    states
        .get(state_key(subject, endpoint).as_slice())
        .map_err(db_error)?
        .map(|v| decode("state", v.value()))
        .transpose()
}

/// Schedules `r` at `due_ms`; returns its key in the retry table.
fn schedule(tx: &mut Tx<'_>, due_ms: u64, r: &RetryRec) -> Result<u128, StoreError> {
    let key = retry_key(due_ms, tx.next_id());
    let mut retries = tx.txn.open_table(RETRIES).map_err(db_error)?;
    retries
        .insert(key, encode("retry", r)?.as_slice())
        .map_err(db_error)?;
    Ok(key)
}

fn apply_commit(
    tx: &mut Tx<'_>,
    c: &AttemptCommit,
    disable_after_ms: u64,
) -> Result<(), StoreError> {
    let mut rounds: BTreeMap<&str, RoundOutcome> = BTreeMap::new();
    for r in &c.resolutions {
        let subject = parse_id("subject", &r.subject)?;
        let log_id = match &r.log {
            Some(log) => {
                let id = tx.next_id();
                let json = serde_json::to_vec(log)
                    .map_err(|e| StoreError::Protocol(format!("attempt: {e}")))?;
                let mut attempts = tx.txn.open_table(ATTEMPTS).map_err(db_error)?;
                attempts
                    .insert(named_id(&r.endpoint_id, id).as_slice(), json.as_slice())
                    .map_err(db_error)?;
                Some(id.to_string())
            }
            None => None,
        };
        rounds.entry(r.endpoint_id.as_str()).or_default().add(r);
        let again = |attempt| RetryRec {
            kind: r.kind,
            subject: r.subject.clone(),
            endpoint_id: r.endpoint_id.clone(),
            attempt,
            event_type: r.event_type.clone(),
        };
        let mut retry_key = None;
        let mut dead_id = None;
        // A final outcome of a conversation's head lets the next event of it go.
        let released = match &r.next {
            NextStep::Delivered | NextStep::Dead { .. } | NextStep::Gone | NextStep::Drop
                if r.kind == DeliveryKind::Event && !r.conversation.is_empty() =>
            {
                release(tx, &r.endpoint_id, &r.conversation, subject)?
            }
            _ => None,
        };
        match &r.next {
            NextStep::Retry { due_ms } => {
                retry_key = Some(schedule(tx, *due_ms, &again(r.attempt + 1))?);
            }
            // Not attempted (the endpoint's queue was full): the same attempt, later.
            NextStep::Defer { due_ms } => {
                schedule(tx, *due_ms, &again(r.attempt))?;
            }
            NextStep::Dead { .. } | NextStep::Gone => {
                let mut reason = match &r.next {
                    NextStep::Dead { reason } => reason.clone(),
                    _ => "endpoint answered 410 Gone".to_string(),
                };
                if let Some(waiting) = released.filter(|n| *n > 0) {
                    reason.push_str(&released_note(waiting));
                }
                let id = tx.next_id();
                let rec = DeadRec {
                    kind: r.kind,
                    subject: r.subject.clone(),
                    endpoint_id: r.endpoint_id.clone(),
                    tenant_id: r.tenant_id.clone(),
                    event_type: r.event_type.clone(),
                    attempts: r.attempt,
                    reason,
                    dead_at: tx.now_ms,
                    received_at: r.received_at_ms,
                };
                let mut dead = tx.txn.open_table(DEAD).map_err(db_error)?;
                dead.insert(id.key(), encode("dead letter", &rec)?.as_slice())
                    .map_err(db_error)?;
                dead_id = Some(id.to_string());
            }
            NextStep::Delivered | NextStep::Drop => {}
        }
        match state_after(r, log_id, dead_id) {
            StateChange::Set(state) => put_state(
                tx.txn,
                subject,
                &r.endpoint_id,
                &state_rec(&state, retry_key),
            )?,
            StateChange::Remove => {
                let mut states = tx.txn.open_table(STATES).map_err(db_error)?;
                states
                    .remove(state_key(subject, &r.endpoint_id).as_slice())
                    .map_err(db_error)?;
            }
            StateChange::Keep => {}
        }
    }
    // Endpoint health is written once per endpoint per round.
    let mut disabled = false;
    {
        let mut health_table = tx.txn.open_table(ENDPOINT_HEALTH).map_err(db_error)?;
        for (ep, round) in rounds {
            if round == RoundOutcome::default() {
                continue;
            }
            let mut health = health_in(&health_table, ep)?;
            disabled |= health_after(&mut health, round, tx.now_ms, disable_after_ms);
            let json = to_json("endpoint health", &health)?;
            health_table.insert(ep, json.as_str()).map_err(db_error)?;
        }
    }
    if disabled {
        bump_version(tx.txn)?;
    }
    for ack in &c.acks {
        let (lane, id) = split_lane_entry_id(ack);
        lanes::remove(tx.txn, lane, parse_id("ack", id)?)?;
    }
    let mut stats = tx.txn.open_table(STATS).map_err(db_error)?;
    for s in &c.stats {
        let key = stats_key(s.bucket_ms, &s.scope, &s.field);
        let now = stats
            .get(key.as_slice())
            .map_err(db_error)?
            .map_or(0, |v| v.value());
        stats
            .insert(key.as_slice(), now + s.amount)
            .map_err(db_error)?;
    }
    Ok(())
}

#[async_trait]
impl DeliveryQueue for EmbeddedStore {
    async fn read_deliveries(
        &self,
        _consumer: &str,
        from: ReadFrom,
        count: usize,
        block: Duration,
    ) -> Result<Vec<DeliveryRecord>, StoreError> {
        let first = self.read_delivery_batch(from, count).await?;
        if !first.is_empty() || from == ReadFrom::Pending || block.is_zero() {
            return Ok(first);
        }
        let this = self.clone();
        EmbeddedStore::wait(&self.inner.shared.deliveries_ready, block, || {
            this.has_new_deliveries()
        })
        .await;
        self.read_delivery_batch(from, count).await
    }

    async fn commit_attempts(&self, c: &AttemptCommit) -> Result<(), StoreError> {
        if c.resolutions.is_empty() && c.acks.is_empty() && c.stats.is_empty() {
            return Ok(());
        }
        let c = c.clone();
        let disable_after = self.limits().disable_after.as_millis() as u64;
        // An ordered conversation's progress is on disk before its next event goes: a crash
        // then repeats at most the delivery in flight, never what the receiver already had.
        let durable = c.resolutions.iter().any(|r| !r.conversation.is_empty());
        self.write("commit_attempts", durable, move |tx| {
            apply_commit(tx, &c, disable_after)
        })
        .await
    }

    async fn promote_due_retries(
        &self,
        now_ms: u64,
        max: usize,
    ) -> Result<(usize, usize), StoreError> {
        self.write("promote_retries", false, move |tx| {
            let due: Vec<(u128, RetryRec)> = {
                let retries = tx.txn.open_table(RETRIES).map_err(db_error)?;
                let mut due = Vec::new();
                for item in retries
                    .range(..first_retry_key(now_ms.saturating_add(1)))
                    .map_err(db_error)?
                    .take(max)
                {
                    let (k, v) = item.map_err(db_error)?;
                    due.push((k.value(), decode("retry", v.value())?));
                }
                due
            };
            let (mut moved, mut dropped) = (0, 0);
            for (key, r) in due {
                if enqueue(tx, &r, true)? {
                    moved += 1;
                } else {
                    dropped += 1;
                    if let Some(subject) = EntryId::parse(&r.subject) {
                        release_gone(tx, &r.endpoint_id, subject)?;
                    }
                }
                let mut retries = tx.txn.open_table(RETRIES).map_err(db_error)?;
                retries.remove(key).map_err(db_error)?;
            }
            Ok((moved, dropped))
        })
        .await
    }

    async fn requeue_dead(&self, ids: &[String]) -> Result<usize, StoreError> {
        if ids.is_empty() {
            return Ok(0);
        }
        let ids: Vec<EntryId> = ids
            .iter()
            .map(|id| parse_id("id", id))
            .collect::<Result<_, _>>()?;
        self.write("requeue_dead", true, move |tx| {
            let mut moved = 0;
            for id in &ids {
                let rec: Option<DeadRec> = {
                    let mut dead = tx.txn.open_table(DEAD).map_err(db_error)?;
                    let removed = dead.remove(id.key()).map_err(db_error)?;
                    removed
                        .map(|v| decode("dead letter", v.value()))
                        .transpose()?
                };
                let Some(d) = rec else { continue };
                let again = RetryRec {
                    kind: d.kind,
                    subject: d.subject,
                    endpoint_id: d.endpoint_id,
                    attempt: 1,
                    event_type: d.event_type,
                };
                if enqueue(tx, &again, false)? {
                    moved += 1;
                }
            }
            Ok(moved)
        })
        .await
    }

    async fn retry_delivery(
        &self,
        kind: DeliveryKind,
        subject: &str,
        endpoint_id: &str,
        event_type: &str,
        audit: &AuditRecord,
    ) -> Result<bool, StoreError> {
        let sid = parse_id("id", subject)?;
        let audit = audit.clone();
        let (subject, endpoint_id, event_type) = (
            subject.to_string(),
            endpoint_id.to_string(),
            event_type.to_string(),
        );
        self.write("retry_delivery", true, move |tx| {
            let Some(current) = get_state(tx.txn, sid, &endpoint_id)? else {
                return Ok(false);
            };
            let attempt = match current.status {
                DeliveryStatus::Failed => current.attempts + 1,
                _ => 1,
            };
            let again = RetryRec {
                kind,
                subject: subject.clone(),
                endpoint_id: endpoint_id.clone(),
                attempt,
                event_type: event_type.clone(),
            };
            // Queued first: when retention already took the event, nothing changes at all.
            if !enqueue(tx, &again, false)? {
                return Ok(false);
            }
            match current.status {
                DeliveryStatus::Failed => {
                    // Off the schedule: this attempt replaces the one that waited.
                    if let Some(key) = current.retry_key {
                        let mut retries = tx.txn.open_table(RETRIES).map_err(db_error)?;
                        retries.remove(key).map_err(db_error)?;
                    }
                }
                DeliveryStatus::Dead => {
                    if let Some(dead_id) = current.dead_id.as_deref().and_then(EntryId::parse) {
                        let mut dead = tx.txn.open_table(DEAD).map_err(db_error)?;
                        dead.remove(dead_id.key()).map_err(db_error)?;
                    }
                }
                _ => {}
            }
            super::audit::append(tx, &audit)?;
            Ok(true)
        })
        .await
    }
}

/// Every stored state of one subject's deliveries.
pub(super) fn states_of(
    txn: &redb::ReadTransaction,
    subject: EntryId,
) -> Result<Vec<DeliveryState>, StoreError> {
    let states = txn.open_table(STATES).map_err(db_error)?;
    let prefix = subject.key().to_be_bytes();
    let end = after_prefix(&prefix);
    let mut out = Vec::new();
    for item in states
        .range(prefix.as_slice()..end.as_slice())
        .map_err(db_error)?
    {
        let (k, v) = item.map_err(db_error)?;
        let endpoint = String::from_utf8_lossy(&k.value()[16..]).into_owned();
        out.push(delivery_state(endpoint, decode("state", v.value())?));
    }
    Ok(out)
}
