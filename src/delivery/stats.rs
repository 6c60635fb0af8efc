//! Delivery statistics kept in Redis as counters per endpoint and five-minute bucket: attempts,
//! successes, failures, a latency histogram and counts per event type. Quantiles come from
//! the histogram (upper bound of the bucket that holds them).

use std::collections::BTreeMap;

use serde::Serialize;

use crate::model::{ALL_ENDPOINTS, NextStep, Resolution, StatsIncrement, stats_bucket_of};

/// Upper bounds (ms) of the latency histogram; one more bucket holds everything slower.
pub const LATENCY_BOUNDS_MS: &[u64] = &[
    5, 10, 25, 50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 30_000, 60_000,
];

/// The histogram field of a latency.
pub fn latency_field(ms: u64) -> String {
    let i = LATENCY_BOUNDS_MS
        .iter()
        .position(|b| ms <= *b)
        .unwrap_or(LATENCY_BOUNDS_MS.len());
    format!("l{i}")
}

/// What one attempt adds to its bucket's counters.
pub fn attempt_fields(success: bool, latency_ms: u64, event_type: &str) -> [String; 4] {
    [
        "attempts".to_string(),
        if success { "successes" } else { "failures" }.to_string(),
        latency_field(latency_ms),
        format!("t:{event_type}"),
    ]
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, utoipa::ToSchema)]
pub struct DeliveryStats {
    pub attempts: u64,
    pub successes: u64,
    pub failures: u64,
    /// Successes over attempts; absent without attempts.
    pub success_rate: Option<f64>,
    pub p50_ms: Option<u64>,
    pub p95_ms: Option<u64>,
    /// Event types by attempts, most first (at most 10).
    pub top_event_types: Vec<TypeCount>,
    /// Attempts to deliver test suites' samples, left out of every figure above.
    pub test_attempts: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_success: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_failure: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct TypeCount {
    #[serde(rename = "type")]
    pub event_type: String,
    pub attempts: u64,
}

/// Sums bucket hashes (field → count) into statistics.
pub fn summarize<'a>(
    buckets: impl IntoIterator<Item = &'a BTreeMap<String, u64>>,
) -> DeliveryStats {
    let mut total: BTreeMap<&str, u64> = BTreeMap::new();
    for b in buckets {
        for (k, v) in b {
            *total.entry(k.as_str()).or_default() += v;
        }
    }
    let get = |k: &str| total.get(k).copied().unwrap_or(0);
    let histogram: Vec<u64> = (0..=LATENCY_BOUNDS_MS.len())
        .map(|i| get(&format!("l{i}")))
        .collect();
    let mut types: Vec<TypeCount> = total
        .iter()
        .filter_map(|(k, v)| {
            k.strip_prefix("t:").map(|t| TypeCount {
                event_type: t.to_string(),
                attempts: *v,
            })
        })
        .collect();
    types.sort_by(|a, b| {
        b.attempts
            .cmp(&a.attempts)
            .then(a.event_type.cmp(&b.event_type))
    });
    types.truncate(10);
    let attempts = get("attempts");
    DeliveryStats {
        attempts,
        successes: get("successes"),
        failures: get("failures"),
        success_rate: (attempts > 0).then(|| get("successes") as f64 / attempts as f64),
        p50_ms: quantile(&histogram, 0.50),
        p95_ms: quantile(&histogram, 0.95),
        top_event_types: types,
        test_attempts: get("test_attempts"),
        last_success: None,
        last_failure: None,
    }
}

/// The upper bound of the bucket holding quantile `q`; the slowest bucket reports the last
/// bound.
fn quantile(histogram: &[u64], q: f64) -> Option<u64> {
    let n: u64 = histogram.iter().sum();
    if n == 0 {
        return None;
    }
    let rank = ((n as f64) * q).ceil().max(1.0) as u64;
    let mut seen = 0;
    for (i, count) in histogram.iter().enumerate() {
        seen += count;
        if seen >= rank {
            let last = *LATENCY_BOUNDS_MS.last().expect("bounds are not empty");
            return Some(LATENCY_BOUNDS_MS.get(i).copied().unwrap_or(last));
        }
    }
    None
}

/// The counters a round of resolutions adds, summed per bucket: each attempt counts for its
/// endpoint and for [`ALL_ENDPOINTS`]. Ordered by scope and bucket, so the increments of one
/// statistics key are next to each other (a backend may then touch each key once).
pub fn increments(resolutions: &[Resolution]) -> Vec<StatsIncrement> {
    let mut sums: BTreeMap<(String, u64, String), i64> = BTreeMap::new();
    for r in resolutions {
        let Some(log) = &r.log else { continue };
        let bucket = stats_bucket_of(log.at);
        if r.test {
            // A test run's attempts stay out of the endpoint's figures.
            for scope in [r.endpoint_id.as_str(), ALL_ENDPOINTS] {
                *sums
                    .entry((scope.to_string(), bucket, "test_attempts".into()))
                    .or_default() += 1;
            }
            continue;
        }
        let success = r.next == NextStep::Delivered;
        for field in attempt_fields(success, log.duration_ms, &r.event_type) {
            for scope in [r.endpoint_id.as_str(), ALL_ENDPOINTS] {
                *sums
                    .entry((scope.to_string(), bucket, field.clone()))
                    .or_default() += 1;
            }
        }
    }
    sums.into_iter()
        .map(|((scope, bucket_ms, field), amount)| StatsIncrement {
            scope,
            bucket_ms,
            field,
            amount,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bucket(pairs: &[(&str, u64)]) -> BTreeMap<String, u64> {
        pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
    }

    #[test]
    fn buckets_sum_into_rates_quantiles_and_top_types() {
        let a = bucket(&[
            ("attempts", 10),
            ("successes", 9),
            ("failures", 1),
            ("l1", 9),
            ("l7", 1),
            ("t:whatsapp.messages", 7),
            ("t:page.feed", 3),
        ]);
        let b = bucket(&[
            ("attempts", 10),
            ("successes", 10),
            ("l1", 10),
            ("t:page.feed", 10),
        ]);
        let s = summarize([&a, &b]);
        assert_eq!((s.attempts, s.successes, s.failures), (20, 19, 1));
        assert_eq!(s.success_rate, Some(0.95));
        assert_eq!(s.p50_ms, Some(10));
        assert_eq!(s.p95_ms, Some(10));
        assert_eq!(
            s.top_event_types[0],
            TypeCount {
                event_type: "page.feed".into(),
                attempts: 13
            }
        );
    }

    #[test]
    fn a_slow_tail_shows_in_p95() {
        let h = bucket(&[("attempts", 100), ("l0", 90), ("l13", 10)]);
        let s = summarize([&h]);
        assert_eq!(s.p50_ms, Some(5));
        assert_eq!(s.p95_ms, Some(60_000));
        assert_eq!(summarize([]).p50_ms, None);
    }

    #[test]
    fn latencies_land_in_their_bucket_and_periods_cover_their_buckets() {
        assert_eq!(latency_field(0), "l0");
        assert_eq!(latency_field(5), "l0");
        assert_eq!(latency_field(6), "l1");
        assert_eq!(latency_field(1_000_000), "l13");
        assert_eq!(
            crate::model::stats_buckets(0, crate::model::STATS_BUCKET_MS * 2 + 1).count(),
            3
        );
    }

    #[test]
    fn a_test_samples_attempts_are_counted_apart_from_the_endpoints_figures() {
        use crate::model::{AttemptLog, DeliveryKind, NextStep, Resolution};
        let log = AttemptLog {
            endpoint_id: "ep".into(),
            kind: DeliveryKind::Event,
            event_id: "1-0".into(),
            event_type: "page.feed".into(),
            webhook_id: "evt_1-0".into(),
            attempt: 1,
            at: 0,
            duration_ms: 3,
            status: Some(200),
            error: None,
            response: String::new(),
        };
        let resolution = |test| Resolution {
            conversation: String::new(),
            kind: DeliveryKind::Event,
            subject: "1-0".into(),
            endpoint_id: "ep".into(),
            tenant_id: String::new(),
            event_type: "page.feed".into(),
            attempt: 1,
            received_at_ms: 0,
            test,
            next: NextStep::Delivered,
            log: Some(log.clone()),
        };
        let bucket = |incs: Vec<StatsIncrement>| -> BTreeMap<String, u64> {
            incs.into_iter()
                .filter(|i| i.scope == "ep")
                .map(|i| (i.field, i.amount as u64))
                .collect()
        };
        let s = summarize([&bucket(increments(&[resolution(true), resolution(false)]))]);
        assert_eq!((s.attempts, s.successes, s.test_attempts), (1, 1, 1));
        assert_eq!(s.top_event_types[0].attempts, 1);
    }

    #[test]
    fn increments_of_one_key_are_next_to_each_other() {
        use crate::model::{AttemptLog, DeliveryKind, NextStep, Resolution};
        let resolution = |ep: &str, at: u64, next: NextStep| Resolution {
            conversation: String::new(),
            kind: DeliveryKind::Event,
            subject: "1-0".into(),
            endpoint_id: ep.into(),
            tenant_id: "t".into(),
            event_type: "whatsapp.messages".into(),
            attempt: 1,
            received_at_ms: 0,
            test: false,
            next,
            log: Some(AttemptLog {
                endpoint_id: ep.into(),
                kind: DeliveryKind::Event,
                event_id: "1-0".into(),
                event_type: "whatsapp.messages".into(),
                webhook_id: "evt_1-0".into(),
                attempt: 1,
                at,
                duration_ms: 3,
                status: Some(200),
                error: None,
                response: String::new(),
            }),
        };
        let bucket = crate::model::STATS_BUCKET_MS;
        let incs = increments(&[
            resolution("b", 0, NextStep::Delivered),
            resolution("a", bucket, NextStep::Delivered),
            resolution("b", bucket, NextStep::Retry { due_ms: 0 }),
            resolution("a", 0, NextStep::Delivered),
        ]);
        let keys: Vec<(&str, u64)> = incs
            .iter()
            .map(|i| (i.scope.as_str(), i.bucket_ms))
            .collect();
        let mut seen = Vec::new();
        for w in keys.windows(2) {
            if w[0] != w[1] {
                assert!(
                    !seen.contains(&w[1]),
                    "{:?} comes back after others: {keys:?}",
                    w[1]
                );
                seen.push(w[0]);
            }
        }
        let total: i64 = incs
            .iter()
            .filter(|i| i.scope == ALL_ENDPOINTS && i.field == "attempts")
            .map(|i| i.amount)
            .sum();
        assert_eq!(total, 4);
    }
}
