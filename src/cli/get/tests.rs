//! Golden tests: each fixture renders to the text in `testdata/`; `RAMP_BLESS=1` rewrites the files.

use super::*;
use serde_json::json;

const NOW: &str = "2026-05-10T12:00:00Z";

fn now() -> Timestamp {
    NOW.parse().expect("time")
}

fn at(ago_seconds: i64) -> String {
    now()
        .checked_sub(jiff::SignedDuration::from_secs(ago_seconds))
        .expect("time")
        .to_string()
}

fn rollout(strategy: serde_json::Value, status: serde_json::Value) -> Rollout {
    serde_json::from_value(json!({
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Rollout",
        "metadata": {"name": "demo", "namespace": "shop", "uid": "ro-uid", "generation": 3,
                     "creationTimestamp": at(7 * 86400)},
        "spec": {
            "replicas": 5,
            "selector": {"matchLabels": {"app": "demo"}},
            "template": {"metadata": {"labels": {"app": "demo"}},
                         "spec": {"containers": [{"name": "app", "image": "demo:blue"}]}},
            "strategy": strategy
        },
        "status": status
    }))
    .expect("rollout fixture")
}

fn rs(
    hash: &str,
    revision: i64,
    image: &str,
    replicas: i32,
    available: i32,
    ago: i64,
) -> ReplicaSet {
    serde_json::from_value(json!({
        "metadata": {"name": format!("demo-{hash}"), "namespace": "shop", "uid": format!("rs-{hash}"),
                     "generation": 1, "creationTimestamp": at(ago),
                     "labels": {"app": "demo", "rollouts-pod-template-hash": hash},
                     "annotations": {"rollout.argoproj.io/revision": revision.to_string()},
                     "ownerReferences": [{"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout",
                                          "name": "demo", "uid": "ro-uid", "controller": true}]},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "demo"}},
                 "template": {"metadata": {"labels": {"app": "demo", "rollouts-pod-template-hash": hash}},
                              "spec": {"containers": [{"name": "app", "image": image}]}}},
        "status": {"replicas": replicas, "availableReplicas": available, "readyReplicas": available,
                   "observedGeneration": 1}
    }))
    .expect("rs fixture")
}

fn pod(hash: &str, suffix: &str, ready: bool, waiting: Option<&str>, ago: i64) -> Pod {
    let state = match waiting {
        Some(reason) => json!({"waiting": {"reason": reason}}),
        None => json!({"running": {}}),
    };
    serde_json::from_value(json!({
        "metadata": {"name": format!("demo-{hash}-{suffix}"), "namespace": "shop", "creationTimestamp": at(ago),
                     "labels": {"app": "demo", "rollouts-pod-template-hash": hash},
                     "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet",
                                          "name": format!("demo-{hash}"), "uid": format!("rs-{hash}"), "controller": true}]},
        "spec": {"containers": [{"name": "app"}]},
        "status": {"phase": if waiting.is_some() { "Pending" } else { "Running" },
                   "containerStatuses": [{"name": "app", "ready": ready, "restartCount": 0, "image": "x", "imageID": "",
                                          "state": state}]}
    }))
    .expect("pod fixture")
}

fn analysis_run(name: &str, hash: &str, phase: &str, counts: [i32; 4], ago: i64) -> AnalysisRun {
    serde_json::from_value(json!({
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "AnalysisRun",
        "metadata": {"name": name, "namespace": "shop", "creationTimestamp": at(ago),
                     "labels": {"rollouts-pod-template-hash": hash},
                     "ownerReferences": [{"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout",
                                          "name": "demo", "uid": "ro-uid", "controller": true}]},
        "spec": {"metrics": []},
        "status": {"phase": phase, "metricResults": [{"name": "success-rate", "phase": phase,
            "successful": counts[0], "failed": counts[1], "inconclusive": counts[2], "error": counts[3]}]}
    }))
    .expect("analysis run fixture")
}

fn steps() -> serde_json::Value {
    json!({"canary": {"steps": [{"setWeight": 20}, {"pause": {}}, {"setWeight": 40}, {"pause": {"duration": "10s"}},
                                {"setWeight": 60}, {"pause": {"duration": "10s"}}, {"setWeight": 80}, {"pause": {"duration": "10s"}}]}})
}

fn check(name: &str, text: &str) {
    let path = format!(
        "{}/src/cli/get/testdata/{name}.txt",
        env!("CARGO_MANIFEST_DIR")
    );
    if std::env::var_os("RAMP_BLESS").is_some() {
        std::fs::write(&path, text).expect("write golden");
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_default();
    assert_eq!(
        text, expected,
        "{name} differs from {path}; RAMP_BLESS=1 rewrites it"
    );
}

fn paused_canary() -> Snapshot {
    Snapshot {
        rollout: rollout(
            steps(),
            json!({"observedGeneration": "3", "phase": "Paused", "message": "CanaryPauseStep",
                   "currentStepIndex": 1, "stableRS": "6f8b9d", "currentPodHash": "7c5d4e",
                   "controllerPause": true,
                   "pauseConditions": [{"reason": "CanaryPauseStep", "startTime": at(30)}],
                   "replicas": 5, "updatedReplicas": 1, "readyReplicas": 5, "availableReplicas": 5}),
        ),
        replica_sets: vec![
            rs("7c5d4e", 2, "demo:yellow", 1, 1, 40),
            rs("6f8b9d", 1, "demo:blue", 4, 4, 7 * 86400),
        ],
        pods: vec![
            pod("7c5d4e", "x2k9p", true, None, 38),
            pod("6f8b9d", "b7mwq", true, None, 7 * 86400),
            pod("6f8b9d", "a1c3d", true, None, 7 * 86400),
            pod("6f8b9d", "k8s9z", true, None, 6 * 86400),
            pod("6f8b9d", "q0w2e", true, None, 6 * 86400),
        ],
        analysis_runs: vec![analysis_run(
            "demo-6f8b9d-1",
            "6f8b9d",
            "Successful",
            [3, 0, 0, 0],
            7 * 86400,
        )],
    }
}

#[test]
fn a_canary_paused_at_its_first_pause() {
    check(
        "canary-paused",
        &render_rollout(&paused_canary(), now(), false),
    );
}

#[test]
fn an_aborted_canary_with_a_failed_analysis() {
    let snapshot = Snapshot {
        rollout: rollout(
            steps(),
            json!({"observedGeneration": "3", "phase": "Degraded",
                   "message": "RolloutAborted: Rollout aborted update to revision 3: Metric \"success-rate\" assessed Failed due to failed (3) > failureLimit (2)",
                   "abort": true, "abortedAt": at(20), "currentStepIndex": 0, "stableRS": "6f8b9d", "currentPodHash": "9a1b2c",
                   "replicas": 5, "updatedReplicas": 0, "readyReplicas": 5, "availableReplicas": 5}),
        ),
        replica_sets: vec![
            rs("9a1b2c", 3, "demo:red", 0, 0, 300),
            rs("7c5d4e", 2, "demo:yellow", 0, 0, 3600),
            rs("6f8b9d", 1, "demo:blue", 5, 5, 7 * 86400),
        ],
        pods: (0..5)
            .map(|i| pod("6f8b9d", &format!("p{i}"), true, None, 7 * 86400))
            .collect(),
        analysis_runs: vec![analysis_run(
            "demo-9a1b2c-3-1",
            "9a1b2c",
            "Failed",
            [1, 3, 0, 1],
            200,
        )],
    };
    check("canary-aborted", &render_rollout(&snapshot, now(), false));
}

#[test]
fn a_degraded_canary_whose_pods_cannot_start() {
    let snapshot = Snapshot {
        rollout: rollout(
            steps(),
            json!({"observedGeneration": "3", "phase": "Degraded",
                   "message": "ProgressDeadlineExceeded: ReplicaSet \"demo-5e4d3c\" has timed out progressing.",
                   "currentStepIndex": 0, "stableRS": "6f8b9d", "currentPodHash": "5e4d3c",
                   "replicas": 6, "updatedReplicas": 1, "readyReplicas": 5, "availableReplicas": 5}),
        ),
        replica_sets: vec![
            rs("5e4d3c", 2, "demo:does-not-exist", 1, 0, 900),
            rs("6f8b9d", 1, "demo:blue", 5, 5, 7 * 86400),
        ],
        pods: vec![pod("5e4d3c", "9wf5r", false, Some("ImagePullBackOff"), 900)],
        analysis_runs: vec![],
    };
    check("canary-degraded", &render_rollout(&snapshot, now(), false));
}

#[test]
fn a_blue_green_waiting_for_promotion() {
    let snapshot = Snapshot {
        rollout: rollout(
            json!({"blueGreen": {"activeService": "demo-active", "previewService": "demo-preview", "autoPromotionEnabled": false}}),
            json!({"observedGeneration": "3", "phase": "Paused", "message": "BlueGreenPause",
                   "stableRS": "6f8b9d", "currentPodHash": "7c5d4e", "controllerPause": true,
                   "pauseConditions": [{"reason": "BlueGreenPause", "startTime": at(30)}],
                   "blueGreen": {"activeSelector": "6f8b9d", "previewSelector": "7c5d4e"},
                   "replicas": 10, "updatedReplicas": 5, "readyReplicas": 5, "availableReplicas": 5}),
        ),
        replica_sets: vec![
            rs("7c5d4e", 2, "demo:green", 5, 5, 60),
            rs("6f8b9d", 1, "demo:blue", 5, 5, 86400),
        ],
        pods: vec![
            pod("7c5d4e", "g1", true, None, 58),
            pod("6f8b9d", "b1", true, None, 86400),
        ],
        analysis_runs: vec![],
    };
    check("bluegreen-paused", &render_rollout(&snapshot, now(), false));
}

#[test]
fn colours_do_not_move_the_columns() {
    let plain = render_rollout(&paused_canary(), now(), false);
    let coloured = render_rollout(&paused_canary(), now(), true);
    assert_ne!(plain, coloured);
    let stripped = coloured.replace("\x1b[0m", "");
    let stripped = ["\x1b[32m", "\x1b[31m", "\x1b[33m", "\x1b[94m", "\x1b[90m"]
        .iter()
        .fold(stripped, |text, code| text.replace(code, ""));
    assert_eq!(stripped, plain);
}

#[test]
fn list_rollouts_has_argos_columns() {
    let canary = paused_canary().rollout;
    let mut blue_green = rollout(
        json!({"blueGreen": {"activeService": "demo-active"}}),
        json!({"observedGeneration": "3", "phase": "Healthy", "replicas": 5, "updatedReplicas": 5,
               "readyReplicas": 5, "availableReplicas": 5}),
    );
    blue_green.metadata.name = Some("checkout".into());
    blue_green.metadata.namespace = Some("pay".into());
    check(
        "list",
        &render_list(&[canary.clone(), blue_green.clone()], false).unwrap_or_default(),
    );
    check(
        "list-all-namespaces",
        &render_list(&[canary, blue_green], true).unwrap_or_default(),
    );
    assert_eq!(render_list(&[], false), None);
}
