//! The journal: requests on disk before they are answered, read by the normalizer.

use std::time::Duration;

use async_trait::async_trait;
use redb::{ReadableDatabase, ReadableTableMetadata};

use super::records::{JournalRec, decode, encode};
use super::tables::{JOURNAL, JOURNAL_UNACKED};
use super::{EmbeddedStore, advance, db_error, lock, parse_id, read_range};
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
        let mut cursor = lock(&self.inner.journal_cursor);
        let mut pass = lock(&self.inner.journal_pending_pass);
        let mut out = Vec::new();
        let mut last = None;
        for item in unacked
            .range(read_range(from, *cursor, *pass))
            .map_err(db_error)?
            .take(count)
        {
            let (key, _) = item.map_err(db_error)?;
            let key = key.value();
            last = Some(key);
            let entry = match journal.get(key).map_err(db_error)? {
                Some(v) => Some(entry_of(decode("journal entry", v.value())?)),
                // Retention trimmed it before it was split.
                None => None,
            };
            out.push(JournalRecord {
                id: EntryId::from_key(key).to_string(),
                entry,
            });
        }
        advance(from, &mut cursor, &mut pass, last, out.len(), count);
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
        // Test samples are counted apart, as the events they become.
        let received = batch
            .iter()
            .filter(|e| !crate::suites::is_test(&e.request_id))
            .count() as u64;
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
            this.has_after_cursor(JOURNAL_UNACKED, &this.inner.journal_cursor)
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
    /// Whether `table` has an entry after `cursor` (cheap: one key).
    pub(super) fn has_after_cursor<V: redb::Value + 'static>(
        &self,
        table: redb::TableDefinition<'static, u128, V>,
        cursor: &std::sync::Mutex<u128>,
    ) -> bool {
        let from = lock(cursor).saturating_add(1);
        let Ok(db) = self.inner.shared.db() else {
            return false;
        };
        db.begin_read()
            .ok()
            .and_then(|t| t.open_table(table).ok())
            .and_then(|t| t.range(from..).ok().map(|mut r| r.next().is_some()))
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
        let cursor = *lock(&self.inner.journal_cursor);
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
