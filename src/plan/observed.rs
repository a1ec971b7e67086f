//! What the planner is told about the cluster: plain data, built by the controller from its caches (or by
//! a test in a few lines).

use std::collections::BTreeMap;

use jiff::Timestamp;

use super::hash::TemplateIdentity;
use crate::api::AnalysisPhase;
use crate::api::AnalysisTemplateSpec;
pub use crate::api::validation::ServiceState;

/// Everything the planner needs besides the Rollout itself and the time.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Observed {
    /// The ReplicaSets the Rollout owns (selected by its selector and controlled by it).
    pub replica_sets: Vec<ReplicaSetState>,
    /// The Services the Rollout references, by name. A missing entry means the Service does not exist.
    pub services: BTreeMap<String, ServiceState>,
    /// The AnalysisRuns the Rollout owns.
    pub analysis_runs: Vec<AnalysisRunState>,
    /// AnalysisTemplates in the Rollout's namespace, by name (only those referenced are needed).
    pub analysis_templates: BTreeMap<String, AnalysisTemplateSpec>,
    /// ClusterAnalysisTemplates, by name (only those referenced are needed).
    pub cluster_analysis_templates: BTreeMap<String, AnalysisTemplateSpec>,
    /// The canary weight currently applied by the traffic router, when there is one.
    pub traffic_weight: Option<i32>,
    /// The Rollout's pods, needed only for `spec.restartAt`.
    pub pods: Vec<PodState>,
}

/// A ReplicaSet as the planner sees it.
#[derive(Clone, Debug, PartialEq)]
pub struct ReplicaSetState {
    /// Name of the ReplicaSet.
    pub name: String,
    /// Value of its `rollouts-pod-template-hash` label.
    pub pod_template_hash: String,
    /// Its pod template as adoption compares it (without the hash label and injected metadata).
    pub template: TemplateIdentity,
    /// `spec.replicas`.
    pub replicas: i32,
    /// `status.replicas`.
    pub status_replicas: i32,
    /// `status.readyReplicas`.
    pub ready_replicas: i32,
    /// `status.availableReplicas`.
    pub available_replicas: i32,
    /// `status.observedGeneration == metadata.generation`.
    pub generation_observed: bool,
    /// Its `rollout.argoproj.io/revision` annotation.
    pub revision: Option<i64>,
    /// Its `rollout.argoproj.io/revision-history` annotation.
    pub revision_history: Option<String>,
    /// Its `rollout.argoproj.io/desired-replicas` annotation.
    pub desired_replicas_annotation: Option<i32>,
    /// Its `scale-down-deadline` annotation, when it parses.
    pub scale_down_deadline: Option<Timestamp>,
    /// The message of its `ReplicaFailure` condition, when True.
    pub replica_failure: Option<String>,
    /// `metadata.creationTimestamp`.
    pub created: Timestamp,
    /// `spec.minReadySeconds`.
    pub min_ready_seconds: i32,
}

impl ReplicaSetState {
    /// The ReplicaSet `new` as it stands the moment its create lands at `now`: no pod yet, and the
    /// Rollout's `replicas` in its desired-replicas annotation.
    pub fn created(new: &super::NewReplicaSet, rollout_replicas: i32, now: Timestamp) -> Self {
        Self {
            name: new.name.clone(),
            pod_template_hash: new.pod_template_hash.clone(),
            template: TemplateIdentity::of(&new.template, &[], &[]),
            replicas: new.replicas,
            status_replicas: 0,
            ready_replicas: 0,
            available_replicas: 0,
            generation_observed: true,
            revision: new
                .annotations
                .get(crate::api::constants::REVISION_ANNOTATION)
                .and_then(|r| r.parse().ok()),
            revision_history: None,
            desired_replicas_annotation: Some(rollout_replicas),
            scale_down_deadline: None,
            replica_failure: None,
            created: now,
            min_ready_seconds: new.min_ready_seconds,
        }
    }
}

/// An AnalysisRun as the planner sees it.
#[derive(Clone, Debug, PartialEq)]
pub struct AnalysisRunState {
    /// Name of the run.
    pub name: String,
    /// Its `rollouts-pod-template-hash` label.
    pub pod_template_hash: String,
    /// Its `rollout-type` label.
    pub rollout_type: String,
    /// Its `step-index` label.
    pub step_index: Option<i32>,
    /// Its phase; `None` before the analysis controller first saw it.
    pub phase: Option<AnalysisPhase>,
    /// Its status message.
    pub message: String,
    /// `spec.terminate`.
    pub terminating: bool,
    /// `metadata.creationTimestamp`.
    pub created: Timestamp,
}

/// A pod of the Rollout, for restarts.
#[derive(Clone, Debug, PartialEq)]
pub struct PodState {
    /// Name of the pod.
    pub name: String,
    /// Its `rollouts-pod-template-hash` label.
    pub pod_template_hash: String,
    /// `metadata.creationTimestamp`.
    pub created: Timestamp,
    /// Whether it is being deleted already.
    pub terminating: bool,
}

impl ReplicaSetState {
    /// The replica counts the replica math uses.
    pub fn counts(&self) -> super::replicas::RsReplicas {
        super::replicas::RsReplicas {
            spec: self.replicas,
            available: self.available_replicas,
        }
    }
}
