//! `status.phase` and `status.message` from spec and status (reference 2.4, `CalculateRolloutPhase`).

use crate::api::constants::{condition, phase, reason};
use crate::api::rollout::{RolloutSpec, RolloutStatus};

/// The controller-side phase and message of a rollout.
pub fn rollout_phase(spec: &RolloutSpec, status: &RolloutStatus) -> (&'static str, String) {
    if let Some(invalid) = status
        .conditions
        .iter()
        .find(|c| c.type_ == condition::INVALID_SPEC)
    {
        return (
            phase::DEGRADED,
            format!("{}: {}", reason::INVALID_SPEC, invalid.message),
        );
    }
    if let Some(failed) = status.conditions.iter().find(|c| {
        c.reason == reason::ROLLOUT_ABORTED || c.reason == reason::PROGRESS_DEADLINE_EXCEEDED
    }) {
        return (
            phase::DEGRADED,
            format!("{}: {}", failed.reason, failed.message),
        );
    }
    if spec.paused {
        return (phase::PAUSED, "manually paused".into());
    }
    if let Some(pause) = status.pause_conditions.first() {
        return (phase::PAUSED, pause.reason.clone());
    }
    let restart_pending = match (&spec.restart_at, &status.restarted_at) {
        (Some(wanted), Some(done)) => wanted != done,
        (Some(_), None) => true,
        _ => false,
    };
    if restart_pending {
        return (phase::PROGRESSING, "rollout is restarting".into());
    }
    if status.updated_replicas < spec.replicas_or_default() {
        return (
            phase::PROGRESSING,
            "more replicas need to be updated".into(),
        );
    }
    if status.available_replicas < status.updated_replicas {
        return (
            phase::PROGRESSING,
            "updated replicas are still becoming available".into(),
        );
    }
    if spec.strategy.blue_green.is_some() {
        let active = &status.blue_green.active_selector;
        if active.is_empty() || *active != status.current_pod_hash {
            return (phase::PROGRESSING, "active service cutover pending".into());
        }
        if status.stable_rs.is_empty() || status.stable_rs != status.current_pod_hash {
            return (
                phase::PROGRESSING,
                "waiting for analysis to complete".into(),
            );
        }
    } else if let Some(canary) = &spec.strategy.canary {
        if canary.traffic_routing.is_none() && status.replicas > status.updated_replicas {
            return (
                phase::PROGRESSING,
                "old replicas are pending termination".into(),
            );
        }
        if status.stable_rs.is_empty() || status.stable_rs != status.current_pod_hash {
            return (
                phase::PROGRESSING,
                "waiting for all steps to complete".into(),
            );
        }
    }
    (phase::HEALTHY, String::new())
}
