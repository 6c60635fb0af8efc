//! The delivery log: attempt logs per endpoint, per-event states, dead letters, statistics.

use std::collections::BTreeMap;

use async_trait::async_trait;

use super::RedisStore;
use super::reply::*;
use super::streams::Window;
use crate::model::delivery::*;
use crate::store::types::*;
use crate::store::{DeliveryLog, StoreError};

#[async_trait]
impl DeliveryLog for RedisStore {
    async fn list_attempts(
        &self,
        endpoint_id: &str,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<Page<AttemptEntry>, StoreError> {
        let key = self.keys.attempts(endpoint_id);
        let entries = self
            .range("list_attempts", key, cursor, "-".into(), limit)
            .await?;
        let next_cursor = (entries.len() == limit)
            .then(|| entries.last().map(|(id, _)| id.clone()))
            .flatten();
        let items = entries
            .into_iter()
            .filter_map(|(id, f)| f.and_then(|f| attempt_entry(id, &f)))
            .collect();
        Ok(Page { items, next_cursor })
    }

    async fn get_attempt(
        &self,
        endpoint_id: &str,
        id: &str,
    ) -> Result<Option<AttemptEntry>, StoreError> {
        if !is_stream_id(id) {
            return Ok(None);
        }
        let key = self.keys.attempts(endpoint_id);
        let entries = self
            .range("get_attempt", key, None, id.to_string(), 1)
            .await?;
        Ok(entries
            .into_iter()
            .find(|(eid, _)| eid == id)
            .and_then(|(eid, f)| f.and_then(|f| attempt_entry(eid, &f))))
    }

    async fn delivery_states(
        &self,
        kind: DeliveryKind,
        subject: &str,
    ) -> Result<Vec<DeliveryState>, StoreError> {
        let key = self.keys.delivery_status(kind.tag(), subject);
        let all: BTreeMap<String, String> = self
            .timed("delivery_states", async {
                Ok(redis::cmd("HGETALL")
                    .arg(&key)
                    .query_async(&mut self.conn())
                    .await?)
            })
            .await?;
        Ok(all
            .into_iter()
            .map(|(ep, v)| delivery_state(ep, &v))
            .collect())
    }

    async fn list_dead(&self, q: &DeadQuery) -> Result<Page<DeadDelivery>, StoreError> {
        let window = Window {
            from_ms: q.from_ms,
            to_ms: q.to_ms,
            cursor: q.cursor.as_deref(),
            limit: q.limit,
        };
        let id_of: fn(&DeadDelivery) -> &str = |d| &d.id;
        self.filtered_page(
            "list_dead",
            self.keys.dead(),
            window,
            id_of,
            |entries| async move {
                Ok(entries
                    .into_iter()
                    .filter_map(|(id, f)| f.map(|f| dead_delivery(id, &f)))
                    .filter(|d| q.matches(d))
                    .collect())
            },
        )
        .await
    }

    async fn stats_buckets(
        &self,
        scope: &str,
        from_ms: u64,
        to_ms: u64,
    ) -> Result<Vec<BTreeMap<String, u64>>, StoreError> {
        let keys: Vec<String> = crate::model::stats_buckets(from_ms, to_ms)
            .map(|b| self.keys.delivery_stats(scope, b))
            .collect();
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        self.timed("stats_buckets", async {
            let mut pipe = redis::pipe();
            for k in &keys {
                pipe.cmd("HGETALL").arg(k);
            }
            Ok(pipe.query_async(&mut self.conn()).await?)
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
        self.timed("purge_attempt_logs", async {
            let mut pipe = redis::pipe();
            for ep in endpoint_ids {
                pipe.cmd("XTRIM")
                    .arg(self.keys.attempts(ep))
                    .arg("MINID")
                    .arg("=")
                    .arg(format!("{before_ms}-0"));
            }
            let removed: Vec<u64> = pipe.query_async(&mut self.conn()).await?;
            Ok(removed.iter().sum())
        })
        .await
    }
}
