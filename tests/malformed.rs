//! Whatever a user (or a fuzzer) writes, reading it as a Rollout returns an error instead of panicking,
//! and validating whatever can be read never panics.

use std::collections::BTreeMap;
use std::path::Path;

use proptest::prelude::*;
use proptest::sample::Index;
use ramp::api::validation::{
    References, ServiceState, validate_analysis_template, validate_rollout_all,
};
use ramp::api::{AnalysisTemplateSpec, Rollout};
use serde::Deserialize;
use serde_json::{Map, Value, json};

/// Field names of the API, so that random objects often hit real fields.
const KEYS: &[&str] = &[
    "apiVersion",
    "kind",
    "metadata",
    "name",
    "labels",
    "spec",
    "replicas",
    "selector",
    "matchLabels",
    "matchExpressions",
    "key",
    "operator",
    "values",
    "template",
    "containers",
    "image",
    "initContainers",
    "restartPolicy",
    "workloadRef",
    "minReadySeconds",
    "progressDeadlineSeconds",
    "revisionHistoryLimit",
    "strategy",
    "canary",
    "blueGreen",
    "steps",
    "setWeight",
    "pause",
    "duration",
    "analysis",
    "templates",
    "templateName",
    "clusterScope",
    "args",
    "value",
    "valueFrom",
    "podTemplateHashValue",
    "fieldRef",
    "fieldPath",
    "startingStep",
    "trafficRouting",
    "nginx",
    "istio",
    "smi",
    "plugins",
    "maxTrafficWeight",
    "maxSurge",
    "maxUnavailable",
    "canaryService",
    "stableService",
    "activeService",
    "previewService",
    "prePromotionAnalysis",
    "postPromotionAnalysis",
    "antiAffinity",
    "weight",
    "setCanaryScale",
    "experiment",
    "plugin",
    "setHeaderRoute",
    "setMirrorRoute",
    "pingPong",
    "scaleDownDelaySeconds",
    "dynamicStableScale",
    "replicaProgressThreshold",
    "type",
    "metrics",
    "interval",
    "count",
    "failureLimit",
    "consecutiveSuccessLimit",
    "provider",
    "prometheus",
    "query",
    "web",
    "url",
    "job",
];

fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => proptest::sample::select(KEYS).prop_map(str::to_string),
        1 => "[a-zA-Z]{0,8}",
    ]
}

fn string() -> impl Strategy<Value = String> {
    prop_oneof![
        proptest::sample::select(
            &[
                "",
                "0",
                "-1",
                "25%",
                "0%",
                "150%",
                "10",
                "30s",
                "-5s",
                "1h",
                "soon",
                "{{args.n}}",
                "Always",
                "Never",
                "In",
                "Exists",
                "Latest",
                "Stable",
                "Rollout",
                "Percent",
                "web",
                "argoproj/rollouts-demo:blue",
                "http://x",
                "\u{e9}\u{1F600}",
            ][..]
        )
        .prop_map(str::to_string),
        ".{0,12}",
    ]
}

fn number() -> impl Strategy<Value = Value> {
    prop_oneof![
        proptest::sample::select(vec![
            0,
            1,
            -1,
            100,
            101,
            i64::from(i32::MAX),
            i64::from(i32::MIN),
            i64::MAX,
            i64::MIN,
        ])
        .prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
    ]
}

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        number(),
        string().prop_map(Value::String),
    ]
}

/// Arbitrary JSON: nested objects (with API field names), arrays, strings, numbers.
fn json_value() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            proptest::collection::btree_map(key(), inner, 0..6)
                .prop_map(|map| Value::Object(map.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// A document shaped like a Rollout at the top, arbitrary below.
fn rollout_shaped() -> impl Strategy<Value = Value> {
    (string(), json_value(), json_value()).prop_map(|(name, spec, status)| {
        json!({
            "apiVersion": "argoproj.io/v1alpha1",
            "kind": "Rollout",
            "metadata": {"name": name},
            "spec": spec,
            "status": status,
        })
    })
}

/// The documents of `examples/*.yaml`, as JSON.
fn example_documents() -> Vec<Value> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    let mut paths: Vec<_> = std::fs::read_dir(&dir)
        .expect("examples/ exists")
        .map(|entry| entry.expect("directory entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "yaml"))
        .collect();
    paths.sort();
    paths
        .iter()
        .flat_map(|path| {
            let text = std::fs::read_to_string(path).expect("example readable");
            serde_norway::Deserializer::from_str(&text)
                .map(|doc| Value::deserialize(doc).expect("example is YAML"))
                .collect::<Vec<_>>()
        })
        .collect()
}

fn of_kind(kind: &str) -> Vec<Value> {
    example_documents()
        .into_iter()
        .filter(|doc| doc["kind"] == kind)
        .collect()
}

/// The Services and templates of the examples, for the reference checks.
struct World {
    services: BTreeMap<String, ServiceState>,
    templates: BTreeMap<String, AnalysisTemplateSpec>,
    cluster_templates: BTreeMap<String, AnalysisTemplateSpec>,
}

impl World {
    fn from_examples() -> Self {
        let mut world = World {
            services: BTreeMap::new(),
            templates: BTreeMap::new(),
            cluster_templates: BTreeMap::new(),
        };
        for doc in example_documents() {
            let name = doc["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            match doc["kind"].as_str() {
                Some("Service") => {
                    let selector =
                        serde_json::from_value(doc["spec"]["selector"].clone()).unwrap_or_default();
                    world.services.insert(
                        name.clone(),
                        ServiceState {
                            name,
                            selector,
                            managed_by_rollout: None,
                        },
                    );
                }
                Some("AnalysisTemplate") => {
                    let spec = serde_json::from_value(doc["spec"].clone()).expect("template");
                    world.templates.insert(name, spec);
                }
                Some("ClusterAnalysisTemplate") => {
                    let spec = serde_json::from_value(doc["spec"].clone()).expect("template");
                    world.cluster_templates.insert(name, spec);
                }
                _ => {}
            }
        }
        world
    }

    fn refs(&self) -> References<'_> {
        References {
            services: &self.services,
            analysis_templates: &self.templates,
            cluster_analysis_templates: &self.cluster_templates,
        }
    }
}

/// Every JSON pointer inside a document (not the root).
fn pointers(value: &Value, prefix: &str, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, child) in map {
                let pointer = format!("{prefix}/{}", key.replace('~', "~0").replace('/', "~1"));
                pointers(child, &pointer, out);
                out.push(pointer);
            }
        }
        Value::Array(items) => {
            for (index, child) in items.iter().enumerate() {
                let pointer = format!("{prefix}/{index}");
                pointers(child, &pointer, out);
                out.push(pointer);
            }
        }
        _ => {}
    }
}

/// One change to a document: replace the value at a pointer, remove it, or add a field beside it.
#[derive(Clone, Debug)]
enum Mutation {
    Replace(Index, Value),
    Remove(Index),
    AddField(Index, String, Value),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        3 => (any::<Index>(), json_value()).prop_map(|(at, value)| Mutation::Replace(at, value)),
        1 => any::<Index>().prop_map(Mutation::Remove),
        1 => (any::<Index>(), key(), json_value())
            .prop_map(|(at, key, value)| Mutation::AddField(at, key, value)),
    ]
}

fn mutate(mut document: Value, mutations: &[Mutation]) -> Value {
    for mutation in mutations {
        let mut all = Vec::new();
        pointers(&document, "", &mut all);
        if all.is_empty() {
            break;
        }
        let (at, change) = match mutation {
            Mutation::Replace(at, value) => (at, Some((None, value.clone()))),
            Mutation::Remove(at) => (at, None),
            Mutation::AddField(at, key, value) => (at, Some((Some(key.clone()), value.clone()))),
        };
        let pointer = &all[at.index(all.len())];
        let (parent, last) = pointer.rsplit_once('/').unwrap_or(("", pointer));
        match change {
            Some((None, value)) => {
                if let Some(slot) = document.pointer_mut(pointer) {
                    *slot = value;
                }
            }
            Some((Some(key), value)) => {
                if let Some(Value::Object(map)) = document.pointer_mut(parent) {
                    map.insert(key, value);
                }
            }
            None => match document.pointer_mut(parent) {
                Some(Value::Object(map)) => {
                    map.remove(&last.replace("~1", "/").replace("~0", "~"));
                }
                Some(Value::Array(items)) => {
                    if let Ok(index) = last.parse::<usize>()
                        && index < items.len()
                    {
                        items.remove(index);
                    }
                }
                _ => {}
            },
        }
    }
    document
}

/// Reads a document as a Rollout; when that works, validates it. Either step may fail; neither may
/// panic (a panic fails the property).
fn read_and_validate(document: Value, world: &World) {
    if let Ok(rollout) = serde_json::from_value::<Rollout>(document) {
        let _ = validate_rollout_all(&rollout, &world.refs());
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_json_never_panics_as_a_rollout(document in prop_oneof![json_value(), rollout_shaped()]) {
        read_and_validate(document, &World::from_examples());
    }

    #[test]
    fn mutated_example_rollouts_never_panic(
        pick in any::<Index>(),
        mutations in proptest::collection::vec(mutation(), 1..5),
    ) {
        let rollouts = of_kind("Rollout");
        let document = mutate(pick.get(&rollouts).clone(), &mutations);
        read_and_validate(document, &World::from_examples());
    }

    #[test]
    fn mutated_example_templates_never_panic_alone_or_when_referenced(
        pick in any::<Index>(),
        mutations in proptest::collection::vec(mutation(), 1..5),
    ) {
        let mut templates = of_kind("AnalysisTemplate");
        templates.extend(of_kind("ClusterAnalysisTemplate"));
        let original = pick.get(&templates).clone();
        let document = mutate(original.clone(), &mutations);
        if let Ok(spec) = serde_json::from_value::<AnalysisTemplateSpec>(document["spec"].clone()) {
            let _ = validate_analysis_template(&spec);
            // Put the mutated template in place of the original and validate every example Rollout.
            let mut world = World::from_examples();
            let name = original["metadata"]["name"].as_str().unwrap_or_default().to_string();
            if original["kind"] == "ClusterAnalysisTemplate" {
                world.cluster_templates.insert(name, spec);
            } else {
                world.templates.insert(name, spec);
            }
            for rollout in of_kind("Rollout") {
                read_and_validate(rollout, &world);
            }
        }
    }
}

#[test]
fn the_mutation_source_has_rollouts_and_templates() {
    assert!(of_kind("Rollout").len() >= 5);
    assert!(!of_kind("AnalysisTemplate").is_empty());
    assert!(!of_kind("ClusterAnalysisTemplate").is_empty());
}
