//! `kubectl ramp demo`: Ramp on a laptop with no cluster. Starts kubesim in this process, installs the
//! CRDs, runs the controller, serves an error-rate endpoint for a Web analysis, and narrates two
//! releases with the `get rollout` tree on screen: a good version that passes its analysis and is
//! promoted step by step, then a bad version that fails its analysis and is aborted by Ramp alone.
//!
//! Everything lives in this process; Ctrl-C (or the end of the demo) stops it all and removes the
//! kubeconfig the demo wrote.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use jiff::Timestamp;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, PostParams};

use super::cluster::Cluster;
use super::get::{Snapshot, fetch, render_rollout};
use super::{control, set_image};
use crate::api::{AnalysisTemplate, Rollout};
use crate::controller::{self, Settings};

mod error_rate;

/// The demo's AnalysisTemplate and Rollout; `DEMO_METRICS_URL` becomes the demo's own endpoint.
const MANIFESTS: &str = include_str!("demo/rollout.yaml");
const NAME: &str = "rollouts-demo";
const CONTAINER: &str = "rollouts-demo";
const GOOD_IMAGE: &str = "argoproj/rollouts-demo:yellow";
const BAD_IMAGE: &str = "argoproj/rollouts-demo:bad-red";

/// What the demo does besides the releases themselves.
#[derive(Clone, Debug)]
pub struct DemoOptions {
    /// Where to write kubesim's kubeconfig, so kubectl can watch alongside. Removed when the demo ends.
    pub kubeconfig_out: PathBuf,
    /// How long the demo waits at the indefinite pause before promoting.
    pub promote_after: Duration,
    /// Exit once both releases are done instead of running until Ctrl-C.
    pub exit_when_done: bool,
    /// Colour the `get rollout` trees.
    pub colour: bool,
}

/// Runs the demo until it is done (with `exit_when_done`) or interrupted, then stops kubesim and the
/// controller and removes the kubeconfig file.
pub async fn demo<W: Write>(options: &DemoOptions, out: &mut W) -> anyhow::Result<()> {
    let started = Instant::now();
    let result = tokio::select! {
        result = run(options, out, started) => result,
        interrupted = tokio::signal::ctrl_c() => {
            interrupted.context("cannot listen for Ctrl-C")?;
            writeln!(out, "\ninterrupted: stopping kubesim and the controller")?;
            Ok(())
        }
    };
    // `run` is dropped by now, and with it kubesim, the controller and the metrics endpoint.
    match std::fs::remove_file(&options.kubeconfig_out) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => writeln!(
            out,
            "cannot remove {}: {e}; delete it by hand",
            options.kubeconfig_out.display()
        )?,
    }
    result
}

/// Aborts a spawned task when dropped, so nothing the demo started outlives it.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

async fn run<W: Write>(options: &DemoOptions, out: &mut W, started: Instant) -> anyhow::Result<()> {
    let mut narrator = Narrator {
        out,
        started,
        colour: options.colour,
        last: String::new(),
        runs: BTreeMap::new(),
    };
    let sim = kubesim::Kubesim::start(kubesim::Config::default()).await?;
    sim.write_kubeconfig(&options.kubeconfig_out)?;
    narrator.say(&format!("kubesim serves the Kubernetes API at {}", sim.url))?;
    narrator.say(&format!(
        "watch along with: kubectl --kubeconfig {} get rollouts,rs,pods,analysisruns -w",
        options.kubeconfig_out.display()
    ))?;
    let client = sim.client()?;
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    for (_, crd) in crate::api::crd::all() {
        crds.create(&PostParams::default(), &crd)
            .await
            .context("cannot install the CRDs")?;
    }
    narrator.say("installed the Rollout, AnalysisRun and AnalysisTemplate CRDs")?;
    let settings = Settings {
        namespace: Some("default".into()),
        instance_id: None,
        identity: "ramp-demo".into(),
        lease: None,
        metrics_address: "127.0.0.1:0".parse()?,
        health_address: "127.0.0.1:0".parse()?,
        concurrency: 4,
        prometheus_address: None,
    };
    let controller = controller::run(client.clone(), settings);
    let _controller = AbortOnDrop(tokio::spawn(async move {
        if let Err(e) = controller.await {
            eprintln!("ramp-controller stopped: {e:#}");
        }
    }));
    narrator.say("started ramp-controller")?;
    let (metrics_url, _metrics) = error_rate::serve().await?;
    narrator.say(&format!(
        "serving error rates at {metrics_url}/error-rate: 1% for every image, 42% for images tagged bad-*"
    ))?;

    let cluster = Cluster {
        client,
        namespace: "default".into(),
    };
    apply_manifests(&cluster, &metrics_url).await?;
    narrator.say("applied the demo: AnalysisTemplate error-rate (Web metric, success when result < 0.05, 3 measurements 2s apart) and Rollout rollouts-demo (5 replicas: 20% / analysis / pause / 60% / 3s / 80% / 3s)")?;
    let first = follow(&cluster, &mut narrator, Duration::from_secs(60), |s| {
        phase_is(s, "Healthy")
    })
    .await?;
    narrator.tree(&first)?;

    narrator.say(&format!("release 1: {GOOD_IMAGE}, a good version"))?;
    let line = set_image::run(&cluster, NAME, &format!("{CONTAINER}={GOOD_IMAGE}")).await?;
    narrator.say(&format!(
        "$ kubectl ramp set image {NAME} {CONTAINER}={GOOD_IMAGE}: {line}"
    ))?;
    let paused = follow(&cluster, &mut narrator, Duration::from_secs(60), |s| {
        phase_is(s, "Paused")
    })
    .await?;
    narrator.tree(&paused)?;
    narrator.say(&format!(
        "the analysis passed and the release waits for a person; promoting in {:?}",
        options.promote_after
    ))?;
    tokio::time::sleep(options.promote_after).await;
    let line = control::promote(&cluster, NAME, false).await?;
    narrator.say(&format!("$ kubectl ramp promote {NAME}: {line}"))?;
    let released = follow(&cluster, &mut narrator, Duration::from_secs(90), |s| {
        phase_is(s, "Healthy") && stable_hash(s) == current_hash(s)
    })
    .await?;
    narrator.tree(&released)?;
    let stable = stable_hash(&released);
    narrator.say(&format!("released: {GOOD_IMAGE} is stable ({stable})"))?;

    narrator.say(&format!(
        "release 2: {BAD_IMAGE}, a version that fails 42% of requests"
    ))?;
    let line = set_image::run(&cluster, NAME, &format!("{CONTAINER}={BAD_IMAGE}")).await?;
    narrator.say(&format!(
        "$ kubectl ramp set image {NAME} {CONTAINER}={BAD_IMAGE}: {line}"
    ))?;
    let aborted = follow(&cluster, &mut narrator, Duration::from_secs(60), |s| {
        phase_is(s, "Degraded") && stable_serves_everything(s, &stable)
    })
    .await?;
    narrator.tree(&aborted)?;
    narrator.say(&format!(
        "aborted by its own analysis, with no one paged: all 5 pods and all traffic are back on stable {stable}"
    ))?;

    if options.exit_when_done {
        narrator.say("done")?;
        return Ok(());
    }
    narrator.say(
        "kubesim and the controller keep running for your own kubectl; Ctrl-C stops everything",
    )?;
    std::future::pending::<()>().await;
    Ok(())
}

/// Creates the AnalysisTemplate and the Rollout, pointing the Web metric at the demo's endpoint.
async fn apply_manifests(cluster: &Cluster, metrics_url: &str) -> anyhow::Result<()> {
    let text = MANIFESTS.replace("DEMO_METRICS_URL", metrics_url);
    let mut documents = serde_norway::Deserializer::from_str(&text);
    let template: AnalysisTemplate = documents
        .next()
        .map(serde::Deserialize::deserialize)
        .context("the demo manifests hold no AnalysisTemplate")?
        .context("the demo AnalysisTemplate does not parse")?;
    let rollout: Rollout = documents
        .next()
        .map(serde::Deserialize::deserialize)
        .context("the demo manifests hold no Rollout")?
        .context("the demo Rollout does not parse")?;
    let namespace = &cluster.namespace;
    Api::<AnalysisTemplate>::namespaced(cluster.client.clone(), namespace)
        .create(&PostParams::default(), &template)
        .await
        .context("cannot create the demo AnalysisTemplate")?;
    cluster
        .rollouts()
        .create(&PostParams::default(), &rollout)
        .await
        .context("cannot create the demo Rollout")?;
    Ok(())
}

fn status_of(snapshot: &Snapshot) -> crate::api::RolloutStatus {
    snapshot.rollout.status.clone().unwrap_or_default()
}

fn phase_is(snapshot: &Snapshot, phase: &str) -> bool {
    status_of(snapshot).phase == phase
}

fn stable_hash(snapshot: &Snapshot) -> String {
    status_of(snapshot).stable_rs
}

fn current_hash(snapshot: &Snapshot) -> String {
    status_of(snapshot).current_pod_hash
}

/// True when the ReplicaSet with hash `stable` has every replica available and every other one none.
fn stable_serves_everything(snapshot: &Snapshot, stable: &str) -> bool {
    let wanted = snapshot.rollout.spec.replicas.unwrap_or(1);
    snapshot.replica_sets.iter().all(|rs| {
        let hash = rs
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(crate::api::constants::POD_TEMPLATE_HASH_LABEL))
            .map(String::as_str);
        let available = rs
            .status
            .as_ref()
            .and_then(|s| s.available_replicas)
            .unwrap_or(0);
        let desired = rs.spec.as_ref().and_then(|s| s.replicas).unwrap_or(0);
        if hash == Some(stable) {
            available == wanted && desired == wanted
        } else {
            available == 0 && desired == 0
        }
    })
}

/// Polls the rollout's tree until `done` says so (once the controller has seen the latest spec),
/// narrating every change.
async fn follow<W: Write>(
    cluster: &Cluster,
    narrator: &mut Narrator<'_, W>,
    timeout: Duration,
    done: impl Fn(&Snapshot) -> bool,
) -> anyhow::Result<Snapshot> {
    let deadline = Instant::now() + timeout;
    loop {
        let snapshot = fetch(cluster, NAME).await?;
        narrator.report(&snapshot)?;
        let rollout = &snapshot.rollout;
        let observed = rollout.status.as_ref().is_some_and(|s| {
            s.observed_generation == rollout.metadata.generation.unwrap_or(0).to_string()
        });
        if observed && done(&snapshot) {
            return Ok(snapshot);
        }
        if Instant::now() > deadline {
            anyhow::bail!(
                "the demo rollout did not get there within {timeout:?}; last state: {}",
                narrator.last
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

struct Narrator<'a, W: Write> {
    out: &'a mut W,
    started: Instant,
    colour: bool,
    /// The last rollout line said, to say only changes.
    last: String,
    /// The last phase said per AnalysisRun.
    runs: BTreeMap<String, String>,
}

impl<W: Write> Narrator<'_, W> {
    fn say(&mut self, line: &str) -> anyhow::Result<()> {
        writeln!(
            self.out,
            "[{:>5.1}s] {line}",
            self.started.elapsed().as_secs_f64()
        )?;
        self.out.flush()?;
        Ok(())
    }

    /// Says what changed: the rollout's phase, step and replicas, and each AnalysisRun's phase.
    fn report(&mut self, snapshot: &Snapshot) -> anyhow::Result<()> {
        let rollout = &snapshot.rollout;
        let status = status_of(snapshot);
        let steps = rollout.spec.canary_steps().len();
        let step = status
            .current_step_index
            .map(|i| format!("{i}/{steps}"))
            .unwrap_or_else(|| "-".into());
        let message = if status.message.is_empty() {
            String::new()
        } else {
            format!(" - {}", status.message)
        };
        let line = format!(
            "{}{message}  step {step}  replicas: {} updated, {} available of {}",
            status.phase,
            status.updated_replicas,
            status.available_replicas,
            rollout.spec.replicas.unwrap_or(1)
        );
        // Until the controller writes a status there is nothing to say about the rollout.
        if rollout.status.is_some() && line != self.last {
            self.say(&line)?;
            self.last = line;
        }
        for run in &snapshot.analysis_runs {
            let name = run.metadata.name.clone().unwrap_or_default();
            let run_status = run.status.clone().unwrap_or_default();
            let phase = run_status.phase.unwrap_or_default().to_string();
            if self.runs.get(&name) != Some(&phase) {
                let message = if run_status.message.is_empty() {
                    String::new()
                } else {
                    format!(" - {}", run_status.message)
                };
                self.say(&format!("AnalysisRun {name}: {phase}{message}"))?;
                self.runs.insert(name, phase);
            }
        }
        Ok(())
    }

    /// Shows the `kubectl ramp get rollout` tree.
    fn tree(&mut self, snapshot: &Snapshot) -> anyhow::Result<()> {
        writeln!(self.out)?;
        write!(
            self.out,
            "{}",
            render_rollout(snapshot, Timestamp::now(), self.colour)
        )?;
        writeln!(self.out)?;
        self.out.flush()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_images_fail_their_analysis_and_good_ones_pass() {
        assert_eq!(error_rate::of(BAD_IMAGE), 0.42);
        assert_eq!(error_rate::of(GOOD_IMAGE), 0.01);
        assert_eq!(error_rate::of("registry:5000/bad-app:v2"), 0.01);
        assert_eq!(error_rate::of("no-tag"), 0.01);
    }

    #[test]
    fn query_values_are_decoded() {
        let value = |q| error_rate::query_value(q, "image");
        assert_eq!(
            value("image=argoproj/rollouts-demo:bad-red").as_deref(),
            Some("argoproj/rollouts-demo:bad-red")
        );
        assert_eq!(
            value("x=1&image=argoproj%2Frollouts-demo%3Ayellow").as_deref(),
            Some("argoproj/rollouts-demo:yellow")
        );
        assert_eq!(value("images=a"), None);
        assert_eq!(value("image=50%"), Some("50%".into()));
    }

    #[test]
    fn the_demo_manifests_lint_clean() {
        let text = MANIFESTS.replace("DEMO_METRICS_URL", "http://127.0.0.1:9");
        let problems = crate::cli::lint::lint(&text);
        assert!(problems.is_empty(), "{problems:?}");
    }
}
