//! A real Prometheus server for tests, scraping kubesim's simulated traffic every second. It is the
//! Debian `prometheus` binary, started as a child process and stopped (its storage removed) when dropped.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use crate::json::At;

/// Where kubesim serves its traffic counters in Prometheus text format.
pub const TRAFFIC_METRICS_PATH: &str = "/kubesim/traffic/metrics";

/// A running Prometheus server.
pub struct Prometheus {
    child: Option<Child>,
    /// `host:port` of its HTTP API.
    pub address: String,
    dir: PathBuf,
    config: PathBuf,
}

impl Prometheus {
    /// Starts Prometheus scraping `target` (host:port) at `metrics_path` every second; `name` keeps
    /// the storage of concurrent tests apart. Panics with the fix when the binary is missing.
    pub fn start(name: &str, target: &str, metrics_path: &str) -> Prometheus {
        let dir = std::env::temp_dir().join(format!("prometheus-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("data")).expect("Prometheus scratch directory");
        let config = dir.join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n- job_name: kubesim\n  metrics_path: {metrics_path}\n  static_configs:\n  - targets: ['{target}']\n"
            ),
        )
        .expect("Prometheus configuration");
        let mut prometheus = Prometheus {
            child: None,
            address: format!("127.0.0.1:{}", free_port()),
            dir,
            config,
        };
        prometheus.resume();
        prometheus
    }

    /// Starts the server again on the same address and storage after [`Prometheus::stop`].
    pub fn resume(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("prometheus.log"))
            .expect("Prometheus log");
        let child = Command::new("prometheus")
            .arg(format!("--config.file={}", self.config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                self.dir.join("data").display()
            ))
            .arg(format!("--web.listen-address={}", self.address))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("prometheus is installed (apt-get install prometheus)");
        self.child = Some(child);
    }

    /// Kills the server, as an outage would.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// The last lines of its log, for failure messages.
    pub fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(self.dir.join("prometheus.log")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(15)..].join("\n")
    }

    /// An instant query's result vector, or `None` while Prometheus cannot answer. Blocking.
    pub fn query(&self, promql: &str) -> Option<Vec<Value>> {
        let query = serde_urlencoded::to_string([("query", promql)]).ok()?;
        let (status, body) = http_get(&self.address, &format!("/api/v1/query?{query}"))?;
        if status != 200 {
            return None;
        }
        let answer: Value = serde_json::from_str(&body).ok()?;
        answer.at("/data/result")?.as_array().cloned()
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// A plain HTTP/1.0 GET: the status code and body, or `None` if the server is not answering.
fn http_get(address: &str, path: &str) -> Option<(u16, String)> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(address).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    let request = format!("GET {path} HTTP/1.0\r\nHost: {address}\r\n\r\n");
    stream.write_all(request.as_bytes()).ok()?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response).ok()?;
    let text = String::from_utf8_lossy(&response);
    let (head, body) = text.split_once("\r\n\r\n")?;
    let status = head.split_whitespace().nth(1)?.parse().ok()?;
    Some((status, body.to_string()))
}
