//! The end-to-end harness: kubesim in this process, the real `ramp-controller` binary as a child process,
//! and the real `kubectl` as the client, exactly as a person would drive them.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

pub const REPO: &str = env!("CARGO_MANIFEST_DIR");
const CONTROLLER: &str = env!("CARGO_BIN_EXE_ramp-controller");
const PLUGIN: &str = env!("CARGO_BIN_EXE_kubectl-ramp");

/// A kubesim, a temp dir with its kubeconfig, and the controllers started against it.
pub struct Env {
    pub dir: PathBuf,
    pub kubeconfig: PathBuf,
    pub sim: kubesim::Kubesim,
    /// kubesim serves on this runtime's threads; it lives as long as the environment.
    _runtime: tokio::runtime::Runtime,
    controllers: Vec<Child>,
}

impl Env {
    /// Starts kubesim (pods Ready 300 ms after creation) and installs Ramp's CRDs with kubectl.
    pub fn start(name: &str) -> Env {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("tokio runtime");
        let mut config = kubesim::Config::default();
        config.sim.pod_ready_delay = Duration::from_millis(300);
        let sim = runtime
            .block_on(kubesim::Kubesim::start(config))
            .expect("kubesim starts");
        let dir = std::env::temp_dir().join(format!("ramp-e2e-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        let kubeconfig = dir.join("kubeconfig");
        sim.write_kubeconfig(&kubeconfig).expect("kubeconfig");
        let env = Env {
            dir,
            kubeconfig,
            sim,
            _runtime: runtime,
            controllers: Vec::new(),
        };
        env.kubectl_ok(&["apply", "-f", &format!("{REPO}/crds")]);
        env
    }

    /// Starts a `ramp-controller` process; `extra` flags are appended.
    pub fn start_controller(&mut self, extra: &[&str]) -> usize {
        self.start_controller_with(extra, "127.0.0.1:0")
    }

    /// Starts a `ramp-controller` process serving `/metrics` on `metrics_addr`.
    pub fn start_controller_with(&mut self, extra: &[&str], metrics_addr: &str) -> usize {
        let index = self.controllers.len();
        let log = std::fs::File::create(self.dir.join(format!("controller-{index}.log")))
            .expect("log file");
        let child = Command::new(CONTROLLER)
            .args([
                "--kubeconfig",
                self.kubeconfig.to_str().unwrap_or_default(),
                "--metrics-addr",
                metrics_addr,
                "--health-addr",
                "127.0.0.1:0",
            ])
            .args(extra)
            .env("RAMP_LOG", "info")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("ramp-controller starts");
        self.controllers.push(child);
        index
    }

    /// Kills a controller at once (SIGKILL), as a crash would.
    pub fn kill_controller(&mut self, index: usize) {
        let _ = self.controllers[index].kill();
        let _ = self.controllers[index].wait();
    }

    /// Asks a controller to stop (SIGTERM), as Kubernetes does when it deletes the pod, and waits up to
    /// `timeout` for it to exit: its exit status, or `None` when it had to be killed.
    pub fn terminate_controller(
        &mut self,
        index: usize,
        timeout: Duration,
    ) -> Option<std::process::ExitStatus> {
        let pid = self.controllers[index].id().to_string();
        let sent = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill runs");
        assert!(sent.success(), "kill -TERM {pid} failed");
        let start = Instant::now();
        while start.elapsed() < timeout {
            if let Ok(Some(status)) = self.controllers[index].try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        self.kill_controller(index);
        None
    }

    /// True while the controller process has not exited.
    pub fn controller_running(&mut self, index: usize) -> bool {
        matches!(self.controllers[index].try_wait(), Ok(None))
    }

    pub fn controller_log(&self, index: usize) -> String {
        std::fs::read_to_string(self.dir.join(format!("controller-{index}.log")))
            .unwrap_or_default()
    }

    pub fn kubectl(&self, args: &[&str]) -> Output {
        Command::new("kubectl")
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .args(args)
            .output()
            .expect("kubectl runs")
    }

    /// Runs kubectl and returns stdout, failing the test with kubectl's stderr when it fails.
    pub fn kubectl_ok(&self, args: &[&str]) -> String {
        let out = self.kubectl(args);
        assert!(
            out.status.success(),
            "kubectl {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub fn get_json(&self, args: &[&str]) -> Value {
        let mut all = vec!["get"];
        all.extend_from_slice(args);
        all.extend_from_slice(&["-o", "json"]);
        serde_json::from_str(&self.kubectl_ok(&all)).expect("kubectl prints JSON")
    }

    pub fn rollout(&self, name: &str) -> Value {
        self.get_json(&["rollout", name])
    }

    /// ReplicaSets of a rollout: (pod-template hash, spec.replicas, status.availableReplicas), by revision.
    pub fn replica_sets(&self, rollout: &str) -> Vec<(String, i64, i64)> {
        let list = self.get_json(&["rs", "-l", &format!("app={rollout}")]);
        let mut items: Vec<&Value> = list["items"]
            .as_array()
            .map(|a| a.iter().collect())
            .unwrap_or_default();
        // Creation times have one-second resolution; the revision annotation orders them exactly.
        items.sort_by_key(|rs| {
            rs["metadata"]["annotations"]["rollout.argoproj.io/revision"]
                .as_str()
                .and_then(|r| r.parse::<i64>().ok())
                .unwrap_or(0)
        });
        items
            .iter()
            .map(|rs| {
                (
                    rs["metadata"]["labels"]["rollouts-pod-template-hash"]
                        .as_str()
                        .unwrap_or("")
                        .to_string(),
                    rs["spec"]["replicas"].as_i64().unwrap_or(0),
                    rs["status"]["availableReplicas"].as_i64().unwrap_or(0),
                )
            })
            .collect()
    }

    /// Events recorded for an object, oldest first: (reason, message). The controller posts Events in
    /// the background, after the writes they describe, so this reads until two reads 300 ms apart agree.
    pub fn events(&self, object: &str) -> Vec<(String, String)> {
        let mut last = self.events_now(object);
        wait_for("the Events to settle", Duration::from_secs(15), || {
            std::thread::sleep(Duration::from_millis(300));
            let now = self.events_now(object);
            if now == last {
                Ok(now)
            } else {
                last = now;
                Err(format!("{last:?}"))
            }
        })
    }

    /// Events recorded for an object as of this read, oldest first: (reason, message).
    fn events_now(&self, object: &str) -> Vec<(String, String)> {
        let list = self.get_json(&[
            "events",
            "--field-selector",
            &format!("involvedObject.name={object}"),
        ]);
        let mut events: Vec<&Value> = list["items"]
            .as_array()
            .map(|a| a.iter().collect())
            .unwrap_or_default();
        events.sort_by_key(|e| {
            e["metadata"]["resourceVersion"]
                .as_str()
                .and_then(|rv| rv.parse::<u64>().ok())
                .unwrap_or(0)
        });
        let text = |v: &Value| v.as_str().unwrap_or_default().to_string();
        events
            .iter()
            .map(|e| (text(&e["reason"]), text(&e["message"])))
            .collect()
    }

    /// Event reasons recorded for an object, oldest first.
    pub fn event_reasons(&self, object: &str) -> Vec<String> {
        self.events(object)
            .into_iter()
            .map(|(reason, _)| reason)
            .collect()
    }

    /// Write requests counted by kubesim for a user agent prefix.
    pub fn writes_by(&self, user_agent_prefix: &str) -> u64 {
        self.sim
            .request_counts()
            .iter()
            .filter(|c| {
                kubesim::faults::WRITE_VERBS.contains(&c.key.verb.as_str())
                    && c.key.user_agent.starts_with(user_agent_prefix)
            })
            .map(|c| c.count)
            .sum()
    }

    /// The selector of a Service, as `key=value` pairs joined by commas, sorted.
    pub fn service_selector(&self, service: &str) -> String {
        let svc = self.get_json(&["service", service]);
        let mut pairs: Vec<String> = svc["spec"]["selector"]
            .as_object()
            .map(|m| {
                m.iter()
                    .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
                    .collect()
            })
            .unwrap_or_default();
        pairs.sort();
        pairs.join(",")
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        for child in &mut self.controllers {
            let _ = child.kill();
            let _ = child.wait();
        }
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        } else {
            eprintln!("controller logs kept in {}", self.dir.display());
        }
    }
}

/// Polls until `check` returns Some, or fails the test after `timeout` with `what` and the last value seen.
pub fn wait_for<T>(
    what: &str,
    timeout: Duration,
    mut check: impl FnMut() -> Result<T, String>,
) -> T {
    let start = Instant::now();
    loop {
        match check() {
            Ok(value) => return value,
            Err(last) if start.elapsed() > timeout => {
                panic!("timed out after {timeout:?} waiting for {what}; last seen: {last}")
            }
            Err(_) => std::thread::sleep(Duration::from_millis(200)),
        }
    }
}

/// Waits until the rollout reports this phase (and, when given, this step index).
pub fn wait_for_phase(
    env: &Env,
    rollout: &str,
    phase: &str,
    step: Option<i64>,
    timeout: Duration,
) -> Value {
    wait_for(
        &format!("{rollout} {phase} at step {step:?}"),
        timeout,
        || {
            let ro = env.rollout(rollout);
            let status = &ro["status"];
            // An invalid spec is reported without observing the generation, as Argo does.
            let invalid = status["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("InvalidSpec"));
            let observed = invalid
                || status["observedGeneration"].as_str()
                    == ro["metadata"]["generation"]
                        .as_i64()
                        .map(|g| g.to_string())
                        .as_deref();
            let at_step = step.is_none_or(|s| status["currentStepIndex"].as_i64() == Some(s));
            if observed && status["phase"] == phase && at_step {
                Ok(ro)
            } else {
                Err(format!(
                    "phase={} message={} step={}",
                    status["phase"], status["message"], status["currentStepIndex"]
                ))
            }
        },
    )
}

/// Writes a copy of an example with some text replaced, and returns its path.
pub fn example_copy(env: &Env, example: &str, replacements: &[(&str, &str)]) -> PathBuf {
    let mut text = std::fs::read_to_string(Path::new(REPO).join("examples").join(example))
        .expect("example exists");
    for (from, to) in replacements {
        text = text.replace(from, to);
    }
    let path = env.dir.join(example);
    std::fs::write(&path, text).expect("write example copy");
    path
}

/// `kubectl ramp promote`'s patch for a paused canary: clear the pause conditions on /status.
pub fn promote(env: &Env, rollout: &str) {
    env.kubectl_ok(&[
        "patch",
        "rollout",
        rollout,
        "--subresource",
        "status",
        "--type",
        "merge",
        "-p",
        r#"{"status":{"pauseConditions":null}}"#,
    ]);
}

/// Changes the first container's image with a JSON patch, leaving the rest of the template alone.
pub fn set_image(env: &Env, rollout: &str, image: &str) {
    let patch = format!(
        r#"[{{"op":"replace","path":"/spec/template/spec/containers/0/image","value":"{image}"}}]"#
    );
    env.kubectl_ok(&["patch", "rollout", rollout, "--type", "json", "-p", &patch]);
}

/// `kubectl ramp abort` and `retry`: the `status.abort` flag on /status.
pub fn set_abort(env: &Env, rollout: &str, abort: bool) {
    let patch = format!(r#"{{"status":{{"abort":{abort}}}}}"#);
    env.kubectl_ok(&[
        "patch",
        "rollout",
        rollout,
        "--subresource",
        "status",
        "--type",
        "merge",
        "-p",
        &patch,
    ]);
}

/// `kubectl ramp ARGS --kubeconfig K`: kubectl finds `kubectl-ramp` on PATH and passes the arguments on.
pub fn ramp(env: &Env, args: &[&str]) -> Output {
    ramp_command(env, args).output().expect("kubectl runs")
}

/// The command `ramp` runs, for plugin invocations that keep running (`--watch`).
pub fn ramp_command(env: &Env, args: &[&str]) -> Command {
    let mut command = plugin_command(args);
    command.arg("--kubeconfig").arg(&env.kubeconfig);
    command
}

/// `kubectl ramp ARGS` with the plugin's directory first on PATH, so kubectl's plugin discovery finds it.
pub fn plugin_command(args: &[&str]) -> Command {
    let bin_dir = Path::new(PLUGIN)
        .parent()
        .expect("the plugin has a directory");
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut command = Command::new("kubectl");
    command.arg("ramp").args(args).env("PATH", path);
    command
}

pub fn ramp_ok(env: &Env, args: &[&str]) -> String {
    let out = ramp(env, args);
    assert!(
        out.status.success(),
        "kubectl ramp {} failed: {}{}",
        args.join(" "),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A command that keeps printing (`--watch`, `demo`), its standard output collected as it comes; its
/// standard error goes to the test's.
pub struct Follow {
    child: std::process::Child,
    output: std::sync::Arc<std::sync::Mutex<String>>,
    reader: Option<std::thread::JoinHandle<()>>,
}

impl Follow {
    pub fn start(mut command: Command) -> Follow {
        let mut child = command
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::inherit())
            .spawn()
            .expect("the command starts");
        let stdout = child.stdout.take().expect("stdout is piped");
        let output = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let sink = output.clone();
        let reader = std::thread::spawn(move || {
            use std::io::BufRead as _;
            for line in std::io::BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
            {
                let mut text = sink.lock().unwrap_or_else(|p| p.into_inner());
                text.push_str(&line);
                text.push('\n');
            }
        });
        Follow {
            child,
            output,
            reader: Some(reader),
        }
    }

    /// What it printed so far.
    pub fn text(&self) -> String {
        self.output
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Sends SIGINT, as Ctrl-C in a terminal does.
    pub fn interrupt(&self) {
        let pid = self.child.id().to_string();
        let status = Command::new("kill")
            .args(["-INT", &pid])
            .status()
            .expect("kill runs");
        assert!(status.success(), "kill -INT {pid} failed");
    }

    /// Waits up to `timeout` for it to exit by itself, killing it after that: its exit status (`None`
    /// when it had to be killed) and everything it printed.
    pub fn finish(mut self, timeout: Duration) -> (Option<std::process::ExitStatus>, String) {
        let deadline = Instant::now() + timeout;
        let status = loop {
            match self.child.try_wait() {
                Ok(Some(status)) => break Some(status),
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(100));
                }
                _ => {
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    break None;
                }
            }
        };
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
        (status, self.text())
    }

    /// Stops it and returns everything it printed.
    pub fn stop(mut self) -> String {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
        self.text()
    }
}

impl Drop for Follow {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A free local port for the controller's /metrics.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// `GET /metrics` over plain HTTP/1.0.
pub fn scrape(port: u16) -> Result<String, String> {
    let mut stream =
        std::net::TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
    stream
        .write_all(b"GET /metrics HTTP/1.0\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .map_err(|e| e.to_string())?;
    let mut text = String::new();
    stream
        .read_to_string(&mut text)
        .map_err(|e| e.to_string())?;
    Ok(text)
}
