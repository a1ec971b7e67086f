//! The install in `manifests/`: it builds with kustomize into the expected objects, applies to an API
//! server, and its RBAC grants exactly what `ramp-controller` asks for in a real run.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;

use crate::support::*;

/// Rules in the install that the run below does not exercise, each as (verb, "group/resource", why it is
/// needed). Empty today: the run reaches every request the controller can make. A grant for code the run
/// cannot reach (a provider that needs a real cluster) goes here with its reason.
const UNUSED_BUT_NEEDED: &[(&str, &str, &str)] = &[
    (
        "get",
        "/secrets",
        "secretKeyRef analysis arguments (e2e/scenarios/analysis.rs)",
    ),
    (
        "get",
        "batch/jobs",
        "Job analysis metrics (e2e/scenarios/analysis.rs)",
    ),
    (
        "create",
        "batch/jobs",
        "Job analysis metrics (e2e/scenarios/analysis.rs)",
    ),
    (
        "delete",
        "batch/jobs",
        "terminating a Job analysis metric (e2e/scenarios/analysis.rs)",
    ),
    (
        "get",
        "apps/replicasets",
        "reading what holds a taken ReplicaSet name (e2e/scenarios/releases.rs, collision)",
    ),
];

/// Every object `kubectl kustomize manifests/` renders.
fn rendered() -> Vec<Value> {
    let out = std::process::Command::new("kubectl")
        .args(["kustomize", &format!("{REPO}/manifests")])
        .output()
        .expect("kubectl runs");
    assert!(
        out.status.success(),
        "kubectl kustomize manifests/ failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    serde_norway::Deserializer::from_str(&text)
        .map(|doc| Value::deserialize(doc).expect("kustomize prints YAML"))
        .filter(|v| !v.is_null())
        .collect()
}

fn find<'a>(objects: &'a [Value], kind: &str, name: &str) -> &'a Value {
    objects
        .iter()
        .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("manifests/ has no {kind} {name}"))
}

#[test]
fn the_kustomization_renders_crds_namespace_rbac_deployment_and_service() {
    let objects = rendered();
    let kinds: BTreeSet<(String, String)> = objects
        .iter()
        .map(|o| {
            (
                o["kind"].as_str().unwrap_or_default().to_string(),
                o["metadata"]["name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            )
        })
        .collect();
    let expected: BTreeSet<(String, String)> = [
        ("CustomResourceDefinition", "rollouts.argoproj.io"),
        ("CustomResourceDefinition", "analysisruns.argoproj.io"),
        ("CustomResourceDefinition", "analysistemplates.argoproj.io"),
        (
            "CustomResourceDefinition",
            "clusteranalysistemplates.argoproj.io",
        ),
        ("Namespace", "ramp-system"),
        ("ServiceAccount", "ramp-controller"),
        ("ClusterRole", "ramp-controller"),
        ("ClusterRoleBinding", "ramp-controller"),
        ("Role", "ramp-controller-leader-election"),
        ("RoleBinding", "ramp-controller-leader-election"),
        ("Deployment", "ramp-controller"),
        ("Service", "ramp-controller-metrics"),
    ]
    .iter()
    .map(|(k, n)| (k.to_string(), n.to_string()))
    .collect();
    assert_eq!(kinds, expected);
    for o in &objects {
        let namespaced = !matches!(
            o["kind"].as_str(),
            Some("CustomResourceDefinition" | "Namespace" | "ClusterRole" | "ClusterRoleBinding")
        );
        if namespaced {
            assert_eq!(o["metadata"]["namespace"], "ramp-system", "{}", o["kind"]);
        }
    }

    let deployment = find(&objects, "Deployment", "ramp-controller");
    let spec = &deployment["spec"];
    assert_eq!(spec["replicas"], 2);
    let pod = &spec["template"]["spec"];
    assert_eq!(pod["serviceAccountName"], "ramp-controller");
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    assert_eq!(
        pod["securityContext"]["seccompProfile"]["type"],
        "RuntimeDefault"
    );
    let containers = pod["containers"].as_array().expect("containers");
    assert_eq!(containers.len(), 1);
    let c = &containers[0];
    assert_eq!(c["image"], "ramp-controller:0.1.0");
    let security = &c["securityContext"];
    assert_eq!(security["readOnlyRootFilesystem"], true);
    assert_eq!(security["allowPrivilegeEscalation"], false);
    assert_eq!(security["capabilities"]["drop"], serde_json::json!(["ALL"]));
    for resource in ["cpu", "memory"] {
        assert!(
            c["resources"]["requests"][resource].is_string(),
            "request {resource}"
        );
        assert!(
            c["resources"]["limits"][resource].is_string(),
            "limit {resource}"
        );
    }
    let env: BTreeMap<&str, &Value> = c["env"]
        .as_array()
        .expect("env")
        .iter()
        .map(|e| (e["name"].as_str().unwrap_or_default(), e))
        .collect();
    assert_eq!(env["RAMP_LEADER_ELECT"]["value"], "true");
    assert_eq!(
        env["POD_NAMESPACE"]["valueFrom"]["fieldRef"]["fieldPath"],
        "metadata.namespace"
    );
    assert_eq!(
        env["POD_NAME"]["valueFrom"]["fieldRef"]["fieldPath"],
        "metadata.name"
    );
    // The probes and the Service reach the ports the binary listens on.
    let port = |name: &str| {
        c["ports"]
            .as_array()
            .and_then(|ports| ports.iter().find(|p| p["name"] == name))
            .map(|p| p["containerPort"].as_i64().unwrap_or_default())
            .unwrap_or_else(|| panic!("no container port {name}"))
    };
    let listens = |var: &str| {
        env[var]["value"]
            .as_str()
            .and_then(|a| a.rsplit(':').next())
            .and_then(|p| p.parse::<i64>().ok())
            .unwrap_or_else(|| panic!("{var} has no port"))
    };
    assert_eq!(port("healthz"), listens("RAMP_HEALTH_ADDR"));
    assert_eq!(port("metrics"), listens("RAMP_METRICS_ADDR"));
    assert_eq!(c["livenessProbe"]["httpGet"]["path"], "/healthz");
    assert_eq!(c["livenessProbe"]["httpGet"]["port"], "healthz");
    assert_eq!(c["readinessProbe"]["httpGet"]["path"], "/readyz");
    assert_eq!(c["readinessProbe"]["httpGet"]["port"], "healthz");

    let service = find(&objects, "Service", "ramp-controller-metrics");
    assert_eq!(
        service["spec"]["selector"], spec["selector"]["matchLabels"],
        "the metrics Service selects the controller's pods"
    );
    assert_eq!(service["spec"]["ports"][0]["targetPort"], "metrics");

    for binding in [
        find(&objects, "ClusterRoleBinding", "ramp-controller"),
        find(&objects, "RoleBinding", "ramp-controller-leader-election"),
    ] {
        assert_eq!(
            binding["subjects"],
            serde_json::json!([{"kind": "ServiceAccount", "name": "ramp-controller", "namespace": "ramp-system"}])
        );
    }
}

/// A granted (verb, group, resource[/subresource]).
type Grant = (String, String, String);

/// Every (verb, group, resource) a Role or ClusterRole's rules grant, expanded.
fn grants(role: &Value) -> BTreeSet<Grant> {
    let strings = |v: &Value| -> Vec<String> {
        v.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|s| s.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut out = BTreeSet::new();
    for rule in role["rules"].as_array().expect("rules") {
        for group in strings(&rule["apiGroups"]) {
            for resource in strings(&rule["resources"]) {
                for verb in strings(&rule["verbs"]) {
                    assert_ne!(verb, "*", "no wildcard verbs");
                    assert_ne!(resource, "*", "no wildcard resources");
                    out.insert((verb, group.clone(), resource.clone()));
                }
            }
        }
    }
    out
}

/// `controller_clientset_k8s_request_total` summed by (verb, kind), from a scrape.
fn counted_requests(metrics: &str) -> BTreeMap<(String, String), u64> {
    let mut out = BTreeMap::new();
    for line in metrics.lines() {
        let Some(rest) = line.strip_prefix("controller_clientset_k8s_request_total{") else {
            continue;
        };
        let Some((labels, value)) = rest.rsplit_once("} ") else {
            continue;
        };
        let label = |name: &str| {
            labels
                .split(',')
                .find_map(|kv| kv.strip_prefix(&format!("{name}=\"")))
                .map(|v| v.trim_end_matches('"').to_string())
                .unwrap_or_default()
        };
        *out.entry((label("verb"), label("kind"))).or_default() +=
            value.trim().parse::<u64>().unwrap_or(0);
    }
    out
}

/// The controller's requests as kubesim counted them: (verb, group, resource) -> count.
fn controller_requests(env: &Env) -> BTreeMap<Grant, u64> {
    let mut out = BTreeMap::new();
    for c in env.sim.request_counts() {
        if c.key.user_agent.starts_with("ramp-controller/") {
            *out.entry((
                c.key.verb.clone(),
                c.key.group.clone(),
                c.key.resource.clone(),
            ))
            .or_default() += c.count;
        }
    }
    out
}

fn counts(env: &Env, rollout: &str) -> Vec<(i64, i64)> {
    env.replica_sets(rollout)
        .iter()
        .map(|r| (r.1, r.2))
        .collect()
}

fn wait_counts(env: &Env, rollout: &str, want: &[(i64, i64)]) {
    wait_for(&format!("{rollout} ReplicaSets {want:?}"), SETTLE, || {
        let now = counts(env, rollout);
        if now == want {
            Ok(())
        } else {
            Err(format!("{now:?}"))
        }
    });
}

const SETTLE: Duration = Duration::from_secs(20);

/// Runs the controller as installed (leader election on, its Lease in ramp-system) through a canary that
/// stops at an analysis step and is aborted, a second update that retires the first canary, and a
/// blue-green promotion and restart; then checks its requests against the RBAC in manifests/.
#[test]
fn the_cluster_role_grants_exactly_what_the_controller_uses() {
    let mut env = Env::start("rbac");
    env.kubectl_ok(&["apply", "-k", &format!("{REPO}/manifests")]);
    let metrics_port = free_port();
    let metrics_addr = format!("127.0.0.1:{metrics_port}");
    env.start_controller_with(
        &[
            "--leader-elect=true",
            "--lease-namespace",
            "ramp-system",
            "--lease-duration",
            "3",
            "--lease-renew-deadline",
            "2",
            "--lease-retry-period",
            "1",
        ],
        &metrics_addr,
    );
    for file in ["analysis-templates.yaml", "cluster-analysis-templates.yaml"] {
        env.kubectl_ok(&["apply", "-f", &format!("{REPO}/examples/{file}")]);
    }

    // A canary that reaches its analysis step (nothing runs the analysis, so it waits there), is aborted,
    // then updated again so the first canary's ReplicaSet and AnalysisRun are retired and deleted.
    const STEP: &str = "analysis-step-demo";
    let canary = example_copy(
        &env,
        "rollout-analysis-step.yaml",
        &[
            ("revisionHistoryLimit: 2", "revisionHistoryLimit: 0"),
            ("duration: 10s", "duration: 1s"),
        ],
    );
    env.kubectl_ok(&["apply", "-f", canary.to_str().unwrap_or_default()]);
    wait_for_phase(&env, STEP, "Healthy", None, SETTLE);
    set_image(&env, STEP, "argoproj/rollouts-demo:yellow");
    wait_for("the step AnalysisRun", SETTLE, || {
        let runs = env.get_json(&["analysisruns"]);
        match runs["items"].as_array().map(Vec::len) {
            Some(1) => Ok(()),
            other => Err(format!("{other:?}")),
        }
    });
    set_abort(&env, STEP, true);
    wait_for_phase(&env, STEP, "Degraded", None, SETTLE);
    wait_counts(&env, STEP, &[(5, 5), (0, 0)]);
    wait_for("the step AnalysisRun terminated", SETTLE, || {
        let runs = env.get_json(&["analysisruns"]);
        if runs["items"][0]["spec"]["terminate"] == true {
            Ok(())
        } else {
            Err(runs["items"][0]["spec"].to_string())
        }
    });
    let aborted_hash = env.replica_sets(STEP)[1].0.clone();
    set_image(&env, STEP, "argoproj/rollouts-demo:green");
    wait_for("the aborted canary and its run deleted", SETTLE, || {
        let rs = env.replica_sets(STEP);
        let runs = env.get_json(&["analysisruns"]);
        let run_hashes: Vec<String> = runs["items"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|r| {
                        r["metadata"]["labels"]["rollouts-pod-template-hash"]
                            .as_str()
                            .map(str::to_string)
                    })
                    .collect()
            })
            .unwrap_or_default();
        let gone = !rs.iter().any(|r| r.0 == aborted_hash) && !run_hashes.contains(&aborted_hash);
        if gone && rs.len() == 2 {
            Ok(())
        } else {
            Err(format!("{rs:?} runs {run_hashes:?}"))
        }
    });

    // Blue-green: Services switched, the old version scaled down after the delay, then a restart.
    const BG: &str = "bluegreen-demo";
    let bluegreen = example_copy(
        &env,
        "rollout-bluegreen.yaml",
        &[("scaleDownDelaySeconds: 30", "scaleDownDelaySeconds: 1")],
    );
    env.kubectl_ok(&["apply", "-f", bluegreen.to_str().unwrap_or_default()]);
    wait_for_phase(&env, BG, "Healthy", None, SETTLE);
    set_image(&env, BG, "argoproj/rollouts-demo:green");
    wait_for_phase(&env, BG, "Paused", None, SETTLE);
    promote(&env, BG);
    wait_for_phase(&env, BG, "Healthy", None, SETTLE);
    wait_counts(&env, BG, &[(0, 0), (3, 3)]);
    let restart_at = jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string();
    env.kubectl_ok(&[
        "patch",
        "rollout",
        BG,
        "--type",
        "merge",
        "-p",
        &format!(r#"{{"spec":{{"restartAt":"{restart_at}"}}}}"#),
    ]);
    wait_for("the restart done", SETTLE, || {
        let ro = env.rollout(BG);
        if ro["status"]["restartedAt"].as_str() == Some(restart_at.as_str()) {
            Ok(())
        } else {
            Err(ro["status"].to_string())
        }
    });

    // What the controller asked for, against what the install grants.
    let objects = rendered();
    let cluster_role = grants(find(&objects, "ClusterRole", "ramp-controller"));
    let leader_role = grants(find(&objects, "Role", "ramp-controller-leader-election"));
    let used = controller_requests(&env);
    assert!(
        !used.is_empty(),
        "kubesim counted the controller's requests"
    );
    for (verb, group, resource) in used.keys() {
        let grant = (verb.clone(), group.clone(), resource.clone());
        let granted =
            cluster_role.contains(&grant) || (resource == "leases" && leader_role.contains(&grant));
        assert!(
            granted,
            "ramp-controller sent {verb} {group}/{resource}, which manifests/rbac.yaml does not grant"
        );
    }
    let used_grants: BTreeSet<Grant> = used.keys().cloned().collect();
    for grant in cluster_role.iter().chain(&leader_role) {
        let explained = UNUSED_BUT_NEEDED.iter().any(|(verb, group_resource, _)| {
            *verb == grant.0 && *group_resource == format!("{}/{}", grant.1, grant.2)
        });
        assert!(
            used_grants.contains(grant) || explained,
            "manifests/rbac.yaml grants {} {}/{}, which the run never used: remove it, or say why it is needed in UNUSED_BUT_NEEDED",
            grant.0,
            grant.1,
            grant.2
        );
    }

    // The controller's own count of its requests agrees with the API server's, write for write.
    wait_for(
        "the controller's request counts match kubesim's",
        SETTLE,
        || {
            let scraped = counted_requests(&scrape(metrics_port)?);
            let mut mismatches = Vec::new();
            for ((verb, _, resource), count) in controller_requests(&env) {
                if !kubesim::faults::WRITE_VERBS.contains(&verb.as_str()) || resource == "leases" {
                    continue;
                }
                let ours = scraped.get(&(verb.clone(), resource.clone())).copied();
                if ours != Some(count) {
                    mismatches.push(format!(
                        "{verb} {resource}: kubesim {count}, metric {ours:?}"
                    ));
                }
            }
            if mismatches.is_empty() {
                Ok(())
            } else {
                Err(mismatches.join("; "))
            }
        },
    );

    // A deleted Rollout's own series leave /metrics (its request counts stay, to keep matching the
    // API server's), so the controller's memory does not grow with Rollouts created and deleted.
    let rollout_series = |text: &str| -> Vec<String> {
        text.lines()
            .filter(|l| {
                l.contains(&format!("name=\"{STEP}\""))
                    && !l.starts_with("controller_clientset_k8s_request_total")
            })
            .map(str::to_string)
            .collect()
    };
    let before = rollout_series(&scrape(metrics_port).unwrap_or_default());
    for family in [
        "rollout_info{",
        "rollout_events_total{",
        "rollout_reconcile_bucket{",
    ] {
        assert!(
            before.iter().any(|l| l.starts_with(family)),
            "{family} for {STEP} before its deletion: {before:?}"
        );
    }
    env.kubectl_ok(&["delete", "rollout", STEP]);
    wait_for("the deleted rollout's series gone", SETTLE, || {
        let left = rollout_series(&scrape(metrics_port)?);
        if left.is_empty() {
            Ok(())
        } else {
            Err(left.join("\n"))
        }
    });
}
