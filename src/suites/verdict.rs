//! What became of each sample of a run: accepted, split into events of its type, routed to the
//! suite's endpoints and delivered there.

use serde::Serialize;

use crate::model::test_suite::SentSample;
use crate::model::{DeliveryState, DeliveryStatus};

/// How long a run's samples may take to be split before a missing event counts as a failure.
pub const SPLIT_WITHIN_MS: u64 = 30_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Split into events of its type, each delivered to every suite endpoint that takes it.
    Passed,
    /// Not finished yet: not split, or a delivery still under way or being retried.
    Pending,
    /// None of the suite's endpoints takes the type: nothing to deliver.
    NotRouted,
    Failed,
}

/// One event of a sample, with its deliveries to the suite's endpoints.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct SampleEvent {
    pub id: String,
    #[serde(rename = "type")]
    pub event_type: String,
    pub deliveries: Vec<DeliveryState>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct TypeResult {
    #[serde(rename = "type")]
    pub event_type: String,
    pub outcome: Outcome,
    /// What failed, or what is awaited.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
    pub accepted: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub journal_id: Option<String>,
    pub events: Vec<SampleEvent>,
}

/// Judges one sample from what storage holds `age_ms` after the run started.
pub fn judge(sent: &SentSample, events: Vec<SampleEvent>, age_ms: u64) -> TypeResult {
    let (outcome, problem) = outcome_of(sent, &events, age_ms);
    TypeResult {
        event_type: sent.event_type.clone(),
        outcome,
        problem,
        accepted: sent.journal_id.is_some(),
        journal_id: sent.journal_id.clone(),
        events,
    }
}

fn outcome_of(sent: &SentSample, events: &[SampleEvent], age_ms: u64) -> (Outcome, Option<String>) {
    if sent.journal_id.is_none() {
        let why = sent.error.as_deref().unwrap_or("refused");
        return (
            Outcome::Failed,
            Some(format!("ingress answered {}: {why}", sent.status)),
        );
    }
    if events.is_empty() {
        return if age_ms < SPLIT_WITHIN_MS {
            (Outcome::Pending, Some("not split yet".into()))
        } else {
            (
                Outcome::Failed,
                Some("no event was stored (quarantined, or a duplicate?)".into()),
            )
        };
    }
    if let Some(other) = events.iter().find(|e| e.event_type != sent.event_type) {
        return (
            Outcome::Failed,
            Some(format!(
                "split into {}, not {}",
                other.event_type, sent.event_type
            )),
        );
    }
    let deliveries = || events.iter().flat_map(|e| &e.deliveries);
    if deliveries().next().is_none() {
        return (
            Outcome::NotRouted,
            Some("none of the suite's endpoints takes this type".into()),
        );
    }
    if let Some(d) = deliveries().find(|d| d.status == DeliveryStatus::Dead) {
        return (
            Outcome::Failed,
            Some(format!(
                "delivery to {} is dead after {} attempt(s)",
                d.endpoint_id, d.attempts
            )),
        );
    }
    match deliveries().find(|d| d.status != DeliveryStatus::Delivered) {
        None => (Outcome::Passed, None),
        Some(d) if d.status == DeliveryStatus::Failed => (
            Outcome::Pending,
            Some(format!(
                "delivery to {} failed {} time(s); retrying",
                d.endpoint_id, d.attempts
            )),
        ),
        Some(d) => (
            Outcome::Pending,
            Some(format!("delivery to {} under way", d.endpoint_id)),
        ),
    }
}

/// Counts of a run's results by outcome; `done` once none is pending.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Summary {
    pub passed: usize,
    pub pending: usize,
    pub not_routed: usize,
    pub failed: usize,
    pub done: bool,
}

pub fn summarise(results: &[TypeResult]) -> Summary {
    let mut s = Summary::default();
    for r in results {
        match r.outcome {
            Outcome::Passed => s.passed += 1,
            Outcome::Pending => s.pending += 1,
            Outcome::NotRouted => s.not_routed += 1,
            Outcome::Failed => s.failed += 1,
        }
    }
    s.done = s.pending == 0;
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sent(journal: bool) -> SentSample {
        SentSample {
            event_type: "whatsapp.messages".into(),
            status: if journal { 200 } else { 503 },
            journal_id: journal.then(|| "1-0".into()),
            error: (!journal).then(|| "storage is unreachable".into()),
        }
    }

    fn event(t: &str, states: &[DeliveryStatus]) -> SampleEvent {
        SampleEvent {
            id: "9-0".into(),
            event_type: t.into(),
            deliveries: states
                .iter()
                .enumerate()
                .map(|(i, s)| DeliveryState {
                    status: *s,
                    attempts: 1,
                    ..DeliveryState::pending(format!("ep_{i}"))
                })
                .collect(),
        }
    }

    fn outcome(s: &SentSample, events: Vec<SampleEvent>, age: u64) -> Outcome {
        judge(s, events, age).outcome
    }

    #[test]
    fn a_sample_passes_only_when_every_delivery_of_its_events_is_delivered() {
        use DeliveryStatus::*;
        let t = "whatsapp.messages";
        assert_eq!(
            outcome(&sent(true), vec![event(t, &[Delivered, Delivered])], 0),
            Outcome::Passed
        );
        assert_eq!(
            outcome(&sent(true), vec![event(t, &[Delivered, Pending])], 0),
            Outcome::Pending
        );
        assert_eq!(
            outcome(&sent(true), vec![event(t, &[Delivered, Failed])], 0),
            Outcome::Pending
        );
        assert_eq!(
            outcome(&sent(true), vec![event(t, &[Delivered, Dead])], 0),
            Outcome::Failed
        );
    }

    #[test]
    fn refused_unsplit_and_mistyped_samples_fail_and_unrouted_ones_say_so() {
        let t = "whatsapp.messages";
        let refused = judge(&sent(false), vec![], 0);
        assert_eq!(refused.outcome, Outcome::Failed);
        assert!(refused.problem.unwrap_or_default().contains("503"));
        assert_eq!(outcome(&sent(true), vec![], 1_000), Outcome::Pending);
        assert_eq!(
            outcome(&sent(true), vec![], SPLIT_WITHIN_MS),
            Outcome::Failed
        );
        let mistyped = vec![event("whatsapp.statuses", &[DeliveryStatus::Delivered])];
        assert_eq!(outcome(&sent(true), mistyped, 0), Outcome::Failed);
        assert_eq!(
            outcome(&sent(true), vec![event(t, &[])], 0),
            Outcome::NotRouted
        );
    }

    #[test]
    fn a_run_is_done_once_nothing_is_pending() {
        let r = |o| TypeResult {
            event_type: String::new(),
            outcome: o,
            problem: None,
            accepted: true,
            journal_id: None,
            events: vec![],
        };
        let s = summarise(&[
            r(Outcome::Passed),
            r(Outcome::NotRouted),
            r(Outcome::Failed),
        ]);
        assert_eq!((s.passed, s.not_routed, s.failed, s.done), (1, 1, 1, true));
        assert!(!summarise(&[r(Outcome::Passed), r(Outcome::Pending)]).done);
    }
}
