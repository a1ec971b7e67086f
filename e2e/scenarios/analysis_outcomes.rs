//! Analysis outcomes other than plain success and failure, end to end: a Prometheus outage (Error), a
//! dry-run failure, blue-green pre- and post-promotion analysis, and the Web and
//! Job providers against a local HTTP server and kubesim's simulated Jobs.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::analysis::{
    RO, SETTLE, analysis_env_with, analysis_runs, deploy, new_hash, release, web_rollout,
};
use crate::support::*;

/// Canary steps: 25%, the analysis `template` with the canary's hash as `canary-hash`, then 50%.
fn canary_with_step_analysis(template: &str) -> String {
    format!(
        r#"    canary:
      steps:
      - setWeight: 25
      - analysis:
          templates:
          - templateName: {template}
          args:
          - name: canary-hash
            valueFrom:
              podTemplateHashValue: Latest
      - setWeight: 50
"#
    )
}

/// The 5xx ratio of the pods of one pod-template hash, whichever Service sent their traffic.
fn error_ratio_query() -> &'static str {
    r#"sum(http_requests_total{code="500",rollouts_pod_template_hash="{{args.canary-hash}}"})
          / sum(http_requests_total{rollouts_pod_template_hash="{{args.canary-hash}}"})"#
}

/// The single AnalysisRun of the rollout once it reaches `phase`.
fn run_in_phase(env: &Env, phase: &str, timeout: Duration) -> Value {
    let name = wait_for(&format!("an AnalysisRun {phase}"), timeout, || {
        let runs = analysis_runs(env);
        match runs.iter().find(|(_, p, _)| p == phase) {
            Some((name, _, _)) => Ok(name.clone()),
            None => Err(format!("{runs:?}")),
        }
    });
    env.get_json(&["analysisrun", &name])
}

fn degraded(env: &Env) -> Value {
    wait_for_phase(env, RO, "Degraded", None, SETTLE)
}

/// Waits for the rollout to abort, and checks its message starts with `prefix` and names `why`.
fn aborted(env: &Env, prefix: &str, why: &str) -> Value {
    let ro = degraded(env);
    let text = message(&ro);
    assert!(
        text.starts_with(prefix) && text.contains(why),
        "abort message {text:?} should start with {prefix:?} and name {why:?}"
    );
    ro
}

fn message(object: &Value) -> &str {
    object["status"]["message"].as_str().unwrap_or_default()
}

#[test]
fn a_prometheus_outage_errors_the_run_and_aborts_the_rollout() {
    let manifests = format!(
        r#"apiVersion: argoproj.io/v1alpha1
kind: AnalysisTemplate
metadata:
  name: scrape-up
spec:
  args:
  - name: canary-hash
  metrics:
  - name: scrape-up
    interval: 1s
    count: 60
    consecutiveErrorLimit: 1
    successCondition: result[0] == 1
    provider:
      prometheus:
        query: up{{job="kubesim"}}
---
{}"#,
        web_rollout(&canary_with_step_analysis("scrape-up"))
    );
    let (env, mut prometheus) = analysis_env_with("outcome-outage", &manifests);
    release(&env, "web:2", "0");
    let name = wait_for("two successful measurements", SETTLE, || {
        let runs = analysis_runs(&env);
        let Some((name, _, _)) = runs.first() else {
            return Err("no run".into());
        };
        let run = env.get_json(&["analysisrun", name]);
        match run["status"]["metricResults"][0]["successful"].as_i64() {
            Some(n) if n >= 2 => Ok(name.clone()),
            _ => Err(run["status"].to_string()),
        }
    });
    prometheus.stop();
    let stopped = Instant::now();
    let run = run_in_phase(&env, "Error", SETTLE);
    let to_error = stopped.elapsed();
    assert_eq!(run["metadata"]["name"], name.as_str());
    let result = &run["status"]["metricResults"][0];
    assert_eq!(result["phase"], "Error", "{result}");
    assert_eq!(result["consecutiveError"], 2, "{result}");
    assert_eq!(result["error"], 2, "{result}");
    assert!(
        message(&run).starts_with(
            "Metric \"scrape-up\" assessed Error due to consecutiveErrors (2) > consecutiveErrorLimit (1)"
        ),
        "run message: {}",
        message(&run)
    );
    let measurements = result["measurements"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let errors: Vec<&Value> = measurements
        .iter()
        .filter(|m| m["phase"] == "Error")
        .collect();
    assert_eq!(errors.len(), 2, "{measurements:?}");
    let time = |v: &Value| {
        v.as_str()
            .and_then(|t| t.parse::<jiff::Timestamp>().ok())
            .map(|t| t.as_second())
            .unwrap_or_default()
    };
    let retry_after = time(&errors[1]["startedAt"]) - time(&errors[0]["finishedAt"]);
    assert!(
        retry_after >= 10,
        "an Error measurement is retried after 10 s, not the 1 s interval: {retry_after} s"
    );
    println!("time from the outage to the run's Error: {to_error:.1?}");
    assert!(
        to_error < Duration::from_secs(10 + 5),
        "one retry interval and a little: {to_error:?}"
    );
    aborted(
        &env,
        "RolloutAborted",
        "consecutiveErrors (2) > consecutiveErrorLimit (1)",
    );
}

#[test]
fn a_failing_dry_run_metric_is_counted_but_does_not_abort() {
    let manifests = format!(
        r#"apiVersion: argoproj.io/v1alpha1
kind: AnalysisTemplate
metadata:
  name: dry-run
spec:
  args:
  - name: canary-hash
  dryRun:
  - metricName: error-.*
  metrics:
  - name: scrape-up
    initialDelay: 3s
    interval: 1s
    count: 2
    successCondition: result[0] == 1
    provider:
      prometheus:
        query: up{{job="kubesim"}}
  - name: error-ratio
    initialDelay: 3s
    successCondition: result[0] < 0.05
    provider:
      prometheus:
        query: >-
          {}
---
{}"#,
        error_ratio_query(),
        web_rollout(&canary_with_step_analysis("dry-run"))
    );
    let (env, _prometheus) = analysis_env_with("outcome-dry-run", &manifests);
    release(&env, "web:2", "0.3");
    let ro = wait_for_phase(&env, RO, "Healthy", None, SETTLE);
    let runs = analysis_runs(&env);
    assert_eq!(runs.len(), 1, "{runs:?}");
    let run = env.get_json(&["analysisrun", &runs[0].0]);
    assert_eq!(run["status"]["phase"], "Successful", "{}", run["status"]);
    let results = run["status"]["metricResults"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let by_name = |name: &str| {
        results
            .iter()
            .find(|r| r["name"] == name)
            .cloned()
            .unwrap_or_default()
    };
    let dry = by_name("error-ratio");
    assert_eq!(dry["phase"], "Failed", "{dry}");
    assert_eq!(dry["dryRun"], true, "{dry}");
    assert_eq!(by_name("scrape-up")["phase"], "Successful");
    let dry_summary = &run["status"]["dryRunSummary"];
    assert_eq!(dry_summary["count"], 1, "{dry_summary}");
    assert_eq!(dry_summary["failed"], 1, "{dry_summary}");
    let summary = &run["status"]["runSummary"];
    assert_eq!(summary["count"], 1, "{summary}");
    assert_eq!(summary["successful"], 1, "{summary}");
    assert_eq!(
        ro["status"]["stableRS"], ro["status"]["currentPodHash"],
        "the failing release was promoted"
    );
}

/// The `web-preview` Service, sent traffic like `web`, so a new revision's pods serve before promotion.
const PREVIEW_SERVICE: &str = r#"apiVersion: v1
kind: Service
metadata:
  name: web-preview
  annotations:
    kubesim.ramp.dev/requests-per-second: "200"
spec:
  selector:
    app: web
  ports:
  - port: 80
"#;

/// Blue-green between `web` (active) and `web-preview`, with the error-ratio analysis as `phase`
/// (`prePromotionAnalysis` or `postPromotionAnalysis`).
fn blue_green(phase: &str) -> String {
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
    successCondition: result[0] < 0.05
    provider:
      prometheus:
        query: >-
          {}
---
{PREVIEW_SERVICE}---
{}"#,
        error_ratio_query(),
        web_rollout(&format!(
            r#"    blueGreen:
      activeService: web
      previewService: web-preview
      {phase}:
        templates:
        - templateName: error-ratio
        args:
        - name: canary-hash
          valueFrom:
            podTemplateHashValue: Latest
"#
        ))
    )
}

fn active_hash(env: &Env) -> String {
    let svc = env.get_json(&["service", "web"]);
    svc["spec"]["selector"]["rollouts-pod-template-hash"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

#[test]
fn a_failing_pre_promotion_analysis_keeps_active_on_stable_and_aborts() {
    let (env, _prometheus) =
        analysis_env_with("outcome-bg-pre", &blue_green("prePromotionAnalysis"));
    let blue = active_hash(&env);
    assert!(!blue.is_empty(), "active Service selects a hash");
    release(&env, "web:2", "0.3");
    let green = new_hash(&env, &blue);
    let mut seen = Vec::new();
    let ro = wait_for("the rollout to abort", SETTLE, || {
        seen.push(active_hash(&env));
        let ro = env.rollout(RO);
        if ro["status"]["phase"] == "Degraded" {
            Ok(ro)
        } else {
            Err(format!("{} {}", ro["status"]["phase"], message(&ro)))
        }
    });
    assert!(
        seen.iter().all(|h| *h == blue),
        "active stayed on {blue}: {seen:?}"
    );
    assert_eq!(active_hash(&env), blue);
    assert!(
        message(&ro).starts_with("RolloutAborted")
            && message(&ro).contains("Metric \"error-ratio\" assessed Failed"),
        "{}",
        message(&ro)
    );
    let run = run_in_phase(&env, "Failed", SETTLE);
    let name = run["metadata"]["name"].as_str().unwrap_or_default();
    assert!(
        name.starts_with(&format!("{RO}-{green}-2-pre")),
        "the pre-promotion run: {name}"
    );
    assert_eq!(ro["status"]["stableRS"], blue.as_str());
}

#[test]
fn a_failing_post_promotion_analysis_switches_active_back_to_stable() {
    let (env, _prometheus) =
        analysis_env_with("outcome-bg-post", &blue_green("postPromotionAnalysis"));
    let blue = active_hash(&env);
    release(&env, "web:2", "0.3");
    let green = new_hash(&env, &blue);
    wait_for(
        "active switched to the new revision",
        SETTLE,
        || match active_hash(&env) {
            hash if hash == green => Ok(()),
            hash => Err(hash),
        },
    );
    let ro = aborted(
        &env,
        "RolloutAborted",
        "Metric \"error-ratio\" assessed Failed",
    );
    wait_for(
        "active switched back to stable",
        SETTLE,
        || match active_hash(&env) {
            hash if hash == blue => Ok(()),
            hash => Err(hash),
        },
    );
    assert_eq!(ro["status"]["stableRS"], blue.as_str());
    let run = run_in_phase(&env, "Failed", SETTLE);
    let name = run["metadata"]["name"].as_str().unwrap_or_default();
    assert!(
        name.starts_with(&format!("{RO}-{green}-2-post")),
        "the post-promotion run: {name}"
    );
}

/// A server answering `{"ok": true}` on `/pass` and `{"ok": false}` on anything else; its port.
fn serve_ok() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a local port");
    let port = listener.local_addr().expect("local address").port();
    std::thread::spawn(move || {
        for mut stream in listener.incoming().flatten() {
            let mut request = Vec::new();
            let mut buffer = [0u8; 1024];
            while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                match stream.read(&mut buffer) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => request.extend_from_slice(&buffer[..n]),
                }
            }
            let ok = request.starts_with(b"GET /pass ");
            let body = format!(r#"{{"ok": {ok}}}"#);
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    port
}

/// A canary whose step analysis is `template`, given the argument `check`.
fn canary_with_check(template: &str, check: &str) -> String {
    format!(
        r#"    canary:
      steps:
      - setWeight: 25
      - analysis:
          templates:
          - templateName: {template}
          args:
          - name: check
            value: "{check}"
      - setWeight: 50
"#
    )
}

/// A new revision whose step analysis gets `check` as its argument.
fn release_checking(env: &Env, image: &str, check: &str) {
    let patch = format!(
        r#"[{{"op":"replace","path":"/spec/template/spec/containers/0/image","value":"{image}"}},{{"op":"replace","path":"/spec/strategy/canary/steps/1/analysis/args/0/value","value":"{check}"}}]"#
    );
    env.kubectl_ok(&["patch", "rollout", RO, "--type", "json", "-p", &patch]);
}

/// The controller without Prometheus, and `web` Healthy.
fn env_with(name: &str, manifests: &str) -> Env {
    let mut env = Env::start(name);
    env.start_controller(&["--leader-elect=false"]);
    deploy(&env, manifests);
    env
}

#[test]
fn a_web_metric_passes_on_ok_true_and_aborts_on_ok_false() {
    let port = serve_ok();
    let manifests = format!(
        r#"apiVersion: argoproj.io/v1alpha1
kind: AnalysisTemplate
metadata:
  name: web-check
spec:
  args:
  - name: check
  metrics:
  - name: ok
    successCondition: result == true
    provider:
      web:
        url: http://127.0.0.1:{port}/{{{{args.check}}}}
        jsonPath: "{{$.ok}}"
---
{}"#,
        web_rollout(&canary_with_check("web-check", "pass"))
    );
    let env = env_with("outcome-web", &manifests);
    release_checking(&env, "web:2", "pass");
    wait_for_phase(&env, RO, "Healthy", None, SETTLE);
    let run = run_in_phase(&env, "Successful", SETTLE);
    let measurement = &run["status"]["metricResults"][0]["measurements"][0];
    assert_eq!(measurement["phase"], "Successful", "{measurement}");
    assert_eq!(measurement["value"], "true", "{measurement}");

    release_checking(&env, "web:3", "fail");
    aborted(
        &env,
        "RolloutAborted: Rollout aborted update to revision 3",
        "Metric \"ok\" assessed Failed",
    );
    let run = run_in_phase(&env, "Failed", SETTLE);
    let measurement = &run["status"]["metricResults"][0]["measurements"][0];
    assert_eq!(measurement["value"], "false", "{measurement}");
}

#[test]
fn a_job_metric_passes_when_its_pod_exits_0_and_aborts_when_it_exits_1() {
    let manifests = format!(
        r#"apiVersion: argoproj.io/v1alpha1
kind: AnalysisTemplate
metadata:
  name: job-check
spec:
  args:
  - name: check
  metrics:
  - name: smoke
    provider:
      job:
        spec:
          backoffLimit: 0
          template:
            metadata:
              annotations:
                kubesim.ramp.dev/exit-code: "{{{{args.check}}}}"
                kubesim.ramp.dev/run-time: 1s
            spec:
              restartPolicy: Never
              containers:
              - name: smoke
                image: smoke:1
---
{}"#,
        web_rollout(&canary_with_check("job-check", "0"))
    );
    let env = env_with("outcome-job", &manifests);
    release_checking(&env, "web:2", "0");
    wait_for_phase(&env, RO, "Healthy", None, SETTLE);
    let run = run_in_phase(&env, "Successful", SETTLE);
    let uid = run["metadata"]["uid"].as_str().unwrap_or_default();
    let job = env.get_json(&["job", &format!("{uid}.smoke.1")]);
    assert_eq!(job["status"]["succeeded"], 1, "{}", job["status"]);
    let measurement = &run["status"]["metricResults"][0]["measurements"][0];
    assert_eq!(measurement["phase"], "Successful", "{measurement}");
    assert_eq!(
        measurement["metadata"]["job-name"],
        format!("{uid}.smoke.1")
    );

    release_checking(&env, "web:3", "1");
    aborted(
        &env,
        "RolloutAborted: Rollout aborted update to revision 3",
        "Metric \"smoke\" assessed Failed",
    );
    let run = run_in_phase(&env, "Failed", SETTLE);
    let uid = run["metadata"]["uid"].as_str().unwrap_or_default();
    let job = env.get_json(&["job", &format!("{uid}.smoke.1")]);
    assert_eq!(job["status"]["failed"], 1, "{}", job["status"]);
}
