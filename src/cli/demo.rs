//! `kubectl ramp demo`: Ramp on a laptop with no cluster. Starts kubesim in this process, installs the
//! CRDs, runs the controller, applies the basic canary example, and narrates a release: deploy, a new
//! image paused at its first step, a promote, the timed steps, and the new version Healthy.

use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, Patch, PatchParams, PostParams};

use crate::api::Rollout;
use crate::controller::{self, Settings};

const EXAMPLE: &str = include_str!("../../examples/rollout-canary.yaml");
const NAME: &str = "rollouts-demo";

/// What the demo does besides the release itself.
#[derive(Clone, Debug)]
pub struct DemoOptions {
    /// Where to write kubesim's kubeconfig, so kubectl can watch alongside.
    pub kubeconfig_out: PathBuf,
    /// How long the demo waits at the indefinite pause before promoting.
    pub promote_after: Duration,
    /// Keep kubesim and the controller running after the release, until interrupted.
    pub keep_running: bool,
}

struct Narrator<'a, W: Write> {
    out: &'a mut W,
    started: Instant,
    last: String,
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

    /// Prints the rollout's state when it changed.
    fn report(&mut self, rollout: &Rollout) -> anyhow::Result<()> {
        let status = rollout.status.clone().unwrap_or_default();
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
        if line != self.last {
            self.say(&line)?;
            self.last = line;
        }
        Ok(())
    }
}

/// Polls the rollout until `done` says so, narrating every change.
async fn follow<W: Write>(
    api: &Api<Rollout>,
    narrator: &mut Narrator<'_, W>,
    timeout: Duration,
    done: impl Fn(&Rollout) -> bool,
) -> anyhow::Result<Rollout> {
    let deadline = Instant::now() + timeout;
    loop {
        let rollout = api
            .get(NAME)
            .await
            .context("cannot read the demo Rollout")?;
        narrator.report(&rollout)?;
        let observed = rollout.status.as_ref().is_some_and(|s| {
            s.observed_generation == rollout.metadata.generation.unwrap_or(0).to_string()
        });
        if observed && done(&rollout) {
            return Ok(rollout);
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

fn phase_is(phase: &'static str) -> impl Fn(&Rollout) -> bool {
    move |r| r.status.as_ref().is_some_and(|s| s.phase == phase)
}

pub async fn demo<W: Write>(options: &DemoOptions, out: &mut W) -> anyhow::Result<()> {
    let mut narrator = Narrator {
        out,
        started: Instant::now(),
        last: String::new(),
    };
    let sim = kubesim::Kubesim::start(kubesim::Config::default()).await?;
    sim.write_kubeconfig(&options.kubeconfig_out)?;
    narrator.say(&format!("kubesim serves the Kubernetes API at {}", sim.url))?;
    narrator.say(&format!(
        "watch along with: kubectl --kubeconfig {} get rollouts,rs,pods -w",
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
    let controller = tokio::spawn(controller::run(client.clone(), settings));
    narrator.say("started ramp-controller")?;

    let rollouts: Api<Rollout> = Api::namespaced(client, "default");
    let rollout: Rollout = serde_norway::from_str(&EXAMPLE.replace("10s", "3s"))
        .context("the bundled example does not parse")?;
    rollouts
        .create(&PostParams::default(), &rollout)
        .await
        .context("cannot create the demo Rollout")?;
    narrator.say("applied examples/rollout-canary.yaml (5 replicas, 20% / pause / 40% / 60% / 80%, pauses shortened to 3s)")?;
    follow(
        &rollouts,
        &mut narrator,
        Duration::from_secs(60),
        phase_is("Healthy"),
    )
    .await?;

    // As `kubectl ramp set image` does: read, change the image, write back (conditioned on resourceVersion).
    let mut current = rollouts.get(NAME).await?;
    if let Some(container) = current
        .spec
        .template
        .as_mut()
        .and_then(|t| t.spec.as_mut())
        .and_then(|s| s.containers.first_mut())
    {
        container.image = Some("argoproj/rollouts-demo:yellow".into());
    }
    rollouts
        .replace(NAME, &PostParams::default(), &current)
        .await
        .context("cannot update the image")?;
    narrator.say("new image argoproj/rollouts-demo:yellow: the canary starts")?;
    follow(
        &rollouts,
        &mut narrator,
        Duration::from_secs(60),
        phase_is("Paused"),
    )
    .await?;
    narrator.say(&format!(
        "paused indefinitely at step 1; promoting in {:?} (kubectl ramp promote {NAME})",
        options.promote_after
    ))?;
    tokio::time::sleep(options.promote_after).await;
    let promote = serde_json::json!({"status": {"pauseConditions": null}});
    rollouts
        .patch_status(NAME, &PatchParams::default(), &Patch::Merge(&promote))
        .await
        .context("cannot promote")?;
    let done = follow(&rollouts, &mut narrator, Duration::from_secs(90), |r| {
        phase_is("Healthy")(r)
            && r.status
                .as_ref()
                .is_some_and(|s| s.stable_rs == s.current_pod_hash)
    })
    .await?;
    narrator.say(&format!(
        "released: stable is now {}",
        done.status.map(|s| s.stable_rs).unwrap_or_default()
    ))?;
    if options.keep_running {
        narrator.say("kubesim and the controller keep running; Ctrl-C to stop")?;
        tokio::signal::ctrl_c().await?;
    }
    controller.abort();
    Ok(())
}
