//! `ramp-controller`: parse flags (each also read from the environment), set up logging, run the controller.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Parser, ValueEnum};
use ramp::controller::{self, Settings, leader::LeaseSettings};

// The release image is a static musl binary, and with musl's malloc the controller needed about twice the
// CPU of a glibc build at a cold start of 10,000 Rollouts and three times during 1,000 updates. mimalloc
// brings the static binary to (or below) glibc's figures for about 4 MiB more memory; transparent huge
// pages stay off so memory stays compact. docs/performance.md has the runs.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Clone, Copy, Debug, ValueEnum)]
enum LogFormat {
    Plain,
    Json,
}

#[derive(Parser, Debug)]
#[command(
    version,
    about = "Ramp: progressive delivery for Kubernetes (Argo Rollouts API)"
)]
struct Args {
    /// Kubeconfig file; without it, in-cluster configuration or ~/.kube/config.
    #[arg(long, env = "KUBECONFIG")]
    kubeconfig: Option<PathBuf>,
    /// Watch only this namespace (default: all namespaces).
    #[arg(long, env = "RAMP_NAMESPACE")]
    namespace: Option<String>,
    /// Only manage Rollouts labelled argo-rollouts.argoproj.io/controller-instance-id=ID.
    #[arg(long, env = "RAMP_INSTANCE_ID")]
    instance_id: Option<String>,
    /// Leader election on a Lease (on by default; turn off only when running a single replica).
    #[arg(long, env = "RAMP_LEADER_ELECT", default_value_t = true, action = clap::ArgAction::Set)]
    leader_elect: bool,
    /// Namespace of the Lease (default: the watched namespace, or the pod's, or `default`).
    #[arg(long, env = "RAMP_LEASE_NAMESPACE")]
    lease_namespace: Option<String>,
    /// Name of the Lease.
    #[arg(long, env = "RAMP_LEASE_NAME", default_value = "ramp-controller-lock")]
    lease_name: String,
    /// How long a lease holds without renewal, in seconds.
    #[arg(long, env = "RAMP_LEASE_DURATION", default_value_t = 15)]
    lease_duration: u64,
    /// How long the leader keeps writing while renewals fail, in seconds.
    #[arg(long, env = "RAMP_LEASE_RENEW_DEADLINE", default_value_t = 10)]
    lease_renew_deadline: u64,
    /// How often to try to acquire or renew the lease, in seconds.
    #[arg(long, env = "RAMP_LEASE_RETRY_PERIOD", default_value_t = 2)]
    lease_retry_period: u64,
    /// Address of /metrics.
    #[arg(long, env = "RAMP_METRICS_ADDR", default_value = "0.0.0.0:8090")]
    metrics_addr: SocketAddr,
    /// Address of /healthz and /readyz.
    #[arg(long, env = "RAMP_HEALTH_ADDR", default_value = "0.0.0.0:8080")]
    health_addr: SocketAddr,
    /// Log format.
    #[arg(long, env = "RAMP_LOG_FORMAT", value_enum, default_value = "plain")]
    log_format: LogFormat,
    /// How many Rollouts are reconciled at once.
    #[arg(long, env = "RAMP_CONCURRENCY", default_value_t = 16)]
    concurrency: u16,
    /// Prometheus server for analysis metrics that name no `address`.
    #[arg(long, env = "ARGO_ROLLOUTS_PROMETHEUS_ADDRESS")]
    prometheus_address: Option<String>,
    /// This process's identity in the Lease (default: the host name).
    #[arg(long, env = "POD_NAME")]
    identity: Option<String>,
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("RAMP_LOG")
        .unwrap_or_else(|_| "info,kube=warn".into());
    // Colours only on a terminal: a pod's log (or a file) would show their escape codes as text.
    let colour = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(colour)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Plain => builder.init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .init(),
    }
}

async fn client(kubeconfig: Option<&PathBuf>) -> anyhow::Result<kube::Client> {
    let config = match kubeconfig {
        Some(path) => {
            let file = kube::config::Kubeconfig::read_from(path)
                .with_context(|| format!("cannot read kubeconfig {}", path.display()))?;
            kube::Config::from_custom_kubeconfig(file, &Default::default())
                .await
                .context("invalid kubeconfig")?
        }
        None => kube::Config::infer()
            .await
            .context("no kubeconfig and not running in a cluster: pass --kubeconfig")?,
    };
    let mut config = config;
    // The user agent names Ramp in the API server's audit logs and request accounting.
    let agent = concat!("ramp-controller/", env!("CARGO_PKG_VERSION"));
    config.headers.push((
        http::header::USER_AGENT,
        http::HeaderValue::from_static(agent),
    ));
    kube::Client::try_from(config).context("cannot build a Kubernetes client")
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // kube's TLS uses rustls with ring; install it as the process default so no other crate picks another.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let args = Args::parse();
    init_logging(args.log_format);
    let client = client(args.kubeconfig.as_ref()).await?;
    let identity = args.identity.clone().unwrap_or_else(|| {
        std::env::var("HOSTNAME").unwrap_or_else(|_| format!("ramp-{}", std::process::id()))
    });
    let lease = args.leader_elect.then(|| LeaseSettings {
        name: args.lease_name.clone(),
        namespace: args
            .lease_namespace
            .clone()
            .or_else(|| args.namespace.clone())
            .or_else(|| std::env::var("POD_NAMESPACE").ok())
            .unwrap_or_else(|| "default".into()),
        identity: identity.clone(),
        lease_duration: Duration::from_secs(args.lease_duration),
        renew_deadline: Duration::from_secs(args.lease_renew_deadline),
        retry_period: Duration::from_secs(args.lease_retry_period),
    });
    let settings = Settings {
        namespace: args.namespace.clone(),
        instance_id: args.instance_id.clone(),
        identity,
        lease,
        metrics_address: args.metrics_addr,
        health_address: args.health_addr,
        concurrency: args.concurrency,
        prometheus_address: args.prometheus_address.clone(),
    };
    controller::run(client, settings).await
}
