//! Whether each pipeline stage can reach its storage. A stage whose storage calls have all
//! failed for longer than a grace period makes the instance not ready: a load balancer or
//! orchestrator should send traffic elsewhere, and an operator should look.
//!
//! Plain shared state: the actors report each storage call's outcome, readiness reads it.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
struct Failing {
    since: Instant,
    last: Instant,
    error: String,
}

/// A stage that has failed for too long, as readiness shows it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FailingStage {
    pub stage: &'static str,
    pub failing_for_secs: u64,
    pub last_error: String,
}

/// Where one stage stands, as readiness lists every stage.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct StageState {
    /// `ok`, or `failing` since its last success (readiness fails only past the grace).
    pub state: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failing_for_secs: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}

/// Cheap to clone; every clone shares the same state.
#[derive(Debug, Clone, Default)]
pub struct StageHealth {
    failing: Arc<Mutex<BTreeMap<&'static str, Failing>>>,
    /// Every stage that has a handle, failing or not.
    known: Arc<Mutex<BTreeSet<&'static str>>>,
}

impl StageHealth {
    /// A storage call of `stage` succeeded: the stage is healthy again.
    pub fn succeeded(&self, stage: &'static str) {
        self.failing
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(stage);
    }

    /// A storage call of `stage` failed; the stage counts as failing from its first failure
    /// since the last success.
    pub fn failed(&self, stage: &'static str, error: &dyn std::fmt::Display) {
        self.failed_at(stage, error, Instant::now());
    }

    fn failed_at(&self, stage: &'static str, error: &dyn std::fmt::Display, now: Instant) {
        let mut failing = self.failing.lock().unwrap_or_else(PoisonError::into_inner);
        let entry = failing.entry(stage).or_insert_with(|| Failing {
            since: now,
            last: now,
            error: String::new(),
        });
        entry.last = now;
        entry.error = error.to_string();
    }

    /// Records the outcome of a storage call of `stage`.
    pub fn note<T, E: std::fmt::Display>(&self, stage: &'static str, result: &Result<T, E>) {
        match result {
            Ok(_) => self.succeeded(stage),
            Err(e) => self.failed(stage, e),
        }
    }

    /// `stage`'s handle, for the actor that runs it.
    pub fn stage(&self, stage: &'static str) -> StageReport {
        self.known
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(stage);
        StageReport {
            health: self.clone(),
            stage,
        }
    }

    /// Every stage with where it stands at `now`.
    pub fn states(&self, now: Instant) -> BTreeMap<&'static str, StageState> {
        let failing = self.failing.lock().unwrap_or_else(PoisonError::into_inner);
        let known = self.known.lock().unwrap_or_else(PoisonError::into_inner);
        known
            .iter()
            .chain(failing.keys())
            .map(|stage| {
                let state = match failing.get(stage) {
                    None => StageState {
                        state: "ok",
                        failing_for_secs: None,
                        last_error: None,
                    },
                    Some(f) => StageState {
                        state: "failing",
                        failing_for_secs: Some(now.saturating_duration_since(f.since).as_secs()),
                        last_error: Some(f.error.clone()),
                    },
                };
                (*stage, state)
            })
            .collect()
    }

    /// The stages that have failed for longer than `grace` at `now` and failed again within
    /// it. A stage that works on demand (ingress) and has not tried since is not held against
    /// readiness: its next call decides.
    pub fn failing_longer_than(&self, grace: Duration, now: Instant) -> Vec<FailingStage> {
        let failing = self.failing.lock().unwrap_or_else(PoisonError::into_inner);
        failing
            .iter()
            .filter(|(_, f)| {
                now.saturating_duration_since(f.since) > grace
                    && now.saturating_duration_since(f.last) <= grace
            })
            .map(|(stage, f)| FailingStage {
                stage,
                failing_for_secs: now.saturating_duration_since(f.since).as_secs(),
                last_error: f.error.clone(),
            })
            .collect()
    }
}

/// One stage's handle on [`StageHealth`].
#[derive(Debug, Clone)]
pub struct StageReport {
    health: StageHealth,
    stage: &'static str,
}

impl StageReport {
    /// Records the outcome of one of the stage's storage calls.
    pub fn note<T, E: std::fmt::Display>(&self, result: &Result<T, E>) {
        self.health.note(self.stage, result);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GRACE: Duration = Duration::from_secs(30);

    #[test]
    fn a_stage_fails_readiness_only_after_the_grace_period() {
        let h = StageHealth::default();
        let t0 = Instant::now();
        h.failed_at("normalizer", &"NOGROUP", t0);
        assert!(h.failing_longer_than(GRACE, t0 + GRACE / 2).is_empty());
        h.failed_at("normalizer", &"NOGROUP", t0 + GRACE);
        let failing = h.failing_longer_than(GRACE, t0 + GRACE + Duration::from_secs(1));
        assert_eq!(failing.len(), 1);
        assert_eq!(failing[0].stage, "normalizer");
        assert_eq!(failing[0].last_error, "NOGROUP");
        assert_eq!(failing[0].failing_for_secs, 31);
    }

    #[test]
    fn a_stage_that_stopped_trying_is_not_held_against_readiness() {
        let h = StageHealth::default();
        let t0 = Instant::now();
        h.failed_at("ingress", &"down", t0);
        h.failed_at("ingress", &"down", t0 + GRACE / 2);
        assert_eq!(
            h.failing_longer_than(GRACE, t0 + GRACE + GRACE / 4).len(),
            1
        );
        assert!(h.failing_longer_than(GRACE, t0 + GRACE * 2).is_empty());
    }

    #[test]
    fn repeated_failures_keep_the_first_failure_time() {
        let h = StageHealth::default();
        let t0 = Instant::now();
        h.failed_at("dispatcher", &"down", t0);
        h.failed_at("dispatcher", &"still down", t0 + GRACE);
        let failing = h.failing_longer_than(GRACE, t0 + GRACE + Duration::from_secs(1));
        assert_eq!(failing.len(), 1);
        assert_eq!(failing[0].last_error, "still down");
    }

    #[test]
    fn one_success_clears_a_failing_stage() {
        let h = StageHealth::default();
        let t0 = Instant::now();
        h.failed_at("ingress", &"down", t0);
        h.succeeded("ingress");
        assert!(h.failing_longer_than(GRACE, t0 + GRACE * 2).is_empty());
    }

    #[test]
    fn every_stage_with_a_handle_is_listed_ok_or_failing_with_its_error() {
        let h = StageHealth::default();
        let t0 = Instant::now();
        let _router = h.stage("router");
        let _dispatcher = h.stage("dispatcher");
        h.failed_at("dispatcher", &"down", t0);
        let states = h.states(t0 + Duration::from_secs(3));
        assert_eq!(states.len(), 2);
        assert_eq!(states["router"].state, "ok");
        assert_eq!(states["dispatcher"].state, "failing");
        assert_eq!(states["dispatcher"].failing_for_secs, Some(3));
        assert_eq!(states["dispatcher"].last_error.as_deref(), Some("down"));
    }

    #[test]
    fn a_stage_report_notes_failures_and_successes() {
        let h = StageHealth::default();
        let report = h.stage("router");
        report.note::<(), _>(&Err("x"));
        assert!(h.failing.lock().unwrap().contains_key("router"));
        report.note::<(), &str>(&Ok(()));
        assert!(h.failing.lock().unwrap().is_empty());
    }
}
