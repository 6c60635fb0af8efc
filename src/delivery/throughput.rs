//! How fast an endpoint's lane completes attempts, to size how much of the instance's room it
//! may hold. A lane that keeps up may queue about a second of its own work; a slow or dead one
//! keeps its small fixed share, so it cannot hold what other endpoints need.

use std::time::{Duration, Instant};

/// Completions are folded into the estimate once per window.
const WINDOW: Duration = Duration::from_millis(250);

/// An exponentially weighted rate of completions per second.
#[derive(Debug, Clone)]
pub struct Throughput {
    per_second: f64,
    count: u64,
    since: Instant,
}

impl Throughput {
    pub fn new(now: Instant) -> Throughput {
        Throughput {
            per_second: 0.0,
            count: 0,
            since: now,
        }
    }

    pub fn record(&mut self, now: Instant) {
        self.count += 1;
        self.fold(now);
    }

    /// The current estimate; an endpoint that stopped answering decays towards zero.
    pub fn per_second(&mut self, now: Instant) -> f64 {
        self.fold(now);
        self.per_second
    }

    fn fold(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.since);
        if elapsed < WINDOW {
            return;
        }
        let observed = self.count as f64 / elapsed.as_secs_f64();
        // Half of the old estimate per window: a burst counts, an idle second forgets it.
        let windows = (elapsed.as_secs_f64() / WINDOW.as_secs_f64()).min(16.0);
        let keep = 0.5f64.powf(windows);
        self.per_second = self.per_second * keep + observed * (1.0 - keep);
        self.count = 0;
        self.since = now;
    }
}

/// Attempts a lane may hold: its fixed share, or what it completes within `drain`, whichever is
/// more, but never more than `ceiling`.
pub fn lane_room(share: usize, per_second: f64, drain: Duration, ceiling: usize) -> usize {
    let earned = (per_second * drain.as_secs_f64()) as usize;
    share.max(earned).min(ceiling).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn a_steady_stream_of_completions_is_measured_per_second() {
        let t0 = Instant::now();
        let mut t = Throughput::new(t0);
        // 1000 completions a second for two seconds.
        for i in 0..2000u64 {
            t.record(t0 + Duration::from_micros(i * 1000));
        }
        let rate = t.per_second(t0 + ms(2000));
        assert!((900.0..1100.0).contains(&rate), "{rate}");
    }

    #[test]
    fn an_endpoint_that_stops_answering_decays_to_nothing() {
        let t0 = Instant::now();
        let mut t = Throughput::new(t0);
        for i in 0..1000u64 {
            t.record(t0 + Duration::from_micros(i * 1000));
        }
        assert!(t.per_second(t0 + ms(1000)) > 500.0);
        assert!(t.per_second(t0 + ms(5000)) < 1.0);
    }

    #[test]
    fn a_fast_lane_earns_room_and_a_slow_one_keeps_its_share() {
        assert_eq!(lane_room(128, 10_000.0, ms(1000), 2048), 2048);
        assert_eq!(lane_room(128, 1_000.0, ms(1000), 2048), 1000);
        assert_eq!(lane_room(128, 3.0, ms(1000), 2048), 128);
        assert_eq!(lane_room(0, 0.0, ms(1000), 2048), 1);
    }
}
