//! Reading Redis replies (RESP2 and RESP3 shapes) into hookd's types.

use crate::model::test_suite::TestOrigin;
use bytes::Bytes;
use redis::Value;
use serde_json::value::RawValue;

use crate::model::delivery::*;
use crate::store::StoreError;
use crate::store::ids::EntryId;
use crate::store::types::*;

/// The script's answer for one entry: per event its new id, or `None` for a duplicate.
pub(super) fn event_ids(
    reply: Option<Value>,
    expected: usize,
) -> Result<Vec<Option<String>>, StoreError> {
    let items = match reply {
        Some(Value::Array(items)) if items.len() == expected => items,
        other => {
            return Err(StoreError::Protocol(format!(
                "commit entry reply: {other:?}"
            )));
        }
    };
    items
        .into_iter()
        .map(|v| match v {
            Value::Int(0) => Ok(None),
            other => value_string(&other)
                .map(Some)
                .ok_or_else(|| StoreError::Protocol(format!("commit event id: {other:?}"))),
        })
        .collect()
}

/// The fields of `group` in an `XINFO GROUPS` reply.
fn group_info(groups: Value, group: &str) -> Option<Vec<(String, Value)>> {
    let Value::Array(groups) = groups else {
        return None;
    };
    groups.into_iter().find_map(|g| {
        let pairs: Vec<(String, Value)> = match g {
            Value::Array(flat) => flat
                .chunks(2)
                .filter_map(|kv| Some((value_string(&kv[0])?, kv.get(1)?.clone())))
                .collect(),
            Value::Map(map) => map
                .into_iter()
                .filter_map(|(k, v)| Some((value_string(&k)?, v)))
                .collect(),
            _ => return None,
        };
        let name = pairs.iter().find(|(k, _)| k == "name").map(|(_, v)| v);
        (name.and_then(value_string).as_deref() == Some(group)).then_some(pairs)
    })
}

/// What `XINFO GROUPS` says of one group.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct GroupBacklog {
    pub pending: u64,
    /// Entries not yet read; `None` when Redis cannot tell (after `XGROUP SETID`, deleted
    /// entries in the range, …).
    pub lag: Option<u64>,
    pub last_delivered: Option<String>,
}

/// The backlog of `group` from an `XINFO GROUPS` reply; a missing group has none.
pub(super) fn group_backlog(groups: Value, group: &str) -> GroupBacklog {
    let Some(pairs) = group_info(groups, group) else {
        return GroupBacklog {
            lag: Some(0),
            ..GroupBacklog::default()
        };
    };
    let field = |name: &str| pairs.iter().find(|(k, _)| k == name).map(|(_, v)| v);
    let num = |name: &str| match field(name) {
        Some(Value::Int(n)) => Some(*n as u64),
        _ => None,
    };
    GroupBacklog {
        pending: num("pending").unwrap_or(0),
        lag: num("lag"),
        last_delivered: field("last-delivered-id").and_then(value_string),
    }
}

/// The last id handed to `group`, from an `XINFO GROUPS` reply.
pub(super) fn group_last_delivered(groups: Value, group: &str) -> Option<String> {
    let pairs = group_info(groups, group)?;
    pairs
        .iter()
        .find(|(k, _)| k == "last-delivered-id")
        .and_then(|(_, v)| value_string(v))
}

/// A stream entry's fields, as received.
pub(crate) struct Fields(Vec<(Vec<u8>, Vec<u8>)>);

impl Fields {
    pub(super) fn bytes(&self, name: &str) -> Option<&[u8]> {
        self.0
            .iter()
            .find(|(k, _)| k == name.as_bytes())
            .map(|(_, v)| v.as_slice())
    }

    pub(super) fn text(&self, name: &str) -> String {
        self.bytes(name)
            .map(|b| String::from_utf8_lossy(b).into_owned())
            .unwrap_or_default()
    }

    pub(super) fn number(&self, name: &str) -> u64 {
        self.bytes(name)
            .and_then(|b| std::str::from_utf8(b).ok())
            .and_then(|s| s.parse().ok())
            .unwrap_or(0)
    }
}

pub(super) fn value_string(v: &Value) -> Option<String> {
    match v {
        Value::BulkString(b) => Some(String::from_utf8_lossy(b).into_owned()),
        Value::SimpleString(s) => Some(s.clone()),
        _ => None,
    }
}

pub(super) fn value_bytes(v: Value) -> Option<Vec<u8>> {
    match v {
        Value::BulkString(b) => Some(b),
        Value::SimpleString(s) => Some(s.into_bytes()),
        Value::Int(n) => Some(n.to_string().into_bytes()),
        _ => None,
    }
}

/// `[[id, [field, value, …] | nil], …]` (XRANGE, XREVRANGE, one stream of XREADGROUP).
/// A nil field list means the entry was deleted while still pending.
pub(super) fn parse_entries(v: Value) -> Result<Vec<(String, Option<Fields>)>, StoreError> {
    let items = match v {
        Value::Array(items) => items,
        Value::Nil => return Ok(Vec::new()),
        other => return Err(StoreError::Protocol(format!("stream entries: {other:?}"))),
    };
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        let Value::Array(mut pair) = item else {
            return Err(StoreError::Protocol("stream entry is not a pair".into()));
        };
        if pair.len() != 2 {
            return Err(StoreError::Protocol("stream entry is not a pair".into()));
        }
        let fields_value = pair.pop().unwrap_or(Value::Nil);
        let id = pair
            .pop()
            .and_then(|v| value_string(&v))
            .ok_or_else(|| StoreError::Protocol("stream entry id".into()))?;
        let fields = match fields_value {
            Value::Array(flat) => {
                let mut fields = Vec::with_capacity(flat.len() / 2);
                let mut it = flat.into_iter();
                while let (Some(k), Some(v)) = (it.next(), it.next()) {
                    if let (Some(k), Some(v)) = (value_bytes(k), value_bytes(v)) {
                        fields.push((k, v));
                    }
                }
                Some(Fields(fields))
            }
            _ => None,
        };
        out.push((id, fields));
    }
    Ok(out)
}

/// `[[stream, entries], …]` or a map of stream to entries (XREADGROUP); nil on timeout.
pub(super) type StreamEntries = Vec<(String, Option<Fields>)>;

pub(super) fn parse_read_reply(v: Value) -> Result<Vec<(String, StreamEntries)>, StoreError> {
    let streams: Vec<(Value, Value)> = match v {
        Value::Nil => return Ok(Vec::new()),
        Value::Array(items) => items
            .into_iter()
            .filter_map(|s| match s {
                Value::Array(mut kv) if kv.len() == 2 => {
                    let entries = kv.pop()?;
                    let key = kv.pop()?;
                    Some((key, entries))
                }
                _ => None,
            })
            .collect(),
        Value::Map(map) => map,
        other => return Err(StoreError::Protocol(format!("XREADGROUP: {other:?}"))),
    };
    streams
        .into_iter()
        .map(|(k, entries)| {
            Ok((
                value_string(&k).unwrap_or_default(),
                parse_entries(entries)?,
            ))
        })
        .collect()
}

/// A journal entry from its fields. One written by something else than hookd may lack its body:
/// it is then read with an empty one, so it ends in the quarantine instead of wedging the
/// consumer.
pub(super) fn journal_entry(f: &Fields) -> JournalEntry {
    JournalEntry {
        source: f.text("source"),
        received_at_ms: f.number("received_at"),
        request_id: f.text("request_id"),
        signature: f.text("signature"),
        user_agent: f.text("user_agent"),
        body: Bytes::copy_from_slice(f.bytes("body").unwrap_or_default()),
    }
}

pub(super) fn stored_event(id: String, f: &Fields) -> Result<StoredEvent, StoreError> {
    let data = RawValue::from_string(f.text("data"))
        .map_err(|e| StoreError::Protocol(format!("event {id} data: {e}")))?;
    let occurred = f.number("occurred_at");
    Ok(StoredEvent {
        event_type: f.text("type"),
        platform: f.text("platform"),
        account_id: f.text("account"),
        source: f.text("source"),
        object: f.text("object"),
        received_at: f.number("received_at"),
        occurred_at: (occurred > 0).then_some(occurred),
        journal_id: f.text("journal_id"),
        test: TestOrigin::of(&f.text("request_id")),
        request_id: f.text("request_id"),
        data,
        identity: identity_members(&f.text("who"))?,
        endpoints: f
            .text("eps")
            .split(',')
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect(),
        id,
    })
}

/// What a deliveries entry asks for, before the events it names are read.
#[derive(Debug, PartialEq)]
pub(super) enum Queued {
    /// The routed events from `from` to `to` of the events stream, first attempt each to the
    /// endpoints its event names that the span's lane holds (`eps`; all of them for a span
    /// queued before lanes existed).
    Span {
        from: String,
        to: String,
        eps: Option<Vec<String>>,
    },
    /// One event to these endpoints (a retry or a replay).
    Event {
        event_id: String,
        endpoints: Vec<String>,
        attempt: u32,
    },
    /// A raw request: the entry carries all it needs.
    Raw(Box<DeliveryRecord>),
}

impl Queued {
    /// The events stream range to read for it.
    pub(super) fn events_range(&self) -> Option<(&str, &str)> {
        match self {
            Queued::Span { from, to, .. } => Some((from, to)),
            Queued::Event { event_id, .. } => Some((event_id, event_id)),
            Queued::Raw(_) => None,
        }
    }
}

fn endpoint_list(text: &str) -> Vec<String> {
    text.split(',')
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

/// A deliveries entry; `None` when it is not one hookd wrote (it is then acknowledged and
/// skipped rather than wedging the dispatcher).
pub(super) fn queued_of(id: &str, f: &Fields) -> Option<Queued> {
    let ids = |a: &str, b: &str| {
        let (a, b) = (f.text(a), f.text(b));
        (is_stream_id(&a) && is_stream_id(&b)).then_some((a, b))
    };
    let attempt = (f.number("att") as u32).max(1);
    match f.bytes("k")? {
        b"b" => ids("from", "to").map(|(from, to)| Queued::Span {
            from,
            to,
            eps: f.bytes("eps").map(|_| endpoint_list(&f.text("eps"))),
        }),
        b"e" => ids("ev", "ev").map(|(event_id, _)| Queued::Event {
            event_id,
            endpoints: endpoint_list(&f.text("eps")),
            attempt,
        }),
        b"r" => Some(Queued::Raw(Box::new(DeliveryRecord {
            id: id.to_string(),
            kind: DeliveryKind::Raw,
            subject: f.text("ev"),
            endpoints: endpoint_list(&f.text("eps")),
            attempt,
            event_type: f.text("type"),
            platform: String::new(),
            account_id: f.text("account"),
            source: f.text("source"),
            received_at_ms: f.number("received_at"),
            occurred_at_ms: None,
            request_id: f.text("request_id"),
            data: String::new(),
            identity: String::new(),
            conversation: String::new(),
        }))),
        _ => None,
    }
}

/// The routed events of an entry, from the events stream's entries read for it (`events`,
/// in order). A span delivers each event to the endpoints it was routed to; a single event
/// to the endpoints the entry names. Events retention already trimmed are missing.
pub(super) fn deliveries_of(
    entry_id: &str,
    queued: Queued,
    events: Vec<(String, Option<Fields>)>,
) -> Vec<DeliveryRecord> {
    // A span's deliveries are first attempts to endpoints without ordering: never a
    // conversation's head.
    let in_span = matches!(queued, Queued::Span { .. });
    let record = |event_id: String, f: &Fields, endpoints: Vec<String>, attempt: u32| {
        let occurred = f.number("occurred_at");
        let conversation = if in_span {
            String::new()
        } else {
            f.text("conv")
        };
        DeliveryRecord {
            id: entry_id.to_string(),
            kind: DeliveryKind::Event,
            subject: event_id,
            endpoints,
            attempt,
            event_type: f.text("type"),
            platform: f.text("platform"),
            account_id: f.text("account"),
            source: f.text("source"),
            received_at_ms: f.number("received_at"),
            occurred_at_ms: (occurred > 0).then_some(occurred),
            request_id: f.text("request_id"),
            data: f.text("data"),
            identity: f.text("who"),
            conversation,
        }
    };
    match queued {
        Queued::Raw(r) => vec![*r],
        Queued::Span { eps: lane, .. } => events
            .into_iter()
            .filter_map(|(id, f)| {
                let f = f?;
                // Ordered endpoints take the event from its conversation's queue instead.
                let ordered = endpoint_list(&f.text("oeps"));
                let mut endpoints = endpoint_list(&f.text("eps"));
                endpoints.retain(|ep| {
                    !ordered.contains(ep) && lane.as_ref().is_none_or(|l| l.contains(ep))
                });
                (!endpoints.is_empty()).then(|| record(id, &f, endpoints, 1))
            })
            .collect(),
        Queued::Event {
            event_id,
            endpoints,
            attempt,
        } => events
            .into_iter()
            .filter(|(id, _)| *id == event_id)
            .filter_map(|(id, f)| Some(record(id, &f?, endpoints.clone(), attempt)))
            .take(1)
            .collect(),
    }
}

/// Reads `state:attempt[:log id[:dead id]]` as the scripts write it.
pub(super) fn delivery_state(endpoint_id: String, value: &str) -> DeliveryState {
    let mut parts = value.split(':');
    let status = match parts.next().unwrap_or_default() {
        "dead" => DeliveryStatus::Dead,
        "failed" => DeliveryStatus::Failed,
        "delivering" => DeliveryStatus::Delivering,
        "delivered" => DeliveryStatus::Delivered,
        "stale" => DeliveryStatus::Stale,
        _ => DeliveryStatus::Pending,
    };
    let attempts: u32 = parts.next().and_then(|a| a.parse().ok()).unwrap_or(0);
    let non_empty = |s: Option<&str>| s.filter(|s| !s.is_empty()).map(str::to_string);
    let last_attempt_id = non_empty(parts.next());
    let dead_id = non_empty(parts.next());
    // `pending:1` and `delivering:n` count the attempt about to be made: not made yet.
    let attempts = match status {
        DeliveryStatus::Pending | DeliveryStatus::Delivering => attempts.saturating_sub(1),
        _ => attempts,
    };
    DeliveryState {
        endpoint_id,
        status,
        attempts,
        last_attempt_id,
        dead_id,
    }
}

pub(super) fn dead_delivery(id: String, f: &Fields) -> DeadDelivery {
    DeadDelivery {
        id,
        kind: DeliveryKind::from_tag(&f.text("k")).unwrap_or(DeliveryKind::Event),
        event_id: f.text("ev"),
        endpoint_id: f.text("ep"),
        tenant_id: f.text("tenant"),
        event_type: f.text("type"),
        attempts: f.number("att") as u32,
        reason: f.text("reason"),
        dead_at: f.number("at"),
        received_at: f.number("received_at"),
    }
}

/// The attempts of one attempt-log entry, in the order they were logged: a JSON array whose
/// items are `{entry id}.{position}`, or (as written before attempts were grouped) one
/// object, which is the entry id itself.
pub(super) fn attempt_entries(id: &str, f: &Fields) -> Vec<AttemptEntry> {
    let Some(j) = f.bytes("j") else {
        return Vec::new();
    };
    if j.first() == Some(&b'[') {
        let logs: Vec<AttemptLog> = serde_json::from_slice(j).unwrap_or_default();
        logs.into_iter()
            .enumerate()
            .map(|(i, log)| AttemptEntry {
                id: format!("{id}.{i}"),
                log,
            })
            .collect()
    } else {
        serde_json::from_slice(j)
            .map(|log| AttemptEntry {
                id: id.to_string(),
                log,
            })
            .into_iter()
            .collect()
    }
}

/// An attempt id: its attempt-log entry id and, for grouped attempts, its position.
pub(super) fn attempt_id(id: &str) -> Option<(&str, Option<usize>)> {
    let (entry, position) = match id.split_once('.') {
        Some((entry, p)) => (entry, Some(p.parse().ok()?)),
        None => (id, None),
    };
    is_stream_id(entry).then_some((entry, position))
}

pub(super) fn quarantined_body(id: String, f: &Fields) -> QuarantinedBody {
    let body = f.bytes("body").unwrap_or_default();
    QuarantinedBody {
        source: f.text("source"),
        received_at: f.number("received_at"),
        journal_id: f.text("journal_id"),
        request_id: f.text("request_id"),
        error: f.text("error"),
        body_len: body.len(),
        body: String::from_utf8_lossy(body).into_owned(),
        id,
    }
}

pub(super) fn rejected_request(id: String, f: &Fields) -> RejectedRequest {
    RejectedRequest {
        id,
        rejection: Rejection {
            source: f.text("source"),
            reason: f.text("reason"),
            received_at_ms: f.number("received_at"),
            request_id: f.text("request_id"),
            remote_addr: f.text("remote_addr"),
            signature: f.text("signature"),
            body_len: f.number("body_len") as usize,
            body_prefix: f.text("body_prefix"),
        },
    }
}

/// `<ms>-<seq>`: anything else cannot name an entry and is not sent to Redis.
pub fn is_stream_id(s: &str) -> bool {
    EntryId::parse(s).is_some()
}

/// A stream id as a pair that orders as Redis orders ids.
pub fn parse_stream_id(s: &str) -> Option<(u64, u64)> {
    EntryId::parse(s).map(|id| (id.ms, id.seq))
}

/// The event ids an index entry stands for, newest first: those listed in its `ids` field
/// (one entry per index per batch), or the entry's own id (entries written one per event).
pub(super) fn index_entry_ids((id, fields): (String, Option<Fields>)) -> Vec<String> {
    let listed = fields.map(|f| f.text("ids")).unwrap_or_default();
    if listed.is_empty() {
        return vec![id];
    }
    listed.rsplit(',').map(str::to_string).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_read_as_the_scripts_write_them() {
        let d = delivery_state("ep".into(), "dead:8:1-1:2-2");
        assert_eq!(d.status, DeliveryStatus::Dead);
        assert_eq!(d.attempts, 8);
        assert_eq!(d.last_attempt_id.as_deref(), Some("1-1"));
        assert_eq!(d.dead_id.as_deref(), Some("2-2"));
        let p = delivery_state("ep".into(), "pending:1");
        assert_eq!(
            (p.status, p.attempts, p.last_attempt_id),
            (DeliveryStatus::Pending, 0, None)
        );
        let f = delivery_state("ep".into(), "failed:2:3-0");
        assert_eq!(
            (f.status, f.attempts, f.dead_id),
            (DeliveryStatus::Failed, 2, None)
        );
    }

    #[test]
    fn attempt_ids_name_an_entry_and_a_position_in_it() {
        assert_eq!(attempt_id("5-1.3"), Some(("5-1", Some(3))));
        assert_eq!(attempt_id("5-1"), Some(("5-1", None)));
        for bad in ["5-1.", "5-1.x", "5.1", "x-1.0", "5-1.-1", ""] {
            assert_eq!(attempt_id(bad), None, "{bad}");
        }
    }

    #[test]
    fn grouped_and_single_attempt_entries_both_read() {
        let log = r#"{"endpoint_id":"e","kind":"event","event_id":"1-0","type":"t","webhook_id":"w","attempt":1,"at":0,"duration_ms":1,"response":""}"#;
        let fields = |j: String| Fields(vec![(b"j".to_vec(), j.into_bytes())]);
        let grouped = attempt_entries("7-0", &fields(format!("[{log},{log}]")));
        let ids: Vec<&str> = grouped.iter().map(|a| a.id.as_str()).collect();
        assert_eq!(ids, ["7-0.0", "7-0.1"]);
        let single = attempt_entries("7-0", &fields(log.to_string()));
        assert_eq!(single.len(), 1);
        assert_eq!(single[0].id, "7-0");
        assert!(attempt_entries("7-0", &fields("nonsense".into())).is_empty());
    }

    #[test]
    fn stream_ids_order_numerically_not_as_text() {
        assert!(parse_stream_id("9-0") < parse_stream_id("10-0"));
        assert!(parse_stream_id("5-9") < parse_stream_id("5-10"));
        assert_eq!(parse_stream_id("5"), None);
        assert_eq!(parse_stream_id("a-1"), None);
    }

    #[test]
    fn an_index_entry_stands_for_its_listed_events_newest_first() {
        let listed = Fields(vec![(b"ids".to_vec(), b"7-0,7-1,7-2".to_vec())]);
        assert_eq!(
            index_entry_ids(("7-0".into(), Some(listed))),
            ["7-2", "7-1", "7-0"]
        );
        // Entries written one per event carry no list: the entry's id is the event's.
        let single = Fields(vec![(b"e".to_vec(), Vec::new())]);
        assert_eq!(index_entry_ids(("8-3".into(), Some(single))), ["8-3"]);
        assert_eq!(index_entry_ids(("8-4".into(), None)), ["8-4"]);
    }

    #[test]
    fn only_stream_ids_name_entries() {
        assert!(is_stream_id("1700000000000-0"));
        assert!(!is_stream_id("1700000000000"));
        assert!(!is_stream_id("-0"));
        assert!(!is_stream_id("+"));
        assert!(!is_stream_id("1-x"));
        assert!(!is_stream_id("1-+1"));
        assert!(!is_stream_id("99999999999999999999-0"), "past u64");
        assert!(!is_stream_id("1-99999999999999999999"), "past u64");
        assert!(is_stream_id("18446744073709551615-18446744073709551615"));
    }
}
