//! `lint -f FILE`: offline and strict. Every Rollout, AnalysisTemplate, ClusterAnalysisTemplate and
//! Service in the file is decoded with unknown fields reported as errors (with their field path), and
//! every Rollout goes through the controller's own validation with the Services and templates of the
//! same file as its references. As Argo's lint, a reference to an object the file does not hold is not
//! an error: it may live elsewhere.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Service;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::api::Rollout;
use crate::api::analysis::{AnalysisTemplate, AnalysisTemplateSpec, ClusterAnalysisTemplate};
use crate::api::constants::MANAGED_BY_ROLLOUTS_ANNOTATION;
use crate::api::validation::{
    FieldErrorKind, References, ServiceState, validate_analysis_template, validate_rollout_all,
};

/// One problem: which document, and what is wrong where.
#[derive(Clone, Debug, PartialEq)]
pub struct Problem {
    /// `Kind "name"`, or `document N` when the document has no name.
    pub object: String,
    /// `<field path>: <what>`.
    pub message: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.object, self.message)
    }
}

/// A serde_ignored path as a Kubernetes field path: `spec.strategy.canary.steps[0].foo`.
fn field_path(path: &serde_ignored::Path) -> String {
    use serde_ignored::Path;
    match path {
        Path::Root => String::new(),
        Path::Seq { parent, index } => format!("{}[{index}]", field_path(parent)),
        Path::Map { parent, key } => {
            let parent = field_path(parent);
            if parent.is_empty() {
                key.clone()
            } else {
                format!("{parent}.{key}")
            }
        }
        Path::Some { parent }
        | Path::NewtypeStruct { parent }
        | Path::NewtypeVariant { parent } => field_path(parent),
    }
}

/// Decodes `value` as `T`, listing every unknown field and the first type error with its path.
fn strict<T: DeserializeOwned>(value: Value, errors: &mut Vec<String>) -> Option<T> {
    let mut unknown = Vec::new();
    let mut record = |path: serde_ignored::Path| unknown.push(field_path(&path));
    let deserializer = serde_ignored::Deserializer::new(value, &mut record);
    let decoded: Result<T, _> = serde_path_to_error::deserialize(deserializer);
    // The CRD types' generated code reads apiVersion and kind itself and reports them as ignored.
    errors.extend(
        unknown
            .into_iter()
            .filter(|path| path != "apiVersion" && path != "kind")
            .map(|path| format!("{path}: unknown field")),
    );
    match decoded {
        Ok(decoded) => Some(decoded),
        Err(error) => {
            let path = error.path().to_string();
            errors.push(format!("{path}: {}", error.inner()));
            None
        }
    }
}

/// Every problem in the text of a YAML file, in document order. Empty when the file is clean.
pub fn lint(text: &str) -> Vec<Problem> {
    let mut problems = Vec::new();
    let mut rollouts = Vec::new();
    let mut services = BTreeMap::new();
    let mut templates = BTreeMap::new();
    let mut cluster_templates = BTreeMap::new();
    for (index, document) in serde_norway::Deserializer::from_str(text).enumerate() {
        let value: Value = match serde::Deserialize::deserialize(document) {
            Ok(Value::Null) => continue,
            Ok(value) => value,
            Err(error) => {
                problems.push(Problem {
                    object: format!("document {}", index + 1),
                    message: format!("not YAML: {error}"),
                });
                // A syntax error ends the stream: nothing after it can be read.
                break;
            }
        };
        let kind = value["kind"].as_str().unwrap_or_default().to_string();
        let name = value["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let object = if name.is_empty() {
            format!("document {} ({kind})", index + 1)
        } else {
            format!("{kind} \"{name}\"")
        };
        let mut errors = Vec::new();
        match kind.as_str() {
            "Rollout" => {
                if let Some(rollout) = strict::<Rollout>(value, &mut errors) {
                    rollouts.push((object.clone(), rollout));
                }
            }
            "AnalysisTemplate" => {
                if let Some(template) = strict::<AnalysisTemplate>(value, &mut errors) {
                    errors.extend(
                        validate_analysis_template(&template.spec)
                            .iter()
                            .map(ToString::to_string),
                    );
                    templates.insert(name, template.spec);
                }
            }
            "ClusterAnalysisTemplate" => {
                if let Some(template) = strict::<ClusterAnalysisTemplate>(value, &mut errors) {
                    let spec = AnalysisTemplateSpec::from(template.spec);
                    errors.extend(
                        validate_analysis_template(&spec)
                            .iter()
                            .map(ToString::to_string),
                    );
                    cluster_templates.insert(name, spec);
                }
            }
            "Service" => {
                if let Some(service) = strict::<Service>(value, &mut errors) {
                    let managed_by_rollout = service
                        .metadata
                        .annotations
                        .as_ref()
                        .and_then(|a| a.get(MANAGED_BY_ROLLOUTS_ANNOTATION).cloned());
                    let selector = service.spec.and_then(|s| s.selector).unwrap_or_default();
                    services.insert(
                        name.clone(),
                        ServiceState {
                            name,
                            selector,
                            managed_by_rollout,
                        },
                    );
                }
            }
            _ => {}
        }
        problems.extend(errors.into_iter().map(|message| Problem {
            object: object.clone(),
            message,
        }));
    }
    let refs = References {
        services: &services,
        analysis_templates: &templates,
        cluster_analysis_templates: &cluster_templates,
    };
    for (object, rollout) in rollouts {
        for error in validate_rollout_all(&rollout, &refs) {
            if matches!(error.kind, FieldErrorKind::NotFound(_)) {
                continue;
            }
            problems.push(Problem {
                object: object.clone(),
                message: error.to_string(),
            });
        }
    }
    problems
}

#[cfg(test)]
mod tests;
