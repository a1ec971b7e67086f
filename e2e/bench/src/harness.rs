//! The processes under measurement: kubesim and `ramp-controller`, each started as its own process, a
//! kube-rs client for the driver, kubesim's request accounting, and the OS's figures for a process.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::Duration;

use anyhow::{Context as _, bail};
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, PostParams};
use serde::Deserialize;

/// The workspace root, where `crds/` is and where `cargo build` runs.
pub const WORKSPACE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");

/// The user agent prefix of the controller's requests (`ramp-controller/VERSION`).
pub const CONTROLLER_AGENT: &str = "ramp-controller/";

/// The namespace every benchmark works in.
pub const NAMESPACE: &str = "bench";

pub const WRITE_VERBS: &[&str] = &["create", "update", "patch", "delete", "deletecollection"];

/// Paths of the two programs the benchmark runs.
pub struct Binaries {
    pub controller: PathBuf,
    pub kubesim: PathBuf,
}

impl Binaries {
    /// The binaries next to this one, in the same profile (or in `RAMP_BENCH_BIN_DIR`). When they are
    /// missing they are built, unless `RAMP_BENCH_NO_BUILD` is set. They are not rebuilt when present: a
    /// cargo started from `cargo run` sees a different environment and rebuilds shared dependencies on
    /// every run, so build them first (docs/performance.md) to measure the checked-out code.
    pub fn locate() -> anyhow::Result<Binaries> {
        let exe = std::env::current_exe().context("own path")?;
        let mut dir = exe.parent().context("own directory")?.to_path_buf();
        if dir.ends_with("deps") {
            dir.pop();
        }
        if let Ok(custom) = std::env::var("RAMP_BENCH_BIN_DIR") {
            dir = PathBuf::from(custom);
        }
        let binaries = Binaries {
            controller: dir.join("ramp-controller"),
            kubesim: dir.join("kubesim"),
        };
        let missing = !binaries.controller.exists() || !binaries.kubesim.exists();
        if missing && std::env::var_os("RAMP_BENCH_NO_BUILD").is_none() {
            build(&dir)?;
        }
        for path in [&binaries.controller, &binaries.kubesim] {
            if !path.exists() {
                bail!("{} is missing: build it first", path.display());
            }
        }
        Ok(binaries)
    }
}

/// `cargo build` of `ramp-controller` and `kubesim` into `dir` (a profile directory of a target dir).
fn build(dir: &Path) -> anyhow::Result<()> {
    let target_dir = dir.parent().context("target directory")?;
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut command = Command::new(cargo);
    command
        .current_dir(WORKSPACE)
        .args(["build", "--quiet", "--target-dir"])
        .arg(target_dir)
        .args(["-p", "ramp", "--bin", "ramp-controller"])
        .args(["-p", "kubesim", "--bin", "kubesim"]);
    if !cfg!(debug_assertions) {
        command.arg("--release");
    }
    let status = command
        .stdout(Stdio::null())
        .status()
        .context("cargo runs")?;
    if !status.success() {
        bail!("cargo build of ramp-controller and kubesim failed");
    }
    Ok(())
}

/// A working directory for kubeconfig and logs, removed on drop unless `RAMP_BENCH_KEEP` is set.
pub struct WorkDir(pub PathBuf);

impl WorkDir {
    pub fn new(scenario: &str) -> anyhow::Result<WorkDir> {
        let dir =
            std::env::temp_dir().join(format!("ramp-bench-{scenario}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)?;
        Ok(WorkDir(dir))
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        if std::env::var_os("RAMP_BENCH_KEEP").is_none() {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// A child process killed on drop.
pub struct Process {
    child: Child,
    pub pid: u32,
    _stdout: Option<BufReader<ChildStdout>>,
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Process {
    pub fn stats(&self) -> anyhow::Result<ProcStats> {
        ProcStats::read(self.pid)
    }
}

/// kubesim as its own process, with the kubeconfig it wrote.
pub struct KubesimProcess {
    pub process: Process,
    pub kubeconfig: PathBuf,
    /// Where it serves, `http://127.0.0.1:PORT`.
    pub url: String,
}

pub fn start_kubesim(
    binaries: &Binaries,
    dir: &Path,
    pod_ready_ms: u64,
    simulation: bool,
) -> anyhow::Result<KubesimProcess> {
    let kubeconfig = dir.join("kubeconfig");
    let log = std::fs::File::create(dir.join("kubesim.log"))?;
    let mut command = Command::new(&binaries.kubesim);
    command
        .args(["--port", "0", "--kubeconfig-out"])
        .arg(&kubeconfig)
        .args(["--pod-ready-ms", &pod_ready_ms.to_string()]);
    if !simulation {
        command.arg("--no-simulation");
    }
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(log)
        .spawn()
        .context("kubesim starts")?;
    let pid = child.id();
    let mut stdout = BufReader::new(child.stdout.take().context("kubesim stdout")?);
    let mut url = String::new();
    stdout
        .read_line(&mut url)
        .context("kubesim prints its URL")?;
    let process = Process {
        child,
        pid,
        _stdout: Some(stdout),
    };
    let url = url.trim().to_string();
    if !url.starts_with("http") {
        bail!("kubesim did not print its URL (got {url:?})");
    }
    Ok(KubesimProcess {
        process,
        kubeconfig,
        url,
    })
}

/// `ramp-controller` as its own process, leader election on (as installed), logs in `dir`.
pub fn start_controller(
    binaries: &Binaries,
    dir: &Path,
    kubeconfig: &Path,
) -> anyhow::Result<Process> {
    let log = std::fs::File::create(dir.join("controller.log"))?;
    let child = Command::new(&binaries.controller)
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args([
            "--metrics-addr",
            "127.0.0.1:0",
            "--health-addr",
            "127.0.0.1:0",
        ])
        .args(["--lease-namespace", NAMESPACE])
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .context("ramp-controller starts")?;
    let pid = child.id();
    Ok(Process {
        child,
        pid,
        _stdout: None,
    })
}

/// The driver's client: a user agent of its own, so its requests are not counted as the controller's.
pub async fn client(kubeconfig: &Path) -> anyhow::Result<kube::Client> {
    let file = kube::config::Kubeconfig::read_from(kubeconfig)?;
    let mut config = kube::Config::from_custom_kubeconfig(file, &Default::default()).await?;
    config.headers.push((
        http::header::USER_AGENT,
        http::HeaderValue::from_static("ramp-bench/0.1"),
    ));
    config.read_timeout = Some(Duration::from_secs(300));
    Ok(kube::Client::try_from(config)?)
}

/// Creates the benchmark namespace.
pub async fn create_namespace(client: &kube::Client) -> anyhow::Result<()> {
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let ns: Namespace = serde_json::from_value(serde_json::json!({
        "apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}
    }))?;
    namespaces.create(&PostParams::default(), &ns).await?;
    Ok(())
}

/// Registers Ramp's CRDs from `crds/`.
pub async fn install_crds(client: &kube::Client) -> anyhow::Result<()> {
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let dir = Path::new(WORKSPACE).join("crds");
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
        .with_context(|| format!("read {}", dir.display()))?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.extension().is_some_and(|ext| ext == "yaml"))
        .collect();
    paths.sort();
    for path in paths {
        let text = std::fs::read_to_string(&path)?;
        let crd: CustomResourceDefinition =
            serde_norway::from_str(&text).with_context(|| format!("parse {}", path.display()))?;
        crds.create(&PostParams::default(), &crd).await?;
    }
    Ok(())
}

/// One line of kubesim's request accounting.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RequestCount {
    pub verb: String,
    pub resource: String,
    pub code: u16,
    pub user_agent: String,
    pub count: u64,
}

/// Requests of one client, by `verb resource` (e.g. `patch rollouts/status`), with the status code
/// appended for failed ones.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Requests(pub BTreeMap<String, u64>);

impl Requests {
    /// kubesim's counts for user agents starting with `agent`.
    pub async fn of(client: &kube::Client, agent: &str) -> anyhow::Result<Requests> {
        let request = http::Request::get("/kubesim/admin/requests").body(Vec::new())?;
        let counts: Vec<RequestCount> = client.request(request).await?;
        let mut by_key = BTreeMap::new();
        for count in counts
            .iter()
            .filter(|count| count.user_agent.starts_with(agent))
        {
            // Failed requests are kept apart: `patch rollouts/status 409`.
            let key = if count.code >= 400 {
                format!("{} {} {}", count.verb, count.resource, count.code)
            } else {
                format!("{} {}", count.verb, count.resource)
            };
            *by_key.entry(key).or_insert(0) += count.count;
        }
        Ok(Requests(by_key))
    }

    pub async fn controller(client: &kube::Client) -> anyhow::Result<Requests> {
        Requests::of(client, CONTROLLER_AGENT).await
    }

    /// What was counted since `earlier`.
    pub fn since(&self, earlier: &Requests) -> Requests {
        let mut diff = BTreeMap::new();
        for (key, count) in &self.0 {
            let delta = count.saturating_sub(earlier.0.get(key).copied().unwrap_or(0));
            if delta > 0 {
                diff.insert(key.clone(), delta);
            }
        }
        Requests(diff)
    }

    pub fn total(&self) -> u64 {
        self.0.values().sum()
    }

    fn is_write(key: &str) -> bool {
        WRITE_VERBS.contains(&key.split(' ').next().unwrap_or(""))
    }

    fn is_lease(key: &str) -> bool {
        key.split(' ').nth(1) == Some("leases")
    }

    /// Writes, leader-election Lease renewals excluded.
    pub fn writes(&self) -> u64 {
        self.0
            .iter()
            .filter(|(key, _)| Requests::is_write(key) && !Requests::is_lease(key))
            .map(|(_, count)| count)
            .sum()
    }

    /// Writes to the leader-election Lease.
    pub fn lease_writes(&self) -> u64 {
        self.0
            .iter()
            .filter(|(key, _)| Requests::is_write(key) && Requests::is_lease(key))
            .map(|(_, count)| count)
            .sum()
    }

    /// Totals by verb.
    pub fn by_verb(&self) -> BTreeMap<String, u64> {
        let mut verbs = BTreeMap::new();
        for (key, count) in &self.0 {
            let verb = key.split(' ').next().unwrap_or("").to_string();
            *verbs.entry(verb).or_insert(0) += count;
        }
        verbs
    }

    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(&self.0).unwrap_or_default()
    }
}

/// What the OS says about a process: resident memory now and at its peak, CPU time used.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcStats {
    pub rss_kib: u64,
    pub peak_rss_kib: u64,
    pub cpu_seconds: f64,
}

impl ProcStats {
    pub fn read(pid: u32) -> anyhow::Result<ProcStats> {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
            .with_context(|| format!("process {pid} is gone"))?;
        let field = |name: &str| -> u64 {
            status
                .lines()
                .find_map(|line| line.strip_prefix(name))
                .and_then(|rest| rest.split_whitespace().next())
                .and_then(|kib| kib.parse().ok())
                .unwrap_or(0)
        };
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
        // Fields after the command name (which may hold spaces) start at field 3, `state`.
        let after = stat.rsplit_once(')').map(|(_, rest)| rest).unwrap_or("");
        let fields: Vec<&str> = after.split_whitespace().collect();
        let ticks = |index: usize| -> f64 {
            fields
                .get(index)
                .and_then(|v| v.parse::<f64>().ok())
                .unwrap_or(0.0)
        };
        // utime is field 14 and stime field 15 of /proc/PID/stat.
        let cpu_seconds = (ticks(11) + ticks(12)) / clock_ticks_per_second();
        Ok(ProcStats {
            rss_kib: field("VmRSS:"),
            peak_rss_kib: field("VmHWM:").max(field("VmRSS:")),
            cpu_seconds,
        })
    }

    pub fn rss_mib(&self) -> f64 {
        self.rss_kib as f64 / 1024.0
    }

    pub fn peak_rss_mib(&self) -> f64 {
        self.peak_rss_kib as f64 / 1024.0
    }

    /// These figures with the peak raised to `kib`, an RSS read earlier. The kernel updates `VmHWM`
    /// lazily, so a peak read from it alone can trail an RSS sampled before it (by 0.2 MiB in one run).
    pub fn with_peak_at_least(self, kib: u64) -> ProcStats {
        ProcStats {
            peak_rss_kib: self.peak_rss_kib.max(kib),
            ..self
        }
    }
}

fn clock_ticks_per_second() -> f64 {
    static TICKS: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *TICKS.get_or_init(|| {
        Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|out| String::from_utf8(out.stdout).ok())
            .and_then(|text| text.trim().parse().ok())
            .unwrap_or(100.0)
    })
}

/// Samples a process's RSS at a fixed interval, in the background, until dropped.
pub struct RssSampler {
    samples: std::sync::Arc<std::sync::Mutex<Vec<(f64, u64)>>>,
    task: tokio::task::JoinHandle<()>,
}

impl RssSampler {
    pub fn start(pid: u32, every: Duration) -> RssSampler {
        let samples = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let sink = samples.clone();
        let task = tokio::spawn(async move {
            let start = tokio::time::Instant::now();
            let mut ticker = tokio::time::interval(every);
            loop {
                ticker.tick().await;
                let Ok(stats) = ProcStats::read(pid) else {
                    return;
                };
                if let Ok(mut samples) = sink.lock() {
                    samples.push((start.elapsed().as_secs_f64(), stats.rss_kib));
                }
            }
        });
        RssSampler { samples, task }
    }

    /// (seconds since start, RSS KiB) pairs.
    pub fn samples(&self) -> Vec<(f64, u64)> {
        self.samples.lock().map(|s| s.clone()).unwrap_or_default()
    }
}

impl Drop for RssSampler {
    fn drop(&mut self) {
        self.task.abort();
    }
}
