//! `kubectl ramp`: the kubectl plugin. Parses arguments and calls the commands in `ramp::cli`.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{ArgAction, CommandFactory, Parser, Subcommand, ValueEnum};
use jiff::SignedDuration;
use ramp::api::{AnalysisPhase, Rollout};
use ramp::cli::cluster::{CliError, Cluster, ConnectArgs};
use ramp::cli::demo::{DemoOptions, demo};
use ramp::cli::simulate::{Options, Templates, render_table, simulate};
use ramp::cli::{control, get, lint, list, set_image, status, undo};

#[derive(Parser)]
#[command(name = "kubectl-ramp", version, about = "Steer Ramp rollouts")]
struct Cli {
    #[command(flatten)]
    connect: ConnectArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Move a paused or running rollout on: past the current pause or step, or with --full to the end.
    Promote {
        name: String,
        /// Skip every remaining step, pause and analysis and release the new version now.
        #[arg(long, env = "RAMP_PROMOTE_FULL")]
        full: bool,
    },
    /// Abort the update: traffic and replicas go back to the stable version.
    Abort {
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Retry an aborted rollout from its first step.
    Retry {
        #[command(subcommand)]
        what: RetryWhat,
    },
    /// Pause a rollout (spec.paused).
    Pause {
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Resume a rollout paused with `pause` (unset spec.paused).
    Resume {
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Restart the rollout's pods, now or after a delay.
    Restart {
        name: String,
        /// When to restart, e.g. 10s or 1m.
        #[arg(long = "in", default_value = "0s", env = "RAMP_RESTART_IN")]
        in_: String,
    },
    /// Roll back to an earlier revision's pod template.
    Undo {
        name: String,
        /// The revision to go back to; 0 means the previous one.
        #[arg(long, default_value_t = 0, env = "RAMP_UNDO_TO_REVISION")]
        to_revision: i64,
    },
    /// Change a rollout: `set image NAME CONTAINER=IMAGE`.
    Set {
        #[command(subcommand)]
        what: SetWhat,
    },
    /// Stop an AnalysisRun: `terminate analysisrun NAME`.
    Terminate {
        #[command(subcommand)]
        what: TerminateWhat,
    },
    /// Show a rollout: `get rollout NAME`.
    Get {
        #[command(subcommand)]
        what: GetWhat,
    },
    /// List rollouts: `list rollouts`.
    List {
        #[command(subcommand)]
        what: ListWhat,
    },
    /// Print the rollout's status until it is Healthy (exit 0), Degraded or the timeout passes (exit 1).
    Status {
        name: String,
        /// Keep printing one line per change until Healthy or Degraded; `--watch=false` prints once.
        #[arg(short = 'w', long, default_value_t = true, action = ArgAction::Set, num_args = 0..=1,
              default_missing_value = "true", env = "RAMP_STATUS_WATCH")]
        watch: bool,
        /// Give up after this long, e.g. 5m; 0 waits forever.
        #[arg(short = 't', long, default_value = "0s", env = "RAMP_STATUS_TIMEOUT")]
        timeout: String,
    },
    /// Check Rollout, AnalysisTemplate and Service YAML offline, strictly, as the controller would.
    Lint {
        #[arg(short = 'f', long = "filename", env = "RAMP_LINT_FILE")]
        file: PathBuf,
    },
    /// Print the plugin's version.
    Version,
    /// Print a shell completion script, e.g. `kubectl-ramp completion bash`.
    Completion {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
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
        /// The verdicts of the release's AnalysisRuns, in the order they are created: Successful,
        /// Failed, Error or Inconclusive, comma-separated. The last one holds for every later run, so
        /// `Failed` fails them all and `Successful,Failed` passes the first and fails the rest.
        #[arg(long, default_value = "Successful", env = "RAMP_SIMULATE_ANALYSIS")]
        analysis: String,
        /// How long a simulated person waits before promoting an indefinite pause, e.g. 1m.
        #[arg(long, default_value = "1m", env = "RAMP_SIMULATE_PROMOTE_AFTER")]
        promote_after: String,
    },
    /// Run Ramp with no cluster: kubesim, the CRDs and the controller in this process, and two narrated
    /// canary releases: a good version promoted step by step, then a bad one aborted by its analysis.
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
        /// Exit when both releases are done, instead of keeping kubesim and the controller up until Ctrl-C.
        #[arg(long, env = "RAMP_DEMO_EXIT_WHEN_DONE")]
        exit_when_done: bool,
    },
}

#[derive(Subcommand)]
enum RetryWhat {
    /// Retry aborted rollouts.
    #[command(visible_aliases = ["ro", "rollouts"])]
    Rollout {
        #[arg(required = true)]
        names: Vec<String>,
    },
}

#[derive(Subcommand)]
enum SetWhat {
    /// Set a container's image: `set image NAME CONTAINER=IMAGE` (`*` for every container).
    Image { name: String, assignment: String },
}

#[derive(Subcommand)]
enum TerminateWhat {
    /// Terminate a running AnalysisRun.
    #[command(visible_aliases = ["ar", "analysisruns"])]
    Analysisrun { name: String },
}

#[derive(Subcommand)]
enum GetWhat {
    /// The rollout's status, steps and tree of revisions, ReplicaSets, pods and AnalysisRuns.
    #[command(visible_aliases = ["ro", "rollouts"])]
    Rollout {
        name: String,
        /// Redraw on change.
        #[arg(short = 'w', long, env = "RAMP_GET_WATCH")]
        watch: bool,
        /// No ANSI colours (also when stdout is not a terminal, or NO_COLOR is set).
        #[arg(long, env = "RAMP_NO_COLOR")]
        no_color: bool,
        /// With --watch, stop after this many seconds; 0 watches until interrupted.
        #[arg(long, default_value_t = 0, env = "RAMP_GET_TIMEOUT_SECONDS")]
        timeout_seconds: u64,
    },
}

#[derive(Subcommand)]
enum ListWhat {
    /// One line per rollout.
    #[command(visible_aliases = ["ro", "rollout"])]
    Rollouts {
        /// Every namespace.
        #[arg(short = 'A', long, env = "RAMP_ALL_NAMESPACES")]
        all_namespaces: bool,
        /// Only the rollout of this name.
        #[arg(long, env = "RAMP_LIST_NAME")]
        name: Option<String>,
        /// After the table, print a rollout's row again each time it changes.
        #[arg(short = 'w', long, env = "RAMP_LIST_WATCH")]
        watch: bool,
        /// A TIMESTAMP column first: when each row was printed.
        #[arg(long, env = "RAMP_LIST_TIMESTAMPS")]
        timestamps: bool,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum Output {
    Table,
    Json,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Simulate { .. } | Command::Demo { .. } => offline(cli.command),
        Command::Version => {
            println!("kubectl-ramp: v{}", env!("CARGO_PKG_VERSION"));
            Ok(())
        }
        Command::Completion { shell } => {
            clap_complete::generate(
                shell,
                &mut Cli::command(),
                "kubectl-ramp",
                &mut std::io::stdout(),
            );
            Ok(())
        }
        Command::Lint { file } => run_lint(&file),
        command => online(&cli.connect, command),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn run_lint(file: &std::path::Path) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(file)
        .with_context(|| format!("cannot read {}; check the -f path", file.display()))?;
    let problems = lint::lint(&text);
    for problem in &problems {
        println!("{problem}");
    }
    if !problems.is_empty() {
        bail!("{} problem(s) in {}", problems.len(), file.display());
    }
    Ok(())
}

/// The commands that talk to a cluster.
fn online(connect: &ConnectArgs, command: Command) -> anyhow::Result<()> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async {
        let cluster = connect.connect().await?;
        run_online(&cluster, command).await
    })?;
    Ok(())
}

async fn for_each<'a, F, Fut>(names: &'a [String], action: F) -> Result<(), CliError>
where
    F: Fn(&'a str) -> Fut,
    Fut: std::future::Future<Output = Result<String, CliError>>,
{
    for name in names {
        println!("{}", action(name).await?);
    }
    Ok(())
}

async fn run_online(cluster: &Cluster, command: Command) -> Result<(), CliError> {
    match command {
        Command::Promote { name, full } => {
            println!("{}", control::promote(cluster, &name, full).await?)
        }
        Command::Abort { names } => for_each(&names, |n| control::abort(cluster, n)).await?,
        Command::Retry {
            what: RetryWhat::Rollout { names },
        } => for_each(&names, |n| control::retry(cluster, n)).await?,
        Command::Pause { names } => for_each(&names, |n| control::pause(cluster, n, true)).await?,
        Command::Resume { names } => {
            for_each(&names, |n| control::pause(cluster, n, false)).await?
        }
        Command::Restart { name, in_ } => {
            let delay = duration("--in", &in_).map_err(|e| CliError::Invalid(e.to_string()))?;
            println!("{}", control::restart(cluster, &name, delay).await?)
        }
        Command::Undo { name, to_revision } => {
            println!("{}", undo::run(cluster, &name, to_revision).await?)
        }
        Command::Set {
            what: SetWhat::Image { name, assignment },
        } => {
            println!("{}", set_image::run(cluster, &name, &assignment).await?)
        }
        Command::Terminate {
            what: TerminateWhat::Analysisrun { name },
        } => {
            println!("{}", control::terminate_analysis_run(cluster, &name).await?)
        }
        Command::Get {
            what:
                GetWhat::Rollout {
                    name,
                    watch,
                    no_color,
                    timeout_seconds,
                },
        } => {
            let colour = !no_color
                && std::io::stdout().is_terminal()
                && std::env::var_os("NO_COLOR").is_none();
            let timeout = (timeout_seconds > 0).then(|| Duration::from_secs(timeout_seconds));
            get::get_rollout(cluster, &name, watch, colour, timeout).await?
        }
        Command::List {
            what:
                ListWhat::Rollouts {
                    all_namespaces,
                    name,
                    watch,
                    timestamps,
                },
        } => {
            let options = list::Options {
                all_namespaces,
                name,
                watch,
                timestamps,
            };
            list::list_rollouts(cluster, &options).await?
        }
        Command::Status {
            name,
            watch,
            timeout,
        } => {
            let timeout =
                duration("--timeout", &timeout).map_err(|e| CliError::Invalid(e.to_string()))?;
            let timeout = (!timeout.is_zero()).then(|| timeout.unsigned_abs());
            status::run(cluster, &name, watch, timeout).await?
        }
        Command::Simulate { .. }
        | Command::Demo { .. }
        | Command::Lint { .. }
        | Command::Version
        | Command::Completion { .. } => {}
    }
    Ok(())
}

/// The offline commands: `simulate` and `demo`.
fn offline(command: Command) -> anyhow::Result<()> {
    match command {
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
                analysis_outcomes: verdicts(&analysis)?,
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
            exit_when_done,
        } => {
            let _ = rustls::crypto::ring::default_provider().install_default();
            let options = DemoOptions {
                kubeconfig_out,
                promote_after: duration("--promote-after", &promote_after)?.unsigned_abs(),
                exit_when_done,
                colour: std::io::IsTerminal::is_terminal(&std::io::stdout()),
            };
            let runtime =
                tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
            runtime.block_on(demo(&options, &mut std::io::stdout()))?;
        }
        _ => {}
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

/// `--analysis Successful,Failed`: one verdict per run, in creation order.
fn verdicts(text: &str) -> anyhow::Result<Vec<AnalysisPhase>> {
    text.split(',')
        .map(|verdict| phase(verdict.trim()))
        .collect()
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
