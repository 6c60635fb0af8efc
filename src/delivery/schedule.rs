//! When to try again: the retry schedule with jitter, `Retry-After`, and what a response means.

use std::time::{Duration, SystemTime};

/// What an attempt's result asks for next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Delivered,
    /// Try again; `after` is the receiver's own `Retry-After`, already clamped.
    Retry {
        after: Option<Duration>,
    },
    /// `410 Gone`: the receiver asks never to be called again.
    Gone,
}

/// Classifies a response (`status`), or a failure to get one (`None`: connect error, timeout).
/// 2xx delivers; 410 disables; everything else retries, honouring `Retry-After` on 429 and 503.
pub fn classify(status: Option<u16>, retry_after: Option<&str>, max: Duration) -> Verdict {
    match status {
        Some(200..=299) => Verdict::Delivered,
        Some(410) => Verdict::Gone,
        Some(429 | 503) => Verdict::Retry {
            after: retry_after
                .and_then(|v| parse_retry_after(v, SystemTime::now()))
                .map(|d| d.min(max)),
        },
        _ => Verdict::Retry { after: None },
    }
}

/// `Retry-After` as delay-seconds or an HTTP date.
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let when = httpdate::parse_http_date(value).ok()?;
    Some(when.duration_since(now).unwrap_or(Duration::ZERO))
}

/// The delay before the attempt after `attempt` (1-based) failed, or `None` when that was the
/// last one. `schedule[n]` is the delay before attempt `n + 1`; `jitter` moves it by up to
/// that fraction either way (`unit` in `[0, 1)` picks where); a `Retry-After` replaces it.
pub fn next_delay(
    schedule: &[Duration],
    attempt: u32,
    jitter: f64,
    unit: f64,
    retry_after: Option<Duration>,
) -> Option<Duration> {
    let base = *schedule.get(attempt as usize)?;
    if let Some(after) = retry_after {
        return Some(after);
    }
    let factor = 1.0 + jitter * (2.0 * unit - 1.0);
    Some(base.mul_f64(factor.max(0.0)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schedule() -> Vec<Duration> {
        [0, 5, 30, 120].map(Duration::from_secs).to_vec()
    }

    #[test]
    fn each_failure_waits_for_the_next_delay_and_the_last_one_ends_it() {
        let s = schedule();
        assert_eq!(
            next_delay(&s, 1, 0.0, 0.5, None),
            Some(Duration::from_secs(5))
        );
        assert_eq!(
            next_delay(&s, 3, 0.0, 0.5, None),
            Some(Duration::from_secs(120))
        );
        assert_eq!(next_delay(&s, 4, 0.0, 0.5, None), None);
    }

    #[test]
    fn jitter_stays_within_its_fraction() {
        let s = schedule();
        let low = next_delay(&s, 2, 0.2, 0.0, None).unwrap();
        let high = next_delay(&s, 2, 0.2, 0.999_999, None).unwrap();
        assert_eq!(low, Duration::from_secs(24));
        assert!(high > Duration::from_secs(35) && high <= Duration::from_secs(36));
    }

    #[test]
    fn retry_after_replaces_the_delay_but_not_the_attempt_limit() {
        let s = schedule();
        let after = Some(Duration::from_secs(7));
        assert_eq!(next_delay(&s, 1, 0.2, 0.9, after), after);
        assert_eq!(next_delay(&s, 4, 0.2, 0.9, after), None);
    }

    #[test]
    fn responses_are_classified() {
        let max = Duration::from_secs(60);
        assert_eq!(classify(Some(204), None, max), Verdict::Delivered);
        assert_eq!(classify(Some(410), None, max), Verdict::Gone);
        assert_eq!(
            classify(Some(500), None, max),
            Verdict::Retry { after: None }
        );
        assert_eq!(
            classify(Some(404), Some("3"), max),
            Verdict::Retry { after: None }
        );
        assert_eq!(classify(None, None, max), Verdict::Retry { after: None });
        assert_eq!(
            classify(Some(429), Some("3"), max),
            Verdict::Retry {
                after: Some(Duration::from_secs(3))
            }
        );
        assert_eq!(
            classify(Some(503), Some("86400"), max),
            Verdict::Retry { after: Some(max) }
        );
    }

    #[test]
    fn retry_after_accepts_an_http_date() {
        let now = httpdate::parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT").unwrap();
        let later = "Sun, 06 Nov 1994 08:50:37 GMT";
        assert_eq!(parse_retry_after(later, now), Some(Duration::from_secs(60)));
        assert_eq!(parse_retry_after("soon", now), None);
    }
}
