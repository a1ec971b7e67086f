//! `kubectl ramp`: the kubectl plugin. Offline commands so far: `simulate`.

use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand, ValueEnum};
use jiff::SignedDuration;
use ramp::api::{AnalysisPhase, Rollout};
use ramp::cli::demo::{DemoOptions, demo};
use ramp::cli::simulate::{Options, Templates, render_table, simulate};

#[derive(Parser)]
#[command(name = "kubectl-ramp", version, about = "Steer Ramp rollouts")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Show how a Rollout would release a new version, without a cluster.
    Simulate {
        /// YAML with the Rollout (the first one in the file is used) and the AnalysisTemplates it uses.
        /// Repeat `-f` to add files, e.g. the AnalysisTemplates the Rollout references.
        #[arg(
            short = 'f',
            long = "filename",
            env = "RAMP_SIMULATE_FILE",
            required = true
        )]
        file: Vec<PathBuf>,
        /// Output format.
        #[arg(short = 'o', long, value_enum, default_value_t = Output::Table, env = "RAMP_SIMULATE_OUTPUT")]
        output: Output,
        /// How long new pods take to become available, e.g. 5s.
        #[arg(long, default_value = "5s", env = "RAMP_SIMULATE_POD_READY_DELAY")]
        pod_ready_delay: String,
        /// The verdict of every AnalysisRun: Successful, Failed, Error or Inconclusive.
        #[arg(long, default_value = "Successful", env = "RAMP_SIMULATE_ANALYSIS")]
        analysis: String,
        /// How long a simulated person waits before promoting an indefinite pause, e.g. 1m.
        #[arg(long, default_value = "1m", env = "RAMP_SIMULATE_PROMOTE_AFTER")]
        promote_after: String,
    },
    /// Run Ramp with no cluster: kubesim, the CRDs and the controller in this process, and a canary release
    /// narrated from deploy to promote to Healthy.
    Demo {
        /// Where to write the kubeconfig of the demo's kubesim, for kubectl to watch along.
        #[arg(
            long,
            env = "RAMP_DEMO_KUBECONFIG",
            default_value = "ramp-demo.kubeconfig"
        )]
        kubeconfig_out: PathBuf,
        /// How long to wait at the indefinite pause before promoting, e.g. 5s.
        #[arg(long, default_value = "3s", env = "RAMP_DEMO_PROMOTE_AFTER")]
        promote_after: String,
        /// Keep kubesim and the controller running after the release, until Ctrl-C.
        #[arg(long, env = "RAMP_DEMO_KEEP_RUNNING")]
        keep_running: bool,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum Output {
    Table,
    Json,
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Simulate {
            file,
            output,
            pod_ready_delay,
            analysis,
            promote_after,
        } => {
            let mut text = String::new();
            for path in &file {
                let content = std::fs::read_to_string(path)
                    .with_context(|| format!("cannot read {}", path.display()))?;
                text.push_str(&content);
                text.push_str("\n---\n");
            }
            let rollout = first_rollout(&text).context("the files hold no valid Rollout")?;
            let templates =
                templates(&text).context("the files hold an invalid AnalysisTemplate")?;
            let options = Options {
                pod_ready_delay: duration("--pod-ready-delay", &pod_ready_delay)?,
                analysis_outcome: phase(&analysis)?,
                promote_after: duration("--promote-after", &promote_after)?,
                ..Options::default()
            };
            let timeline = simulate(rollout, &templates, &options);
            match output {
                Output::Table => print!("{}", render_table(&timeline)),
                Output::Json => println!("{}", serde_json::to_string_pretty(&timeline)?),
            }
        }
        Command::Demo {
            kubeconfig_out,
            promote_after,
            keep_running,
        } => {
            let _ = rustls::crypto::ring::default_provider().install_default();
            let options = DemoOptions {
                kubeconfig_out,
                promote_after: duration("--promote-after", &promote_after)?.unsigned_abs(),
                keep_running,
            };
            let runtime =
                tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
            runtime.block_on(demo(&options, &mut std::io::stdout()))?;
        }
    }
    Ok(())
}

fn first_rollout(text: &str) -> anyhow::Result<Rollout> {
    for document in serde_norway::Deserializer::from_str(text) {
        let value: serde_json::Value = serde::Deserialize::deserialize(document)?;
        if value.get("kind").and_then(|k| k.as_str()) == Some("Rollout") {
            let mut rollout: Rollout = serde_json::from_value(value)?;
            rollout
                .metadata
                .namespace
                .get_or_insert_with(|| "default".into());
            rollout.metadata.generation.get_or_insert(1);
            return Ok(rollout);
        }
    }
    bail!("no document with kind: Rollout")
}

/// The AnalysisTemplates and ClusterAnalysisTemplates in the file, for the Rollout to reference.
fn templates(text: &str) -> anyhow::Result<Templates> {
    let mut templates = Templates::default();
    for document in serde_norway::Deserializer::from_str(text) {
        let value: serde_json::Value = serde::Deserialize::deserialize(document)?;
        let kind = value
            .get("kind")
            .and_then(|k| k.as_str())
            .unwrap_or_default();
        let name = value["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let into = match kind {
            "AnalysisTemplate" => &mut templates.namespaced,
            "ClusterAnalysisTemplate" => &mut templates.cluster,
            _ => continue,
        };
        into.insert(name, serde_json::from_value(value["spec"].clone())?);
    }
    Ok(templates)
}

fn duration(flag: &str, text: &str) -> anyhow::Result<SignedDuration> {
    match ramp::api::duration::parse_go_duration_nanos(text) {
        Some(nanos) if nanos >= 0 => Ok(SignedDuration::from_nanos(nanos as i64)),
        _ => bail!("{flag} {text:?} is not a duration: use a number with a unit, e.g. 5s or 1m"),
    }
}

fn phase(text: &str) -> anyhow::Result<AnalysisPhase> {
    Ok(match text {
        "Successful" => AnalysisPhase::Successful,
        "Failed" => AnalysisPhase::Failed,
        "Error" => AnalysisPhase::Error,
        "Inconclusive" => AnalysisPhase::Inconclusive,
        other => bail!(
            "--analysis {other:?} is not a verdict: use Successful, Failed, Error or Inconclusive"
        ),
    })
}
