//! Turning one journal entry into what the store commits: its events, or a quarantine record.
//! Plain function; the `Normalizer` actor only feeds it and commits the result.

use crate::delivery::routes::RouteTable;
use crate::meta::split;
use crate::store::{JournalRecord, Normalized, Routing};

pub fn normalize(record: JournalRecord) -> Normalized {
    let Some(entry) = record.entry else {
        return Normalized::Missing {
            journal_id: record.id,
        };
    };
    // simd-json parses in place; the journaled bytes stay intact for the quarantine.
    let mut scratch = entry.body.to_vec();
    match split(&mut scratch) {
        Ok(s) => Normalized::Events {
            journal_id: record.id,
            source: entry.source,
            received_at_ms: entry.received_at_ms,
            object: s.object,
            request_id: entry.request_id,
            routing: Vec::new(),
            events: s.events,
        },
        Err(e) => Normalized::Quarantine {
            journal_id: record.id,
            error: e.to_string(),
            entry,
        },
    }
}

/// Looks every event of `item` up in the routing table; the commit then creates one delivery
/// per match along with the event.
pub fn attach_routes(table: &RouteTable, item: &mut Normalized) {
    let Normalized::Events {
        events, routing, ..
    } = item
    else {
        return;
    };
    routing.clear();
    if table.is_empty() {
        return;
    }
    for event in events.iter() {
        let mut r = Routing::default();
        for target in table.route(event) {
            let list = if target.raw {
                &mut r.raw_endpoints
            } else {
                &mut r.endpoints
            };
            list.push(target.endpoint_id.to_string());
            // Admin-owned endpoints (no tenant) have no tenant index.
            if !target.tenant_id.is_empty() && !r.tenants.iter().any(|t| **t == *target.tenant_id) {
                r.tenants.push(target.tenant_id.to_string());
            }
        }
        routing.push(r);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::JournalEntry;

    fn record(body: &str) -> JournalRecord {
        JournalRecord {
            id: "1-0".into(),
            entry: Some(JournalEntry {
                source: "s".into(),
                received_at_ms: 5,
                request_id: "r".into(),
                signature: "sha256=00".into(),
                user_agent: String::new(),
                body: bytes::Bytes::from(body.to_string()),
            }),
        }
    }

    #[test]
    fn a_bad_body_is_quarantined_with_its_exact_bytes() {
        match normalize(record("{not json")) {
            Normalized::Quarantine { entry, error, .. } => {
                assert_eq!(&entry.body[..], b"{not json");
                assert!(error.contains("not valid JSON"), "{error}");
            }
            other => panic!("expected quarantine, got {other:?}"),
        }
    }

    #[test]
    fn a_good_body_becomes_events() {
        let body = r#"{"object":"page","entry":[{"id":"1","time":1,"changes":[{"field":"feed","value":{"item":"status","verb":"add","post_id":"1_2"}}]}]}"#;
        match normalize(record(body)) {
            Normalized::Events { events, object, .. } => {
                assert_eq!(object, "page");
                assert_eq!(events.len(), 1);
            }
            other => panic!("expected events, got {other:?}"),
        }
    }

    #[test]
    fn a_trimmed_entry_is_only_acknowledged() {
        let r = JournalRecord {
            id: "9-0".into(),
            entry: None,
        };
        assert!(matches!(normalize(r), Normalized::Missing { journal_id } if journal_id == "9-0"));
    }
}
