//! End-to-end scenarios: kubesim, the `ramp-controller` binary as its own process, and the real kubectl.

mod analysis;
mod analysis_inconclusive;
mod analysis_outcomes;
mod deleted;
mod demo;
mod install;
mod plugin;
mod releases;
mod support;

use std::time::Duration;

use support::*;

const ROLLOUT: &str = "rollouts-demo";
const SETTLE: Duration = Duration::from_secs(20);

/// The basic canary example, with 2 s timed pauses so the scenario runs in seconds.
fn canary_env(name: &str) -> Env {
    let mut env = Env::start(name);
    env.start_controller(&["--leader-elect=false"]);
    let example = example_copy(&env, "rollout-canary.yaml", &[("10s", "2s")]);
    env.kubectl_ok(&["apply", "-f", example.to_str().unwrap_or_default()]);
    let ro = wait_for_phase(&env, ROLLOUT, "Healthy", None, SETTLE);
    assert_eq!(ro["status"]["availableReplicas"], 5);
    env
}

#[test]
fn basic_canary_pauses_promotes_and_finishes() {
    let env = canary_env("canary");
    let first = env.replica_sets(ROLLOUT);
    assert_eq!(
        first.len(),
        1,
        "initial deploy makes one ReplicaSet: {first:?}"
    );
    assert_eq!((first[0].1, first[0].2), (5, 5));
    let stable_hash = first[0].0.clone();

    set_image(&env, ROLLOUT, "argoproj/rollouts-demo:yellow");
    let paused = wait_for_phase(&env, ROLLOUT, "Paused", Some(1), SETTLE);
    assert_eq!(paused["status"]["message"], "CanaryPauseStep");
    assert_eq!(
        paused["status"]["pauseConditions"][0]["reason"],
        "CanaryPauseStep"
    );
    let during = wait_for("1 canary and 4 stable", SETTLE, || {
        let rs = env.replica_sets(ROLLOUT);
        let counts: Vec<(i64, i64)> = rs.iter().map(|r| (r.1, r.2)).collect();
        if counts == [(4, 4), (1, 1)] {
            Ok(rs)
        } else {
            Err(format!("{rs:?}"))
        }
    });
    let canary_hash = during[1].0.clone();
    assert_eq!(paused["status"]["stableRS"], stable_hash.as_str());
    assert_eq!(paused["status"]["currentPodHash"], canary_hash.as_str());

    promote(&env, ROLLOUT);
    // Three timed pauses of 2 s each, then the canary becomes stable.
    let done = wait_for_phase(&env, ROLLOUT, "Healthy", Some(8), Duration::from_secs(40));
    assert_eq!(done["status"]["stableRS"], canary_hash.as_str());
    let rs = wait_for("old ReplicaSet scaled to 0", SETTLE, || {
        let rs = env.replica_sets(ROLLOUT);
        let counts: Vec<(i64, i64)> = rs.iter().map(|r| (r.1, r.2)).collect();
        if counts == [(0, 0), (5, 5)] {
            Ok(rs)
        } else {
            Err(format!("{rs:?}"))
        }
    });
    assert_eq!(rs[1].0, canary_hash);
    let reasons = env.event_reasons(ROLLOUT);
    for expected in [
        "RolloutUpdated",
        "RolloutStepCompleted",
        "RolloutPaused",
        "RolloutResumed",
        "RolloutCompleted",
    ] {
        assert!(
            reasons.iter().any(|r| r == expected),
            "event {expected} missing from {reasons:?}"
        );
    }
}

#[test]
fn abort_returns_to_stable_and_retry_goes_again() {
    let env = canary_env("abort");
    set_image(&env, ROLLOUT, "argoproj/rollouts-demo:red");
    wait_for_phase(&env, ROLLOUT, "Paused", Some(1), SETTLE);
    set_abort(&env, ROLLOUT, true);
    let aborted = wait_for_phase(&env, ROLLOUT, "Degraded", None, SETTLE);
    assert!(
        aborted["status"]["message"]
            .as_str()
            .unwrap_or("")
            .starts_with("RolloutAborted"),
        "{}",
        aborted["status"]["message"]
    );
    wait_for("canary scaled to 0 and stable back to 5", SETTLE, || {
        let counts: Vec<(i64, i64)> = env
            .replica_sets(ROLLOUT)
            .iter()
            .map(|r| (r.1, r.2))
            .collect();
        if counts == [(5, 5), (0, 0)] {
            Ok(())
        } else {
            Err(format!("{counts:?}"))
        }
    });
    set_abort(&env, ROLLOUT, false);
    wait_for_phase(&env, ROLLOUT, "Paused", Some(1), SETTLE);
    let reasons = env.event_reasons(ROLLOUT);
    assert!(reasons.iter().any(|r| r == "RolloutAborted"), "{reasons:?}");
}

#[test]
fn an_invalid_rollout_is_degraded_creates_nothing_and_recovers_when_fixed() {
    let mut env = Env::start("invalid");
    env.start_controller(&["--leader-elect=false"]);
    let example = example_copy(
        &env,
        "rollout-canary.yaml",
        &[("setWeight: 20", "setWeight: 120")],
    );
    env.kubectl_ok(&["apply", "-f", example.to_str().unwrap_or_default()]);
    let ro = wait_for_phase(&env, ROLLOUT, "Degraded", None, SETTLE);
    let message = ro["status"]["message"].as_str().unwrap_or("");
    assert!(message.starts_with("InvalidSpec"), "{message}");
    let invalid = ro["status"]["conditions"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["type"] == "InvalidSpec"))
        .cloned();
    assert_eq!(
        invalid.map(|c| c["status"].clone()),
        Some(serde_json::json!("True"))
    );
    assert!(
        env.replica_sets(ROLLOUT).is_empty(),
        "an invalid rollout creates no ReplicaSet"
    );
    let fixed = example_copy(&env, "rollout-canary.yaml", &[]);
    env.kubectl_ok(&["apply", "-f", fixed.to_str().unwrap_or_default()]);
    wait_for_phase(&env, ROLLOUT, "Healthy", None, SETTLE);
}

#[test]
fn an_idle_controller_writes_nothing() {
    let env = canary_env("idle");
    std::thread::sleep(Duration::from_secs(1));
    let before = env.writes_by("ramp-controller");
    assert!(before > 0, "the controller wrote while deploying");
    std::thread::sleep(Duration::from_secs(5));
    assert_eq!(
        env.writes_by("ramp-controller"),
        before,
        "writes after convergence"
    );
}

#[test]
fn a_killed_controller_resumes_without_duplicates_or_skipped_steps() {
    let mut env = canary_env("restart");
    set_image(&env, ROLLOUT, "argoproj/rollouts-demo:green");
    wait_for_phase(&env, ROLLOUT, "Paused", Some(1), SETTLE);
    env.kill_controller(0);
    promote(&env, ROLLOUT);
    std::thread::sleep(Duration::from_millis(500));
    env.start_controller(&["--leader-elect=false"]);
    wait_for_phase(&env, ROLLOUT, "Healthy", Some(8), Duration::from_secs(40));
    let rs = env.replica_sets(ROLLOUT);
    assert_eq!(rs.len(), 2, "no duplicate ReplicaSet: {rs:?}");
    let reasons = env.event_reasons(ROLLOUT);
    let steps = reasons
        .iter()
        .filter(|r| *r == "RolloutStepCompleted")
        .count();
    assert!(
        steps >= 8,
        "every step completed once the controller came back: {reasons:?}"
    );
}

/// A Rollout of one replica, a basic canary paused indefinitely after its first step.
fn small_canary(name: &str) -> String {
    format!(
        "apiVersion: argoproj.io/v1alpha1
kind: Rollout
metadata:
  name: {name}
spec:
  replicas: 1
  selector:
    matchLabels:
      app: {name}
  template:
    metadata:
      labels:
        app: {name}
    spec:
      containers:
      - name: app
        image: argoproj/rollouts-demo:blue
  strategy:
    canary:
      steps:
      - setWeight: 50
      - pause: {{}}
"
    )
}

#[test]
fn a_stopped_controller_posts_the_events_it_held_back_before_it_exits() {
    const ROLLOUTS: usize = 100;
    let mut env = Env::start("sigterm");
    let controller = env.start_controller(&["--leader-elect=false"]);
    let manifest = env.dir.join("burst.yaml");
    let documents: Vec<String> = (0..ROLLOUTS)
        .map(|i| small_canary(&format!("burst-{i}")))
        .collect();
    std::fs::write(&manifest, documents.join("---\n")).expect("manifest written");
    env.kubectl_ok(&["apply", "-f", manifest.to_str().unwrap_or_default()]);
    // Stop it in the middle of the burst of first reconciles, while their Events wait.
    wait_for("the first ReplicaSet", SETTLE, || {
        let created = env.get_json(&["rs"])["items"]
            .as_array()
            .map_or(0, Vec::len);
        if created > 0 {
            Ok(())
        } else {
            Err("none".into())
        }
    });
    let status = env.terminate_controller(controller, Duration::from_secs(15));
    assert!(
        status.is_some_and(|s| s.success()),
        "the controller exits cleanly on SIGTERM: {status:?}\n{}",
        env.controller_log(controller)
    );
    let log = env.controller_log(controller);
    assert!(
        log.contains("posting the Events held back before shutting down"),
        "SIGTERM came while Events were held back: {log}"
    );

    // Every ReplicaSet the controller created is reported by exactly one Event on its Rollout.
    let owners: Vec<String> = env.get_json(&["rs"])["items"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .map(|rs| {
                    rs["metadata"]["ownerReferences"][0]["name"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string()
                })
                .collect()
        })
        .unwrap_or_default();
    assert!(!owners.is_empty());
    let events = env.get_json(&["events"]);
    let created = |rollout: &str| {
        events["items"].as_array().map_or(0, |items| {
            items
                .iter()
                .filter(|e| {
                    e["involvedObject"]["name"] == rollout && e["reason"] == "NewReplicaSetCreated"
                })
                .count()
        })
    };
    let unreported: Vec<(&String, usize)> = owners
        .iter()
        .map(|rollout| (rollout, created(rollout)))
        .filter(|(_, count)| *count != 1)
        .collect();
    assert!(
        unreported.is_empty(),
        "{} of {} ReplicaSets not reported exactly once: {unreported:?}",
        unreported.len(),
        owners.len()
    );
    assert!(!log.contains("they are lost"), "{log}");
}

#[test]
fn blue_green_previews_then_switches_on_promote_and_scales_down_after_the_delay() {
    const BG: &str = "bluegreen-demo";
    let mut env = Env::start("bluegreen");
    env.start_controller(&["--leader-elect=false"]);
    let example = example_copy(
        &env,
        "rollout-bluegreen.yaml",
        &[("scaleDownDelaySeconds: 30", "scaleDownDelaySeconds: 3")],
    );
    env.kubectl_ok(&["apply", "-f", example.to_str().unwrap_or_default()]);
    wait_for_phase(&env, BG, "Healthy", None, SETTLE);
    let blue = env.replica_sets(BG)[0].0.clone();
    assert!(
        env.service_selector("bluegreen-demo-active")
            .contains(&format!("rollouts-pod-template-hash={blue}"))
    );

    set_image(&env, BG, "argoproj/rollouts-demo:green");
    let paused = wait_for_phase(&env, BG, "Paused", None, SETTLE);
    assert_eq!(
        paused["status"]["pauseConditions"][0]["reason"],
        "BlueGreenPause"
    );
    let green = wait_for("green ReplicaSet available", SETTLE, || {
        let rs = env.replica_sets(BG);
        match rs.as_slice() {
            [(_, 3, 3), (hash, 3, 3)] => Ok(hash.clone()),
            _ => Err(format!("{rs:?}")),
        }
    });
    assert!(
        env.service_selector("bluegreen-demo-preview")
            .contains(&format!("rollouts-pod-template-hash={green}")),
        "preview on green"
    );
    assert!(
        env.service_selector("bluegreen-demo-active")
            .contains(&format!("rollouts-pod-template-hash={blue}")),
        "active unchanged until promote"
    );

    promote(&env, BG);
    wait_for_phase(&env, BG, "Healthy", None, SETTLE);
    assert!(
        env.service_selector("bluegreen-demo-active")
            .contains(&format!("rollouts-pod-template-hash={green}")),
        "active switched on promote"
    );
    wait_for(
        "blue scaled down after scaleDownDelaySeconds",
        SETTLE,
        || {
            let counts: Vec<(i64, i64)> = env.replica_sets(BG).iter().map(|r| (r.1, r.2)).collect();
            if counts == [(0, 0), (3, 3)] {
                Ok(())
            } else {
                Err(format!("{counts:?}"))
            }
        },
    );
}

#[test]
fn two_controllers_elect_one_writer_and_hand_over_when_it_dies() {
    let mut env = Env::start("leader");
    let lease = [
        "--lease-duration",
        "3",
        "--lease-renew-deadline",
        "2",
        "--lease-retry-period",
        "1",
        "--lease-namespace",
        "default",
    ];
    let first = env.start_controller(&[&["--identity", "first"][..], &lease[..]].concat());
    let holder = wait_for("a lease holder", SETTLE, || {
        let lease = env.get_json(&["lease", "ramp-controller-lock"]);
        lease["spec"]["holderIdentity"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| lease.to_string())
    });
    assert_eq!(holder, "first");
    let second = env.start_controller(&[&["--identity", "second"][..], &lease[..]].concat());
    let example = example_copy(&env, "rollout-canary.yaml", &[("10s", "2s")]);
    env.kubectl_ok(&["apply", "-f", example.to_str().unwrap_or_default()]);
    wait_for_phase(&env, ROLLOUT, "Healthy", None, SETTLE);
    assert!(
        env.controller_log(first).contains("performing"),
        "the leader reconciled"
    );
    assert!(
        !env.controller_log(second).contains("performing"),
        "the standby wrote nothing:\n{}",
        env.controller_log(second)
    );

    env.kill_controller(first);
    wait_for("the standby takes the lease", SETTLE, || {
        let lease = env.get_json(&["lease", "ramp-controller-lock"]);
        if lease["spec"]["holderIdentity"] == "second" {
            Ok(())
        } else {
            Err(lease["spec"].to_string())
        }
    });
    set_image(&env, ROLLOUT, "argoproj/rollouts-demo:orange");
    wait_for_phase(&env, ROLLOUT, "Paused", Some(1), SETTLE);
    assert!(
        env.controller_log(second).contains("performing"),
        "the new leader reconciles"
    );
}

#[test]
fn a_controller_started_while_the_api_server_fails_waits_for_it() {
    let mut env = Env::start("startup-faults");
    env.sim.set_faults(kubesim::Faults {
        errors: vec![kubesim::ErrorRule {
            verb: Some("list".into()),
            resource: Some("rollouts".into()),
            // kube's client retries a 503 or 429 itself; a 500 reaches Ramp's start-up check at once.
            code: 500,
            rate: 1.0,
            ..Default::default()
        }],
        ..Default::default()
    });
    let controller = env.start_controller(&["--leader-elect=false"]);
    wait_for("the start-up check retried", SETTLE, || {
        let log = env.controller_log(controller);
        if log.matches("did not answer the start-up check").count() >= 2 {
            Ok(())
        } else {
            Err(log)
        }
    });
    assert!(
        env.controller_running(controller),
        "the controller exited on a 503:\n{}",
        env.controller_log(controller)
    );
    env.sim.set_faults(kubesim::Faults::default());
    let example = example_copy(&env, "rollout-canary.yaml", &[]);
    env.kubectl_ok(&["apply", "-f", example.to_str().unwrap_or_default()]);
    wait_for_phase(&env, ROLLOUT, "Healthy", None, SETTLE);
}

#[test]
fn a_rollout_converges_through_api_errors_conflicts_and_dropped_watches() {
    let mut env = Env::start("faults");
    env.sim.set_faults(kubesim::Faults {
        errors: vec![kubesim::ErrorRule {
            code: 500,
            rate: 0.10,
            ..Default::default()
        }],
        conflict_rate: 0.02,
        watch_max_seconds: Some(5.0),
        ..Default::default()
    });
    env.start_controller(&["--leader-elect=false"]);
    let example = example_copy(&env, "rollout-canary.yaml", &[("10s", "1s")]);
    // kubectl retries nothing itself: apply until the injected errors let it through.
    wait_for("kubectl apply through injected errors", SETTLE, || {
        let out = env.kubectl(&["apply", "-f", example.to_str().unwrap_or_default()]);
        if out.status.success() {
            Ok(())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        }
    });
    let healthy = |env: &Env, step: Option<i64>| {
        wait_for(
            "Healthy through faults",
            Duration::from_secs(60),
            || match env.kubectl(&[
                "get",
                "rollout",
                ROLLOUT,
                "-o",
                "jsonpath={.status.phase}/{.status.currentStepIndex}",
            ]) {
                out if out.status.success() => {
                    let text = String::from_utf8_lossy(&out.stdout).into_owned();
                    let want = format!(
                        "Healthy/{}",
                        step.map(|s| s.to_string()).unwrap_or_default()
                    );
                    if text == want || (step.is_none() && text.starts_with("Healthy/")) {
                        Ok(())
                    } else {
                        Err(text)
                    }
                }
                out => Err(String::from_utf8_lossy(&out.stderr).into_owned()),
            },
        )
    };
    healthy(&env, None);
    wait_for("image update through injected errors", SETTLE, || {
        let out = env.kubectl(&["patch", "rollout", ROLLOUT, "--type", "json", "-p", r#"[{"op":"replace","path":"/spec/template/spec/containers/0/image","value":"argoproj/rollouts-demo:purple"}]"#]);
        if out.status.success() {
            Ok(())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        }
    });
    wait_for("paused at step 1", Duration::from_secs(60), || {
        let out = env.kubectl(&[
            "get",
            "rollout",
            ROLLOUT,
            "-o",
            "jsonpath={.status.phase}/{.status.currentStepIndex}",
        ]);
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        if text == "Paused/1" {
            Ok(())
        } else {
            Err(text)
        }
    });
    wait_for("promote through injected errors", SETTLE, || {
        let out = env.kubectl(&[
            "patch",
            "rollout",
            ROLLOUT,
            "--subresource",
            "status",
            "--type",
            "merge",
            "-p",
            r#"{"status":{"pauseConditions":null}}"#,
        ]);
        if out.status.success() {
            Ok(())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        }
    });
    healthy(&env, Some(8));
    let errors = env
        .sim
        .request_counts()
        .iter()
        .filter(|c| c.key.user_agent.starts_with("ramp-controller") && c.key.code >= 409)
        .map(|c| c.count)
        .sum::<u64>();
    assert!(
        errors > 0,
        "faults were injected into the controller's requests"
    );
}
