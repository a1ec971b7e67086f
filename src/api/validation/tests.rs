//! Table tests for every validation rule, with the exact messages.

use serde_json::{Value, json};

use super::*;
use crate::api::analysis::ClusterAnalysisTemplateSpec;

// ---------------------------------------------------------------------------------------------------
// Fixtures

/// A valid basic canary rollout named `web`.
fn canary() -> Value {
    json!({
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Rollout",
        "metadata": {"name": "web"},
        "spec": {
            "replicas": 5,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "web", "image": "argoproj/rollouts-demo:blue"}]}
            },
            "strategy": {"canary": {"steps": [{"setWeight": 20}, {"pause": {}}]}}
        }
    })
}

/// A valid blue-green rollout named `web` using the `web-active` and `web-preview` Services.
fn blue_green() -> Value {
    let mut rollout = canary();
    set(
        &mut rollout,
        "/spec/strategy",
        json!({"blueGreen": {"activeService": "web-active", "previewService": "web-preview"}}),
    );
    rollout
}

/// Sets the value at a JSON pointer, creating objects on the way; `null` removes the field.
fn set(value: &mut Value, pointer: &str, new: Value) {
    let (parent, key) = pointer.rsplit_once('/').expect("pointer has a slash");
    let mut node = value;
    for part in parent.split('/').skip(1) {
        node = match node {
            Value::Array(items) => &mut items[part.parse::<usize>().expect("index")],
            other => {
                if !other.is_object() {
                    *other = json!({});
                }
                other
                    .as_object_mut()
                    .expect("object")
                    .entry(part)
                    .or_insert_with(|| json!({}))
            }
        };
    }
    match node {
        Value::Array(items) => items[key.parse::<usize>().expect("index")] = new,
        Value::Object(map) if new.is_null() => {
            map.remove(key);
        }
        Value::Object(map) => {
            map.insert(key.to_string(), new);
        }
        _ => panic!("cannot set {pointer}"),
    }
}

/// Services, templates and cluster templates a test rollout can refer to.
struct World {
    services: BTreeMap<String, ServiceState>,
    templates: BTreeMap<String, AnalysisTemplateSpec>,
    cluster_templates: BTreeMap<String, AnalysisTemplateSpec>,
}

impl World {
    /// The four `web-*` Services selecting `app: web`, and a few templates:
    /// `success-rate` (prometheus, count 3, needs arg `service-name`), `smoke` (job), `forever`
    /// (interval without count), `errors` (a metric named like success-rate's) and cluster `global`.
    fn new() -> Self {
        let services = ["web-canary", "web-stable", "web-active", "web-preview"]
            .into_iter()
            .map(|name| {
                let service = ServiceState {
                    name: name.into(),
                    selector: [("app".to_string(), "web".to_string())].into(),
                    managed_by_rollout: None,
                };
                (name.to_string(), service)
            })
            .collect();
        let mut world = World {
            services,
            templates: BTreeMap::new(),
            cluster_templates: BTreeMap::new(),
        };
        world.template(
            "success-rate",
            json!({
                "args": [{"name": "service-name"}],
                "metrics": [{
                    "name": "success-rate", "interval": "1m", "count": 3,
                    "successCondition": "result[0] >= 0.95",
                    "provider": {"prometheus": {"query": "sum(rate(x{service=\"{{args.service-name}}\"}[1m]))"}}
                }]
            }),
        );
        world.template(
            "smoke",
            json!({"metrics": [{"name": "smoke", "provider": {"job": {"spec": {"template": {"spec": {
                "restartPolicy": "Never",
                "containers": [{"name": "smoke", "image": "busybox"}]
            }}}}}}]}),
        );
        world.template(
            "forever",
            json!({"metrics": [{"name": "forever", "interval": "30s",
                "provider": {"web": {"url": "http://web/health"}}}]}),
        );
        world.template(
            "errors",
            json!({"metrics": [{"name": "success-rate", "provider": {"web": {"url": "http://x"}}}]}),
        );
        let global: ClusterAnalysisTemplateSpec = serde_json::from_value(json!({"metrics": [{
            "name": "global", "provider": {"web": {"url": "http://status/ok"}}
        }]}))
        .expect("cluster template");
        world
            .cluster_templates
            .insert("global".into(), global.into());
        world
    }

    fn template(&mut self, name: &str, spec: Value) {
        let spec = serde_json::from_value(spec).expect("template spec");
        self.templates.insert(name.into(), spec);
    }

    fn refs(&self) -> References<'_> {
        References {
            services: &self.services,
            analysis_templates: &self.templates,
            cluster_analysis_templates: &self.cluster_templates,
        }
    }
}

fn rollout(value: Value) -> Rollout {
    serde_json::from_value(value).expect("test rollout deserialises")
}

fn messages(value: Value, world: &World) -> Vec<String> {
    validate_rollout_all(&rollout(value), &world.refs())
        .iter()
        .map(ToString::to_string)
        .collect()
}

/// One table row: a description, the document to start from, the changes, and every expected message.
struct Case {
    what: &'static str,
    base: fn() -> Value,
    patches: Vec<(&'static str, Value)>,
    expected: Vec<&'static str>,
}

fn case(
    what: &'static str,
    base: fn() -> Value,
    patches: Vec<(&'static str, Value)>,
    expected: &[&'static str],
) -> Case {
    Case {
        what,
        base,
        patches,
        expected: expected.to_vec(),
    }
}

fn run_with(cases: Vec<Case>, world: &World) {
    for case in cases {
        let mut value = (case.base)();
        for (pointer, new) in case.patches {
            set(&mut value, pointer, new);
        }
        assert_eq!(messages(value, world), case.expected, "case: {}", case.what);
    }
}

fn run(cases: Vec<Case>) {
    run_with(cases, &World::new());
}

fn template_messages(spec: Value) -> Vec<String> {
    let spec: AnalysisTemplateSpec = serde_json::from_value(spec).expect("template spec");
    validate_analysis_template(&spec)
        .iter()
        .map(ToString::to_string)
        .collect()
}

// ---------------------------------------------------------------------------------------------------
// FieldError and the entry points

#[test]
fn field_errors_display_like_kubernetes() {
    let table = [
        (FieldError::required("spec.x", ""), "spec.x: Required value"),
        (
            FieldError::required("spec.x", "why"),
            "spec.x: Required value: why",
        ),
        (
            FieldError::invalid("spec.x", "200", "why"),
            "spec.x: Invalid value: 200: why",
        ),
        (
            FieldError::forbidden("spec.x", "why"),
            "spec.x: Forbidden: why",
        ),
        (
            FieldError::not_supported("spec.x", "b", &["a", "c"]),
            "spec.x: Unsupported value: \"b\": supported values: \"a\", \"c\"",
        ),
        (
            FieldError::duplicate("spec.x", "a"),
            "spec.x: Duplicate value: \"a\"",
        ),
        (
            FieldError::not_found("spec.x", "a", "why"),
            "spec.x: Not found: \"a\": why",
        ),
    ];
    for (error, text) in table {
        assert_eq!(error.to_string(), text);
    }
}

#[test]
fn valid_canary_and_blue_green_rollouts_have_no_errors() {
    let world = World::new();
    assert_eq!(messages(canary(), &world), Vec::<String>::new());
    assert_eq!(messages(blue_green(), &world), Vec::<String>::new());
    assert_eq!(
        invalid_spec_message(&rollout(canary()), &world.refs()),
        None
    );
}

#[test]
fn invalid_spec_message_names_the_rollout_and_the_first_error() {
    let mut value = canary();
    set(&mut value, "/spec/selector", Value::Null);
    set(&mut value, "/spec/replicas", json!(-1));
    let world = World::new();
    assert_eq!(
        invalid_spec_message(&rollout(value), &world.refs()).as_deref(),
        Some(
            "The Rollout \"web\" is invalid: spec.selector: Required value: Rollout has missing \
             field '.spec.selector'"
        )
    );
}

#[test]
fn spec_errors_come_before_reference_errors() {
    let mut value = canary();
    set(
        &mut value,
        "/spec/strategy/canary/stableService",
        json!("missing"),
    );
    set(&mut value, "/spec/replicas", json!(-3));
    let found = messages(value, &World::new());
    assert_eq!(
        found,
        [
            "spec.replicas: Invalid value: -3: must be greater than or equal to 0",
            "spec.strategy.canary.stableService: Not found: \"missing\": no Service with this name \
             in the Rollout's namespace",
        ]
    );
}

#[test]
fn a_rollout_with_nothing_set_gets_errors_not_a_panic() {
    let empty = rollout(json!({"metadata": {}, "spec": {}}));
    let world = World::new();
    let found: Vec<String> = validate_rollout_all(&empty, &world.refs())
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        found,
        [
            "spec.selector: Required value: Rollout has missing field '.spec.selector'",
            "spec.template: Required value: Rollout has missing field '.spec.template'",
            "spec.strategy: Required value: Rollout has missing field '.spec.strategy.canary or \
             .spec.strategy.blueGreen'",
        ]
    );
    assert_eq!(
        invalid_spec_message(&empty, &world.refs()).as_deref(),
        Some(
            "The Rollout \"\" is invalid: spec.selector: Required value: Rollout has missing \
             field '.spec.selector'"
        )
    );
}

// ---------------------------------------------------------------------------------------------------
// Spec rules

#[test]
fn selector_rules() {
    run(vec![
        case(
            "missing selector",
            canary,
            vec![("/spec/selector", Value::Null)],
            &["spec.selector: Required value: Rollout has missing field '.spec.selector'"],
        ),
        case(
            "empty selector",
            canary,
            vec![("/spec/selector", json!({}))],
            &["spec.selector: Invalid value: {}: empty selector is invalid for deployment"],
        ),
        case(
            "selector with empty matchLabels",
            canary,
            vec![("/spec/selector", json!({"matchLabels": {}}))],
            &[
                "spec.selector: Invalid value: {\"matchLabels\":{}}: empty selector is invalid for \
               deployment",
            ],
        ),
        case(
            "unknown operator",
            canary,
            vec![(
                "/spec/selector/matchExpressions",
                json!([{"key": "app", "operator": "Has", "values": ["web"]}]),
            )],
            &[
                "spec.selector.matchExpressions[0].operator: Unsupported value: \"Has\": supported \
               values: \"In\", \"NotIn\", \"Exists\", \"DoesNotExist\"",
            ],
        ),
        case(
            "In without values",
            canary,
            vec![(
                "/spec/selector/matchExpressions",
                json!([{"key": "app", "operator": "In"}]),
            )],
            &[
                "spec.selector.matchExpressions[0].values: Required value: the In and NotIn \
               operators need at least one value",
            ],
        ),
        case(
            "Exists with values",
            canary,
            vec![(
                "/spec/selector/matchExpressions",
                json!([{"key": "app", "operator": "Exists", "values": ["web"]}]),
            )],
            &[
                "spec.selector.matchExpressions[0].values: Forbidden: the Exists and DoesNotExist \
               operators take no values",
            ],
        ),
        case(
            "malformed label key",
            canary,
            vec![("/spec/selector/matchLabels", json!({"bad key": "web"}))],
            &[
                "spec.selector.matchLabels: Invalid value: \"bad key\": a label key is a name of at \
               most 63 letters, digits, '-', '_' or '.', starting and ending with a letter or \
               digit, optionally prefixed by a DNS subdomain and '/'",
            ],
        ),
        case(
            "malformed label value",
            canary,
            vec![("/spec/selector/matchLabels", json!({"app": "-web"}))],
            &[
                "spec.selector.matchLabels: Invalid value: \"-web\": a label value is empty or at \
               most 63 letters, digits, '-', '_' or '.', starting and ending with a letter or \
               digit",
            ],
        ),
        case(
            "prefixed label keys are fine",
            canary,
            vec![
                (
                    "/spec/selector/matchLabels",
                    json!({"example.com/app": "web"}),
                ),
                (
                    "/spec/template/metadata/labels",
                    json!({"example.com/app": "web"}),
                ),
            ],
            &[],
        ),
    ]);
}

#[test]
fn template_labels_must_match_the_selector() {
    let mismatch = "spec.template.metadata.labels: Invalid value: {\"app\":\"web\"}: spec.selector \
                    does not match the template's labels";
    let expressions = |expressions: Value| vec![("/spec/selector/matchExpressions", expressions)];
    run(vec![
        case(
            "matchLabels differ",
            canary,
            vec![("/spec/selector/matchLabels/app", json!("api"))],
            &[mismatch],
        ),
        case(
            "In matches",
            canary,
            expressions(json!([{"key": "app", "operator": "In", "values": ["api", "web"]}])),
            &[],
        ),
        case(
            "In does not match",
            canary,
            expressions(json!([{"key": "app", "operator": "In", "values": ["api"]}])),
            &[mismatch],
        ),
        case(
            "NotIn excludes the label",
            canary,
            expressions(json!([{"key": "app", "operator": "NotIn", "values": ["web"]}])),
            &[mismatch],
        ),
        case(
            "NotIn on a missing label matches",
            canary,
            expressions(json!([{"key": "tier", "operator": "NotIn", "values": ["db"]}])),
            &[],
        ),
        case(
            "Exists on a missing label",
            canary,
            expressions(json!([{"key": "tier", "operator": "Exists"}])),
            &[mismatch],
        ),
        case(
            "DoesNotExist on a present label",
            canary,
            expressions(json!([{"key": "app", "operator": "DoesNotExist"}])),
            &[mismatch],
        ),
        case(
            "template without labels",
            canary,
            vec![("/spec/template/metadata", Value::Null)],
            &[
                "spec.template.metadata.labels: Invalid value: {}: spec.selector does not match the \
               template's labels",
            ],
        ),
    ]);
}

#[test]
fn workload_ref_is_not_run_by_ramp_yet() {
    let forbidden = "spec.workloadRef: Forbidden: Ramp does not run workloadRef yet; copy the pod \
                     template into spec.template and its selector into spec.selector, then remove \
                     spec.workloadRef";
    let reference = json!({"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"});
    run(vec![
        case(
            "workloadRef without template or selector",
            canary,
            vec![
                ("/spec/workloadRef", reference.clone()),
                ("/spec/template", Value::Null),
                ("/spec/selector", Value::Null),
            ],
            &[forbidden],
        ),
        case(
            "workloadRef with a template",
            canary,
            vec![("/spec/workloadRef", reference)],
            &[
                forbidden,
                "spec.template: Forbidden: spec.template must be empty when spec.workloadRef is set",
            ],
        ),
    ]);
}

#[test]
fn pod_template_rules() {
    let containers = "/spec/template/spec/containers";
    run(vec![
        case(
            "missing template",
            canary,
            vec![("/spec/template", Value::Null)],
            &["spec.template: Required value: Rollout has missing field '.spec.template'"],
        ),
        case(
            "no containers",
            canary,
            vec![(containers, json!([]))],
            &[
                "spec.template.spec.containers: Required value: a pod template needs at least one \
               container",
            ],
        ),
        case(
            "template without a pod spec",
            canary,
            vec![("/spec/template/spec", Value::Null)],
            &[
                "spec.template.spec.containers: Required value: a pod template needs at least one \
               container",
            ],
        ),
        case(
            "container without a name",
            canary,
            vec![(containers, json!([{"name": "", "image": "x"}]))],
            &[
                "spec.template.spec.containers[0].name: Required value: every container needs a name",
            ],
        ),
        case(
            "container name not a DNS-1123 label",
            canary,
            vec![(containers, json!([{"name": "Web_1", "image": "x"}]))],
            &[
                "spec.template.spec.containers[0].name: Invalid value: \"Web_1\": must be a DNS-1123 \
               label: at most 63 lower case letters, digits or '-', starting and ending with a \
               letter or digit",
            ],
        ),
        case(
            "duplicate container names",
            canary,
            vec![(
                containers,
                json!([{"name": "web", "image": "x"}, {"name": "web", "image": "y"}]),
            )],
            &["spec.template.spec.containers[1].name: Duplicate value: \"web\""],
        ),
        case(
            "init container named like a container",
            canary,
            vec![(
                "/spec/template/spec/initContainers",
                json!([{"name": "web", "image": "x"}]),
            )],
            &["spec.template.spec.containers[0].name: Duplicate value: \"web\""],
        ),
        case(
            "container without an image",
            canary,
            vec![(
                containers,
                json!([{"name": "web"}, {"name": "side", "image": " "}]),
            )],
            &[
                "spec.template.spec.containers[0].image: Required value: container \"web\" needs an \
                 image",
                "spec.template.spec.containers[1].image: Required value: container \"side\" needs an \
                 image",
            ],
        ),
        case(
            "restartPolicy other than Always",
            canary,
            vec![("/spec/template/spec/restartPolicy", json!("Never"))],
            &[
                "spec.template.spec.restartPolicy: Unsupported value: \"Never\": supported values: \
               \"Always\"",
            ],
        ),
        case(
            "restartPolicy Always",
            canary,
            vec![("/spec/template/spec/restartPolicy", json!("Always"))],
            &[],
        ),
        case(
            "activeDeadlineSeconds",
            canary,
            vec![("/spec/template/spec/activeDeadlineSeconds", json!(60))],
            &[
                "spec.template.spec.activeDeadlineSeconds: Forbidden: a Rollout's pods run until they \
               are replaced; activeDeadlineSeconds is not allowed",
            ],
        ),
        case(
            "malformed template label",
            canary,
            vec![("/spec/template/metadata/labels/bad key", json!("x"))],
            &[
                "spec.template.metadata.labels: Invalid value: \"bad key\": a label key is a name of \
               at most 63 letters, digits, '-', '_' or '.', starting and ending with a letter or \
               digit, optionally prefixed by a DNS subdomain and '/'",
            ],
        ),
    ]);
}

#[test]
fn counts_and_deadlines() {
    run(vec![
        case(
            "negative replicas",
            canary,
            vec![("/spec/replicas", json!(-1))],
            &["spec.replicas: Invalid value: -1: must be greater than or equal to 0"],
        ),
        case(
            "zero replicas",
            canary,
            vec![("/spec/replicas", json!(0))],
            &[],
        ),
        case(
            "negative minReadySeconds",
            canary,
            vec![("/spec/minReadySeconds", json!(-1))],
            &["spec.minReadySeconds: Invalid value: -1: must be greater than or equal to 0"],
        ),
        case(
            "negative revisionHistoryLimit",
            canary,
            vec![("/spec/revisionHistoryLimit", json!(-1))],
            &["spec.revisionHistoryLimit: Invalid value: -1: must be greater than or equal to 0"],
        ),
        case(
            "negative rollbackWindow and history limits",
            canary,
            vec![
                ("/spec/rollbackWindow", json!({"revisions": -1})),
                (
                    "/spec/analysis",
                    json!({"successfulRunHistoryLimit": -1,
                                          "unsuccessfulRunHistoryLimit": -2}),
                ),
            ],
            &[
                "spec.rollbackWindow.revisions: Invalid value: -1: must be greater than or equal to 0",
                "spec.analysis.successfulRunHistoryLimit: Invalid value: -1: must be greater than or \
                 equal to 0",
                "spec.analysis.unsuccessfulRunHistoryLimit: Invalid value: -2: must be greater than \
                 or equal to 0",
            ],
        ),
        case(
            "progress deadline not above minReadySeconds",
            canary,
            vec![
                ("/spec/progressDeadlineSeconds", json!(30)),
                ("/spec/minReadySeconds", json!(30)),
            ],
            &[
                "spec.progressDeadlineSeconds: Invalid value: 30: progressDeadlineSeconds must be \
               greater than minReadySeconds (30)",
            ],
        ),
        case(
            "default progress deadline against a long minReadySeconds",
            canary,
            vec![("/spec/minReadySeconds", json!(900))],
            &[
                "spec.progressDeadlineSeconds: Invalid value: 600: progressDeadlineSeconds must be \
               greater than minReadySeconds (900)",
            ],
        ),
        case(
            "zero progress deadline",
            canary,
            vec![("/spec/progressDeadlineSeconds", json!(0))],
            &[
                "spec.progressDeadlineSeconds: Invalid value: 0: progressDeadlineSeconds must be \
               greater than minReadySeconds (0)",
            ],
        ),
    ]);
}

#[test]
fn exactly_one_strategy() {
    run(vec![
        case(
            "no strategy",
            canary,
            vec![("/spec/strategy", json!({}))],
            &[
                "spec.strategy: Required value: Rollout has missing field '.spec.strategy.canary or \
               .spec.strategy.blueGreen'",
            ],
        ),
        case(
            "both strategies",
            canary,
            vec![(
                "/spec/strategy/blueGreen",
                json!({"activeService": "web-active"}),
            )],
            &["spec.strategy: Forbidden: Multiple Strategies can not be listed"],
        ),
    ]);
}

#[test]
fn blue_green_rules() {
    run(vec![
        case(
            "missing activeService",
            blue_green,
            vec![("/spec/strategy/blueGreen/activeService", Value::Null)],
            &[
                "spec.strategy.blueGreen.activeService: Required value: Rollout has missing field \
               '.spec.strategy.blueGreen.activeService'",
            ],
        ),
        case(
            "same active and preview Service",
            blue_green,
            vec![(
                "/spec/strategy/blueGreen/previewService",
                json!("web-active"),
            )],
            &[
                "spec.strategy.blueGreen.previewService: Invalid value: \"web-active\": This rollout \
               uses the same service for the active and preview services, but two different \
               services are required.",
            ],
        ),
        case(
            "without a preview Service",
            blue_green,
            vec![("/spec/strategy/blueGreen/previewService", Value::Null)],
            &[],
        ),
        case(
            "negative numbers",
            blue_green,
            vec![
                ("/spec/strategy/blueGreen/previewReplicaCount", json!(-1)),
                ("/spec/strategy/blueGreen/autoPromotionSeconds", json!(-2)),
                ("/spec/strategy/blueGreen/scaleDownDelaySeconds", json!(-3)),
                (
                    "/spec/strategy/blueGreen/abortScaleDownDelaySeconds",
                    json!(-4),
                ),
            ],
            &[
                "spec.strategy.blueGreen.previewReplicaCount: Invalid value: -1: must be greater than \
                 or equal to 0",
                "spec.strategy.blueGreen.autoPromotionSeconds: Invalid value: -2: must be greater \
                 than or equal to 0",
                "spec.strategy.blueGreen.scaleDownDelaySeconds: Invalid value: -3: must be greater \
                 than or equal to 0",
                "spec.strategy.blueGreen.abortScaleDownDelaySeconds: Invalid value: -4: must be \
                 greater than or equal to 0",
            ],
        ),
        case(
            "scaleDownDelayRevisionLimit above the default revisionHistoryLimit",
            blue_green,
            vec![(
                "/spec/strategy/blueGreen/scaleDownDelayRevisionLimit",
                json!(11),
            )],
            &[
                "spec.strategy.blueGreen.scaleDownDelayRevisionLimit: Invalid value: 11: \
               scaleDownDelayRevisionLimit can not be greater than revisionHistoryLimit (10)",
            ],
        ),
        case(
            "scaleDownDelayRevisionLimit within revisionHistoryLimit",
            blue_green,
            vec![
                (
                    "/spec/strategy/blueGreen/scaleDownDelayRevisionLimit",
                    json!(3),
                ),
                ("/spec/revisionHistoryLimit", json!(3)),
            ],
            &[],
        ),
        case(
            "malformed maxUnavailable",
            blue_green,
            vec![("/spec/strategy/blueGreen/maxUnavailable", json!("lots"))],
            &[
                "spec.strategy.blueGreen.maxUnavailable: Invalid value: \"lots\": must be an integer \
               or a percentage such as \"25%\"",
            ],
        ),
        case(
            "maxUnavailable above 100%",
            blue_green,
            vec![("/spec/strategy/blueGreen/maxUnavailable", json!("150%"))],
            &[
                "spec.strategy.blueGreen.maxUnavailable: Invalid value: \"150%\": must not be greater \
               than 100%",
            ],
        ),
        case(
            "malformed previewMetadata label",
            blue_green,
            vec![(
                "/spec/strategy/blueGreen/previewMetadata",
                json!({"labels": {"role": "pre view"}}),
            )],
            &[
                "spec.strategy.blueGreen.previewMetadata.labels: Invalid value: \"pre view\": a label \
               value is empty or at most 63 letters, digits, '-', '_' or '.', starting and ending \
               with a letter or digit",
            ],
        ),
    ]);
}

#[test]
fn anti_affinity_rules() {
    run(vec![
        case(
            "both rules",
            canary,
            vec![(
                "/spec/strategy/canary/antiAffinity",
                json!({"preferredDuringSchedulingIgnoredDuringExecution": {"weight": 10},
                       "requiredDuringSchedulingIgnoredDuringExecution": {}}),
            )],
            &["spec.strategy.canary.antiAffinity: Invalid value: \
               {\"preferredDuringSchedulingIgnoredDuringExecution\":{\"weight\":10},\
               \"requiredDuringSchedulingIgnoredDuringExecution\":{}}: antiAffinity needs exactly \
               one of preferredDuringSchedulingIgnoredDuringExecution or \
               requiredDuringSchedulingIgnoredDuringExecution"],
        ),
        case(
            "weight out of range",
            blue_green,
            vec![(
                "/spec/strategy/blueGreen/antiAffinity",
                json!({"preferredDuringSchedulingIgnoredDuringExecution": {"weight": 0}}),
            )],
            &[
                "spec.strategy.blueGreen.antiAffinity.preferredDuringSchedulingIgnoredDuringExecution\
               .weight: Invalid value: 0: antiAffinity weight must be between 1 and 100",
            ],
        ),
    ]);
}

#[test]
fn canary_surge_unavailable_and_services() {
    run(vec![
        case(
            "maxSurge and maxUnavailable both zero",
            canary,
            vec![
                ("/spec/strategy/canary/maxSurge", json!(0)),
                ("/spec/strategy/canary/maxUnavailable", json!(0)),
            ],
            &[
                "spec.strategy.canary.maxUnavailable: Invalid value: 0: MaxSurge and MaxUnavailable \
               both can not be zero",
            ],
        ),
        case(
            "zero percent counts as zero",
            canary,
            vec![
                ("/spec/strategy/canary/maxSurge", json!("0%")),
                ("/spec/strategy/canary/maxUnavailable", json!("0")),
            ],
            &[
                "spec.strategy.canary.maxUnavailable: Invalid value: \"0\": MaxSurge and \
               MaxUnavailable both can not be zero",
            ],
        ),
        case(
            "maxSurge zero with the default maxUnavailable",
            canary,
            vec![("/spec/strategy/canary/maxSurge", json!(0))],
            &[],
        ),
        case(
            "negative and malformed amounts",
            canary,
            vec![
                ("/spec/strategy/canary/maxSurge", json!(-1)),
                ("/spec/strategy/canary/maxUnavailable", json!("x%")),
            ],
            &[
                "spec.strategy.canary.maxSurge: Invalid value: -1: must be greater than or equal to 0",
                "spec.strategy.canary.maxUnavailable: Invalid value: \"x%\": must be an integer or a \
                 percentage such as \"25%\"",
            ],
        ),
        case(
            "maxSurge may exceed 100%",
            canary,
            vec![("/spec/strategy/canary/maxSurge", json!("200%"))],
            &[],
        ),
        case(
            "same canary and stable Service",
            canary,
            vec![
                ("/spec/strategy/canary/canaryService", json!("web-stable")),
                ("/spec/strategy/canary/stableService", json!("web-stable")),
            ],
            &[
                "spec.strategy.canary.stableService: Invalid value: \"web-stable\": This rollout uses \
               the same service for the stable and canary services, but two different services are \
               required.",
            ],
        ),
        case(
            "negative canary numbers",
            canary,
            vec![
                (
                    "/spec/strategy/canary/abortScaleDownDelaySeconds",
                    json!(-1),
                ),
                ("/spec/strategy/canary/minPodsPerReplicaSet", json!(-1)),
            ],
            &[
                "spec.strategy.canary.abortScaleDownDelaySeconds: Invalid value: -1: must be greater \
                 than or equal to 0",
                "spec.strategy.canary.minPodsPerReplicaSet: Invalid value: -1: must be greater than \
                 or equal to 0",
            ],
        ),
        case(
            "pingPong without a pong Service",
            canary,
            vec![
                (
                    "/spec/strategy/canary/pingPong",
                    json!({"pingService": "web-canary", "pongService": ""}),
                ),
                (
                    "/spec/strategy/canary/trafficRouting",
                    json!({"alb": {"ingress": "web"}}),
                ),
            ],
            &[
                "spec.strategy.canary.pingPong.pongService: Required value: pingPong needs both a \
               pingService and a pongService",
            ],
        ),
        case(
            "replicaProgressThreshold type",
            canary,
            vec![(
                "/spec/strategy/canary/replicaProgressThreshold",
                json!({"type": "Ratio", "value": 1}),
            )],
            &[
                "spec.strategy.canary.replicaProgressThreshold.type: Unsupported value: \"Ratio\": \
               supported values: \"Percent\", \"Pods\"",
            ],
        ),
        case(
            "replicaProgressThreshold percent above 100",
            canary,
            vec![(
                "/spec/strategy/canary/replicaProgressThreshold",
                json!({"type": "Percent", "value": 101}),
            )],
            &[
                "spec.strategy.canary.replicaProgressThreshold.value: Invalid value: 101: a Percent \
               threshold must be between 0 and 100",
            ],
        ),
    ]);
}

#[test]
fn traffic_routing_rules() {
    let with_routing = |routing: Value| ("/spec/strategy/canary/trafficRouting", routing);
    let services = [
        ("/spec/strategy/canary/canaryService", json!("web-canary")),
        ("/spec/strategy/canary/stableService", json!("web-stable")),
    ];
    run(vec![
        case(
            "nginx without Services",
            canary,
            vec![with_routing(json!({"nginx": {"stableIngress": "web"}}))],
            &[
                "spec.strategy.canary.canaryService: Required value: trafficRouting.nginx needs both \
                 canaryService and stableService",
                "spec.strategy.canary.stableService: Required value: trafficRouting.nginx needs both \
                 canaryService and stableService",
            ],
        ),
        case(
            "nginx with Services",
            canary,
            vec![
                with_routing(json!({"nginx": {"stableIngress": "web"}})),
                services[0].clone(),
                services[1].clone(),
            ],
            &[],
        ),
        case(
            "istio with a destinationRule needs no Services",
            canary,
            vec![with_routing(
                json!({"istio": {"virtualService": {"name": "web"},
                "destinationRule": {"name": "web", "canarySubsetName": "canary", "stableSubsetName": "stable"}}}),
            )],
            &[],
        ),
        case(
            "istio host split needs Services",
            canary,
            vec![
                with_routing(json!({"istio": {"virtualService": {"name": "web"}}})),
                services[0].clone(),
            ],
            &[
                "spec.strategy.canary.stableService: Required value: trafficRouting.istio needs both \
               canaryService and stableService",
            ],
        ),
        case(
            "alb with pingPong needs no Services",
            canary,
            vec![
                with_routing(json!({"alb": {"ingress": "web"}})),
                (
                    "/spec/strategy/canary/pingPong",
                    json!({"pingService": "web-canary", "pongService": "web-stable"}),
                ),
            ],
            &[],
        ),
        case(
            "plugins need no Services",
            canary,
            vec![with_routing(json!({"plugins": {"example/router": {}}}))],
            &[],
        ),
        case(
            "trafficRouting without a router",
            canary,
            vec![with_routing(json!({}))],
            &[
                "spec.strategy.canary.trafficRouting: Required value: trafficRouting needs one of \
               istio, nginx, alb, smi, ambassador, appMesh, traefik, apisix or plugins",
            ],
        ),
        case(
            "scaleDownDelaySeconds without trafficRouting",
            canary,
            vec![("/spec/strategy/canary/scaleDownDelaySeconds", json!(30))],
            &[
                "spec.strategy.canary.scaleDownDelaySeconds: Invalid value: 30: ScaleDownDelaySeconds \
               requires TrafficRouting to be set",
            ],
        ),
        case(
            "dynamicStableScale without trafficRouting",
            canary,
            vec![("/spec/strategy/canary/dynamicStableScale", json!(true))],
            &[
                "spec.strategy.canary.dynamicStableScale: Invalid value: true: DynamicStableScale \
               requires TrafficRouting to be set",
            ],
        ),
        case(
            "dynamicStableScale with scaleDownDelaySeconds",
            canary,
            vec![
                with_routing(json!({"plugins": {"example/router": {}}})),
                ("/spec/strategy/canary/dynamicStableScale", json!(true)),
                ("/spec/strategy/canary/scaleDownDelaySeconds", json!(30)),
            ],
            &[
                "spec.strategy.canary.dynamicStableScale: Forbidden: dynamicStableScale and \
               scaleDownDelaySeconds can not be used together",
            ],
        ),
        case(
            "maxTrafficWeight with smi",
            canary,
            vec![
                with_routing(json!({"smi": {}, "maxTrafficWeight": 1000})),
                services[0].clone(),
                services[1].clone(),
            ],
            &[
                "spec.strategy.canary.trafficRouting.maxTrafficWeight: Forbidden: maxTrafficWeight is \
               only supported by the nginx and plugins traffic routers",
            ],
        ),
        case(
            "maxTrafficWeight zero",
            canary,
            vec![with_routing(
                json!({"plugins": {"r": {}}, "maxTrafficWeight": 0}),
            )],
            &[
                "spec.strategy.canary.trafficRouting.maxTrafficWeight: Invalid value: 0: \
               maxTrafficWeight must be greater than 0",
            ],
        ),
    ]);
}

#[test]
fn set_weight_above_100_is_invalid() {
    run(vec![case(
        "setWeight 200",
        canary,
        vec![("/spec/strategy/canary/steps/0", json!({"setWeight": 200}))],
        &[
            "spec.strategy.canary.steps[0].setWeight: Invalid value: 200: SetWeight needs to be \
           between 0 and 100",
        ],
    )]);
}

#[test]
fn step_rules() {
    let step = |index: &'static str, value: Value| (index, value);
    run(vec![
        case(
            "negative setWeight",
            canary,
            vec![step(
                "/spec/strategy/canary/steps/0",
                json!({"setWeight": -1}),
            )],
            &[
                "spec.strategy.canary.steps[0].setWeight: Invalid value: -1: SetWeight needs to be \
               between 0 and 100",
            ],
        ),
        case(
            "setWeight up to maxTrafficWeight",
            canary,
            vec![
                step("/spec/strategy/canary/steps/0", json!({"setWeight": 1000})),
                (
                    "/spec/strategy/canary/trafficRouting",
                    json!({"plugins": {"r": {}}, "maxTrafficWeight": 1000}),
                ),
            ],
            &[],
        ),
        case(
            "setWeight above maxTrafficWeight",
            canary,
            vec![
                step("/spec/strategy/canary/steps/0", json!({"setWeight": 60})),
                (
                    "/spec/strategy/canary/trafficRouting",
                    json!({"plugins": {"r": {}}, "maxTrafficWeight": 50}),
                ),
            ],
            &[
                "spec.strategy.canary.steps[0].setWeight: Invalid value: 60: SetWeight needs to be \
               between 0 and 50",
            ],
        ),
        case(
            "empty step",
            canary,
            vec![step("/spec/strategy/canary/steps/0", json!({}))],
            &[
                "spec.strategy.canary.steps[0]: Invalid value: {}: Step must have one of the following \
               set: experiment, setWeight, setCanaryScale, plugin or pause",
            ],
        ),
        case(
            "two kinds in one step",
            canary,
            vec![step(
                "/spec/strategy/canary/steps/1",
                json!({"setWeight": 10, "pause": {}}),
            )],
            &[
                "spec.strategy.canary.steps[1]: Invalid value: {\"setWeight\":10,\"pause\":{}}: Step \
               must have one of the following set: experiment, setWeight, setCanaryScale, plugin or \
               pause",
            ],
        ),
        case(
            "valid pause durations",
            canary,
            vec![(
                "/spec/strategy/canary/steps",
                json!([{"pause": {"duration": 10}}, {"pause": {"duration": "10"}},
                       {"pause": {"duration": "30s"}}, {"pause": {"duration": "1h"}},
                       {"pause": {"duration": 0}}]),
            )],
            &[],
        ),
        case(
            "negative and unreadable pause durations",
            canary,
            vec![(
                "/spec/strategy/canary/steps",
                json!([{"pause": {"duration": -5}}, {"pause": {"duration": "soon"}},
                       {"pause": {"duration": "-5s"}}]),
            )],
            &[
                "spec.strategy.canary.steps[0].pause.duration: Invalid value: -5: a pause duration \
                 must be 0 or more: seconds as a number, or a Go duration such as \"30s\" or \"5m\"",
                "spec.strategy.canary.steps[1].pause.duration: Invalid value: \"soon\": a pause \
                 duration must be 0 or more: seconds as a number, or a Go duration such as \"30s\" \
                 or \"5m\"",
                "spec.strategy.canary.steps[2].pause.duration: Invalid value: \"-5s\": a pause \
                 duration must be 0 or more: seconds as a number, or a Go duration such as \"30s\" \
                 or \"5m\"",
            ],
        ),
        case(
            "setCanaryScale without trafficRouting",
            canary,
            vec![step(
                "/spec/strategy/canary/steps/0",
                json!({"setCanaryScale": {"replicas": 2}}),
            )],
            &[
                "spec.strategy.canary.steps[0].setCanaryScale: Invalid value: {\"replicas\":2}: \
               SetCanaryScale requires TrafficRouting to be set",
            ],
        ),
        case(
            "setCanaryScale with two settings and a bad weight",
            canary,
            vec![
                step(
                    "/spec/strategy/canary/steps/0",
                    json!({"setCanaryScale": {"weight": 101, "replicas": 2}}),
                ),
                (
                    "/spec/strategy/canary/trafficRouting",
                    json!({"plugins": {"r": {}}}),
                ),
            ],
            &[
                "spec.strategy.canary.steps[0].setCanaryScale: Invalid value: \
                 {\"weight\":101,\"replicas\":2}: setCanaryScale needs exactly one of weight, \
                 replicas or matchTrafficWeight",
                "spec.strategy.canary.steps[0].setCanaryScale.weight: Invalid value: 101: \
                 setCanaryScale weight needs to be between 0 and 100",
            ],
        ),
        case(
            "background analysis startingStep beyond the steps",
            canary,
            vec![(
                "/spec/strategy/canary/analysis",
                json!({"templates": [{"templateName": "smoke"}], "startingStep": 3}),
            )],
            &[
                "spec.strategy.canary.analysis.startingStep: Invalid value: 3: startingStep must be \
               between 0 and the number of steps (2)",
            ],
        ),
    ]);
}

#[test]
fn steps_ramp_does_not_run_yet_are_invalid() {
    run(vec![
        case(
            "experiment",
            canary,
            vec![(
                "/spec/strategy/canary/steps/1",
                json!({"experiment": {"templates": [{"name": "c", "specRef": "canary"}]}}),
            )],
            &[
                "spec.strategy.canary.steps[1].experiment: Forbidden: Ramp does not run experiment \
               steps yet; remove the step, or measure the canary with an analysis step instead",
            ],
        ),
        case(
            "setHeaderRoute",
            canary,
            vec![(
                "/spec/strategy/canary/steps/1",
                json!({"setHeaderRoute": {"name": "h"}}),
            )],
            &[
                "spec.strategy.canary.steps[1].setHeaderRoute: Forbidden: Ramp does not run \
               setHeaderRoute steps yet; remove the step and shift traffic with setWeight",
            ],
        ),
        case(
            "setMirrorRoute",
            canary,
            vec![(
                "/spec/strategy/canary/steps/1",
                json!({"setMirrorRoute": {"name": "m"}}),
            )],
            &[
                "spec.strategy.canary.steps[1].setMirrorRoute: Forbidden: Ramp does not run \
               setMirrorRoute steps yet; remove the step and shift traffic with setWeight",
            ],
        ),
        case(
            "plugin",
            canary,
            vec![(
                "/spec/strategy/canary/steps/1",
                json!({"plugin": {"name": "example/step"}}),
            )],
            &[
                "spec.strategy.canary.steps[1].plugin: Forbidden: Ramp does not run step plugins yet; \
               remove the step, or replace it with an analysis step using a web or job metric",
            ],
        ),
    ]);
}

#[test]
fn analysis_reference_shape_rules() {
    let analysis = |value: Value| ("/spec/strategy/canary/steps/1", json!({"analysis": value}));
    run(vec![
        case(
            "an analysis step without templates",
            canary,
            vec![analysis(json!({"args": [{"name": "a", "value": "1"}]}))],
            &[
                "spec.strategy.canary.steps[1].analysis.templates: Required value: an analysis step \
               needs at least one template",
            ],
        ),
        case(
            "a background analysis without templates is no analysis",
            canary,
            vec![("/spec/strategy/canary/analysis", json!({"args": []}))],
            &[],
        ),
        case(
            "template without a name",
            canary,
            vec![analysis(json!({"templates": [{"templateName": ""}]}))],
            &[
                "spec.strategy.canary.steps[1].analysis.templates[0].templateName: Required value: the \
               name of the analysis template is required",
            ],
        ),
        case(
            "argument problems",
            canary,
            vec![analysis(json!({
                "templates": [{"templateName": "smoke"}],
                "args": [
                    {"name": "a", "value": "1"},
                    {"name": "a", "value": "2"},
                    {"name": "", "value": "3"},
                    {"name": "b", "valueFrom": {}},
                    {"name": "c", "valueFrom": {"podTemplateHashValue": "Canary"}},
                    {"name": "d", "valueFrom": {"fieldRef": {"fieldPath": ""}}},
                    {"name": "e", "valueFrom": {"podTemplateHashValue": "Stable",
                                                "fieldRef": {"fieldPath": "metadata.name"}}}
                ]
            }))],
            &[
                "spec.strategy.canary.steps[1].analysis.args[1].name: Duplicate value: \"a\"",
                "spec.strategy.canary.steps[1].analysis.args[2].name: Required value: every argument \
                 needs a name",
                "spec.strategy.canary.steps[1].analysis.args[3].valueFrom: Required value: valueFrom \
                 needs podTemplateHashValue or fieldRef",
                "spec.strategy.canary.steps[1].analysis.args[4].valueFrom.podTemplateHashValue: \
                 Unsupported value: \"Canary\": supported values: \"Stable\", \"Latest\"",
                "spec.strategy.canary.steps[1].analysis.args[5].valueFrom.fieldRef.fieldPath: \
                 Required value: a field path such as metadata.labels['app'] is required",
                "spec.strategy.canary.steps[1].analysis.args[6].valueFrom: Invalid value: \
                 {\"podTemplateHashValue\":\"Stable\",\"fieldRef\":{\"fieldPath\":\"metadata.name\"}}: \
                 valueFrom needs exactly one of podTemplateHashValue or fieldRef",
            ],
        ),
        case(
            "dryRun and measurementRetention entries",
            canary,
            vec![analysis(json!({
                "templates": [{"templateName": "smoke"}],
                "dryRun": [{"metricName": ""}],
                "measurementRetention": [{"metricName": "", "limit": -1}]
            }))],
            &[
                "spec.strategy.canary.steps[1].analysis.dryRun[0].metricName: Required value: a \
                 metric name pattern is required (\".*\" for all)",
                "spec.strategy.canary.steps[1].analysis.measurementRetention[0].metricName: Required \
                 value: a metric name pattern is required (\".*\" for all)",
                "spec.strategy.canary.steps[1].analysis.measurementRetention[0].limit: Invalid value: \
                 -1: must be greater than or equal to 0",
            ],
        ),
    ]);
}

// ---------------------------------------------------------------------------------------------------
// Reference rules

#[test]
fn service_reference_rules() {
    let mut world = World::new();
    world
        .services
        .get_mut("web-preview")
        .expect("preview")
        .managed_by_rollout = Some("api".into());
    world
        .services
        .get_mut("web-active")
        .expect("active")
        .managed_by_rollout = Some("web".into());
    world
        .services
        .get_mut("web-canary")
        .expect("canary")
        .selector
        .insert(POD_TEMPLATE_HASH_LABEL.into(), "abc123".into());
    world
        .services
        .get_mut("web-stable")
        .expect("stable")
        .selector
        .insert("tier".into(), "front".into());
    let cases = vec![
        case(
            "missing Services name the field",
            blue_green,
            vec![
                ("/spec/strategy/blueGreen/activeService", json!("nope")),
                ("/spec/strategy/blueGreen/previewService", Value::Null),
            ],
            &[
                "spec.strategy.blueGreen.activeService: Not found: \"nope\": no Service with this name \
               in the Rollout's namespace",
            ],
        ),
        case(
            "managed by another rollout; managed by this one is fine",
            blue_green,
            vec![],
            &[
                "spec.strategy.blueGreen.previewService: Invalid value: \"web-preview\": Service \
               \"web-preview\" is managed by another Rollout",
            ],
        ),
        case(
            "selector key missing from the template labels; the hash key is ignored",
            canary,
            vec![
                ("/spec/strategy/canary/canaryService", json!("web-canary")),
                ("/spec/strategy/canary/stableService", json!("web-stable")),
            ],
            &[
                "spec.strategy.canary.stableService: Invalid value: \"web-stable\": Service \
               \"web-stable\" has unmatch label \"tier\" in rollout",
            ],
        ),
        case(
            "selector value different from the template label",
            canary,
            vec![
                ("/spec/strategy/canary/canaryService", json!("web-canary")),
                ("/spec/strategy/canary/stableService", json!("web-stable")),
                ("/spec/template/metadata/labels/tier", json!("back")),
            ],
            &[
                "spec.strategy.canary.stableService: Invalid value: \"web-stable\": Service \
               \"web-stable\" has unmatch label \"tier\" in rollout",
            ],
        ),
        case(
            "pingPong Services must exist",
            canary,
            vec![
                (
                    "/spec/strategy/canary/trafficRouting",
                    json!({"alb": {"ingress": "web"}}),
                ),
                (
                    "/spec/strategy/canary/pingPong",
                    json!({"pingService": "ping", "pongService": "pong"}),
                ),
            ],
            &[
                "spec.strategy.canary.pingPong.pingService: Not found: \"ping\": no Service with this \
                 name in the Rollout's namespace",
                "spec.strategy.canary.pingPong.pongService: Not found: \"pong\": no Service with this \
                 name in the Rollout's namespace",
            ],
        ),
    ];
    run_with(cases, &world);
}

#[test]
fn analysis_templates_must_exist() {
    let step = |templates: Value| {
        (
            "/spec/strategy/canary/steps/1",
            json!({"analysis": {"templates": templates}}),
        )
    };
    run(vec![
        case(
            "missing AnalysisTemplate",
            canary,
            vec![step(json!([{"templateName": "nope"}]))],
            &[
                "spec.strategy.canary.steps[1].analysis.templates[0].templateName: Not found: \"nope\": \
               AnalysisTemplate \"nope\" does not exist",
            ],
        ),
        case(
            "clusterScope looks in the cluster templates",
            canary,
            vec![step(
                json!([{"templateName": "global", "clusterScope": true}]),
            )],
            &[],
        ),
        case(
            "a namespaced name is not a cluster template",
            canary,
            vec![step(
                json!([{"templateName": "smoke", "clusterScope": true}]),
            )],
            &[
                "spec.strategy.canary.steps[1].analysis.templates[0].templateName: Not found: \
               \"smoke\": ClusterAnalysisTemplate \"smoke\" does not exist",
            ],
        ),
        case(
            "pre- and post-promotion templates must exist",
            blue_green,
            vec![
                (
                    "/spec/strategy/blueGreen/prePromotionAnalysis",
                    json!({"templates": [{"templateName": "pre"}]}),
                ),
                (
                    "/spec/strategy/blueGreen/postPromotionAnalysis",
                    json!({"templates": [{"templateName": "post"}]}),
                ),
            ],
            &[
                "spec.strategy.blueGreen.prePromotionAnalysis.templates[0].templateName: Not found: \
                 \"pre\": AnalysisTemplate \"pre\" does not exist",
                "spec.strategy.blueGreen.postPromotionAnalysis.templates[0].templateName: Not found: \
                 \"post\": AnalysisTemplate \"post\" does not exist",
            ],
        ),
        case(
            "background templates must exist",
            canary,
            vec![(
                "/spec/strategy/canary/analysis",
                json!({"templates": [{"templateName": "bg"}]}),
            )],
            &[
                "spec.strategy.canary.analysis.templates[0].templateName: Not found: \"bg\": \
               AnalysisTemplate \"bg\" does not exist",
            ],
        ),
    ]);
}

#[test]
fn nested_templates_are_flattened_once_even_in_cycles() {
    let mut world = World::new();
    world.template(
        "a",
        json!({"templates": [{"templateName": "b"}, {"templateName": "global", "clusterScope": true}],
               "metrics": [{"name": "a", "provider": {"web": {"url": "http://a"}}}]}),
    );
    world.template(
        "b",
        json!({"templates": [{"templateName": "a"}],
               "metrics": [{"name": "b", "provider": {"web": {"url": "http://b"}}}]}),
    );
    world.template("c", json!({"templates": [{"templateName": "gone"}]}));
    world.template(
        "d",
        json!({"templates": [{"templateName": "smoke"}],
               "metrics": [{"name": "smoke", "provider": {"web": {"url": "http://d"}}}]}),
    );
    let step = |templates: Value| {
        (
            "/spec/strategy/canary/steps/1",
            json!({"analysis": {"templates": templates}}),
        )
    };
    let cases = vec![
        case(
            "a cycle a -> b -> a",
            canary,
            vec![step(json!([{"templateName": "a"}]))],
            &[],
        ),
        case(
            "the same template twice is included once",
            canary,
            vec![step(json!([{"templateName": "a"}, {"templateName": "b"}]))],
            &[],
        ),
        case(
            "a nested template that does not exist",
            canary,
            vec![step(json!([{"templateName": "c"}]))],
            &[
                "spec.strategy.canary.steps[1].analysis.templates[0].templateName: Invalid value: \
               \"c\": AnalysisTemplate \"c\" includes AnalysisTemplate \"gone\", which does not \
               exist",
            ],
        ),
        case(
            "a nested template repeating a metric name",
            canary,
            vec![step(json!([{"templateName": "d"}]))],
            &[
                "spec.strategy.canary.steps[1].analysis.templates[0].templateName: Invalid value: \
               \"d\": metric \"smoke\" is defined by both AnalysisTemplate \"d\" and \
               AnalysisTemplate \"smoke\"; metric names must be unique across the templates of one \
               analysis",
            ],
        ),
    ];
    run_with(cases, &world);
}

#[test]
fn merged_templates_need_unique_metric_names_and_agreeing_args() {
    let mut world = World::new();
    world.template(
        "one",
        json!({"args": [{"name": "x", "value": "1"}, {"name": "y"}],
               "metrics": [{"name": "one", "provider": {"web": {"url": "http://one"}}}]}),
    );
    world.template(
        "two",
        json!({"args": [{"name": "x", "value": "2"}, {"name": "y", "value": "ok"}],
               "metrics": [{"name": "two", "provider": {"web": {"url": "http://two"}}}]}),
    );
    world.template(
        "three",
        json!({"args": [{"name": "x", "value": "1"}],
               "metrics": [{"name": "three", "provider": {"web": {"url": "http://three"}}}]}),
    );
    world.template(
        "four",
        json!({"args": [{"name": "y", "value": "ok"}],
               "metrics": [{"name": "four", "provider": {"web": {"url": "http://four"}}}]}),
    );
    let step = |templates: Value| {
        (
            "/spec/strategy/canary/steps/1",
            json!({"analysis": {"templates": templates, "args": [{"name": "service-name", "value": "web"}]}}),
        )
    };
    let cases = vec![
        case(
            "two templates define metric success-rate",
            canary,
            vec![step(
                json!([{"templateName": "success-rate"}, {"templateName": "errors"}]),
            )],
            &[
                "spec.strategy.canary.steps[1].analysis.templates[1].templateName: Invalid value: \
               \"errors\": metric \"success-rate\" is defined by both AnalysisTemplate \
               \"success-rate\" and AnalysisTemplate \"errors\"; metric names must be unique across \
               the templates of one analysis",
            ],
        ),
        case(
            "an argument with different values",
            canary,
            vec![step(
                json!([{"templateName": "one"}, {"templateName": "two"}]),
            )],
            &[
                "spec.strategy.canary.steps[1].analysis.templates[1].templateName: Invalid value: \
               \"two\": argument \"x\" has different values in AnalysisTemplate \"one\" and \
               AnalysisTemplate \"two\"",
            ],
        ),
        case(
            "the same value twice, and a value given by a later template",
            canary,
            vec![step(
                json!([{"templateName": "one"}, {"templateName": "three"}, {"templateName": "smoke"}]),
            )],
            &[
                "spec.strategy.canary.steps[1].analysis.args: Required value: argument \"y\" was not \
               supplied: AnalysisTemplate \"one\" declares it without a value; add it to args with a \
               value or valueFrom",
            ],
        ),
        case(
            "a value given by a later template supplies an earlier valueless arg",
            canary,
            vec![step(
                json!([{"templateName": "one"}, {"templateName": "four"}]),
            )],
            &[],
        ),
    ];
    run_with(cases, &world);
}

#[test]
fn template_args_without_value_must_be_supplied_by_the_rollout() {
    let analysis = |args: Value| {
        (
            "/spec/strategy/canary/analysis",
            json!({"templates": [{"templateName": "success-rate"}], "args": args}),
        )
    };
    let missing = "spec.strategy.canary.analysis.args: Required value: argument \"service-name\" was \
                   not supplied: AnalysisTemplate \"success-rate\" declares it without a value; add it \
                   to args with a value or valueFrom";
    run(vec![
        case(
            "not supplied",
            canary,
            vec![analysis(json!([]))],
            &[missing],
        ),
        case(
            "supplied with an empty value",
            canary,
            vec![analysis(json!([{"name": "service-name"}]))],
            &[missing],
        ),
        case(
            "supplied by value",
            canary,
            vec![analysis(json!([{"name": "service-name", "value": "web"}]))],
            &[],
        ),
        case(
            "supplied by valueFrom",
            canary,
            vec![analysis(json!([{"name": "service-name",
                                  "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}]))],
            &[],
        ),
        case(
            "rollout args the template does not declare are ignored",
            canary,
            vec![analysis(
                json!([{"name": "service-name", "value": "web"}, {"name": "extra", "value": "1"}]),
            )],
            &[],
        ),
    ]);
}

#[test]
fn step_and_promotion_analyses_may_not_run_indefinitely_but_background_may() {
    let mut world = World::new();
    world.template(
        "zero",
        json!({"metrics": [{"name": "z", "interval": "1m", "count": 0,
                            "provider": {"web": {"url": "http://z"}}}]}),
    );
    world.template(
        "templated",
        json!({"args": [{"name": "n", "value": "0"}],
               "metrics": [{"name": "t", "interval": "1m", "count": "{{args.n}}",
                            "provider": {"web": {"url": "http://t"}}}]}),
    );
    let forever = |path: &'static str| (path, json!({"templates": [{"templateName": "forever"}]}));
    let cases = vec![
        case(
            "step analysis without count",
            canary,
            vec![(
                "/spec/strategy/canary/steps/1",
                json!({"analysis": {"templates": [{"templateName": "forever"}]}}),
            )],
            &[
                "spec.strategy.canary.steps[1].analysis.templates[0].templateName: Invalid value: \
               \"forever\": AnalysisTemplate forever has metric forever which runs indefinitely. \
               Invalid value for count: <nil>",
            ],
        ),
        case(
            "pre-promotion analysis with count 0",
            blue_green,
            vec![(
                "/spec/strategy/blueGreen/prePromotionAnalysis",
                json!({"templates": [{"templateName": "zero"}]}),
            )],
            &[
                "spec.strategy.blueGreen.prePromotionAnalysis.templates[0].templateName: Invalid value: \
               \"zero\": AnalysisTemplate zero has metric z which runs indefinitely. Invalid value for \
               count: 0",
            ],
        ),
        case(
            "post-promotion analysis with a count argument that resolves to 0",
            blue_green,
            vec![(
                "/spec/strategy/blueGreen/postPromotionAnalysis",
                json!({"templates": [{"templateName": "templated"}]}),
            )],
            &[
                "spec.strategy.blueGreen.postPromotionAnalysis.templates[0].templateName: Invalid \
               value: \"templated\": AnalysisTemplate templated has metric t which runs \
               indefinitely. Invalid value for count: 0",
            ],
        ),
        case(
            "the rollout's argument overrides the count",
            blue_green,
            vec![(
                "/spec/strategy/blueGreen/postPromotionAnalysis",
                json!({"templates": [{"templateName": "templated"}], "args": [{"name": "n", "value": "5"}]}),
            )],
            &[],
        ),
        case(
            "background analysis may run indefinitely",
            canary,
            vec![forever("/spec/strategy/canary/analysis")],
            &[],
        ),
    ];
    run_with(cases, &world);
}

#[test]
fn invalid_templates_are_reported_on_the_referencing_field() {
    let mut world = World::new();
    world.template(
        "datadog",
        json!({"metrics": [{"name": "dd", "provider": {"datadog": {"query": "x"}}}]}),
    );
    let cases = vec![case(
        "a provider Ramp does not run",
        canary,
        vec![(
            "/spec/strategy/canary/steps/1",
            json!({"analysis": {"templates": [{"templateName": "datadog"}]}}),
        )],
        &[
            "spec.strategy.canary.steps[1].analysis.templates[0].templateName: Invalid value: \
           \"datadog\": AnalysisTemplate \"datadog\" is invalid: spec.metrics[0].provider.datadog: \
           Forbidden: Ramp does not run the datadog metric provider yet; measure with prometheus, \
           web or job instead",
        ],
    )];
    run_with(cases, &world);
}

// ---------------------------------------------------------------------------------------------------
// Analysis template rules

#[test]
fn analysis_template_rules() {
    let web = json!({"web": {"url": "http://x"}});
    let metric = |extra: Value| {
        let mut metric = json!({"name": "m", "provider": {"web": {"url": "http://x"}}});
        if let (Some(metric), Value::Object(extra)) = (metric.as_object_mut(), extra) {
            metric.extend(extra);
        }
        json!({"metrics": [metric]})
    };
    let table: Vec<(&str, Value, Vec<&str>)> = vec![
        ("a valid web metric", metric(json!({})), vec![]),
        (
            "no metrics and no templates",
            json!({}),
            vec![
                "spec.metrics: Required value: an analysis template needs at least one metric or \
                  nested template",
            ],
        ),
        (
            "only nested templates",
            json!({"templates": [{"templateName": "x"}]}),
            vec![],
        ),
        (
            "metric names must be present and unique",
            json!({"metrics": [{"name": "a", "provider": web}, {"name": "a", "provider": web},
                               {"name": "", "provider": web}]}),
            vec![
                "spec.metrics[1].name: Duplicate value: \"a\"",
                "spec.metrics[2].name: Required value: every metric needs a name",
            ],
        ),
        (
            "no provider",
            metric(json!({"provider": {}})),
            vec![
                "spec.metrics[0].provider: Required value: a metric needs exactly one provider: \
                  prometheus, web or job",
            ],
        ),
        (
            "two providers",
            metric(
                json!({"provider": {"prometheus": {"query": "up"}, "web": {"url": "http://x"}}}),
            ),
            vec![
                "spec.metrics[0].provider: Invalid value: \"prometheus, web\": a metric needs \
                  exactly one provider",
            ],
        ),
        (
            "providers Ramp does not run yet",
            json!({"metrics": [
                {"name": "a", "provider": {"kayenta": {}}},
                {"name": "b", "provider": {"newRelic": {}}},
                {"name": "c", "provider": {"plugin": {"example/metric": {}}}}
            ]}),
            vec![
                "spec.metrics[0].provider.kayenta: Forbidden: Ramp does not run the kayenta metric \
                 provider yet; measure with prometheus, web or job instead",
                "spec.metrics[1].provider.newRelic: Forbidden: Ramp does not run the newRelic metric \
                 provider yet; measure with prometheus, web or job instead",
                "spec.metrics[2].provider.plugin: Forbidden: Ramp does not run the plugin metric \
                 provider yet; measure with prometheus, web or job instead",
            ],
        ),
        (
            "conditions must parse; templated ones wait for their arguments",
            metric(json!({
                "successCondition": "result[0] <",
                "failureCondition": "result[0] > {{args.max}}"
            })),
            vec![
                "spec.metrics[0].successCondition: Invalid value: \"result[0] <\": not a valid expression: expected conditional_if, negation_op, sign_op, value, array, map, or ident at 1:12",
            ],
        ),
        (
            "count above 1 needs an interval",
            metric(json!({"count": 3})),
            vec![
                "spec.metrics[0].interval: Required value: count 3 needs an interval between \
                  measurements",
            ],
        ),
        (
            "count below failureLimit + consecutiveSuccessLimit",
            metric(
                json!({"count": 3, "interval": "10s", "failureLimit": 2, "consecutiveSuccessLimit": 2}),
            ),
            vec![
                "spec.metrics[0].count: Invalid value: 3: count must be >= failureLimit + \
                  consecutiveSuccessLimit (4)",
            ],
        ),
        (
            "count below inconclusiveLimit",
            metric(json!({"count": 1, "inconclusiveLimit": 2})),
            vec!["spec.metrics[0].count: Invalid value: 1: count must be >= inconclusiveLimit (2)"],
        ),
        (
            "limits in string form are read as numbers",
            metric(json!({"count": "2", "interval": "1m", "failureLimit": "3"})),
            vec![
                "spec.metrics[0].count: Invalid value: 2: count must be >= failureLimit + \
                  consecutiveSuccessLimit (3)",
            ],
        ),
        (
            "templated values are checked when the run is created",
            metric(
                json!({"count": "{{args.count}}", "failureLimit": "{{args.limit}}",
                          "interval": "{{args.interval}}"}),
            ),
            vec![],
        ),
        (
            "negative limits",
            metric(
                json!({"count": -1, "inconclusiveLimit": -1, "consecutiveErrorLimit": -1,
                          "consecutiveSuccessLimit": -1, "failureLimit": -2}),
            ),
            vec![
                "spec.metrics[0].count: Invalid value: -1: must be greater than or equal to 0",
                "spec.metrics[0].inconclusiveLimit: Invalid value: -1: must be greater than or equal \
                 to 0",
                "spec.metrics[0].consecutiveErrorLimit: Invalid value: -1: must be greater than or \
                 equal to 0",
                "spec.metrics[0].consecutiveSuccessLimit: Invalid value: -1: must be greater than or \
                 equal to 0",
                "spec.metrics[0].failureLimit: Invalid value: -2: failureLimit must be 0 or more; -1 \
                 (no limit) is allowed only together with consecutiveSuccessLimit",
            ],
        ),
        (
            "failureLimit -1 without consecutiveSuccessLimit",
            metric(json!({"failureLimit": -1})),
            vec![
                "spec.metrics[0].failureLimit: Invalid value: -1: failureLimit must be 0 or more; \
                  -1 (no limit) is allowed only together with consecutiveSuccessLimit",
            ],
        ),
        (
            "failureLimit -1 with consecutiveSuccessLimit",
            metric(
                json!({"failureLimit": -1, "consecutiveSuccessLimit": 3, "count": 5, "interval": "1m"}),
            ),
            vec![],
        ),
        (
            "a limit that is neither a number nor a placeholder",
            metric(json!({"count": "three"})),
            vec![
                "spec.metrics[0].count: Invalid value: \"three\": must be an integer or an \
                  {{args.name}} placeholder",
            ],
        ),
        (
            "interval and initialDelay are Go durations",
            metric(json!({"interval": "5 minutes", "initialDelay": "-1s"})),
            vec![
                "spec.metrics[0].interval: Invalid value: \"5 minutes\": must be a Go duration such \
                 as \"30s\", \"5m\" or \"1h\"",
                "spec.metrics[0].initialDelay: Invalid value: \"-1s\": must not be negative",
            ],
        ),
        (
            "prometheus needs a query and a URL address",
            metric(
                json!({"provider": {"prometheus": {"query": " ", "address": "prometheus:9090",
                          "rangeQuery": {"step": "1 minute"}}}}),
            ),
            vec![
                "spec.metrics[0].provider.prometheus.query: Required value: a PromQL query is required",
                "spec.metrics[0].provider.prometheus.address: Invalid value: \"prometheus:9090\": the \
                 address must be a URL with a scheme and a host, e.g. http://prometheus.monitoring:9090",
                "spec.metrics[0].provider.prometheus.rangeQuery.step: Invalid value: \"1 minute\": \
                 must be a Go duration such as \"30s\", \"5m\" or \"1h\"",
            ],
        ),
        (
            "sigv4 is not supported yet",
            metric(
                json!({"provider": {"prometheus": {"query": "up", "address": "https://aps.example/ws",
                          "authentication": {"sigv4": {"region": "eu-west-1"}}}}}),
            ),
            vec![
                "spec.metrics[0].provider.prometheus.authentication.sigv4: Forbidden: Ramp does not \
                  support sigv4 authentication yet; use basicAuth or oauth2, or an authenticating \
                  proxy in front of the server",
            ],
        ),
        (
            "web needs a URL and a supported method; a body needs POST or PUT",
            metric(json!({"provider": {"web": {"url": "", "method": "DELETE"}}})),
            vec![
                "spec.metrics[0].provider.web.url: Required value: a URL is required",
                "spec.metrics[0].provider.web.method: Unsupported value: \"DELETE\": supported \
                 values: \"GET\", \"POST\", \"PUT\"",
            ],
        ),
        (
            "a GET with a body",
            metric(json!({"provider": {"web": {"url": "http://x", "body": "{}"}}})),
            vec![
                "spec.metrics[0].provider.web.body: Forbidden: a request body needs method POST or PUT",
            ],
        ),
        (
            "body and jsonBody together",
            metric(
                json!({"provider": {"web": {"url": "http://x", "method": "POST", "body": "{}",
                          "jsonBody": {"a": 1}}}}),
            ),
            vec![
                "spec.metrics[0].provider.web.jsonBody: Forbidden: body and jsonBody can not both be set",
            ],
        ),
        (
            "a job needs containers and restartPolicy Never or OnFailure",
            metric(
                json!({"provider": {"job": {"spec": {"template": {"spec": {"containers": []}}}}}}),
            ),
            vec![
                "spec.metrics[0].provider.job.spec.template.spec.containers: Required value: a pod \
                 template needs at least one container",
                "spec.metrics[0].provider.job.spec.template.spec.restartPolicy: Required value: a \
                 Job's pods need restartPolicy Never or OnFailure",
            ],
        ),
        (
            "a job with restartPolicy Always",
            metric(json!({"provider": {"job": {"spec": {"template": {"spec": {
                "restartPolicy": "Always", "containers": [{"name": "c", "image": "busybox"}]}}}}}})),
            vec![
                "spec.metrics[0].provider.job.spec.template.spec.restartPolicy: Unsupported value: \
                  \"Always\": supported values: \"Never\", \"OnFailure\"",
            ],
        ),
        (
            "argument rules",
            json!({"metrics": [{"name": "m", "provider": web}], "args": [
                {"name": "a"}, {"name": "a"}, {"name": ""},
                {"name": "b", "valueFrom": {}},
                {"name": "c", "valueFrom": {"secretKeyRef": {"name": "", "key": ""}}},
                {"name": "d", "valueFrom": {"fieldRef": {"fieldPath": ""}}},
                {"name": "e", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"},
                                            "fieldRef": {"fieldPath": "metadata.name"}}}
            ]}),
            vec![
                "spec.args[1].name: Duplicate value: \"a\"",
                "spec.args[2].name: Required value: every argument needs a name",
                "spec.args[3].valueFrom: Required value: valueFrom needs secretKeyRef or fieldRef",
                "spec.args[4].valueFrom.secretKeyRef.name: Required value: secretKeyRef needs the \
                 Secret's name",
                "spec.args[4].valueFrom.secretKeyRef.key: Required value: secretKeyRef needs the \
                 Secret's key",
                "spec.args[5].valueFrom.fieldRef.fieldPath: Required value: a field path such as \
                 metadata.labels['app'] is required",
                "spec.args[6].valueFrom: Invalid value: {\"secretKeyRef\":{\"name\":\"s\",\"key\":\
                 \"k\"},\"fieldRef\":{\"fieldPath\":\"metadata.name\"}}: valueFrom needs exactly one \
                 of secretKeyRef or fieldRef",
            ],
        ),
        (
            "dryRun, measurementRetention and nested template entries",
            json!({"metrics": [{"name": "m", "provider": web}],
                   "dryRun": [{"metricName": ""}],
                   "measurementRetention": [{"metricName": ".*", "limit": -1}],
                   "templates": [{"templateName": ""}]}),
            vec![
                "spec.dryRun[0].metricName: Required value: a metric name pattern is required \
                 (\".*\" for all)",
                "spec.measurementRetention[0].limit: Invalid value: -1: must be greater than or equal \
                 to 0",
                "spec.templates[0].templateName: Required value: the name of the nested template is \
                 required",
            ],
        ),
    ];
    for (what, spec, expected) in table {
        assert_eq!(template_messages(spec), expected, "case: {what}");
    }
}

#[test]
fn extreme_numbers_do_not_panic() {
    let mut value = canary();
    for (pointer, new) in [
        ("/spec/replicas", json!(i32::MIN)),
        ("/spec/minReadySeconds", json!(i32::MAX)),
        ("/spec/progressDeadlineSeconds", json!(i32::MIN)),
        (
            "/spec/strategy/canary/maxSurge",
            json!(format!("{}%", i64::MAX)),
        ),
        ("/spec/strategy/canary/maxUnavailable", json!(i32::MIN)),
        (
            "/spec/strategy/canary/steps/0",
            json!({"setWeight": i32::MIN}),
        ),
        (
            "/spec/strategy/canary/steps/1",
            json!({"pause": {"duration": "99999999999999h"}}),
        ),
        (
            "/spec/strategy/canary/analysis",
            json!({"templates": [{"templateName": "success-rate"}],
                                                 "startingStep": i32::MAX}),
        ),
    ] {
        set(&mut value, pointer, new);
    }
    let found = messages(value, &World::new());
    assert!(found.len() >= 6, "{found:#?}");

    let spec = json!({"metrics": [{"name": "m", "interval": "1s", "count": i32::MAX,
        "failureLimit": i32::MAX, "consecutiveSuccessLimit": i32::MAX, "inconclusiveLimit": i32::MIN,
        "provider": {"web": {"url": "http://x", "timeoutSeconds": i64::MIN}}}]});
    assert!(!template_messages(spec).is_empty());
}
