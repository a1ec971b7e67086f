//! The ReplicaSet controller: creates and deletes pods to match `spec.replicas`, and reports replicas, fully
//! labelled, ready and available (ready for `minReadySeconds`) pods and the observed generation in status.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};

use super::{
    Ownership, Reconciler, as_controller, builtin, controller_of, controller_reference,
    is_pod_ready, is_terminating, pod_phase,
};
use crate::apiserver::{Cluster, DeleteOptions, Subresource};
use crate::json::At;
use crate::selector::LabelSelector;
use crate::store::{Change, ObjectKey, uid_of};

#[derive(Default)]
pub struct ReplicaSetController;

impl ReplicaSetController {
    fn name(&self) -> &'static str {
        "replicaset-controller"
    }
}

/// Seconds since the pod's Ready condition turned True.
fn ready_for(pod: &Value) -> Option<f64> {
    let since = pod
        .at("/status/conditions")?
        .as_array()?
        .iter()
        .find(|c| {
            c.get("type").and_then(Value::as_str) == Some("Ready")
                && c.get("status").and_then(Value::as_str) == Some("True")
        })?
        .get("lastTransitionTime")?
        .as_str()?
        .parse::<jiff::Timestamp>()
        .ok()?;
    Some((jiff::Timestamp::now().as_millisecond() - since.as_millisecond()) as f64 / 1000.0)
}

const REPLICA_SETS: Ownership = Ownership {
    group: "apps",
    plural: "replicasets",
    kind: "ReplicaSet",
    child_group: "",
    child_plural: "pods",
};

impl Reconciler for ReplicaSetController {
    fn name(&self) -> &'static str {
        ReplicaSetController::name(self)
    }

    fn keys_for(&mut self, _cluster: &Cluster, change: &Change) -> Vec<ObjectKey> {
        REPLICA_SETS.keys_for(change)
    }

    fn all_keys(&mut self, cluster: &Cluster) -> Vec<ObjectKey> {
        REPLICA_SETS.all_keys(cluster)
    }

    fn reconcile(&mut self, cluster: &Cluster, key: &ObjectKey) -> Option<Duration> {
        let rs_type = builtin(cluster, "apps", "replicasets")?;
        let pod_type = builtin(cluster, "", "pods")?;
        // Shared with the store: read only, copied once when its status is written.
        let rs = cluster.get(&rs_type, &key.0, &key.1).ok()?;
        if is_terminating(&rs) {
            return None;
        }
        let selector =
            LabelSelector::from_json(rs.at("/spec/selector").unwrap_or(&Value::Null)).ok()?;
        let uid = uid_of(&rs).to_string();
        let mut pods: Vec<Arc<Value>> = cluster
            .dependents(&uid)
            .into_iter()
            .filter(|o| o.get("kind").and_then(Value::as_str) == Some("Pod"))
            .filter(|p| controller_of(p, "ReplicaSet").is_some_and(|(_, owner)| owner == uid))
            .filter(|p| !is_terminating(p) && !matches!(pod_phase(p), "Succeeded" | "Failed"))
            .collect();
        let desired = rs
            .at("/spec/replicas")
            .and_then(Value::as_i64)
            .unwrap_or(1)
            .max(0) as usize;
        let options = as_controller(self.name());
        if pods.len() < desired {
            let template = rs.at("/spec/template").cloned().unwrap_or_default();
            for _ in pods.len()..desired {
                let mut metadata = template
                    .get("metadata")
                    .cloned()
                    .unwrap_or_else(|| json!({}));
                metadata["generateName"] = json!(format!("{}-", key.1));
                metadata["namespace"] = json!(key.0);
                metadata["ownerReferences"] = json!([controller_reference(&rs)]);
                let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": template.get("spec").cloned().unwrap_or_default()});
                if let Ok(created) = cluster.create(&pod_type, &key.0, pod, &options) {
                    pods.push(created);
                }
            }
        } else if pods.len() > desired {
            // Not-ready pods go first, then the youngest, as the real controller prefers.
            pods.sort_by_key(|p| {
                (
                    is_pod_ready(p),
                    std::cmp::Reverse(
                        p.at("/metadata/creationTimestamp")
                            .and_then(Value::as_str)
                            .unwrap_or("")
                            .to_string(),
                    ),
                )
            });
            let surplus: Vec<Arc<Value>> = pods.drain(..pods.len() - desired).collect();
            for pod in surplus {
                let name = pod
                    .at("/metadata/name")
                    .and_then(Value::as_str)
                    .unwrap_or("");
                let _ = cluster.delete(&pod_type, &key.0, name, &DeleteOptions::default());
            }
        }
        let min_ready = rs
            .at("/spec/minReadySeconds")
            .and_then(Value::as_f64)
            .unwrap_or(0.0);
        let ready: Vec<&Value> = pods
            .iter()
            .map(|p| p.as_ref())
            .filter(|p| is_pod_ready(p))
            .collect();
        let available = ready
            .iter()
            .filter(|p| ready_for(p).is_some_and(|s| s >= min_ready))
            .count();
        let next_available = ready
            .iter()
            .filter_map(|p| ready_for(p))
            .filter(|s| *s < min_ready)
            .map(|s| Duration::from_secs_f64(min_ready - s + 0.05))
            .min();
        let labelled = pods
            .iter()
            .filter(|p| selector.matches(p.at("/metadata/labels").unwrap_or(&Value::Null)))
            .count();
        let mut status = json!({
            "replicas": pods.len(),
            "fullyLabeledReplicas": labelled,
            "readyReplicas": ready.len(),
            "availableReplicas": available,
            "observedGeneration": rs.at("/metadata/generation").cloned().unwrap_or(json!(1)),
        });
        if let Some(conditions) = rs.at("/status/conditions") {
            status["conditions"] = conditions.clone();
        }
        if rs.get("status") != Some(&status) {
            let mut updated = Arc::unwrap_or_clone(rs);
            updated["status"] = status;
            if cluster
                .update(
                    &rs_type,
                    &key.0,
                    &key.1,
                    updated,
                    Subresource::Status,
                    &options,
                )
                .is_err()
            {
                return Some(Duration::from_millis(100));
            }
        }
        next_available
    }
}
