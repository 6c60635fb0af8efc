//! Every Redis key hookd uses, built in one place.
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
//! | `{p}deliveries` | stream | deliveries to attempt, read by the `delivery` group |
//! | `{p}retry` | sorted set | deliveries waiting for their next attempt, scored by due time (ms) |
//! | `{p}dead` | stream | deliveries whose attempts are exhausted |
//! | `{p}attempts:{e}` | stream | an endpoint's attempt log |
//! | `{p}dstatus:{k}:{id}` | hash with TTL | per endpoint, the state of an event's (`e`) or a raw request's (`r`) delivery |
//! | `{p}dstats:{e}:{bucket}` | hash with TTL | delivery counters of an endpoint (or `_all`) per 5 minutes |

/// The consumer group that splits the journal.
pub const NORMALIZER_GROUP: &str = "normalizer";

/// The consumer group that attempts deliveries.
pub const DELIVERY_GROUP: &str = "delivery";

#[derive(Debug, Clone)]
pub struct Keys {
    prefix: String,
}

impl Keys {
    pub fn new(prefix: &str) -> Keys {
        Keys {
            prefix: prefix.to_string(),
        }
    }

    fn key(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
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
        self.key(&format!("idem:{key}"))
    }
    pub fn tenants(&self) -> String {
        self.key("tenants")
    }
    pub fn accounts(&self) -> String {
        self.key("accounts")
    }
    pub fn api_keys(&self) -> String {
        self.key("apikeys")
    }
    pub fn endpoints(&self) -> String {
        self.key("endpoints")
    }
    pub fn endpoints_version(&self) -> String {
        self.key("endpoints:version")
    }
    pub fn endpoint_health(&self, endpoint_id: &str) -> String {
        format!("{}ephealth:{endpoint_id}", self.prefix)
    }
    pub fn deliveries(&self) -> String {
        self.key("deliveries")
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
    /// Must match what the scripts build: `dstatus:{kind}:{subject}`.
    pub fn delivery_status(&self, kind: &str, subject: &str) -> String {
        format!("{}dstatus:{kind}:{subject}", self.prefix)
    }
    pub fn delivery_stats(&self, scope: &str, bucket_ms: u64) -> String {
        format!("{}dstats:{scope}:{bucket_ms}", self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
            k.retry(),
            k.dead(),
            k.attempts("e"),
            k.delivery_status("e", "1-0"),
            k.delivery_stats("e", 0),
        ] {
            assert!(key.starts_with("t1:"), "{key}");
        }
    }
}
