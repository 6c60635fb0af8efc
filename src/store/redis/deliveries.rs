//! The delivery queue: the deliveries stream (read by the delivery group), the retry sorted
//! set, and the commit script that writes a round of outcomes.

use std::time::Duration;

use async_trait::async_trait;

use super::RedisStore;
use super::json_error;
use super::keys::DELIVERY_GROUP;
use super::reply::*;
use crate::model::delivery::*;
use crate::store::types::*;
use crate::store::{DeliveryQueue, StoreError};

impl RedisStore {
    fn requeue_invocation(&self, mode: &str) -> redis::ScriptInvocation<'_> {
        let mut inv = self.requeue.prepare_invoke();
        inv.key(self.keys.deliveries())
            .key(self.keys.retry())
            .key(self.keys.dead())
            .key(self.keys.events())
            .arg(mode)
            .arg(self.keys.prefix())
            .arg(self.delivery_state_ttl.as_secs().max(1));
        inv
    }
}

#[async_trait]
impl DeliveryQueue for RedisStore {
    async fn read_deliveries(
        &self,
        consumer: &str,
        from: ReadFrom,
        count: usize,
        block: Duration,
    ) -> Result<Vec<DeliveryRecord>, StoreError> {
        let key = self.keys.deliveries();
        let entries = self
            .read_group(
                "read_deliveries",
                (key.clone(), DELIVERY_GROUP),
                consumer,
                from,
                count,
                block,
            )
            .await?;
        let mut out = Vec::with_capacity(entries.len());
        let mut unreadable = Vec::new();
        for (id, fields) in entries {
            match fields.and_then(|f| delivery_record(id.clone(), &f)) {
                Some(r) => out.push(r),
                None => unreadable.push(id),
            }
        }
        if !unreadable.is_empty() {
            tracing::warn!(
                count = unreadable.len(),
                "deliveries entries without a delivery; acknowledged"
            );
            self.timed("ack_unreadable", async {
                let _: () = redis::cmd("XACK")
                    .arg(&key)
                    .arg(DELIVERY_GROUP)
                    .arg(&unreadable)
                    .query_async(&mut self.conn())
                    .await?;
                Ok(())
            })
            .await?;
        }
        Ok(out)
    }

    async fn commit_attempts(&self, c: &AttemptCommit) -> Result<(), StoreError> {
        if c.resolutions.is_empty() && c.acks.is_empty() && c.stats.is_empty() {
            return Ok(());
        }
        let mut inv = self.commit_attempts.prepare_invoke();
        inv.key(self.keys.deliveries())
            .key(self.keys.retry())
            .key(self.keys.dead())
            .arg(DELIVERY_GROUP)
            .arg(crate::time::unix_ms())
            .arg(self.keys.prefix())
            .arg(self.delivery_state_ttl.as_secs().max(1))
            .arg(self.ms_ago(self.delivery_state_ttl))
            .arg(self.disable_after.as_millis() as u64)
            .arg(self.min_id())
            .arg(c.resolutions.len())
            .arg(c.acks.len())
            .arg(c.stats.len());
        for r in &c.resolutions {
            let (next, due, reason) = match &r.next {
                NextStep::Delivered => ("delivered", 0, ""),
                NextStep::Retry { due_ms } => ("retry", *due_ms, ""),
                NextStep::Defer { due_ms } => ("defer", *due_ms, ""),
                NextStep::Dead { reason } => ("dead", 0, reason.as_str()),
                NextStep::Gone => ("gone", 0, "endpoint answered 410 Gone"),
                NextStep::Drop => ("drop", 0, ""),
            };
            let log = match &r.log {
                Some(l) => serde_json::to_string(l).map_err(|e| json_error("attempt", e))?,
                None => String::new(),
            };
            inv.arg(r.kind.tag())
                .arg(&r.subject)
                .arg(&r.endpoint_id)
                .arg(&r.tenant_id)
                .arg(&r.event_type)
                .arg(r.attempt)
                .arg(next)
                .arg(due)
                .arg(reason)
                .arg(log)
                .arg(r.received_at_ms);
        }
        for id in &c.acks {
            inv.arg(id);
        }
        for s in &c.stats {
            inv.arg(self.keys.delivery_stats(&s.scope, s.bucket_ms))
                .arg(&s.field)
                .arg(s.amount);
        }
        let _: i64 = self.run_script("commit_attempts", inv).await?;
        Ok(())
    }

    async fn promote_due_retries(
        &self,
        now_ms: u64,
        max: usize,
    ) -> Result<(usize, usize), StoreError> {
        let mut inv = self.requeue_invocation("due");
        inv.arg(now_ms).arg(max);
        let (moved, dropped): (usize, usize) = self.run_script("promote_retries", inv).await?;
        Ok((moved, dropped))
    }

    async fn requeue_dead(&self, ids: &[String]) -> Result<usize, StoreError> {
        if ids.is_empty() {
            return Ok(0);
        }
        let mut inv = self.requeue_invocation("dead");
        for id in ids {
            inv.arg(id);
        }
        self.run_script("requeue_dead", inv).await
    }

    async fn retry_delivery(
        &self,
        kind: DeliveryKind,
        subject: &str,
        endpoint_id: &str,
        event_type: &str,
    ) -> Result<bool, StoreError> {
        let mut inv = self.requeue_invocation("one");
        inv.arg(kind.tag())
            .arg(subject)
            .arg(endpoint_id)
            .arg(event_type);
        let n: i64 = self.run_script("retry_delivery", inv).await?;
        Ok(n > 0)
    }
}
