//! Analysis end to end: a real Prometheus scrapes kubesim's simulated traffic every second, and an
//! AnalysisTemplate computes the canary's 5xx ratio per `rollouts_pod_template_hash`. A good release
//! passes its step and background analyses and is promoted; a bad one aborts by itself.

use std::time::{Duration, Instant};

use kubesim::prometheus::{Prometheus, TRAFFIC_METRICS_PATH};
use serde_json::Value;

use crate::support::*;

pub(crate) const RO: &str = "web";
pub(crate) const SETTLE: Duration = Duration::from_secs(40);
/// The template's measurement interval, in seconds; the abort-time bound below is derived from it.
const INTERVAL_SECONDS: u64 = 3;
/// Prometheus' scrape interval (kubesim::prometheus).
const SCRAPE_SECONDS: u64 = 1;

/// The 5xx ratio of one pod-template hash, over everything its pods served: canary pods are new, so
/// their totals are the canary's own. `initialDelay` lets two scrapes land before the first measurement.
fn manifests() -> String {
    format!(
        r#"apiVersion: argoproj.io/v1alpha1
kind: AnalysisTemplate
metadata:
  name: error-ratio
spec:
  args:
  - name: canary-hash
  metrics:
  - name: error-ratio
    initialDelay: 3s
    interval: {INTERVAL_SECONDS}s
    count: 2
    failureLimit: 0
    successCondition: result[0] < 0.05
    provider:
      prometheus:
        query: >-
          sum(http_requests_total{{service="web",code="500",rollouts_pod_template_hash="{{{{args.canary-hash}}}}"}})
          / sum(http_requests_total{{service="web",rollouts_pod_template_hash="{{{{args.canary-hash}}}}"}})
---
{}"#,
        web_rollout(STRATEGY)
    )
}

/// Canary with a background analysis from step 1 and a step analysis, both of the canary's error ratio.
const STRATEGY: &str = r#"    canary:
      analysis:
        startingStep: 1
        templates:
        - templateName: error-ratio
        args:
        - name: canary-hash
          valueFrom:
            podTemplateHashValue: Latest
      steps:
      - setWeight: 25
      - analysis:
          templates:
          - templateName: error-ratio
          args:
          - name: canary-hash
            valueFrom:
              podTemplateHashValue: Latest
      - setWeight: 50
      - pause: {duration: 2s}
"#;

/// The `web` Service, sent 200 requests a second, and the `web` Rollout of 4 replicas whose pods answer
/// no request with an error, with `strategy` (YAML indented to sit under `strategy:`).
pub(crate) fn web_rollout(strategy: &str) -> String {
    format!(
        r#"apiVersion: v1
kind: Service
metadata:
  name: web
  annotations:
    kubesim.ramp.dev/requests-per-second: "200"
spec:
  selector:
    app: web
  ports:
  - port: 80
---
apiVersion: argoproj.io/v1alpha1
kind: Rollout
metadata:
  name: web
spec:
  replicas: 4
  selector:
    matchLabels:
      app: web
  template:
    metadata:
      labels:
        app: web
      annotations:
        kubesim.ramp.dev/error-rate: "0"
    spec:
      containers:
      - name: web
        image: web:1
  strategy:
{strategy}"#
    )
}

/// kubesim, Prometheus scraping it, the controller pointed at Prometheus, and `web` Healthy.
fn analysis_env(name: &str) -> (Env, Prometheus) {
    analysis_env_with(name, &manifests())
}

/// As [`analysis_env`], with other manifests (which must include the `web` Rollout).
pub(crate) fn analysis_env_with(name: &str, manifests: &str) -> (Env, Prometheus) {
    let mut env = Env::start(name);
    let prometheus = Prometheus::start(name, &env.sim.address.to_string(), TRAFFIC_METRICS_PATH);
    let address = format!("http://{}", prometheus.address);
    env.start_controller(&["--leader-elect=false", "--prometheus-address", &address]);
    deploy(&env, manifests);
    // Prometheus takes seconds to start; a release measured before its first scrape would see no data.
    wait_for("Prometheus scraping kubesim", SETTLE, || {
        match prometheus.query("up{job=\"kubesim\"} == 1") {
            Some(up) if !up.is_empty() => Ok(()),
            _ => Err(prometheus.log_tail()),
        }
    });
    (env, prometheus)
}

/// Applies `manifests` and waits for the `web` Rollout to be Healthy.
pub(crate) fn deploy(env: &Env, manifests: &str) {
    let path = env.dir.join("web.yaml");
    std::fs::write(&path, manifests).expect("write manifests");
    env.kubectl_ok(&["apply", "-f", path.to_str().unwrap_or_default()]);
    wait_for_phase(env, RO, "Healthy", None, SETTLE);
}

/// A new revision: `image`, with its pods answering `error_rate` of requests with a 500.
pub(crate) fn release(env: &Env, image: &str, error_rate: &str) {
    let patch = format!(
        r#"{{"spec":{{"template":{{"metadata":{{"annotations":{{"kubesim.ramp.dev/error-rate":"{error_rate}"}}}},"spec":{{"containers":[{{"name":"web","image":"{image}"}}]}}}}}}}}"#
    );
    env.kubectl_ok(&["patch", "rollout", RO, "--type", "merge", "-p", &patch]);
}

/// AnalysisRuns of the rollout: (name, phase, message), oldest first.
pub(crate) fn analysis_runs(env: &Env) -> Vec<(String, String, String)> {
    let list = env.get_json(&["analysisruns"]);
    let mut runs: Vec<&Value> = list["items"]
        .as_array()
        .map(|a| a.iter().collect())
        .unwrap_or_default();
    runs.sort_by_key(|r| {
        r["metadata"]["resourceVersion"]
            .as_str()
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    });
    runs.iter()
        .map(|r| {
            let text = |v: &Value| v.as_str().unwrap_or_default().to_string();
            (
                text(&r["metadata"]["name"]),
                text(&r["status"]["phase"]),
                text(&r["status"]["message"]),
            )
        })
        .collect()
}

/// The rollout's current pod-template hash, once it is no longer `stable`.
pub(crate) fn new_hash(env: &Env, stable: &str) -> String {
    wait_for("the new ReplicaSet", SETTLE, || {
        let ro = env.rollout(RO);
        match ro["status"]["currentPodHash"].as_str() {
            Some(hash) if hash != stable => Ok(hash.to_string()),
            other => Err(format!("{other:?}")),
        }
    })
}

/// Ready pods of the ReplicaSet with this hash.
pub(crate) fn ready(env: &Env, hash: &str) -> i64 {
    let list = env.get_json(&["rs", "-l", &format!("rollouts-pod-template-hash={hash}")]);
    list["items"][0]["status"]["readyReplicas"]
        .as_i64()
        .unwrap_or(0)
}

#[test]
fn a_good_release_passes_step_and_background_analysis() {
    let (env, prometheus) = analysis_env("analysis-good");
    release(&env, "web:2", "0");
    let ro = wait_for_phase(&env, RO, "Healthy", None, SETTLE);
    let stable = ro["status"]["stableRS"].as_str().unwrap_or_default();
    let runs = analysis_runs(&env);
    assert_eq!(
        runs.len(),
        2,
        "one step run and one background run: {runs:?}\nPrometheus log:\n{}",
        prometheus.log_tail()
    );
    for (name, phase, message) in &runs {
        assert!(
            name.starts_with(&format!("{RO}-{stable}-2")),
            "{name} names the rollout, hash and revision"
        );
        assert_eq!(phase, "Successful", "{name}: {message}");
    }
    // The step run measured its count; the background run was terminated when the release finished.
    let step = env.get_json(&["analysisrun", &format!("{RO}-{stable}-2-1")]);
    let result = &step["status"]["metricResults"][0];
    assert_eq!(result["count"], 2);
    assert_eq!(result["successful"], 2);
    let query = result["metadata"]["ResolvedPrometheusQuery"]
        .as_str()
        .unwrap_or_default();
    assert!(
        query.contains(&format!("rollouts_pod_template_hash=\"{stable}\"")),
        "the resolved query names the canary hash: {query}"
    );
    assert_eq!(
        result["measurements"][0]["value"].as_str(),
        Some("[0]"),
        "no 5xx from a healthy canary: {}",
        step["status"]
    );
}

#[test]
fn a_bad_release_aborts_by_itself_within_one_interval() {
    let (env, _prometheus) = analysis_env("analysis-bad");
    let stable = env.rollout(RO)["status"]["stableRS"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    release(&env, "web:3", "0.3");
    let canary = new_hash(&env, &stable);
    // The canary's first bad request comes within kubesim's one-second traffic tick of it being ready.
    wait_for("a ready canary pod", SETTLE, || {
        match ready(&env, &canary) {
            0 => Err("0 ready".into()),
            n => Ok(n),
        }
    });
    let first_bad_request = Instant::now();
    let ro = wait_for("the rollout to abort", SETTLE, || {
        let ro = env.rollout(RO);
        if ro["status"]["phase"] == "Degraded" {
            Ok(ro)
        } else {
            Err(format!(
                "{} {}",
                ro["status"]["phase"], ro["status"]["message"]
            ))
        }
    });
    let to_abort = first_bad_request.elapsed();
    let bound = Duration::from_secs(INTERVAL_SECONDS + SCRAPE_SECONDS + 2);
    println!(
        "time from the canary's first bad request to the abort: {to_abort:.1?} (bound {bound:?})"
    );
    assert!(
        to_abort < bound,
        "aborted after {to_abort:?}, bound {bound:?}"
    );
    let message = ro["status"]["message"].as_str().unwrap_or_default();
    assert!(
        message.starts_with("RolloutAborted: Rollout aborted update to revision 2")
            && message.ends_with(
                "Metric \"error-ratio\" assessed Failed due to failed (1) > failureLimit (0)"
            ),
        "abort message: {message}"
    );
    wait_for("all traffic back on stable", SETTLE, || {
        let counts: Vec<(String, i64)> = env
            .replica_sets(RO)
            .into_iter()
            .map(|(hash, replicas, _)| (hash, replicas))
            .collect();
        if counts == [(stable.clone(), 4), (canary.clone(), 0)] {
            Ok(())
        } else {
            Err(format!("{counts:?}"))
        }
    });
    let failed: Vec<_> = analysis_runs(&env)
        .into_iter()
        .filter(|(_, phase, _)| phase == "Failed")
        .collect();
    assert!(!failed.is_empty(), "a failed run: {failed:?}");
    let reasons = env.event_reasons(&failed[0].0);
    assert!(
        reasons.contains(&"MetricFailed".to_string())
            && reasons.contains(&"AnalysisRunFailed".to_string()),
        "the run's events: {reasons:?}"
    );
}
