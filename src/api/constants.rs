//! Every label, annotation, condition, reason and field-manager name Ramp reads or writes, in one place.
//! The values are Argo Rollouts' own, so objects written by either controller mean the same thing.

/// The label on ReplicaSets, pods, Service selectors and AnalysisRuns that names a pod-template hash.
pub const POD_TEMPLATE_HASH_LABEL: &str = "rollouts-pod-template-hash";
/// RS annotation: the rollout revision this ReplicaSet belongs to.
pub const REVISION_ANNOTATION: &str = "rollout.argoproj.io/revision";
/// RS annotation: earlier revisions of a re-used ReplicaSet, comma separated.
pub const REVISION_HISTORY_ANNOTATION: &str = "rollout.argoproj.io/revision-history";
/// RS annotation: the rollout's spec.replicas when the ReplicaSet was last scaled.
pub const DESIRED_REPLICAS_ANNOTATION: &str = "rollout.argoproj.io/desired-replicas";
/// RS annotation: the ephemeral labels and annotations injected into the template.
pub const EPHEMERAL_METADATA_ANNOTATION: &str = "rollout.argoproj.io/ephemeral-metadata";
/// RS annotation: RFC 3339 time after which an old ReplicaSet may be scaled to 0.
pub const SCALE_DOWN_DEADLINE_ANNOTATION: &str = "scale-down-deadline";
/// Service annotation: the rollout that manages the Service's selector.
pub const MANAGED_BY_ROLLOUTS_ANNOTATION: &str = "argo-rollouts.argoproj.io/managed-by-rollouts";
/// Label that assigns an object to one controller instance.
pub const CONTROLLER_INSTANCE_ID_LABEL: &str = "argo-rollouts.argoproj.io/controller-instance-id";
/// Rollout annotation: the generation of the referenced workload.
pub const WORKLOAD_GENERATION_ANNOTATION: &str = "rollout.argoproj.io/workload-generation";
/// Annotations never copied from a Rollout to its ReplicaSets.
pub const LAST_APPLIED_ANNOTATION: &str = "kubectl.kubernetes.io/last-applied-configuration";
/// Notification bookkeeping annotation, never copied to ReplicaSets.
pub const NOTIFIED_ANNOTATION: &str = "notified.notifications.argoproj.io";

/// AR label: why the rollout created the run.
pub const ROLLOUT_TYPE_LABEL: &str = "rollout-type";
/// AR label: the step that created a step run.
pub const STEP_INDEX_LABEL: &str = "step-index";
/// `rollout-type` of a step run.
pub const ROLLOUT_TYPE_STEP: &str = "Step";
/// `rollout-type` of a background run.
pub const ROLLOUT_TYPE_BACKGROUND: &str = "Background";
/// `rollout-type` of a blue-green pre-promotion run.
pub const ROLLOUT_TYPE_PRE_PROMOTION: &str = "PrePromotion";
/// `rollout-type` of a blue-green post-promotion run.
pub const ROLLOUT_TYPE_POST_PROMOTION: &str = "PostPromotion";

/// The field manager Ramp writes with.
pub const FIELD_MANAGER: &str = "ramp-controller";

/// Rollout condition types.
pub mod condition {
    pub const PROGRESSING: &str = "Progressing";
    pub const AVAILABLE: &str = "Available";
    pub const PAUSED: &str = "Paused";
    pub const HEALTHY: &str = "Healthy";
    pub const COMPLETED: &str = "Completed";
    pub const REPLICA_FAILURE: &str = "ReplicaFailure";
    pub const INVALID_SPEC: &str = "InvalidSpec";
}

/// Condition reasons.
pub mod reason {
    pub const NEW_RS_CREATED: &str = "NewReplicaSetCreated";
    pub const FOUND_NEW_RS: &str = "FoundNewReplicaSet";
    pub const RS_UPDATED: &str = "ReplicaSetUpdated";
    pub const NEW_RS_AVAILABLE: &str = "NewReplicaSetAvailable";
    pub const RS_NOT_AVAILABLE: &str = "ReplicaSetNotAvailable";
    pub const PROGRESS_DEADLINE_EXCEEDED: &str = "ProgressDeadlineExceeded";
    pub const ROLLOUT_ABORTED: &str = "RolloutAborted";
    pub const ROLLOUT_PAUSED: &str = "RolloutPaused";
    pub const ROLLOUT_RESUMED: &str = "RolloutResumed";
    pub const ROLLOUT_RETRY: &str = "RolloutRetry";
    pub const AVAILABLE: &str = "AvailableReason";
    pub const ROLLOUT_HEALTHY: &str = "RolloutHealthy";
    pub const ROLLOUT_COMPLETED: &str = "RolloutCompleted";
    pub const INVALID_SPEC: &str = "InvalidSpec";
}

/// Pause condition reasons.
pub mod pause_reason {
    pub const CANARY_PAUSE_STEP: &str = "CanaryPauseStep";
    pub const BLUE_GREEN_PAUSE: &str = "BlueGreenPause";
    pub const INCONCLUSIVE_ANALYSIS: &str = "InconclusiveAnalysisRun";
    pub const INCONCLUSIVE_EXPERIMENT: &str = "InconclusiveExperiment";
}

/// Rollout phases.
pub mod phase {
    pub const HEALTHY: &str = "Healthy";
    pub const PROGRESSING: &str = "Progressing";
    pub const PAUSED: &str = "Paused";
    pub const DEGRADED: &str = "Degraded";
}

/// Kubernetes Event reasons on a Rollout.
pub mod event {
    /// Recorded once per Rollout by a controller process that starts managing it (Argo's informer add).
    pub const ADDED_TO_INFORMER: &str = "RolloutAddedToInformer";
    pub const ROLLOUT_UPDATED: &str = "RolloutUpdated";
    pub const NEW_RS_CREATED: &str = "NewReplicaSetCreated";
    pub const SCALING_RS: &str = "ScalingReplicaSet";
    pub const STEP_COMPLETED: &str = "RolloutStepCompleted";
    pub const PAUSED: &str = "RolloutPaused";
    pub const RESUMED: &str = "RolloutResumed";
    pub const COMPLETED: &str = "RolloutCompleted";
    pub const NOT_COMPLETED: &str = "RolloutNotCompleted";
    pub const SWITCH_SERVICE: &str = "SwitchService";
    pub const TRAFFIC_WEIGHT_UPDATED: &str = "TrafficWeightUpdated";
    pub const SKIP_STEPS: &str = "SkipSteps";
    pub const ABORTED: &str = "RolloutAborted";
    pub const ANALYSIS_RUN_PREFIX: &str = "AnalysisRun";
    pub const INVALID_SPEC: &str = "InvalidSpec";
    pub const PROGRESS_DEADLINE_EXCEEDED: &str = "ProgressDeadlineExceeded";
}

/// Defaults from Argo's `utils/defaults`.
pub mod default {
    pub const REPLICAS: i32 = 1;
    pub const REVISION_HISTORY_LIMIT: i32 = 10;
    pub const PROGRESS_DEADLINE_SECONDS: i32 = 600;
    pub const MAX_SURGE_PERCENT: &str = "25";
    pub const MAX_UNAVAILABLE_PERCENT: &str = "25";
    pub const SCALE_DOWN_DELAY_SECONDS: i32 = 30;
    pub const ABORT_SCALE_DOWN_DELAY_SECONDS: i32 = 30;
    pub const SUCCESSFUL_RUN_HISTORY_LIMIT: i32 = 5;
    pub const UNSUCCESSFUL_RUN_HISTORY_LIMIT: i32 = 5;
    pub const MAX_TRAFFIC_WEIGHT: i32 = 100;
    pub const CONSECUTIVE_ERROR_LIMIT: i32 = 4;
    pub const MEASUREMENT_HISTORY_LIMIT: i32 = 10;
    /// Seconds after which an invalid rollout is looked at again.
    pub const INVALID_SPEC_REQUEUE_SECONDS: i64 = 20;
}
