//! An inconclusive analysis, end to end: a canary whose error ratio is neither good nor bad pauses the
//! rollout with `InconclusiveAnalysisRun` and holds its replicas; once the cause is gone, `kubectl ramp
//! promote` continues the rollout with a new background run, which passes.

use std::time::Duration;

use serde_json::Value;

use crate::analysis::{
    RO, SETTLE, analysis_env_with, analysis_runs, new_hash, ready, release, web_rollout,
};
use crate::support::*;

/// The canary's 5xx ratio over the last 5 s: under 5 % passes, over 80 % fails, between is inconclusive.
const TEMPLATE: &str = r#"apiVersion: argoproj.io/v1alpha1
kind: AnalysisTemplate
metadata:
  name: error-band
spec:
  args:
  - name: canary-hash
  metrics:
  - name: error-ratio
    initialDelay: 4s
    interval: 2s
    successCondition: result[0] < 0.05
    failureCondition: result[0] > 0.8
    provider:
      prometheus:
        query: >-
          sum(rate(http_requests_total{service="web",code="500",rollouts_pod_template_hash="{{args.canary-hash}}"}[5s]))
          / sum(rate(http_requests_total{service="web",rollouts_pod_template_hash="{{args.canary-hash}}"}[5s]))
"#;

/// Background analysis of the canary from the first step; the long pause is where it turns inconclusive,
/// the last pause gives the new run time to measure before the rollout completes.
const STRATEGY: &str = r#"    canary:
      analysis:
        templates:
        - templateName: error-band
        args:
        - name: canary-hash
          valueFrom:
            podTemplateHashValue: Latest
      steps:
      - setWeight: 25
      - pause: {duration: 120s}
      - setWeight: 50
      - pause: {duration: 10s}
"#;

fn pause_reasons(ro: &Value) -> Vec<String> {
    ro["status"]["pauseConditions"]
        .as_array()
        .map(|conditions| {
            conditions
                .iter()
                .filter_map(|c| c["reason"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn an_inconclusive_run_pauses_and_promote_continues_with_a_new_run() {
    let manifests = format!("{TEMPLATE}---\n{}", web_rollout(STRATEGY));
    let (env, prometheus) = analysis_env_with("outcome-inconclusive", &manifests);
    let stable = env.rollout(RO)["status"]["stableRS"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    release(&env, "web:2", "0.3");
    let canary = new_hash(&env, &stable);

    let paused = wait_for("the InconclusiveAnalysisRun pause", SETTLE, || {
        let ro = env.rollout(RO);
        let reasons = pause_reasons(&ro);
        if ro["status"]["phase"] == "Paused"
            && reasons.iter().any(|r| r == "InconclusiveAnalysisRun")
        {
            Ok(ro)
        } else {
            Err(format!("{} {reasons:?}", ro["status"]["phase"]))
        }
    });
    assert_eq!(paused["status"]["controllerPause"], true);
    assert_eq!(paused["status"]["abort"], Value::Null, "not aborted");
    let background = &paused["status"]["canary"]["currentBackgroundAnalysisRunStatus"];
    assert_eq!(background["status"], "Inconclusive", "{background}");
    let first_run = background["name"].as_str().unwrap_or_default().to_string();
    let run = env.get_json(&["analysisrun", &first_run]);
    assert_eq!(run["status"]["phase"], "Inconclusive", "{}", run["status"]);
    let message = run["status"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains(
            "Metric \"error-ratio\" assessed Inconclusive due to inconclusive (1) > inconclusiveLimit (0)"
        ),
        "run message: {message}"
    );

    // Held: nobody decided, so the step does not move and the canary keeps its one pod.
    std::thread::sleep(Duration::from_secs(3));
    let held = env.rollout(RO);
    assert_eq!(held["status"]["phase"], "Paused");
    assert_eq!(
        held["status"]["currentStepIndex"],
        paused["status"]["currentStepIndex"]
    );
    assert_eq!(ready(&env, &canary), 1, "canary held at 25 % of 4");
    assert_eq!(analysis_runs(&env).len(), 1, "no new run while paused");

    // The cause goes away: the canary's pods stop failing, and so do those its ReplicaSet starts later
    // (the ReplicaSet keeps the template it was created with; the Rollout is not changed, which would
    // start a new revision). Then a person promotes.
    let fixed =
        r#"{"spec":{"template":{"metadata":{"annotations":{"kubesim.ramp.dev/error-rate":"0"}}}}}"#;
    env.kubectl_ok(&[
        "patch",
        "rs",
        &format!("{RO}-{canary}"),
        "--type",
        "merge",
        "-p",
        fixed,
    ]);
    env.kubectl_ok(&[
        "annotate",
        "pods",
        "-l",
        &format!("rollouts-pod-template-hash={canary}"),
        "kubesim.ramp.dev/error-rate=0",
        "--overwrite",
    ]);
    let ratio = format!(
        "sum(rate(http_requests_total{{service=\"web\",code=\"500\",rollouts_pod_template_hash=\"{canary}\"}}[5s])) \
         / sum(rate(http_requests_total{{service=\"web\",rollouts_pod_template_hash=\"{canary}\"}}[5s])) < 0.05"
    );
    wait_for(
        "the canary's error ratio under 5 %",
        SETTLE,
        || match prometheus.query(&ratio) {
            Some(result) if !result.is_empty() => Ok(()),
            other => Err(format!("{other:?}")),
        },
    );
    let said = ramp_ok(&env, &["promote", RO]);
    assert!(said.contains("rollout 'web' promoted"), "{said}");

    let done = wait_for_phase(&env, RO, "Healthy", None, SETTLE);
    assert_eq!(
        done["status"]["stableRS"],
        canary.as_str(),
        "the canary was promoted"
    );
    let runs = analysis_runs(&env);
    assert_eq!(runs.len(), 2, "one new run after the promote: {runs:?}");
    assert_eq!(runs[0].0, first_run);
    assert_eq!(runs[0].1, "Inconclusive", "{runs:?}");
    let second = wait_for("the new run to finish", SETTLE, || {
        let run = env.get_json(&["analysisrun", &runs[1].0]);
        match run["status"]["phase"].as_str() {
            Some("Successful") => Ok(run),
            other => Err(format!("{other:?} {}", run["status"])),
        }
    });
    let result = &second["status"]["metricResults"][0];
    assert!(
        result["successful"].as_i64().unwrap_or(0) >= 1,
        "the new run measured the fixed canary: {result}"
    );
    assert_eq!(result["inconclusive"].as_i64().unwrap_or(0), 0, "{result}");
}
