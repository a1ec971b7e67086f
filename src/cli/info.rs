//! What the read-only commands (`get`, `list`, `status`) say about a rollout, computed from the fetched
//! objects: the client-side phase (reference §2.4), step, set and actual weight, ages. Pure.

use jiff::{SignedDuration, Timestamp};

use crate::api::Rollout;
use crate::api::constants::phase;
use crate::plan::phase::rollout_phase;

/// Argo's client-side `GetRolloutPhase`: what a person should see, even before the controller caught up.
pub fn client_phase(rollout: &Rollout) -> (String, String) {
    let status = rollout.status.clone().unwrap_or_default();
    let generation = rollout.metadata.generation.unwrap_or(0);
    // A non-numeric observedGeneration (old controllers wrote a hash) counts as observed.
    let unobserved = status
        .observed_generation
        .parse::<i64>()
        .is_ok_and(|observed| observed != generation)
        || (status.observed_generation.is_empty() && generation > 0);
    if unobserved {
        return (
            phase::PROGRESSING.into(),
            "waiting for rollout spec update to be observed".into(),
        );
    }
    if status.controller_pause && status.pause_conditions.is_empty() {
        return (
            phase::PROGRESSING.into(),
            "waiting for rollout to unpause".into(),
        );
    }
    if !status.phase.is_empty() {
        return (status.phase, status.message);
    }
    let (phase, message) = rollout_phase(&rollout.spec, &status);
    (phase.into(), message)
}

/// `STEP`: `index/steps` for a canary with steps and a step index.
pub fn step(rollout: &Rollout) -> Option<String> {
    rollout.spec.strategy.canary.as_ref()?;
    let steps = rollout.spec.canary_steps().len();
    let index = rollout.status.as_ref()?.current_step_index?;
    (steps > 0).then(|| format!("{index}/{steps}"))
}

/// Argo's `GetCurrentSetWeight`: 0 when aborted, the last `setWeight` at or before the current step, the
/// maximum weight past the last step or without steps. `None` for blue-green.
pub fn set_weight(rollout: &Rollout) -> Option<i32> {
    let canary = rollout.spec.strategy.canary.as_ref()?;
    let status = rollout.status.clone().unwrap_or_default();
    if status.abort {
        return Some(0);
    }
    let steps = rollout.spec.canary_steps();
    let index = status.current_step_index.unwrap_or(0).max(0) as usize;
    if steps.is_empty() || index >= steps.len() {
        return Some(canary.max_traffic_weight());
    }
    Some(
        steps[..=index]
            .iter()
            .rev()
            .find_map(|s| s.set_weight)
            .unwrap_or(0),
    )
}

/// `ActualWeight`: the router's canary weight with traffic routing; otherwise 100 past the last step,
/// else the canary ReplicaSet's share of the available pods.
pub fn actual_weight(rollout: &Rollout, canary_available: i32) -> Option<i32> {
    rollout.spec.strategy.canary.as_ref()?;
    let steps = rollout.spec.canary_steps();
    let status = rollout.status.clone().unwrap_or_default();
    if let Some(weights) = &status.canary.weights {
        return Some(weights.canary.weight);
    }
    let index = status.current_step_index.unwrap_or(0).max(0) as usize;
    if !steps.is_empty() && index >= steps.len() {
        return Some(100);
    }
    if status.available_replicas == 0 {
        return Some(0);
    }
    Some(canary_available * 100 / status.available_replicas)
}

/// Kubernetes' `HumanDuration`, the AGE column of kubectl.
pub fn age(since: Option<Timestamp>, now: Timestamp) -> String {
    let Some(since) = since else {
        return "<unknown>".into();
    };
    human_duration(now.duration_since(since))
}

pub fn human_duration(duration: SignedDuration) -> String {
    let seconds = duration.as_secs();
    if seconds < -1 {
        return "<invalid>".into();
    }
    if seconds < 0 {
        return "0s".into();
    }
    if seconds < 120 {
        return format!("{seconds}s");
    }
    let minutes = seconds / 60;
    if minutes < 10 {
        return match seconds % 60 {
            0 => format!("{minutes}m"),
            s => format!("{minutes}m{s}s"),
        };
    }
    if minutes < 180 {
        return format!("{minutes}m");
    }
    let hours = minutes / 60;
    if hours < 8 {
        return match minutes % 60 {
            0 => format!("{hours}h"),
            m => format!("{hours}h{m}m"),
        };
    }
    if hours < 48 {
        return format!("{hours}h");
    }
    if hours < 24 * 8 {
        return match hours % 24 {
            0 => format!("{}d", hours / 24),
            h => format!("{}d{h}h", hours / 24),
        };
    }
    if hours < 24 * 365 * 2 {
        return format!("{}d", hours / 24);
    }
    if hours < 24 * 365 * 8 {
        return match (hours / 24) % 365 {
            0 => format!("{}y", hours / 24 / 365),
            d => format!("{}y{d}d", hours / 24 / 365),
        };
    }
    format!("{}y", hours / 24 / 365)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rollout(yaml: &str) -> Rollout {
        serde_norway::from_str(&format!(
            "apiVersion: argoproj.io/v1alpha1\nkind: Rollout\nmetadata: {{name: demo, generation: 2}}\n{yaml}"
        ))
        .expect("fixture")
    }

    const CANARY: &str = "spec:\n  strategy:\n    canary:\n      steps: [{setWeight: 20}, {pause: {}}, {setWeight: 60}, {pause: {duration: 10}}]\n";

    #[test]
    fn client_phase_waits_for_the_generation_and_for_an_unpause() {
        let unobserved = rollout(&format!(
            "{CANARY}status: {{observedGeneration: '1', phase: Healthy}}\n"
        ));
        assert_eq!(
            client_phase(&unobserved),
            (
                "Progressing".into(),
                "waiting for rollout spec update to be observed".into()
            )
        );
        let resumed = rollout(&format!(
            "{CANARY}status: {{observedGeneration: '2', controllerPause: true, phase: Paused, message: CanaryPauseStep}}\n"
        ));
        assert_eq!(
            client_phase(&resumed),
            (
                "Progressing".into(),
                "waiting for rollout to unpause".into()
            )
        );
        let paused = rollout(&format!(
            "{CANARY}status: {{observedGeneration: '2', phase: Paused, message: CanaryPauseStep}}\n"
        ));
        assert_eq!(
            client_phase(&paused),
            ("Paused".into(), "CanaryPauseStep".into())
        );
    }

    #[test]
    fn set_weight_follows_the_steps_and_abort() {
        let at = |index: i32, abort: bool| {
            set_weight(&rollout(&format!(
                "{CANARY}status: {{currentStepIndex: {index}, abort: {abort}}}\n"
            )))
        };
        assert_eq!(at(0, false), Some(20));
        assert_eq!(at(1, false), Some(20));
        assert_eq!(at(3, false), Some(60));
        assert_eq!(at(4, false), Some(100));
        assert_eq!(at(1, true), Some(0));
        let blue_green = rollout("spec:\n  strategy:\n    blueGreen: {activeService: a}\n");
        assert_eq!(set_weight(&blue_green), None);
    }

    #[test]
    fn actual_weight_is_the_canary_share_of_available_pods() {
        let ro = rollout(&format!(
            "{CANARY}status: {{currentStepIndex: 1, availableReplicas: 5}}\n"
        ));
        assert_eq!(actual_weight(&ro, 1), Some(20));
        let done = rollout(&format!(
            "{CANARY}status: {{currentStepIndex: 4, availableReplicas: 5}}\n"
        ));
        assert_eq!(actual_weight(&done, 0), Some(100));
    }

    #[test]
    fn ages_print_as_kubectl_prints_them() {
        let cases = [
            (5, "5s"),
            (119, "119s"),
            (150, "2m30s"),
            (600, "10m"),
            (3 * 3600 + 60, "3h1m"),
            (9 * 3600, "9h"),
            (7 * 86400, "7d"),
            (3 * 86400 + 3600, "3d1h"),
            (30 * 86400, "30d"),
        ];
        for (seconds, text) in cases {
            assert_eq!(human_duration(SignedDuration::from_secs(seconds)), text);
        }
    }
}
