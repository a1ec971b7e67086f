//! `undo NAME [--to-revision N]`: put the pod template of an earlier revision back into the rollout with
//! a JSON patch of `/spec/template` (reference §7). The controller then re-adopts that ReplicaSet.

use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::api::{Api, ListParams};
use serde_json::{Value, json};

use super::cluster::{CliError, Cluster, api_error};
use crate::api::Rollout;
use crate::api::constants::{POD_TEMPLATE_HASH_LABEL, REVISION_ANNOTATION};

/// What `undo` does.
#[derive(Clone, Debug, PartialEq)]
pub enum Undo {
    /// Send this JSON patch; the template is revision `revision`'s.
    Patch { revision: i64, patch: Value },
    /// The rollout already has revision `revision`'s template.
    Skip { revision: i64 },
}

fn revision(rs: &ReplicaSet) -> Option<i64> {
    rs.metadata
        .annotations
        .as_ref()?
        .get(REVISION_ANNOTATION)?
        .parse()
        .ok()
}

/// Picks the ReplicaSet of `to_revision` (0: the previous revision, i.e. the second-highest) among the
/// rollout's ReplicaSets and compares its template with the rollout's.
pub fn undo(
    rollout: &Rollout,
    replica_sets: &[ReplicaSet],
    to_revision: i64,
) -> Result<Undo, CliError> {
    let uid = rollout.metadata.uid.as_deref();
    let mut owned: Vec<(i64, &ReplicaSet)> = replica_sets
        .iter()
        .filter(|rs| {
            rs.metadata
                .owner_references
                .iter()
                .flatten()
                .any(|o| o.controller == Some(true) && Some(o.uid.as_str()) == uid)
        })
        .filter_map(|rs| revision(rs).map(|r| (r, rs)))
        .collect();
    owned.sort_by_key(|(r, _)| std::cmp::Reverse(*r));
    let target = if to_revision == 0 {
        owned.get(1).ok_or_else(|| {
            CliError::Invalid(
                "no rollout history found: there is no earlier revision to go back to".into(),
            )
        })?
    } else {
        owned.iter().find(|(r, _)| *r == to_revision).ok_or_else(|| {
            let known: Vec<String> = owned.iter().map(|(r, _)| r.to_string()).collect();
            CliError::Invalid(format!(
                "unable to find specified revision {to_revision} in history; revisions there: {}",
                if known.is_empty() { "none".into() } else { known.join(", ") }
            ))
        })?
    };
    let (revision, rs) = (target.0, target.1);
    let mut template = serde_json::to_value(rs.spec.as_ref().and_then(|s| s.template.clone()))
        .unwrap_or(Value::Null);
    if let Some(labels) = template
        .pointer_mut("/metadata/labels")
        .and_then(Value::as_object_mut)
    {
        labels.remove(POD_TEMPLATE_HASH_LABEL);
    }
    let current = serde_json::to_value(&rollout.spec.template).unwrap_or(Value::Null);
    if derivative(&current, &template) {
        return Ok(Undo::Skip { revision });
    }
    Ok(Undo::Patch {
        revision,
        patch: json!([{"op": "replace", "path": "/spec/template", "value": template}]),
    })
}

/// Go's `DeepDerivative(a, b)`: every field set in `a` (non-empty) has the same value in `b`.
fn derivative(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Null, _) => true,
        (Value::String(s), _) if s.is_empty() => true,
        (Value::Object(a), Value::Object(b)) => a
            .iter()
            .all(|(k, v)| derivative(v, b.get(k).unwrap_or(&Value::Null))),
        (Value::Object(a), Value::Null) => a.values().all(|v| derivative(v, &Value::Null)),
        (Value::Array(a), Value::Array(b)) => {
            a.is_empty() || (a.len() == b.len() && a.iter().zip(b).all(|(x, y)| derivative(x, y)))
        }
        (Value::Array(a), Value::Null) => a.is_empty(),
        (a, b) => a == b,
    }
}

/// `metav1.FormatLabelSelector`, for listing the rollout's ReplicaSets.
pub fn format_selector(selector: &LabelSelector) -> String {
    let mut parts: Vec<String> = selector
        .match_labels
        .iter()
        .flatten()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    for requirement in selector.match_expressions.iter().flatten() {
        let values = requirement.values.clone().unwrap_or_default().join(",");
        parts.push(match requirement.operator.as_str() {
            "In" => format!("{} in ({values})", requirement.key),
            "NotIn" => format!("{} notin ({values})", requirement.key),
            "Exists" => requirement.key.clone(),
            _ => format!("!{}", requirement.key),
        });
    }
    parts.join(",")
}

pub async fn run(cluster: &Cluster, name: &str, to_revision: i64) -> Result<String, CliError> {
    let rollout = match cluster.rollouts().get(name).await {
        Ok(rollout) => rollout,
        Err(error) => {
            return Err(cluster
                .rollout_error(name, "cannot read the rollout", error)
                .await);
        }
    };
    if rollout.spec.workload_ref.is_some() {
        return Err(CliError::Invalid(format!(
            "rollout '{name}' takes its pod template from spec.workloadRef; undo the change on that workload instead"
        )));
    }
    let selector = rollout
        .spec
        .selector
        .as_ref()
        .map(format_selector)
        .unwrap_or_default();
    let replica_sets: Api<ReplicaSet> = Api::namespaced(cluster.client.clone(), &cluster.namespace);
    let list = replica_sets
        .list(&ListParams::default().labels(&selector))
        .await
        .map_err(|e| api_error("cannot list the rollout's ReplicaSets", e))?;
    match undo(&rollout, &list.items, to_revision)? {
        Undo::Skip { revision } => Ok(format!(
            "skipped rollback (current template already matches revision {revision})"
        )),
        Undo::Patch { patch, .. } => {
            // A JSON patch (RFC 6902), sent as such: kube's typed JSON patch needs an extra feature.
            let url = format!(
                "/apis/argoproj.io/v1alpha1/namespaces/{}/rollouts/{name}",
                cluster.namespace
            );
            let request = http::Request::patch(url)
                .header(http::header::CONTENT_TYPE, "application/json-patch+json")
                .body(patch.to_string().into_bytes())
                .map_err(|e| CliError::Invalid(format!("cannot build the undo request: {e}")))?;
            cluster
                .client
                .request::<Value>(request)
                .await
                .map_err(|e| api_error("cannot undo", e))?;
            Ok(format!("rollout '{name}' undo"))
        }
    }
}

#[cfg(test)]
mod tests;
