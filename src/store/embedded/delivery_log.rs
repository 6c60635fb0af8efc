//! The delivery log: attempts per endpoint, per-delivery states, dead letters, statistics.

use std::collections::BTreeMap;

use async_trait::async_trait;

use super::deliveries::states_of;
use super::events::{Window, newest_first};
use super::records::*;
use super::tables::*;
use super::{EmbeddedStore, db_error, parse_id};
use crate::model::delivery::*;
use crate::store::ids::EntryId;
use crate::store::types::*;
use crate::store::{DeliveryLog, StoreError};

fn attempt_entry(id: EntryId, json: &[u8]) -> Result<AttemptEntry, StoreError> {
    let log: AttemptLog = serde_json::from_slice(json)
        .map_err(|e| StoreError::Protocol(format!("stored attempt {id}: {e}")))?;
    Ok(AttemptEntry {
        id: id.to_string(),
        log,
    })
}

#[async_trait]
impl DeliveryLog for EmbeddedStore {
    async fn list_attempts(
        &self,
        endpoint_id: &str,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<Page<AttemptEntry>, StoreError> {
        let w = Window::new(cursor, None, None, limit)?;
        let ep = endpoint_id.to_string();
        self.read("list_attempts", move |txn| {
            let t = txn.open_table(ATTEMPTS).map_err(db_error)?;
            let (lo, hi) = (named_id(&ep, w.lower()), named_id(&ep, w.upper()));
            let mut items = Vec::new();
            for item in t
                .range(lo.as_slice()..hi.as_slice())
                .map_err(db_error)?
                .rev()
                .take(w.limit)
            {
                let (k, v) = item.map_err(db_error)?;
                if let Some(id) = id_of_named(k.value()) {
                    items.push(attempt_entry(id, v.value())?);
                }
            }
            let next_cursor = (items.len() == w.limit)
                .then(|| items.last().map(|a: &AttemptEntry| a.id.clone()))
                .flatten();
            Ok(Page { items, next_cursor })
        })
        .await
    }

    async fn get_attempt(
        &self,
        endpoint_id: &str,
        id: &str,
    ) -> Result<Option<AttemptEntry>, StoreError> {
        let Some(id) = EntryId::parse(id) else {
            return Ok(None);
        };
        let key = named_id(endpoint_id, id);
        self.read("get_attempt", move |txn| {
            let t = txn.open_table(ATTEMPTS).map_err(db_error)?;
            t.get(key.as_slice())
                .map_err(db_error)?
                .map(|v| attempt_entry(id, v.value()))
                .transpose()
        })
        .await
    }

    async fn delivery_states(
        &self,
        _kind: DeliveryKind,
        subject: &str,
        _routed: &[String],
    ) -> Result<Vec<DeliveryState>, StoreError> {
        let subject = parse_id("id", subject)?;
        self.read("delivery_states", move |txn| states_of(txn, subject))
            .await
    }

    async fn list_dead(&self, q: &DeadQuery) -> Result<Page<DeadDelivery>, StoreError> {
        let w = Window::new(q.cursor.as_deref(), q.from_ms, q.to_ms, q.limit)?;
        let q = q.clone();
        self.read("list_dead", move |txn| {
            newest_first(txn, DEAD, &w, |id, bytes| {
                let d: DeadRec = decode("dead letter", bytes)?;
                let dead = DeadDelivery {
                    id: id.to_string(),
                    kind: d.kind,
                    event_id: d.subject,
                    endpoint_id: d.endpoint_id,
                    tenant_id: d.tenant_id,
                    event_type: d.event_type,
                    attempts: d.attempts,
                    reason: d.reason,
                    dead_at: d.dead_at,
                    received_at: d.received_at,
                };
                Ok(q.matches(&dead).then_some(dead))
            })
        })
        .await
    }

    async fn stats_buckets(
        &self,
        scope: &str,
        from_ms: u64,
        to_ms: u64,
    ) -> Result<Vec<BTreeMap<String, u64>>, StoreError> {
        let scope = scope.to_string();
        self.read("stats_buckets", move |txn| {
            let t = txn.open_table(STATS).map_err(db_error)?;
            let mut out = Vec::new();
            for bucket in stats_buckets(from_ms, to_ms) {
                let prefix = stats_prefix(bucket, &scope);
                let end = after_prefix(&prefix);
                let mut fields = BTreeMap::new();
                for item in t
                    .range(prefix.as_slice()..end.as_slice())
                    .map_err(db_error)?
                {
                    let (k, v) = item.map_err(db_error)?;
                    let field = String::from_utf8_lossy(&k.value()[prefix.len()..]).into_owned();
                    fields.insert(field, v.value().max(0) as u64);
                }
                out.push(fields);
            }
            Ok(out)
        })
        .await
    }

    async fn purge_attempt_logs(
        &self,
        endpoint_ids: &[String],
        before_ms: u64,
    ) -> Result<u64, StoreError> {
        if endpoint_ids.is_empty() {
            return Ok(0);
        }
        let eps = endpoint_ids.to_vec();
        self.write("purge_attempt_logs", false, move |tx| {
            let mut t = tx.txn.open_table(ATTEMPTS).map_err(db_error)?;
            let mut removed = 0u64;
            for ep in &eps {
                let (lo, hi) = (
                    named_id(ep, EntryId::at(0)),
                    named_id(ep, EntryId::at(before_ms)),
                );
                t.retain_in(lo.as_slice()..hi.as_slice(), |_, _| {
                    removed += 1;
                    false
                })
                .map_err(db_error)?;
            }
            Ok(removed)
        })
        .await
    }
}
