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
        // A cursor inside a grouped entry reads that entry again for the attempts before it.
        let (end, within) = match cursor.map(attempt_id) {
            None => ("+".to_string(), None),
            Some(Some((entry, None))) => (format!("({entry}"), None),
            Some(Some((entry, Some(position)))) => {
                (entry.to_string(), Some((entry.to_string(), position)))
            }
            Some(None) => {
                return Err(StoreError::InvalidInput {
                    parameter: "cursor",
                    problem: "must be a value returned as next_cursor".into(),
                });
            }
        };
        let key = self.keys.attempts(endpoint_id);
        let entries = self
            .range_between("list_attempts", key, end, "-".into(), limit)
            .await?;
        let mut items = Vec::with_capacity(limit);
        for (id, f) in entries {
            let Some(f) = f else { continue };
            let mut attempts = attempt_entries(&id, &f);
            if let Some((entry, position)) = &within
                && *entry == id
            {
                attempts.truncate(*position);
            }
            items.extend(attempts.into_iter().rev());
            if items.len() >= limit {
                break;
            }
        }
        items.truncate(limit);
        let next_cursor = (items.len() == limit)
            .then(|| items.last().map(|a| a.id.clone()))
            .flatten();
        Ok(Page { items, next_cursor })
    }

    async fn get_attempt(
        &self,
        endpoint_id: &str,
        id: &str,
    ) -> Result<Option<AttemptEntry>, StoreError> {
        let Some((entry, _)) = attempt_id(id) else {
            return Ok(None);
        };
        let key = self.keys.attempts(endpoint_id);
        let entries = self
            .range_between("get_attempt", key, entry.to_string(), entry.to_string(), 1)
            .await?;
        Ok(entries
            .into_iter()
            .filter(|(eid, _)| eid == entry)
            .filter_map(|(eid, f)| f.map(|f| attempt_entries(&eid, &f)))
            .flatten()
            .find(|a| a.id == id))
    }

    async fn delivery_states(
        &self,
        kind: DeliveryKind,
        subject: &str,
        routed: &[String],
    ) -> Result<Vec<DeliveryState>, StoreError> {
        let states: Vec<(String, Option<String>)> = match kind {
            DeliveryKind::Raw => {
                let (key, _) = self.keys.delivery_state_slot(kind, subject, "");
                let all: BTreeMap<String, String> = self
                    .timed("delivery_states", async {
                        Ok(redis::cmd("HGETALL")
                            .arg(&key)
                            .query_async(&mut self.conn())
                            .await?)
                    })
                    .await?;
                all.into_iter().map(|(ep, v)| (ep, Some(v))).collect()
            }
            // An event's states share a hash with others': read the fields of the endpoints
            // it was routed to.
            DeliveryKind::Event => {
                if routed.is_empty() {
                    return Ok(Vec::new());
                }
                let (key, _) = self.keys.delivery_state_slot(kind, subject, "");
                let fields: Vec<String> = routed
                    .iter()
                    .map(|ep| self.keys.delivery_state_slot(kind, subject, ep).1)
                    .collect();
                let values: Vec<Option<String>> = self
                    .timed("delivery_states", async {
                        Ok(redis::cmd("HMGET")
                            .arg(&key)
                            .arg(&fields)
                            .query_async(&mut self.conn())
                            .await?)
                    })
                    .await?;
                routed.iter().cloned().zip(values).collect()
            }
        };
        Ok(states
            .into_iter()
            .filter_map(|(ep, v)| Some(delivery_state(ep, &v?)))
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
        // Attempts are logged in groups (field `n` counts them): entries are read to count
        // what goes, then deleted, a chunk at a time.
        const CHUNK: usize = 512;
        let before = format!("({before_ms}-0");
        let mut deleted = 0;
        for ep in endpoint_ids {
            let key = self.keys.attempts(ep);
            loop {
                let old: Vec<(String, Option<Fields>)> = self
                    .timed("purge_attempt_logs", async {
                        let v: redis::Value = redis::cmd("XRANGE")
                            .arg(&key)
                            .arg("-")
                            .arg(&before)
                            .arg("COUNT")
                            .arg(CHUNK)
                            .query_async(&mut self.conn())
                            .await?;
                        parse_entries(v)
                    })
                    .await?;
                if old.is_empty() {
                    break;
                }
                let ids: Vec<&str> = old.iter().map(|(id, _)| id.as_str()).collect();
                self.timed("purge_attempt_logs", async {
                    let _: u64 = redis::cmd("XDEL")
                        .arg(&key)
                        .arg(&ids)
                        .query_async(&mut self.conn())
                        .await?;
                    Ok(())
                })
                .await?;
                deleted += old
                    .iter()
                    .map(|(_, f)| f.as_ref().map_or(1, |f| f.number("n").max(1)))
                    .sum::<u64>();
                if old.len() < CHUNK {
                    break;
                }
            }
        }
        Ok(deleted)
    }
}
