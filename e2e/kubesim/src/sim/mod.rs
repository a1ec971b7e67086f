//! The simulated cluster: the controllers and kubelet a real cluster runs, each a small reconciler fed by the
//! API server's change feed, writing through the same API semantics as any client (but not through HTTP, so
//! they are never counted or fault-injected).

pub mod behaviour;
mod deployment;
mod endpoints;
mod job;
mod kubelet;
mod replicaset;
pub mod traffic;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tokio::sync::broadcast::error::TryRecvError;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::apiserver::{Cluster, WriteOptions};
use crate::json::At;
use crate::registry::ResourceType;
use crate::store::{Change, ObjectKey};

/// Which parts of the simulated cluster run, and how fast pods come up.
#[derive(Debug, Clone)]
pub struct SimConfig {
    pub replicasets: bool,
    pub deployments: bool,
    pub jobs: bool,
    pub endpoints: bool,
    pub kubelet: bool,
    pub traffic: bool,
    /// Time from a pod's creation to Running.
    pub pod_start_delay: Duration,
    /// Time from a pod's creation to Ready, unless its template says otherwise.
    pub pod_ready_delay: Duration,
}

impl Default for SimConfig {
    fn default() -> SimConfig {
        SimConfig {
            replicasets: true,
            deployments: true,
            jobs: true,
            endpoints: true,
            kubelet: true,
            traffic: true,
            pod_start_delay: Duration::from_millis(100),
            pod_ready_delay: Duration::from_millis(500),
        }
    }
}

/// A simulated controller: which keys a change concerns, and how to bring one key to its desired state.
pub(crate) trait Reconciler: Send + 'static {
    fn name(&self) -> &'static str;
    /// Keys to reconcile because of this change.
    fn keys_for(&mut self, cluster: &Cluster, change: &Change) -> Vec<ObjectKey>;
    /// Every key, for start-up and after the feed lagged.
    fn all_keys(&mut self, cluster: &Cluster) -> Vec<ObjectKey>;
    /// Brings one key to its desired state; `Some(d)` asks to be called again after `d`.
    fn reconcile(&mut self, cluster: &Cluster, key: &ObjectKey) -> Option<Duration>;
}

pub fn spawn(
    cluster: Arc<Cluster>,
    traffic: Arc<traffic::Traffic>,
    config: &SimConfig,
) -> Vec<JoinHandle<()>> {
    let mut handles = Vec::new();
    let mut start = |enabled: bool, reconciler: Box<dyn Reconciler>| {
        if enabled {
            handles.push(tokio::spawn(run(cluster.clone(), reconciler)));
        }
    };
    start(
        config.replicasets,
        Box::new(replicaset::ReplicaSetController),
    );
    start(
        config.deployments,
        Box::new(deployment::DeploymentController),
    );
    start(config.jobs, Box::new(job::JobController));
    start(config.endpoints, Box::new(endpoints::EndpointsController));
    start(config.kubelet, Box::new(kubelet::Kubelet::new(config)));
    if config.traffic {
        handles.push(tokio::spawn(traffic::run(cluster.clone(), traffic)));
    }
    handles
}

/// The loop every simulated controller runs: drain the feed into a set of pending keys, reconcile them, and
/// sleep until the next change or the earliest requested requeue.
async fn run(cluster: Arc<Cluster>, mut reconciler: Box<dyn Reconciler>) {
    let mut feed = cluster.subscribe();
    let mut pending: BTreeSet<ObjectKey> = reconciler.all_keys(&cluster).into_iter().collect();
    let mut timers: BTreeMap<ObjectKey, Instant> = BTreeMap::new();
    loop {
        loop {
            match feed.try_recv() {
                Ok(change) => pending.extend(reconciler.keys_for(&cluster, &change)),
                Err(TryRecvError::Lagged(_)) => pending.extend(reconciler.all_keys(&cluster)),
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Closed) => return,
            }
        }
        let now = Instant::now();
        let due: Vec<ObjectKey> = timers
            .iter()
            .filter(|(_, at)| **at <= now)
            .map(|(k, _)| k.clone())
            .collect();
        for key in due {
            timers.remove(&key);
            pending.insert(key);
        }
        for key in std::mem::take(&mut pending) {
            if let Some(after) = reconciler.reconcile(&cluster, &key) {
                let at = Instant::now() + after;
                let entry = timers.entry(key).or_insert(at);
                *entry = (*entry).min(at);
            }
        }
        let next_timer = timers.values().min().copied();
        tokio::select! {
            change = feed.recv() => match change {
                Ok(change) => pending.extend(reconciler.keys_for(&cluster, &change)),
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => pending.extend(reconciler.all_keys(&cluster)),
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
            },
            _ = sleep_until_opt(next_timer) => {}
        }
    }
}

async fn sleep_until_opt(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Write options for a simulated controller's own writes.
pub(crate) fn as_controller(name: &str) -> WriteOptions {
    WriteOptions {
        user_agent: Some(format!("kubesim/{name}")),
        ..WriteOptions::default()
    }
}

pub(crate) fn builtin(cluster: &Cluster, group: &str, plural: &str) -> Option<Arc<ResourceType>> {
    let version = if group == "autoscaling" { "v2" } else { "v1" };
    cluster.resource_type(group, version, plural)
}

/// The object's key, or none for objects of other resources.
pub(crate) fn key_if(change: &Change, group: &str, plural: &str) -> Option<ObjectKey> {
    (change.resource.group == group && change.resource.plural == plural)
        .then(|| key_of(&change.object))
}

pub(crate) fn key_of(obj: &Value) -> ObjectKey {
    (
        crate::store::namespace_of(obj).to_string(),
        crate::store::name_of(obj).to_string(),
    )
}

/// A workload and the kind of child it controls, for controllers that reconcile the owner when either changes.
pub(crate) struct Ownership {
    pub group: &'static str,
    pub plural: &'static str,
    pub kind: &'static str,
    pub child_group: &'static str,
    pub child_plural: &'static str,
}

impl Ownership {
    /// The owner's key when the owner itself changed, or when one of the children it controls did.
    pub fn keys_for(&self, change: &Change) -> Vec<ObjectKey> {
        if let Some(key) = key_if(change, self.group, self.plural) {
            return vec![key];
        }
        if key_if(change, self.child_group, self.child_plural).is_some()
            && let Some((owner, _)) = controller_of(&change.object, self.kind)
        {
            return vec![(change.namespace().to_string(), owner)];
        }
        Vec::new()
    }

    /// Every owner's key.
    pub fn all_keys(&self, cluster: &Cluster) -> Vec<ObjectKey> {
        all_of(cluster, builtin(cluster, self.group, self.plural).as_ref())
    }
}

/// The controller owner reference of an object, if it is of this kind: (name, uid).
pub(crate) fn controller_of(obj: &Value, kind: &str) -> Option<(String, String)> {
    obj.at("/metadata/ownerReferences")?
        .as_array()?
        .iter()
        .find_map(|r| {
            let is_controller = r.get("controller").and_then(Value::as_bool) == Some(true);
            (is_controller && r.get("kind").and_then(Value::as_str) == Some(kind)).then(|| {
                (
                    r.get("name")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_string(),
                    r.get("uid")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_string(),
                )
            })
        })
}

/// An owner reference that makes `owner` the controller of a new object.
pub(crate) fn controller_reference(owner: &Value) -> Value {
    serde_json::json!({
        "apiVersion": owner.get("apiVersion"), "kind": owner.get("kind"),
        "name": owner.at("/metadata/name"), "uid": owner.at("/metadata/uid"),
        "controller": true, "blockOwnerDeletion": true,
    })
}

/// Keys of every object of a resource.
pub(crate) fn all_of(cluster: &Cluster, rt: Option<&Arc<ResourceType>>) -> Vec<ObjectKey> {
    let Some(rt) = rt else { return Vec::new() };
    cluster
        .list(rt, None, &Default::default())
        .map(|page| page.items.iter().map(|o| key_of(o)).collect())
        .unwrap_or_default()
}

pub(crate) fn is_pod_ready(pod: &Value) -> bool {
    condition_true(pod, "Ready")
}

pub(crate) fn condition_true(obj: &Value, type_: &str) -> bool {
    obj.at("/status/conditions")
        .and_then(Value::as_array)
        .is_some_and(|c| {
            c.iter().any(|c| {
                c.get("type").and_then(Value::as_str) == Some(type_)
                    && c.get("status").and_then(Value::as_str) == Some("True")
            })
        })
}

pub(crate) fn is_terminating(obj: &Value) -> bool {
    obj.at("/metadata/deletionTimestamp").is_some()
}

pub(crate) fn pod_phase(pod: &Value) -> &str {
    pod.at("/status/phase")
        .and_then(Value::as_str)
        .unwrap_or("Pending")
}
