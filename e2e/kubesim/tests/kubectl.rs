//! The real `kubectl` against kubesim: what people type when they try a demo or debug a test must work, and
//! print what it prints against a real cluster.

mod support;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc;

use k8s_openapi::api::apps::v1::Deployment;
use kube::api::{Api, Patch, PatchParams};
use serde_json::{Value, json};

use support::{DEADLINE, repo_root, rollouts, start};

/// A scratch directory for one test, removed when the test ends.
struct Scratch(PathBuf);

impl Scratch {
    fn new() -> Scratch {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "kubesim-kubectl-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).expect("scratch directory");
        Scratch(dir)
    }

    fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, text).expect("scratch file");
        path
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// kubectl pointed at one kubesim through a kubeconfig in a scratch directory.
struct Kubectl {
    kubeconfig: PathBuf,
    scratch: Scratch,
}

impl Kubectl {
    fn for_sim(sim: &kubesim::Kubesim) -> Kubectl {
        let scratch = Scratch::new();
        let kubeconfig = scratch.0.join("kubeconfig");
        sim.write_kubeconfig(&kubeconfig).expect("kubeconfig");
        Kubectl {
            kubeconfig,
            scratch,
        }
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new("kubectl");
        command
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .args(args)
            .env_remove("KUBECONFIG");
        command
    }

    /// Runs kubectl off the async runtime (kubesim serves on it meanwhile).
    async fn output(&self, args: &[&str]) -> Output {
        let mut command = self.command(args);
        let shown = args.join(" ");
        tokio::task::spawn_blocking(move || command.output())
            .await
            .expect("kubectl task")
            .unwrap_or_else(|e| panic!("cannot run kubectl {shown}: {e}"))
    }

    /// Runs kubectl and returns its standard output, failing the test if it fails.
    async fn run(&self, args: &[&str]) -> String {
        let out = self.output(args).await;
        assert!(
            out.status.success(),
            "kubectl {} failed: {}{}",
            args.join(" "),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Runs kubectl expecting it to fail, and returns its standard error.
    async fn fail(&self, args: &[&str]) -> String {
        let out = self.output(args).await;
        assert!(
            !out.status.success(),
            "kubectl {} should fail, printed {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8_lossy(&out.stderr).into_owned()
    }
}

fn path_arg(path: &Path) -> &str {
    path.to_str().expect("UTF-8 path")
}

fn crds_dir() -> String {
    repo_root().join("crds").display().to_string()
}

fn example(name: &str) -> String {
    repo_root()
        .join("examples")
        .join(name)
        .display()
        .to_string()
}

/// Each output line split into its whitespace-separated columns.
fn table(text: &str) -> Vec<Vec<String>> {
    text.lines()
        .map(|l| l.split_whitespace().map(str::to_string).collect())
        .collect()
}

fn row<'a>(rows: &'a [Vec<String>], name: &str) -> &'a [String] {
    rows.iter()
        .find(|r| r.first().is_some_and(|n| n == name))
        .unwrap_or_else(|| panic!("no row {name} in {rows:?}"))
}

const DEPLOYMENT: &str = "\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 2
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: web
        image: nginx:1
";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_creates_then_updates_crds_services_and_rollouts() {
    let sim = start().await;
    let kubectl = Kubectl::for_sim(&sim);
    let crds = crds_dir();

    let out = kubectl.run(&["apply", "-f", &crds]).await;
    for name in [
        "analysisruns",
        "analysistemplates",
        "clusteranalysistemplates",
        "rollouts",
    ] {
        assert!(
            out.contains(&format!(
                "customresourcedefinition.apiextensions.k8s.io/{name}.argoproj.io created"
            )),
            "{out}"
        );
    }
    let again = kubectl.run(&["apply", "-f", &crds]).await;
    assert_eq!(again.matches(" unchanged").count(), 4, "{again}");

    let canary = example("rollout-canary.yaml");
    let services = example("rollout-canary-services.yaml");
    let out = kubectl
        .run(&["apply", "-f", &canary, "-f", &services])
        .await;
    for line in [
        "rollout.argoproj.io/rollouts-demo created",
        "rollout.argoproj.io/canary-services-demo created",
        "service/canary-services-demo-canary created",
        "service/canary-services-demo-stable created",
    ] {
        assert!(out.contains(line), "{out}");
    }

    let text = std::fs::read_to_string(&canary)
        .unwrap()
        .replace("replicas: 5", "replicas: 7");
    let edited = kubectl.scratch.write("rollout.yaml", &text);
    let out = kubectl.run(&["apply", "-f", path_arg(&edited)]).await;
    assert_eq!(out.trim(), "rollout.argoproj.io/rollouts-demo configured");
    let out = kubectl.run(&["apply", "-f", &services]).await;
    assert!(
        out.contains("service/canary-services-demo-canary unchanged"),
        "{out}"
    );

    let stored = rollouts(&sim.client().unwrap())
        .get("rollouts-demo")
        .await
        .unwrap();
    assert_eq!(stored.data["spec"]["replicas"], 7);
    assert_eq!(stored.metadata.generation, Some(2));
    let last_applied = &stored.metadata.annotations.as_ref().unwrap()["kubectl.kubernetes.io/last-applied-configuration"];
    assert!(last_applied.contains("\"replicas\":7"), "{last_applied}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_prints_printer_columns_and_yaml() {
    let sim = start().await;
    let kubectl = Kubectl::for_sim(&sim);
    kubectl.run(&["apply", "-f", &crds_dir()]).await;
    kubectl
        .run(&["apply", "-f", &example("rollout-canary-services.yaml")])
        .await;

    let rows = table(&kubectl.run(&["get", "rollouts"]).await);
    assert_eq!(
        rows[0],
        [
            "NAME",
            "DESIRED",
            "CURRENT",
            "UP-TO-DATE",
            "AVAILABLE",
            "AGE"
        ]
    );
    let demo = row(&rows, "canary-services-demo");
    assert_eq!(demo[1], "4");
    assert!(demo.last().unwrap().ends_with('s'), "an age: {demo:?}");

    let rows = table(&kubectl.run(&["get", "svc"]).await);
    assert_eq!(
        rows[0],
        [
            "NAME",
            "TYPE",
            "CLUSTER-IP",
            "EXTERNAL-IP",
            "PORT(S)",
            "AGE"
        ]
    );
    let canary = row(&rows, "canary-services-demo-canary");
    assert_eq!(canary[1], "ClusterIP");
    assert!(canary[2].starts_with("10.96."), "{canary:?}");
    assert_eq!(
        (canary[3].as_str(), canary[4].as_str()),
        ("<none>", "80/TCP")
    );
    let wide = table(&kubectl.run(&["get", "svc", "-o", "wide"]).await);
    assert_eq!(wide[0].last().unwrap(), "SELECTOR");
    assert_eq!(
        row(&wide, "canary-services-demo-canary").last().unwrap(),
        "app=canary-services-demo"
    );

    let rows = table(&kubectl.run(&["get", "crd"]).await);
    assert_eq!(rows[0], ["NAME", "CREATED", "AT"]);
    assert_eq!(rows.len(), 5);

    let yaml = kubectl
        .run(&["get", "ro", "canary-services-demo", "-o", "yaml"])
        .await;
    let object: Value = serde_norway::from_str(&yaml).expect("kubectl prints YAML");
    assert_eq!(object["kind"], "Rollout");
    assert_eq!(object["apiVersion"], "argoproj.io/v1alpha1");
    assert_eq!(
        object["spec"]["strategy"]["canary"]["canaryService"],
        "canary-services-demo-canary"
    );
    assert!(object["metadata"]["uid"].is_string());

    let err = kubectl.fail(&["get", "ro", "missing"]).await;
    assert!(
        err.contains("Error from server (NotFound): rollouts.argoproj.io \"missing\" not found"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn patch_scale_and_delete() {
    let sim = start().await;
    let kubectl = Kubectl::for_sim(&sim);
    kubectl.run(&["apply", "-f", &crds_dir()]).await;
    kubectl
        .run(&["apply", "-f", &example("rollout-canary.yaml")])
        .await;

    let out = kubectl
        .run(&[
            "patch",
            "rollout",
            "rollouts-demo",
            "--type",
            "merge",
            "-p",
            r#"{"spec":{"paused":true}}"#,
        ])
        .await;
    assert_eq!(out.trim(), "rollout.argoproj.io/rollouts-demo patched");
    kubectl
        .run(&[
            "patch",
            "rollout",
            "rollouts-demo",
            "--type",
            "json",
            "-p",
            r#"[{"op": "replace", "path": "/spec/template/spec/containers/0/image", "value": "argoproj/rollouts-demo:yellow"}]"#,
        ])
        .await;
    let shown = kubectl
        .run(&[
            "get",
            "rollout",
            "rollouts-demo",
            "-o",
            "jsonpath={.spec.paused} {.spec.template.spec.containers[0].image} {.metadata.generation}",
        ])
        .await;
    assert_eq!(shown, "true argoproj/rollouts-demo:yellow 3");

    let out = kubectl
        .run(&["scale", "rollout", "rollouts-demo", "--replicas=2"])
        .await;
    assert_eq!(out.trim(), "rollout.argoproj.io/rollouts-demo scaled");
    let stored = rollouts(&sim.client().unwrap())
        .get("rollouts-demo")
        .await
        .unwrap();
    assert_eq!(stored.data["spec"]["replicas"], 2);

    let out = kubectl.run(&["delete", "rollout", "rollouts-demo"]).await;
    assert_eq!(out.trim(), "rollout.argoproj.io \"rollouts-demo\" deleted");
    let rest = kubectl.run(&["get", "rollouts", "-o", "name"]).await;
    assert_eq!(rest.trim(), "");
    let err = kubectl.fail(&["delete", "rollout", "rollouts-demo"]).await;
    assert!(err.contains("(NotFound)"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wait_for_a_deployment_then_roll_and_scale_it() {
    let sim = start().await;
    let kubectl = Kubectl::for_sim(&sim);
    let manifest = kubectl.scratch.write("deployment.yaml", DEPLOYMENT);
    let out = kubectl.run(&["apply", "-f", path_arg(&manifest)]).await;
    assert_eq!(out.trim(), "deployment.apps/web created");
    let out = kubectl
        .run(&[
            "wait",
            "--for=condition=Available",
            "deployment/web",
            "--timeout=20s",
        ])
        .await;
    assert_eq!(out.trim(), "deployment.apps/web condition met");
    let rows = table(&kubectl.run(&["get", "deployment", "web"]).await);
    assert_eq!(rows[0], ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"]);
    assert_eq!(row(&rows, "web")[1..4], ["2/2", "2", "2"]);
    let pods = table(&kubectl.run(&["get", "pods", "-l", "app=web"]).await);
    assert_eq!(pods[0], ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]);
    assert_eq!(pods.len(), 3);
    for pod in &pods[1..] {
        assert_eq!(pod[1..4], ["1/1", "Running", "0"]);
    }

    let rolled = kubectl.scratch.write(
        "deployment-2.yaml",
        &DEPLOYMENT.replace("nginx:1", "nginx:2"),
    );
    let out = kubectl.run(&["apply", "-f", path_arg(&rolled)]).await;
    assert_eq!(out.trim(), "deployment.apps/web configured");
    let out = kubectl
        .run(&["rollout", "status", "deployment/web", "--timeout=20s"])
        .await;
    assert!(out.contains("successfully rolled out"), "{out}");

    let out = kubectl
        .run(&["scale", "deployment", "web", "--replicas=3"])
        .await;
    assert_eq!(out.trim(), "deployment.apps/web scaled");
    kubectl
        .run(&[
            "wait",
            "--for=jsonpath={.status.readyReplicas}=3",
            "deployment/web",
            "--timeout=20s",
        ])
        .await;
    let out = kubectl
        .run(&["delete", "deployment", "web", "--cascade=foreground"])
        .await;
    assert_eq!(out.trim(), "deployment.apps \"web\" deleted");
    let left = kubectl
        .run(&["get", "replicasets,pods", "-l", "app=web", "-o", "name"])
        .await;
    assert_eq!(left.trim(), "", "dependents are collected");
}

/// A child process killed when the test ends, pass or fail.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_watch_prints_each_change() {
    let sim = start().await;
    let kubectl = Kubectl::for_sim(&sim);
    kubectl.run(&["apply", "-f", &crds_dir()]).await;
    kubectl
        .run(&["apply", "-f", &example("rollout-canary.yaml")])
        .await;

    let mut child = Killed(
        kubectl
            .command(&["get", "rollouts", "--watch"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("kubectl get --watch starts"),
    );
    let stdout = child.0.stdout.take().expect("piped stdout");
    let (lines, received) = mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if lines.send(line).is_err() {
                break;
            }
        }
    });
    let next_line = || {
        received
            .recv_timeout(DEADLINE)
            .expect("kubectl prints a line in time")
    };
    let header = next_line();
    assert!(header.starts_with("NAME"), "{header}");
    let first = next_line();
    assert_eq!(table(&first)[0][..2], ["rollouts-demo", "5"]);

    rollouts(&sim.client().unwrap())
        .patch(
            "rollouts-demo",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 8}})),
        )
        .await
        .unwrap();
    let changed = next_line();
    assert_eq!(table(&changed)[0][..2], ["rollouts-demo", "8"]);
    drop(child);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn imperative_creates_send_protobuf_and_are_refused() {
    let sim = start().await;
    let kubectl = Kubectl::for_sim(&sim);
    let err = kubectl
        .fail(&["create", "deployment", "imperative", "--image=nginx"])
        .await;
    assert!(
        err.contains("the body of the request was in an unknown format - accepted media types include: application/json, application/yaml"),
        "{err}"
    );
    let deployments: Api<Deployment> = Api::default_namespaced(sim.client().unwrap());
    assert!(deployments.get_opt("imperative").await.unwrap().is_none());
    // The same object through `apply -f` (JSON) works.
    let manifest = kubectl.scratch.write(
        "imperative.yaml",
        &DEPLOYMENT.replace("name: web\n", "name: imperative\n"),
    );
    kubectl.run(&["apply", "-f", path_arg(&manifest)]).await;
    assert!(deployments.get_opt("imperative").await.unwrap().is_some());
}
