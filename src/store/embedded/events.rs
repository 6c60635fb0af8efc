//! The event log: events with their indexes and dedup keys, quarantine, rejected requests,
//! totals.

use crate::model::test_suite::TestOrigin;
use std::collections::BTreeMap;

use async_trait::async_trait;
use redb::{ReadTransaction, ReadableTable, WriteTransaction};
use serde_json::value::RawValue;

use super::conversations::{Ordered, order};
use super::lanes::{self, Owners};
use super::records::*;
use super::tables::*;
use super::writer::Tx;
use super::{EmbeddedStore, db_error, parse_id};
use crate::model::DeliveryState;
use crate::model::delivery::DeliveryKind;
use crate::store::ids::EntryId;
use crate::store::types::*;
use crate::store::{EventLog, StoreError};

/// Entries a page request examines at most, so a sparse filter costs a bounded read; a short
/// page with a cursor then means "more may follow".
const MAX_SCAN: usize = 10_000;

/// Totals to add, by name (see [`COUNTERS`]).
pub(super) type Totals = BTreeMap<String, u64>;

/// Adds `amount` to the total `name`.
pub(super) fn count(txn: &WriteTransaction, name: &str, amount: u64) -> Result<(), StoreError> {
    if amount == 0 {
        return Ok(());
    }
    let mut t = txn.open_table(COUNTERS).map_err(db_error)?;
    let now = t.get(name).map_err(db_error)?.map_or(0, |v| v.value());
    t.insert(name, now + amount).map_err(db_error)?;
    Ok(())
}

pub(super) fn stored_event(id: EntryId, rec: EventRec) -> Result<StoredEvent, StoreError> {
    let data = RawValue::from_string(rec.data)
        .map_err(|e| StoreError::Protocol(format!("stored event {id} data: {e}")))?;
    Ok(StoredEvent {
        id: id.to_string(),
        event_type: rec.event_type,
        platform: rec.platform,
        account_id: rec.account_id,
        source: rec.source,
        object: rec.object,
        received_at: rec.received_at_ms,
        occurred_at: rec.occurred_at_ms,
        journal_id: rec.journal_id,
        test: TestOrigin::of(&rec.request_id),
        request_id: rec.request_id,
        data,
        identity: identity_members(&rec.identity)?,
        endpoints: rec.endpoints,
    })
}

/// The index keys of an event: by type, platform, account and each tenant.
pub(super) fn index_keys(rec: &EventRec, id: EntryId) -> Vec<Vec<u8>> {
    let mut keys = vec![
        index_key('t', &rec.event_type, id),
        index_key('p', &rec.platform, id),
        index_key('a', &rec.account_id, id),
    ];
    keys.extend(rec.tenants.iter().map(|t| index_key('n', t, id)));
    keys
}

/// Stores one split entry's new events, their deliveries and dedup keys, and acknowledges it.
fn commit_events(
    tx: &mut Tx<'_>,
    item: &Normalized,
    dedup_ttl_ms: u64,
    totals: &mut Totals,
) -> Result<CommitOutcome, StoreError> {
    let Normalized::Events {
        journal_id,
        source,
        received_at_ms,
        object,
        request_id,
        events,
        routing,
    } = item
    else {
        return Ok(CommitOutcome::default());
    };
    let jid = parse_id("journal_id", journal_id)?;
    // A test run's events are counted apart from the traffic's.
    let test = crate::suites::is_test(request_id);
    let mut dedup = tx.txn.open_table(DEDUP).map_err(db_error)?;
    let mut expiry = tx.txn.open_table(DEDUP_EXPIRY).map_err(db_error)?;
    let mut stored = tx.txn.open_table(EVENTS).map_err(db_error)?;
    let mut index = tx.txn.open_table(EVENT_INDEX).map_err(db_error)?;
    // Queued once the tables above are closed, each in its endpoints' owners' lanes.
    let mut to_queue: Vec<QueuedRec> = Vec::new();
    let mut event_ids = Vec::with_capacity(events.len());
    let (mut new, mut dup) = (0u64, 0u64);
    let mut raw: Vec<String> = Vec::new();
    let mut raw_first: Option<(&str, &str)> = None;
    let mut ordered = Vec::new();
    let expires = tx.now_ms + dedup_ttl_ms;
    for (i, e) in events.iter().enumerate() {
        let digest = e.dedup_key.digest_hex();
        let seen = dedup
            .get(digest.as_str())
            .map_err(db_error)?
            .is_some_and(|v| v.value() > tx.now_ms);
        if seen {
            dup += 1;
            event_ids.push(None);
            continue;
        }
        dedup.insert(digest.as_str(), expires).map_err(db_error)?;
        expiry
            .insert(dedup_expiry_key(expires, &digest).as_slice(), ())
            .map_err(db_error)?;
        let route = routing.get(i).cloned().unwrap_or_default();
        let id = tx.next_id();
        let rec = EventRec {
            event_type: e.event_type.clone(),
            platform: e.platform.as_str().to_string(),
            account_id: e.account_id.clone(),
            source: source.clone(),
            object: object.clone(),
            received_at_ms: *received_at_ms,
            occurred_at_ms: e.occurred_at_ms,
            journal_id: journal_id.clone(),
            request_id: request_id.clone(),
            endpoints: route.endpoints.clone(),
            tenants: route.tenants.clone(),
            data: e.data.clone(),
            identity: e.identity.clone(),
            conversation: e.conversation.clone(),
        };
        for k in index_keys(&rec, id) {
            index.insert(k.as_slice(), ()).map_err(db_error)?;
        }
        // Endpoints that order by conversation take the event from its conversation's queue.
        let at_once: Vec<String> = route
            .endpoints
            .iter()
            .filter(|ep| !route.ordered.contains(ep))
            .cloned()
            .collect();
        if !route.ordered.is_empty() {
            ordered.push((id, i));
        }
        if !at_once.is_empty() {
            let queued = QueuedRec {
                kind: DeliveryKind::Event,
                subject: id.to_string(),
                endpoints: at_once,
                attempt: 1,
                event_type: rec.event_type.clone(),
                platform: rec.platform.clone(),
                account_id: rec.account_id.clone(),
                source: source.clone(),
                received_at_ms: *received_at_ms,
                occurred_at_ms: e.occurred_at_ms,
                request_id: request_id.clone(),
            };
            to_queue.push(queued);
        }
        for ep in &route.raw_endpoints {
            if !raw.contains(ep) {
                raw.push(ep.clone());
                raw_first.get_or_insert((&e.event_type, &e.account_id));
            }
        }
        stored
            .insert(id.key(), encode("event", &rec)?.as_slice())
            .map_err(db_error)?;
        if !test {
            *totals.entry(format!("type:{}", e.event_type)).or_default() += 1;
        }
        new += 1;
        event_ids.push(Some(id.to_string()));
    }
    // Raw mode forwards Meta's request itself, once per endpoint, when it brought anything new.
    if let Some((event_type, account_id)) = raw_first {
        let queued = QueuedRec {
            kind: DeliveryKind::Raw,
            subject: journal_id.clone(),
            endpoints: raw.clone(),
            attempt: 1,
            event_type: event_type.to_string(),
            platform: String::new(),
            account_id: account_id.to_string(),
            source: source.clone(),
            received_at_ms: *received_at_ms,
            occurred_at_ms: None,
            request_id: request_id.clone(),
        };
        to_queue.push(queued);
        let mut states = tx.txn.open_table(STATES).map_err(db_error)?;
        for ep in &raw {
            let state = state_rec(&DeliveryState::pending(ep.clone()), None);
            states
                .insert(
                    state_key(jid, ep).as_slice(),
                    encode("state", &state)?.as_slice(),
                )
                .map_err(db_error)?;
        }
    }
    drop((dedup, expiry, stored, index));
    let mut owners = Owners::default();
    for rec in to_queue {
        for (owner, endpoints) in owners.group(tx.txn, &rec.endpoints)? {
            let rec = QueuedRec {
                endpoints,
                ..rec.clone()
            };
            lanes::queue(tx, &owner, &rec)?;
        }
    }
    for (id, i) in ordered {
        let e = &events[i];
        let o = Ordered {
            id,
            event_type: &e.event_type,
            conversation: &e.conversation,
            status_step: e.status_step.as_ref(),
            endpoints: routing.get(i).map_or(&[][..], |r| &r.ordered),
        };
        order(tx, &o, dedup_ttl_ms, totals)?;
    }
    let mut unacked = tx.txn.open_table(JOURNAL_UNACKED).map_err(db_error)?;
    unacked.remove(jid.key()).map_err(db_error)?;
    if test {
        *totals.entry("test_events".into()).or_default() += new;
    } else {
        *totals.entry("events".into()).or_default() += new;
        *totals.entry("duplicates".into()).or_default() += dup;
    }
    Ok(CommitOutcome {
        event_ids,
        quarantined: false,
    })
}

pub(super) fn state_rec(s: &DeliveryState, retry_key: Option<u128>) -> StateRec {
    StateRec {
        status: s.status,
        attempts: s.attempts,
        last_attempt_id: s.last_attempt_id.clone(),
        dead_id: s.dead_id.clone(),
        retry_key,
    }
}

pub(super) fn delivery_state(endpoint_id: String, rec: StateRec) -> DeliveryState {
    DeliveryState {
        endpoint_id,
        status: rec.status,
        attempts: rec.attempts,
        last_attempt_id: rec.last_attempt_id,
        dead_id: rec.dead_id,
    }
}

fn quarantine(
    tx: &mut Tx<'_>,
    journal_id: &str,
    entry: &JournalEntry,
    error: &str,
    totals: &mut Totals,
) -> Result<CommitOutcome, StoreError> {
    let jid = parse_id("journal_id", journal_id)?;
    let rec = QuarantineRec {
        source: entry.source.clone(),
        received_at: entry.received_at_ms,
        journal_id: journal_id.to_string(),
        request_id: entry.request_id.clone(),
        error: error.to_string(),
        signature: entry.signature.clone(),
        body: entry.body.to_vec(),
    };
    let id = tx.next_id();
    let mut q = tx.txn.open_table(QUARANTINE).map_err(db_error)?;
    q.insert(id.key(), encode("quarantined body", &rec)?.as_slice())
        .map_err(db_error)?;
    drop(q);
    let mut unacked = tx.txn.open_table(JOURNAL_UNACKED).map_err(db_error)?;
    unacked.remove(jid.key()).map_err(db_error)?;
    *totals.entry("quarantined".into()).or_default() += 1;
    Ok(CommitOutcome {
        quarantined: true,
        ..CommitOutcome::default()
    })
}

/// The newest-first page of `table` within the window, items made by `item` (which may skip
/// an entry by returning `None`).
pub(super) fn newest_first<T>(
    txn: &ReadTransaction,
    table: redb::TableDefinition<'static, u128, &'static [u8]>,
    w: &Window,
    mut item: impl FnMut(EntryId, &[u8]) -> Result<Option<T>, StoreError>,
) -> Result<Page<T>, StoreError> {
    let t = txn.open_table(table).map_err(db_error)?;
    let range = t
        .range(w.lower().key()..w.upper().key())
        .map_err(db_error)?;
    let mut items = Vec::with_capacity(w.limit);
    let mut last = None;
    for (scanned, entry) in range.rev().enumerate() {
        if scanned >= MAX_SCAN {
            return Ok(Page {
                items,
                next_cursor: last.map(|id: EntryId| id.to_string()),
            });
        }
        let (k, v) = entry.map_err(db_error)?;
        let id = EntryId::from_key(k.value());
        last = Some(id);
        if let Some(found) = item(id, v.value())? {
            items.push(found);
            if items.len() == w.limit {
                return Ok(Page {
                    items,
                    next_cursor: Some(id.to_string()),
                });
            }
        }
    }
    Ok(Page {
        items,
        next_cursor: None,
    })
}

/// A page request: ids from `from_ms` up to (not including) the cursor or past `to_ms`.
pub(super) struct Window {
    pub from_ms: Option<u64>,
    pub to_ms: Option<u64>,
    pub cursor: Option<EntryId>,
    pub limit: usize,
}

impl Window {
    pub fn new(
        cursor: Option<&str>,
        from_ms: Option<u64>,
        to_ms: Option<u64>,
        limit: usize,
    ) -> Result<Window, StoreError> {
        Ok(Window {
            from_ms,
            to_ms,
            cursor: cursor.map(|c| parse_id("cursor", c)).transpose()?,
            limit: limit.max(1),
        })
    }

    pub fn lower(&self) -> EntryId {
        EntryId::at(self.from_ms.unwrap_or(0))
    }

    /// Exclusive.
    pub fn upper(&self) -> EntryId {
        let to = self
            .to_ms
            .map_or(EntryId::MAX, |t| EntryId::at(t.saturating_add(1)));
        self.cursor.map_or(to, |c| c.min(to))
    }
}

fn list_events_in(
    txn: &ReadTransaction,
    q: &EventQuery,
    w: &Window,
) -> Result<Page<StoredEvent>, StoreError> {
    let matches = |e: &EventRec| {
        q.event_type.as_ref().is_none_or(|t| &e.event_type == t)
            && q.platform.as_ref().is_none_or(|p| &e.platform == p)
            && q.account_id.as_ref().is_none_or(|a| &e.account_id == a)
    };
    // Scan the most selective index; the other filters are applied to what it yields.
    let index = if let Some(t) = &q.tenant_id {
        Some(format!("n:{t}"))
    } else if let Some(a) = &q.account_id {
        Some(format!("a:{a}"))
    } else if let Some(t) = &q.event_type {
        Some(format!("t:{t}"))
    } else {
        q.platform.as_ref().map(|p| format!("p:{p}"))
    };
    let Some(index) = index else {
        return newest_first(txn, EVENTS, w, |id, bytes| {
            let rec = decode_event(bytes)?;
            matches(&rec).then(|| stored_event(id, rec)).transpose()
        });
    };
    newest_first_indexed(txn, EVENT_INDEX, EVENTS, &index, w, |id, bytes| {
        let rec = decode_event(bytes)?;
        matches(&rec).then(|| stored_event(id, rec)).transpose()
    })
}

/// One page, newest first, of the entries of `table` that `index` lists under `name` (keys
/// `name ‖ id`, see [`named_id`]), each read by `item` (`None` leaves it out); like
/// [`newest_first`], at most [`MAX_SCAN`] index entries are read.
pub(super) fn newest_first_indexed<T>(
    txn: &ReadTransaction,
    index: redb::TableDefinition<'static, &'static [u8], ()>,
    table: redb::TableDefinition<'static, u128, &'static [u8]>,
    name: &str,
    w: &Window,
    mut item: impl FnMut(EntryId, &[u8]) -> Result<Option<T>, StoreError>,
) -> Result<Page<T>, StoreError> {
    let idx = txn.open_table(index).map_err(db_error)?;
    let entries = txn.open_table(table).map_err(db_error)?;
    let (lo, hi) = (named_id(name, w.lower()), named_id(name, w.upper()));
    let mut items = Vec::with_capacity(w.limit);
    let mut last = None;
    for (scanned, entry) in idx
        .range(lo.as_slice()..hi.as_slice())
        .map_err(db_error)?
        .rev()
        .enumerate()
    {
        if scanned >= MAX_SCAN {
            return Ok(Page {
                items,
                next_cursor: last.map(|id: EntryId| id.to_string()),
            });
        }
        let (k, _) = entry.map_err(db_error)?;
        let Some(id) = id_of_named(k.value()) else {
            continue;
        };
        last = Some(id);
        let Some(v) = entries.get(id.key()).map_err(db_error)? else {
            continue;
        };
        if let Some(found) = item(id, v.value())? {
            items.push(found);
            if items.len() == w.limit {
                return Ok(Page {
                    items,
                    next_cursor: Some(id.to_string()),
                });
            }
        }
    }
    Ok(Page {
        items,
        next_cursor: None,
    })
}

#[async_trait]
impl EventLog for EmbeddedStore {
    async fn commit_normalized(
        &self,
        batch: &[Normalized],
    ) -> Result<Vec<CommitOutcome>, StoreError> {
        if batch.is_empty() {
            return Ok(Vec::new());
        }
        let batch = batch.to_vec();
        let dedup_ttl_ms = self.limits().dedup_ttl.as_millis() as u64;
        // Durable: deliveries are made from these events under their ids, and a commit lost in
        // a crash would split the entry again under new ids (a new webhook-id for a delivery
        // already made).
        self.write("commit_normalized", true, move |tx| {
            // Totals are added up over the batch and written once.
            let mut totals = Totals::new();
            let outcomes = batch
                .iter()
                .map(|item| match item {
                    Normalized::Events { .. } => commit_events(tx, item, dedup_ttl_ms, &mut totals),
                    Normalized::Quarantine {
                        journal_id,
                        entry,
                        error,
                    } => quarantine(tx, journal_id, entry, error, &mut totals),
                    Normalized::Missing { journal_id } => {
                        let jid = parse_id("journal_id", journal_id)?;
                        let mut unacked = tx.txn.open_table(JOURNAL_UNACKED).map_err(db_error)?;
                        unacked.remove(jid.key()).map_err(db_error)?;
                        Ok(CommitOutcome::default())
                    }
                })
                .collect::<Result<Vec<_>, _>>()?;
            for (name, n) in &totals {
                count(tx.txn, name, *n)?;
            }
            Ok(outcomes)
        })
        .await
    }

    async fn record_rejection(&self, r: &Rejection) -> Result<(), StoreError> {
        let rec = encode(
            "rejection",
            &RejectedRec {
                source: r.source.clone(),
                reason: r.reason.clone(),
                received_at_ms: r.received_at_ms,
                request_id: r.request_id.clone(),
                remote_addr: r.remote_addr.clone(),
                signature: r.signature.clone(),
                body_len: r.body_len as u64,
                body_prefix: r.body_prefix.clone(),
            },
        )?;
        let keep = self.limits().rejected_keep;
        self.write("record_rejection", false, move |tx| {
            let id = tx.next_id();
            let mut t = tx.txn.open_table(REJECTED).map_err(db_error)?;
            t.insert(id.key(), rec.as_slice()).map_err(db_error)?;
            // Exact, so the list's bound holds to the record.
            while redb::ReadableTableMetadata::len(&t).map_err(db_error)? > keep {
                t.pop_first().map_err(db_error)?;
            }
            drop(t);
            count(tx.txn, "rejected", 1)
        })
        .await
    }

    async fn list_events(&self, q: &EventQuery) -> Result<Page<StoredEvent>, StoreError> {
        let w = Window::new(q.cursor.as_deref(), q.from_ms, q.to_ms, q.limit)?;
        let q = q.clone();
        self.read("list_events", move |txn| list_events_in(txn, &q, &w))
            .await
    }

    async fn get_event(&self, id: &str) -> Result<Option<StoredEvent>, StoreError> {
        let id = parse_id("id", id)?;
        self.read("get_event", move |txn| {
            let t = txn.open_table(EVENTS).map_err(db_error)?;
            t.get(id.key())
                .map_err(db_error)?
                .map(|v| stored_event(id, decode_event(v.value())?))
                .transpose()
        })
        .await
    }

    async fn list_quarantine(
        &self,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<Page<QuarantinedBody>, StoreError> {
        let w = Window::new(cursor, None, None, limit)?;
        self.read("list_quarantine", move |txn| {
            newest_first(txn, QUARANTINE, &w, |id, bytes| {
                let r: QuarantineRec = decode("quarantined body", bytes)?;
                Ok(Some(QuarantinedBody {
                    id: id.to_string(),
                    source: r.source,
                    received_at: r.received_at,
                    journal_id: r.journal_id,
                    request_id: r.request_id,
                    error: r.error,
                    body_len: r.body.len(),
                    body: String::from_utf8_lossy(&r.body).into_owned(),
                }))
            })
        })
        .await
    }

    async fn list_rejected(
        &self,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<Page<RejectedRequest>, StoreError> {
        let w = Window::new(cursor, None, None, limit)?;
        self.read("list_rejected", move |txn| {
            newest_first(txn, REJECTED, &w, |id, bytes| {
                let r: RejectedRec = decode("rejected request", bytes)?;
                Ok(Some(RejectedRequest {
                    id: id.to_string(),
                    rejection: Rejection {
                        source: r.source,
                        reason: r.reason,
                        received_at_ms: r.received_at_ms,
                        request_id: r.request_id,
                        remote_addr: r.remote_addr,
                        signature: r.signature,
                        body_len: r.body_len as usize,
                        body_prefix: r.body_prefix,
                    },
                }))
            })
        })
        .await
    }

    async fn stats(&self) -> Result<Stats, StoreError> {
        self.read("stats", |txn| {
            let t = txn.open_table(COUNTERS).map_err(db_error)?;
            let mut stats = Stats::default();
            for item in t.iter().map_err(db_error)? {
                let (k, v) = item.map_err(db_error)?;
                let (name, n) = (k.value(), v.value());
                match name {
                    "received" => stats.received = n,
                    "rejected" => stats.rejected = n,
                    "duplicates" => stats.duplicates = n,
                    "quarantined" => stats.quarantined = n,
                    "events" => stats.events = n,
                    "test_events" => stats.test_events = n,
                    "stale_statuses" => stats.stale_statuses = n,
                    other => {
                        if let Some(t) = other.strip_prefix("type:") {
                            stats.events_by_type.insert(t.to_string(), n);
                        }
                    }
                }
            }
            Ok(stats)
        })
        .await
    }
}
