//! Endpoint health after a round of outcomes: kept with the catalogue (the dashboard shows it,
//! a disabled endpoint leaves the routing table), so written by a script of its own on the
//! catalogue's slot once the round is committed in its partition.

use std::collections::BTreeMap;

use super::RedisStore;
use crate::model::delivery::{NextStep, Resolution};

/// What a round did to one endpoint.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(super) struct Round {
    pub succeeded: bool,
    pub failed: bool,
    pub gone: bool,
}

impl Round {
    /// As `health.lua` takes it.
    fn flags(self) -> String {
        [(self.succeeded, 's'), (self.failed, 'f'), (self.gone, 'g')]
            .into_iter()
            .filter_map(|(set, c)| set.then_some(c))
            .collect()
    }
}

/// Each endpoint's round, from its resolutions: only attempts count as failures (a delivery
/// dropped, deferred or given up without an attempt says nothing of the endpoint).
pub(super) fn rounds(resolutions: &[Resolution]) -> BTreeMap<&str, Round> {
    let mut out: BTreeMap<&str, Round> = BTreeMap::new();
    for r in resolutions {
        let attempted = r.log.is_some();
        let round = out.entry(r.endpoint_id.as_str()).or_default();
        match r.next {
            NextStep::Delivered => round.succeeded = true,
            NextStep::Retry { .. } => round.failed = true,
            NextStep::Dead { .. } => round.failed |= attempted,
            NextStep::Gone => {
                round.gone = true;
                round.failed |= attempted;
            }
            NextStep::Defer { .. } | NextStep::Drop => {}
        }
    }
    out.retain(|_, r| *r != Round::default());
    out
}

impl RedisStore {
    /// Notes the round's health. The round is committed already: a failure here is logged,
    /// not returned, for the caller would commit the round again.
    pub(super) async fn record_health(&self, resolutions: &[Resolution]) {
        let rounds = rounds(resolutions);
        if rounds.is_empty() {
            return;
        }
        let mut inv = self.scripts.health.prepare_invoke();
        inv.key(self.keys.endpoints_version())
            .arg(crate::time::unix_ms())
            .arg(self.disable_after.as_millis() as u64)
            .arg(self.keys.catalogue_prefix());
        for (endpoint, round) in rounds {
            inv.arg(endpoint).arg(round.flags());
        }
        if let Err(e) = self.run_script::<i64>("endpoint_health", inv).await {
            tracing::warn!(error = %e, "cannot record endpoint health; the next round will");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolution(endpoint: &str, next: NextStep, attempted: bool) -> Resolution {
        Resolution {
            next,
            ..crate::store::redis::deliveries::tests::resolution(endpoint, attempted)
        }
    }

    #[test]
    fn an_endpoint_that_failed_and_succeeded_in_one_round_has_both_noted() {
        let round = [
            resolution("a", NextStep::Retry { due_ms: 1 }, true),
            resolution("a", NextStep::Delivered, true),
        ];
        assert_eq!(rounds(&round)["a"].flags(), "sf");
    }

    #[test]
    fn only_attempts_count_as_failures() {
        let dead = |attempted| {
            let next = NextStep::Dead {
                reason: String::new(),
            };
            resolution("e", next, attempted)
        };
        assert!(rounds(&[dead(false)]).is_empty());
        assert_eq!(rounds(&[dead(true)])["e"].flags(), "f");
        assert!(rounds(&[resolution("e", NextStep::Defer { due_ms: 1 }, false)]).is_empty());
        assert!(rounds(&[resolution("e", NextStep::Drop, false)]).is_empty());
    }

    #[test]
    fn a_gone_endpoint_is_disabled_even_without_an_attempt_logged() {
        assert_eq!(
            rounds(&[resolution("g", NextStep::Gone, false)])["g"].flags(),
            "g"
        );
        assert_eq!(
            rounds(&[resolution("g", NextStep::Gone, true)])["g"].flags(),
            "fg"
        );
    }
}
