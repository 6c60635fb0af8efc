//! Which partition a request and its events belong to. A request goes to the partition of
//! each Meta account (envelope entry) it speaks of, so that all of an account's events, and
//! with them every conversation on it, are journaled, split and delivered in one partition.

use sha2::{Digest, Sha256};

use crate::store::Normalized;

/// Partition `index` of `count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Partition {
    pub index: usize,
    pub count: usize,
}

/// The partition of account (envelope entry) `entry_id`: the same on every instance and in
/// every version, hence a hash of fixed definition rather than the standard library's.
pub fn of_entry(entry_id: &str, count: usize) -> usize {
    if count <= 1 {
        return 0;
    }
    let digest = Sha256::digest(entry_id.as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    (u64::from_be_bytes(first) % count as u64) as usize
}

/// The partitions a request body's events go to, each once, the first entry's first: that one
/// forwards the request whole to raw endpoints and quarantines it if it cannot be split. A
/// body that cannot be read goes to partition 0 alone.
pub fn of_body(body: &[u8], count: usize) -> Vec<usize> {
    if count <= 1 {
        return vec![0];
    }
    let Some(entries) = crate::meta::envelope::entry_ids(body) else {
        return vec![0];
    };
    let mut out: Vec<usize> = Vec::new();
    for id in entries {
        let p = of_entry(&id, count);
        if !out.contains(&p) {
            out.push(p);
        }
    }
    if out.is_empty() {
        out.push(0);
    }
    out
}

/// Keeps, of split entry `item` journaled in `part`, what `part` stores: the events of its
/// accounts; raw deliveries and the quarantine only in the first account's partition (one
/// copy of the request does those).
pub fn keep_own(item: &mut Normalized, part: Partition) {
    if part.count <= 1 {
        return;
    }
    match item {
        Normalized::Events {
            events, routing, ..
        } => {
            let first = events.first().map(|e| of_entry(&e.entry_id, part.count));
            let keep: Vec<bool> = events
                .iter()
                .map(|e| of_entry(&e.entry_id, part.count) == part.index)
                .collect();
            let mut kept = keep.iter();
            events.retain(|_| kept.next().copied().unwrap_or(false));
            // Routing is attached later as a rule, but may be there already (one per event).
            let mut kept = keep.iter();
            routing.retain(|_| kept.next().copied().unwrap_or(false));
            if first != Some(part.index) {
                for r in routing.iter_mut() {
                    r.raw_endpoints.clear();
                }
            }
        }
        Normalized::Quarantine {
            journal_id, entry, ..
        } => {
            if of_body(&entry.body, part.count)[0] != part.index {
                *item = Normalized::Missing {
                    journal_id: std::mem::take(journal_id),
                };
            }
        }
        Normalized::Missing { .. } => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_account_always_has_the_same_partition() {
        // Fixed values: a change here would move every account of every deployment.
        assert_eq!(
            of_entry("102290129340398", 16),
            of_entry("102290129340398", 16)
        );
        let spread: std::collections::BTreeSet<usize> =
            (0..200).map(|i| of_entry(&format!("acct{i}"), 4)).collect();
        assert_eq!(spread.len(), 4, "accounts spread over every partition");
        assert_eq!(of_entry("anything", 1), 0);
    }

    #[test]
    fn a_body_goes_to_its_first_accounts_partition_first_and_to_each_once() {
        let count = 8;
        let (a, b) = (0..100)
            .map(|i| format!("page{i}"))
            .map(|id| (id.clone(), of_entry(&id, count)))
            .collect::<Vec<_>>()
            .windows(2)
            .find(|w| w[0].1 != w[1].1)
            .map(|w| (w[0].clone(), w[1].clone()))
            .expect("two accounts of different partitions");
        let body = format!(
            r#"{{"object":"page","entry":[{{"id":"{}"}},{{"id":"{}"}},{{"id":"{}"}}]}}"#,
            b.0, a.0, b.0
        );
        assert_eq!(of_body(body.as_bytes(), count), vec![b.1, a.1]);
    }

    #[test]
    fn an_unreadable_body_goes_to_partition_zero() {
        assert_eq!(of_body(b"{not json", 8), vec![0]);
        assert_eq!(of_body(br#"{"object":"page","entry":[]}"#, 8), vec![0]);
    }
}
