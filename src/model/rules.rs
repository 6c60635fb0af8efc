//! What a round of delivery outcomes changes, decided in plain Rust so every backend applies
//! the same rules: the state an endpoint's delivery moves to, and an endpoint's health.

use super::delivery::{DeliveryState, DeliveryStatus, NextStep, Resolution};
use super::endpoint::EndpointHealth;

/// What a resolution does to the stored state of its delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StateChange {
    Set(DeliveryState),
    /// The endpoint is gone: its state goes too.
    Remove,
    /// Not attempted (deferred): the state stays as it is.
    Keep,
}

/// The state after `r`, given the id its attempt was logged under and, for a dead delivery,
/// its dead letter's id.
pub fn state_after(r: &Resolution, log_id: Option<String>, dead_id: Option<String>) -> StateChange {
    let state = |status| DeliveryState {
        endpoint_id: r.endpoint_id.clone(),
        status,
        attempts: r.attempt,
        last_attempt_id: log_id.clone(),
        dead_id: None,
    };
    match &r.next {
        NextStep::Delivered => StateChange::Set(state(DeliveryStatus::Delivered)),
        NextStep::Retry { .. } => StateChange::Set(state(DeliveryStatus::Failed)),
        NextStep::Defer { .. } => StateChange::Keep,
        NextStep::Dead { .. } | NextStep::Gone => StateChange::Set(DeliveryState {
            dead_id,
            ..state(DeliveryStatus::Dead)
        }),
        NextStep::Drop => StateChange::Remove,
    }
}

/// The state of a delivery queued again: `Delivering` for a scheduled retry (attempt
/// `attempt` about to be made), `Pending` for a replay.
pub fn state_requeued(endpoint_id: &str, attempt: u32, retry: bool) -> DeliveryState {
    DeliveryState {
        status: if retry {
            DeliveryStatus::Delivering
        } else {
            DeliveryStatus::Pending
        },
        attempts: attempt.saturating_sub(1),
        ..DeliveryState::pending(endpoint_id.to_string())
    }
}

/// How one endpoint fared in a round.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RoundOutcome {
    pub succeeded: bool,
    pub failed: bool,
    /// It answered `410 Gone`.
    pub gone: bool,
}

impl RoundOutcome {
    /// Folds one resolution of this endpoint into the round.
    pub fn add(&mut self, r: &Resolution) {
        match r.next {
            NextStep::Delivered => self.succeeded = true,
            NextStep::Retry { .. } => self.failed = true,
            NextStep::Dead { .. } => self.failed |= r.log.is_some(),
            NextStep::Gone => {
                self.failed |= r.log.is_some();
                self.gone = true;
            }
            NextStep::Defer { .. } | NextStep::Drop => {}
        }
    }
}

/// An endpoint's health after a round at `now_ms`. An endpoint that also succeeded in the
/// round is not failing (its failure is only noted); one failing for `disable_after` without
/// a success, or that answered 410, is disabled. Returns whether it was disabled just now.
pub fn health_after(
    health: &mut EndpointHealth,
    round: RoundOutcome,
    now_ms: u64,
    disable_after_ms: u64,
) -> bool {
    let was_disabled = health.disabled_reason.is_some();
    if round.failed {
        health.last_failure = Some(now_ms);
    }
    if round.succeeded {
        health.last_success = Some(now_ms);
        health.failing_since = None;
    } else if round.failed {
        let since = *health.failing_since.get_or_insert(now_ms);
        if now_ms.saturating_sub(since) >= disable_after_ms && !was_disabled {
            health.disabled_reason = Some("failing".into());
            health.disabled_at = Some(now_ms);
        }
    }
    if round.gone && health.disabled_reason.is_none() {
        health.disabled_reason = Some("gone".into());
        health.disabled_at = Some(now_ms);
    }
    !was_disabled && health.disabled_reason.is_some()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::DeliveryKind;

    fn resolution(next: NextStep, logged: bool) -> Resolution {
        Resolution {
            conversation: String::new(),
            kind: DeliveryKind::Event,
            subject: "1-0".into(),
            endpoint_id: "ep_1".into(),
            tenant_id: String::new(),
            event_type: "whatsapp.messages".into(),
            attempt: 3,
            received_at_ms: 0,
            test: false,
            next,
            log: logged.then(|| crate::model::AttemptLog {
                endpoint_id: "ep_1".into(),
                kind: DeliveryKind::Event,
                event_id: "1-0".into(),
                event_type: "whatsapp.messages".into(),
                webhook_id: "evt_1-0".into(),
                attempt: 3,
                at: 0,
                duration_ms: 1,
                status: Some(500),
                error: None,
                response: String::new(),
            }),
        }
    }

    #[test]
    fn a_failed_attempt_leaves_a_failed_state_counting_it_and_naming_its_log() {
        let change = state_after(
            &resolution(NextStep::Retry { due_ms: 9 }, true),
            Some("5-0".into()),
            None,
        );
        let StateChange::Set(s) = change else {
            panic!("{change:?}")
        };
        assert_eq!(s.status, DeliveryStatus::Failed);
        assert_eq!(s.attempts, 3);
        assert_eq!(s.last_attempt_id.as_deref(), Some("5-0"));
    }

    #[test]
    fn a_dead_delivery_names_its_dead_letter_and_a_deferred_one_keeps_its_state() {
        let dead = NextStep::Dead {
            reason: "out of attempts".into(),
        };
        let StateChange::Set(s) = state_after(&resolution(dead, true), None, Some("7-0".into()))
        else {
            panic!("dead sets a state")
        };
        assert_eq!(
            (s.status, s.dead_id.as_deref()),
            (DeliveryStatus::Dead, Some("7-0"))
        );
        assert_eq!(
            state_after(
                &resolution(NextStep::Defer { due_ms: 1 }, false),
                None,
                None
            ),
            StateChange::Keep
        );
        assert_eq!(
            state_after(&resolution(NextStep::Drop, false), None, None),
            StateChange::Remove
        );
    }

    #[test]
    fn a_requeued_delivery_counts_only_the_attempts_already_made() {
        let s = state_requeued("ep_1", 4, true);
        assert_eq!((s.status, s.attempts), (DeliveryStatus::Delivering, 3));
        assert_eq!(
            state_requeued("ep_1", 1, false).status,
            DeliveryStatus::Pending
        );
    }

    #[test]
    fn an_endpoint_failing_longer_than_allowed_is_disabled_once() {
        let mut h = EndpointHealth::default();
        let failed = RoundOutcome {
            failed: true,
            ..RoundOutcome::default()
        };
        assert!(!health_after(&mut h, failed, 1_000, 5_000));
        assert_eq!(h.failing_since, Some(1_000));
        assert!(!health_after(&mut h, failed, 3_000, 5_000));
        assert!(health_after(&mut h, failed, 6_000, 5_000));
        assert_eq!(h.disabled_reason.as_deref(), Some("failing"));
        assert!(!health_after(&mut h, failed, 7_000, 5_000), "only once");
        assert_eq!(h.disabled_at, Some(6_000));
    }

    #[test]
    fn a_success_in_the_same_round_keeps_an_endpoint_from_failing() {
        let mut h = EndpointHealth {
            failing_since: Some(0),
            ..EndpointHealth::default()
        };
        let mixed = RoundOutcome {
            succeeded: true,
            failed: true,
            gone: false,
        };
        assert!(!health_after(&mut h, mixed, 10_000, 5_000));
        assert_eq!(h.failing_since, None);
        assert_eq!(
            (h.last_success, h.last_failure),
            (Some(10_000), Some(10_000))
        );
    }

    #[test]
    fn gone_disables_at_once() {
        let mut h = EndpointHealth::default();
        let mut round = RoundOutcome::default();
        round.add(&resolution(NextStep::Gone, true));
        assert!(health_after(&mut h, round, 1, 1_000_000));
        assert_eq!(h.disabled_reason.as_deref(), Some("gone"));
    }
}
