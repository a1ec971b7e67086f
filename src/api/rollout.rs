//! The `Rollout` custom resource, field for field as Argo Rollouts defines it in `argoproj.io/v1alpha1`.
//!
//! Field order follows Argo's Go structs on purpose: the step hash (see `plan::hash`) is computed over the
//! JSON of `spec.strategy.canary.steps`, and Go writes struct fields in declaration order.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::PodTemplateSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, Time};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::analysis::{AnalysisPhase, AnalysisRunArgument, DryRun, MeasurementRetention};
use super::schema::preserve_unknown_object;

// kube's derive takes one `printcolumn(...)` attribute per column.
#[allow(clippy::duplicated_attributes)]
/// A Rollout runs a new version of a workload next to the stable one and moves traffic to it step by step
/// (canary) or switches a Service once it is ready (blue-green).
#[derive(CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "argoproj.io",
    version = "v1alpha1",
    kind = "Rollout",
    doc = "A Rollout replaces the pods of a workload progressively: canary steps or a blue-green switch.",
    namespaced,
    status = "RolloutStatus",
    shortname = "ro",
    category = "all",
    scale(
        spec_replicas_path = ".spec.replicas",
        status_replicas_path = ".status.HPAReplicas",
        label_selector_path = ".status.selector"
    ),
    printcolumn(
        name = "Desired",
        type_ = "integer",
        json_path = ".spec.replicas",
        description = "Number of desired pods"
    ),
    printcolumn(
        name = "Current",
        type_ = "integer",
        json_path = ".status.replicas",
        description = "Total number of non-terminated pods targeted by this rollout"
    ),
    printcolumn(
        name = "Up-to-date",
        type_ = "integer",
        json_path = ".status.updatedReplicas",
        description = "Total number of non-terminated pods targeted by this rollout that have the desired template spec"
    ),
    printcolumn(
        name = "Available",
        type_ = "integer",
        json_path = ".status.availableReplicas",
        description = "Total number of available pods (ready for at least minReadySeconds) targeted by this rollout"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp",
        description = "Time since resource was created"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct RolloutSpec {
    /// Number of desired pods. Defaults to 1; the controller writes the default back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicas: Option<i32>,
    /// Label selector for pods. Existing ReplicaSets whose pods are selected by this are the ones managed by
    /// this rollout. It must match the pod template's labels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<LabelSelector>,
    /// Template describes the pods that will be created.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<PodTemplateSpec>,
    /// A reference to a workload (Deployment, ReplicaSet or PodTemplate) that provides the pod template.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workload_ref: Option<ObjectRef>,
    /// Minimum number of seconds for which a newly created pod should be ready without any of its containers
    /// crashing, for it to be considered available. Defaults to 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_ready_seconds: Option<i32>,
    /// The window in which a rollback is fast-tracked (fully promoted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollback_window: Option<RollbackWindowSpec>,
    /// The deployment strategy: exactly one of `canary` or `blueGreen`.
    #[serde(default)]
    pub strategy: RolloutStrategy,
    /// The number of old ReplicaSets to retain. Defaults to 10.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision_history_limit: Option<i32>,
    /// Paused pauses the rollout at its current step.
    #[serde(default, skip_serializing_if = "is_false")]
    pub paused: bool,
    /// The maximum time in seconds for a rollout to make progress before it is considered failed.
    /// Defaults to 600.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress_deadline_seconds: Option<i32>,
    /// Whether to abort the update when progressDeadlineSeconds is exceeded.
    #[serde(default, skip_serializing_if = "is_false")]
    pub progress_deadline_abort: bool,
    /// When all the pods of the Rollout should be restarted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restart_at: Option<Time>,
    /// How many finished AnalysisRuns and Experiments to retain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub analysis: Option<AnalysisRunStrategy>,
}

pub(crate) fn is_false(b: &bool) -> bool {
    !*b
}

/// A reference to the workload that provides the pod template.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ObjectRef {
    /// API version of the referent.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub api_version: String,
    /// Kind of the referent: Deployment, ReplicaSet or PodTemplate.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub kind: String,
    /// Name of the referent.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// Whether to scale down the referenced Deployment: never, onsuccess or progressively.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub scale_down: String,
}

/// The window in which a rollback is fast-tracked.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RollbackWindowSpec {
    /// How many revisions back a rollback is fast-tracked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revisions: Option<i32>,
}

/// How many finished AnalysisRuns and Experiments to retain.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AnalysisRunStrategy {
    /// How many successful runs to keep. Defaults to 5.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub successful_run_history_limit: Option<i32>,
    /// How many Error, Failed or Inconclusive runs to keep. Defaults to 5.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unsuccessful_run_history_limit: Option<i32>,
}

/// The deployment strategy: exactly one of the two must be set.
// Both are boxed, so the one not set takes 8 bytes in every cached Rollout rather than its whole size
// (528 bytes for blue-green, 936 for canary).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RolloutStrategy {
    /// Blue-green: run the new version behind a preview Service, then switch the active Service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blue_green: Option<Box<BlueGreenStrategy>>,
    /// Canary: move traffic to the new version step by step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub canary: Option<Box<CanaryStrategy>>,
}

/// Parameters of a blue-green release.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BlueGreenStrategy {
    /// The Service that receives production traffic; switched to the new ReplicaSet on promotion.
    #[serde(default)]
    pub active_service: String,
    /// The Service that points at the new ReplicaSet before promotion.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub preview_service: String,
    /// How many replicas the preview stack runs before promotion; scaled to full size when resumed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preview_replica_count: Option<i32>,
    /// Whether to promote automatically once the new ReplicaSet is ready. Defaults to true.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto_promotion_enabled: Option<bool>,
    /// Seconds to wait, once the new ReplicaSet is ready, before promoting automatically. Defaults to 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto_promotion_seconds: Option<i32>,
    /// The maximum number of pods that can be unavailable during a restart. Defaults to 25%.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_unavailable: Option<IntOrString>,
    /// Seconds to wait before scaling down the previous ReplicaSet. Defaults to 30.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale_down_delay_seconds: Option<i32>,
    /// How many old ReplicaSets may wait for their scale-down delay at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale_down_delay_revision_limit: Option<i32>,
    /// Analysis to run before the active Service is switched.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pre_promotion_analysis: Option<RolloutAnalysis>,
    /// Anti-affinity between the new and the stable pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub anti_affinity: Option<AntiAffinity>,
    /// Analysis to run after the active Service is switched.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub post_promotion_analysis: Option<RolloutAnalysis>,
    /// Labels and annotations put on the preview pods while they are the preview.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preview_metadata: Option<PodTemplateMetadata>,
    /// Labels and annotations put on the active pods while they are active.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active_metadata: Option<PodTemplateMetadata>,
    /// Seconds before the preview ReplicaSet is scaled down after an abort; 0 keeps it. Defaults to 30.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub abort_scale_down_delay_seconds: Option<i32>,
}

/// Which inter-pod anti-affinity rule to inject between the new and the stable pods.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AntiAffinity {
    /// A preferred rule with this weight.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preferred_during_scheduling_ignored_during_execution: Option<PreferredAntiAffinity>,
    /// A required rule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub required_during_scheduling_ignored_during_execution: Option<RequiredAntiAffinity>,
}

/// The weight of the injected preferred anti-affinity term.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PreferredAntiAffinity {
    /// Weight of the term, 1 to 100.
    pub weight: i32,
}

/// A required anti-affinity term; it has no parameters.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct RequiredAntiAffinity {}

/// Parameters of a canary release.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CanaryStrategy {
    /// A Service that selects only the canary pods.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub canary_service: String,
    /// A Service that selects only the stable pods.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub stable_service: String,
    /// The steps of the release, run in order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub steps: Option<Vec<CanaryStep>>,
    /// The traffic router that splits traffic by weight.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traffic_routing: Option<RolloutTrafficRouting>,
    /// The maximum number of pods that can be unavailable during the update: a number or a percent of
    /// replicas (rounded down). Defaults to 25%.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_unavailable: Option<IntOrString>,
    /// The maximum number of pods above the desired count: a number or a percent of replicas (rounded up).
    /// Defaults to 25%.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_surge: Option<IntOrString>,
    /// Background analysis that runs while the steps execute.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub analysis: Option<RolloutAnalysisBackground>,
    /// Anti-affinity between the canary and the stable pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub anti_affinity: Option<AntiAffinity>,
    /// Labels and annotations put on the canary pods while they are the canary.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub canary_metadata: Option<PodTemplateMetadata>,
    /// Labels and annotations put on the stable pods while a canary runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stable_metadata: Option<PodTemplateMetadata>,
    /// Seconds before the previous ReplicaSet is scaled down (traffic routing only). Defaults to 30.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale_down_delay_seconds: Option<i32>,
    /// How many old ReplicaSets may wait for their scale-down delay at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale_down_delay_revision_limit: Option<i32>,
    /// Seconds before the canary is scaled down after an abort (traffic routing only); 0 keeps it.
    /// Defaults to 30.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub abort_scale_down_delay_seconds: Option<i32>,
    /// Scale the stable down as traffic moves to the canary (traffic routing only).
    #[serde(default, skip_serializing_if = "is_false")]
    pub dynamic_stable_scale: bool,
    /// The ping and pong Services.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ping_pong: Option<PingPongSpec>,
    /// The least number of pods a non-empty ReplicaSet runs (traffic routing only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_pods_per_replica_set: Option<i32>,
    /// How much of the canary must be available for a step to complete.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replica_progress_threshold: Option<ReplicaProgressThreshold>,
}

/// The ping and pong Service names.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PingPongSpec {
    /// Name of the ping Service.
    pub ping_service: String,
    /// Name of the pong Service.
    pub pong_service: String,
}

/// How much of the canary must be available for a step to complete.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReplicaProgressThreshold {
    /// `Percent` or `Pods`.
    #[serde(rename = "type")]
    pub type_: String,
    /// The threshold value.
    pub value: i32,
}

/// Labels and annotations put on pods while they play a role.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PodTemplateMetadata {
    /// Labels to add.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Annotations to add.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// Labels and annotations added to AnalysisRuns. Always written (Go writes this non-pointer struct even
/// when empty), which keeps the step hash equal to Argo's.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AnalysisRunMetadata {
    /// Labels to add to the AnalysisRun.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Annotations to add to the AnalysisRun.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// One step of a canary release. Exactly one field must be set.
// The two largest kinds are boxed: inline, every step took 504 bytes whatever its kind (232 now), and
// the controller keeps every Rollout it watches. (A plain comment: doc comments become CRD text.)
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CanaryStep {
    /// The percentage of traffic (and, without a traffic router, of replicas) the canary gets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub set_weight: Option<i32>,
    /// Wait: for a duration, or until promoted when none is given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pause: Option<RolloutPause>,
    /// Run an Experiment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub experiment: Option<Box<RolloutExperimentStep>>,
    /// Run an AnalysisRun and wait for it to succeed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub analysis: Option<Box<RolloutAnalysis>>,
    /// Scale the canary without changing the traffic weight (traffic routing only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub set_canary_scale: Option<SetCanaryScale>,
    /// Send requests matching a header to the canary.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub set_header_route: Option<SetHeaderRoute>,
    /// Mirror matching requests to the canary.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub set_mirror_route: Option<SetMirrorRoute>,
    /// Run a step plugin.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plugin: Option<PluginStep>,
}

/// A pause step.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RolloutPause {
    /// How long to wait: seconds as an integer or a string ("10"), or a Go duration ("30s", "5m", "1h").
    /// Without it, the rollout waits until promoted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<IntOrString>,
}

/// Scale the canary independently of the traffic weight.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SetCanaryScale {
    /// The percentage of replicas the canary runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight: Option<i32>,
    /// The number of replicas the canary runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicas: Option<i32>,
    /// Cancel an earlier setCanaryScale: the canary follows the traffic weight again.
    #[serde(default, skip_serializing_if = "is_false")]
    pub match_traffic_weight: bool,
}

/// Route requests with matching headers to the canary.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SetHeaderRoute {
    /// The managed route's name; must be listed in trafficRouting.managedRoutes.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// Header matches.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub r#match: Vec<HeaderRoutingMatch>,
}

/// One header match.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HeaderRoutingMatch {
    /// The request header's name.
    pub header_name: String,
    /// How the header's value is matched.
    pub header_value: Option<StringMatch>,
}

/// Exact, prefix or regular-expression match.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StringMatch {
    /// The string must match exactly.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub exact: String,
    /// The string must start with this.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub prefix: String,
    /// The string must match this regular expression.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub regex: String,
}

/// Mirror matching requests to the canary.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SetMirrorRoute {
    /// The managed route's name; must be listed in trafficRouting.managedRoutes.
    pub name: String,
    /// Request matches.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub r#match: Vec<RouteMatch>,
    /// The percentage of matching requests to mirror.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub percentage: Option<i32>,
}

/// A request match for mirroring.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RouteMatch {
    /// HTTP method match.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<StringMatch>,
    /// URL path match.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<StringMatch>,
    /// Header matches by header name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, StringMatch>,
}

/// A step plugin invocation.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PluginStep {
    /// The plugin's registered name.
    pub name: String,
    /// Configuration passed to the plugin as is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "preserve_unknown_object")]
    pub config: Option<serde_json::Value>,
}

/// An experiment step.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RolloutExperimentStep {
    /// The ReplicaSets the experiment runs.
    #[serde(default)]
    pub templates: Vec<RolloutExperimentTemplate>,
    /// How long the experiment runs (a Go duration such as "30s").
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub duration: String,
    /// Analyses run with the experiment.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub analyses: Vec<RolloutExperimentStepAnalysisTemplateRef>,
    /// Metrics run in dry-run mode.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dry_run: Vec<DryRun>,
    /// Labels and annotations added to the AnalysisRuns.
    #[serde(default)]
    pub analysis_run_metadata: AnalysisRunMetadata,
}

/// An analysis run by an experiment step.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RolloutExperimentStepAnalysisTemplateRef {
    /// Name of this analysis.
    pub name: String,
    /// The AnalysisTemplate to run.
    pub template_name: String,
    /// Look the template up as a ClusterAnalysisTemplate.
    #[serde(default, skip_serializing_if = "is_false")]
    pub cluster_scope: bool,
    /// Arguments for the run.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<AnalysisRunArgument>,
    /// The experiment does not complete before this analysis does.
    #[serde(default, skip_serializing_if = "is_false")]
    pub required_for_completion: bool,
}

/// A ReplicaSet an experiment step runs.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RolloutExperimentTemplate {
    /// Name of the template.
    pub name: String,
    /// Which template to copy: `canary` or `stable`.
    pub spec_ref: String,
    /// Replicas to run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicas: Option<i32>,
    /// Labels and annotations for the ReplicaSet.
    #[serde(default)]
    pub metadata: PodTemplateMetadata,
    /// Selector override for the ReplicaSet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<LabelSelector>,
    /// Traffic percentage for this template's replicas.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight: Option<i32>,
    /// A Service to create for the template.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<TemplateService>,
}

/// A Service created for an experiment template.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TemplateService {
    /// Name of the Service.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
}

/// Background analysis: an analysis that runs across steps, from `startingStep` on.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RolloutAnalysisBackground {
    /// The analysis to run.
    #[serde(flatten)]
    pub analysis: RolloutAnalysis,
    /// The step at which the background analysis starts. Defaults to 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub starting_step: Option<i32>,
}

/// Templates and arguments that make an AnalysisRun.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RolloutAnalysis {
    /// The templates combined into the AnalysisRun.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub templates: Vec<RolloutAnalysisTemplate>,
    /// Arguments for the run.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<AnalysisRunArgument>,
    /// Metrics run in dry-run mode (their failures do not fail the run).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dry_run: Vec<DryRun>,
    /// How many measurements to keep per metric.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub measurement_retention: Vec<MeasurementRetention>,
    /// Labels and annotations added to the AnalysisRuns.
    #[serde(default)]
    pub analysis_run_metadata: AnalysisRunMetadata,
}

/// A reference to an AnalysisTemplate or ClusterAnalysisTemplate.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RolloutAnalysisTemplate {
    /// Name of the template.
    #[serde(default)]
    pub template_name: String,
    /// Look the template up as a ClusterAnalysisTemplate.
    #[serde(default, skip_serializing_if = "is_false")]
    pub cluster_scope: bool,
}

/// The traffic routers that split traffic between the canary and the stable by weight.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RolloutTrafficRouting {
    /// Istio VirtualService / DestinationRule routing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "preserve_unknown_object")]
    pub istio: Option<serde_json::Value>,
    /// NGINX Ingress routing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nginx: Option<NginxTrafficRouting>,
    /// AWS ALB routing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "preserve_unknown_object")]
    pub alb: Option<serde_json::Value>,
    /// SMI TrafficSplit routing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub smi: Option<SmiTrafficRouting>,
    /// Ambassador Mapping routing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "preserve_unknown_object")]
    pub ambassador: Option<serde_json::Value>,
    /// AWS App Mesh routing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "preserve_unknown_object")]
    pub app_mesh: Option<serde_json::Value>,
    /// Traefik routing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "preserve_unknown_object")]
    pub traefik: Option<serde_json::Value>,
    /// Routes managed by the rollout, in precedence order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub managed_routes: Vec<ManagedRoute>,
    /// Apache APISIX routing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "preserve_unknown_object")]
    pub apisix: Option<serde_json::Value>,
    /// Traffic router plugins and their configuration.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "preserve_unknown_object")]
    pub plugins: Option<serde_json::Value>,
    /// The total weight traffic is split over. Defaults to 100.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_traffic_weight: Option<i32>,
}

impl RolloutTrafficRouting {
    /// The routers configured, by their field names.
    pub fn routers(&self) -> Vec<&'static str> {
        let mut routers = Vec::new();
        let set = [
            ("istio", self.istio.is_some()),
            ("nginx", self.nginx.is_some()),
            ("alb", self.alb.is_some()),
            ("smi", self.smi.is_some()),
            ("ambassador", self.ambassador.is_some()),
            ("appMesh", self.app_mesh.is_some()),
            ("traefik", self.traefik.is_some()),
            ("apisix", self.apisix.is_some()),
            ("plugins", self.plugins.is_some()),
        ];
        for (name, present) in set {
            if present {
                routers.push(name);
            }
        }
        routers
    }
}

/// A route the rollout manages.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ManagedRoute {
    /// Name of the route.
    pub name: String,
}

/// NGINX Ingress routing.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NginxTrafficRouting {
    /// The annotation prefix of the NGINX controller. Defaults to `nginx.ingress.kubernetes.io`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub annotation_prefix: String,
    /// The Ingress that routes to the stable Service.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub stable_ingress: String,
    /// Annotations added to the canary Ingress (the prefix is added).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub additional_ingress_annotations: BTreeMap<String, String>,
    /// Several stable Ingresses.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stable_ingresses: Vec<String>,
    /// Annotations added to the canary Ingress verbatim.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub canary_ingress_annotations: BTreeMap<String, String>,
}

/// SMI TrafficSplit routing.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SmiTrafficRouting {
    /// The Service clients talk to. Defaults to the stable Service.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub root_service: String,
    /// Name of the TrafficSplit. Defaults to the rollout's name.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub traffic_split_name: String,
}

/// What the controller has observed and done; see the Argo Rollouts documentation for each field.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RolloutStatus {
    /// The update is aborted: traffic and replicas go back to the stable version.
    #[serde(default, skip_serializing_if = "is_false")]
    pub abort: bool,
    /// Why the controller paused the rollout. Clear it to resume.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pause_conditions: Vec<PauseCondition>,
    /// The controller paused the rollout (pause conditions cleared while this is true means "resumed").
    #[serde(default, skip_serializing_if = "is_false")]
    pub controller_pause: bool,
    /// When the controller first processed the abort.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aborted_at: Option<Time>,
    /// The pod-template hash of the desired ReplicaSet.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub current_pod_hash: String,
    /// The hash of the canary steps, to detect a change of steps.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub current_step_hash: String,
    /// Total non-terminated pods of all the rollout's ReplicaSets.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub replicas: i32,
    /// Non-terminated pods of the desired ReplicaSet.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub updated_replicas: i32,
    /// Ready pods.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub ready_replicas: i32,
    /// Available pods (ready for at least minReadySeconds).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub available_replicas: i32,
    /// The step being executed; equal to the number of steps when all are done; absent without steps.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_step_index: Option<i32>,
    /// Hash-collision counter mixed into the pod-template hash.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub collision_count: Option<i32>,
    /// The metadata.generation the controller last acted on, as a decimal string.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub observed_generation: String,
    /// The rollout's conditions.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<RolloutCondition>,
    /// Canary-only state.
    #[serde(default, skip_serializing_if = "CanaryStatus::is_empty")]
    pub canary: CanaryStatus,
    /// Blue-green-only state.
    #[serde(default, skip_serializing_if = "BlueGreenStatus::is_empty")]
    pub blue_green: BlueGreenStatus,
    /// Pods receiving active traffic (the scale subresource's status replicas).
    #[serde(default, rename = "HPAReplicas", skip_serializing_if = "is_zero")]
    pub hpa_replicas: i32,
    /// Label selector of the pods receiving active traffic, as a string.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub selector: String,
    /// The pod-template hash of the stable ReplicaSet.
    #[serde(default, rename = "stableRS", skip_serializing_if = "String::is_empty")]
    pub stable_rs: String,
    /// When the last restart finished.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restarted_at: Option<Time>,
    /// Skip all remaining steps, pauses and analysis (set by `promote --full`).
    #[serde(default, skip_serializing_if = "is_false")]
    pub promote_full: bool,
    /// Healthy, Progressing, Paused or Degraded.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub phase: String,
    /// Why the rollout is in its phase.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
    /// The referenced workload's generation, when workloadRef is used.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub workload_observed_generation: String,
    /// AWS ALB state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "preserve_unknown_object")]
    pub alb: Option<serde_json::Value>,
    /// AWS ALB state, several Ingresses.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "super::schema::preserve_unknown_array")]
    pub albs: Option<serde_json::Value>,
}

pub(crate) fn is_zero(n: &i32) -> bool {
    *n == 0
}

/// Why and since when the controller paused the rollout.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PauseCondition {
    /// CanaryPauseStep, BlueGreenPause, InconclusiveAnalysisRun or InconclusiveExperiment.
    pub reason: String,
    /// When the pause started.
    pub start_time: Time,
}

/// A rollout condition (Progressing, Available, Paused, Healthy, Completed, ReplicaFailure, InvalidSpec).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RolloutCondition {
    /// Type of the condition.
    #[serde(rename = "type")]
    pub type_: String,
    /// True, False or Unknown.
    pub status: String,
    /// The last time this condition was updated.
    pub last_update_time: Time,
    /// The last time the condition's status changed.
    pub last_transition_time: Time,
    /// Why the condition last changed, in one word.
    pub reason: String,
    /// Why the condition last changed, for people.
    pub message: String,
}

/// Canary-only state.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CanaryStatus {
    /// The current step's AnalysisRun.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_step_analysis_run_status: Option<RolloutAnalysisRunStatus>,
    /// The current background AnalysisRun.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_background_analysis_run_status: Option<RolloutAnalysisRunStatus>,
    /// The running Experiment.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub current_experiment: String,
    /// The weights set on the traffic router (traffic routing only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weights: Option<TrafficWeights>,
    /// Which of ping or pong is the stable Service.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub stable_ping_pong: String,
    /// Step plugin state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "super::schema::preserve_unknown_array")]
    pub step_plugin_statuses: Option<serde_json::Value>,
}

impl CanaryStatus {
    /// True when nothing would be written.
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

/// Traffic weights applied to the router.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TrafficWeights {
    /// The canary's share.
    pub canary: WeightDestination,
    /// The stable's share.
    pub stable: WeightDestination,
    /// Shares of other ReplicaSets (experiments).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub additional: Vec<WeightDestination>,
    /// Whether the router confirmed the weight.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verified: Option<bool>,
}

/// A traffic destination and its weight.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WeightDestination {
    /// Percentage of traffic.
    pub weight: i32,
    /// The Service traffic goes to.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub service_name: String,
    /// The pod-template hash of the destination.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub pod_template_hash: String,
}

/// Blue-green-only state.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BlueGreenStatus {
    /// The pod-template hash the preview Service selects.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub preview_selector: String,
    /// The pod-template hash the active Service selects.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub active_selector: String,
    /// The preview may now scale to full size.
    #[serde(default, skip_serializing_if = "is_false")]
    pub scale_up_preview_check_point: bool,
    /// The current pre-promotion AnalysisRun.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pre_promotion_analysis_run_status: Option<RolloutAnalysisRunStatus>,
    /// The current post-promotion AnalysisRun.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub post_promotion_analysis_run_status: Option<RolloutAnalysisRunStatus>,
}

impl BlueGreenStatus {
    /// True when nothing would be written.
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

/// An AnalysisRun's name and phase as mirrored in the rollout's status.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RolloutAnalysisRunStatus {
    /// Name of the AnalysisRun.
    pub name: String,
    /// Its phase.
    pub status: AnalysisPhase,
    /// Its message.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
}
