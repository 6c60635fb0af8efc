//! Deliveries: what one carries, what becomes of it, what is logged and counted. The
//! dispatcher decides; storage keeps what it decided.

use serde::{Deserialize, Serialize};

/// What a delivery carries: one event (JSON mode) or one Meta request (raw mode).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum DeliveryKind {
    Event,
    Raw,
}

impl DeliveryKind {
    /// The one-letter tag used in keys and entries.
    pub fn tag(self) -> &'static str {
        match self {
            DeliveryKind::Event => "e",
            DeliveryKind::Raw => "r",
        }
    }

    pub fn from_tag(tag: &str) -> Option<DeliveryKind> {
        match tag {
            "e" => Some(DeliveryKind::Event),
            "r" => Some(DeliveryKind::Raw),
            _ => None,
        }
    }
}

/// One subject to deliver to one or more endpoints, as read from the delivery queue.
#[derive(Debug, Clone, PartialEq)]
pub struct DeliveryRecord {
    /// The queue entry it came from, which is what is acknowledged. An entry may hold several
    /// records (the Redis backend queues a span of events as one entry): a read returns all
    /// of an entry's records together, one after the other, and the entry is acknowledged
    /// once every endpoint of every one of them is resolved.
    pub id: String,
    pub kind: DeliveryKind,
    /// The event id, or the journal id in raw mode.
    pub subject: String,
    pub endpoints: Vec<String>,
    /// 1 for the first attempt.
    pub attempt: u32,
    pub event_type: String,
    pub platform: String,
    pub account_id: String,
    pub source: String,
    pub received_at_ms: u64,
    pub occurred_at_ms: Option<u64>,
    /// The ingress request that brought the event, for the logs.
    pub request_id: String,
    /// The event's JSON (JSON mode).
    pub data: String,
    /// The envelope member naming the user the event is about, or empty (see
    /// [`crate::meta::Event::identity`]).
    pub identity: String,
    /// The event's conversation when this delivery may be the one its conversation waits on
    /// at an ordered endpoint (its outcome then releases the next); empty for deliveries
    /// that never are (first attempts to endpoints without ordering).
    pub conversation: String,
}

/// Where a delivery to one endpoint goes after this round.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NextStep {
    Delivered,
    /// Attempted and failed; the next attempt is due then.
    Retry {
        due_ms: u64,
    },
    /// Not attempted (the endpoint's queue was full); the same attempt is due then.
    Defer {
        due_ms: u64,
    },
    /// Given up: to the dead stream.
    Dead {
        reason: String,
    },
    /// `410 Gone`: to the dead stream, and the endpoint is disabled.
    Gone,
    /// The endpoint no longer exists.
    Drop,
}

/// One attempt as logged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AttemptLog {
    pub endpoint_id: String,
    pub kind: DeliveryKind,
    /// The event id (or the journal id in raw mode).
    pub event_id: String,
    #[serde(rename = "type")]
    pub event_type: String,
    pub webhook_id: String,
    pub attempt: u32,
    /// When the attempt started, Unix ms.
    pub at: u64,
    pub duration_ms: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The response body, cut at 4 KiB.
    pub response: String,
}

/// What became of one endpoint's share of a delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolution {
    pub kind: DeliveryKind,
    pub subject: String,
    pub endpoint_id: String,
    pub tenant_id: String,
    pub event_type: String,
    pub attempt: u32,
    pub received_at_ms: u64,
    /// A test suite's sample: its attempts are counted apart in the statistics.
    pub test: bool,
    /// From [`DeliveryRecord::conversation`]: a final outcome lets the next event of the
    /// conversation go when this one was its head.
    pub conversation: String,
    pub next: NextStep,
    pub log: Option<AttemptLog>,
}

/// Everything one commit of the dispatcher writes.
#[derive(Debug, Clone, Default)]
pub struct AttemptCommit {
    pub resolutions: Vec<Resolution>,
    /// Deliveries entries every endpoint of which is resolved.
    pub acks: Vec<String>,
    /// Statistics counters to add.
    pub stats: Vec<StatsIncrement>,
}

/// The statistics scope that sums every endpoint.
pub const ALL_ENDPOINTS: &str = "_all";

/// Width of one statistics bucket.
pub const STATS_BUCKET_MS: u64 = 5 * 60 * 1000;

/// The statistics bucket a time falls in (its start, Unix ms).
pub fn stats_bucket_of(at_ms: u64) -> u64 {
    at_ms - at_ms % STATS_BUCKET_MS
}

/// Every statistics bucket start from `from_ms` to `to_ms`, inclusive.
pub fn stats_buckets(from_ms: u64, to_ms: u64) -> impl Iterator<Item = u64> {
    (stats_bucket_of(from_ms)..=stats_bucket_of(to_ms)).step_by(STATS_BUCKET_MS as usize)
}

/// One statistics counter to add to: `field` of `scope` (an endpoint id or
/// [`ALL_ENDPOINTS`]) in the bucket starting at `bucket_ms`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatsIncrement {
    pub scope: String,
    pub bucket_ms: u64,
    pub field: String,
    pub amount: i64,
}

/// A logged attempt with its id in the endpoint's log.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct AttemptEntry {
    pub id: String,
    #[serde(flatten)]
    pub log: AttemptLog,
}

/// A delivery whose attempts ran out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct DeadDelivery {
    pub id: String,
    pub kind: DeliveryKind,
    pub event_id: String,
    pub endpoint_id: String,
    pub tenant_id: String,
    #[serde(rename = "type")]
    pub event_type: String,
    pub attempts: u32,
    pub reason: String,
    pub dead_at: u64,
    pub received_at: u64,
}

/// Filters of the dead-letter list and of bulk replay.
#[derive(Debug, Clone, Default)]
pub struct DeadQuery {
    /// Only these endpoints (a tenant's); `None` for all.
    pub endpoint_ids: Option<Vec<String>>,
    pub event_type: Option<String>,
    /// Dead at or after / at or before, Unix ms.
    pub from_ms: Option<u64>,
    pub to_ms: Option<u64>,
    pub cursor: Option<String>,
    pub limit: usize,
}

impl DeadQuery {
    pub fn matches(&self, d: &DeadDelivery) -> bool {
        self.endpoint_ids
            .as_ref()
            .is_none_or(|ids| ids.contains(&d.endpoint_id))
            && self.event_type.as_ref().is_none_or(|t| &d.event_type == t)
    }
}

/// Where an event's delivery to one endpoint stands. Ordered from worst to best, so the worst
/// of an event's deliveries is its overall status.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum DeliveryStatus {
    /// Its attempts ran out (or the endpoint is gone): in the dead letters.
    Dead,
    /// The last attempt failed; another is scheduled.
    Failed,
    /// A retry is under way.
    Delivering,
    /// The first attempt has not been made yet.
    Pending,
    Delivered,
    /// Not delivered: the endpoint orders by conversation and a later status of the same
    /// WhatsApp message came first, so this one would have taken the message back.
    Stale,
}

/// The state of an event's delivery to one endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct DeliveryState {
    pub endpoint_id: String,
    pub status: DeliveryStatus,
    /// Attempts made so far.
    pub attempts: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_attempt_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dead_id: Option<String>,
}

impl DeliveryState {
    /// A delivery routed to `endpoint_id` that nothing has happened to yet.
    pub fn pending(endpoint_id: String) -> DeliveryState {
        DeliveryState {
            endpoint_id,
            status: DeliveryStatus::Pending,
            attempts: 0,
            last_attempt_id: None,
            dead_id: None,
        }
    }
}

/// The overall state of an event from its deliveries: the worst one wins.
pub fn overall_status(states: &[DeliveryState]) -> Option<DeliveryStatus> {
    states.iter().map(|d| d.status).min()
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DeliveryGauges {
    /// Deliveries entries not yet read by the delivery group.
    pub lag: u64,
    /// Read but not yet acknowledged.
    pub pending: u64,
    /// Waiting in the retry set.
    pub scheduled: u64,
    /// Of those, already due.
    pub due: u64,
    pub dead: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(status: DeliveryStatus) -> DeliveryState {
        DeliveryState {
            status,
            ..DeliveryState::pending("e".into())
        }
    }

    #[test]
    fn the_worst_delivery_decides_the_event_status() {
        use DeliveryStatus::*;
        assert_eq!(
            overall_status(&[state(Delivered), state(Failed), state(Pending)]),
            Some(Failed)
        );
        assert_eq!(overall_status(&[state(Delivered)]), Some(Delivered));
        assert_eq!(overall_status(&[state(Dead), state(Failed)]), Some(Dead));
        assert_eq!(overall_status(&[]), None);
    }

    #[test]
    fn statuses_read_as_lowercase_words() {
        assert_eq!(
            serde_json::to_string(&DeliveryStatus::Delivering).unwrap(),
            "\"delivering\""
        );
    }
}
