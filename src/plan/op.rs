//! The effects a plan asks for. The controller performs them in order and decides nothing itself.

use std::collections::BTreeMap;

use jiff::Timestamp;
use k8s_openapi::api::core::v1::PodTemplateSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

use crate::api::rollout::RolloutAnalysis;

/// One effect on the cluster.
#[derive(Clone, Debug, PartialEq)]
pub enum Op {
    /// Create a ReplicaSet for the Rollout, controlled by it (owner reference with `controller: true`).
    CreateReplicaSet(Box<NewReplicaSet>),
    /// Set a ReplicaSet's `spec.replicas`, and its desired-replicas annotation to the rollout's replicas.
    ScaleReplicaSet {
        /// Name of the ReplicaSet.
        name: String,
        /// Its current `spec.replicas`.
        from: i32,
        /// The new `spec.replicas`.
        to: i32,
        /// The value of the `rollout.argoproj.io/desired-replicas` annotation to write.
        desired_replicas_annotation: i32,
    },
    /// Give an old ReplicaSet a new revision (it is the desired one again after a rollback).
    SetReplicaSetRevision {
        /// Name of the ReplicaSet.
        name: String,
        /// The new `rollout.argoproj.io/revision`.
        revision: i64,
        /// The new `rollout.argoproj.io/revision-history`.
        revision_history: Option<String>,
    },
    /// Set or remove a ReplicaSet's `scale-down-deadline` annotation.
    SetScaleDownDeadline {
        /// Name of the ReplicaSet.
        name: String,
        /// The deadline; `None` removes the annotation.
        deadline: Option<Timestamp>,
    },
    /// Delete an old ReplicaSet (revision history limit).
    DeleteReplicaSet {
        /// Name of the ReplicaSet.
        name: String,
    },
    /// Point a Service at the pods of one pod-template hash (strategic-merge patch of its selector, adding
    /// the managed-by annotation).
    SwitchService {
        /// Name of the Service.
        service: String,
        /// The pod-template hash to select.
        pod_template_hash: String,
    },
    /// Set the canary's share on the traffic router.
    SetTrafficWeight {
        /// The canary's weight.
        canary_weight: i32,
        /// The pod-template hash of the canary.
        canary_hash: String,
        /// The pod-template hash of the stable.
        stable_hash: String,
    },
    /// Create an AnalysisRun for the Rollout.
    CreateAnalysisRun(NewAnalysisRun),
    /// Set `spec.terminate` on an AnalysisRun that is not finished.
    TerminateAnalysisRun {
        /// Name of the run.
        name: String,
    },
    /// Delete a finished AnalysisRun beyond the history limits.
    DeleteAnalysisRun {
        /// Name of the run.
        name: String,
    },
    /// Evict a pod (policy/v1 Eviction) for `spec.restartAt`.
    EvictPod {
        /// Name of the pod.
        name: String,
    },
    /// Set the Rollout's `rollout.argoproj.io/revision` annotation.
    SetRolloutRevision {
        /// The revision.
        revision: i64,
    },
    /// Record a Kubernetes Event on the Rollout.
    Event(Event),
}

/// A ReplicaSet to create.
#[derive(Clone, Debug, PartialEq)]
pub struct NewReplicaSet {
    /// `<rollout>-<hash>`.
    pub name: String,
    /// The pod-template hash.
    pub pod_template_hash: String,
    /// Labels: the template's labels plus the hash label.
    pub labels: BTreeMap<String, String>,
    /// Annotations: the rollout's (minus the ones never copied) plus revision and desired replicas.
    pub annotations: BTreeMap<String, String>,
    /// The rollout's selector plus the hash label.
    pub selector: LabelSelector,
    /// The pod template, with the hash label and any injected metadata or anti-affinity.
    pub template: PodTemplateSpec,
    /// `spec.replicas` at creation: 0, or the first scale the next plan would give it (see `plan`).
    pub replicas: i32,
    /// `spec.minReadySeconds`.
    pub min_ready_seconds: i32,
}

/// Why the rollout runs an analysis.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AnalysisKind {
    /// An `analysis` step.
    Step,
    /// `canary.analysis`, across steps.
    Background,
    /// Blue-green `prePromotionAnalysis`.
    PrePromotion,
    /// Blue-green `postPromotionAnalysis`.
    PostPromotion,
}

impl AnalysisKind {
    /// The `rollout-type` label value.
    pub fn label(self) -> &'static str {
        use crate::api::constants::*;
        match self {
            AnalysisKind::Step => ROLLOUT_TYPE_STEP,
            AnalysisKind::Background => ROLLOUT_TYPE_BACKGROUND,
            AnalysisKind::PrePromotion => ROLLOUT_TYPE_PRE_PROMOTION,
            AnalysisKind::PostPromotion => ROLLOUT_TYPE_POST_PROMOTION,
        }
    }
}

/// An AnalysisRun to create. The controller resolves templates and arguments.
#[derive(Clone, Debug, PartialEq)]
pub struct NewAnalysisRun {
    /// `<rollout>-<hash>-<revision>[-<step>|-pre|-post]`; on a name collision the controller adds `.1`, `.2`...
    pub name: String,
    /// Why it runs.
    pub kind: AnalysisKind,
    /// The step that asked for it (step runs).
    pub step_index: Option<i32>,
    /// The pod-template hash of the new ReplicaSet.
    pub pod_template_hash: String,
    /// The pod-template hash of the stable ReplicaSet.
    pub stable_pod_template_hash: String,
    /// The rollout revision.
    pub revision: i64,
    /// Templates, arguments, dry-run and retention as the rollout gives them.
    pub analysis: RolloutAnalysis,
}

/// A Kubernetes Event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    /// Warning rather than Normal.
    pub warning: bool,
    /// Argo's reason, e.g. `RolloutStepCompleted`.
    pub reason: String,
    /// Argo's message.
    pub message: String,
    /// Reports a change of the Rollout's own status (a pause, a step, completion, an abort) rather than
    /// the write before it in the plan. Such an event is recorded only once the status write succeeds:
    /// a write that conflicts is planned again, and the event with it, so recording it earlier would
    /// record it twice.
    pub status_change: bool,
}

impl Event {
    /// A Normal event about the write just before it in the plan.
    pub fn normal(reason: &str, message: impl Into<String>) -> Op {
        Self::op(false, false, reason, message)
    }

    /// A Warning event about the write just before it in the plan.
    pub fn warning(reason: &str, message: impl Into<String>) -> Op {
        Self::op(true, false, reason, message)
    }

    /// A Normal event about a change of the Rollout's status.
    pub fn status_normal(reason: &str, message: impl Into<String>) -> Op {
        Self::op(false, true, reason, message)
    }

    /// A Warning event about a change of the Rollout's status.
    pub fn status_warning(reason: &str, message: impl Into<String>) -> Op {
        Self::op(true, true, reason, message)
    }

    fn op(warning: bool, status_change: bool, reason: &str, message: impl Into<String>) -> Op {
        Op::Event(Event {
            warning,
            reason: reason.to_string(),
            message: message.into(),
            status_change,
        })
    }
}
