//! Whether a Rollout can be acted on.
//!
//! Argo Rollouts' validation rules (reference §1.7 and §6.1) as pure functions over a Rollout and the
//! objects it refers to, plus the rules for what Ramp does not run yet: a Rollout that asks for something
//! Ramp cannot do gets a clear `InvalidSpec` error instead of being half-run.
//!
//! Errors are Kubernetes `field.Error`s: `<path>: <type>[: <value>][: <detail>]`. The controller shows the
//! first one in the `InvalidSpec` condition ([`invalid_spec_message`]); `kubectl ramp lint` lists all of
//! them ([`validate_rollout_all`]). Spec rules come first, then the checks of referenced objects.
//!
//! Values in `Invalid value` are rendered as Go's field errors render them where that is plain (numbers
//! bare, strings quoted); where Argo would print a Go struct, Ramp prints compact JSON instead.
//!
//! The pod template check is a documented subset of Kubernetes' `ValidatePodTemplateSpecForReplicaSet`:
//! at least one container; container names present, unique (with init containers) and DNS-1123 labels;
//! images present; template labels well-formed and matched by the selector; `restartPolicy` `Always` if
//! set; no `activeDeadlineSeconds`. Everything else (resources, probes, volumes ...) is left to the API
//! server, which validates the ReplicaSet Ramp creates.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use k8s_openapi::api::core::v1::{Container, PodSpec, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde::Serialize;

use super::Rollout;
use super::analysis::{AnalysisTemplateSpec, Argument, Authentication, Metric, MetricProvider};
use super::constants::{POD_TEMPLATE_HASH_LABEL, default};
use super::duration::{parse_go_duration_nanos, pause_duration_seconds};
use super::rollout::{
    AntiAffinity, BlueGreenStrategy, CanaryStep, CanaryStrategy, PodTemplateMetadata,
    RolloutAnalysis, RolloutSpec,
};

/// A Service the rollout references, as validation and the planner see it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ServiceState {
    /// Name of the Service.
    pub name: String,
    /// The Service's `spec.selector`.
    pub selector: BTreeMap<String, String>,
    /// Value of the `argo-rollouts.argoproj.io/managed-by-rollouts` annotation: the rollout that manages
    /// the Service's selector, if any.
    pub managed_by_rollout: Option<String>,
}

/// What a Rollout refers to, looked up by the caller in the Rollout's namespace (and the cluster).
#[derive(Clone, Copy, Debug)]
pub struct References<'a> {
    /// Services of the Rollout's namespace, by name.
    pub services: &'a BTreeMap<String, ServiceState>,
    /// AnalysisTemplates of the Rollout's namespace, by name.
    pub analysis_templates: &'a BTreeMap<String, AnalysisTemplateSpec>,
    /// ClusterAnalysisTemplates, by name (their specs converted to [`AnalysisTemplateSpec`]).
    pub cluster_analysis_templates: &'a BTreeMap<String, AnalysisTemplateSpec>,
}

/// The type of a [`FieldError`], as Kubernetes names them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FieldErrorKind {
    /// A required field is missing or empty: `Required value`.
    Required,
    /// The field's value is not allowed: `Invalid value: <value>`. Holds the value as rendered in the
    /// message: numbers bare, strings quoted, objects as compact JSON.
    Invalid(String),
    /// The field may not be set, here or in Ramp: `Forbidden`.
    Forbidden,
    /// The value is not one of a fixed set: `Unsupported value: <value>`. Holds the quoted value.
    NotSupported(String),
    /// The value must be unique but appears twice: `Duplicate value: <value>`. Holds the quoted value.
    Duplicate(String),
    /// The field names an object that does not exist: `Not found: <value>`. Holds the quoted name.
    NotFound(String),
}

impl FieldErrorKind {
    /// The type as Kubernetes writes it in a field error.
    pub fn type_text(&self) -> &'static str {
        match self {
            FieldErrorKind::Required => "Required value",
            FieldErrorKind::Invalid(_) => "Invalid value",
            FieldErrorKind::Forbidden => "Forbidden",
            FieldErrorKind::NotSupported(_) => "Unsupported value",
            FieldErrorKind::Duplicate(_) => "Duplicate value",
            FieldErrorKind::NotFound(_) => "Not found",
        }
    }

    /// The rendered value the error is about, when the type carries one.
    pub fn value(&self) -> Option<&str> {
        match self {
            FieldErrorKind::Required | FieldErrorKind::Forbidden => None,
            FieldErrorKind::Invalid(value)
            | FieldErrorKind::NotSupported(value)
            | FieldErrorKind::Duplicate(value)
            | FieldErrorKind::NotFound(value) => Some(value),
        }
    }
}

/// One problem, Kubernetes `field.Error` style. Displays as `<path>: <type>: <detail>`, with the value
/// after the type when there is one, e.g.
/// `spec.strategy.canary.steps[0].setWeight: Invalid value: 200: SetWeight needs to be between 0 and 100`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldError {
    /// The field's path, e.g. `spec.strategy.canary.steps[0].setWeight`.
    pub path: String,
    /// What kind of problem it is, with the offending value.
    pub kind: FieldErrorKind,
    /// What is wrong and, for Ramp's own rules, what to do about it.
    pub detail: String,
}

impl FieldError {
    /// A `Required value` error.
    pub fn required(path: impl Into<String>, detail: impl Into<String>) -> Self {
        Self::new(path, FieldErrorKind::Required, detail)
    }

    /// An `Invalid value` error; `value` is already rendered (see [`FieldErrorKind::Invalid`]).
    pub fn invalid(
        path: impl Into<String>,
        value: impl Into<String>,
        detail: impl Into<String>,
    ) -> Self {
        Self::new(path, FieldErrorKind::Invalid(value.into()), detail)
    }

    /// A `Forbidden` error.
    pub fn forbidden(path: impl Into<String>, detail: impl Into<String>) -> Self {
        Self::new(path, FieldErrorKind::Forbidden, detail)
    }

    /// An `Unsupported value` error listing the supported values.
    pub fn not_supported(path: impl Into<String>, value: &str, supported: &[&str]) -> Self {
        let supported: Vec<String> = supported.iter().map(|s| quoted(s)).collect();
        Self::new(
            path,
            FieldErrorKind::NotSupported(quoted(value)),
            format!("supported values: {}", supported.join(", ")),
        )
    }

    /// A `Duplicate value` error.
    pub fn duplicate(path: impl Into<String>, value: &str) -> Self {
        Self::new(path, FieldErrorKind::Duplicate(quoted(value)), "")
    }

    /// A `Not found` error about the object named `name`.
    pub fn not_found(path: impl Into<String>, name: &str, detail: impl Into<String>) -> Self {
        Self::new(path, FieldErrorKind::NotFound(quoted(name)), detail)
    }

    fn new(path: impl Into<String>, kind: FieldErrorKind, detail: impl Into<String>) -> Self {
        FieldError {
            path: path.into(),
            kind,
            detail: detail.into(),
        }
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.kind.type_text())?;
        if let Some(value) = self.kind.value() {
            write!(f, ": {value}")?;
        }
        if !self.detail.is_empty() {
            write!(f, ": {}", self.detail)?;
        }
        Ok(())
    }
}

impl std::error::Error for FieldError {}

/// Every problem with the Rollout, in a stable order: the spec's own rules first (selector, template,
/// counts, strategy, steps, analysis references' shape), then the objects it references (Services,
/// then analysis templates, per referencing field in spec order). For `kubectl ramp lint`.
pub fn validate_rollout_all(rollout: &Rollout, refs: &References) -> Vec<FieldError> {
    let mut errors = validate_spec(&rollout.spec);
    let name = rollout.metadata.name.as_deref().unwrap_or_default();
    check_services(name, &rollout.spec, refs, &mut errors);
    check_analysis_references(&rollout.spec, refs, &mut errors);
    errors
}

/// The first problem, as the `InvalidSpec` condition message:
/// `The Rollout "<name>" is invalid: <FieldError>`. `None` when the Rollout is valid.
pub fn invalid_spec_message(rollout: &Rollout, refs: &References) -> Option<String> {
    let first = validate_rollout_all(rollout, refs).into_iter().next()?;
    let name = rollout.metadata.name.as_deref().unwrap_or_default();
    Some(format!("The Rollout \"{name}\" is invalid: {first}"))
}

/// The checks of one AnalysisTemplate or ClusterAnalysisTemplate on its own (Argo's `ValidateMetric` and
/// the template's shape), with paths from `spec`: exactly one provider, and one Ramp runs (prometheus,
/// web or job); `count > 1` needs an `interval`; `count` at least `failureLimit + consecutiveSuccessLimit`
/// and at least `inconclusiveLimit`; no negative limits except `failureLimit: -1` together with
/// `consecutiveSuccessLimit`; unique metric and argument names; `interval` and `initialDelay` are Go
/// durations. Values that are `{{args.x}}` placeholders are resolved when a run is created, so they are
/// not checked here.
pub fn validate_analysis_template(spec: &AnalysisTemplateSpec) -> Vec<FieldError> {
    let mut errors = Vec::new();
    if spec.metrics.is_empty() && spec.templates.is_empty() {
        errors.push(FieldError::required(
            "spec.metrics",
            "an analysis template needs at least one metric or nested template",
        ));
    }
    let mut metric_names = BTreeSet::new();
    for (i, metric) in spec.metrics.iter().enumerate() {
        let path = format!("spec.metrics[{i}]");
        if metric.name.is_empty() {
            errors.push(FieldError::required(
                format!("{path}.name"),
                "every metric needs a name",
            ));
        } else if !metric_names.insert(metric.name.as_str()) {
            errors.push(FieldError::duplicate(format!("{path}.name"), &metric.name));
        }
        check_metric_provider(&path, &metric.provider, &mut errors);
        check_conditions(&path, metric, &mut errors);
        check_metric_timing(&path, metric, &mut errors);
        check_metric_limits(&path, metric, &mut errors);
    }
    check_template_args(&spec.args, &mut errors);
    for (i, dry_run) in spec.dry_run.iter().enumerate() {
        if dry_run.metric_name.is_empty() {
            errors.push(FieldError::required(
                format!("spec.dryRun[{i}].metricName"),
                "a metric name pattern is required (\".*\" for all)",
            ));
        }
    }
    for (i, retention) in spec.measurement_retention.iter().enumerate() {
        check_retention(
            "spec",
            i,
            &retention.metric_name,
            retention.limit,
            &mut errors,
        );
    }
    for (i, nested) in spec.templates.iter().enumerate() {
        if nested.template_name.is_empty() {
            errors.push(FieldError::required(
                format!("spec.templates[{i}].templateName"),
                "the name of the nested template is required",
            ));
        }
    }
    errors
}

// ---------------------------------------------------------------------------------------------------
// Spec rules

const SELECTOR: &str = "spec.selector";
const TEMPLATE: &str = "spec.template";
const STRATEGY: &str = "spec.strategy";
const CANARY: &str = "spec.strategy.canary";
const BLUE_GREEN: &str = "spec.strategy.blueGreen";

/// The rules that need nothing but the spec, in Argo's order.
fn validate_spec(spec: &RolloutSpec) -> Vec<FieldError> {
    let mut errors = Vec::new();
    let selector_ok = check_selector(spec, &mut errors);
    check_workload_ref(spec, &mut errors);
    check_pod_template(spec, selector_ok, &mut errors);
    check_counts(spec, &mut errors);
    check_strategy(spec, &mut errors);
    errors
}

/// `spec.selector`: present (unless `workloadRef` provides it), not empty, well-formed.
/// Returns whether the selector can be matched against the template's labels.
fn check_selector(spec: &RolloutSpec, errors: &mut Vec<FieldError>) -> bool {
    let Some(selector) = &spec.selector else {
        if spec.workload_ref.is_none() {
            errors.push(FieldError::required(
                SELECTOR,
                "Rollout has missing field '.spec.selector'",
            ));
        }
        return false;
    };
    let labels = selector.match_labels.as_ref();
    let expressions = selector.match_expressions.as_deref().unwrap_or_default();
    if labels.is_none_or(BTreeMap::is_empty) && expressions.is_empty() {
        errors.push(FieldError::invalid(
            SELECTOR,
            json(selector),
            "empty selector is invalid for deployment",
        ));
        return false;
    }
    let before = errors.len();
    if let Some(labels) = labels {
        check_labels(&format!("{SELECTOR}.matchLabels"), labels, errors);
    }
    for (i, requirement) in expressions.iter().enumerate() {
        let path = format!("{SELECTOR}.matchExpressions[{i}]");
        if !is_label_key(&requirement.key) {
            errors.push(FieldError::invalid(
                format!("{path}.key"),
                quoted(&requirement.key),
                LABEL_KEY_RULE,
            ));
        }
        let values = requirement.values.as_deref().unwrap_or_default();
        match requirement.operator.as_str() {
            "In" | "NotIn" if values.is_empty() => errors.push(FieldError::required(
                format!("{path}.values"),
                "the In and NotIn operators need at least one value",
            )),
            "Exists" | "DoesNotExist" if !values.is_empty() => errors.push(FieldError::forbidden(
                format!("{path}.values"),
                "the Exists and DoesNotExist operators take no values",
            )),
            "In" | "NotIn" | "Exists" | "DoesNotExist" => {}
            other => errors.push(FieldError::not_supported(
                format!("{path}.operator"),
                other,
                &["In", "NotIn", "Exists", "DoesNotExist"],
            )),
        }
        for value in values {
            if !is_label_value(value) {
                errors.push(FieldError::invalid(
                    format!("{path}.values"),
                    quoted(value),
                    LABEL_VALUE_RULE,
                ));
            }
        }
    }
    errors.len() == before
}

/// `spec.workloadRef`: Ramp does not resolve referenced workloads yet.
fn check_workload_ref(spec: &RolloutSpec, errors: &mut Vec<FieldError>) {
    if spec.workload_ref.is_none() {
        return;
    }
    errors.push(FieldError::forbidden(
        "spec.workloadRef",
        "Ramp does not run workloadRef yet; copy the pod template into spec.template and its \
         selector into spec.selector, then remove spec.workloadRef",
    ));
    if spec.template.is_some() {
        errors.push(FieldError::forbidden(
            TEMPLATE,
            "spec.template must be empty when spec.workloadRef is set",
        ));
    }
}

/// `spec.template`: the subset of the ReplicaSet pod-template rules described in the module docs.
fn check_pod_template(spec: &RolloutSpec, selector_ok: bool, errors: &mut Vec<FieldError>) {
    if spec.workload_ref.is_some() {
        return;
    }
    let Some(template) = &spec.template else {
        errors.push(FieldError::required(
            TEMPLATE,
            "Rollout has missing field '.spec.template'",
        ));
        return;
    };
    let empty = BTreeMap::new();
    let labels = template_labels(template).unwrap_or(&empty);
    let labels_path = format!("{TEMPLATE}.metadata.labels");
    let before = errors.len();
    check_labels(&labels_path, labels, errors);
    if selector_ok
        && errors.len() == before
        && let Some(selector) = &spec.selector
        && !selector_matches(selector, labels)
    {
        errors.push(FieldError::invalid(
            labels_path,
            json(labels),
            "spec.selector does not match the template's labels",
        ));
    }
    let pod_path = format!("{TEMPLATE}.spec");
    let default_pod = PodSpec::default();
    let pod = template.spec.as_ref().unwrap_or(&default_pod);
    check_containers(&pod_path, pod, errors);
    if let Some(policy) = pod.restart_policy.as_deref()
        && policy != "Always"
    {
        errors.push(FieldError::not_supported(
            format!("{pod_path}.restartPolicy"),
            policy,
            &["Always"],
        ));
    }
    if pod.active_deadline_seconds.is_some() {
        errors.push(FieldError::forbidden(
            format!("{pod_path}.activeDeadlineSeconds"),
            "a Rollout's pods run until they are replaced; activeDeadlineSeconds is not allowed",
        ));
    }
}

/// Containers and init containers of a pod spec: at least one container, names present, unique and
/// DNS-1123 labels, images present.
fn check_containers(pod_path: &str, pod: &PodSpec, errors: &mut Vec<FieldError>) {
    if pod.containers.is_empty() {
        errors.push(FieldError::required(
            format!("{pod_path}.containers"),
            "a pod template needs at least one container",
        ));
    }
    let mut names = BTreeSet::new();
    let init = pod.init_containers.as_deref().unwrap_or_default();
    let all = init
        .iter()
        .enumerate()
        .map(|(i, c)| (format!("{pod_path}.initContainers[{i}]"), c))
        .chain(
            pod.containers
                .iter()
                .enumerate()
                .map(|(i, c)| (format!("{pod_path}.containers[{i}]"), c)),
        );
    for (path, container) in all {
        check_container(&path, container, &mut names, errors);
    }
}

/// One container: its name and image.
fn check_container<'c>(
    path: &str,
    container: &'c Container,
    names: &mut BTreeSet<&'c str>,
    errors: &mut Vec<FieldError>,
) {
    let name = container.name.as_str();
    if name.is_empty() {
        errors.push(FieldError::required(
            format!("{path}.name"),
            "every container needs a name",
        ));
    } else if !is_dns1123_label(name) {
        errors.push(FieldError::invalid(
            format!("{path}.name"),
            quoted(name),
            DNS1123_LABEL_RULE,
        ));
    } else if !names.insert(name) {
        errors.push(FieldError::duplicate(format!("{path}.name"), name));
    }
    if container
        .image
        .as_deref()
        .unwrap_or_default()
        .trim()
        .is_empty()
    {
        errors.push(FieldError::required(
            format!("{path}.image"),
            format!("container {} needs an image", quoted(name)),
        ));
    }
}

/// Replicas, limits and deadlines that must not be negative, and the progress deadline that must
/// exceed `minReadySeconds`.
fn check_counts(spec: &RolloutSpec, errors: &mut Vec<FieldError>) {
    non_negative("spec.replicas", spec.replicas, errors);
    non_negative("spec.minReadySeconds", spec.min_ready_seconds, errors);
    non_negative(
        "spec.revisionHistoryLimit",
        spec.revision_history_limit,
        errors,
    );
    if let Some(window) = &spec.rollback_window {
        non_negative("spec.rollbackWindow.revisions", window.revisions, errors);
    }
    if let Some(analysis) = &spec.analysis {
        non_negative(
            "spec.analysis.successfulRunHistoryLimit",
            analysis.successful_run_history_limit,
            errors,
        );
        non_negative(
            "spec.analysis.unsuccessfulRunHistoryLimit",
            analysis.unsuccessful_run_history_limit,
            errors,
        );
    }
    let min_ready = spec.min_ready_seconds_or_default();
    let deadline = spec.progress_deadline_seconds_or_default();
    if min_ready >= 0 && deadline <= min_ready {
        errors.push(FieldError::invalid(
            "spec.progressDeadlineSeconds",
            deadline.to_string(),
            format!("progressDeadlineSeconds must be greater than minReadySeconds ({min_ready})"),
        ));
    }
}

/// Exactly one strategy, then that strategy's rules.
fn check_strategy(spec: &RolloutSpec, errors: &mut Vec<FieldError>) {
    match (&spec.strategy.canary, &spec.strategy.blue_green) {
        (None, None) => errors.push(FieldError::required(
            STRATEGY,
            "Rollout has missing field '.spec.strategy.canary or .spec.strategy.blueGreen'",
        )),
        (Some(_), Some(_)) => errors.push(FieldError::forbidden(
            STRATEGY,
            "Multiple Strategies can not be listed",
        )),
        (Some(canary), None) => check_canary(canary, errors),
        (None, Some(blue_green)) => check_blue_green(spec, blue_green, errors),
    }
}

/// `spec.strategy.blueGreen`.
fn check_blue_green(spec: &RolloutSpec, bg: &BlueGreenStrategy, errors: &mut Vec<FieldError>) {
    if bg.active_service.is_empty() {
        errors.push(FieldError::required(
            format!("{BLUE_GREEN}.activeService"),
            "Rollout has missing field '.spec.strategy.blueGreen.activeService'",
        ));
    } else if bg.active_service == bg.preview_service {
        errors.push(FieldError::invalid(
            format!("{BLUE_GREEN}.previewService"),
            quoted(&bg.preview_service),
            "This rollout uses the same service for the active and preview services, but two \
             different services are required.",
        ));
    }
    for (field, value) in [
        ("previewReplicaCount", bg.preview_replica_count),
        ("autoPromotionSeconds", bg.auto_promotion_seconds),
        ("scaleDownDelaySeconds", bg.scale_down_delay_seconds),
        (
            "scaleDownDelayRevisionLimit",
            bg.scale_down_delay_revision_limit,
        ),
        (
            "abortScaleDownDelaySeconds",
            bg.abort_scale_down_delay_seconds,
        ),
    ] {
        non_negative(&format!("{BLUE_GREEN}.{field}"), value, errors);
    }
    let history = spec.revision_history_limit_or_default();
    if let Some(limit) = bg.scale_down_delay_revision_limit
        && history >= 0
        && limit > history
    {
        errors.push(FieldError::invalid(
            format!("{BLUE_GREEN}.scaleDownDelayRevisionLimit"),
            limit.to_string(),
            format!(
                "scaleDownDelayRevisionLimit can not be greater than revisionHistoryLimit ({history})"
            ),
        ));
    }
    if let Some(max_unavailable) = &bg.max_unavailable {
        check_int_or_percent(
            &format!("{BLUE_GREEN}.maxUnavailable"),
            max_unavailable,
            true,
            errors,
        );
    }
    check_anti_affinity(BLUE_GREEN, bg.anti_affinity.as_ref(), errors);
    check_pod_metadata(
        BLUE_GREEN,
        "previewMetadata",
        bg.preview_metadata.as_ref(),
        errors,
    );
    check_pod_metadata(
        BLUE_GREEN,
        "activeMetadata",
        bg.active_metadata.as_ref(),
        errors,
    );
    if let Some(analysis) = &bg.pre_promotion_analysis {
        check_rollout_analysis(
            &format!("{BLUE_GREEN}.prePromotionAnalysis"),
            analysis,
            errors,
        );
    }
    if let Some(analysis) = &bg.post_promotion_analysis {
        check_rollout_analysis(
            &format!("{BLUE_GREEN}.postPromotionAnalysis"),
            analysis,
            errors,
        );
    }
}

/// `spec.strategy.canary`, except the steps.
fn check_canary(canary: &CanaryStrategy, errors: &mut Vec<FieldError>) {
    check_surge_and_unavailable(canary, errors);
    if !canary.canary_service.is_empty() && canary.canary_service == canary.stable_service {
        errors.push(FieldError::invalid(
            format!("{CANARY}.stableService"),
            quoted(&canary.stable_service),
            "This rollout uses the same service for the stable and canary services, but two \
             different services are required.",
        ));
    }
    check_traffic_routing(canary, errors);
    for (field, value) in [
        ("scaleDownDelaySeconds", canary.scale_down_delay_seconds),
        (
            "scaleDownDelayRevisionLimit",
            canary.scale_down_delay_revision_limit,
        ),
        (
            "abortScaleDownDelaySeconds",
            canary.abort_scale_down_delay_seconds,
        ),
        ("minPodsPerReplicaSet", canary.min_pods_per_replica_set),
    ] {
        non_negative(&format!("{CANARY}.{field}"), value, errors);
    }
    check_ping_pong(canary, errors);
    check_replica_progress_threshold(canary, errors);
    check_anti_affinity(CANARY, canary.anti_affinity.as_ref(), errors);
    check_pod_metadata(
        CANARY,
        "canaryMetadata",
        canary.canary_metadata.as_ref(),
        errors,
    );
    check_pod_metadata(
        CANARY,
        "stableMetadata",
        canary.stable_metadata.as_ref(),
        errors,
    );
    let steps = canary.steps.as_deref().unwrap_or_default();
    check_background_analysis(canary, steps.len(), errors);
    check_canary_steps(canary, steps, errors);
}

/// `pingPong`: both Services named.
fn check_ping_pong(canary: &CanaryStrategy, errors: &mut Vec<FieldError>) {
    if let Some(ping_pong) = &canary.ping_pong {
        for (field, name) in [
            ("pingService", &ping_pong.ping_service),
            ("pongService", &ping_pong.pong_service),
        ] {
            if name.is_empty() {
                errors.push(FieldError::required(
                    format!("{CANARY}.pingPong.{field}"),
                    "pingPong needs both a pingService and a pongService",
                ));
            }
        }
    }
}

/// `replicaProgressThreshold`: a known type and a value in range.
fn check_replica_progress_threshold(canary: &CanaryStrategy, errors: &mut Vec<FieldError>) {
    if let Some(threshold) = &canary.replica_progress_threshold {
        let path = format!("{CANARY}.replicaProgressThreshold");
        match threshold.type_.as_str() {
            "Percent" if !(0..=100).contains(&threshold.value) => errors.push(FieldError::invalid(
                format!("{path}.value"),
                threshold.value.to_string(),
                "a Percent threshold must be between 0 and 100",
            )),
            "Pods" if threshold.value < 0 => errors.push(FieldError::invalid(
                format!("{path}.value"),
                threshold.value.to_string(),
                NON_NEGATIVE,
            )),
            "Percent" | "Pods" => {}
            other => errors.push(FieldError::not_supported(
                format!("{path}.type"),
                other,
                &["Percent", "Pods"],
            )),
        }
    }
}

/// The background analysis: its reference's shape, and a `startingStep` within the steps.
fn check_background_analysis(
    canary: &CanaryStrategy,
    step_count: usize,
    errors: &mut Vec<FieldError>,
) {
    if let Some(background) = &canary.analysis {
        let path = format!("{CANARY}.analysis");
        check_rollout_analysis(&path, &background.analysis, errors);
        if let Some(start) = background.starting_step
            && (start < 0 || start as usize > step_count)
        {
            errors.push(FieldError::invalid(
                format!("{path}.startingStep"),
                start.to_string(),
                format!("startingStep must be between 0 and the number of steps ({step_count})"),
            ));
        }
    }
}

/// `maxSurge` and `maxUnavailable`: well-formed, and not both zero.
fn check_surge_and_unavailable(canary: &CanaryStrategy, errors: &mut Vec<FieldError>) {
    let surge_path = format!("{CANARY}.maxSurge");
    let unavailable_path = format!("{CANARY}.maxUnavailable");
    let surge = canary.max_surge_or_default();
    let unavailable = canary.max_unavailable_or_default();
    let surge_ok = check_int_or_percent(&surge_path, &surge, false, errors);
    let unavailable_ok = check_int_or_percent(&unavailable_path, &unavailable, true, errors);
    if surge_ok && unavailable_ok && is_zero_amount(&surge) && is_zero_amount(&unavailable) {
        errors.push(FieldError::invalid(
            unavailable_path,
            int_or_string(&unavailable),
            "MaxSurge and MaxUnavailable both can not be zero",
        ));
    }
}

/// Traffic routing: a router is named, the routers that need them have canary and stable Services,
/// `maxTrafficWeight` only with the routers that support it, and the fields that only make sense with a
/// router.
fn check_traffic_routing(canary: &CanaryStrategy, errors: &mut Vec<FieldError>) {
    let Some(routing) = &canary.traffic_routing else {
        if let Some(delay) = canary.scale_down_delay_seconds {
            errors.push(FieldError::invalid(
                format!("{CANARY}.scaleDownDelaySeconds"),
                delay.to_string(),
                "ScaleDownDelaySeconds requires TrafficRouting to be set",
            ));
        }
        if canary.dynamic_stable_scale {
            errors.push(FieldError::invalid(
                format!("{CANARY}.dynamicStableScale"),
                "true",
                "DynamicStableScale requires TrafficRouting to be set",
            ));
        }
        return;
    };
    let path = format!("{CANARY}.trafficRouting");
    if canary.dynamic_stable_scale && canary.scale_down_delay_seconds.is_some() {
        errors.push(FieldError::forbidden(
            format!("{CANARY}.dynamicStableScale"),
            "dynamicStableScale and scaleDownDelaySeconds can not be used together",
        ));
    }
    let routers = routing.routers();
    if routers.is_empty() {
        errors.push(FieldError::required(
            path.clone(),
            "trafficRouting needs one of istio, nginx, alb, smi, ambassador, appMesh, traefik, \
             apisix or plugins",
        ));
    }
    let ping_pong = canary.ping_pong.is_some();
    let istio_has_destination_rule = routing
        .istio
        .as_ref()
        .and_then(|istio| istio.get("destinationRule"))
        .is_some_and(|rule| !rule.is_null());
    for router in &routers {
        let needs_services = match *router {
            "alb" => !ping_pong,
            "istio" => !ping_pong && !istio_has_destination_rule,
            "plugins" => false,
            _ => true,
        };
        if !needs_services {
            continue;
        }
        for (field, name) in [
            ("canaryService", &canary.canary_service),
            ("stableService", &canary.stable_service),
        ] {
            if name.is_empty() {
                errors.push(FieldError::required(
                    format!("{CANARY}.{field}"),
                    format!("trafficRouting.{router} needs both canaryService and stableService"),
                ));
            }
        }
    }
    if let Some(max) = routing.max_traffic_weight {
        let max_path = format!("{path}.maxTrafficWeight");
        if max < 1 {
            errors.push(FieldError::invalid(
                max_path,
                max.to_string(),
                "maxTrafficWeight must be greater than 0",
            ));
        } else if routers.iter().any(|r| *r != "nginx" && *r != "plugins") {
            errors.push(FieldError::forbidden(
                max_path,
                "maxTrafficWeight is only supported by the nginx and plugins traffic routers",
            ));
        }
    }
}

/// Each canary step: exactly one kind; setWeight in range; a valid pause; setCanaryScale with a
/// traffic router and one setting; an analysis step with at least one template and a well-formed
/// reference; and the step kinds Ramp does not run yet.
fn check_canary_steps(canary: &CanaryStrategy, steps: &[CanaryStep], errors: &mut Vec<FieldError>) {
    let max_weight = match canary.max_traffic_weight() {
        max if max >= 1 => max,
        _ => default::MAX_TRAFFIC_WEIGHT,
    };
    for (i, step) in steps.iter().enumerate() {
        let path = format!("{CANARY}.steps[{i}]");
        let kinds = [
            step.set_weight.is_some(),
            step.pause.is_some(),
            step.experiment.is_some(),
            step.analysis.is_some(),
            step.set_canary_scale.is_some(),
            step.set_header_route.is_some(),
            step.set_mirror_route.is_some(),
            step.plugin.is_some(),
        ];
        if kinds.iter().filter(|set| **set).count() != 1 {
            errors.push(FieldError::invalid(
                path,
                json(step),
                "Step must have one of the following set: experiment, setWeight, setCanaryScale, \
                 plugin or pause",
            ));
            continue;
        }
        if let Some(weight) = step.set_weight
            && !(0..=max_weight).contains(&weight)
        {
            errors.push(FieldError::invalid(
                format!("{path}.setWeight"),
                weight.to_string(),
                format!("SetWeight needs to be between 0 and {max_weight}"),
            ));
        }
        if let Some(duration) = step.pause.as_ref().and_then(|p| p.duration.as_ref())
            && pause_duration_seconds(duration).is_none_or(|seconds| seconds < 0)
        {
            errors.push(FieldError::invalid(
                format!("{path}.pause.duration"),
                int_or_string(duration),
                "a pause duration must be 0 or more: seconds as a number, or a Go duration such \
                 as \"30s\" or \"5m\"",
            ));
        }
        if let Some(scale) = &step.set_canary_scale {
            let scale_path = format!("{path}.setCanaryScale");
            if canary.traffic_routing.is_none() {
                errors.push(FieldError::invalid(
                    scale_path.clone(),
                    json(scale),
                    "SetCanaryScale requires TrafficRouting to be set",
                ));
            }
            let set = [
                scale.weight.is_some(),
                scale.replicas.is_some(),
                scale.match_traffic_weight,
            ];
            if set.iter().filter(|s| **s).count() != 1 {
                errors.push(FieldError::invalid(
                    scale_path.clone(),
                    json(scale),
                    "setCanaryScale needs exactly one of weight, replicas or matchTrafficWeight",
                ));
            }
            if let Some(weight) = scale.weight
                && !(0..=100).contains(&weight)
            {
                errors.push(FieldError::invalid(
                    format!("{scale_path}.weight"),
                    weight.to_string(),
                    "setCanaryScale weight needs to be between 0 and 100",
                ));
            }
            non_negative(&format!("{scale_path}.replicas"), scale.replicas, errors);
        }
        if let Some(analysis) = &step.analysis {
            check_rollout_analysis(&format!("{path}.analysis"), analysis, errors);
            if analysis.templates.is_empty() {
                errors.push(FieldError::required(
                    format!("{path}.analysis.templates"),
                    "an analysis step needs at least one template",
                ));
            }
        }
        check_unsupported_step(&path, step, errors);
    }
}

/// The step kinds Ramp does not run yet: a clear error each, never a silently skipped step.
fn check_unsupported_step(path: &str, step: &CanaryStep, errors: &mut Vec<FieldError>) {
    if step.experiment.is_some() {
        errors.push(FieldError::forbidden(
            format!("{path}.experiment"),
            "Ramp does not run experiment steps yet; remove the step, or measure the canary with \
             an analysis step instead",
        ));
    }
    if step.set_header_route.is_some() {
        errors.push(FieldError::forbidden(
            format!("{path}.setHeaderRoute"),
            "Ramp does not run setHeaderRoute steps yet; remove the step and shift traffic with \
             setWeight",
        ));
    }
    if step.set_mirror_route.is_some() {
        errors.push(FieldError::forbidden(
            format!("{path}.setMirrorRoute"),
            "Ramp does not run setMirrorRoute steps yet; remove the step and shift traffic with \
             setWeight",
        ));
    }
    if step.plugin.is_some() {
        errors.push(FieldError::forbidden(
            format!("{path}.plugin"),
            "Ramp does not run step plugins yet; remove the step, or replace it with an analysis \
             step using a web or job metric",
        ));
    }
}

/// The shape of an analysis reference (step, background, pre- or post-promotion): template names,
/// arguments and their sources, dry-run and retention entries. Whether the templates exist is checked
/// with the references.
fn check_rollout_analysis(path: &str, analysis: &RolloutAnalysis, errors: &mut Vec<FieldError>) {
    for (j, template) in analysis.templates.iter().enumerate() {
        if template.template_name.is_empty() {
            errors.push(FieldError::required(
                format!("{path}.templates[{j}].templateName"),
                "the name of the analysis template is required",
            ));
        }
    }
    let mut names = BTreeSet::new();
    for (k, arg) in analysis.args.iter().enumerate() {
        let arg_path = format!("{path}.args[{k}]");
        if arg.name.is_empty() {
            errors.push(FieldError::required(
                format!("{arg_path}.name"),
                "every argument needs a name",
            ));
        } else if !names.insert(arg.name.as_str()) {
            errors.push(FieldError::duplicate(format!("{arg_path}.name"), &arg.name));
        }
        let Some(from) = &arg.value_from else {
            continue;
        };
        let from_path = format!("{arg_path}.valueFrom");
        match (&from.pod_template_hash_value, &from.field_ref) {
            (None, None) => errors.push(FieldError::required(
                from_path,
                "valueFrom needs podTemplateHashValue or fieldRef",
            )),
            (Some(_), Some(_)) => errors.push(FieldError::invalid(
                from_path,
                json(from),
                "valueFrom needs exactly one of podTemplateHashValue or fieldRef",
            )),
            (Some(hash), None) => {
                if hash != "Stable" && hash != "Latest" {
                    errors.push(FieldError::not_supported(
                        format!("{from_path}.podTemplateHashValue"),
                        hash,
                        &["Stable", "Latest"],
                    ));
                }
            }
            (None, Some(field_ref)) => {
                if field_ref.field_path.is_empty() {
                    errors.push(FieldError::required(
                        format!("{from_path}.fieldRef.fieldPath"),
                        "a field path such as metadata.labels['app'] is required",
                    ));
                }
            }
        }
    }
    for (k, dry_run) in analysis.dry_run.iter().enumerate() {
        if dry_run.metric_name.is_empty() {
            errors.push(FieldError::required(
                format!("{path}.dryRun[{k}].metricName"),
                "a metric name pattern is required (\".*\" for all)",
            ));
        }
    }
    for (k, retention) in analysis.measurement_retention.iter().enumerate() {
        check_retention(path, k, &retention.metric_name, retention.limit, errors);
    }
}

/// One `measurementRetention` entry.
fn check_retention(
    path: &str,
    k: usize,
    metric_name: &str,
    limit: i32,
    errors: &mut Vec<FieldError>,
) {
    let entry = format!("{path}.measurementRetention[{k}]");
    if metric_name.is_empty() {
        errors.push(FieldError::required(
            format!("{entry}.metricName"),
            "a metric name pattern is required (\".*\" for all)",
        ));
    }
    non_negative(&format!("{entry}.limit"), Some(limit), errors);
}

/// `antiAffinity`: exactly one rule; a preferred rule's weight in 1..=100.
fn check_anti_affinity(strategy: &str, anti: Option<&AntiAffinity>, errors: &mut Vec<FieldError>) {
    let Some(anti) = anti else {
        return;
    };
    let path = format!("{strategy}.antiAffinity");
    let preferred = &anti.preferred_during_scheduling_ignored_during_execution;
    let required = &anti.required_during_scheduling_ignored_during_execution;
    if preferred.is_some() == required.is_some() {
        errors.push(FieldError::invalid(
            path.clone(),
            json(anti),
            "antiAffinity needs exactly one of preferredDuringSchedulingIgnoredDuringExecution or \
             requiredDuringSchedulingIgnoredDuringExecution",
        ));
    }
    if let Some(preferred) = preferred
        && !(1..=100).contains(&preferred.weight)
    {
        errors.push(FieldError::invalid(
            format!("{path}.preferredDuringSchedulingIgnoredDuringExecution.weight"),
            preferred.weight.to_string(),
            "antiAffinity weight must be between 1 and 100",
        ));
    }
}

/// Ephemeral pod metadata (`canaryMetadata`, `stableMetadata`, `previewMetadata`, `activeMetadata`):
/// the labels must be valid label keys and values.
fn check_pod_metadata(
    strategy: &str,
    field: &str,
    metadata: Option<&PodTemplateMetadata>,
    errors: &mut Vec<FieldError>,
) {
    if let Some(metadata) = metadata {
        check_labels(
            &format!("{strategy}.{field}.labels"),
            &metadata.labels,
            errors,
        );
    }
}

// ---------------------------------------------------------------------------------------------------
// Reference rules

/// The Services the strategy names: each must exist, must not be managed by another rollout, and its
/// selector (apart from the pod-template-hash key Ramp sets) must match the template's labels.
fn check_services(
    rollout_name: &str,
    spec: &RolloutSpec,
    refs: &References,
    errors: &mut Vec<FieldError>,
) {
    let mut named: Vec<(String, &str)> = Vec::new();
    if let Some(canary) = &spec.strategy.canary {
        named.push((format!("{CANARY}.canaryService"), &canary.canary_service));
        named.push((format!("{CANARY}.stableService"), &canary.stable_service));
        if let Some(ping_pong) = &canary.ping_pong {
            named.push((
                format!("{CANARY}.pingPong.pingService"),
                &ping_pong.ping_service,
            ));
            named.push((
                format!("{CANARY}.pingPong.pongService"),
                &ping_pong.pong_service,
            ));
        }
    }
    if let Some(bg) = &spec.strategy.blue_green {
        named.push((format!("{BLUE_GREEN}.activeService"), &bg.active_service));
        named.push((format!("{BLUE_GREEN}.previewService"), &bg.preview_service));
    }
    let labels = spec.template.as_ref().and_then(template_labels);
    for (path, name) in named {
        if name.is_empty() {
            continue;
        }
        let Some(service) = refs.services.get(name) else {
            errors.push(FieldError::not_found(
                path,
                name,
                "no Service with this name in the Rollout's namespace",
            ));
            continue;
        };
        if let Some(manager) = service.managed_by_rollout.as_deref()
            && !manager.is_empty()
            && manager != rollout_name
        {
            errors.push(FieldError::invalid(
                path.clone(),
                quoted(name),
                format!("Service {} is managed by another Rollout", quoted(name)),
            ));
        }
        let Some(labels) = labels else {
            continue;
        };
        for (key, value) in &service.selector {
            if key != POD_TEMPLATE_HASH_LABEL && labels.get(key) != Some(value) {
                errors.push(FieldError::invalid(
                    path.clone(),
                    quoted(name),
                    format!(
                        "Service {} has unmatch label {} in rollout",
                        quoted(name),
                        quoted(key)
                    ),
                ));
            }
        }
    }
}

/// One analysis reference of the rollout and whether its metrics must finish on their own.
struct AnalysisGroup<'s> {
    path: String,
    analysis: &'s RolloutAnalysis,
    /// Step, pre- and post-promotion analyses must end; a background analysis may run indefinitely.
    must_finish: bool,
}

/// Every analysis reference of the spec, in spec order.
fn analysis_groups(spec: &RolloutSpec) -> Vec<AnalysisGroup<'_>> {
    let mut groups = Vec::new();
    if let Some(canary) = &spec.strategy.canary {
        for (i, step) in canary.steps.iter().flatten().enumerate() {
            if let Some(analysis) = &step.analysis {
                groups.push(AnalysisGroup {
                    path: format!("{CANARY}.steps[{i}].analysis"),
                    analysis,
                    must_finish: true,
                });
            }
        }
        if let Some(background) = &canary.analysis {
            groups.push(AnalysisGroup {
                path: format!("{CANARY}.analysis"),
                analysis: &background.analysis,
                must_finish: false,
            });
        }
    }
    if let Some(bg) = &spec.strategy.blue_green {
        for (field, analysis) in [
            ("prePromotionAnalysis", &bg.pre_promotion_analysis),
            ("postPromotionAnalysis", &bg.post_promotion_analysis),
        ] {
            if let Some(analysis) = analysis {
                groups.push(AnalysisGroup {
                    path: format!("{BLUE_GREEN}.{field}"),
                    analysis,
                    must_finish: true,
                });
            }
        }
    }
    groups
}

/// A metric or argument found while flattening a group's templates, with where it came from.
struct Found<'t, T> {
    /// Index of the rollout's template reference that led to it.
    top: usize,
    /// The template that defines it: `AnalysisTemplate "name"` or `ClusterAnalysisTemplate "name"`.
    template: String,
    /// That template's name.
    template_name: &'t str,
    item: &'t T,
}

/// The analysis templates each group references: they exist, are valid, merge (unique metric names,
/// no conflicting argument values), finish on their own where they must, and get every argument they
/// declare without a value from the rollout.
fn check_analysis_references(spec: &RolloutSpec, refs: &References, errors: &mut Vec<FieldError>) {
    for group in analysis_groups(spec) {
        let (metrics, args) = flatten_templates(&group, refs, errors);
        let ref_path = |top: usize| format!("{}.templates[{top}].templateName", group.path);
        let top_name = |top: usize| {
            let name = group
                .analysis
                .templates
                .get(top)
                .map(|t| t.template_name.as_str())
                .unwrap_or_default();
            quoted(name)
        };

        let mut first_metric: BTreeMap<&str, &str> = BTreeMap::new();
        for found in &metrics {
            let name = found.item.name.as_str();
            match first_metric.get(name) {
                Some(first) if *first != found.template => errors.push(FieldError::invalid(
                    ref_path(found.top),
                    top_name(found.top),
                    format!(
                        "metric {} is defined by both {} and {}; metric names must be unique \
                         across the templates of one analysis",
                        quoted(name),
                        first,
                        found.template
                    ),
                )),
                Some(_) => {}
                None => {
                    first_metric.insert(name, &found.template);
                }
            }
        }

        // The merged arguments: the first template value wins; a different value later is an error.
        let mut merged: BTreeMap<&str, (&Found<Argument>, bool)> = BTreeMap::new();
        for found in &args {
            let arg = found.item;
            let has_value = arg.value.is_some() || arg.value_from.is_some();
            match merged.get_mut(arg.name.as_str()) {
                None => {
                    merged.insert(&arg.name, (found, has_value));
                }
                Some((first, first_has_value)) => {
                    if !has_value {
                        continue;
                    }
                    if !*first_has_value {
                        *first = found;
                        *first_has_value = true;
                    } else if (&first.item.value, &first.item.value_from)
                        != (&arg.value, &arg.value_from)
                    {
                        errors.push(FieldError::invalid(
                            ref_path(found.top),
                            top_name(found.top),
                            format!(
                                "argument {} has different values in {} and {}",
                                quoted(&arg.name),
                                first.template,
                                found.template
                            ),
                        ));
                    }
                }
            }
        }
        let supplied: BTreeMap<&str, &str> = group
            .analysis
            .args
            .iter()
            .filter(|a| !a.value.is_empty() || a.value_from.is_some())
            .map(|a| (a.name.as_str(), a.value.as_str()))
            .collect();

        if group.must_finish {
            for found in &metrics {
                let metric = found.item;
                if metric.interval.is_empty() {
                    continue;
                }
                let count = resolved_count(metric.count.as_ref(), &merged, &supplied);
                if let Some(count) = count {
                    errors.push(FieldError::invalid(
                        ref_path(found.top),
                        top_name(found.top),
                        format!(
                            "AnalysisTemplate {} has metric {} which runs indefinitely. Invalid \
                             value for count: {}",
                            found.template_name, metric.name, count
                        ),
                    ));
                }
            }
        }

        for (name, (found, has_value)) in &merged {
            if !has_value && !supplied.contains_key(name) {
                errors.push(FieldError::required(
                    format!("{}.args", group.path),
                    format!(
                        "argument {} was not supplied: {} declares it without a value; add it to \
                         args with a value or valueFrom",
                        quoted(name),
                        found.template
                    ),
                ));
            }
        }
    }
}

/// Walks a group's template references and their nested `templates` depth first, each template once
/// (which also guards against cycles), reporting missing and invalid templates; returns the metrics and
/// arguments found, in order.
fn flatten_templates<'r>(
    group: &AnalysisGroup,
    refs: &References<'r>,
    errors: &mut Vec<FieldError>,
) -> (Vec<Found<'r, Metric>>, Vec<Found<'r, Argument>>) {
    let mut metrics = Vec::new();
    let mut args = Vec::new();
    let mut seen: BTreeSet<(bool, &str)> = BTreeSet::new();
    for (top, reference) in group.analysis.templates.iter().enumerate() {
        if reference.template_name.is_empty() {
            continue;
        }
        let path = format!("{}.templates[{top}].templateName", group.path);
        // (cluster scope, name, the template that includes it)
        let mut stack: Vec<(bool, &str, Option<String>)> = vec![(
            reference.cluster_scope,
            reference.template_name.as_str(),
            None,
        )];
        while let Some((cluster, name, parent)) = stack.pop() {
            let display = template_display(cluster, name);
            let map = if cluster {
                refs.cluster_analysis_templates
            } else {
                refs.analysis_templates
            };
            let Some((key, spec)) = map.get_key_value(name) else {
                if seen.insert((cluster, name)) {
                    errors.push(match parent {
                        None => FieldError::not_found(
                            path.clone(),
                            name,
                            format!("{display} does not exist"),
                        ),
                        Some(parent) => FieldError::invalid(
                            path.clone(),
                            quoted(&reference.template_name),
                            format!("{parent} includes {display}, which does not exist"),
                        ),
                    });
                }
                continue;
            };
            if !seen.insert((cluster, key.as_str())) {
                continue;
            }
            for error in validate_analysis_template(spec) {
                errors.push(FieldError::invalid(
                    path.clone(),
                    quoted(&reference.template_name),
                    format!("{display} is invalid: {error}"),
                ));
            }
            metrics.extend(spec.metrics.iter().map(|item| Found {
                top,
                template: display.clone(),
                template_name: key,
                item,
            }));
            args.extend(spec.args.iter().map(|item| Found {
                top,
                template: display.clone(),
                template_name: key,
                item,
            }));
            for nested in spec.templates.iter().rev() {
                if !nested.template_name.is_empty() {
                    stack.push((
                        nested.cluster_scope,
                        nested.template_name.as_str(),
                        Some(display.clone()),
                    ));
                }
            }
        }
    }
    (metrics, args)
}

/// For a metric with an interval: `Some(count as Argo prints it)` when the count makes it run
/// indefinitely (unset or 0 once arguments are substituted), `None` when it ends or cannot be known.
fn resolved_count(
    count: Option<&IntOrString>,
    merged: &BTreeMap<&str, (&Found<Argument>, bool)>,
    supplied: &BTreeMap<&str, &str>,
) -> Option<String> {
    let text = match count {
        None => return Some("<nil>".to_string()),
        Some(IntOrString::Int(0)) => return Some("0".to_string()),
        Some(IntOrString::Int(_)) => return None,
        Some(IntOrString::String(text)) => text,
    };
    let value = match placeholder_arg(text) {
        Some(arg) => match supplied.get(arg) {
            Some(value) if !value.is_empty() => value.to_string(),
            Some(_) => return None,
            None => merged.get(arg)?.0.item.value.clone()?,
        },
        None => text.clone(),
    };
    (value.trim().parse::<i64>().ok()? == 0).then_some(value)
}

/// The argument name of a value that is exactly one `{{args.name}}` placeholder.
fn placeholder_arg(text: &str) -> Option<&str> {
    let inner = text.trim().strip_prefix("{{")?.strip_suffix("}}")?.trim();
    let name = inner.strip_prefix("args.")?;
    (!name.is_empty()).then_some(name)
}

// ---------------------------------------------------------------------------------------------------
// Analysis template rules

/// Providers Ramp measures with.
const RAMP_PROVIDERS: [&str; 3] = ["prometheus", "web", "job"];

/// Success and failure conditions parse as Go `expr` (those with `{{args.x}}` once a run resolves them).
fn check_conditions(path: &str, metric: &Metric, errors: &mut Vec<FieldError>) {
    for (field, expression) in [
        ("successCondition", &metric.success_condition),
        ("failureCondition", &metric.failure_condition),
    ] {
        if expression.is_empty() || expression.contains("{{") {
            continue;
        }
        if let Err(why) = crate::analysis::condition::check(expression) {
            errors.push(FieldError::invalid(
                format!("{path}.{field}"),
                quoted(expression),
                format!("not a valid expression: {why}"),
            ));
        }
    }
}

/// Exactly one provider, one Ramp runs, and the provider's own required fields.
fn check_metric_provider(path: &str, provider: &MetricProvider, errors: &mut Vec<FieldError>) {
    let provider_path = format!("{path}.provider");
    let names = provider.names();
    match names.len() {
        0 => errors.push(FieldError::required(
            provider_path.clone(),
            "a metric needs exactly one provider: prometheus, web or job",
        )),
        1 => {}
        _ => errors.push(FieldError::invalid(
            provider_path.clone(),
            quoted(&names.join(", ")),
            "a metric needs exactly one provider",
        )),
    }
    for name in names.iter().filter(|name| !RAMP_PROVIDERS.contains(name)) {
        errors.push(FieldError::forbidden(
            format!("{provider_path}.{name}"),
            format!(
                "Ramp does not run the {name} metric provider yet; measure with prometheus, web \
                 or job instead"
            ),
        ));
    }
    if let Some(prometheus) = &provider.prometheus {
        let path = format!("{provider_path}.prometheus");
        if prometheus.query.trim().is_empty() {
            errors.push(FieldError::required(
                format!("{path}.query"),
                "a PromQL query is required",
            ));
        }
        if !prometheus.address.is_empty()
            && !is_templated(&prometheus.address)
            && !is_url_with_host(&prometheus.address)
        {
            errors.push(FieldError::invalid(
                format!("{path}.address"),
                quoted(&prometheus.address),
                "the address must be a URL with a scheme and a host, e.g. \
                 http://prometheus.monitoring:9090",
            ));
        }
        if let Some(timeout) = prometheus.timeout
            && timeout < 0
        {
            errors.push(FieldError::invalid(
                format!("{path}.timeout"),
                timeout.to_string(),
                NON_NEGATIVE,
            ));
        }
        if let Some(range) = &prometheus.range_query {
            check_duration(&format!("{path}.rangeQuery.step"), &range.step, errors);
        }
        check_authentication(&path, prometheus.authentication.as_ref(), errors);
    }
    if let Some(web) = &provider.web {
        let path = format!("{provider_path}.web");
        if web.url.trim().is_empty() {
            errors.push(FieldError::required(
                format!("{path}.url"),
                "a URL is required",
            ));
        }
        let method = if web.method.is_empty() {
            "GET"
        } else {
            web.method.as_str()
        };
        if !is_templated(method) && !["GET", "POST", "PUT"].contains(&method) {
            errors.push(FieldError::not_supported(
                format!("{path}.method"),
                method,
                &["GET", "POST", "PUT"],
            ));
        }
        let has_body = !web.body.is_empty();
        if has_body && web.json_body.is_some() {
            errors.push(FieldError::forbidden(
                format!("{path}.jsonBody"),
                "body and jsonBody can not both be set",
            ));
        }
        if method == "GET" && (has_body || web.json_body.is_some()) {
            errors.push(FieldError::forbidden(
                format!("{path}.{}", if has_body { "body" } else { "jsonBody" }),
                "a request body needs method POST or PUT",
            ));
        }
        if let Some(timeout) = web.timeout_seconds
            && timeout < 0
        {
            errors.push(FieldError::invalid(
                format!("{path}.timeoutSeconds"),
                timeout.to_string(),
                NON_NEGATIVE,
            ));
        }
        check_authentication(&path, web.authentication.as_ref(), errors);
    }
    if let Some(job) = &provider.job {
        let pod_path = format!("{provider_path}.job.spec.template.spec");
        let default_pod = PodSpec::default();
        let pod = job.spec.template.spec.as_ref().unwrap_or(&default_pod);
        check_containers(&pod_path, pod, errors);
        match pod.restart_policy.as_deref() {
            Some("Never" | "OnFailure") => {}
            None => errors.push(FieldError::required(
                format!("{pod_path}.restartPolicy"),
                "a Job's pods need restartPolicy Never or OnFailure",
            )),
            Some(other) => errors.push(FieldError::not_supported(
                format!("{pod_path}.restartPolicy"),
                other,
                &["Never", "OnFailure"],
            )),
        }
    }
}

/// Provider authentication: Ramp does not sign requests with AWS SigV4 yet.
fn check_authentication(path: &str, auth: Option<&Authentication>, errors: &mut Vec<FieldError>) {
    if auth.is_some_and(|auth| auth.sigv4.is_some()) {
        errors.push(FieldError::forbidden(
            format!("{path}.authentication.sigv4"),
            "Ramp does not support sigv4 authentication yet; use basicAuth or oauth2, or an \
             authenticating proxy in front of the server",
        ));
    }
}

/// `interval` and `initialDelay` are Go durations (unless templated), not negative.
fn check_metric_timing(path: &str, metric: &Metric, errors: &mut Vec<FieldError>) {
    check_duration(&format!("{path}.interval"), &metric.interval, errors);
    check_duration(
        &format!("{path}.initialDelay"),
        &metric.initial_delay,
        errors,
    );
}

/// One optional Go duration field.
fn check_duration(path: &str, text: &str, errors: &mut Vec<FieldError>) {
    if text.is_empty() || is_templated(text) {
        return;
    }
    match parse_go_duration_nanos(text) {
        None => errors.push(FieldError::invalid(
            path,
            quoted(text),
            "must be a Go duration such as \"30s\", \"5m\" or \"1h\"",
        )),
        Some(nanos) if nanos < 0 => errors.push(FieldError::invalid(
            path,
            quoted(text),
            "must not be negative",
        )),
        Some(_) => {}
    }
}

/// A metric's integer-or-placeholder field, as far as it can be known before arguments are substituted.
enum Amount {
    Unset,
    Known(i64),
    /// Contains an `{{args.x}}` placeholder: known only when a run is created.
    Templated,
}

/// `count` and the limits: integers (or placeholders), not negative except `failureLimit: -1` with
/// `consecutiveSuccessLimit`; `count > 1` needs an interval; `count` covers the limits.
fn check_metric_limits(path: &str, metric: &Metric, errors: &mut Vec<FieldError>) {
    let mut amount = |field: &str, value: Option<&IntOrString>| -> Amount {
        let field_path = format!("{path}.{field}");
        match value {
            None => Amount::Unset,
            Some(IntOrString::Int(n)) => Amount::Known(i64::from(*n)),
            Some(IntOrString::String(text)) if is_templated(text) => Amount::Templated,
            Some(IntOrString::String(text)) => match text.trim().parse::<i64>() {
                Ok(n) => Amount::Known(n),
                Err(_) => {
                    errors.push(FieldError::invalid(
                        field_path,
                        quoted(text),
                        "must be an integer or an {{args.name}} placeholder",
                    ));
                    Amount::Templated
                }
            },
        }
    };
    let count = amount("count", metric.count.as_ref());
    let failure = amount("failureLimit", metric.failure_limit.as_ref());
    let inconclusive = amount("inconclusiveLimit", metric.inconclusive_limit.as_ref());
    let errors_limit = amount(
        "consecutiveErrorLimit",
        metric.consecutive_error_limit.as_ref(),
    );
    let success = amount(
        "consecutiveSuccessLimit",
        metric.consecutive_success_limit.as_ref(),
    );

    for (field, value) in [
        ("count", &count),
        ("inconclusiveLimit", &inconclusive),
        ("consecutiveErrorLimit", &errors_limit),
        ("consecutiveSuccessLimit", &success),
    ] {
        if let Amount::Known(n) = value
            && *n < 0
        {
            errors.push(FieldError::invalid(
                format!("{path}.{field}"),
                n.to_string(),
                NON_NEGATIVE,
            ));
        }
    }
    if let Amount::Known(n) = failure {
        let success_set = match success {
            Amount::Known(s) => s > 0,
            Amount::Templated => true,
            Amount::Unset => false,
        };
        if n < -1 || (n == -1 && !success_set) {
            errors.push(FieldError::invalid(
                format!("{path}.failureLimit"),
                n.to_string(),
                "failureLimit must be 0 or more; -1 (no limit) is allowed only together with \
                 consecutiveSuccessLimit",
            ));
        }
    }
    let Amount::Known(count) = count else {
        return;
    };
    if count > 1 && metric.interval.is_empty() {
        errors.push(FieldError::required(
            format!("{path}.interval"),
            format!("count {count} needs an interval between measurements"),
        ));
    }
    if count <= 0 {
        return;
    }
    let known = |amount: &Amount| match amount {
        Amount::Known(n) => Some(*n),
        Amount::Unset => Some(0),
        Amount::Templated => None,
    };
    if let (Some(failure), Some(success)) = (known(&failure), known(&success))
        && count < failure.saturating_add(success)
    {
        errors.push(FieldError::invalid(
            format!("{path}.count"),
            count.to_string(),
            format!(
                "count must be >= failureLimit + consecutiveSuccessLimit ({})",
                failure.saturating_add(success)
            ),
        ));
    }
    if let Some(inconclusive) = known(&inconclusive)
        && count < inconclusive
    {
        errors.push(FieldError::invalid(
            format!("{path}.count"),
            count.to_string(),
            format!("count must be >= inconclusiveLimit ({inconclusive})"),
        ));
    }
}

/// A template's arguments: named, unique, and each `valueFrom` names exactly one source.
fn check_template_args(args: &[Argument], errors: &mut Vec<FieldError>) {
    let mut names = BTreeSet::new();
    for (i, arg) in args.iter().enumerate() {
        let path = format!("spec.args[{i}]");
        if arg.name.is_empty() {
            errors.push(FieldError::required(
                format!("{path}.name"),
                "every argument needs a name",
            ));
        } else if !names.insert(arg.name.as_str()) {
            errors.push(FieldError::duplicate(format!("{path}.name"), &arg.name));
        }
        let Some(from) = &arg.value_from else {
            continue;
        };
        let from_path = format!("{path}.valueFrom");
        match (&from.secret_key_ref, &from.field_ref) {
            (None, None) => errors.push(FieldError::required(
                from_path,
                "valueFrom needs secretKeyRef or fieldRef",
            )),
            (Some(_), Some(_)) => errors.push(FieldError::invalid(
                from_path,
                json(from),
                "valueFrom needs exactly one of secretKeyRef or fieldRef",
            )),
            (Some(secret), None) => {
                for (field, value) in [("name", &secret.name), ("key", &secret.key)] {
                    if value.is_empty() {
                        errors.push(FieldError::required(
                            format!("{from_path}.secretKeyRef.{field}"),
                            format!("secretKeyRef needs the Secret's {field}"),
                        ));
                    }
                }
            }
            (None, Some(field_ref)) => {
                if field_ref.field_path.is_empty() {
                    errors.push(FieldError::required(
                        format!("{from_path}.fieldRef.fieldPath"),
                        "a field path such as metadata.labels['app'] is required",
                    ));
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------------
// Small helpers

const NON_NEGATIVE: &str = "must be greater than or equal to 0";
const DNS1123_LABEL_RULE: &str = "must be a DNS-1123 label: at most 63 lower case letters, digits \
                                  or '-', starting and ending with a letter or digit";
const LABEL_KEY_RULE: &str = "a label key is a name of at most 63 letters, digits, '-', '_' or '.', \
                              starting and ending with a letter or digit, optionally prefixed by a \
                              DNS subdomain and '/'";
const LABEL_VALUE_RULE: &str = "a label value is empty or at most 63 letters, digits, '-', '_' or \
                                '.', starting and ending with a letter or digit";

fn non_negative(path: &str, value: Option<i32>, errors: &mut Vec<FieldError>) {
    if let Some(value) = value
        && value < 0
    {
        errors.push(FieldError::invalid(path, value.to_string(), NON_NEGATIVE));
    }
}

/// An IntOrString that is a count or a percentage: a non-negative integer, or a string holding one with
/// an optional `%` (Argo reads a bare number string as a percentage). With `at_most_100_percent`, a
/// percentage above 100 is invalid. Returns whether it is well-formed.
fn check_int_or_percent(
    path: &str,
    value: &IntOrString,
    at_most_100_percent: bool,
    errors: &mut Vec<FieldError>,
) -> bool {
    match value {
        IntOrString::Int(n) if *n < 0 => {
            errors.push(FieldError::invalid(path, n.to_string(), NON_NEGATIVE));
            false
        }
        IntOrString::Int(_) => true,
        IntOrString::String(text) => match percent_value(text) {
            None => {
                errors.push(FieldError::invalid(
                    path,
                    quoted(text),
                    "must be an integer or a percentage such as \"25%\"",
                ));
                false
            }
            Some(percent) if percent < 0 => {
                errors.push(FieldError::invalid(path, quoted(text), NON_NEGATIVE));
                false
            }
            Some(percent) if at_most_100_percent && percent > 100 => {
                errors.push(FieldError::invalid(
                    path,
                    quoted(text),
                    "must not be greater than 100%",
                ));
                false
            }
            Some(_) => true,
        },
    }
}

/// The number in "25%" or "25".
fn percent_value(text: &str) -> Option<i64> {
    text.strip_suffix('%').unwrap_or(text).parse().ok()
}

fn is_zero_amount(value: &IntOrString) -> bool {
    match value {
        IntOrString::Int(n) => *n == 0,
        IntOrString::String(text) => percent_value(text) == Some(0),
    }
}

fn is_templated(text: &str) -> bool {
    text.contains("{{")
}

/// `scheme://host...` with a non-empty scheme and host.
fn is_url_with_host(text: &str) -> bool {
    let Some((scheme, rest)) = text.split_once("://") else {
        return false;
    };
    let scheme_ok = scheme.starts_with(|c: char| c.is_ascii_alphabetic())
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host = host.rsplit('@').next().unwrap_or_default();
    scheme_ok && !host.is_empty() && !host.starts_with(':')
}

fn template_labels(template: &PodTemplateSpec) -> Option<&BTreeMap<String, String>> {
    template.metadata.as_ref()?.labels.as_ref()
}

/// Whether a (well-formed) label selector selects a set of labels.
fn selector_matches(selector: &LabelSelector, labels: &BTreeMap<String, String>) -> bool {
    let labels_match = selector
        .match_labels
        .iter()
        .flatten()
        .all(|(key, value)| labels.get(key) == Some(value));
    let expressions_match = selector
        .match_expressions
        .iter()
        .flatten()
        .all(|requirement| {
            let values = requirement.values.as_deref().unwrap_or_default();
            let label = labels.get(&requirement.key);
            match requirement.operator.as_str() {
                "In" => label.is_some_and(|v| values.contains(v)),
                "NotIn" => label.is_none_or(|v| !values.contains(v)),
                "Exists" => label.is_some(),
                "DoesNotExist" => label.is_none(),
                _ => false,
            }
        });
    labels_match && expressions_match
}

fn check_labels(path: &str, labels: &BTreeMap<String, String>, errors: &mut Vec<FieldError>) {
    for (key, value) in labels {
        if !is_label_key(key) {
            errors.push(FieldError::invalid(path, quoted(key), LABEL_KEY_RULE));
        }
        if !is_label_value(value) {
            errors.push(FieldError::invalid(path, quoted(value), LABEL_VALUE_RULE));
        }
    }
}

fn is_dns1123_label(text: &str) -> bool {
    let bytes = text.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 63
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
        && bytes.first().is_some_and(u8::is_ascii_alphanumeric)
        && bytes.last().is_some_and(u8::is_ascii_alphanumeric)
}

fn is_dns1123_subdomain(text: &str) -> bool {
    text.len() <= 253
        && text.split('.').all(|part| {
            let bytes = part.as_bytes();
            !bytes.is_empty()
                && bytes
                    .iter()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
                && bytes.first().is_some_and(u8::is_ascii_alphanumeric)
                && bytes.last().is_some_and(u8::is_ascii_alphanumeric)
        })
}

/// A label key: `[prefix/]name`.
fn is_label_key(key: &str) -> bool {
    let (prefix, name) = match key.split_once('/') {
        Some((prefix, name)) => (Some(prefix), name),
        None => (None, key),
    };
    prefix.is_none_or(is_dns1123_subdomain) && !name.is_empty() && is_label_value(name)
}

/// A label value (also the name part of a key, when not empty).
fn is_label_value(value: &str) -> bool {
    let bytes = value.as_bytes();
    bytes.is_empty()
        || (bytes.len() <= 63
            && bytes
                .iter()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
            && bytes.first().is_some_and(u8::is_ascii_alphanumeric)
            && bytes.last().is_some_and(u8::is_ascii_alphanumeric))
}

fn template_display(cluster: bool, name: &str) -> String {
    let kind = if cluster {
        "ClusterAnalysisTemplate"
    } else {
        "AnalysisTemplate"
    };
    format!("{kind} {}", quoted(name))
}

/// A string as Go's `%q` would print it (JSON escaping, which agrees for printable text).
fn quoted(text: &str) -> String {
    serde_json::to_string(text).unwrap_or_else(|_| format!("\"{text}\""))
}

/// An object as compact JSON.
fn json<T: Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_default()
}

/// An IntOrString as Go prints it: an integer bare, a string quoted.
fn int_or_string(value: &IntOrString) -> String {
    match value {
        IntOrString::Int(n) => n.to_string(),
        IntOrString::String(text) => quoted(text),
    }
}

#[cfg(test)]
mod tests;
