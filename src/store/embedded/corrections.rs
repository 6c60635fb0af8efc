//! Quarantined bodies put back in the journal or deleted, events deleted: each in one
//! transaction with its audit record.

use async_trait::async_trait;

use super::audit::append;
use super::events::index_keys;
use super::records::{JournalRec, QuarantineRec, decode, decode_event, encode};
use super::tables::{EVENT_INDEX, EVENTS, JOURNAL, JOURNAL_UNACKED, QUARANTINE, STATES, state_key};
use super::{EmbeddedStore, db_error, parse_id};
use crate::model::audit::AuditRecord;
use crate::store::{Corrections, StoreError};

#[async_trait]
impl Corrections for EmbeddedStore {
    async fn requeue_quarantined(
        &self,
        id: &str,
        audit: &AuditRecord,
    ) -> Result<Option<String>, StoreError> {
        let qid = parse_id("id", id)?;
        let audit = audit.clone();
        self.write("requeue_quarantined", true, move |tx| {
            let mut quarantine = tx.txn.open_table(QUARANTINE).map_err(db_error)?;
            let Some(stored) = quarantine.remove(qid.key()).map_err(db_error)? else {
                return Ok(None);
            };
            let rec: QuarantineRec = decode("quarantined body", stored.value())?;
            drop(stored);
            drop(quarantine);
            let entry = encode(
                "journal entry",
                &JournalRec {
                    source: rec.source,
                    received_at_ms: rec.received_at,
                    request_id: rec.request_id,
                    signature: rec.signature,
                    user_agent: String::new(),
                    body: rec.body,
                },
            )?;
            let journal_id = tx.clock.next(tx.now_ms);
            let mut journal = tx.txn.open_table(JOURNAL).map_err(db_error)?;
            journal
                .insert(journal_id.key(), entry.as_slice())
                .map_err(db_error)?;
            drop(journal);
            let mut unacked = tx.txn.open_table(JOURNAL_UNACKED).map_err(db_error)?;
            unacked.insert(journal_id.key(), ()).map_err(db_error)?;
            drop(unacked);
            append(tx, &audit)?;
            tx.wake_journal = true;
            Ok(Some(journal_id.to_string()))
        })
        .await
    }

    async fn delete_quarantined(&self, id: &str, audit: &AuditRecord) -> Result<bool, StoreError> {
        let qid = parse_id("id", id)?;
        let audit = audit.clone();
        self.write("delete_quarantined", true, move |tx| {
            let mut quarantine = tx.txn.open_table(QUARANTINE).map_err(db_error)?;
            let removed = quarantine.remove(qid.key()).map_err(db_error)?.is_some();
            drop(quarantine);
            if removed {
                append(tx, &audit)?;
            }
            Ok(removed)
        })
        .await
    }

    async fn delete_event(&self, id: &str, audit: &AuditRecord) -> Result<bool, StoreError> {
        let eid = parse_id("id", id)?;
        let audit = audit.clone();
        self.write("delete_event", true, move |tx| {
            let mut events = tx.txn.open_table(EVENTS).map_err(db_error)?;
            let Some(stored) = events.remove(eid.key()).map_err(db_error)? else {
                return Ok(false);
            };
            let rec = decode_event(stored.value())?;
            drop(stored);
            drop(events);
            let mut index = tx.txn.open_table(EVENT_INDEX).map_err(db_error)?;
            for k in index_keys(&rec, eid) {
                index.remove(k.as_slice()).map_err(db_error)?;
            }
            drop(index);
            let mut states = tx.txn.open_table(STATES).map_err(db_error)?;
            for endpoint in &rec.endpoints {
                states
                    .remove(state_key(eid, endpoint).as_slice())
                    .map_err(db_error)?;
            }
            drop(states);
            append(tx, &audit)?;
            Ok(true)
        })
        .await
    }
}
