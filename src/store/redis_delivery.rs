//! [`DeliveryStore`] on Redis: tenants, keys and endpoints as JSON in hashes, the delivery
//! pipeline as streams, a sorted set and two Lua scripts. Layout: see [`super::keys`].

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use redis::Value;

use super::keys::{DELIVERY_GROUP, NORMALIZER_GROUP};
use super::redis_reply::*;
use super::redis_store::{RedisStore, Window};
use super::types::*;
use super::{DeliveryStore, StoreError};
use crate::model::delivery::*;
use crate::model::{AccountOwners, ApiKey, Endpoint, EndpointHealth, LiveEndpoint, Tenant};

pub(super) const COMMIT_ATTEMPTS_LUA: &str = include_str!("commit_attempts.lua");
pub(super) const REQUEUE_LUA: &str = include_str!("requeue.lua");

/// Assigns accounts to a tenant unless another tenant owns one of them (returned then).
/// KEYS[1] accounts hash, KEYS[2] endpoints version; ARGV[1] tenant id, then the accounts.
const ASSIGN_ACCOUNTS_LUA: &str = r"
for i = 2, #ARGV do
  local owner = redis.call('HGET', KEYS[1], ARGV[i])
  if owner and owner ~= ARGV[1] then return ARGV[i] end
end
for i = 2, #ARGV do redis.call('HSET', KEYS[1], ARGV[i], ARGV[1]) end
redis.call('INCR', KEYS[2])
return false
";

/// Releases an account if `tenant` owns it. KEYS as above; ARGV[1] tenant, ARGV[2] account.
const RELEASE_ACCOUNT_LUA: &str = r"
if redis.call('HGET', KEYS[1], ARGV[2]) ~= ARGV[1] then return 0 end
redis.call('HDEL', KEYS[1], ARGV[2])
redis.call('INCR', KEYS[2])
return 1
";

fn json_error(what: &str, e: serde_json::Error) -> StoreError {
    StoreError::Protocol(format!("{what}: {e}"))
}

fn health_from(map: &BTreeMap<String, String>) -> EndpointHealth {
    let number = |k: &str| map.get(k).and_then(|v| v.parse().ok());
    EndpointHealth {
        disabled_reason: map.get("disabled_reason").cloned(),
        disabled_at: number("disabled_at"),
        last_success: number("last_success"),
        last_failure: number("last_failure"),
        failing_since: number("failing_since"),
    }
}

impl RedisStore {
    /// Runs one of the scripts in a pipeline that loads it first: a restarted or flushed
    /// Redis has forgotten it, and EVALSHA in a pipeline cannot fall back to EVAL.
    async fn run_script<T: redis::FromRedisValue>(
        &self,
        op: &'static str,
        source: &'static str,
        invocation: redis::ScriptInvocation<'_>,
    ) -> Result<T, StoreError> {
        self.timed(op, async {
            let mut conn = self.conn();
            let (reply,): (T,) = redis::pipe()
                .cmd("SCRIPT")
                .arg("LOAD")
                .arg(source)
                .ignore()
                .invoke_script(&invocation)
                .query_async(&mut conn)
                .await?;
            Ok(reply)
        })
        .await
    }

    /// Stores `value` as JSON in field `field` of hash `key`.
    async fn hset_json<T: serde::Serialize + Sync>(
        &self,
        op: &'static str,
        key: String,
        field: &str,
        value: &T,
    ) -> Result<(), StoreError> {
        let json = serde_json::to_string(value).map_err(|e| json_error(op, e))?;
        self.timed(op, async {
            let _: () = redis::cmd("HSET")
                .arg(&key)
                .arg(field)
                .arg(json)
                .query_async(&mut self.conn())
                .await?;
            Ok(())
        })
        .await
    }

    /// Reads field `field` of hash `key` as JSON.
    async fn hget_json<T: serde::de::DeserializeOwned>(
        &self,
        op: &'static str,
        key: String,
        field: &str,
    ) -> Result<Option<T>, StoreError> {
        let raw: Option<String> = self
            .timed(op, async {
                Ok(redis::cmd("HGET")
                    .arg(&key)
                    .arg(field)
                    .query_async(&mut self.conn())
                    .await?)
            })
            .await?;
        raw.map(|j| serde_json::from_str(&j).map_err(|e| json_error(op, e)))
            .transpose()
    }

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

    fn ms_ago(&self, age: Duration) -> String {
        format!(
            "{}-0",
            crate::time::unix_ms().saturating_sub(age.as_millis() as u64)
        )
    }
}

#[async_trait]
impl DeliveryStore for RedisStore {
    fn dedicated_delivery(&self) -> Arc<dyn DeliveryStore> {
        Arc::new(self.with_own_connection())
    }

    async fn put_tenant(&self, tenant: &Tenant) -> Result<(), StoreError> {
        self.hset_json("put_tenant", self.keys.tenants(), &tenant.id, tenant)
            .await
    }

    async fn get_tenant(&self, id: &str) -> Result<Option<Tenant>, StoreError> {
        self.hget_json("get_tenant", self.keys.tenants(), id).await
    }

    async fn list_tenants(&self) -> Result<Vec<Tenant>, StoreError> {
        let key = self.keys.tenants();
        let all: BTreeMap<String, String> = self
            .timed("list_tenants", async {
                Ok(redis::cmd("HGETALL")
                    .arg(&key)
                    .query_async(&mut self.conn())
                    .await?)
            })
            .await?;
        let mut out: Vec<Tenant> = all
            .values()
            .map(|j| serde_json::from_str(j).map_err(|e| json_error("tenant", e)))
            .collect::<Result<_, _>>()?;
        out.sort_by_key(|t| t.created_at);
        Ok(out)
    }

    async fn put_api_key(&self, key_hash: &str, key: &ApiKey) -> Result<(), StoreError> {
        self.hset_json("put_api_key", self.keys.api_keys(), key_hash, key)
            .await
    }

    async fn api_key(&self, key_hash: &str) -> Result<Option<ApiKey>, StoreError> {
        self.hget_json("api_key", self.keys.api_keys(), key_hash)
            .await
    }

    async fn delete_api_key(&self, tenant_id: &str, key_id: &str) -> Result<bool, StoreError> {
        let k = self.keys.api_keys();
        self.timed("delete_api_key", async {
            let mut conn = self.conn();
            // Keys are few (a handful per tenant); a scan of the hash is cheap.
            let all: BTreeMap<String, String> =
                redis::cmd("HGETALL").arg(&k).query_async(&mut conn).await?;
            for (hash, json) in all {
                let Ok(key) = serde_json::from_str::<ApiKey>(&json) else {
                    continue;
                };
                if key.id == key_id && key.tenant_id == tenant_id {
                    let removed: u64 = redis::cmd("HDEL")
                        .arg(&k)
                        .arg(&hash)
                        .query_async(&mut conn)
                        .await?;
                    return Ok(removed > 0);
                }
            }
            Ok(false)
        })
        .await
    }

    async fn account_owners(&self) -> Result<AccountOwners, StoreError> {
        let key = self.keys.accounts();
        self.timed("account_owners", async {
            Ok(redis::cmd("HGETALL")
                .arg(&key)
                .query_async(&mut self.conn())
                .await?)
        })
        .await
    }

    async fn assign_accounts(
        &self,
        tenant_id: &str,
        accounts: &[String],
    ) -> Result<Option<String>, StoreError> {
        let (key, version) = (self.keys.accounts(), self.keys.endpoints_version());
        self.timed("assign_accounts", async {
            Ok(redis::Script::new(ASSIGN_ACCOUNTS_LUA)
                .key(&key)
                .key(&version)
                .arg(tenant_id)
                .arg(accounts)
                .invoke_async(&mut self.conn())
                .await?)
        })
        .await
    }

    async fn release_account(&self, tenant_id: &str, account: &str) -> Result<bool, StoreError> {
        let (key, version) = (self.keys.accounts(), self.keys.endpoints_version());
        self.timed("release_account", async {
            let released: u64 = redis::Script::new(RELEASE_ACCOUNT_LUA)
                .key(&key)
                .key(&version)
                .arg(tenant_id)
                .arg(account)
                .invoke_async(&mut self.conn())
                .await?;
            Ok(released == 1)
        })
        .await
    }

    async fn put_endpoint(&self, endpoint: &Endpoint) -> Result<(), StoreError> {
        let json = serde_json::to_string(endpoint).map_err(|e| json_error("endpoint", e))?;
        let (key, version) = (self.keys.endpoints(), self.keys.endpoints_version());
        self.timed("put_endpoint", async {
            let _: () = redis::pipe()
                .atomic()
                .cmd("HSET")
                .arg(&key)
                .arg(&endpoint.id)
                .arg(json)
                .ignore()
                .cmd("INCR")
                .arg(&version)
                .ignore()
                .query_async(&mut self.conn())
                .await?;
            Ok(())
        })
        .await
    }

    async fn delete_endpoint(&self, id: &str) -> Result<bool, StoreError> {
        let (key, version) = (self.keys.endpoints(), self.keys.endpoints_version());
        let health = self.keys.endpoint_health(id);
        self.timed("delete_endpoint", async {
            let (removed,): (u64,) = redis::pipe()
                .atomic()
                .cmd("HDEL")
                .arg(&key)
                .arg(id)
                .cmd("DEL")
                .arg(&health)
                .ignore()
                .cmd("INCR")
                .arg(&version)
                .ignore()
                .query_async(&mut self.conn())
                .await?;
            Ok(removed > 0)
        })
        .await
    }

    async fn reset_endpoint_health(&self, id: &str) -> Result<(), StoreError> {
        let health = self.keys.endpoint_health(id);
        let version = self.keys.endpoints_version();
        self.timed("reset_endpoint_health", async {
            let _: () = redis::pipe()
                .atomic()
                .cmd("HDEL")
                .arg(&health)
                .arg("disabled_reason")
                .arg("disabled_at")
                .arg("failing_since")
                .ignore()
                .cmd("INCR")
                .arg(&version)
                .ignore()
                .query_async(&mut self.conn())
                .await?;
            Ok(())
        })
        .await
    }

    async fn list_endpoints(&self) -> Result<Vec<LiveEndpoint>, StoreError> {
        let key = self.keys.endpoints();
        self.timed("list_endpoints", async {
            let mut conn = self.conn();
            let all: BTreeMap<String, String> = redis::cmd("HGETALL")
                .arg(&key)
                .query_async(&mut conn)
                .await?;
            let endpoints: Vec<Endpoint> = all
                .values()
                .filter_map(|j| match serde_json::from_str(j) {
                    Ok(e) => Some(e),
                    Err(e) => {
                        tracing::error!(error = %e, "an endpoint record does not parse; skipped");
                        None
                    }
                })
                .collect();
            let mut pipe = redis::pipe();
            for e in &endpoints {
                pipe.cmd("HGETALL").arg(self.keys.endpoint_health(&e.id));
            }
            let healths: Vec<BTreeMap<String, String>> = if endpoints.is_empty() {
                Vec::new()
            } else {
                pipe.query_async(&mut conn).await?
            };
            let mut out: Vec<LiveEndpoint> = endpoints
                .into_iter()
                .zip(healths)
                .map(|(endpoint, h)| LiveEndpoint {
                    endpoint,
                    health: health_from(&h),
                })
                .collect();
            out.sort_by(|a, b| {
                (a.endpoint.created_at, &a.endpoint.id)
                    .cmp(&(b.endpoint.created_at, &b.endpoint.id))
            });
            Ok(out)
        })
        .await
    }

    async fn get_endpoint(&self, id: &str) -> Result<Option<LiveEndpoint>, StoreError> {
        let (key, health) = (self.keys.endpoints(), self.keys.endpoint_health(id));
        self.timed("get_endpoint", async {
            let (json, h): (Option<String>, BTreeMap<String, String>) = redis::pipe()
                .cmd("HGET")
                .arg(&key)
                .arg(id)
                .cmd("HGETALL")
                .arg(&health)
                .query_async(&mut self.conn())
                .await?;
            json.map(|j| {
                Ok(LiveEndpoint {
                    endpoint: serde_json::from_str(&j).map_err(|e| json_error("endpoint", e))?,
                    health: health_from(&h),
                })
            })
            .transpose()
        })
        .await
    }

    async fn endpoints_version(&self) -> Result<u64, StoreError> {
        let key = self.keys.endpoints_version();
        self.timed("endpoints_version", async {
            let v: Option<u64> = redis::cmd("GET")
                .arg(&key)
                .query_async(&mut self.conn())
                .await?;
            Ok(v.unwrap_or(0))
        })
        .await
    }

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

    async fn claim_stale_deliveries(
        &self,
        consumer: &str,
        min_idle: Duration,
        count: usize,
    ) -> Result<usize, StoreError> {
        let key = self.keys.deliveries();
        self.claim_stale(
            "claim_deliveries",
            key,
            DELIVERY_GROUP,
            consumer,
            min_idle,
            count,
        )
        .await
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
        let _: i64 = self
            .run_script("commit_attempts", COMMIT_ATTEMPTS_LUA, inv)
            .await?;
        Ok(())
    }

    async fn journal_entry(&self, journal_id: &str) -> Result<Option<JournalEntry>, StoreError> {
        if !is_stream_id(journal_id) {
            return Ok(None);
        }
        let key = self.keys.inbound();
        let entries = self
            .range("journal_entry", key, None, journal_id.to_string(), 1)
            .await?;
        Ok(entries
            .into_iter()
            .find(|(id, _)| id == journal_id)
            .and_then(|(_, f)| f.map(|f| journal_entry(&f))))
    }

    async fn promote_due_retries(
        &self,
        now_ms: u64,
        max: usize,
    ) -> Result<(usize, usize), StoreError> {
        let mut inv = self.requeue_invocation("due");
        inv.arg(now_ms).arg(max);
        let (moved, dropped): (usize, usize) =
            self.run_script("promote_retries", REQUEUE_LUA, inv).await?;
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
        self.run_script("requeue_dead", REQUEUE_LUA, inv).await
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
        let n: i64 = self.run_script("retry_delivery", REQUEUE_LUA, inv).await?;
        Ok(n > 0)
    }

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
            .map(|(ep, v)| DeliveryState::parse(ep, &v))
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

    async fn trim_deliveries(&self) -> Result<(), StoreError> {
        let deliveries = self.keys.deliveries();
        let dead = self.keys.dead();
        let min_id = self.min_id();
        self.timed("trim_deliveries", async {
            let mut conn = self.conn();
            // Only what the group has read and acknowledged may go: below both its
            // last-delivered id and its oldest pending entry.
            let (groups, pending): (Value, Value) = redis::pipe()
                .cmd("XINFO")
                .arg("GROUPS")
                .arg(&deliveries)
                .cmd("XPENDING")
                .arg(&deliveries)
                .arg(DELIVERY_GROUP)
                .query_async(&mut conn)
                .await?;
            let last = group_last_delivered(groups, DELIVERY_GROUP);
            let oldest_pending = match pending {
                Value::Array(parts) if parts.len() >= 2 => value_string(&parts[1]),
                _ => None,
            };
            let safe = match (last, oldest_pending) {
                (Some(l), Some(p)) => Some(min_stream_id(&l, &p)),
                (Some(l), None) => Some(l),
                _ => None,
            };
            let mut pipe = redis::pipe();
            if let Some(safe) = safe {
                // MINID keeps ids >= safe; the entry `safe` itself stays, which is harmless.
                pipe.cmd("XTRIM")
                    .arg(&deliveries)
                    .arg("MINID")
                    .arg("~")
                    .arg(&safe)
                    .ignore();
            }
            pipe.cmd("XTRIM")
                .arg(&dead)
                .arg("MINID")
                .arg("=")
                .arg(&min_id)
                .ignore();
            let _: () = pipe.query_async(&mut conn).await?;
            Ok(())
        })
        .await
    }

    async fn delivery_gauges(&self, now_ms: u64) -> Result<DeliveryGauges, StoreError> {
        let (deliveries, retry, dead) =
            (self.keys.deliveries(), self.keys.retry(), self.keys.dead());
        self.timed("delivery_gauges", async {
            let (groups, scheduled, due, dead_len): (Value, u64, u64, u64) = redis::pipe()
                .cmd("XINFO")
                .arg("GROUPS")
                .arg(&deliveries)
                .cmd("ZCARD")
                .arg(&retry)
                .cmd("ZCOUNT")
                .arg(&retry)
                .arg("-inf")
                .arg(now_ms)
                .cmd("XLEN")
                .arg(&dead)
                .query_async(&mut self.conn())
                .await?;
            let (pending, lag) = group_backlog(groups, DELIVERY_GROUP);
            Ok(DeliveryGauges {
                lag,
                pending,
                scheduled,
                due,
                dead: dead_len,
            })
        })
        .await
    }
}

/// The smaller of two stream ids (`ms-seq`).
fn min_stream_id(a: &str, b: &str) -> String {
    let parse = |s: &str| {
        let (ms, seq) = s.split_once('-').unwrap_or((s, "0"));
        (
            ms.parse::<u64>().unwrap_or(0),
            seq.parse::<u64>().unwrap_or(0),
        )
    };
    if parse(a) <= parse(b) { a } else { b }.to_string()
}

// The normalizer group is only named here so `cargo doc` links the two groups together.
const _: &str = NORMALIZER_GROUP;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_smaller_stream_id_is_compared_numerically() {
        assert_eq!(min_stream_id("10-0", "9-5"), "9-5");
        assert_eq!(min_stream_id("5-10", "5-9"), "5-9");
    }
}
