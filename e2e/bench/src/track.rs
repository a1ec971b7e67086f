//! Watches that record when things happened: Rollouts becoming Healthy at a generation, and every change
//! to the objects of a namespace with the moment its event arrived.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt as _;
use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, DynamicObject};
use kube::runtime::watcher;
use serde::{Deserialize, Deserializer};

use crate::harness::NAMESPACE;

/// A Rollout as the tracker decodes it: the identity its watch needs and the status fields it reads.
///
/// The driver shares the machine with the processes it measures, and decoding every watch event of
/// 10,000 Rollouts whole (spec, pod template, managed fields) cost it about a tenth of a core during a
/// cold start; serde skips the fields named nowhere here without building them.
#[derive(Clone, Debug, Deserialize)]
struct TrackedRollout {
    #[serde(deserialize_with = "identity")]
    metadata: ObjectMeta,
    #[serde(default)]
    status: TrackedStatus,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct TrackedStatus {
    observed_generation: Option<String>,
    phase: Option<String>,
    #[serde(rename = "stableRS")]
    stable_rs: Option<String>,
    current_pod_hash: Option<String>,
    current_step_index: Option<i64>,
    pause_conditions: Vec<serde::de::IgnoredAny>,
    updated_replicas: Option<i64>,
}

/// `metadata` with only what the watch and the views read: name, uid, generation, resourceVersion.
fn identity<'de, D: Deserializer<'de>>(deserializer: D) -> Result<ObjectMeta, D::Error> {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Identity {
        name: Option<String>,
        uid: Option<String>,
        generation: Option<i64>,
        resource_version: Option<String>,
    }
    let identity = Identity::deserialize(deserializer)?;
    Ok(ObjectMeta {
        name: identity.name,
        uid: identity.uid,
        generation: identity.generation,
        resource_version: identity.resource_version,
        namespace: Some(NAMESPACE.to_string()),
        ..ObjectMeta::default()
    })
}

impl kube::Resource for TrackedRollout {
    type DynamicType = ();
    type Scope = NamespaceResourceScope;

    fn kind(_: &()) -> Cow<'_, str> {
        "Rollout".into()
    }
    fn group(_: &()) -> Cow<'_, str> {
        "argoproj.io".into()
    }
    fn version(_: &()) -> Cow<'_, str> {
        "v1alpha1".into()
    }
    fn plural(_: &()) -> Cow<'_, str> {
        "rollouts".into()
    }
    fn meta(&self) -> &ObjectMeta {
        &self.metadata
    }
    fn meta_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
}

/// What the driver needs of a Rollout's status.
#[derive(Debug, Clone, Default)]
pub struct RolloutView {
    pub uid: String,
    pub generation: i64,
    pub observed_generation: i64,
    pub phase: String,
    pub stable_rs: String,
    pub current_pod_hash: String,
    pub step_index: Option<i64>,
    pub paused: bool,
    /// The first moment it was seen Healthy at `generation`.
    pub healthy_since: Option<Instant>,
    /// When each step index was first seen at `generation`, in the order seen.
    pub steps_reached: Vec<(i64, Instant)>,
    /// `status.updatedReplicas`: pods of the current revision.
    pub updated_replicas: i64,
    /// When `generation` first counted a pod of its revision.
    pub first_updated_pod: Option<Instant>,
}

impl RolloutView {
    fn of(object: TrackedRollout) -> RolloutView {
        let TrackedRollout { metadata, status } = object;
        RolloutView {
            uid: metadata.uid.unwrap_or_default(),
            generation: metadata.generation.unwrap_or(0),
            observed_generation: status
                .observed_generation
                .and_then(|generation| generation.parse().ok())
                .unwrap_or(-1),
            phase: status.phase.unwrap_or_default(),
            stable_rs: status.stable_rs.unwrap_or_default(),
            current_pod_hash: status.current_pod_hash.unwrap_or_default(),
            step_index: status.current_step_index,
            paused: !status.pause_conditions.is_empty(),
            healthy_since: None,
            steps_reached: Vec::new(),
            updated_replicas: status.updated_replicas.unwrap_or(0),
            first_updated_pod: None,
        }
    }

    /// This view, seen at `now` after `before`: keeps what was first seen at the same generation and
    /// notes what is seen first now.
    fn after(mut self, before: Option<&RolloutView>, now: Instant) -> RolloutView {
        if let Some(old) = before.filter(|old| old.generation == self.generation) {
            self.healthy_since = old.healthy_since;
            self.steps_reached = old.steps_reached.clone();
            self.first_updated_pod = old.first_updated_pod;
        }
        if !self.healthy() {
            self.healthy_since = None;
        } else if self.healthy_since.is_none() {
            self.healthy_since = Some(now);
        }
        if self.observed_generation == self.generation
            && let Some(step) = self.step_index
            && !self.steps_reached.iter().any(|(seen, _)| *seen == step)
        {
            self.steps_reached.push((step, now));
        }
        // Counted once the release started (step 0): before, the count is the last release's.
        if self.first_updated_pod.is_none()
            && self.updated_replicas > 0
            && self.steps_reached.iter().any(|(step, _)| *step == 0)
        {
            self.first_updated_pod = Some(now);
        }
        self
    }

    /// Healthy, at the current generation, fully promoted.
    pub fn healthy(&self) -> bool {
        self.phase == "Healthy"
            && self.observed_generation == self.generation
            && !self.current_pod_hash.is_empty()
            && self.stable_rs == self.current_pod_hash
    }
}

/// The Rollouts of the namespace as the latest watch events show them.
#[derive(Clone)]
pub struct RolloutTracker {
    views: Arc<Mutex<HashMap<String, RolloutView>>>,
    task: Arc<tokio::task::JoinHandle<()>>,
}

impl Drop for RolloutTracker {
    fn drop(&mut self) {
        if Arc::strong_count(&self.task) == 1 {
            self.task.abort();
        }
    }
}

impl RolloutTracker {
    pub fn start(client: &kube::Client) -> RolloutTracker {
        let api: Api<TrackedRollout> = Api::namespaced(client.clone(), NAMESPACE);
        let views: Arc<Mutex<HashMap<String, RolloutView>>> = Arc::default();
        let sink = views.clone();
        let task = tokio::spawn(async move {
            let mut events = watcher(api, watcher::Config::default()).boxed();
            while let Some(event) = events.next().await {
                let Ok(event) = event else { continue };
                let now = Instant::now();
                let Ok(mut views) = sink.lock() else { return };
                match event {
                    watcher::Event::Apply(object) | watcher::Event::InitApply(object) => {
                        let Some(name) = object.metadata.name.clone() else {
                            continue;
                        };
                        let view = RolloutView::of(object).after(views.get(&name), now);
                        views.insert(name, view);
                    }
                    watcher::Event::Delete(object) => {
                        if let Some(name) = &object.metadata.name {
                            views.remove(name);
                        }
                    }
                    watcher::Event::Init | watcher::Event::InitDone => {}
                }
            }
        });
        RolloutTracker {
            views,
            task: Arc::new(task),
        }
    }

    pub fn get(&self, name: &str) -> Option<RolloutView> {
        self.views.lock().ok()?.get(name).cloned()
    }

    pub fn healthy_count(&self) -> usize {
        self.views
            .lock()
            .map(|views| views.values().filter(|view| view.healthy()).count())
            .unwrap_or(0)
    }

    /// Waits until `count` Rollouts are Healthy; false on timeout.
    pub async fn wait_all_healthy(&self, count: usize, timeout: Duration) -> bool {
        let start = Instant::now();
        while start.elapsed() < timeout {
            if self.healthy_count() >= count {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        false
    }

    /// Waits until `name` is Healthy at `generation` or later; returns when it first was.
    pub async fn wait_healthy_at(
        &self,
        name: &str,
        generation: i64,
        timeout: Duration,
    ) -> Option<Instant> {
        let start = Instant::now();
        while start.elapsed() < timeout {
            if let Some(view) = self.get(name)
                && view.generation >= generation
                && let Some(since) = view.healthy_since
            {
                return Some(since);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        None
    }

    /// Waits until `check` holds for `name`.
    pub async fn wait_for(
        &self,
        name: &str,
        timeout: Duration,
        check: impl Fn(&RolloutView) -> bool,
    ) -> Option<RolloutView> {
        let start = Instant::now();
        while start.elapsed() < timeout {
            if let Some(view) = self.get(name)
                && check(&view)
            {
                return Some(view);
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        None
    }
}

/// One change seen on a watch: its kind, resourceVersion, and when its event arrived.
#[derive(Debug, Clone)]
pub struct Change {
    pub kind: String,
    pub resource_version: u64,
    pub at: Instant,
}

/// Every change to the watched kinds, in arrival order.
#[derive(Clone, Default)]
pub struct ChangeLog {
    changes: Arc<Mutex<Vec<Change>>>,
    arrived: Arc<tokio::sync::Notify>,
    tasks: Arc<Mutex<Vec<tokio::task::JoinHandle<()>>>>,
}

impl ChangeLog {
    /// Starts recording the changes of one kind.
    pub fn watch(&self, kind: &str, api: Api<DynamicObject>) {
        let sink = self.changes.clone();
        let arrived = self.arrived.clone();
        let kind = kind.to_string();
        let task = tokio::spawn(async move {
            let mut events = watcher(api, watcher::Config::default()).boxed();
            while let Some(event) = events.next().await {
                let at = Instant::now();
                let object = match event {
                    Ok(watcher::Event::Apply(object)) | Ok(watcher::Event::Delete(object)) => {
                        object
                    }
                    _ => continue,
                };
                let resource_version = object
                    .metadata
                    .resource_version
                    .as_deref()
                    .and_then(|rv| rv.parse().ok())
                    .unwrap_or(0);
                if let Ok(mut changes) = sink.lock() {
                    changes.push(Change {
                        kind: kind.clone(),
                        resource_version,
                        at,
                    });
                }
                arrived.notify_waiters();
            }
        });
        if let Ok(mut tasks) = self.tasks.lock() {
            tasks.push(task);
        }
    }

    /// The highest resourceVersion seen so far.
    pub fn latest_version(&self) -> u64 {
        self.changes
            .lock()
            .ok()
            .and_then(|changes| changes.iter().map(|c| c.resource_version).max())
            .unwrap_or(0)
    }

    fn last_arrival(&self) -> Option<Instant> {
        self.changes.lock().ok()?.last().map(|c| c.at)
    }

    /// Waits until no change has arrived for `quiet`.
    pub async fn wait_quiet(&self, quiet: Duration, timeout: Duration) {
        let start = Instant::now();
        while start.elapsed() < timeout {
            if self.last_arrival().is_none_or(|at| at.elapsed() >= quiet) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The first change with a resourceVersion above `version`, waiting up to `timeout` for it.
    pub async fn first_after(&self, version: u64, timeout: Duration) -> Option<Change> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let arrived = self.arrived.notified();
            if let Some(change) = self.earliest_after(version) {
                // Watches of different kinds deliver independently: give a change of another kind with
                // a lower resourceVersion a moment to arrive before taking the first one seen.
                tokio::time::sleep(Duration::from_millis(20)).await;
                return self.earliest_after(version).or(Some(change));
            }
            if tokio::time::timeout_at(deadline, arrived).await.is_err() {
                return None;
            }
        }
    }

    fn earliest_after(&self, version: u64) -> Option<Change> {
        let changes = self.changes.lock().ok()?;
        changes
            .iter()
            .filter(|c| c.resource_version > version)
            .min_by_key(|c| c.resource_version)
            .cloned()
    }
}

impl Drop for ChangeLog {
    fn drop(&mut self) {
        if Arc::strong_count(&self.tasks) == 1
            && let Ok(tasks) = self.tasks.lock()
        {
            for task in tasks.iter() {
                task.abort();
            }
        }
    }
}
