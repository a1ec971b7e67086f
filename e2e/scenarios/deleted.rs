//! What the controller keeps about an object leaves with the object: a deleted Rollout's or
//! AnalysisRun's series leave `/metrics`, whether its delete event arrived or the watch was down and
//! only a later list shows it gone.

use std::time::Duration;

use crate::small_canary;
use crate::support::*;

const SETTLE: Duration = Duration::from_secs(20);

/// A run created finished (the kind has no status subresource), as a past release leaves it.
fn finished_run(name: &str) -> String {
    format!(
        r#"apiVersion: argoproj.io/v1alpha1
kind: AnalysisRun
metadata:
  name: {name}
spec:
  metrics:
  - name: success-rate
    successCondition: "result[0] >= 0.95"
    provider:
      prometheus: {{address: "http://127.0.0.1:9", query: "vector(1)"}}
status:
  phase: Successful
  startedAt: "2026-01-01T00:00:00Z"
"#
    )
}

fn apply(env: &Env, file: &str, manifest: &str) {
    let path = env.dir.join(file);
    std::fs::write(&path, manifest).expect("manifest written");
    env.kubectl_ok(&["apply", "-f", path.to_str().unwrap_or_default()]);
}

/// The series that name `name`, but for the request counts (they stay for a grace period, to keep
/// matching the API server's).
fn series_of(metrics: &str, name: &str) -> Vec<String> {
    metrics
        .lines()
        .filter(|l| {
            l.contains(&format!("name=\"{name}\""))
                && !l.starts_with("controller_clientset_k8s_request_total")
        })
        .map(str::to_string)
        .collect()
}

fn wait_for_series(port: u16, name: &str, family: &str) {
    wait_for(&format!("{family} of {name}"), SETTLE, || {
        let series = series_of(&scrape(port)?, name);
        if series.iter().any(|l| l.starts_with(family)) {
            Ok(())
        } else {
            Err(series.join("\n"))
        }
    });
}

/// Waits until none of `name`'s series is of `family`, while others may stay.
fn wait_until_no_family(port: u16, name: &str, family: &str) {
    wait_for(&format!("{family} of {name} gone"), SETTLE, || {
        let series = series_of(&scrape(port)?, name);
        if series.iter().any(|l| l.starts_with(family)) {
            Err(series.join("\n"))
        } else {
            Ok(())
        }
    });
}

fn wait_until_no_series(port: u16, name: &str) {
    wait_for(&format!("the series of {name} gone"), SETTLE, || {
        let left = series_of(&scrape(port)?, name);
        if left.is_empty() {
            Ok(())
        } else {
            Err(left.join("\n"))
        }
    });
}

/// The controller's lists of `resource` so far.
fn lists(env: &Env, resource: &str) -> u64 {
    env.sim
        .request_counts()
        .iter()
        .filter(|c| {
            c.key.user_agent.starts_with("ramp-controller")
                && c.key.verb == "list"
                && c.key.resource == resource
        })
        .map(|c| c.count)
        .sum()
}

#[test]
fn a_deleted_analysis_run_takes_its_series_with_it() {
    let mut env = Env::start("deleted-run");
    let port = free_port();
    env.start_controller_with(&["--leader-elect=false"], &format!("127.0.0.1:{port}"));
    apply(&env, "gone.yaml", &finished_run("run-gone"));
    apply(&env, "kept.yaml", &finished_run("run-kept"));
    wait_for_series(port, "run-gone", "analysis_run_info{");
    wait_for_series(port, "run-kept", "analysis_run_info{");

    env.kubectl_ok(&["delete", "analysisrun", "run-gone"]);
    wait_until_no_series(port, "run-gone");
    let kept = series_of(&scrape(port).unwrap_or_default(), "run-kept");
    assert!(
        kept.iter()
            .any(|l| l.starts_with("analysis_run_info{") && l.contains("phase=\"Successful\"")),
        "the other run's series stay: {kept:?}"
    );
}

#[test]
fn a_deleted_run_leaves_the_event_counts_of_a_rollout_of_the_same_name() {
    // `rollout_events_total` names objects by namespace and name alone, as Argo's does, so a run named
    // like a Rollout counts into the Rollout's series.
    let mut env = Env::start("deleted-namesake");
    let port = free_port();
    env.start_controller_with(&["--leader-elect=false"], &format!("127.0.0.1:{port}"));
    apply(&env, "rollout.yaml", &small_canary("shared"));
    apply(&env, "run.yaml", &finished_run("shared"));
    wait_for_phase(&env, "shared", "Healthy", None, SETTLE);
    wait_for_series(port, "shared", "rollout_events_total{");
    wait_for_series(port, "shared", "analysis_run_info{");

    env.kubectl_ok(&["delete", "analysisrun", "shared"]);
    wait_until_no_family(port, "shared", "analysis_run_info{");
    let left = series_of(&scrape(port).unwrap_or_default(), "shared");
    assert!(
        left.iter().any(|l| l.starts_with("rollout_events_total{")
            && l.contains("reason=\"NewReplicaSetCreated\"")),
        "the Rollout's Event counts stay: {left:?}"
    );

    env.kubectl_ok(&["delete", "rollout", "shared"]);
    wait_until_no_series(port, "shared");
}

#[test]
fn objects_deleted_while_the_watch_is_down_take_their_series_with_them() {
    let mut env = Env::start("deleted-unwatched");
    // Watches end every second, as a flaky network would end them, so the outage below begins within a
    // second of being switched on.
    let cycling = kubesim::Faults {
        watch_max_seconds: Some(1.0),
        ..Default::default()
    };
    env.sim.set_faults(cycling.clone());
    let port = free_port();
    env.start_controller_with(&["--leader-elect=false"], &format!("127.0.0.1:{port}"));
    apply(&env, "gone.yaml", &small_canary("ro-gone"));
    apply(&env, "kept.yaml", &small_canary("ro-kept"));
    // Held by a finalizer, as a GitOps tool's foreground deletion holds it.
    let held = small_canary("ro-held").replace(
        "  name: ro-held\n",
        "  name: ro-held\n  finalizers: [example.com/hold]\n",
    );
    apply(&env, "held.yaml", &held);
    apply(&env, "run-gone.yaml", &finished_run("run-gone"));
    apply(&env, "run-kept.yaml", &finished_run("run-kept"));
    for name in ["ro-gone", "ro-kept", "ro-held"] {
        wait_for_phase(&env, name, "Healthy", None, SETTLE);
        wait_for_series(port, name, "rollout_info{");
    }
    wait_for_series(port, "run-gone", "analysis_run_info{");
    wait_for_series(port, "run-kept", "analysis_run_info{");

    // The held Rollout's deletion begins while the watch is up: its series go but for the Event
    // counts, which go by name and so wait for the object itself to go.
    env.kubectl_ok(&["delete", "rollout", "ro-held", "--wait=false"]);
    wait_until_no_family(port, "ro-held", "rollout_info{");

    // Every watch of Rollouts and AnalysisRuns is now told its history is gone, so the controller lists
    // them again and again and never gets a delete event.
    let gone = |resource: &str| kubesim::ErrorRule {
        verb: Some("watch".into()),
        resource: Some(resource.into()),
        code: 410,
        rate: 1.0,
        ..Default::default()
    };
    let lists_before = ["rollouts", "analysisruns"].map(|resource| lists(&env, resource));
    env.sim.set_faults(kubesim::Faults {
        errors: vec![gone("rollouts"), gone("analysisruns")],
        ..cycling
    });
    std::thread::sleep(Duration::from_secs(2));
    env.kubectl_ok(&["delete", "rollout", "ro-gone"]);
    env.kubectl_ok(&["delete", "analysisrun", "run-gone"]);
    env.kubectl_ok(&[
        "patch",
        "rollout",
        "ro-held",
        "--type=json",
        "-p",
        r#"[{"op": "remove", "path": "/metadata/finalizers"}]"#,
    ]);
    wait_until_no_series(port, "ro-gone");
    wait_until_no_series(port, "run-gone");
    wait_until_no_series(port, "ro-held");
    env.sim.set_faults(kubesim::Faults::default());

    // No delete event reached the controller (its watches end within a second, and every one since
    // the outage began was refused): it learnt of the deletions by listing again.
    for (resource, before) in ["rollouts", "analysisruns"].iter().zip(lists_before) {
        assert!(
            lists(&env, resource) > before,
            "the controller listed {resource} again"
        );
    }
    let metrics = scrape(port).unwrap_or_default();
    for (name, family) in [
        ("ro-kept", "rollout_info{"),
        ("run-kept", "analysis_run_info{"),
    ] {
        assert!(
            series_of(&metrics, name)
                .iter()
                .any(|l| l.starts_with(family)),
            "{name} keeps its series"
        );
    }
    // The kept Rollout is still managed: a new image goes out, to its first pause.
    set_image(&env, "ro-kept", "argoproj/rollouts-demo:green");
    wait_for_phase(&env, "ro-kept", "Paused", Some(1), SETTLE);
}
