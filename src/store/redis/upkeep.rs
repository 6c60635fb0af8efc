//! Upkeep: checks, consumer groups, retention and gauges.

use async_trait::async_trait;
use redis::Value;

use super::RedisStore;
use super::checks::production_warnings;
use super::keys::{DELIVERY_GROUP, NORMALIZER_GROUP};
use super::reply::*;
use super::streams::create_group;
use crate::model::delivery::*;
use crate::store::ids::EntryId;
use crate::store::types::*;
use crate::store::{StoreError, Upkeep};

#[async_trait]
impl Upkeep for RedisStore {
    async fn ping(&self) -> Result<(), StoreError> {
        self.timed("ping", async {
            let mut conn = self.conn();
            let _: String = redis::cmd("PING").query_async(&mut conn).await?;
            Ok(())
        })
        .await
    }

    async fn production_warnings(&self) -> Result<Vec<String>, StoreError> {
        self.timed("info", async {
            let mut conn = self.conn();
            // A cluster answers with each master's.
            let info: redis::Value = redis::cmd("INFO")
                .arg("server")
                .arg("persistence")
                .query_async(&mut conn)
                .await?;
            // Managed Redis services often disable CONFIG; then the policy is unknown.
            let policy: Option<Vec<String>> = redis::cmd("CONFIG")
                .arg("GET")
                .arg("maxmemory-policy")
                .query_async(&mut conn)
                .await
                .ok();
            let mut warnings: Vec<String> = Vec::new();
            for info in per_node(info)? {
                for w in production_warnings(&info, policy.as_deref()) {
                    if !warnings.contains(&w) {
                        warnings.push(w);
                    }
                }
            }
            Ok(warnings)
        })
        .await
    }

    async fn prepare(&self) -> Result<(), StoreError> {
        let groups = [
            (self.keys.inbound(), NORMALIZER_GROUP),
            (self.keys.deliveries(), DELIVERY_GROUP),
        ];
        self.timed("prepare", async {
            let mut conn = self.conn();
            for (key, group) in &groups {
                create_group(&mut conn, key, group).await?;
            }
            Ok(())
        })
        .await
    }

    async fn trim(&self) -> Result<(), StoreError> {
        // Exact trimming here: `~` on every XADD keeps busy streams in check cheaply but never
        // trims a stream smaller than one radix-tree node (about 100 entries).
        let min_id = self.min_id();
        let audit_min_id = self.ms_ago(self.audit_retention);
        let keys = [
            self.keys.inbound(),
            self.keys.events(),
            self.keys.quarantine(),
        ];
        let tenants_key = self.keys.tenants();
        self.timed("trim", async {
            let mut conn = self.conn();
            // Each tenant has an audit stream of its own.
            let tenants: Vec<String> = redis::cmd("HKEYS")
                .arg(&tenants_key)
                .query_async(&mut conn)
                .await?;
            let streams = keys
                .into_iter()
                .map(|k| (k, &min_id))
                .chain(self.audit_streams(&tenants).map(|k| (k, &audit_min_id)));
            let mut pipe = redis::pipe();
            for (key, min) in streams {
                pipe.cmd("XTRIM")
                    .arg(key)
                    .arg("MINID")
                    .arg("=")
                    .arg(min)
                    .ignore();
            }
            let _: () = pipe.query_async(&mut conn).await?;
            Ok(())
        })
        .await
    }

    async fn trim_deliveries(&self) -> Result<(), StoreError> {
        let lanes = self.lane_keys().await?;
        let dead = self.keys.dead();
        let min_id = self.min_id();
        self.timed("trim_deliveries", async {
            let mut conn = self.conn();
            let mut pipe = redis::pipe();
            for lane in &lanes {
                // Only what the group has read and acknowledged may go: below both its
                // last-delivered id and its oldest pending entry.
                let (groups, pending): (Value, Value) = redis::pipe()
                    .cmd("XINFO")
                    .arg("GROUPS")
                    .arg(lane)
                    .cmd("XPENDING")
                    .arg(lane)
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
                if let Some(safe) = safe {
                    // MINID keeps ids >= safe; the entry `safe` itself stays, which is harmless.
                    pipe.cmd("XTRIM")
                        .arg(lane)
                        .arg("MINID")
                        .arg("~")
                        .arg(&safe)
                        .ignore();
                }
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

    async fn stream_gauges(&self) -> Result<StreamGauges, StoreError> {
        let inbound_key = self.keys.inbound();
        let events = self.keys.events();
        let quarantine = self.keys.quarantine();
        self.timed("stream_gauges", async {
            let mut conn = self.conn();
            let (inbound_length, events_length, quarantine_length, groups, memory): (
                u64,
                u64,
                u64,
                Value,
                String,
            ) = redis::pipe()
                .cmd("XLEN")
                .arg(&inbound_key)
                .cmd("XLEN")
                .arg(&events)
                .cmd("XLEN")
                .arg(&quarantine)
                .cmd("XINFO")
                .arg("GROUPS")
                .arg(&inbound_key)
                .cmd("INFO")
                .arg("memory")
                .query_async(&mut conn)
                .await?;
            let inbound = group_backlog(groups, NORMALIZER_GROUP);
            Ok(StreamGauges {
                inbound_length,
                inbound_lag: self.lag_of(&inbound_key, &inbound).await?,
                inbound_pending: inbound.pending,
                events_length,
                quarantine_length,
                storage_bytes: info_field(&memory, "used_memory").unwrap_or(0),
                free_bytes: None,
            })
        })
        .await
    }

    async fn delivery_gauges(&self, now_ms: u64) -> Result<DeliveryGauges, StoreError> {
        let lanes = self.lane_keys().await?;
        let (retry, dead) = (self.keys.retry(), self.keys.dead());
        self.timed("delivery_gauges", async {
            // Every lane's backlog, summed.
            let (mut lag, mut pending) = (0, 0);
            for lane in &lanes {
                let groups: Value = redis::cmd("XINFO")
                    .arg("GROUPS")
                    .arg(lane)
                    .query_async(&mut self.conn())
                    .await?;
                let group = group_backlog(groups, DELIVERY_GROUP);
                lag += self.lag_of(lane, &group).await?;
                pending += group.pending;
            }
            let (scheduled, due, dead_len): (u64, u64, u64) = redis::pipe()
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

/// Past this many, entries after a group's position are not counted but estimated.
const LAG_COUNT_MAX: usize = 10_000;

impl RedisStore {
    /// The entries of `key` after `group`'s position: as Redis says, or, when it cannot tell,
    /// counted (up to [`LAG_COUNT_MAX`], then estimated from the ids' times).
    async fn lag_of(&self, key: &str, group: &GroupBacklog) -> Result<u64, StoreError> {
        if let Some(lag) = group.lag {
            return Ok(lag);
        }
        let after = match &group.last_delivered {
            Some(id) => format!("({id}"),
            None => "-".to_string(),
        };
        let mut conn = self.conn();
        let newer: Value = redis::cmd("XRANGE")
            .arg(key)
            .arg(&after)
            .arg("+")
            .arg("COUNT")
            .arg(LAG_COUNT_MAX)
            .query_async(&mut conn)
            .await?;
        let counted = match newer {
            Value::Array(items) => items.len(),
            _ => 0,
        };
        if counted < LAG_COUNT_MAX {
            return Ok(counted as u64);
        }
        let (length, first, last): (u64, Value, Value) = redis::pipe()
            .cmd("XLEN")
            .arg(key)
            .cmd("XRANGE")
            .arg(key)
            .arg("-")
            .arg("+")
            .arg("COUNT")
            .arg(1)
            .cmd("XREVRANGE")
            .arg(key)
            .arg("+")
            .arg("-")
            .arg("COUNT")
            .arg(1)
            .query_async(&mut conn)
            .await?;
        let id_of = |v: Value| {
            parse_entries(v)
                .ok()
                .and_then(|e| e.into_iter().next())
                .and_then(|(id, _)| EntryId::parse(&id))
        };
        let delivered = group.last_delivered.as_deref().and_then(EntryId::parse);
        Ok(estimated_lag(length, id_of(first), id_of(last), delivered).max(counted as u64))
    }
}

/// Entries after `delivered` in a stream of `length` entries from `first` to `last`, assuming
/// they arrived at an even pace.
fn estimated_lag(
    length: u64,
    first: Option<EntryId>,
    last: Option<EntryId>,
    delivered: Option<EntryId>,
) -> u64 {
    let (Some(first), Some(last)) = (first, last) else {
        return 0;
    };
    match delivered {
        None => length,
        Some(d) if d >= last => 0,
        Some(d) if d < first => length,
        Some(d) => {
            let span = last.ms.saturating_sub(first.ms).max(1);
            let behind = last.ms.saturating_sub(d.ms);
            (length.saturating_mul(behind) / span).clamp(1, length)
        }
    }
}

/// The smaller of two stream ids (`ms-seq`), compared as ids.
fn min_stream_id(a: &str, b: &str) -> String {
    let (pa, pb) = (EntryId::parse(a), EntryId::parse(b));
    if pa <= pb { a } else { b }.to_string()
}

/// A numeric field of an `INFO` reply (`name:value` lines).
fn info_field(info: &str, name: &str) -> Option<u64> {
    info.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
        .and_then(|v| v.trim().parse().ok())
}

/// The text of a reply that is one server's, or each node's on a cluster.
fn per_node(reply: redis::Value) -> Result<Vec<String>, StoreError> {
    let texts = match reply {
        redis::Value::Map(nodes) => nodes
            .into_iter()
            .map(|(_, text)| redis::from_redis_value::<String>(text))
            .collect(),
        one => redis::from_redis_value::<String>(one).map(|t| vec![t]),
    };
    texts.map_err(|e| StoreError::Protocol(format!("INFO: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(ms: u64) -> Option<EntryId> {
        EntryId::parse(&format!("{ms}-0"))
    }

    #[test]
    fn an_unknown_lag_is_estimated_from_where_the_group_stands_in_time() {
        assert_eq!(estimated_lag(100, id(1000), id(2000), None), 100);
        assert_eq!(estimated_lag(100, id(1000), id(2000), id(2000)), 0);
        assert_eq!(estimated_lag(100, id(1000), id(2000), id(500)), 100);
        assert_eq!(estimated_lag(100, id(1000), id(2000), id(1500)), 50);
        assert_eq!(estimated_lag(100, id(1000), id(2000), id(1999)), 1);
        assert_eq!(estimated_lag(0, None, None, id(5)), 0);
    }

    #[test]
    fn the_smaller_stream_id_is_compared_numerically() {
        assert_eq!(min_stream_id("10-0", "9-5"), "9-5");
        assert_eq!(min_stream_id("5-10", "5-9"), "5-9");
    }

    #[test]
    fn an_info_field_is_read_by_its_exact_name() {
        let info = "# Memory\r\nused_memory:1024\r\nused_memory_human:1.00K\r\n";
        assert_eq!(info_field(info, "used_memory"), Some(1024));
        assert_eq!(info_field(info, "used_memory_peak"), None);
    }
}
