//! The tables of the data file and how their keys are built. Entry tables are keyed by
//! [`EntryId::key`]; composite keys are bytes: length-prefixed names, then big-endian numbers,
//! so that one name's keys sit together in id order.

use redb::TableDefinition;

use crate::store::ids::EntryId;

type Entries = TableDefinition<'static, u128, &'static [u8]>;
type ByName<V> = TableDefinition<'static, &'static str, V>;
type ByBytes<V> = TableDefinition<'static, &'static [u8], V>;

/// Journaled requests (kept for raw mode and retention after they are split).
pub const JOURNAL: Entries = TableDefinition::new("journal");
/// Journal ids not yet split and acknowledged.
pub const JOURNAL_UNACKED: TableDefinition<u128, ()> = TableDefinition::new("journal_unacked");
pub const EVENTS: Entries = TableDefinition::new("events");
/// `index key ‖ event id` for filtered event lists (see [`index_key`]).
pub const EVENT_INDEX: ByBytes<()> = TableDefinition::new("event_index");
/// Dedup digest → when it expires (Unix ms).
pub const DEDUP: ByName<u64> = TableDefinition::new("dedup");
/// `expiry ms ‖ digest`, to drop expired dedup keys in order.
pub const DEDUP_EXPIRY: ByBytes<()> = TableDefinition::new("dedup_expiry");
pub const QUARANTINE: Entries = TableDefinition::new("quarantine");
pub const REJECTED: Entries = TableDefinition::new("rejected");
/// Totals: `received`, `events`, …, and `type:<event type>`.
pub const COUNTERS: ByName<u64> = TableDefinition::new("counters");

pub const TENANTS: ByName<&'static str> = TableDefinition::new("tenants");
/// Key hash → key (JSON).
pub const API_KEYS: ByName<&'static str> = TableDefinition::new("api_keys");
/// Account id → owning tenant id.
pub const ACCOUNTS: ByName<&'static str> = TableDefinition::new("accounts");
pub const ENDPOINTS: ByName<&'static str> = TableDefinition::new("endpoints");
pub const ENDPOINT_HEALTH: ByName<&'static str> = TableDefinition::new("endpoint_health");
/// Page access tokens by `source \x1f page id` (JSON, the token sealed).
pub const PAGE_TOKENS: ByName<&'static str> = TableDefinition::new("page_tokens");
/// Test suites with their latest runs, as JSON, by id.
pub const TEST_SUITES: ByName<&'static str> = TableDefinition::new("test_suites");
/// Idempotency key → its record (see `records::IdempotencyRec`).
pub const IDEMPOTENCY: ByName<&'static [u8]> = TableDefinition::new("idempotency");
/// Single values: the catalogue version.
pub const META: ByName<u64> = TableDefinition::new("meta");
pub const CATALOGUE_VERSION: &str = "catalogue_version";

/// `endpoint ‖ conversation ‖ event id`: the events waiting for an endpoint that orders by
/// conversation. The first of a conversation is its head, the one delivery queued or retried.
pub const CONVERSATIONS: ByBytes<()> = TableDefinition::new("conversations");

/// `endpoint ‖ event id` → conversation, for each conversation's head: what lets the next go
/// when the head's event is gone before its delivery was resolved.
pub const CONVERSATION_HEADS: ByBytes<&'static str> = TableDefinition::new("conversation_heads");

/// Deliveries waiting for an attempt; removed when acknowledged.
pub const DELIVERIES: Entries = TableDefinition::new("deliveries");
/// `lane ‖ delivery id`: the deliveries queued in each lane (see `lanes`).
pub const DELIVERY_LANES: ByBytes<()> = TableDefinition::new("delivery_lanes");
/// Keyed by due time (ms) in the high half and a sequence in the low half.
pub const RETRIES: Entries = TableDefinition::new("retries");
pub const DEAD: Entries = TableDefinition::new("dead");
/// `subject id ‖ endpoint id` → the delivery's state.
pub const STATES: ByBytes<&'static [u8]> = TableDefinition::new("states");
/// `endpoint id ‖ attempt id` → the attempt (JSON).
pub const ATTEMPTS: ByBytes<&'static [u8]> = TableDefinition::new("attempts");
/// Audit records (JSON), by id.
pub const AUDIT: Entries = TableDefinition::new("audit");
/// `tenant id ‖ record id`: the records concerning one tenant.
pub const AUDIT_BY_TENANT: ByBytes<()> = TableDefinition::new("audit_by_tenant");
/// `bucket start ms ‖ scope ‖ field` → count.
pub const STATS: ByBytes<i64> = TableDefinition::new("stats");

/// A name, length-prefixed so that no name is a prefix of another's keys.
pub fn name(out: &mut Vec<u8>, name: &str) {
    let bytes = name.as_bytes();
    let len = u16::try_from(bytes.len()).unwrap_or(u16::MAX);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(&bytes[..usize::from(len)]);
}

/// `name ‖ id`.
pub fn named_id(n: &str, id: EntryId) -> Vec<u8> {
    let mut k = Vec::with_capacity(2 + n.len() + 16);
    name(&mut k, n);
    k.extend_from_slice(&id.key().to_be_bytes());
    k
}

/// The name at the start of a [`named_id`] key.
pub fn name_of(key: &[u8]) -> Option<String> {
    let len = usize::from(u16::from_be_bytes(key.get(..2)?.try_into().ok()?));
    std::str::from_utf8(key.get(2..2 + len)?)
        .ok()
        .map(str::to_string)
}

/// The id at the end of a [`named_id`] key.
pub fn id_of_named(key: &[u8]) -> Option<EntryId> {
    let tail: [u8; 16] = key.get(key.len().checked_sub(16)?..)?.try_into().ok()?;
    Some(EntryId::from_key(u128::from_be_bytes(tail)))
}

/// The index of events of one type (`t`), platform (`p`), account (`a`) or tenant (`n`).
pub fn index_key(kind: char, value: &str, id: EntryId) -> Vec<u8> {
    named_id(&format!("{kind}:{value}"), id)
}

/// `endpoint ‖ conversation`: the prefix of one conversation's keys in [`CONVERSATIONS`].
pub fn conversation_prefix(endpoint: &str, conversation: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(4 + endpoint.len() + conversation.len() + 16);
    name(&mut k, endpoint);
    name(&mut k, conversation);
    k
}

/// The [`DEDUP`] name marking that a status of rank `rank` of `message_id` was received:
/// kept as long as dedup keys, trimmed with them.
pub fn status_step_mark(message_id: &str, rank: u8) -> String {
    format!("step:{rank}:{message_id}")
}

/// `subject ‖ endpoint`.
pub fn state_key(subject: EntryId, endpoint: &str) -> Vec<u8> {
    let mut k = subject.key().to_be_bytes().to_vec();
    k.extend_from_slice(endpoint.as_bytes());
    k
}

pub fn dedup_expiry_key(expires_ms: u64, digest: &str) -> Vec<u8> {
    let mut k = expires_ms.to_be_bytes().to_vec();
    k.extend_from_slice(digest.as_bytes());
    k
}

/// `bucket ‖ scope ‖ field`.
pub fn stats_key(bucket_ms: u64, scope: &str, field: &str) -> Vec<u8> {
    let mut k = bucket_ms.to_be_bytes().to_vec();
    name(&mut k, scope);
    k.extend_from_slice(field.as_bytes());
    k
}

/// `bucket ‖ scope`: the prefix of one scope's counters in one bucket.
pub fn stats_prefix(bucket_ms: u64, scope: &str) -> Vec<u8> {
    let mut k = bucket_ms.to_be_bytes().to_vec();
    name(&mut k, scope);
    k
}

/// The smallest key greater than every key starting with `prefix`.
pub fn after_prefix(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < u8::MAX {
            end.push(last + 1);
            return end;
        }
    }
    vec![u8::MAX; prefix.len() + 1]
}

/// A retry's key: due first, so the earliest is first; then a number made from `id` (a
/// fresh entry id) that no other retry due in the same millisecond has.
pub fn retry_key(due_ms: u64, id: EntryId) -> u128 {
    let unique = (id.ms << 22) | (id.seq & 0x3F_FFFF);
    EntryId {
        ms: due_ms,
        seq: unique,
    }
    .key()
}

/// The first retry key due at `due_ms`.
pub fn first_retry_key(due_ms: u64) -> u128 {
    EntryId::at(due_ms).key()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_due_at_once_have_keys_of_their_own_in_due_order() {
        // Ids made in different milliseconds with the same sequence number.
        let a = retry_key(500, EntryId { ms: 10, seq: 0 });
        let b = retry_key(500, EntryId { ms: 11, seq: 0 });
        assert_ne!(a, b);
        assert!(retry_key(499, EntryId { ms: 99, seq: 9 }) < a);
        assert!(first_retry_key(500) <= a && a < first_retry_key(501));
    }

    #[test]
    fn one_names_keys_sit_together_in_id_order() {
        let a1 = named_id("a", EntryId { ms: 1, seq: 0 });
        let a2 = named_id("a", EntryId { ms: 2, seq: 0 });
        let ab = named_id("ab", EntryId { ms: 0, seq: 0 });
        assert!(
            a1 < a2 && a2 < ab,
            "a name's keys are not split by a longer name"
        );
        assert_eq!(id_of_named(&a2), Some(EntryId { ms: 2, seq: 0 }));
        let mut prefix = Vec::new();
        name(&mut prefix, "a");
        let end = after_prefix(&prefix);
        assert!(a2 < end && ab >= end);
        assert_eq!(name_of(&a2).as_deref(), Some("a"));
        assert_eq!(
            name_of(&named_id("", EntryId::default())).as_deref(),
            Some("")
        );
    }
}
