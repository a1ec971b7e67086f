//! Building the AnalysisRun a plan asks for: the referenced templates merged, the Rollout's arguments
//! resolved (fixed values, pod-template hashes, fields of the Rollout), Argo's labels, annotations and owner.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::ResourceExt;

use crate::api::analysis::{Argument, DryRun, MeasurementRetention, Metric};
use crate::api::constants::*;
use crate::api::{AnalysisRun, AnalysisRunSpec, AnalysisTemplateSpec, Rollout};
use crate::plan::{NewAnalysisRun, Observed};

/// The AnalysisRun object for `new`. Templates missing from `observed` were already reported by validation.
pub fn build(
    rollout: &Rollout,
    new: &NewAnalysisRun,
    observed: &Observed,
    owner: OwnerReference,
) -> AnalysisRun {
    let mut metrics: Vec<Metric> = Vec::new();
    let mut args: Vec<Argument> = Vec::new();
    let mut dry_run: Vec<DryRun> = new.analysis.dry_run.clone();
    let mut retention: Vec<MeasurementRetention> = new.analysis.measurement_retention.clone();
    for template in &new.analysis.templates {
        let source = if template.cluster_scope {
            &observed.cluster_analysis_templates
        } else {
            &observed.analysis_templates
        };
        let Some(spec): Option<&AnalysisTemplateSpec> = source.get(&template.template_name) else {
            continue;
        };
        metrics.extend(spec.metrics.iter().cloned());
        for arg in &spec.args {
            if !args.iter().any(|a| a.name == arg.name) {
                args.push(arg.clone());
            }
        }
        dry_run.extend(spec.dry_run.iter().cloned());
        retention.extend(spec.measurement_retention.iter().cloned());
    }
    for given in &new.analysis.args {
        let value = resolve(rollout, new, given);
        match args.iter_mut().find(|a| a.name == given.name) {
            Some(arg) => {
                arg.value = value;
                arg.value_from = None;
            }
            None => args.push(Argument {
                name: given.name.clone(),
                value,
                value_from: None,
            }),
        }
    }
    let mut labels = super::act::analysis_run_labels(new);
    labels.extend(new.analysis.analysis_run_metadata.labels.clone());
    // The run belongs to the controller instance that owns the Rollout, which only watches its own.
    if let Some(instance) = rollout.labels().get(CONTROLLER_INSTANCE_ID_LABEL) {
        labels.insert(CONTROLLER_INSTANCE_ID_LABEL.to_string(), instance.clone());
    }
    let mut annotations = new.analysis.analysis_run_metadata.annotations.clone();
    annotations.insert(REVISION_ANNOTATION.into(), new.revision.to_string());
    let mut run = AnalysisRun::new(
        &new.name,
        AnalysisRunSpec {
            metrics,
            args,
            dry_run,
            measurement_retention: retention,
            ..Default::default()
        },
    );
    run.metadata = ObjectMeta {
        name: Some(new.name.clone()),
        namespace: rollout.namespace(),
        labels: Some(labels),
        annotations: Some(annotations),
        owner_references: Some(vec![owner]),
        ..Default::default()
    };
    run
}

/// The value of one Rollout argument, or `None` when it has none that can be resolved here.
fn resolve(
    rollout: &Rollout,
    new: &NewAnalysisRun,
    arg: &crate::api::analysis::AnalysisRunArgument,
) -> Option<String> {
    if !arg.value.is_empty() {
        return Some(arg.value.clone());
    }
    let from = arg.value_from.as_ref()?;
    if let Some(which) = &from.pod_template_hash_value {
        return Some(if which == "Stable" {
            new.stable_pod_template_hash.clone()
        } else {
            new.pod_template_hash.clone()
        });
    }
    let path = &from.field_ref.as_ref()?.field_path;
    let value = serde_json::to_value(rollout).ok()?;
    field(&value, path)
}

/// Splits `metadata.labels['app.kubernetes.io/name']` into `metadata`, `labels`, `app.kubernetes.io/name`.
fn path_keys(path: &str) -> Option<Vec<String>> {
    let mut keys = Vec::new();
    let mut rest = path;
    while !rest.is_empty() {
        if let Some(inside) = rest.strip_prefix('[') {
            let end = inside.find(']')?;
            keys.push(
                inside[..end]
                    .trim_matches(|c| c == '\'' || c == '"')
                    .to_string(),
            );
            rest = inside[end + 1..].trim_start_matches('.');
        } else {
            let end = rest.find(['.', '[']).unwrap_or(rest.len());
            keys.push(rest[..end].to_string());
            rest = rest[end..].strip_prefix('.').unwrap_or(&rest[end..]);
        }
    }
    Some(keys)
}

/// Reads `metadata.name`, `metadata.labels['app']` or `spec.template.spec.containers[0].image` from an
/// object: a key that is a number indexes a list.
fn field(object: &serde_json::Value, path: &str) -> Option<String> {
    let mut cursor = object;
    for key in path_keys(path)? {
        cursor = match cursor {
            serde_json::Value::Array(items) => items.get(key.parse::<usize>().ok()?)?,
            _ => cursor.get(&key)?,
        };
    }
    Some(match cursor {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn fields_by_path_and_by_key() {
        let object = json!({"metadata": {"name": "web", "labels": {"app.kubernetes.io/name": "shop"}}, "spec": {"replicas": 4}});
        assert_eq!(field(&object, "metadata.name").as_deref(), Some("web"));
        assert_eq!(field(&object, "spec.replicas").as_deref(), Some("4"));
        assert_eq!(
            field(&object, "metadata.labels['app.kubernetes.io/name']").as_deref(),
            Some("shop")
        );
        assert_eq!(field(&object, "metadata.missing"), None);
    }

    #[test]
    fn fields_inside_lists_by_index() {
        let object = json!({"spec": {"template": {"spec": {"containers": [
            {"name": "app", "image": "shop:v1"},
            {"name": "proxy", "image": "envoy:1.30"}
        ]}}}});
        let image = |path| field(&object, path);
        assert_eq!(
            image("spec.template.spec.containers[0].image").as_deref(),
            Some("shop:v1")
        );
        assert_eq!(
            image("spec.template.spec.containers[1].image").as_deref(),
            Some("envoy:1.30")
        );
        assert_eq!(image("spec.template.spec.containers[2].image"), None);
        assert_eq!(image("spec.template.spec.containers[first].image"), None);
    }
}
