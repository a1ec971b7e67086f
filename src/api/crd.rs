//! The CustomResourceDefinitions Ramp installs, generated from the Rust types. `crdgen` writes them to
//! `crds/`; a test fails when the committed files are stale.

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    CustomResourceDefinition, CustomResourceSubresources,
};
use kube::CustomResourceExt;

use super::{AnalysisRun, AnalysisTemplate, ClusterAnalysisTemplate, Rollout};

/// Every CRD with the file name it is committed under in `crds/`.
pub fn all() -> Vec<(&'static str, CustomResourceDefinition)> {
    [
        ("rollout-crd.yaml", Rollout::crd()),
        (
            "analysis-template-crd.yaml",
            without_subresources(AnalysisTemplate::crd()),
        ),
        (
            "cluster-analysis-template-crd.yaml",
            without_subresources(ClusterAnalysisTemplate::crd()),
        ),
        (
            "analysis-run-crd.yaml",
            without_subresources(AnalysisRun::crd()),
        ),
    ]
    .into_iter()
    .map(|(file, crd)| (file, without_embedded_descriptions(crd)))
    .collect()
}

/// The schemas of embedded Kubernetes types (the pod template, a Job metric's spec) carry the upstream
/// field descriptions, which would make each CRD about 600 KB: too large for `kubectl apply`'s
/// last-applied annotation (256 KiB). Like Argo's CRDs, Ramp's drop those descriptions and keep its own.
fn without_embedded_descriptions(crd: CustomResourceDefinition) -> CustomResourceDefinition {
    let mut value = match serde_json::to_value(&crd) {
        Ok(value) => value,
        Err(_) => return crd,
    };
    strip_embedded(&mut value, false);
    serde_json::from_value(value).unwrap_or(crd)
}

/// Properties whose schemas come from k8s-openapi: the Rollout's pod template and a Job metric.
const EMBEDDED_TYPES: [&str; 2] = ["template", "job"];

/// Walks a schema; below a property named in [`EMBEDDED_TYPES`], removes every `description`.
fn strip_embedded(node: &mut serde_json::Value, inside_embedded: bool) {
    match node {
        serde_json::Value::Object(map) => {
            if inside_embedded {
                map.remove("description");
            }
            for (key, child) in map.iter_mut() {
                match (key.as_str(), child) {
                    ("properties", serde_json::Value::Object(properties)) => {
                        for (name, schema) in properties.iter_mut() {
                            let enters = inside_embedded || EMBEDDED_TYPES.contains(&name.as_str());
                            strip_embedded(schema, enters);
                        }
                    }
                    (_, child) => strip_embedded(child, inside_embedded),
                }
            }
        }
        serde_json::Value::Array(items) => {
            for item in items {
                strip_embedded(item, inside_embedded);
            }
        }
        _ => {}
    }
}

/// Argo's AnalysisRun and templates declare `subresources: {}`: their status is written on the main
/// resource, so clients that patch it there (Argo's own tools) keep working.
fn without_subresources(mut crd: CustomResourceDefinition) -> CustomResourceDefinition {
    for version in &mut crd.spec.versions {
        version.subresources = Some(CustomResourceSubresources::default());
    }
    crd
}

/// One CRD as the YAML committed in `crds/`.
pub fn to_yaml(crd: &CustomResourceDefinition) -> Result<String, serde_norway::Error> {
    serde_norway::to_string(crd)
}
