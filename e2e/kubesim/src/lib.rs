//! kubesim: a Kubernetes API server emulator for end-to-end tests, with a simulated cluster behind it
//! (ReplicaSet, Deployment, Job and endpoints controllers, a kubelet, synthetic traffic), fault injection and
//! request accounting. It serves plain HTTP on loopback; `docs/kubesim.md` says what is faithful, what is
//! approximated and what is missing.
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! let sim = kubesim::Kubesim::start(kubesim::Config::default()).await?;
//! let client = sim.client()?;
//! # Ok(()) }
//! ```

pub mod apiserver;
mod event_ttl;
pub mod faults;
pub mod json;
pub mod prometheus;
pub mod registry;
pub mod schema;
pub mod selector;
pub mod server;
pub mod sim;
pub mod store;
pub mod strategic;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use tokio::sync::oneshot;

pub use apiserver::Cluster;
pub use faults::{ErrorRule, Faults, RequestCount};
pub use sim::SimConfig;
pub use sim::traffic::Traffic;

/// How to start kubesim.
#[derive(Debug, Clone)]
pub struct Config {
    /// Loopback port; 0 picks a free one.
    pub port: u16,
    pub sim: SimConfig,
    /// Changes kept for watches to resume from; older resumes get `410 Gone`.
    pub history_limit: usize,
    /// How long an Event lives after its creation, as the API server's `--event-ttl` (which, unlike
    /// here, restarts on every update of the Event); `None` keeps Events forever, and zero deletes
    /// each at the next sweep.
    pub event_ttl: Option<Duration>,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            port: 0,
            sim: SimConfig::default(),
            history_limit: 100_000,
            event_ttl: Some(Duration::from_secs(3600)),
        }
    }
}

/// A running kubesim: its URL, the in-process API server, and the handles that control faults and traffic.
pub struct Kubesim {
    pub url: String,
    pub address: SocketAddr,
    pub cluster: Arc<Cluster>,
    pub faults: Arc<faults::FaultState>,
    pub traffic: Arc<Traffic>,
    shutdown: Option<oneshot::Sender<()>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Kubesim {
    /// Binds the port, starts the simulated cluster, and serves until dropped.
    pub async fn start(config: Config) -> anyhow::Result<Kubesim> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", config.port))
            .await
            .with_context(|| format!("cannot listen on 127.0.0.1:{}", config.port))?;
        let address = listener.local_addr()?;
        let cluster = Arc::new(Cluster::new(config.history_limit));
        let faults = Arc::new(faults::FaultState::default());
        let traffic = Arc::new(Traffic::default());
        let app = Arc::new(server::App {
            cluster: cluster.clone(),
            faults: faults.clone(),
            traffic: traffic.clone(),
            address: address.to_string(),
        });
        let (shutdown, stopped) = oneshot::channel::<()>();
        let mut tasks = sim::spawn(cluster.clone(), traffic.clone(), &config.sim);
        if let Some(ttl) = config.event_ttl {
            tasks.push(tokio::spawn(event_ttl::run(cluster.clone(), ttl)));
        }
        tasks.push(tokio::spawn(async move {
            let serve = axum::serve(listener, server::router(app)).with_graceful_shutdown(async {
                let _ = stopped.await;
            });
            if let Err(e) = serve.await {
                eprintln!("kubesim: server stopped: {e}");
            }
        }));
        Ok(Kubesim {
            url: format!("http://{address}"),
            address,
            cluster,
            faults,
            traffic,
            shutdown: Some(shutdown),
            tasks,
        })
    }

    /// A kube-rs client for this server.
    pub fn client(&self) -> anyhow::Result<kube::Client> {
        let config = kube::Config::new(self.url.parse()?);
        Ok(kube::Client::try_from(config)?)
    }

    /// A kubeconfig pointing at this server (context `kubesim`, namespace `default`).
    pub fn kubeconfig(&self) -> String {
        kubeconfig_for(&self.url)
    }

    pub fn write_kubeconfig(&self, path: &Path) -> anyhow::Result<()> {
        std::fs::write(path, self.kubeconfig())
            .with_context(|| format!("cannot write kubeconfig to {}", path.display()))
    }

    pub fn set_faults(&self, faults: Faults) {
        self.faults.set(faults);
    }

    pub fn request_counts(&self) -> Vec<RequestCount> {
        self.faults.counts()
    }

    /// Stops serving; the simulated cluster stops with it.
    pub fn stop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        for task in &self.tasks {
            task.abort();
        }
    }
}

impl Drop for Kubesim {
    fn drop(&mut self) {
        self.stop();
    }
}

pub fn kubeconfig_for(url: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: kubesim\n  cluster:\n    server: {url}\ncontexts:\n- name: kubesim\n  context:\n    cluster: kubesim\n    user: kubesim\n    namespace: default\ncurrent-context: kubesim\nusers:\n- name: kubesim\n  user:\n    token: kubesim\n"
    )
}
