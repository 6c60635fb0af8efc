//! What goes in and out of the journal and the event log.

use std::collections::BTreeMap;

use bytes::Bytes;
use serde::Serialize;
use serde_json::value::RawValue;

use crate::meta::Event;

/// One received, verified request, as journaled before it is answered 200.
#[derive(Debug, Clone, PartialEq)]
pub struct JournalEntry {
    pub source: String,
    pub received_at_ms: u64,
    /// Follows the request through the logs of every stage.
    pub request_id: String,
    /// `X-Hub-Signature-256` as received, kept so the body can be verified again later.
    pub signature: String,
    pub user_agent: String,
    /// The exact received bytes.
    pub body: Bytes,
}

/// A journal entry read back. `entry` is `None` when retention trimmed it before it was split.
#[derive(Debug, Clone)]
pub struct JournalRecord {
    pub id: String,
    pub entry: Option<JournalEntry>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadFrom {
    /// Entries no consumer has seen.
    New,
    /// Entries this consumer holds without having acknowledged them (after a crash or a claim),
    /// a page at a time: each pending read goes on after the last entry the previous one
    /// returned, and once one comes back with fewer than asked, the next starts again from
    /// the oldest. However many are held, reading pending until a read brings nothing new
    /// sees them all.
    Pending,
}

/// Where one event goes: endpoint ids by mode, and the tenants owning them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Routing {
    /// JSON mode, all of them (the event keeps this list to show its deliveries).
    pub endpoints: Vec<String>,
    /// Those of `endpoints` that take the event's conversation in order: the event waits in
    /// its conversation's queue there instead of being queued for delivery at once.
    pub ordered: Vec<String>,
    pub raw_endpoints: Vec<String>,
    pub tenants: Vec<String>,
    /// (endpoint, tenant) for each routed endpoint a tenant owns: whose deliveries lane it
    /// goes to.
    pub owners: Vec<(String, String)>,
}

/// The result of splitting one journal entry.
#[derive(Debug, Clone)]
pub enum Normalized {
    Events {
        journal_id: String,
        source: String,
        received_at_ms: u64,
        object: String,
        /// The ingress request id, carried into the events and deliveries for the logs.
        request_id: String,
        events: Vec<Event>,
        /// Per event, the endpoints that want it; empty when nothing is routed.
        routing: Vec<Routing>,
    },
    /// The body could not be split: kept with the reason.
    Quarantine {
        journal_id: String,
        entry: JournalEntry,
        error: String,
    },
    /// The entry was trimmed away before it was split: only acknowledged.
    Missing { journal_id: String },
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CommitOutcome {
    /// For each event of the entry, in order: its new event id, or `None` for a duplicate.
    pub event_ids: Vec<Option<String>>,
    pub quarantined: bool,
}

/// A request refused because of its signature, kept for operators. Anyone can cause one, so
/// whoever builds it bounds every field (see `http::rejections`): a record takes at most
/// [`Rejection::MAX_BYTES`].
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Rejection {
    pub source: String,
    pub reason: String,
    pub received_at_ms: u64,
    pub request_id: String,
    pub remote_addr: String,
    pub signature: String,
    pub body_len: usize,
    /// The first bytes of the body, as text (lossy), to recognise what was sent.
    pub body_prefix: String,
}

impl Rejection {
    /// An upper bound on one stored record: each header-derived field at most 256 bytes, the
    /// body prefix at most 1024, plus field names and numbers.
    pub const MAX_BYTES: usize = 2048;
}

/// Filters of `GET /api/v1/events`.
#[derive(Debug, Clone, Default)]
pub struct EventQuery {
    pub platform: Option<String>,
    pub event_type: Option<String>,
    pub account_id: Option<String>,
    /// Received at or after, Unix ms.
    pub from_ms: Option<u64>,
    /// Received at or before, Unix ms.
    pub to_ms: Option<u64>,
    /// Only events routed to this tenant's endpoints.
    pub tenant_id: Option<String>,
    /// Continue after this event id (exclusive), newest first.
    pub cursor: Option<String>,
    pub limit: usize,
}

/// One page of a list. Shown with `has_more` (whether `next_cursor` is there), which may be
/// true beside a short page: a page ends early rather than reading without bound.
#[derive(Debug, Clone)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Pass as `cursor` to get the next (older) page; absent on the last page.
    pub next_cursor: Option<String>,
}

impl<T: Serialize> Serialize for Page<T> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut st = s.serialize_struct("Page", 3)?;
        st.serialize_field("items", &self.items)?;
        if let Some(c) = &self.next_cursor {
            st.serialize_field("next_cursor", c)?;
        } else {
            st.skip_field("next_cursor")?;
        }
        st.serialize_field("has_more", &self.next_cursor.is_some())?;
        st.end()
    }
}

impl<T> Page<T> {
    /// The page of `all` (in the list's order) after the item whose id is `cursor`, for lists
    /// kept whole in memory (tenants, endpoints). `None` when `cursor` names no item.
    pub fn of(
        all: Vec<T>,
        id: impl Fn(&T) -> &str,
        cursor: Option<&str>,
        limit: usize,
    ) -> Option<Page<T>> {
        let start = match cursor {
            None => 0,
            Some(c) => all.iter().position(|t| id(t) == c)? + 1,
        };
        let mut rest: Vec<T> = all.into_iter().skip(start).collect();
        let more = rest.len() > limit;
        rest.truncate(limit);
        let next_cursor = more
            .then(|| rest.last().map(|t| id(t).to_string()))
            .flatten();
        Some(Page {
            items: rest,
            next_cursor,
        })
    }
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct StoredEvent {
    pub id: String,
    #[serde(rename = "type")]
    pub event_type: String,
    pub platform: String,
    pub account_id: String,
    pub source: String,
    pub object: String,
    pub received_at: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub occurred_at: Option<u64>,
    pub journal_id: String,
    /// The ingress request that brought the event (`X-Request-Id`, or one hookd made).
    pub request_id: String,
    /// The event as Meta sent it.
    #[schema(value_type = Object)]
    pub data: Box<RawValue>,
    /// `sender` or `recipient`: the user the event is about, as deliveries name it.
    #[serde(flatten)]
    #[schema(value_type = Object)]
    pub identity: BTreeMap<String, Box<RawValue>>,
    /// Set on the events of a test suite's run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub test: Option<crate::model::test_suite::TestOrigin>,
    /// The JSON-mode endpoints the event was routed to (their states are read separately).
    #[serde(skip)]
    pub endpoints: Vec<String>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct QuarantinedBody {
    pub id: String,
    pub source: String,
    pub received_at: u64,
    pub journal_id: String,
    pub request_id: String,
    pub error: String,
    pub body_len: usize,
    /// The body as text (lossy UTF-8).
    pub body: String,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct RejectedRequest {
    pub id: String,
    #[serde(flatten)]
    pub rejection: Rejection,
}

#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct Stats {
    /// Requests journaled (answered 200).
    pub received: u64,
    /// Requests refused for their signature.
    pub rejected: u64,
    /// Events dropped because they were already stored.
    pub duplicates: u64,
    /// Bodies that could not be split.
    pub quarantined: u64,
    /// Events stored.
    pub events: u64,
    pub events_by_type: BTreeMap<String, u64>,
    /// Events of test suite runs stored, left out of every figure above.
    pub test_events: u64,
    /// WhatsApp statuses not delivered to an endpoint with conversation ordering because a
    /// later status of their message came first.
    pub stale_statuses: u64,
}

/// What an idempotency key says about a request that carries it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdempotencyClaim {
    /// First use: the request goes ahead, then settles or releases the key.
    Fresh,
    /// A request with this key is still running.
    InProgress,
    /// Answered before: the status and body to answer again.
    Done { status: u16, body: String },
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StreamGauges {
    pub inbound_length: u64,
    /// Journal entries not yet read by the normalizer group.
    pub inbound_lag: u64,
    /// Journal entries read but not yet acknowledged.
    pub inbound_pending: u64,
    pub events_length: u64,
    pub quarantine_length: u64,
    /// What storage holds, in bytes: the embedded data file's size, or Redis's used memory.
    pub storage_bytes: u64,
    /// Space left on the embedded backend's filesystem; `None` for Redis.
    pub free_bytes: Option<u64>,
}

/// The members of a stored identity (`"sender":{…}`), or none for an empty one.
pub fn identity_members(
    stored: &str,
) -> Result<BTreeMap<String, Box<RawValue>>, crate::store::StoreError> {
    if stored.is_empty() {
        return Ok(BTreeMap::new());
    }
    serde_json::from_str(&format!("{{{stored}}}"))
        .map_err(|e| crate::store::StoreError::Protocol(format!("stored event identity: {e}")))
}

/// Filters of `GET /api/v1/audit`. Records come newest first.
#[derive(Debug, Clone, Default)]
pub struct AuditQuery {
    /// Only records concerning this tenant (a tenant key's own).
    pub tenant_id: Option<String>,
    /// `admin`, a key id, `hookd` or `command:<name>`.
    pub actor: Option<String>,
    /// An action (`endpoint.update`), or every action of an object kind (`endpoint.*`).
    pub action: Option<String>,
    pub object_id: Option<String>,
    pub outcome: Option<crate::model::audit::Outcome>,
    /// At or after, Unix ms.
    pub from_ms: Option<u64>,
    /// At or before, Unix ms.
    pub to_ms: Option<u64>,
    /// Continue after this record id (exclusive).
    pub cursor: Option<String>,
    pub limit: usize,
}

impl AuditQuery {
    /// Records one page reads at most: a selective filter over a long log ends a page early
    /// (with a cursor) rather than reading without bound.
    pub const SCAN_MAX: usize = 10_000;

    /// Whether `r` passes the filters a backend does not apply by its indexes (all of them
    /// but time and tenant, which a backend may also check here).
    pub fn matches(&self, r: &crate::model::audit::AuditRecord) -> bool {
        let action = match self.action.as_deref() {
            None => true,
            Some(a) => match a.strip_suffix(".*") {
                Some(kind) => r
                    .action
                    .strip_prefix(kind)
                    .is_some_and(|rest| rest.starts_with('.')),
                None => r.action == a,
            },
        };
        action
            && self.tenant_id.as_ref().is_none_or(|t| &r.tenant_id == t)
            && self.actor.as_ref().is_none_or(|a| &r.actor == a)
            && self.object_id.as_ref().is_none_or(|o| &r.object_id == o)
            && self.outcome.is_none_or(|o| r.outcome == o)
            && self.from_ms.is_none_or(|f| r.at >= f)
            && self.to_ms.is_none_or(|t| r.at <= t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::audit::{AuditRecord, Outcome};

    fn record(action: &str, tenant: &str, at: u64) -> AuditRecord {
        AuditRecord {
            id: String::new(),
            at,
            actor: "admin".into(),
            address: String::new(),
            method: "POST".into(),
            route: String::new(),
            action: action.into(),
            object_id: "ep_1".into(),
            tenant_id: tenant.into(),
            changes: serde_json::Value::Null,
            outcome: Outcome::Applied,
            status: None,
            error: None,
        }
    }

    #[test]
    fn an_action_filter_takes_one_action_or_every_action_of_a_kind() {
        let q = |a: &str| AuditQuery {
            action: Some(a.into()),
            ..AuditQuery::default()
        };
        let update = record("endpoint.update", "", 0);
        assert!(q("endpoint.update").matches(&update));
        assert!(q("endpoint.*").matches(&update));
        assert!(!q("endpoint.create").matches(&update));
        assert!(!q("end.*").matches(&update), "a kind is a whole word");
        assert!(!q("endpoint").matches(&update));
    }

    #[test]
    fn a_tenants_query_never_matches_another_tenants_record() {
        let q = AuditQuery {
            tenant_id: Some("t_1".into()),
            ..AuditQuery::default()
        };
        assert!(q.matches(&record("key.create", "t_1", 0)));
        assert!(!q.matches(&record("key.create", "t_2", 0)));
        assert!(!q.matches(&record("endpoint.create", "", 0)));
    }

    #[test]
    fn time_bounds_are_inclusive() {
        let q = AuditQuery {
            from_ms: Some(10),
            to_ms: Some(20),
            outcome: Some(Outcome::Applied),
            ..AuditQuery::default()
        };
        assert!(q.matches(&record("a.b", "", 10)) && q.matches(&record("a.b", "", 20)));
        assert!(!q.matches(&record("a.b", "", 9)) && !q.matches(&record("a.b", "", 21)));
    }
}
