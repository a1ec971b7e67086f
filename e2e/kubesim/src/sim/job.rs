//! The Job controller: one pod at a time (parallelism and completions of 1), a new pod after each failure up
//! to `backoffLimit` (default 6, no back-off delay), and the Complete or Failed condition at the end.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};

use super::{
    Ownership, Reconciler, as_controller, builtin, condition_true, controller_reference,
    is_terminating, pod_phase,
};
use crate::apiserver::{Cluster, Subresource};
use crate::json::At;
use crate::store::{Change, ObjectKey, uid_of};

pub struct JobController;

const NAME: &str = "job-controller";

fn now() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

const JOBS: Ownership = Ownership {
    group: "batch",
    plural: "jobs",
    kind: "Job",
    child_group: "",
    child_plural: "pods",
};

impl Reconciler for JobController {
    fn name(&self) -> &'static str {
        NAME
    }

    fn keys_for(&mut self, _cluster: &Cluster, change: &Change) -> Vec<ObjectKey> {
        JOBS.keys_for(change)
    }

    fn all_keys(&mut self, cluster: &Cluster) -> Vec<ObjectKey> {
        JOBS.all_keys(cluster)
    }

    fn reconcile(&mut self, cluster: &Cluster, key: &ObjectKey) -> Option<Duration> {
        let job_type = builtin(cluster, "batch", "jobs")?;
        let pod_type = builtin(cluster, "", "pods")?;
        let job = cluster
            .get(&job_type, &key.0, &key.1)
            .ok()
            .map(Arc::unwrap_or_clone)?;
        if is_terminating(&job)
            || condition_true(&job, "Complete")
            || condition_true(&job, "Failed")
        {
            return None;
        }
        let uid = uid_of(&job).to_string();
        let pods: Vec<Value> = cluster
            .dependents(&uid)
            .iter()
            .filter(|o| o.get("kind").and_then(Value::as_str) == Some("Pod"))
            .map(|o| (**o).clone())
            .collect();
        let count = |phase: &str| pods.iter().filter(|p| pod_phase(p) == phase).count();
        let (succeeded, failed) = (count("Succeeded"), count("Failed"));
        let active = pods.len() - succeeded - failed;
        let backoff_limit = job
            .at("/spec/backoffLimit")
            .and_then(Value::as_u64)
            .unwrap_or(6) as usize;
        let options = as_controller(NAME);
        let start = job
            .at("/status/startTime")
            .cloned()
            .unwrap_or_else(|| json!(now()));
        let mut status =
            json!({"startTime": start, "active": active, "succeeded": succeeded, "failed": failed});
        if succeeded > 0 {
            status["completionTime"] = json!(now());
            status["active"] = json!(0);
            status["conditions"] = json!([
                {"type": "SuccessCriteriaMet", "status": "True", "reason": "CompletionsReached", "lastTransitionTime": now()},
                {"type": "Complete", "status": "True", "reason": "CompletionsReached", "lastTransitionTime": now()},
            ]);
        } else if failed > backoff_limit {
            status["conditions"] = json!([
                {"type": "FailureTarget", "status": "True", "reason": "BackoffLimitExceeded", "message": "Job has reached the specified backoff limit", "lastTransitionTime": now()},
                {"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded", "message": "Job has reached the specified backoff limit", "lastTransitionTime": now()},
            ]);
        } else if active == 0 {
            let template = job.at("/spec/template").cloned().unwrap_or_default();
            let mut metadata = template
                .get("metadata")
                .cloned()
                .unwrap_or_else(|| json!({}));
            metadata["generateName"] = json!(format!("{}-", key.1));
            metadata["labels"]["job-name"] = json!(key.1);
            metadata["labels"]["batch.kubernetes.io/controller-uid"] = json!(uid);
            metadata["ownerReferences"] = json!([controller_reference(&job)]);
            // The API server only accepts Jobs whose template restarts OnFailure or Never.
            let spec = template.get("spec").cloned().unwrap_or_default();
            let pod =
                json!({"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": spec});
            if cluster.create(&pod_type, &key.0, pod, &options).is_ok() {
                status["active"] = json!(1);
            }
        }
        if job.get("status") != Some(&status) {
            let mut updated = job.clone();
            updated["status"] = status;
            let _ = cluster.update(
                &job_type,
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
