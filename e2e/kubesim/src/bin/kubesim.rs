//! `kubesim --port 0 --kubeconfig-out FILE`: serves the emulated Kubernetes API until interrupted.

use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;

// kubesim copies and frees JSON trees all day: glibc's malloc and free were a quarter of its CPU when
// 10,000 Rollouts were reconciled against it.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    version,
    about = "A Kubernetes API emulator with a simulated cluster, for tests and demos"
)]
struct Args {
    /// Loopback port to serve on; 0 picks a free one.
    #[arg(long, env = "KUBESIM_PORT", default_value_t = 0)]
    port: u16,
    /// Write a kubeconfig for the server to this file.
    #[arg(long, env = "KUBESIM_KUBECONFIG_OUT")]
    kubeconfig_out: Option<PathBuf>,
    /// Time from a pod's creation to Ready, in milliseconds.
    #[arg(long, env = "KUBESIM_POD_READY_MS", default_value_t = 500)]
    pod_ready_ms: u64,
    /// Seconds an Event lives after its creation, as the API server's `--event-ttl`; 0 keeps them.
    #[arg(long, env = "KUBESIM_EVENT_TTL_SECONDS", default_value_t = 3600)]
    event_ttl_seconds: u64,
    /// Do not run the simulated controllers and kubelet: an API server only.
    #[arg(long, env = "KUBESIM_NO_SIMULATION")]
    no_simulation: bool,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let mut sim = kubesim::SimConfig {
        pod_ready_delay: Duration::from_millis(args.pod_ready_ms),
        ..Default::default()
    };
    if args.no_simulation {
        sim = kubesim::SimConfig {
            replicasets: false,
            deployments: false,
            jobs: false,
            endpoints: false,
            kubelet: false,
            traffic: false,
            ..sim
        };
    }
    let server = kubesim::Kubesim::start(kubesim::Config {
        port: args.port,
        sim,
        event_ttl: (args.event_ttl_seconds > 0)
            .then(|| Duration::from_secs(args.event_ttl_seconds)),
        ..Default::default()
    })
    .await?;
    if let Some(path) = &args.kubeconfig_out {
        server.write_kubeconfig(path)?;
    }
    println!("{}", server.url);
    tokio::signal::ctrl_c().await?;
    Ok(())
}
