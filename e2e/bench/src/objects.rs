//! The objects the scenarios create, and the API handles for Ramp's kinds.

use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind};
use serde_json::{Value, json};

use crate::harness::NAMESPACE;

fn resource(kind: &str, plural: &str) -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("argoproj.io", "v1alpha1", kind),
        plural,
    )
}

pub fn rollouts(client: &kube::Client) -> Api<DynamicObject> {
    Api::namespaced_with(client.clone(), NAMESPACE, &resource("Rollout", "rollouts"))
}

pub fn analysis_runs(client: &kube::Client) -> Api<DynamicObject> {
    Api::namespaced_with(
        client.clone(),
        NAMESPACE,
        &resource("AnalysisRun", "analysisruns"),
    )
}

pub fn analysis_templates(client: &kube::Client) -> Api<DynamicObject> {
    Api::namespaced_with(
        client.clone(),
        NAMESPACE,
        &resource("AnalysisTemplate", "analysistemplates"),
    )
}

/// A literal with `apiVersion`, `kind` and `metadata` as the client's object type.
fn dynamic(object: Value) -> DynamicObject {
    serde_json::from_value(object).expect("a literal object with metadata is a DynamicObject")
}

pub fn image(version: u64) -> String {
    format!("bench/app:v{version}")
}

/// A basic canary of `replicas` pods (no traffic router) with the given steps.
pub fn rollout(name: &str, replicas: u32, version: u64, steps: Value) -> DynamicObject {
    let object = json!({
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Rollout",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {
            "replicas": replicas,
            "revisionHistoryLimit": 2,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "app", "image": image(version)}]}
            },
            "strategy": {"canary": {"steps": steps}}
        }
    });
    dynamic(object)
}

/// Four steps with two timed pauses: the shape of the scale and soak scenarios.
pub fn timed_steps(pause_seconds: u64) -> Value {
    json!([
        {"setWeight": 50},
        {"pause": {"duration": format!("{pause_seconds}s")}},
        {"setWeight": 75},
        {"pause": {"duration": format!("{pause_seconds}s")}}
    ])
}

/// [`timed_steps`] with an analysis step after the first pause.
pub fn timed_steps_with_analysis(pause_seconds: u64, template: &str) -> Value {
    json!([
        {"setWeight": 50},
        {"pause": {"duration": format!("{pause_seconds}s")}},
        {"analysis": {"templates": [{"templateName": template}]}},
        {"setWeight": 75},
        {"pause": {"duration": format!("{pause_seconds}s")}}
    ])
}

/// An AnalysisTemplate whose one measurement reads kubesim's `/version` at `kubesim_url` and
/// succeeds: a run that finishes on its own, at the cost of one HTTP request.
pub fn web_analysis_template(name: &str, kubesim_url: &str) -> DynamicObject {
    let object = json!({
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "AnalysisTemplate",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {"metrics": [{
            "name": "api-server-version",
            "successCondition": "result == '1'",
            "provider": {"web": {"url": format!("{kubesim_url}/version"), "jsonPath": "{$.major}"}}
        }]}
    });
    dynamic(object)
}

/// A merge patch that changes the pod template's image (a new revision).
pub fn image_patch(version: u64) -> Value {
    json!({"spec": {"template": {"spec": {"containers": [{"name": "app", "image": image(version)}]}}}})
}

/// An AnalysisTemplate whose metric nothing measures in the benchmark: the driver decides the runs' verdicts.
pub fn analysis_template(name: &str) -> DynamicObject {
    let object = json!({
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "AnalysisTemplate",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {"metrics": [metric()]}
    });
    dynamic(object)
}

fn metric() -> Value {
    json!({
        "name": "success-rate",
        "successCondition": "result[0] >= 0.95",
        "provider": {"prometheus": {"address": "http://127.0.0.1:9", "query": "vector(1)"}}
    })
}

/// A step AnalysisRun of a Rollout's release `pod_template_hash`, owned by the Rollout as Ramp's own are.
pub fn analysis_run(
    name: &str,
    rollout: &str,
    rollout_uid: &str,
    pod_template_hash: &str,
) -> DynamicObject {
    let object = json!({
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "AnalysisRun",
        "metadata": {
            "name": name,
            "namespace": NAMESPACE,
            "labels": {
                "rollouts-pod-template-hash": pod_template_hash,
                "rollout-type": "Step",
                "step-index": "1"
            },
            "ownerReferences": [{
                "apiVersion": "argoproj.io/v1alpha1",
                "kind": "Rollout",
                "name": rollout,
                "uid": rollout_uid,
                "controller": true,
                "blockOwnerDeletion": true
            }]
        },
        "spec": {"metrics": [metric()]}
    });
    dynamic(object)
}

/// A finished run's status, as a run that passed would have it.
pub fn successful_run_status() -> Value {
    let now = jiff::Timestamp::now().to_string();
    json!({"status": {
        "phase": "Successful",
        "message": "",
        "startedAt": now,
        "completedAt": now,
        "metricResults": [{
            "name": "success-rate",
            "phase": "Successful",
            "count": 1,
            "successful": 1,
            "measurements": [{"phase": "Successful", "value": "[1]", "startedAt": now, "finishedAt": now}]
        }]
    }})
}

/// A ReplicaSet for the kubesim scenario (no simulation: nothing acts on it).
pub fn replica_set(name: &str) -> Value {
    json!({
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": {"name": name, "namespace": NAMESPACE, "labels": {"app": name}},
        "spec": {
            "replicas": 5,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "app", "image": image(1)}]}
            }
        }
    })
}

/// A pod of a ReplicaSet for the kubesim scenario.
pub fn pod(name: &str, owner: &str) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": NAMESPACE, "labels": {"app": owner}},
        "spec": {"containers": [{"name": "app", "image": image(1)}]}
    })
}
