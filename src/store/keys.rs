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

/// The consumer group that splits the journal.
pub const NORMALIZER_GROUP: &str = "normalizer";

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
        ] {
            assert!(key.starts_with("t1:"), "{key}");
        }
    }
}
