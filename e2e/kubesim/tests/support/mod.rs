//! Helpers shared by kubesim's integration tests: starting servers, polling with a deadline, calling the admin
//! endpoints and installing the project's CRDs.
#![allow(dead_code)]

use std::future::Future;
use std::path::PathBuf;
use std::time::Duration;

use axum::http::{self, HeaderValue};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, PostParams};
use serde_json::Value;

/// How long a test waits for the simulated cluster to converge before failing.
pub const DEADLINE: Duration = Duration::from_secs(10);

/// A kubesim with the whole simulated cluster running.
pub async fn start() -> kubesim::Kubesim {
    kubesim::Kubesim::start(kubesim::Config::default())
        .await
        .expect("kubesim starts")
}

/// A kubesim serving the API only: no controller or kubelet writes behind the test's back.
pub async fn start_api_only() -> kubesim::Kubesim {
    let sim = kubesim::SimConfig {
        replicasets: false,
        deployments: false,
        jobs: false,
        endpoints: false,
        kubelet: false,
        traffic: false,
        ..Default::default()
    };
    kubesim::Kubesim::start(kubesim::Config {
        sim,
        ..Default::default()
    })
    .await
    .expect("kubesim starts")
}

/// A client that identifies itself with this user agent.
pub fn client_with_agent(sim: &kubesim::Kubesim, user_agent: &'static str) -> kube::Client {
    let mut config = kube::Config::new(sim.url.parse().expect("kubesim URL parses"));
    config.headers.push((
        http::header::USER_AGENT,
        HeaderValue::from_static(user_agent),
    ));
    kube::Client::try_from(config).expect("client builds")
}

/// Polls `check` until it returns `Some`, failing the test with `what` after [`DEADLINE`].
pub async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after {DEADLINE:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Sends a request to any path (the admin endpoints included) and returns the body as JSON.
pub async fn call(client: &kube::Client, method: &str, path: &str, body: Option<Value>) -> Value {
    let request = http::Request::builder()
        .method(method)
        .uri(path)
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(body.map(|b| b.to_string().into_bytes()).unwrap_or_default())
        .expect("request builds");
    let text = client
        .request_text(request)
        .await
        .unwrap_or_else(|e| panic!("{method} {path} failed: {e}"));
    serde_json::from_str(&text).unwrap_or(Value::String(text))
}

/// The API error a result carries, failing the test if the call succeeded or failed otherwise.
pub fn api_error<T: std::fmt::Debug>(result: kube::Result<T>) -> kube::core::Status {
    match result {
        Err(kube::Error::Api(status)) => *status,
        other => panic!("expected an API error, got {other:?}"),
    }
}

/// The repository root (two levels above this crate).
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Every YAML document of a file, as JSON.
pub fn yaml_documents(path: &std::path::Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_norway::Deserializer::from_str(&text)
        .map(|doc| serde::Deserialize::deserialize(doc).expect("YAML document parses"))
        .filter(|doc: &Value| !doc.is_null())
        .collect()
}

/// Creates the CRD in `crds/<file>` and returns it as stored.
pub async fn install_crd(client: &kube::Client, file: &str) -> CustomResourceDefinition {
    let doc = yaml_documents(&repo_root().join("crds").join(file))
        .into_iter()
        .next()
        .expect("the CRD file has a document");
    let crd: CustomResourceDefinition = serde_json::from_value(doc).expect("a CRD");
    Api::<CustomResourceDefinition>::all(client.clone())
        .create(&PostParams::default(), &crd)
        .await
        .expect("CRD is accepted")
}

/// The Rollout resource, for dynamic clients.
pub fn rollout_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("argoproj.io", "v1alpha1", "Rollout"),
        "rollouts",
    )
}

/// A dynamic API for Rollouts in the default namespace.
pub fn rollouts(client: &kube::Client) -> Api<DynamicObject> {
    Api::namespaced_with(client.clone(), "default", &rollout_resource())
}
