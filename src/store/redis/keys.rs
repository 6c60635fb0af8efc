//! Every Redis key hookd uses, built in one place.
//!
//! `{p}` below is the prefix of a partition's keys: `redis.prefix` itself on one Redis with
//! one partition; otherwise a hash tag per partition (`{hookd:}` for partition 0, `{hookd:3}`
//! for partition 3), so that every script stays on one slot of a cluster. The catalogue's keys
//! (tenants, accounts, API keys, endpoints and their version and health, test suites, page
//! tokens, idempotency keys, instances) are partition 0's.
//!
//! | key | type | holds |
//! |---|---|---|
//! | `{p}inbound` | stream | the journal: raw signed requests, read by the `normalizer` group |
//! | `{p}events` | stream | split, deduplicated events; an event's id is its entry id |
//! | `{p}idx:type:{t}`, `{p}idx:platform:{p}`, `{p}idx:account:{a}` | stream | event ids, for filtered listing |
//! | `{p}quarantine` | stream | signed bodies that could not be split |
//! | `{p}rejected` | stream (capped) | requests refused for their signature |
//! | `{p}dedup:{digest}` | string with TTL | an event already stored |
//! | `{p}stats`, `{p}stats:types` | hash | counters behind `GET /api/v1/stats` |
//! | `{p}idx:tenant:{t}` | stream | ids of the events routed to a tenant's endpoints |
//! | `{p}tenants` | hash | tenant id → tenant (JSON) |
//! | `{p}accounts` | hash | Meta account id (phone number, WABA, page, Instagram) → owning tenant id |
//! | `{p}apikeys` | hash | SHA-256 of a tenant API key → key record (JSON) |
//! | `{p}endpoints` | hash | endpoint id → endpoint (JSON) |
//! | `{p}endpoints:version` | string | bumped on every endpoint change; routers reload on change |
//! | `{p}ephealth:{e}` | hash | an endpoint's last success/failure and why hookd disabled it |
//! | `{p}deliveries`, `{p}deliveries:t:{t}` | stream | deliveries to attempt to the admin's endpoints, and to tenant `t`'s (one lane per owner, read in turn), read by the `delivery` group: a span of routed events (`k=b`, up to [`EVENTS_PER_SPAN`], to the endpoints `eps` of the lane), one event to some endpoints (`k=e`, retries, replays, a conversation's head) or a raw request (`k=r`); events are referenced, never copied |
//! | `{p}delivery_lanes` | set | the tenants with a deliveries lane of their own |
//! | `{p}retry` | sorted set | deliveries waiting for their next attempt, scored by due time (ms) |
//! | `{p}dead` | stream | deliveries whose attempts are exhausted |
//! | `{p}attempts:{e}` | stream | an endpoint's attempt log |
//! | `{p}dstatus:e:{second}` | hash with TTL | `{event id}\|{endpoint}` → the state of the delivery of each event stored in that second (its id's time): a commit writes the states of a batch with one command per second it spans |
//! | `{p}dstatus:r:{journal id}` | hash with TTL | endpoint → the state of a raw request's delivery |
//! | `{p}journal:lease` | string with TTL | the consumer holding the journal lease (the one instance that splits the journal) |
//! | `{p}owners` | hash | endpoint → owning tenant, for the tenants' endpoints that had deliveries in the partition (scripts cannot read the catalogue on another slot) |
//! | `{p}instances` | sorted set | (partition 0) the instances alive, scored by when their note runs out (ms); partitions' journals are shared among them |
//! | `{p}conv:{e}:{c}` | list | event ids waiting for endpoint `e` in conversation `c`, oldest first; the first is queued or retried |
//! | `{p}convheads:{e}` | hash | event id → conversation, for each conversation head of endpoint `e` |
//! | `{p}step:{message id}` | string with TTL | the latest step (1 sent … 4 played) received of a WhatsApp message, for stale statuses |
//! | `{p}audit` | stream | the audit log: one entry per change made through the management API (`j`: the record) |
//! | `{p}audit:t:{t}` | stream | a copy of the records concerning tenant `t`, under the same ids |
//! | `{p}dstats:{e}:{bucket}` | hash with TTL | delivery counters of an endpoint (or `_all`) per 5 minutes |

use crate::model::delivery::DeliveryKind;

/// The consumer group that splits the journal.
pub const NORMALIZER_GROUP: &str = "normalizer";

/// The consumer group that attempts deliveries.
pub const DELIVERY_GROUP: &str = "delivery";

/// Most routed events one deliveries entry names. An entry is acknowledged when all of its
/// events are resolved, so this bounds what one read hands the dispatcher and what a crash
/// repeats.
pub const EVENTS_PER_SPAN: usize = 32;

#[derive(Debug, Clone)]
pub struct Keys {
    /// Of this partition's keys (the journal, events, deliveries…).
    prefix: String,
    /// Of the catalogue's keys (tenants, endpoints…), which every partition shares: partition
    /// 0's prefix.
    catalogue: String,
}

impl Keys {
    /// One partition: every key under `prefix`.
    pub fn new(prefix: &str) -> Keys {
        Keys {
            prefix: prefix.to_string(),
            catalogue: prefix.to_string(),
        }
    }

    /// The keys of partition `partition`. On one Redis with one partition: `{prefix}name`,
    /// as hookd always wrote them. Otherwise each partition's keys share a hash tag, so that
    /// every script and pipeline stays on one slot of a cluster: partition 0 (which holds the
    /// catalogue too) `{hookd:}name`, partition p `{hookd:p}name`.
    pub fn for_partition(prefix: &str, tagged: bool, partition: usize) -> Keys {
        let tag = |p: usize| match p {
            0 => format!("{{{prefix}}}"),
            p => format!("{{{prefix}{p}}}"),
        };
        if !tagged {
            return Keys::new(prefix);
        }
        Keys {
            prefix: tag(partition),
            catalogue: tag(0),
        }
    }

    fn key(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }

    fn catalogue_key(&self, name: &str) -> String {
        format!("{}{name}", self.catalogue)
    }

    pub fn inbound(&self) -> String {
        self.key("inbound")
    }
    pub fn events(&self) -> String {
        self.key("events")
    }
    pub fn quarantine(&self) -> String {
        self.key("quarantine")
    }
    pub fn rejected(&self) -> String {
        self.key("rejected")
    }
    pub fn stats(&self) -> String {
        self.key("stats")
    }
    pub fn stats_types(&self) -> String {
        self.key("stats:types")
    }
    pub fn dedup(&self, digest_hex: &str) -> String {
        format!("{}dedup:{digest_hex}", self.prefix)
    }
    pub fn index_type(&self, event_type: &str) -> String {
        format!("{}idx:type:{event_type}", self.prefix)
    }
    pub fn index_platform(&self, platform: &str) -> String {
        format!("{}idx:platform:{platform}", self.prefix)
    }
    pub fn index_account(&self, account_id: &str) -> String {
        format!("{}idx:account:{account_id}", self.prefix)
    }
    pub fn index_tenant(&self, tenant_id: &str) -> String {
        format!("{}idx:tenant:{tenant_id}", self.prefix)
    }
    /// What the Lua scripts prepend to the keys they build themselves.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }
    /// An idempotency key's record (`pending`, or `<status>:<body>`).
    pub fn idempotency(&self, key: &str) -> String {
        self.catalogue_key(&format!("idem:{key}"))
    }
    pub fn tenants(&self) -> String {
        self.catalogue_key("tenants")
    }
    pub fn accounts(&self) -> String {
        self.catalogue_key("accounts")
    }
    pub fn api_keys(&self) -> String {
        self.catalogue_key("apikeys")
    }
    /// Page access tokens: field `source \x1f page id`, value JSON with the token sealed.
    /// Hash: suite id → the suite with its latest runs, as JSON.
    pub fn test_suites(&self) -> String {
        self.catalogue_key("test_suites")
    }
    pub fn page_tokens(&self) -> String {
        self.catalogue_key("graph:page_tokens")
    }
    pub fn endpoints(&self) -> String {
        self.catalogue_key("endpoints")
    }
    pub fn endpoints_version(&self) -> String {
        self.catalogue_key("endpoints:version")
    }
    pub fn endpoint_health(&self, endpoint_id: &str) -> String {
        format!("{}ephealth:{endpoint_id}", self.catalogue)
    }
    /// Where the prefix of the catalogue's keys differs from the partition's, the scripts of
    /// the partition must not touch them (another slot).
    pub fn catalogue_prefix(&self) -> &str {
        &self.catalogue
    }
    /// The owner of each tenant's endpoint that had deliveries in this partition, as the
    /// scripts learnt it (they cannot read the catalogue's endpoints from another slot).
    pub fn owners(&self) -> String {
        self.key("owners")
    }
    /// The instances alive, scored by when their heartbeat runs out (ms): partitions are
    /// shared among them.
    pub fn instances(&self) -> String {
        self.catalogue_key("instances")
    }
    pub fn audit(&self) -> String {
        self.key("audit")
    }
    pub fn audit_of_tenant(&self, tenant_id: &str) -> String {
        format!("{}audit:t:{tenant_id}", self.prefix)
    }
    /// The admin's deliveries lane (and every delivery queued before lanes existed).
    pub fn deliveries(&self) -> String {
        self.key("deliveries")
    }
    /// Tenant `tenant`'s deliveries lane; the admin's for "". `lanes.lua` builds the same.
    pub fn lane(&self, tenant: &str) -> String {
        if tenant.is_empty() {
            self.deliveries()
        } else {
            format!("{}deliveries:t:{tenant}", self.prefix)
        }
    }
    pub fn delivery_lanes(&self) -> String {
        self.key("delivery_lanes")
    }
    pub fn journal_lease(&self) -> String {
        self.key("journal:lease")
    }
    pub fn retry(&self) -> String {
        self.key("retry")
    }
    pub fn dead(&self) -> String {
        self.key("dead")
    }
    pub fn attempts(&self, endpoint_id: &str) -> String {
        format!("{}attempts:{endpoint_id}", self.prefix)
    }
    /// Where the state of `subject`'s delivery to `endpoint` is kept: (hash key, field).
    /// An event's states are grouped by the second its id was made in, so that a round of
    /// outcomes writes a few hashes rather than one per event. `requeue.lua` builds the same.
    pub fn delivery_state_slot(
        &self,
        kind: DeliveryKind,
        subject: &str,
        endpoint: &str,
    ) -> (String, String) {
        match kind {
            DeliveryKind::Event => {
                let ms = subject.split('-').next().unwrap_or_default();
                let second = ms.get(..ms.len().saturating_sub(3)).unwrap_or_default();
                (
                    format!("{}dstatus:e:{second}", self.prefix),
                    format!("{subject}|{endpoint}"),
                )
            }
            DeliveryKind::Raw => (
                format!("{}dstatus:r:{subject}", self.prefix),
                endpoint.to_string(),
            ),
        }
    }
    pub fn delivery_stats(&self, scope: &str, bucket_ms: u64) -> String {
        format!("{}dstats:{scope}:{bucket_ms}", self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tenants_lane_has_a_key_of_its_own_and_the_admins_is_the_old_one() {
        let k = Keys::new("p:");
        assert_eq!(k.lane(""), "p:deliveries");
        assert_eq!(k.lane("t_abc"), "p:deliveries:t:t_abc");
    }

    #[test]
    fn every_key_carries_the_prefix() {
        let k = Keys::new("t1:");
        for key in [
            k.inbound(),
            k.events(),
            k.quarantine(),
            k.rejected(),
            k.stats(),
            k.stats_types(),
            k.dedup("ab"),
            k.index_type("page.feed"),
            k.index_platform("page"),
            k.index_account("1"),
            k.index_tenant("t"),
            k.tenants(),
            k.accounts(),
            k.api_keys(),
            k.endpoints(),
            k.endpoints_version(),
            k.endpoint_health("e"),
            k.deliveries(),
            k.lane("t_1"),
            k.delivery_lanes(),
            k.retry(),
            k.journal_lease(),
            k.dead(),
            k.attempts("e"),
            k.delivery_state_slot(DeliveryKind::Event, "1-0", "e").0,
            k.delivery_state_slot(DeliveryKind::Raw, "1-0", "e").0,
            k.delivery_stats("e", 0),
        ] {
            assert!(key.starts_with("t1:"), "{key}");
        }
    }

    #[test]
    fn event_states_share_a_hash_per_second_of_their_ids() {
        let k = Keys::new("p:");
        let slot = |id| k.delivery_state_slot(DeliveryKind::Event, id, "ep1");
        assert_eq!(
            slot("1700000000123-4"),
            (
                "p:dstatus:e:1700000000".to_string(),
                "1700000000123-4|ep1".to_string()
            )
        );
        assert_eq!(slot("1700000000999-0").0, slot("1700000000000-7").0);
        assert_ne!(slot("1700000001000-0").0, slot("1700000000999-0").0);
        assert_eq!(
            k.delivery_state_slot(DeliveryKind::Raw, "5-1", "ep1"),
            ("p:dstatus:r:5-1".to_string(), "ep1".to_string())
        );
    }
}
