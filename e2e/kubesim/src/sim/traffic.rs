//! Synthetic request traffic: each Service with a request rate (set through the control handle, the admin
//! endpoint, or the Service annotation `kubesim.ramp.dev/requests-per-second`) sends that many requests per
//! second to its ready pods. Each pod answers 500 for its `error-rate` share and takes its `latency`. The
//! totals are exported in Prometheus text format for a real Prometheus to scrape.
//!
//! How requests are split across pods is the [`TrafficSplit`] extension point: today an even split over the
//! Service's ready endpoints; a traffic router (weights per ReplicaSet) plugs in there.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;

use super::behaviour::{PodBehaviour, REQUESTS_PER_SECOND, annotation};
use super::endpoints::selected_pods;
use super::{builtin, is_pod_ready};
use crate::apiserver::{Cluster, ListOptions};
use crate::json::At;
use crate::store::{name_of, namespace_of};

/// Upper bounds of the latency histogram, in seconds.
const BUCKETS: [f64; 11] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];
const TICK: Duration = Duration::from_secs(1);

/// Decides which share of a Service's requests each ready pod receives (shares sum to 1).
pub trait TrafficSplit: Send + Sync {
    fn split(&self, service: &Value, ready_pods: &[Value]) -> Vec<f64>;
}

/// Every ready endpoint gets the same share, as kube-proxy does.
pub struct EvenSplit;

impl TrafficSplit for EvenSplit {
    fn split(&self, _service: &Value, ready_pods: &[Value]) -> Vec<f64> {
        let n = ready_pods.len().max(1) as f64;
        vec![1.0 / n; ready_pods.len()]
    }
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct SeriesKey {
    namespace: String,
    service: String,
    pod: String,
    pod_template_hash: String,
}

#[derive(Debug, Clone, Default)]
struct Series {
    ok: f64,
    errors: f64,
    buckets: [f64; BUCKETS.len()],
    sum: f64,
}

#[derive(Default)]
struct TrafficState {
    rates: HashMap<(String, String), f64>,
    series: BTreeMap<SeriesKey, Series>,
}

/// The traffic simulator's state, shared by the ticker, the admin endpoint and the control handle.
pub struct Traffic {
    state: Mutex<TrafficState>,
    split: Box<dyn TrafficSplit>,
}

impl Default for Traffic {
    fn default() -> Traffic {
        Traffic {
            state: Mutex::default(),
            split: Box::new(EvenSplit),
        }
    }
}

impl Traffic {
    pub fn with_split(split: Box<dyn TrafficSplit>) -> Traffic {
        Traffic {
            state: Mutex::default(),
            split,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, TrafficState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Sets a Service's request rate (overrides its annotation); 0 stops its traffic.
    pub fn set_rate(&self, namespace: &str, service: &str, requests_per_second: f64) {
        self.lock().rates.insert(
            (namespace.to_string(), service.to_string()),
            requests_per_second.max(0.0),
        );
    }

    fn rate_of(&self, service: &Value) -> f64 {
        let key = (
            namespace_of(service).to_string(),
            name_of(service).to_string(),
        );
        if let Some(rate) = self.lock().rates.get(&key) {
            return *rate;
        }
        annotation(service, REQUESTS_PER_SECOND)
            .and_then(|r| r.parse().ok())
            .unwrap_or(0.0)
    }

    /// Sends `seconds` worth of requests to every Service with a rate.
    pub fn tick(&self, cluster: &Cluster, seconds: f64) {
        let Some(services) = builtin(cluster, "", "services") else {
            return;
        };
        let Ok(page) = cluster.list(&services, None, &ListOptions::default()) else {
            return;
        };
        for service in &page.items {
            let rate = self.rate_of(service);
            if rate <= 0.0 {
                continue;
            }
            let ready: Vec<Value> = selected_pods(cluster, service)
                .into_iter()
                .filter(is_pod_ready)
                .collect();
            let shares = self.split.split(service, &ready);
            let mut state = self.lock();
            for (pod, share) in ready.iter().zip(shares) {
                let behaviour = PodBehaviour::of(pod);
                let requests = rate * seconds * share;
                let key = SeriesKey {
                    namespace: namespace_of(service).to_string(),
                    service: name_of(service).to_string(),
                    pod: name_of(pod).to_string(),
                    pod_template_hash: pod
                        .at("/metadata/labels/rollouts-pod-template-hash")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_string(),
                };
                let series = state.series.entry(key).or_default();
                series.errors += requests * behaviour.error_rate;
                series.ok += requests * (1.0 - behaviour.error_rate);
                let latency = behaviour.latency.as_secs_f64();
                for (bucket, bound) in series.buckets.iter_mut().zip(BUCKETS) {
                    if latency <= bound {
                        *bucket += requests;
                    }
                }
                series.sum += requests * latency;
            }
        }
    }

    /// The counters in Prometheus text exposition format.
    pub fn exposition(&self) -> String {
        let state = self.lock();
        let mut out = String::new();
        out.push_str("# HELP http_requests_total Simulated HTTP requests served, by response code.\n# TYPE http_requests_total counter\n");
        for (key, series) in &state.series {
            let labels = labels(key);
            let _ = writeln!(
                out,
                "http_requests_total{{{labels},code=\"200\"}} {}",
                series.ok
            );
            let _ = writeln!(
                out,
                "http_requests_total{{{labels},code=\"500\"}} {}",
                series.errors
            );
        }
        out.push_str("# HELP http_request_duration_seconds Simulated request latency.\n# TYPE http_request_duration_seconds histogram\n");
        for (key, series) in &state.series {
            let labels = labels(key);
            let count = series.ok + series.errors;
            for (bucket, bound) in series.buckets.iter().zip(BUCKETS) {
                let _ = writeln!(
                    out,
                    "http_request_duration_seconds_bucket{{{labels},le=\"{bound}\"}} {bucket}"
                );
            }
            let _ = writeln!(
                out,
                "http_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {count}"
            );
            let _ = writeln!(
                out,
                "http_request_duration_seconds_sum{{{labels}}} {}",
                series.sum
            );
            let _ = writeln!(
                out,
                "http_request_duration_seconds_count{{{labels}}} {count}"
            );
        }
        out
    }
}

fn labels(key: &SeriesKey) -> String {
    format!(
        "namespace=\"{}\",service=\"{}\",pod=\"{}\",rollouts_pod_template_hash=\"{}\"",
        key.namespace, key.service, key.pod, key.pod_template_hash
    )
}

pub async fn run(cluster: Arc<Cluster>, traffic: Arc<Traffic>) {
    let mut ticker = tokio::time::interval(TICK);
    loop {
        ticker.tick().await;
        traffic.tick(&cluster, TICK.as_secs_f64());
    }
}
