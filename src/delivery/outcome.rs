//! What follows an attempt: delivered, try again later, or give up.

use std::time::Duration;

use super::schedule::{Verdict, next_delay};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    Delivered,
    Retry {
        delay: Duration,
    },
    /// No attempts left.
    Dead,
    /// `410 Gone`: dead, and the endpoint is disabled.
    Gone,
}

/// Decides after attempt number `attempt` (1-based) ended with `verdict`. `unit` in `[0, 1)`
/// places the jitter.
pub fn after_attempt(
    verdict: Verdict,
    attempt: u32,
    schedule: &[Duration],
    jitter: f64,
    unit: f64,
) -> Next {
    match verdict {
        Verdict::Delivered => Next::Delivered,
        Verdict::Gone => Next::Gone,
        Verdict::Retry { after } => match next_delay(schedule, attempt, jitter, unit, after) {
            Some(delay) => Next::Retry { delay },
            None => Next::Dead,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_retry_until_the_schedule_runs_out() {
        let s = [0, 1, 2].map(Duration::from_secs);
        let fail = Verdict::Retry { after: None };
        assert_eq!(
            after_attempt(fail, 1, &s, 0.0, 0.5),
            Next::Retry {
                delay: Duration::from_secs(1)
            }
        );
        assert_eq!(after_attempt(fail, 3, &s, 0.0, 0.5), Next::Dead);
        assert_eq!(after_attempt(Verdict::Gone, 1, &s, 0.0, 0.5), Next::Gone);
        assert_eq!(
            after_attempt(Verdict::Delivered, 3, &s, 0.0, 0.5),
            Next::Delivered
        );
    }
}
