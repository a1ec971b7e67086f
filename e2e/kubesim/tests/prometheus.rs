//! A real Prometheus scrapes kubesim's simulated traffic: the error ratio per pod-template hash that an
//! analysis query computes must match the error rates the pods were given.

mod support;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::Service;
use kube::api::{Api, PostParams};
use serde_json::{Value, json};

use support::{call, start};

/// How long Prometheus gets to start and collect enough samples.
const PROMETHEUS_DEADLINE: Duration = Duration::from_secs(25);

/// A Prometheus server, killed and its storage removed when the test ends, pass or fail.
struct Prometheus {
    child: Child,
    address: String,
    dir: PathBuf,
}

impl Prometheus {
    /// Starts Prometheus scraping `target` (host:port) at `metrics_path` every second.
    fn start(target: &str, metrics_path: &str) -> Prometheus {
        let dir = std::env::temp_dir().join(format!("kubesim-prometheus-{}", std::process::id()));
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
        let address = format!("127.0.0.1:{}", free_port());
        let log = std::fs::File::create(dir.join("prometheus.log")).expect("Prometheus log");
        let child = Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("data").display()
            ))
            .arg(format!("--web.listen-address={address}"))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("prometheus is installed (apt-get install prometheus)");
        Prometheus {
            child,
            address,
            dir,
        }
    }

    fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(self.dir.join("prometheus.log")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(15)..].join("\n")
    }

    /// An instant query's result vector, or `None` while Prometheus cannot answer.
    async fn query(&self, promql: &str) -> Option<Vec<Value>> {
        let query = serde_urlencoded::to_string([("query", promql)]).ok()?;
        let (status, body) = http_get(&self.address, &format!("/api/v1/query?{query}")).await?;
        if status != 200 {
            return None;
        }
        let answer: Value = serde_json::from_str(&body).ok()?;
        answer.pointer("/data/result")?.as_array().cloned()
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
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
async fn http_get(address: &str, path: &str) -> Option<(u16, String)> {
    let (address, path) = (address.to_string(), path.to_string());
    tokio::task::spawn_blocking(move || blocking_get(&address, &path))
        .await
        .ok()?
}

fn blocking_get(address: &str, path: &str) -> Option<(u16, String)> {
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

fn replica_set(hash: &str, error_rate: &str) -> ReplicaSet {
    serde_json::from_value(json!({
        "metadata": {"name": format!("checkout-{hash}")},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "checkout", "rollouts-pod-template-hash": hash}},
            "template": {
                "metadata": {
                    "labels": {"app": "checkout", "rollouts-pod-template-hash": hash},
                    "annotations": {"kubesim.ramp.dev/error-rate": error_rate},
                },
                "spec": {"containers": [{"name": "app", "image": "checkout:1"}]},
            },
        },
    }))
    .expect("a ReplicaSet")
}

const ERROR_RATIO: &str = "sum by (rollouts_pod_template_hash) (rate(http_requests_total{service=\"checkout\",code=\"500\"}[10s])) / sum by (rollouts_pod_template_hash) (rate(http_requests_total{service=\"checkout\"}[10s]))";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_measures_the_error_rate_of_each_pod_template() {
    let sim = start().await;
    let client = sim.client().unwrap();
    let service: Service = serde_json::from_value(json!({
        "metadata": {"name": "checkout"},
        "spec": {"selector": {"app": "checkout"}, "ports": [{"port": 80}]},
    }))
    .unwrap();
    Api::<Service>::default_namespaced(client.clone())
        .create(&PostParams::default(), &service)
        .await
        .unwrap();
    let replica_sets: Api<ReplicaSet> = Api::default_namespaced(client.clone());
    for (hash, rate) in [("aaa", "0.1"), ("bbb", "0.5")] {
        replica_sets
            .create(&PostParams::default(), &replica_set(hash, rate))
            .await
            .unwrap();
    }
    let set = call(
        &client,
        "PUT",
        "/kubesim/traffic/default/checkout",
        Some(json!({"requestsPerSecond": 200})),
    )
    .await;
    assert_eq!(set["requestsPerSecond"], 200.0);

    let prometheus = Prometheus::start(&sim.address.to_string(), "/kubesim/traffic/metrics");
    let deadline = tokio::time::Instant::now() + PROMETHEUS_DEADLINE;
    let ratios = loop {
        let ratios: BTreeMap<String, f64> = prometheus
            .query(ERROR_RATIO)
            .await
            .unwrap_or_default()
            .iter()
            .filter_map(|sample| {
                let hash = sample
                    .pointer("/metric/rollouts_pod_template_hash")?
                    .as_str()?;
                let value = sample.pointer("/value/1")?.as_str()?.parse().ok()?;
                Some((hash.to_string(), value))
            })
            .filter(|(_, value): &(String, f64)| value.is_finite())
            .collect();
        if ratios.len() == 2 {
            break ratios;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "Prometheus had no error ratio for both hashes after {PROMETHEUS_DEADLINE:?} (got {ratios:?}); its log:\n{}",
            prometheus.log_tail()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    for (hash, expected) in [("aaa", 0.1), ("bbb", 0.5)] {
        let measured = ratios[hash];
        assert!(
            (measured - expected).abs() <= 0.1 * expected,
            "error ratio of {hash}: measured {measured}, configured {expected}"
        );
    }

    // The traffic really flowed through Prometheus: it saw requests from all four pods.
    let pods = prometheus
        .query("count(http_requests_total{service=\"checkout\",code=\"200\"} > 0)")
        .await
        .unwrap_or_default();
    assert_eq!(
        pods.first()
            .and_then(|s| s.pointer("/value/1"))
            .and_then(Value::as_str),
        Some("4")
    );
}
