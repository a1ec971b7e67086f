//! A Deployment controller for plain rolling updates: one ReplicaSet per pod template (named by a hash of the
//! template), the new one scaled to `spec.replicas` and the old ones scaled down as new pods become available.
//! `maxSurge`/`maxUnavailable` are not honoured step by step: the old ReplicaSets shrink by the number of new
//! available pods.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};

use super::{Ownership, Reconciler, as_controller, builtin, controller_reference, is_terminating};
use crate::apiserver::{Cluster, Subresource};
use crate::json::At;
use crate::store::{Change, ObjectKey, name_of, uid_of};

pub struct DeploymentController;

const NAME: &str = "deployment-controller";

/// FNV-1a of the template's JSON, as ten hex digits: stable for an unchanged template.
fn template_hash(template: &Value) -> String {
    let mut hash: u64 = 0xcbf29ce484222325;
    for byte in template.to_string().bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x100000001b3);
    }
    format!("{:010x}", hash & 0xff_ffff_ffff)
}

fn replicas(obj: &Value, pointer: &str) -> i64 {
    obj.at(pointer).and_then(Value::as_i64).unwrap_or(0)
}

const DEPLOYMENTS: Ownership = Ownership {
    group: "apps",
    plural: "deployments",
    kind: "Deployment",
    child_group: "apps",
    child_plural: "replicasets",
};

impl Reconciler for DeploymentController {
    fn name(&self) -> &'static str {
        NAME
    }

    fn keys_for(&mut self, _cluster: &Cluster, change: &Change) -> Vec<ObjectKey> {
        DEPLOYMENTS.keys_for(change)
    }

    fn all_keys(&mut self, cluster: &Cluster) -> Vec<ObjectKey> {
        DEPLOYMENTS.all_keys(cluster)
    }

    fn reconcile(&mut self, cluster: &Cluster, key: &ObjectKey) -> Option<Duration> {
        let deploy_type = builtin(cluster, "apps", "deployments")?;
        let rs_type = builtin(cluster, "apps", "replicasets")?;
        let deployment = cluster
            .get(&deploy_type, &key.0, &key.1)
            .ok()
            .map(Arc::unwrap_or_clone)?;
        if is_terminating(&deployment) {
            return None;
        }
        let options = as_controller(NAME);
        let desired = deployment
            .at("/spec/replicas")
            .and_then(Value::as_i64)
            .unwrap_or(1);
        let template = deployment.at("/spec/template").cloned().unwrap_or_default();
        let hash = template_hash(&template);
        let uid = uid_of(&deployment).to_string();
        let owned: Vec<Value> = cluster
            .dependents(&uid)
            .iter()
            .filter(|o| o.get("kind").and_then(Value::as_str) == Some("ReplicaSet"))
            .map(|o| (**o).clone())
            .collect();
        let is_new = |rs: &Value| {
            rs.at("/metadata/labels/pod-template-hash")
                .and_then(Value::as_str)
                == Some(&hash)
        };
        let new_rs = match owned.iter().find(|rs| is_new(rs)) {
            Some(rs) => rs.clone(),
            None => {
                let mut template = template.clone();
                template["metadata"]["labels"]["pod-template-hash"] = json!(hash);
                let mut selector = deployment
                    .at("/spec/selector")
                    .cloned()
                    .unwrap_or_else(|| json!({}));
                selector["matchLabels"]["pod-template-hash"] = json!(hash);
                let rs = json!({
                    "apiVersion": "apps/v1", "kind": "ReplicaSet",
                    "metadata": {"name": format!("{}-{hash}", key.1), "namespace": key.0,
                        "labels": template["metadata"]["labels"], "ownerReferences": [controller_reference(&deployment)]},
                    "spec": {"replicas": desired, "selector": selector, "template": template,
                        "minReadySeconds": deployment.at("/spec/minReadySeconds").cloned().unwrap_or(json!(0))},
                });
                cluster
                    .create(&rs_type, &key.0, rs, &options)
                    .ok()
                    .map(Arc::unwrap_or_clone)?
            }
        };
        if replicas(&new_rs, "/spec/replicas") != desired {
            scale(cluster, &rs_type, &key.0, &new_rs, desired);
        }
        let new_available = replicas(&new_rs, "/status/availableReplicas");
        let mut old_left = (desired - new_available).max(0);
        for old in owned.iter().filter(|rs| !is_new(rs)) {
            let keep = replicas(old, "/spec/replicas").min(old_left);
            old_left -= keep;
            if keep != replicas(old, "/spec/replicas") {
                scale(cluster, &rs_type, &key.0, old, keep);
            }
        }
        let sum = |p: &str| owned.iter().map(|rs| replicas(rs, p)).sum::<i64>();
        let available = sum("/status/availableReplicas");
        let status = json!({
            "observedGeneration": deployment.at("/metadata/generation"),
            "replicas": sum("/status/replicas"),
            "updatedReplicas": replicas(&new_rs, "/status/replicas"),
            "readyReplicas": sum("/status/readyReplicas"),
            "availableReplicas": available,
            "conditions": [{"type": "Available", "status": if available >= desired { "True" } else { "False" },
                "reason": if available >= desired { "MinimumReplicasAvailable" } else { "MinimumReplicasUnavailable" }}],
        });
        if deployment.get("status") != Some(&status) {
            let mut updated = deployment.clone();
            updated["status"] = status;
            let _ = cluster.update(
                &deploy_type,
                &key.0,
                &key.1,
                updated,
                Subresource::Status,
                &options,
            );
        }
        None
    }
}

fn scale(
    cluster: &Cluster,
    rs_type: &crate::registry::ResourceType,
    namespace: &str,
    rs: &Value,
    to: i64,
) {
    let mut updated = rs.clone();
    updated["spec"]["replicas"] = json!(to);
    let _ = cluster.update(
        rs_type,
        namespace,
        name_of(rs),
        updated,
        Subresource::Main,
        &as_controller(NAME),
    );
}
