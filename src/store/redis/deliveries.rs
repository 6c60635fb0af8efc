//! The delivery queue: the deliveries lanes (a stream per owner of endpoints, read in turn by
//! the delivery group), the retry sorted set, and the commit script that writes a round of
//! outcomes.

use std::time::Duration;

use async_trait::async_trait;

use super::LanesCache;
use super::RedisStore;
use super::audit::audit_json;
use super::json_error;
use super::keys::{DELIVERY_GROUP, EVENTS_PER_SPAN, Keys};
use super::reply::*;
use crate::model::audit::AuditRecord;
use crate::model::delivery::*;
use crate::store::ids::{lane_entry_id, split_lane_entry_id};
use crate::store::types::*;
use crate::store::{DeliveryQueue, StoreError};

impl RedisStore {
    /// The events each queued entry names, read in one round trip.
    async fn events_for(
        &self,
        queued: &[(String, Queued)],
    ) -> Result<Vec<Vec<(String, Option<Fields>)>>, StoreError> {
        let ranges: Vec<Option<(&str, &str)>> =
            queued.iter().map(|(_, q)| q.events_range()).collect();
        if ranges.iter().all(Option::is_none) {
            return Ok(queued.iter().map(|_| Vec::new()).collect());
        }
        let events = self.keys.events();
        let replies: Vec<redis::Value> = self
            .timed("read_delivery_events", async {
                let mut pipe = redis::pipe();
                for (from, to) in ranges.iter().flatten() {
                    pipe.cmd("XRANGE").arg(&events).arg(*from).arg(*to);
                }
                Ok(pipe.query_async(&mut self.conn()).await?)
            })
            .await?;
        let mut replies = replies.into_iter();
        ranges
            .iter()
            .map(|r| match r {
                Some(_) => parse_entries(replies.next().unwrap_or(redis::Value::Nil)),
                None => Ok(Vec::new()),
            })
            .collect()
    }

    /// Every deliveries lane by tenant: the admin's ("") first. Read from Redis at most once a
    /// second per handle, and after a read that found nothing: a lane made meanwhile is read
    /// from then on.
    async fn lanes(&self) -> Result<Vec<String>, StoreError> {
        const REFRESH: std::time::Duration = std::time::Duration::from_secs(1);
        if let Some((at, lanes)) = lock_lanes(&self.lanes_cache).as_ref()
            && at.elapsed() < REFRESH
        {
            return Ok(lanes.clone());
        }
        let key = self.keys.delivery_lanes();
        let mut tenants: Vec<String> = self
            .timed("delivery_lanes", async {
                Ok(redis::cmd("SMEMBERS")
                    .arg(&key)
                    .query_async(&mut self.conn())
                    .await?)
            })
            .await?;
        tenants.sort();
        tenants.insert(0, String::new());
        *lock_lanes(&self.lanes_cache) = Some((std::time::Instant::now(), tenants.clone()));
        Ok(tenants)
    }

    /// The deliveries lanes' stream keys.
    pub(super) async fn lane_keys(&self) -> Result<Vec<String>, StoreError> {
        Ok(self
            .lanes()
            .await?
            .iter()
            .map(|t| self.keys.lane(t))
            .collect())
    }

    fn requeue_invocation(&self, mode: &str) -> redis::ScriptInvocation<'_> {
        let mut inv = self.scripts.requeue.prepare_invoke();
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
        let lanes = self.lanes().await?;
        let keys: Vec<String> = lanes.iter().map(|t| self.keys.lane(t)).collect();
        // An entry names up to EVENTS_PER_SPAN events: read few enough to hand over at most
        // `count` deliveries (or one entry per lane), a share of every lane, so one tenant's
        // backlog does not hold back another's deliveries.
        let per_lane = count.div_ceil(EVENTS_PER_SPAN).div_ceil(keys.len()).max(1);
        let read = self
            .read_groups(
                "read_deliveries",
                (&keys, DELIVERY_GROUP),
                consumer,
                from,
                per_lane,
                block,
            )
            .await?;
        if read.is_empty() {
            *lock_lanes(&self.lanes_cache) = None;
        }
        let mut unreadable = Vec::new();
        let mut queued = Vec::new();
        for (key, entries) in read {
            let tenant = keys
                .iter()
                .position(|k| *k == key)
                .map_or("", |i| lanes[i].as_str());
            for (id, fields) in entries {
                let id = lane_entry_id(tenant, &id);
                match fields.and_then(|f| queued_of(&id, &f)) {
                    Some(q) => queued.push((id, q)),
                    None => unreadable.push(id),
                }
            }
        }
        let events = self.events_for(&queued).await?;
        let mut out = Vec::with_capacity(count);
        let mut missing = 0;
        // Deliveries of single events that are gone, which may have been a conversation's head.
        let mut gone: Vec<(String, String)> = Vec::new();
        for ((id, q), events) in queued.into_iter().zip(events) {
            if let Queued::Event {
                event_id,
                endpoints,
                ..
            } = &q
                && events.is_empty()
            {
                gone.extend(endpoints.iter().map(|ep| (ep.clone(), event_id.clone())));
            }
            let records = deliveries_of(&id, q, events);
            if records.is_empty() {
                // Its events are gone (retention trimmed them before they were delivered).
                missing += 1;
                unreadable.push(id);
            }
            out.extend(records);
        }
        if !gone.is_empty() {
            let mut inv = self.requeue_invocation("gone");
            for (ep, event_id) in &gone {
                inv.arg(ep).arg(event_id);
            }
            let _: i64 = self.run_script("release_gone", inv).await?;
        }
        if missing > 0 {
            tracing::warn!(
                entries = missing,
                "deliveries whose events retention already removed; dropped"
            );
        }
        if !unreadable.is_empty() {
            tracing::warn!(
                count = unreadable.len(),
                "deliveries entries without a delivery; acknowledged"
            );
            self.timed("ack_unreadable", async {
                let mut pipe = redis::pipe();
                for (key, ids) in by_lane(&self.keys, &unreadable) {
                    pipe.cmd("XACK")
                        .arg(key)
                        .arg(DELIVERY_GROUP)
                        .arg(ids)
                        .ignore();
                }
                let _: () = pipe.query_async(&mut self.conn()).await?;
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
        let (groups, refs) = log_groups(&c.resolutions);
        let acks = by_lane(&self.keys, &c.acks);
        let mut inv = self.scripts.commit_attempts.prepare_invoke();
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
            .arg(acks.len())
            .arg(c.stats.len())
            .arg(groups.len());
        for (endpoint, logs) in &groups {
            let json = serde_json::to_string(logs).map_err(|e| json_error("attempt", e))?;
            inv.arg(*endpoint).arg(logs.len()).arg(json);
        }
        for (r, (group, position)) in c.resolutions.iter().zip(refs) {
            let (next, due, reason) = match &r.next {
                NextStep::Delivered => ("delivered", 0, ""),
                NextStep::Retry { due_ms } => ("retry", *due_ms, ""),
                NextStep::Defer { due_ms } => ("defer", *due_ms, ""),
                NextStep::Dead { reason } => ("dead", 0, reason.as_str()),
                NextStep::Gone => ("gone", 0, "endpoint answered 410 Gone"),
                NextStep::Drop => ("drop", 0, ""),
            };
            let (state_key, state_field) =
                self.keys
                    .delivery_state_slot(r.kind, &r.subject, &r.endpoint_id);
            inv.arg(r.kind.tag())
                .arg(&r.subject)
                .arg(&r.endpoint_id)
                .arg(&r.tenant_id)
                .arg(&r.event_type)
                .arg(r.attempt)
                .arg(next)
                .arg(due)
                .arg(reason)
                .arg(group)
                .arg(position)
                .arg(r.received_at_ms)
                .arg(state_key)
                .arg(state_field)
                .arg(&r.conversation);
        }
        for (lane, ids) in &acks {
            inv.arg(lane).arg(ids.len()).arg(ids);
        }
        for s in &c.stats {
            inv.arg(self.keys.delivery_stats(&s.scope, s.bucket_ms))
                .arg(&s.field)
                .arg(s.amount);
        }
        let _: i64 = self.run_script("commit_attempts", inv).await?;
        self.record_health(&c.resolutions).await;
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
        audit: &AuditRecord,
    ) -> Result<bool, StoreError> {
        let record = audit_json(audit)?;
        let (stream, tenant_stream) = self.audit_keys(audit);
        let mut inv = self.requeue_invocation("one");
        inv.key(stream)
            .key(tenant_stream)
            .arg(kind.tag())
            .arg(subject)
            .arg(endpoint_id)
            .arg(event_type)
            .arg(record);
        let n: i64 = self.run_script("retry_delivery", inv).await?;
        Ok(n > 0)
    }
}

/// Entries named as the dispatcher names them ([`lane_entry_id`]), by lane: each lane's stream
/// key and its entries' ids there, lanes in first-seen order.
fn by_lane<'a>(keys: &Keys, ids: &'a [String]) -> Vec<(String, Vec<&'a str>)> {
    let mut lanes: Vec<(String, Vec<&str>)> = Vec::new();
    for id in ids {
        let (tenant, entry) = split_lane_entry_id(id);
        let key = keys.lane(tenant);
        match lanes.iter_mut().find(|(k, _)| *k == key) {
            Some((_, list)) => list.push(entry),
            None => lanes.push((key, vec![entry])),
        }
    }
    lanes
}

fn lock_lanes(
    m: &LanesCache,
) -> std::sync::MutexGuard<'_, Option<(std::time::Instant, Vec<String>)>> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// One endpoint's attempt logs of a commit, written as one attempt-log entry.
type LogGroup<'a> = (&'a str, Vec<&'a AttemptLog>);

/// The attempt logs of a commit grouped by endpoint (in first-seen order), and for each
/// resolution where its log went: (group, 1-based, or 0 when it has no log; position in it).
fn log_groups(resolutions: &[Resolution]) -> (Vec<LogGroup<'_>>, Vec<(usize, usize)>) {
    let mut groups: Vec<LogGroup> = Vec::new();
    let refs = resolutions
        .iter()
        .map(|r| {
            let Some(log) = &r.log else { return (0, 0) };
            let g = match groups.iter().position(|(ep, _)| *ep == r.endpoint_id) {
                Some(g) => g,
                None => {
                    groups.push((&r.endpoint_id, Vec::new()));
                    groups.len() - 1
                }
            };
            groups[g].1.push(log);
            (g + 1, groups[g].1.len() - 1)
        })
        .collect();
    (groups, refs)
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// A delivered resolution for `endpoint`, with its attempt logged or not.
    pub(in crate::store::redis) fn resolution(endpoint: &str, logged: bool) -> Resolution {
        Resolution {
            conversation: String::new(),
            kind: DeliveryKind::Event,
            subject: "1-0".into(),
            endpoint_id: endpoint.into(),
            tenant_id: String::new(),
            event_type: "t".into(),
            attempt: 1,
            received_at_ms: 0,
            test: false,
            next: NextStep::Delivered,
            log: logged.then(|| AttemptLog {
                endpoint_id: endpoint.into(),
                kind: DeliveryKind::Event,
                event_id: "1-0".into(),
                event_type: "t".into(),
                webhook_id: "evt_1-0".into(),
                attempt: 1,
                at: 0,
                duration_ms: 1,
                status: Some(200),
                error: None,
                response: String::new(),
            }),
        }
    }

    #[test]
    fn attempt_logs_are_grouped_per_endpoint_and_each_resolution_knows_its_place() {
        let rs = [
            resolution("a", true),
            resolution("b", true),
            resolution("a", false),
            resolution("a", true),
        ];
        let (groups, refs) = log_groups(&rs);
        let shape: Vec<(&str, usize)> = groups.iter().map(|(ep, l)| (*ep, l.len())).collect();
        assert_eq!(shape, [("a", 2), ("b", 1)]);
        assert_eq!(refs, [(1, 0), (2, 0), (0, 0), (1, 1)]);
    }
}
