//! The journal: requests on disk before they are answered, read by the normalizer.

use std::time::Duration;

use async_trait::async_trait;
use redb::{ReadableDatabase, ReadableTableMetadata};

use super::records::{JournalRec, decode, encode};
use super::tables::{JOURNAL, JOURNAL_UNACKED};
use super::{EmbeddedStore, db_error, parse_id};
use crate::store::ids::EntryId;
use crate::store::types::*;
use crate::store::{Journal, StoreError};

fn entry_of(rec: JournalRec) -> JournalEntry {
    JournalEntry {
        source: rec.source,
        received_at_ms: rec.received_at_ms,
        request_id: rec.request_id,
        signature: rec.signature,
        user_agent: rec.user_agent,
        body: rec.body.into(),
    }
}

impl EmbeddedStore {
    /// Unacknowledged journal entries after the cursor (new) or up to it (pending).
    fn journal_batch(
        &self,
        from: ReadFrom,
        count: usize,
    ) -> Result<Vec<JournalRecord>, StoreError> {
        let db = self.inner.shared.db()?;
        let txn = db.begin_read().map_err(db_error)?;
        let unacked = txn.open_table(JOURNAL_UNACKED).map_err(db_error)?;
        let journal = txn.open_table(JOURNAL).map_err(db_error)?;
        let mut cursor = self
            .inner
            .journal_cursor
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let range = match from {
            ReadFrom::New => unacked.range(cursor.saturating_add(1)..),
            ReadFrom::Pending => unacked.range(..=*cursor),
        }
        .map_err(db_error)?;
        let mut out = Vec::new();
        for item in range.take(count) {
            let (key, _) = item.map_err(db_error)?;
            let key = key.value();
            let entry = match journal.get(key).map_err(db_error)? {
                Some(v) => Some(entry_of(decode("journal entry", v.value())?)),
                // Retention trimmed it before it was split.
                None => None,
            };
            out.push(JournalRecord {
                id: EntryId::from_key(key).to_string(),
                entry,
            });
            if from == ReadFrom::New {
                *cursor = (*cursor).max(key);
            }
        }
        Ok(out)
    }
}

#[async_trait]
impl Journal for EmbeddedStore {
    async fn append_journal(&self, batch: &[JournalEntry]) -> Result<Vec<String>, StoreError> {
        let encoded: Vec<Vec<u8>> = batch
            .iter()
            .map(|e| {
                encode(
                    "journal entry",
                    &JournalRec {
                        source: e.source.clone(),
                        received_at_ms: e.received_at_ms,
                        request_id: e.request_id.clone(),
                        signature: e.signature.clone(),
                        user_agent: e.user_agent.clone(),
                        body: e.body.to_vec(),
                    },
                )
            })
            .collect::<Result<_, _>>()?;
        let received = batch.len() as u64;
        self.write("append_journal", true, move |tx| {
            let mut journal = tx.txn.open_table(JOURNAL).map_err(db_error)?;
            let mut unacked = tx.txn.open_table(JOURNAL_UNACKED).map_err(db_error)?;
            let mut ids = Vec::with_capacity(encoded.len());
            for rec in &encoded {
                let id = tx.clock.next(tx.now_ms);
                journal.insert(id.key(), rec.as_slice()).map_err(db_error)?;
                unacked.insert(id.key(), ()).map_err(db_error)?;
                ids.push(id.to_string());
            }
            super::events::count(tx.txn, "received", received)?;
            tx.wake_journal = true;
            Ok(ids)
        })
        .await
    }

    async fn read_journal(
        &self,
        _consumer: &str,
        from: ReadFrom,
        count: usize,
        block: Duration,
    ) -> Result<Vec<JournalRecord>, StoreError> {
        let this = self.clone();
        let first = self
            .read_blocking(move || this.journal_batch(from, count))
            .await?;
        if !first.is_empty() || from == ReadFrom::Pending || block.is_zero() {
            return Ok(first);
        }
        let this = self.clone();
        EmbeddedStore::wait(&self.inner.shared.journal_ready, block, || {
            this.has_new_journal()
        })
        .await;
        let this = self.clone();
        self.read_blocking(move || this.journal_batch(from, count))
            .await
    }

    async fn journal_entry(&self, journal_id: &str) -> Result<Option<JournalEntry>, StoreError> {
        let id = parse_id("journal_id", journal_id)?;
        self.read("journal_entry", move |txn| {
            let journal = txn.open_table(JOURNAL).map_err(db_error)?;
            journal
                .get(id.key())
                .map_err(db_error)?
                .map(|v| decode("journal entry", v.value()).map(entry_of))
                .transpose()
        })
        .await
    }
}

impl EmbeddedStore {
    /// Whether an unacknowledged entry after the cursor exists (cheap: one key).
    fn has_new_journal(&self) -> bool {
        let cursor = *self
            .inner
            .journal_cursor
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let Ok(db) = self.inner.shared.db() else {
            return false;
        };
        db.begin_read()
            .ok()
            .and_then(|t| t.open_table(JOURNAL_UNACKED).ok())
            .and_then(|t| {
                t.range(cursor.saturating_add(1)..)
                    .ok()
                    .map(|mut r| r.next().is_some())
            })
            .unwrap_or(false)
    }

    /// Runs `f` on the blocking pool.
    pub(super) async fn read_blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        tokio::task::spawn_blocking(f)
            .await
            .unwrap_or_else(|e| Err(StoreError::Unavailable(format!("storage read: {e}"))))
    }

    /// Entries in the journal, unacknowledged ones before and after the cursor.
    pub(super) fn journal_gauges(
        &self,
        txn: &redb::ReadTransaction,
    ) -> Result<(u64, u64, u64), StoreError> {
        let cursor = *self
            .inner
            .journal_cursor
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let journal = txn.open_table(JOURNAL).map_err(db_error)?;
        let unacked = txn.open_table(JOURNAL_UNACKED).map_err(db_error)?;
        let total = unacked.len().map_err(db_error)?;
        let pending = unacked.range(..=cursor).map_err(db_error)?.count() as u64;
        Ok((
            journal.len().map_err(db_error)?,
            total - pending.min(total),
            pending,
        ))
    }
}
