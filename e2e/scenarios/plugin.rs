//! `kubectl ramp` driven through kubectl's plugin discovery (the binary on PATH), against kubesim and the
//! real controller: the commands a person steers a canary with, and the exit codes CI waits on.

use std::time::Duration;

use crate::support::*;

const ROLLOUT: &str = "rollouts-demo";
const SETTLE: Duration = Duration::from_secs(20);

fn canary_env(name: &str) -> Env {
    let mut env = Env::start(name);
    env.start_controller(&["--leader-elect=false"]);
    let example = example_copy(&env, "rollout-canary.yaml", &[("10s", "2s")]);
    env.kubectl_ok(&["apply", "-f", example.to_str().unwrap_or_default()]);
    wait_for_phase(&env, ROLLOUT, "Healthy", None, SETTLE);
    env
}

fn image(env: &Env) -> String {
    env.rollout(ROLLOUT)["spec"]["template"]["spec"]["containers"][0]["image"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

#[test]
fn plugin_sets_an_image_aborts_retries_and_promotes_a_canary() {
    let env = canary_env("plugin-canary");
    assert_eq!(
        ramp_ok(&env, &["status", ROLLOUT, "--watch=false"]),
        "Healthy\n"
    );

    // `list rollouts --watch` follows the whole release, printing a row each time it changes.
    let list_watch = Follow::start(ramp_command(
        &env,
        &["list", "rollouts", "--watch", "--name", ROLLOUT],
    ));

    assert_eq!(
        ramp_ok(
            &env,
            &[
                "set",
                "image",
                ROLLOUT,
                "rollouts-demo=argoproj/rollouts-demo:yellow"
            ]
        ),
        "rollout \"rollouts-demo\" image updated\n"
    );
    assert_eq!(image(&env), "argoproj/rollouts-demo:yellow");
    wait_for_phase(&env, ROLLOUT, "Paused", Some(1), SETTLE);
    wait_for("1 canary pod available", SETTLE, || {
        let tree = ramp_ok(&env, &["get", "rollout", ROLLOUT, "--no-color"]);
        if tree.contains("  ActualWeight:  20\n") {
            Ok(tree)
        } else {
            Err(tree)
        }
    });
    let tree = ramp_ok(&env, &["get", "rollout", ROLLOUT, "--no-color"]);
    for expected in [
        "Name:            rollouts-demo\n",
        "Status:          ॥ Paused\n",
        "Message:         CanaryPauseStep\n",
        "  Step:          1/8\n",
        "  SetWeight:     20\n",
        "Images:          argoproj/rollouts-demo:blue (stable)\n",
        "                 argoproj/rollouts-demo:yellow (canary)\n",
        "├──# revision:2\n",
        "└──# revision:1\n",
    ] {
        assert!(
            tree.contains(expected),
            "{expected:?} missing from:\n{tree}"
        );
    }
    assert!(
        !tree.contains('\x1b'),
        "--no-color prints no escapes:\n{tree}"
    );
    let list = ramp_ok(&env, &["list", "rollouts"]);
    let row: Vec<&str> = list
        .lines()
        .nth(1)
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    assert_eq!(
        row,
        [
            "rollouts-demo",
            "Canary",
            "Paused",
            "1/8",
            "20",
            "5/5",
            "5",
            "1",
            "5"
        ],
        "{list}"
    );

    // Abort: status waits, then fails on Degraded.
    assert_eq!(
        ramp_ok(&env, &["abort", ROLLOUT]),
        "rollout 'rollouts-demo' aborted\n"
    );
    let degraded = ramp(&env, &["status", ROLLOUT, "--timeout", "20s"]);
    assert!(
        !degraded.status.success(),
        "status exits non-zero on Degraded"
    );
    let stderr = String::from_utf8_lossy(&degraded.stderr);
    assert!(
        stderr.contains("The rollout is in a degraded state with message: RolloutAborted"),
        "{stderr}"
    );

    // Retry goes back to the first pause; promote moves past it; --full skips the timed pauses.
    assert_eq!(
        ramp_ok(&env, &["retry", "rollout", ROLLOUT]),
        "rollout 'rollouts-demo' retried\n"
    );
    wait_for_phase(&env, ROLLOUT, "Paused", Some(1), SETTLE);
    assert_eq!(
        ramp_ok(&env, &["promote", ROLLOUT]),
        "rollout 'rollouts-demo' promoted\n"
    );
    wait_for("the step after the pause", SETTLE, || {
        let ro = env.rollout(ROLLOUT);
        match ro["status"]["currentStepIndex"].as_i64() {
            Some(i) if i >= 2 => Ok(()),
            other => Err(format!("{other:?}")),
        }
    });
    assert_eq!(
        ramp_ok(&env, &["promote", ROLLOUT, "--full"]),
        "rollout 'rollouts-demo' fully promoted\n"
    );
    let watched = ramp_ok(&env, &["status", ROLLOUT, "--timeout", "20s"]);
    assert_eq!(watched.lines().last(), Some("Healthy"), "{watched}");
    let done = env.rollout(ROLLOUT);
    assert_eq!(done["status"]["stableRS"], done["status"]["currentPodHash"]);
    wait_for("list --watch to print the Healthy row", SETTLE, || {
        let text = list_watch.text();
        let healthy = text.lines().any(|line| {
            let cells: Vec<&str> = line.split_whitespace().collect();
            cells.get(2..4) == Some(&["Healthy", "8/8"][..])
        });
        if healthy { Ok(()) } else { Err(text) }
    });
    let watched = list_watch.stop();
    let rows: Vec<Vec<&str>> = watched
        .lines()
        .map(|line| line.split_whitespace().collect())
        .collect();
    assert_eq!(rows.first().map(|r| r[0]), Some("NAME"), "{watched}");
    assert_eq!(
        rows.iter().filter(|r| r[0] == "NAME").count(),
        1,
        "{watched}"
    );
    assert!(
        rows.iter().any(|r| r[2] == "Paused" && r[3] == "1/8"),
        "the first pause is shown:\n{watched}"
    );
    assert!(
        rows.iter().any(|r| r[2] == "Degraded"),
        "the abort is shown:\n{watched}"
    );
    assert_eq!(
        rows.last().map(|r| (r[2], r[3])),
        Some(("Healthy", "8/8")),
        "{watched}"
    );
    assert!(
        rows.windows(2).all(|pair| pair[0] != pair[1]),
        "a row is printed only when it changed:\n{watched}"
    );
}

#[test]
fn plugin_undoes_pauses_restarts_and_explains_its_errors() {
    let env = canary_env("plugin-undo");
    ramp_ok(
        &env,
        &["set", "image", ROLLOUT, "*=argoproj/rollouts-demo:green"],
    );
    wait_for_phase(&env, ROLLOUT, "Paused", Some(1), SETTLE);
    ramp_ok(&env, &["promote", ROLLOUT, "--full"]);
    ramp_ok(&env, &["status", ROLLOUT, "--timeout", "20s"]);

    // Undo puts revision 1's template back (a rollback to an older ReplicaSet, which runs the steps).
    assert_eq!(
        ramp_ok(&env, &["undo", ROLLOUT]),
        "rollout 'rollouts-demo' undo\n"
    );
    assert_eq!(image(&env), "argoproj/rollouts-demo:blue");
    wait_for(
        "revision 1's ReplicaSet re-adopted as revision 3",
        SETTLE,
        || {
            let list = env.get_json(&["rs", "-l", "app=rollouts-demo"]);
            let revisions: Vec<String> = list["items"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|rs| {
                    rs["metadata"]["annotations"]["rollout.argoproj.io/revision"].as_str()
                })
                .map(str::to_string)
                .collect();
            if revisions.iter().any(|r| r == "3") {
                Ok(())
            } else {
                Err(format!("{revisions:?}"))
            }
        },
    );
    let again = ramp_ok(&env, &["undo", ROLLOUT, "--to-revision", "3"]);
    assert_eq!(
        again,
        "skipped rollback (current template already matches revision 3)\n"
    );

    assert_eq!(
        ramp_ok(&env, &["pause", ROLLOUT]),
        "rollout 'rollouts-demo' paused\n"
    );
    wait_for_phase(&env, ROLLOUT, "Paused", None, SETTLE);
    assert_eq!(
        ramp_ok(&env, &["status", ROLLOUT, "--watch=false"]),
        "Paused - manually paused\n"
    );
    assert_eq!(
        ramp_ok(&env, &["resume", ROLLOUT]),
        "rollout 'rollouts-demo' resumed\n"
    );
    assert_ne!(env.rollout(ROLLOUT)["spec"]["paused"], true);

    assert_eq!(
        ramp_ok(&env, &["restart", ROLLOUT, "--in", "1h"]),
        "rollout 'rollouts-demo' restarts in 1h0m0s\n"
    );
    assert!(env.rollout(ROLLOUT)["spec"]["restartAt"].is_string());

    let missing = ramp(&env, &["promote", "nope"]);
    assert!(!missing.status.success());
    let stderr = String::from_utf8_lossy(&missing.stderr);
    assert!(
        stderr.contains(
            "rollout \"nope\" not found in namespace \"default\"; rollouts there: rollouts-demo"
        ),
        "{stderr}"
    );
    let no_container = ramp(&env, &["set", "image", ROLLOUT, "web=x:1"]);
    assert!(!no_container.status.success());
    assert!(
        String::from_utf8_lossy(&no_container.stderr)
            .contains("unable to find container named \"web\""),
        "{}",
        String::from_utf8_lossy(&no_container.stderr)
    );
}
