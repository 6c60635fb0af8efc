//! Turning one journal entry into what the store commits: its events, or a quarantine record.
//! Plain function; the `Normalizer` actor only feeds it and commits the result.

use crate::delivery::routes::RouteTable;
use crate::meta::split;
use crate::model::test_suite::TestSuite;
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
        Ok(mut s) => {
            // A test run's samples repeat ids across runs: each run is its own dedup scope.
            if let Some((_, run)) = crate::suites::test_of(&entry.request_id) {
                for e in &mut s.events {
                    e.dedup_key = e.dedup_key.scoped(run);
                }
            }
            Normalized::Events {
                journal_id: record.id,
                source: entry.source,
                received_at_ms: entry.received_at_ms,
                object: s.object,
                request_id: entry.request_id,
                routing: Vec::new(),
                events: s.events,
            }
        }
        Err(e) => Normalized::Quarantine {
            journal_id: record.id,
            error: e.to_string(),
            entry,
        },
    }
}

/// Keeps, of a test sample's routes, those to the endpoints its suite names; none when the
/// suite is gone.
pub fn restrict_to_suite(item: &mut Normalized, suite: Option<&TestSuite>) {
    let Normalized::Events { routing, .. } = item else {
        return;
    };
    for r in routing.iter_mut() {
        let keep = |ep: &String| suite.is_some_and(|s| s.endpoint_ids.contains(ep));
        r.endpoints.retain(keep);
        r.ordered.retain(keep);
        r.raw_endpoints.retain(keep);
        r.owners.retain(|(ep, _)| keep(ep));
        // A suite's endpoints all belong to its owner: only that tenant's index gets the event.
        r.tenants.clear();
        if let Some(s) = suite
            && !s.tenant_id.is_empty()
            && !(r.endpoints.is_empty() && r.raw_endpoints.is_empty())
        {
            r.tenants.push(s.tenant_id.clone());
        }
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
            if target.ordered {
                r.ordered.push(target.endpoint_id.to_string());
            }
            if !target.tenant_id.is_empty() {
                r.owners
                    .push((target.endpoint_id.to_string(), target.tenant_id.to_string()));
            }
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

    const FEED: &str = r#"{"object":"page","entry":[{"id":"1","time":1,"changes":[{"field":"feed","value":{"item":"status","verb":"add","post_id":"1_2"}}]}]}"#;

    fn with_request_id(body: &str, request_id: &str) -> Normalized {
        let mut r = record(body);
        if let Some(e) = r.entry.as_mut() {
            e.request_id = request_id.into();
        }
        normalize(r)
    }

    fn keys(n: &Normalized) -> Vec<String> {
        match n {
            Normalized::Events { events, .. } => events
                .iter()
                .map(|e| e.dedup_key.as_str().to_string())
                .collect(),
            other => panic!("expected events, got {other:?}"),
        }
    }

    #[test]
    fn a_test_samples_events_are_recognised_within_its_run_alone() {
        let real = keys(&with_request_id(FEED, "r"));
        let run1 = keys(&with_request_id(
            FEED,
            &crate::suites::request_id("ts", "run_1", 0),
        ));
        let run1_again = keys(&with_request_id(
            FEED,
            &crate::suites::request_id("ts", "run_1", 1),
        ));
        let run2 = keys(&with_request_id(
            FEED,
            &crate::suites::request_id("ts", "run_2", 0),
        ));
        assert_ne!(real, run1);
        assert_ne!(run1, run2);
        assert_eq!(run1, run1_again);
    }

    #[test]
    fn a_test_sample_goes_only_to_its_suites_endpoints_and_owner() {
        let suite = TestSuite {
            id: "ts".into(),
            name: String::new(),
            tenant_id: "t_a".into(),
            source: "s".into(),
            object: "page".into(),
            account_id: "1".into(),
            endpoint_ids: vec!["ep_mine".into()],
            types: vec![],
            created_at: 0,
            runs: vec![],
        };
        let routed = || {
            let mut n = with_request_id(FEED, &crate::suites::request_id("ts", "r", 0));
            if let Normalized::Events { routing, .. } = &mut n {
                routing.push(Routing {
                    endpoints: vec!["ep_mine".into(), "ep_other".into()],
                    ordered: vec!["ep_other".into()],
                    raw_endpoints: vec!["ep_raw".into()],
                    tenants: vec!["t_a".into(), "t_b".into()],
                    owners: vec![
                        ("ep_mine".into(), "t_a".into()),
                        ("ep_other".into(), "t_b".into()),
                    ],
                });
            }
            n
        };
        let routing = |n: Normalized| match n {
            Normalized::Events { mut routing, .. } => routing.remove(0),
            other => panic!("{other:?}"),
        };
        let mut n = routed();
        restrict_to_suite(&mut n, Some(&suite));
        assert_eq!(
            routing(n),
            Routing {
                endpoints: vec!["ep_mine".into()],
                ordered: vec![],
                raw_endpoints: vec![],
                tenants: vec!["t_a".into()],
                owners: vec![("ep_mine".into(), "t_a".into())],
            }
        );
        let mut gone = routed();
        restrict_to_suite(&mut gone, None);
        assert_eq!(routing(gone), Routing::default());
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
