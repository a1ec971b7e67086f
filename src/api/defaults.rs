//! The values Argo Rollouts uses when a field is not set (reference section 0).

use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::constants::default;
use super::rollout::{BlueGreenStrategy, CanaryStep, CanaryStrategy, RolloutSpec};

impl RolloutSpec {
    /// `spec.replicas`, 1 when unset.
    pub fn replicas_or_default(&self) -> i32 {
        self.replicas.unwrap_or(default::REPLICAS)
    }

    /// `spec.revisionHistoryLimit`, 10 when unset.
    pub fn revision_history_limit_or_default(&self) -> i32 {
        self.revision_history_limit
            .unwrap_or(default::REVISION_HISTORY_LIMIT)
    }

    /// `spec.progressDeadlineSeconds`, 600 when unset.
    pub fn progress_deadline_seconds_or_default(&self) -> i32 {
        self.progress_deadline_seconds
            .unwrap_or(default::PROGRESS_DEADLINE_SECONDS)
    }

    /// `spec.minReadySeconds`, 0 when unset.
    pub fn min_ready_seconds_or_default(&self) -> i32 {
        self.min_ready_seconds.unwrap_or(0)
    }

    /// The canary steps; empty for blue-green or a canary without steps.
    pub fn canary_steps(&self) -> &[CanaryStep] {
        self.strategy
            .canary
            .as_ref()
            .and_then(|canary| canary.steps.as_deref())
            .unwrap_or(&[])
    }

    /// `successfulRunHistoryLimit`, 5 when unset.
    pub fn successful_run_history_limit(&self) -> i32 {
        self.analysis
            .as_ref()
            .and_then(|a| a.successful_run_history_limit)
            .unwrap_or(default::SUCCESSFUL_RUN_HISTORY_LIMIT)
    }

    /// `unsuccessfulRunHistoryLimit`, 5 when unset.
    pub fn unsuccessful_run_history_limit(&self) -> i32 {
        self.analysis
            .as_ref()
            .and_then(|a| a.unsuccessful_run_history_limit)
            .unwrap_or(default::UNSUCCESSFUL_RUN_HISTORY_LIMIT)
    }
}

impl CanaryStrategy {
    /// `maxSurge`, "25" (percent) when unset.
    pub fn max_surge_or_default(&self) -> IntOrString {
        self.max_surge
            .clone()
            .unwrap_or_else(|| IntOrString::String(default::MAX_SURGE_PERCENT.into()))
    }

    /// `maxUnavailable`, "25" (percent) when unset.
    pub fn max_unavailable_or_default(&self) -> IntOrString {
        self.max_unavailable
            .clone()
            .unwrap_or_else(|| IntOrString::String(default::MAX_UNAVAILABLE_PERCENT.into()))
    }

    /// The weight a full canary gets: `trafficRouting.maxTrafficWeight`, 100 when unset.
    pub fn max_traffic_weight(&self) -> i32 {
        self.traffic_routing
            .as_ref()
            .and_then(|tr| tr.max_traffic_weight)
            .unwrap_or(default::MAX_TRAFFIC_WEIGHT)
    }

    /// `scaleDownDelaySeconds`, 30 when unset (used with traffic routing only).
    pub fn scale_down_delay_seconds_or_default(&self) -> i32 {
        self.scale_down_delay_seconds
            .unwrap_or(default::SCALE_DOWN_DELAY_SECONDS)
    }

    /// `abortScaleDownDelaySeconds`, 30 when unset (used with traffic routing only).
    pub fn abort_scale_down_delay_seconds_or_default(&self) -> i32 {
        self.abort_scale_down_delay_seconds
            .unwrap_or(default::ABORT_SCALE_DOWN_DELAY_SECONDS)
    }
}

impl BlueGreenStrategy {
    /// `autoPromotionEnabled`, true when unset.
    pub fn auto_promotion_enabled_or_default(&self) -> bool {
        self.auto_promotion_enabled.unwrap_or(true)
    }

    /// `scaleDownDelaySeconds`, 30 when unset.
    pub fn scale_down_delay_seconds_or_default(&self) -> i32 {
        self.scale_down_delay_seconds
            .unwrap_or(default::SCALE_DOWN_DELAY_SECONDS)
    }

    /// `abortScaleDownDelaySeconds`, 30 when unset; 0 keeps the preview up.
    pub fn abort_scale_down_delay_seconds_or_default(&self) -> i32 {
        self.abort_scale_down_delay_seconds
            .unwrap_or(default::ABORT_SCALE_DOWN_DELAY_SECONDS)
    }

    /// `maxUnavailable`, "25" (percent) when unset.
    pub fn max_unavailable_or_default(&self) -> IntOrString {
        self.max_unavailable
            .clone()
            .unwrap_or_else(|| IntOrString::String(default::MAX_UNAVAILABLE_PERCENT.into()))
    }
}
