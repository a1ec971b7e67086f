//! Release scenarios beyond the basic walk: promote --full, a new image mid-rollout, rollback to the
//! stable revision, Argo's abort/retry/promote event sequence, and progress deadlines.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::Value;

use crate::support::*;

const SETTLE: Duration = Duration::from_secs(20);
/// `examples/rollout-canary-services.yaml`: 4 replicas, 25 / pause / 50 / pause 30s / 75 / pause 30s.
const RO: &str = "canary-services-demo";
const CANARY_SVC: &str = "canary-services-demo-canary";
const STABLE_SVC: &str = "canary-services-demo-stable";
const STEPS: i64 = 6;

/// The canary example with a Service on each side, deployed and Healthy; returns the stable hash.
fn services_env(name: &str) -> (Env, String) {
    let mut env = Env::start(name);
    env.start_controller(&["--leader-elect=false"]);
    let example = example_copy(&env, "rollout-canary-services.yaml", &[("30s", "1s")]);
    env.kubectl_ok(&["apply", "-f", example.to_str().unwrap_or_default()]);
    let ro = wait_for_phase(&env, RO, "Healthy", None, SETTLE);
    let stable = ro["status"]["stableRS"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(!stable.is_empty());
    (env, stable)
}

/// ReplicaSets by pod-template hash: (spec.replicas, status.availableReplicas).
fn by_hash(env: &Env, rollout: &str) -> BTreeMap<String, (i64, i64)> {
    env.replica_sets(rollout)
        .into_iter()
        .map(|(hash, spec, available)| (hash, (spec, available)))
        .collect()
}

fn wait_rs(env: &Env, rollout: &str, want: &[(&str, (i64, i64))]) {
    let want: BTreeMap<String, (i64, i64)> =
        want.iter().map(|(h, c)| (h.to_string(), *c)).collect();
    wait_for(&format!("{rollout} ReplicaSets {want:?}"), SETTLE, || {
        let now = by_hash(env, rollout);
        if now == want {
            Ok(())
        } else {
            Err(format!("{now:?}"))
        }
    });
}

fn selects(env: &Env, service: &str, hash: &str) -> bool {
    env.service_selector(service)
        .split(',')
        .any(|pair| pair == format!("rollouts-pod-template-hash={hash}"))
}

fn wait_selectors(env: &Env, canary: &str, stable: &str) {
    wait_for("Service selectors", SETTLE, || {
        if selects(env, CANARY_SVC, canary) && selects(env, STABLE_SVC, stable) {
            Ok(())
        } else {
            Err(format!(
                "canary {} stable {}",
                env.service_selector(CANARY_SVC),
                env.service_selector(STABLE_SVC)
            ))
        }
    });
}

/// A condition's (status, reason, message).
fn condition(ro: &Value, type_: &str) -> (String, String, String) {
    let c = ro["status"]["conditions"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["type"] == type_))
        .unwrap_or_else(|| panic!("no {type_} condition in {}", ro["status"]));
    let s = |k: &str| c[k].as_str().unwrap_or_default().to_string();
    (s("status"), s("reason"), s("message"))
}

fn assert_condition(ro: &Value, type_: &str, status: &str, reason: &str, message: &str) {
    assert_eq!(
        condition(ro, type_),
        (status.to_string(), reason.to_string(), message.to_string()),
        "{type_} condition"
    );
}

fn has_event(events: &[(String, String)], reason: &str, message: &str) -> bool {
    events.iter().any(|(r, m)| r == reason && m == message)
}

/// `kubectl ramp promote --full`'s status patch (reference section 7).
fn promote_full(env: &Env, rollout: &str) {
    env.kubectl_ok(&[
        "patch",
        "rollout",
        rollout,
        "--subresource",
        "status",
        "--type",
        "merge",
        "-p",
        r#"{"status":{"promoteFull":true}}"#,
    ]);
}

/// Pauses at step 1 with one canary pod of the new image; returns its hash.
fn paused_at_first_step(env: &Env, stable: &str, image: &str) -> String {
    set_image(env, RO, image);
    let ro = wait_for_phase(env, RO, "Paused", Some(1), SETTLE);
    let canary = ro["status"]["currentPodHash"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert_ne!(canary, stable);
    assert_eq!(ro["status"]["stableRS"], stable);
    assert_eq!(ro["status"]["message"], "CanaryPauseStep");
    wait_rs(env, RO, &[(stable, (3, 3)), (&canary, (1, 1))]);
    wait_selectors(env, &canary, stable);
    canary
}

#[test]
fn promote_full_skips_the_remaining_steps_and_finishes() {
    let (env, stable) = services_env("promote-full");
    let canary = paused_at_first_step(&env, &stable, "argoproj/rollouts-demo:yellow");
    promote_full(&env, RO);
    let done = wait_for_phase(&env, RO, "Healthy", Some(STEPS), SETTLE);
    assert_eq!(done["status"]["stableRS"], canary.as_str());
    assert!(
        done["status"]["pauseConditions"].is_null(),
        "{}",
        done["status"]
    );
    assert_ne!(done["status"]["promoteFull"], true, "promoteFull is reset");
    assert_eq!(done["status"]["message"].as_str().unwrap_or_default(), "");
    wait_rs(&env, RO, &[(&stable, (0, 0)), (&canary, (4, 4))]);
    wait_selectors(&env, &canary, &canary);
    let ro = env.rollout(RO);
    assert_condition(
        &ro,
        "Progressing",
        "True",
        "NewReplicaSetAvailable",
        &format!("ReplicaSet \"{RO}-{canary}\" has successfully progressed."),
    );
    assert_eq!(condition(&ro, "Available").0, "True");
    let events = env.events(RO);
    assert!(
        has_event(
            &events,
            "RolloutCompleted",
            &format!("Rollout completed update to revision 2 ({canary}): Full promotion requested")
        ),
        "{events:?}"
    );
    // Nothing after the first pause ran as a step: the pause and the 50/75 steps were skipped.
    let steps = events
        .iter()
        .filter(|(r, _)| r == "RolloutStepCompleted")
        .count();
    assert_eq!(steps, 1, "only the first setWeight completed: {events:?}");
}

#[test]
fn a_new_image_mid_rollout_starts_over_from_the_first_step() {
    let (env, stable) = services_env("new-image");
    let yellow = paused_at_first_step(&env, &stable, "argoproj/rollouts-demo:yellow");
    set_image(&env, RO, "argoproj/rollouts-demo:green");
    let ro = wait_for_phase(&env, RO, "Paused", Some(1), SETTLE);
    let green = ro["status"]["currentPodHash"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(green != yellow && green != stable, "a third ReplicaSet");
    assert_eq!(ro["status"]["stableRS"], stable.as_str(), "stable stays");
    assert_eq!(
        ro["status"]["pauseConditions"][0]["reason"],
        "CanaryPauseStep"
    );
    assert_eq!(ro["status"]["message"], "CanaryPauseStep");
    wait_rs(
        &env,
        RO,
        &[(&stable, (3, 3)), (&yellow, (0, 0)), (&green, (1, 1))],
    );
    wait_selectors(&env, &green, &stable);
    let ro = env.rollout(RO);
    assert_condition(
        &ro,
        "Progressing",
        "Unknown",
        "RolloutPaused",
        "Rollout is paused",
    );
    assert_condition(&ro, "Paused", "True", "RolloutPaused", "Rollout is paused");
    let events = env.events(RO);
    let created = events
        .iter()
        .filter(|(r, _)| r == "NewReplicaSetCreated")
        .count();
    assert_eq!(created, 3, "{events:?}");
    assert!(
        has_event(
            &events,
            "ScalingReplicaSet",
            &format!("Scaled down ReplicaSet {RO}-{yellow} (revision 2) from 1 to 0")
        ),
        "{events:?}"
    );
    // Promoting now releases green, not yellow.
    promote_full(&env, RO);
    let done = wait_for_phase(&env, RO, "Healthy", Some(STEPS), SETTLE);
    assert_eq!(done["status"]["stableRS"], green.as_str());
    wait_rs(
        &env,
        RO,
        &[(&stable, (0, 0)), (&yellow, (0, 0)), (&green, (4, 4))],
    );
}

#[test]
fn rolling_back_to_the_stable_image_skips_the_steps() {
    let (env, stable) = services_env("rollback");
    let canary = paused_at_first_step(&env, &stable, "argoproj/rollouts-demo:yellow");
    // The example's own image: the stable ReplicaSet's template again.
    set_image(&env, RO, "argoproj/rollouts-demo:blue");
    let ro = wait_for_phase(&env, RO, "Healthy", Some(STEPS), SETTLE);
    assert_eq!(ro["status"]["stableRS"], stable.as_str());
    assert_eq!(ro["status"]["currentPodHash"], stable.as_str());
    assert!(
        ro["status"]["pauseConditions"].is_null(),
        "{}",
        ro["status"]
    );
    wait_rs(&env, RO, &[(&stable, (4, 4)), (&canary, (0, 0))]);
    wait_selectors(&env, &stable, &stable);
    let ro = env.rollout(RO);
    assert_condition(
        &ro,
        "Progressing",
        "True",
        "NewReplicaSetAvailable",
        &format!("ReplicaSet \"{RO}-{stable}\" has successfully progressed."),
    );
    let events = env.events(RO);
    assert!(
        has_event(&events, "SkipSteps", "Rollback to stable ReplicaSets"),
        "{events:?}"
    );
    assert_eq!(
        events
            .iter()
            .filter(|(r, _)| r == "RolloutStepCompleted")
            .count(),
        1,
        "no step ran after the rollback: {events:?}"
    );
}

/// Something else holds the name of the new revision's ReplicaSet: Argo counts a hash collision and
/// creates the ReplicaSet under another name (reference 3.3). It must not claim to have created the
/// one it could not, nor touch the other object.
#[test]
fn a_replica_set_name_taken_by_another_object_is_a_collision_and_the_release_goes_on() {
    let (env, stable) = services_env("collision");
    // Learn the yellow revision's name, then go back to blue and free that name.
    let yellow = paused_at_first_step(&env, &stable, "argoproj/rollouts-demo:yellow");
    set_image(&env, RO, "argoproj/rollouts-demo:blue");
    wait_for_phase(&env, RO, "Healthy", Some(STEPS), SETTLE);
    let taken = format!("{RO}-{yellow}");
    env.kubectl_ok(&["delete", "replicaset", &taken, "--wait=true"]);
    let squatter = env.dir.join("squatter.yaml");
    std::fs::write(
        &squatter,
        format!(
            "apiVersion: apps/v1\nkind: ReplicaSet\nmetadata:\n  name: {taken}\nspec:\n  replicas: 0\n  \
             selector:\n    matchLabels: {{app: squatter}}\n  template:\n    metadata:\n      labels: {{app: squatter}}\n    \
             spec:\n      containers: [{{name: app, image: busybox}}]\n"
        ),
    )
    .expect("write the squatter");
    env.kubectl_ok(&["apply", "-f", squatter.to_str().unwrap_or_default()]);

    set_image(&env, RO, "argoproj/rollouts-demo:yellow");
    let ro = wait_for_phase(&env, RO, "Paused", Some(1), SETTLE);
    assert_eq!(ro["status"]["collisionCount"], 1, "{}", ro["status"]);
    let canary = ro["status"]["currentPodHash"].as_str().unwrap_or_default();
    assert!(!canary.is_empty() && canary != yellow && canary != stable);
    wait_rs(&env, RO, &[(&stable, (3, 3)), (canary, (1, 1))]);

    let other = env.get_json(&["replicaset", &taken]);
    assert!(other["metadata"]["ownerReferences"].is_null(), "{other}");
    assert_eq!(other["spec"]["replicas"], 0);
    let created_under_the_taken_name = env
        .events(RO)
        .iter()
        .filter(|(reason, message)| {
            reason == "NewReplicaSetCreated" && message.contains(&format!("{taken} "))
        })
        .count();
    assert_eq!(
        created_under_the_taken_name, 1,
        "only the first release created it"
    );
}

#[test]
fn abort_retry_and_promote_record_argos_event_sequence() {
    const NAME: &str = "abort-retry";
    let mut env = Env::start("event-sequence");
    env.start_controller(&["--leader-elect=false"]);
    // One replica, one setWeight and an indefinite pause, as Argo's own abort/retry/promote e2e test.
    let example = example_copy(
        &env,
        "rollout-canary.yaml",
        &[
            ("rollouts-demo", NAME),
            ("replicas: 5", "replicas: 1"),
            (
                "      - setWeight: 20\n      - pause: {}\n      - setWeight: 40\n      - pause: {duration: 10s}\n      - setWeight: 60\n      - pause: {duration: 10s}\n      - setWeight: 80\n      - pause: {duration: 10s}\n",
                "      - setWeight: 50\n      - pause: {}\n",
            ),
        ],
    );
    env.kubectl_ok(&["apply", "-f", example.to_str().unwrap_or_default()]);
    wait_for_phase(&env, NAME, "Healthy", None, SETTLE);
    let stable = env.replica_sets(NAME)[0].0.clone();
    set_image(&env, NAME, "argoproj/rollouts-demo:yellow");
    let paused = wait_for_phase(&env, NAME, "Paused", Some(1), SETTLE);
    let canary = paused["status"]["currentPodHash"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    wait_rs(&env, NAME, &[(&stable, (1, 1)), (&canary, (1, 1))]);

    set_abort(&env, NAME, true);
    let aborted = wait_for_phase(&env, NAME, "Degraded", None, SETTLE);
    let message = "Rollout aborted update to revision 2";
    assert_eq!(
        aborted["status"]["message"],
        format!("RolloutAborted: {message}")
    );
    assert_eq!(aborted["status"]["currentStepIndex"], 0);
    assert!(aborted["status"]["abortedAt"].is_string());
    wait_rs(&env, NAME, &[(&stable, (1, 1)), (&canary, (0, 0))]);
    assert_condition(
        &env.rollout(NAME),
        "Progressing",
        "False",
        "RolloutAborted",
        message,
    );

    set_abort(&env, NAME, false);
    let retried = wait_for_phase(&env, NAME, "Paused", Some(1), SETTLE);
    assert!(
        retried["status"]["abortedAt"].is_null(),
        "{}",
        retried["status"]
    );
    wait_rs(&env, NAME, &[(&stable, (1, 1)), (&canary, (1, 1))]);

    promote(&env, NAME);
    let done = wait_for_phase(&env, NAME, "Healthy", Some(2), SETTLE);
    assert_eq!(done["status"]["stableRS"], canary.as_str());
    wait_rs(&env, NAME, &[(&stable, (0, 0)), (&canary, (1, 1))]);
    assert_condition(
        &env.rollout(NAME),
        "Progressing",
        "True",
        "NewReplicaSetAvailable",
        &format!("ReplicaSet \"{NAME}-{canary}\" has successfully progressed."),
    );

    // Reference 4.20, from Argo's TestRolloutAbortRetryPromote.
    let expected = [
        "RolloutAddedToInformer",
        "RolloutUpdated",
        "NewReplicaSetCreated",
        "RolloutNotCompleted",
        "ScalingReplicaSet",
        "RolloutCompleted",
        "RolloutUpdated",
        "NewReplicaSetCreated",
        "RolloutNotCompleted",
        "ScalingReplicaSet",
        "RolloutStepCompleted",
        "RolloutPaused",
        "ScalingReplicaSet",
        "RolloutAborted",
        "ScalingReplicaSet",
        "RolloutStepCompleted",
        "RolloutPaused",
        "RolloutStepCompleted",
        "RolloutResumed",
        "ScalingReplicaSet",
        "RolloutCompleted",
    ];
    let events = env.events(NAME);
    let reasons: Vec<&str> = events.iter().map(|(r, _)| r.as_str()).collect();
    assert_eq!(reasons, expected, "{events:#?}");
    let scaling: Vec<&str> = events
        .iter()
        .filter(|(r, _)| r == "ScalingReplicaSet")
        .map(|(_, m)| m.as_str())
        .collect();
    assert_eq!(
        scaling,
        [
            format!("Scaled up ReplicaSet {NAME}-{stable} (revision 1) from 0 to 1"),
            format!("Scaled up ReplicaSet {NAME}-{canary} (revision 2) from 0 to 1"),
            format!("Scaled down ReplicaSet {NAME}-{canary} (revision 2) from 1 to 0"),
            format!("Scaled up ReplicaSet {NAME}-{canary} (revision 2) from 0 to 1"),
            format!("Scaled down ReplicaSet {NAME}-{stable} (revision 1) from 1 to 0"),
        ]
    );
}

/// The basic canary example with a 2 s progress deadline, updated to pods that never become ready.
fn never_ready(name: &str, abort: bool) -> (Env, String, String) {
    const NAME: &str = "rollouts-demo";
    let mut env = Env::start(name);
    env.start_controller(&["--leader-elect=false"]);
    let deadline = if abort {
        "  progressDeadlineSeconds: 2\n  progressDeadlineAbort: true\n"
    } else {
        "  progressDeadlineSeconds: 2\n"
    };
    let example = example_copy(
        &env,
        "rollout-canary.yaml",
        &[(
            "  revisionHistoryLimit: 2\n",
            &format!("  revisionHistoryLimit: 2\n{deadline}"),
        )],
    );
    env.kubectl_ok(&["apply", "-f", example.to_str().unwrap_or_default()]);
    wait_for_phase(&env, NAME, "Healthy", None, SETTLE);
    let stable = env.replica_sets(NAME)[0].0.clone();
    env.kubectl_ok(&[
        "patch",
        "rollout",
        NAME,
        "--type",
        "json",
        "-p",
        r#"[{"op":"replace","path":"/spec/template/spec/containers/0/image","value":"argoproj/rollouts-demo:does-not-exist"},
            {"op":"add","path":"/spec/template/metadata/annotations","value":{"kubesim.ramp.dev/never-ready":"true"}}]"#,
    ]);
    let canary = wait_for("the never-ready canary", SETTLE, || {
        let ro = env.rollout(NAME);
        match ro["status"]["currentPodHash"].as_str() {
            Some(h) if h != stable => Ok(h.to_string()),
            other => Err(format!("{other:?}")),
        }
    });
    (env, stable, canary)
}

#[test]
fn never_ready_canary_pods_exceed_the_progress_deadline() {
    const NAME: &str = "rollouts-demo";
    let (env, stable, canary) = never_ready("deadline", false);
    let ro = wait_for_phase(&env, NAME, "Degraded", Some(0), SETTLE);
    let timed_out = format!("ReplicaSet \"{NAME}-{canary}\" has timed out progressing.");
    assert_eq!(
        ro["status"]["message"],
        format!("ProgressDeadlineExceeded: {timed_out}")
    );
    assert_condition(
        &ro,
        "Progressing",
        "False",
        "ProgressDeadlineExceeded",
        &timed_out,
    );
    assert_ne!(
        ro["status"]["abort"], true,
        "no abort without progressDeadlineAbort"
    );
    // The canary stays up, unready, beside the stable version.
    wait_rs(&env, NAME, &[(&stable, (4, 4)), (&canary, (1, 0))]);
    let reasons = env.event_reasons(NAME);
    assert!(
        !reasons.iter().any(|r| r == "RolloutAborted"),
        "{reasons:?}"
    );
}

#[test]
fn never_ready_canary_pods_abort_with_progress_deadline_abort() {
    const NAME: &str = "rollouts-demo";
    let (env, stable, canary) = never_ready("deadline-abort", true);
    let timed_out = format!("ReplicaSet \"{NAME}-{canary}\" has timed out progressing.");
    let ro = wait_for("aborted on the deadline", SETTLE, || {
        let ro = env.rollout(NAME);
        if ro["status"]["abort"] == true && ro["status"]["phase"] == "Degraded" {
            Ok(ro)
        } else {
            Err(ro["status"].to_string())
        }
    });
    let aborted = format!("Rollout aborted update to revision 2: {timed_out}");
    assert_eq!(
        ro["status"]["message"],
        format!("RolloutAborted: {aborted}")
    );
    assert_condition(&ro, "Progressing", "False", "RolloutAborted", &aborted);
    wait_rs(&env, NAME, &[(&stable, (5, 5)), (&canary, (0, 0))]);
    let events = env.events(NAME);
    assert!(has_event(&events, "RolloutAborted", &aborted), "{events:?}");
}
