//! A real Prometheus scrapes kubesim's simulated traffic: the error ratio per pod-template hash that an
//! analysis query computes must match the error rates the pods were given.

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::Service;
use kube::api::{Api, PostParams};
use serde_json::{Value, json};

use kubesim::prometheus::{Prometheus, TRAFFIC_METRICS_PATH};
use support::{call, start};

/// How long Prometheus gets to start and collect enough samples.
const PROMETHEUS_DEADLINE: Duration = Duration::from_secs(25);

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

    let prometheus = Prometheus::start("kubesim", &sim.address.to_string(), TRAFFIC_METRICS_PATH);
    let deadline = tokio::time::Instant::now() + PROMETHEUS_DEADLINE;
    let ratios = loop {
        let ratios: BTreeMap<String, f64> = prometheus
            .query(ERROR_RATIO)
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
        .unwrap_or_default();
    assert_eq!(
        pods.first()
            .and_then(|s| s.pointer("/value/1"))
            .and_then(Value::as_str),
        Some("4")
    );
}
