//! `AnalysisTemplate`, `ClusterAnalysisTemplate` and `AnalysisRun`, field for field as Argo Rollouts defines
//! them. None of them has a status subresource: an AnalysisRun's status is patched on the main resource.

use std::collections::BTreeMap;

use k8s_openapi::api::batch::v1::JobSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::rollout::is_false;
use super::schema::preserve_unknown_object;

/// What a metric measures and when its measurements pass. Shared by AnalysisTemplate and
/// ClusterAnalysisTemplate.
#[derive(CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "argoproj.io",
    version = "v1alpha1",
    kind = "AnalysisTemplate",
    doc = "Metrics that decide whether a release is good, for AnalysisRuns in its namespace.",
    namespaced,
    shortname = "at"
)]
#[serde(rename_all = "camelCase")]
pub struct AnalysisTemplateSpec {
    /// The metrics to measure.
    #[serde(default)]
    pub metrics: Vec<Metric>,
    /// Arguments the metrics use as `{{args.name}}`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<Argument>,
    /// Metrics run in dry-run mode.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dry_run: Vec<DryRun>,
    /// How many measurements to keep per metric.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub measurement_retention: Vec<MeasurementRetention>,
    /// Other templates whose metrics and arguments are included.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub templates: Vec<AnalysisTemplateRef>,
}

/// A cluster-scoped AnalysisTemplate.
#[derive(CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "argoproj.io",
    version = "v1alpha1",
    kind = "ClusterAnalysisTemplate",
    doc = "Metrics that decide whether a release is good, for AnalysisRuns in any namespace.",
    shortname = "cat"
)]
#[serde(rename_all = "camelCase")]
pub struct ClusterAnalysisTemplateSpec {
    /// The metrics to measure.
    #[serde(default)]
    pub metrics: Vec<Metric>,
    /// Arguments the metrics use as `{{args.name}}`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<Argument>,
    /// Metrics run in dry-run mode.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dry_run: Vec<DryRun>,
    /// How many measurements to keep per metric.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub measurement_retention: Vec<MeasurementRetention>,
    /// Other templates whose metrics and arguments are included.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub templates: Vec<AnalysisTemplateRef>,
}

impl From<ClusterAnalysisTemplateSpec> for AnalysisTemplateSpec {
    fn from(spec: ClusterAnalysisTemplateSpec) -> Self {
        AnalysisTemplateSpec {
            metrics: spec.metrics,
            args: spec.args,
            dry_run: spec.dry_run,
            measurement_retention: spec.measurement_retention,
            templates: spec.templates,
        }
    }
}

/// A reference to a nested template.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AnalysisTemplateRef {
    /// Name of the template.
    #[serde(default)]
    pub template_name: String,
    /// Look the template up as a ClusterAnalysisTemplate.
    #[serde(default, skip_serializing_if = "is_false")]
    pub cluster_scope: bool,
}

/// A measurement and its pass/fail rules.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Metric {
    /// Name of the metric, unique within the run.
    pub name: String,
    /// Time between measurements, a Go duration such as "30s".
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub interval: String,
    /// Time to wait before the first measurement, a Go duration.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub initial_delay: String,
    /// How many measurements to take. Without it: one, or unbounded when an interval is set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<IntOrString>,
    /// An expression over `result` that is true when a measurement passes.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub success_condition: String,
    /// An expression over `result` that is true when a measurement fails.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub failure_condition: String,
    /// How many failed measurements are tolerated. Defaults to 0; -1 disables the limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_limit: Option<IntOrString>,
    /// How many inconclusive measurements are tolerated. Defaults to 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inconclusive_limit: Option<IntOrString>,
    /// How many consecutive errors are tolerated. Defaults to 4.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consecutive_error_limit: Option<IntOrString>,
    /// Consecutive successes that pass the metric early. Defaults to 0 (off).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consecutive_success_limit: Option<IntOrString>,
    /// Where measurements come from: exactly one provider.
    #[serde(default)]
    pub provider: MetricProvider,
}

/// Where a metric's measurements come from. Exactly one must be set.
// The providers are boxed because only one is ever set: inline, the Job provider's pod template made
// every metric 3,304 bytes instead of 552, in every template and running AnalysisRun the controller
// keeps and in every run it decodes. (A plain comment: doc comments can become CRD text.)
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MetricProvider {
    /// A PromQL query.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prometheus: Option<Box<PrometheusMetric>>,
    /// An HTTP request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub web: Option<Box<WebMetric>>,
    /// A Kubernetes Job whose outcome is the measurement.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job: Option<Box<JobMetric>>,
    /// Kayenta (not run by Ramp yet).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "preserve_unknown_object")]
    pub kayenta: Option<serde_json::Value>,
    /// Datadog (not run by Ramp yet).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "preserve_unknown_object")]
    pub datadog: Option<serde_json::Value>,
    /// Wavefront (not run by Ramp yet).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "preserve_unknown_object")]
    pub wavefront: Option<serde_json::Value>,
    /// New Relic (not run by Ramp yet).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "preserve_unknown_object")]
    pub new_relic: Option<serde_json::Value>,
    /// CloudWatch (not run by Ramp yet).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "preserve_unknown_object")]
    pub cloud_watch: Option<serde_json::Value>,
    /// Graphite (not run by Ramp yet).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "preserve_unknown_object")]
    pub graphite: Option<serde_json::Value>,
    /// InfluxDB (not run by Ramp yet).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "preserve_unknown_object")]
    pub influxdb: Option<serde_json::Value>,
    /// SkyWalking (not run by Ramp yet).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "preserve_unknown_object")]
    pub skywalking: Option<serde_json::Value>,
    /// Metric provider plugins (not run by Ramp yet).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "preserve_unknown_object")]
    pub plugin: Option<serde_json::Value>,
}

impl MetricProvider {
    /// The providers set, by their field names.
    pub fn names(&self) -> Vec<&'static str> {
        [
            ("prometheus", self.prometheus.is_some()),
            ("web", self.web.is_some()),
            ("job", self.job.is_some()),
            ("kayenta", self.kayenta.is_some()),
            ("datadog", self.datadog.is_some()),
            ("wavefront", self.wavefront.is_some()),
            ("newRelic", self.new_relic.is_some()),
            ("cloudWatch", self.cloud_watch.is_some()),
            ("graphite", self.graphite.is_some()),
            ("influxdb", self.influxdb.is_some()),
            ("skywalking", self.skywalking.is_some()),
            ("plugin", self.plugin.is_some()),
        ]
        .into_iter()
        .filter_map(|(name, set)| set.then_some(name))
        .collect()
    }
}

/// A Prometheus query.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PrometheusMetric {
    /// The server's URL. Defaults to `ARGO_ROLLOUTS_PROMETHEUS_ADDRESS` or the controller's flag.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub address: String,
    /// The PromQL query; `{{args.name}}` is replaced by argument values.
    #[serde(default)]
    pub query: String,
    /// Authentication for the server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authentication: Option<Authentication>,
    /// Query timeout in seconds. Defaults to 30.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<i64>,
    /// Skip TLS certificate verification.
    #[serde(default, skip_serializing_if = "is_false")]
    pub insecure: bool,
    /// Extra HTTP headers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub headers: Vec<WebMetricHeader>,
    /// Run a range query instead of an instant one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub range_query: Option<PrometheusRangeQueryArgs>,
}

/// A range query's window.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PrometheusRangeQueryArgs {
    /// Start time, an expression such as `now() - duration("5m")`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub start: String,
    /// End time, an expression such as `now()`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub end: String,
    /// Resolution step, a Go duration.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub step: String,
}

/// Authentication for a metric provider.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Authentication {
    /// AWS SigV4 (not supported by Ramp yet).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "preserve_unknown_object")]
    pub sigv4: Option<serde_json::Value>,
    /// OAuth2 client credentials.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oauth2: Option<OAuth2Config>,
    /// HTTP basic authentication.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub basic_auth: Option<BasicAuth>,
}

/// OAuth2 client credentials.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OAuth2Config {
    /// Token endpoint.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub token_url: String,
    /// Client id.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub client_id: String,
    /// Client secret.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub client_secret: String,
    /// Scopes to request.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scopes: Vec<String>,
}

/// HTTP basic authentication.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BasicAuth {
    /// User name.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub username: String,
    /// Password.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub password: String,
}

/// An HTTP request whose response is the measurement.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WebMetric {
    /// GET, POST or PUT. Defaults to GET.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub method: String,
    /// The URL to request.
    #[serde(default)]
    pub url: String,
    /// Extra HTTP headers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub headers: Vec<WebMetricHeader>,
    /// Request body (POST and PUT only).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub body: String,
    /// Request timeout in seconds. Defaults to 10.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_seconds: Option<i64>,
    /// The JSON path whose first match is `result`. Defaults to `{$}`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub json_path: String,
    /// Skip TLS certificate verification.
    #[serde(default, skip_serializing_if = "is_false")]
    pub insecure: bool,
    /// A JSON request body; sets Content-Type application/json.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "super::schema::preserve_unknown_any")]
    pub json_body: Option<serde_json::Value>,
    /// Authentication for the request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authentication: Option<Authentication>,
}

/// An HTTP header.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct WebMetricHeader {
    /// Header name.
    pub key: String,
    /// Header value.
    pub value: String,
}

/// A Job whose outcome is the measurement.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct JobMetric {
    /// Labels and annotations of the Job.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<JobMetadata>,
    /// The Job's spec.
    pub spec: JobSpec,
}

/// Labels and annotations of a metric's Job.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct JobMetadata {
    /// Labels.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Annotations.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// A template argument.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Argument {
    /// Name of the argument.
    pub name: String,
    /// Its value, if fixed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// Where its value comes from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value_from: Option<ValueFrom>,
}

/// Where a template argument's value comes from.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ValueFrom {
    /// A key of a Secret in the run's namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_key_ref: Option<SecretKeyRef>,
    /// A field of the Rollout.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field_ref: Option<FieldRef>,
}

/// A key of a Secret.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct SecretKeyRef {
    /// Name of the Secret.
    pub name: String,
    /// The key in the Secret's data.
    pub key: String,
}

/// A field path.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FieldRef {
    /// Path of the field, e.g. `metadata.labels['app']`.
    pub field_path: String,
}

/// An argument a Rollout passes to an AnalysisRun.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AnalysisRunArgument {
    /// Name of the argument.
    pub name: String,
    /// A fixed value.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub value: String,
    /// Where the value comes from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value_from: Option<ArgumentValueFrom>,
}

/// Where a Rollout's analysis argument comes from.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ArgumentValueFrom {
    /// The pod-template hash of the `Stable` or `Latest` ReplicaSet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_template_hash_value: Option<String>,
    /// A field of the Rollout.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field_ref: Option<FieldRef>,
}

/// Metrics (by unanchored regular expression on their names) run in dry-run mode.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DryRun {
    /// A regular expression on metric names; `.*` for all.
    pub metric_name: String,
}

/// How many measurements to keep for matching metrics.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MeasurementRetention {
    /// A regular expression on metric names; `.*` for all.
    pub metric_name: String,
    /// Measurements to keep.
    pub limit: i32,
}

// kube's derive takes one `printcolumn(...)` attribute per column.
#[allow(clippy::duplicated_attributes)]
/// An AnalysisRun measures metrics and reaches a verdict.
#[derive(CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "argoproj.io",
    version = "v1alpha1",
    kind = "AnalysisRun",
    doc = "One analysis of a release: metrics measured until a verdict.",
    namespaced,
    status = "AnalysisRunStatus",
    shortname = "ar",
    printcolumn(
        name = "Status",
        type_ = "string",
        json_path = ".status.phase",
        description = "AnalysisRun status"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp",
        description = "Time since resource was created"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct AnalysisRunSpec {
    /// The metrics to measure, resolved from the templates.
    #[serde(default)]
    pub metrics: Vec<Metric>,
    /// The arguments, merged.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<Argument>,
    /// Stop measuring and finish.
    #[serde(default, skip_serializing_if = "is_false")]
    pub terminate: bool,
    /// Metrics run in dry-run mode.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dry_run: Vec<DryRun>,
    /// How many measurements to keep per metric.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub measurement_retention: Vec<MeasurementRetention>,
    /// When to delete the run once it finished.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl_strategy: Option<TtlStrategy>,
}

/// When to delete a finished AnalysisRun.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TtlStrategy {
    /// Seconds after any completion.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seconds_after_completion: Option<i32>,
    /// Seconds after a failure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seconds_after_failure: Option<i32>,
    /// Seconds after a success.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seconds_after_success: Option<i32>,
}

/// The phase of an AnalysisRun, a metric or a measurement.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum AnalysisPhase {
    /// Not started.
    #[default]
    Pending,
    /// Measuring.
    Running,
    /// Passed.
    Successful,
    /// Failed its limit.
    Failed,
    /// Could not be measured.
    Error,
    /// Neither passed nor failed.
    Inconclusive,
}

impl AnalysisPhase {
    /// Every phase, in the order Argo lists them.
    pub const ALL: [AnalysisPhase; 6] = [
        AnalysisPhase::Pending,
        AnalysisPhase::Running,
        AnalysisPhase::Successful,
        AnalysisPhase::Failed,
        AnalysisPhase::Error,
        AnalysisPhase::Inconclusive,
    ];

    /// Successful, Failed, Error and Inconclusive are final.
    pub fn is_completed(self) -> bool {
        matches!(
            self,
            AnalysisPhase::Successful
                | AnalysisPhase::Failed
                | AnalysisPhase::Error
                | AnalysisPhase::Inconclusive
        )
    }

    /// The phase's name as written in status.
    pub fn as_str(self) -> &'static str {
        match self {
            AnalysisPhase::Pending => "Pending",
            AnalysisPhase::Running => "Running",
            AnalysisPhase::Successful => "Successful",
            AnalysisPhase::Failed => "Failed",
            AnalysisPhase::Error => "Error",
            AnalysisPhase::Inconclusive => "Inconclusive",
        }
    }
}

impl std::fmt::Display for AnalysisPhase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the analysis controller measured.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AnalysisRunStatus {
    /// The run's phase; absent before its first reconcile.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<AnalysisPhase>,
    /// Why the run is in its phase.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
    /// One result per metric.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub metric_results: Vec<MetricResult>,
    /// When the run started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<Time>,
    /// When the run completed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completed_at: Option<Time>,
    /// Counts of metrics by final phase (dry-run metrics excluded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_summary: Option<RunSummary>,
    /// Counts of dry-run metrics by final phase.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dry_run_summary: Option<RunSummary>,
}

/// Counts of metrics by phase.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RunSummary {
    /// Metrics in all.
    #[serde(default, skip_serializing_if = "crate::api::rollout::is_zero")]
    pub count: i32,
    /// Successful metrics.
    #[serde(default, skip_serializing_if = "crate::api::rollout::is_zero")]
    pub successful: i32,
    /// Failed metrics.
    #[serde(default, skip_serializing_if = "crate::api::rollout::is_zero")]
    pub failed: i32,
    /// Inconclusive metrics.
    #[serde(default, skip_serializing_if = "crate::api::rollout::is_zero")]
    pub inconclusive: i32,
    /// Errored metrics.
    #[serde(default, skip_serializing_if = "crate::api::rollout::is_zero")]
    pub error: i32,
}

/// The measurements and verdict of one metric.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MetricResult {
    /// Name of the metric.
    pub name: String,
    /// The metric's phase.
    pub phase: AnalysisPhase,
    /// The most recent measurements (bounded by the retention limit).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub measurements: Vec<Measurement>,
    /// The last measurement's message.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
    /// Completed measurements other than errors.
    #[serde(default, skip_serializing_if = "crate::api::rollout::is_zero")]
    pub count: i32,
    /// Successful measurements.
    #[serde(default, skip_serializing_if = "crate::api::rollout::is_zero")]
    pub successful: i32,
    /// Failed measurements.
    #[serde(default, skip_serializing_if = "crate::api::rollout::is_zero")]
    pub failed: i32,
    /// Inconclusive measurements.
    #[serde(default, skip_serializing_if = "crate::api::rollout::is_zero")]
    pub inconclusive: i32,
    /// Errored measurements.
    #[serde(default, skip_serializing_if = "crate::api::rollout::is_zero")]
    pub error: i32,
    /// Errors in a row.
    #[serde(default, skip_serializing_if = "crate::api::rollout::is_zero")]
    pub consecutive_error: i32,
    /// Successes in a row.
    #[serde(default, skip_serializing_if = "crate::api::rollout::is_zero")]
    pub consecutive_success: i32,
    /// The metric runs in dry-run mode.
    #[serde(default, skip_serializing_if = "is_false")]
    pub dry_run: bool,
    /// Provider details, e.g. `ResolvedPrometheusQuery`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub metadata: BTreeMap<String, String>,
}

/// One measurement.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Measurement {
    /// The measurement's phase.
    pub phase: AnalysisPhase,
    /// Why, when it is not Successful.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
    /// When it started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<Time>,
    /// When it finished.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<Time>,
    /// The value measured, as text.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub value: String,
    /// Provider details.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub metadata: BTreeMap<String, String>,
    /// When to resume a measurement still in flight.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resume_at: Option<Time>,
}
