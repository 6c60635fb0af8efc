//! The journal: a stream read by the normalizer group.

use std::time::Duration;

use async_trait::async_trait;

use super::RedisStore;
use super::keys::NORMALIZER_GROUP;
use super::reply::*;
use crate::store::types::*;
use crate::store::{Journal, StoreError};

impl RedisStore {
    /// Journals `batch`, counting `received` of its requests as received (a partition holding
    /// a copy of a request another counts counts none).
    pub(super) async fn append_entries(
        &self,
        batch: &[JournalEntry],
        received: usize,
    ) -> Result<Vec<String>, StoreError> {
        let inbound = self.keys.inbound();
        let mut inv = self.scripts.append.prepare_invoke();
        inv.key(&inbound)
            .key(self.keys.stats())
            .arg("MINID")
            .arg(self.min_id())
            .arg("received")
            .arg(received)
            .arg(6);
        for e in batch {
            inv.arg("source")
                .arg(&e.source)
                .arg("received_at")
                .arg(e.received_at_ms)
                .arg("request_id")
                .arg(&e.request_id)
                .arg("signature")
                .arg(&e.signature)
                .arg("user_agent")
                .arg(&e.user_agent)
                .arg("body")
                .arg(e.body.as_ref());
        }
        self.timed("append_journal", async {
            let mut conn = self.conn();
            let ids: Vec<String> = inv.invoke_async(&mut conn).await?;
            if ids.len() != batch.len() {
                return Err(StoreError::Protocol(format!(
                    "journal commit returned {} ids for {} entries",
                    ids.len(),
                    batch.len()
                )));
            }
            if self.wait_replicas > 0 {
                // On the same connection, so WAIT covers exactly these writes (and earlier ones).
                let acked = conn
                    .wait_for_replicas(&inbound, self.wait_replicas, self.wait_timeout)
                    .await?;
                if acked < self.wait_replicas {
                    metrics::counter!(crate::metrics::JOURNAL_UNREPLICATED).increment(1);
                    return Err(StoreError::Unavailable(format!(
                        "{acked} of {} replicas acknowledged the journal within {:?}",
                        self.wait_replicas, self.wait_timeout
                    )));
                }
            }
            Ok(ids)
        })
        .await
    }
}

#[async_trait]
impl Journal for RedisStore {
    async fn append_journal(&self, batch: &[JournalEntry]) -> Result<Vec<String>, StoreError> {
        // Test samples are counted apart, as the events they become.
        let received = batch
            .iter()
            .filter(|e| !crate::suites::is_test(&e.request_id))
            .count();
        self.append_entries(batch, received).await
    }

    async fn read_journal(
        &self,
        consumer: &str,
        from: ReadFrom,
        count: usize,
        block: Duration,
    ) -> Result<Vec<JournalRecord>, StoreError> {
        let entries = self
            .read_group(
                "read_journal",
                (self.keys.inbound(), NORMALIZER_GROUP),
                consumer,
                from,
                count,
                block,
            )
            .await?;
        Ok(entries
            .into_iter()
            .map(|(id, fields)| JournalRecord {
                id,
                entry: fields.map(|f| journal_entry(&f)),
            })
            .collect())
    }

    async fn journal_entry(&self, journal_id: &str) -> Result<Option<JournalEntry>, StoreError> {
        if !is_stream_id(journal_id) {
            return Ok(None);
        }
        let key = self.keys.inbound();
        self.timed("journal_entry", async {
            let v: redis::Value = redis::cmd("XRANGE")
                .arg(&key)
                .arg(journal_id)
                .arg(journal_id)
                .query_async(&mut self.conn())
                .await?;
            Ok(parse_entries(v)?
                .into_iter()
                .find(|(id, _)| id == journal_id)
                .and_then(|(_, f)| f.map(|f| journal_entry(&f))))
        })
        .await
    }
}
