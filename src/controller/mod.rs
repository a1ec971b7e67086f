//! The I/O shell around the planner: watches fill small caches (observe), `plan` decides, `act` writes.
//! Only this room talks to the API server; everything it decides comes from `crate::plan`.

mod act;
mod analysis;
mod analysisrun;
pub mod cache;
pub mod error;
mod events;
mod http;
pub mod leader;
pub mod metrics;
pub mod observe;
mod own_writes;
pub mod requests;

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::{Stream, StreamExt, TryStreamExt};
use jiff::Timestamp;
use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::{Pod, Service};
use kube::api::{Api, ListParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::{self, ObjectRef};
use kube::runtime::watcher::{self, Config as WatcherConfig, watcher};
use kube::runtime::{WatchStreamExt, reflector::Store};
use kube::{Client, Resource, ResourceExt};

pub use error::Error;
use leader::Leader;
use metrics::Metrics;
use observe::Caches;
use own_writes::{OwnWrites, ReplicaSetWrites};

use crate::api::constants::{LAST_APPLIED_ANNOTATION, POD_TEMPLATE_HASH_LABEL};
use crate::api::{AnalysisRun, AnalysisTemplate, ClusterAnalysisTemplate, Rollout};
use crate::plan::PodState;

/// How the controller runs; the binary fills this from flags and environment variables.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Watch one namespace, or all when `None`.
    pub namespace: Option<String>,
    /// Only Rollouts labelled with this instance id (`argo-rollouts.argoproj.io/controller-instance-id`).
    pub instance_id: Option<String>,
    /// This process's identity in the Lease and on Events.
    pub identity: String,
    /// `None` switches leader election off (this process always writes).
    pub lease: Option<leader::LeaseSettings>,
    /// Where `/metrics` is served.
    pub metrics_address: SocketAddr,
    /// Where `/healthz` and `/readyz` are served.
    pub health_address: SocketAddr,
    /// How many Rollouts (and, separately, AnalysisRuns) are reconciled at once.
    pub concurrency: u16,
    /// Where Prometheus metrics without an `address` query (`--prometheus-address`).
    pub prometheus_address: Option<String>,
}

/// What every reconcile shares.
pub struct Context {
    pub client: Client,
    pub settings: Settings,
    pub caches: Caches,
    pub leader: Arc<Leader>,
    pub metrics: Arc<Metrics>,
    /// Posts Events in the background.
    pub events: events::Recorder,
    /// Consecutive failures per Rollout, for back-off.
    failures: Mutex<HashMap<ObjectRef<Rollout>, u32>>,
    /// Rollouts (by uid) this process has reconciled as the leader, for `RolloutAddedToInformer`.
    seen: Mutex<HashSet<String>>,
    /// The versions this process last wrote each Rollout from.
    own_writes: OwnWrites,
    /// The versions this process last wrote each AnalysisRun's status from.
    analysis_writes: OwnWrites,
    /// The ReplicaSets each Rollout's last reconcile created, patched or deleted, until the cache shows it.
    replica_set_writes: ReplicaSetWrites,
    rollouts_synced: AtomicBool,
    /// The Rollouts as the watch last saw them.
    rollouts: Store<Rollout>,
    /// The AnalysisRuns as the AnalysisRun controller's watch last saw them.
    runs: Store<AnalysisRun>,
}

impl Context {
    /// Ready once the CRDs answered and every cache has its first full list.
    pub fn ready(&self) -> bool {
        self.rollouts_synced.load(Ordering::Acquire) && self.caches.synced()
    }

    /// When the watch no longer has this Rollout, forgets it and returns true. When it has another
    /// Rollout of the same name (deleted and created again), forgets only what is kept by uid: the
    /// metric series by name are the new one's.
    fn forget_if_deleted(&self, rollout: &Rollout) -> bool {
        match self.rollouts.get(&ObjectRef::from_obj(rollout)) {
            None => self.forget_rollout(rollout),
            Some(current) if current.metadata.uid != rollout.metadata.uid => {
                self.forget_by_uid(rollout)
            }
            Some(_) => return false,
        }
        true
    }

    /// Drops what this process keeps about a Rollout that is being deleted or is gone: its metric series
    /// and the bookkeeping of its writes, so memory does not grow with Rollouts created and deleted.
    fn forget_rollout(&self, rollout: &Rollout) {
        let namespace = rollout.namespace().unwrap_or_default();
        self.metrics.forget_rollout(&namespace, &rollout.name_any());
        self.forget_event_counts(&namespace, &rollout.name_any());
        self.metrics
            .object_deleted("rollouts", &namespace, &rollout.name_any(), Instant::now());
        self.failures
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&ObjectRef::from_obj(rollout));
        self.forget_by_uid(rollout);
    }

    /// Drops the Event counts of a name once neither a Rollout nor an AnalysisRun has it. The counts go
    /// by namespace and name alone, as Argo's do, so a run named like a Rollout shares the Rollout's,
    /// and deleting one of the two must not reset the other's.
    fn forget_event_counts(&self, namespace: &str, name: &str) {
        let rollout = ObjectRef::<Rollout>::new(name).within(namespace);
        let run = ObjectRef::<AnalysisRun>::new(name).within(namespace);
        if self.rollouts.get(&rollout).is_none() && self.runs.get(&run).is_none() {
            self.metrics.forget_events(namespace, name);
        }
    }

    /// After a re-list: drops the Event counts of names that neither a Rollout nor an AnalysisRun has
    /// any more. A Rollout held by a finalizer loses its other series when its deletion begins, so a
    /// re-list that misses its delete event finds nothing else of it to go by.
    fn forget_event_counts_gone(&self) {
        let gone = self.metrics.event_names_gone(|namespace, name| {
            self.rollouts
                .get(&ObjectRef::new(name).within(namespace))
                .is_some()
                || self
                    .runs
                    .get(&ObjectRef::new(name).within(namespace))
                    .is_some()
        });
        for (namespace, name) in &gone {
            self.metrics.forget_events(namespace, name);
        }
    }

    /// After the Rollout watch listed again (it was down, or its history expired): forgets the Rollouts
    /// deleted meanwhile, of which it sent no delete event, so their metric series do not stay on
    /// `/metrics` and their bookkeeping does not stay in memory.
    fn forget_rollouts_gone(&self) {
        let now = Instant::now();
        let gone = self.metrics.rollouts_gone(|namespace, name| {
            self.rollouts
                .get(&ObjectRef::new(name).within(namespace))
                .is_some()
        });
        for (namespace, name) in &gone {
            self.metrics.forget_rollout(namespace, name);
            self.metrics
                .object_deleted("rollouts", namespace, name, now);
        }
        self.forget_event_counts_gone();
        let live: HashSet<String> = self
            .rollouts
            .state()
            .iter()
            .filter_map(|rollout| rollout.uid())
            .collect();
        let kept = |uid: &str| live.contains(uid);
        self.seen
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|uid| kept(uid));
        self.own_writes.retain(kept);
        self.replica_set_writes.retain(kept);
        self.failures
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|rollout, _| self.rollouts.get(rollout).is_some());
        if !gone.is_empty() {
            tracing::info!(
                count = gone.len(),
                "forgot the Rollouts deleted while the watch was not looking"
            );
        }
    }

    /// Drops what is kept by the Rollout's uid: whether it was seen, and the bookkeeping of its writes.
    fn forget_by_uid(&self, rollout: &Rollout) {
        if let Some(uid) = rollout.uid() {
            self.seen
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&uid);
            self.own_writes.forget(&uid);
            self.replica_set_writes.forget(&uid);
        }
    }
}

/// Strips what Ramp never reads from cached objects: managed fields and the last-applied annotation.
fn strip<K: Resource>(object: &mut K) {
    let meta = object.meta_mut();
    meta.managed_fields = None;
    if let Some(annotations) = meta.annotations.as_mut() {
        annotations.remove(LAST_APPLIED_ANNOTATION);
    }
}

fn api<K>(client: &Client, namespace: Option<&str>) -> Api<K>
where
    K: Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>,
{
    match namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    }
}

/// Whether a cache's watch sees every object of its kind that the controller writes, and so owns the
/// request series that name them.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Coverage {
    /// Every one: a deleted object's request series go after their grace, whether the watch saw the
    /// delete or, after a re-list, no longer finds the object.
    Complete,
    /// Not all of them (AnalysisRuns without a pod-template-hash label are written but not cached here):
    /// the AnalysisRun controller's own watch, which sees every run it writes, forgets their series.
    Partial,
}

/// A watch that keeps a cache current and yields the objects it saw, deleted ones too (for triggering
/// their owners: a reconcile waiting for our own delete to show goes on when it does).
fn cached_watch<K, S>(
    api: Api<K>,
    config: WatcherConfig,
    ctx: Arc<Context>,
    cache: fn(&Context) -> &cache::Cache<S>,
    coverage: Coverage,
) -> impl Stream<Item = Result<K, watcher::Error>> + Send + 'static
where
    K: Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug + Send + Sync + 'static,
    K::DynamicType: Default,
    S: cache::Reduce<K> + Send + Sync + 'static,
{
    let resource = K::plural(&K::DynamicType::default()).into_owned();
    let mut requested_at_relist = metrics::RequestedAtRelist::default();
    watcher(api, config)
        .default_backoff()
        .modify(strip)
        .map_ok(move |event| {
            if let watcher::Event::Delete(object) = &event
                && coverage == Coverage::Complete
            {
                let meta = object.meta();
                ctx.metrics.object_deleted(
                    &resource,
                    meta.namespace.as_deref().unwrap_or_default(),
                    meta.name.as_deref().unwrap_or_default(),
                    Instant::now(),
                );
            }
            cache(&ctx).apply(&event);
            if coverage == Coverage::Complete {
                let cache = cache(&ctx);
                let gone = requested_at_relist.see(&event, &ctx.metrics, &resource, |ns, name| {
                    cache.get(ns, name).is_some()
                });
                let now = Instant::now();
                for (namespace, name) in gone {
                    ctx.metrics
                        .object_deleted(&resource, &namespace, &name, now);
                }
            }
            event
        })
        .touched_objects()
}

/// How long start-up keeps asking an API server that answers with errors or not at all, before giving up.
/// A control plane being upgraded or a single failed request must not take the controller down.
const PREFLIGHT_PATIENCE: Duration = Duration::from_secs(30);

/// Checks that the API server answers and serves Rollouts; the error says what to do. A missing CRD or a
/// missing permission fails at once; anything else (a 5xx, a 429, no connection) is retried with backoff
/// for [`PREFLIGHT_PATIENCE`], with a warning per attempt.
pub async fn preflight(client: &Client, namespace: Option<&str>) -> anyhow::Result<()> {
    let rollouts: Api<Rollout> = api(client, namespace);
    let started = Instant::now();
    let mut delay = Duration::from_millis(200);
    loop {
        let error = match rollouts.list(&ListParams::default().limit(1)).await {
            Ok(_) => return Ok(()),
            Err(kube::Error::Api(status)) if status.code == 404 => {
                return Err(anyhow::anyhow!(
                    "the API server does not serve rollouts.argoproj.io/v1alpha1: install the CRDs first (kubectl apply -f crds/)"
                ));
            }
            Err(kube::Error::Api(status)) if status.code == 401 || status.code == 403 => {
                return Err(anyhow::anyhow!(
                    "not allowed to list Rollouts ({}): apply the ClusterRole in manifests/ to this controller's ServiceAccount",
                    status.message
                ));
            }
            Err(e) => e,
        };
        if started.elapsed() + delay > PREFLIGHT_PATIENCE {
            return Err(anyhow::anyhow!(
                "cannot reach the API server (still failing after {}s): {error}; check --kubeconfig or the in-cluster service account, and that the API server is up",
                PREFLIGHT_PATIENCE.as_secs()
            ));
        }
        tracing::warn!(%error, retry_in = ?delay, "the API server did not answer the start-up check; retrying");
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(5));
    }
}

/// Runs the controller until the process is interrupted. Every request it sends through `client` is
/// counted in `controller_clientset_k8s_request_total`.
pub async fn run(client: Client, settings: Settings) -> anyhow::Result<()> {
    let metrics = Arc::new(Metrics::new());
    let client = requests::counted(client, metrics.clone());
    preflight(&client, settings.namespace.as_deref()).await?;
    let leader = match &settings.lease {
        Some(_) => Leader::standby(),
        None => Leader::always(),
    };
    let (reader, writer) = reflector::store::<Rollout>();
    let (runs, runs_writer) = reflector::store::<AnalysisRun>();
    let ctx = Arc::new(Context {
        client: client.clone(),
        caches: Caches::default(),
        leader: leader.clone(),
        metrics,
        events: events::Recorder::start(client.clone(), settings.identity.clone()),
        failures: Mutex::default(),
        seen: Mutex::default(),
        own_writes: OwnWrites::default(),
        analysis_writes: OwnWrites::default(),
        replica_set_writes: ReplicaSetWrites::default(),
        rollouts_synced: AtomicBool::new(false),
        rollouts: reader.clone(),
        runs,
        settings: settings.clone(),
    });
    let servers = http::serve(ctx.clone()).await?;
    if let Some(lease) = settings.lease.clone() {
        tokio::spawn(leader::run(client.clone(), lease, leader.clone()));
    }
    let ns = settings.namespace.as_deref();
    let managed = WatcherConfig::default().labels(POD_TEMPLATE_HASH_LABEL);
    let rollout_config = match &settings.instance_id {
        Some(id) => WatcherConfig::default().labels(&format!(
            "{}={id}",
            crate::api::constants::CONTROLLER_INSTANCE_ID_LABEL
        )),
        None => WatcherConfig::default().labels(&format!(
            "!{}",
            crate::api::constants::CONTROLLER_INSTANCE_ID_LABEL
        )),
    };
    tokio::spawn({
        let ctx = ctx.clone();
        let namespace = settings.namespace.clone();
        let config = rollout_config.clone();
        async move { analysis::run(ctx, namespace.as_deref(), config, runs_writer).await }
    });
    let synced_ctx = ctx.clone();
    let deleted_ctx = ctx.clone();
    let rollouts = watcher(api::<Rollout>(&client, ns), rollout_config)
        .default_backoff()
        .modify(strip)
        .map_ok(move |event| {
            if let watcher::Event::InitDone = &event {
                synced_ctx.rollouts_synced.store(true, Ordering::Release);
            }
            event
        })
        .reflect(writer)
        // Deleted without a finalizer, a Rollout is never reconciled again: forget it here, once the
        // store no longer has it, so a reconcile under way sees that it is gone (see `reconcile`).
        .map_ok(move |event| {
            match &event {
                watcher::Event::Delete(rollout) => deleted_ctx.forget_rollout(rollout),
                watcher::Event::InitDone => deleted_ctx.forget_rollouts_gone(),
                _ => {}
            }
            event
        })
        .touched_objects();
    let replica_sets = cached_watch(
        api::<ReplicaSet>(&client, ns),
        managed.clone(),
        ctx.clone(),
        |c| &c.caches.replica_sets,
        Coverage::Complete,
    );
    let analysis_runs = cached_watch(
        api::<AnalysisRun>(&client, ns),
        managed,
        ctx.clone(),
        |c| &c.caches.analysis_runs,
        Coverage::Partial,
    );
    let services = cached_watch(
        api::<Service>(&client, ns),
        WatcherConfig::default(),
        ctx.clone(),
        |c| &c.caches.services,
        Coverage::Complete,
    );
    let templates = cached_watch(
        api::<AnalysisTemplate>(&client, ns),
        WatcherConfig::default(),
        ctx.clone(),
        |c| &c.caches.analysis_templates,
        Coverage::Complete,
    );
    let cluster_templates = watcher(
        Api::<ClusterAnalysisTemplate>::all(client.clone()),
        WatcherConfig::default(),
    )
    .default_backoff()
    .modify(strip)
    .map_ok({
        let ctx = ctx.clone();
        move |event| {
            ctx.caches.cluster_analysis_templates.apply(&event);
            event
        }
    })
    .applied_objects();
    let by_service = reader.clone();
    let mut leadership = leader.subscribe();
    let reconcile_all = async_stream_of_gains(&mut leadership);
    let controller = Controller::for_stream(rollouts, reader)
        .with_config(kube::runtime::controller::Config::default().concurrency(settings.concurrency))
        .owns_stream(replica_sets)
        .owns_stream(analysis_runs)
        .watches_stream(services, move |service: Service| {
            rollouts_referencing(&by_service, &service)
        })
        .reconcile_all_on(reconcile_all)
        .shutdown_on_signal();
    tokio::spawn(drain(templates));
    tokio::spawn(drain(cluster_templates));
    tracing::info!(namespace = ns.unwrap_or("(all)"), "ramp-controller started");
    controller
        .run(reconcile, error_policy, ctx.clone())
        .for_each(|result| async move {
            if let Err(e) = result {
                tracing::debug!(error = %e, "reconcile failed");
            }
        })
        .await;
    let waiting = ctx.events.unposted();
    if waiting > 0 {
        tracing::info!(
            batches = waiting,
            "posting the Events held back before shutting down"
        );
    }
    let unposted = ctx.events.flush(SHUTDOWN_EVENTS_PATIENCE).await;
    if unposted > 0 {
        tracing::warn!(
            unposted,
            "shutting down with Events not yet recorded; they are lost"
        );
    }
    drop(servers);
    Ok(())
}

/// How long shutting down waits for the Events of the last reconciles to be posted.
const SHUTDOWN_EVENTS_PATIENCE: Duration = Duration::from_secs(5);

/// A stream that yields once every time this process becomes the leader, so it reconciles everything.
fn async_stream_of_gains(
    leadership: &mut tokio::sync::watch::Receiver<bool>,
) -> impl Stream<Item = ()> + Send + 'static {
    let receiver = leadership.clone();
    futures::stream::unfold(receiver, |mut receiver| async move {
        loop {
            receiver.changed().await.ok()?;
            if *receiver.borrow_and_update() {
                return Some(((), receiver));
            }
        }
    })
}

async fn drain<S: Stream + Send>(stream: S) {
    stream.for_each(|_| async {}).await;
}

/// The Rollouts in a Service's namespace that name it.
fn rollouts_referencing(store: &Store<Rollout>, service: &Service) -> Vec<ObjectRef<Rollout>> {
    let namespace = service.namespace().unwrap_or_default();
    let name = service.name_any();
    store
        .state()
        .iter()
        .filter(|r| r.namespace().as_deref() == Some(namespace.as_str()))
        .filter(|r| observe::referenced_services(r).contains(&name))
        .map(|r| ObjectRef::from_obj(r.as_ref()))
        .collect()
}

/// Pods of a Rollout, read only when a restart is pending (pods are never cached).
async fn pods_for_restart(ctx: &Context, rollout: &Rollout) -> Result<Vec<PodState>, Error> {
    let pending = match (
        &rollout.spec.restart_at,
        rollout
            .status
            .as_ref()
            .and_then(|s| s.restarted_at.as_ref()),
    ) {
        (Some(at), Some(done)) => at > done,
        (Some(_), None) => true,
        _ => false,
    };
    if !pending {
        return Ok(Vec::new());
    }
    let namespace = rollout.namespace().unwrap_or_default();
    let selector = rollout
        .spec
        .selector
        .as_ref()
        .and_then(|s| s.match_labels.as_ref())
        .map(|labels| {
            labels
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default();
    let pods: Api<Pod> = Api::namespaced(ctx.client.clone(), &namespace);
    let list = pods
        .list(&ListParams::default().labels(&selector))
        .await
        .map_err(error::kube("list", "Pods"))?;
    Ok(list
        .items
        .iter()
        .map(|pod| PodState {
            name: pod.name_any(),
            pod_template_hash: pod
                .labels()
                .get(POD_TEMPLATE_HASH_LABEL)
                .cloned()
                .unwrap_or_default(),
            created: pod
                .metadata
                .creation_timestamp
                .as_ref()
                .map(|t| t.0)
                .unwrap_or(Timestamp::UNIX_EPOCH),
            terminating: pod.metadata.deletion_timestamp.is_some(),
        })
        .collect())
}

async fn reconcile(rollout: Arc<Rollout>, ctx: Arc<Context>) -> Result<Action, Error> {
    if rollout.metadata.deletion_timestamp.is_some() {
        ctx.forget_rollout(&rollout);
        return Ok(Action::await_change());
    }
    if !ctx.leader.is_leader() {
        return Ok(Action::await_change());
    }
    if behind_our_own_write(&ctx, &rollout) || replica_sets_behind(&ctx, &rollout) {
        // Planning on it would repeat the last plan's writes (and their events) to a conflict; the
        // watch event of our write triggers the next reconcile, the requeue is a fallback (a re-list
        // triggers before its cache is swapped in).
        return Ok(Action::requeue(STALE_REQUEUE));
    }
    // While this and other reconciles run at once, Events wait, so the burst's writes go first.
    let _events_wait = ctx.events.hold();
    let started = Instant::now();
    let span = tracing::info_span!("reconcile", namespace = %rollout.namespace().unwrap_or_default(), rollout = %rollout.name_any());
    let _guard = span.enter();
    let mut observation = observe::observe(&rollout, &ctx.caches);
    drop(_guard);
    observation.observed.pods = pods_for_restart(&ctx, &rollout).await?;
    let mut plan = crate::plan::plan(&rollout, &observation.observed, Timestamp::now());
    if first_sight(&ctx, &rollout) {
        plan.ops.insert(0, added_to_informer(&rollout));
    }
    for op in &plan.ops {
        tracing::info!(parent: &span, op = ?op_name(op), "performing");
        ctx.metrics.op(op_name(op));
    }
    let mut actor = act::Actor::new(&ctx, &rollout, &observation);
    let result = actor.execute(&plan).await;
    remember_write(&ctx, &rollout, actor.rollout_versions());
    if let Some(uid) = rollout.uid() {
        ctx.replica_set_writes
            .remember(&uid, actor.take_replica_set_writes(), Instant::now());
    }
    let outcome = result.map(|()| {
        ctx.metrics.observe_rollout(&rollout);
        ctx.metrics.reconciled(&rollout, started.elapsed());
        ctx.failures
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&ObjectRef::from_obj(rollout.as_ref()));
        match plan.requeue_after {
            Some(after) => Action::requeue(after),
            None => Action::await_change(),
        }
    });
    // Deleted while this reconcile ran: the delete's watch event may already have dropped what this
    // process keeps about it, and what the reconcile recorded since (metric series, its writes) would
    // then stay for good. The store loses a Rollout before that event is handled, so checking it after
    // recording leaves nothing behind in either order.
    if ctx.forget_if_deleted(&rollout) {
        return Ok(Action::await_change());
    }
    outcome
}

/// How soon a reconcile skipped on a cache behind our own write is retried if no watch event comes first.
const STALE_REQUEUE: Duration = Duration::from_secs(2);

fn behind_our_own_write(ctx: &Context, rollout: &Rollout) -> bool {
    let meta = &rollout.metadata;
    match (meta.uid.as_deref(), meta.resource_version.as_deref()) {
        (Some(uid), Some(version)) => ctx.own_writes.behind(uid, version),
        _ => false,
    }
}

/// True while the ReplicaSet cache does not show the last ReplicaSet writes of this Rollout's reconciles.
fn replica_sets_behind(ctx: &Context, rollout: &Rollout) -> bool {
    let meta = &rollout.metadata;
    let Some(uid) = meta.uid.as_deref() else {
        return false;
    };
    let namespace = meta.namespace.as_deref().unwrap_or_default();
    ctx.replica_set_writes.behind(uid, Instant::now(), |name| {
        ctx.caches
            .replica_sets
            .get(namespace, name)
            .map(|rs| rs.resource_version.clone())
    })
}

fn remember_write(ctx: &Context, rollout: &Rollout, versions: &[String]) {
    if let Some(uid) = rollout.uid() {
        ctx.own_writes.remember(&uid, versions);
    }
}

/// True the first time this process reconciles `rollout` (by uid) as the leader.
fn first_sight(ctx: &Context, rollout: &Rollout) -> bool {
    let uid = rollout.uid().unwrap_or_default();
    ctx.seen
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(uid)
}

/// Argo's event for a Rollout a controller starts managing (reference 4.20): recorded once per process,
/// before the first plan's own events.
fn added_to_informer(rollout: &Rollout) -> crate::plan::Op {
    crate::plan::Event::normal(
        crate::api::constants::event::ADDED_TO_INFORMER,
        format!(
            "Rollout resource added to informer: {}/{}",
            rollout.namespace().unwrap_or_default(),
            rollout.name_any()
        ),
    )
}

fn error_policy(rollout: Arc<Rollout>, error: &Error, ctx: Arc<Context>) -> Action {
    let namespace = rollout.namespace().unwrap_or_default();
    let name = rollout.name_any();
    if matches!(error, Error::NotLeader) {
        return Action::await_change();
    }
    ctx.metrics
        .reconcile_failed(&namespace, &name, error.metric_label());
    // Recorded first, then checked, as at the end of `reconcile`.
    if ctx.forget_if_deleted(&rollout) {
        return Action::await_change();
    }
    let attempts = {
        let mut failures = ctx.failures.lock().unwrap_or_else(|e| e.into_inner());
        let n = failures
            .entry(ObjectRef::from_obj(rollout.as_ref()))
            .or_insert(0);
        *n += 1;
        *n
    };
    // A conflict is the cache catching up and passes by itself; one that keeps coming is worth a warning.
    if error.is_conflict() && attempts < 5 {
        tracing::debug!(
            namespace,
            rollout = name,
            "conflict: the cache is behind, retrying"
        );
    } else {
        tracing::warn!(namespace, rollout = name, error = %error, attempts, "reconcile failed");
    }
    Action::requeue(backoff(attempts))
}

/// 100 ms doubling per consecutive failure, at most 30 s.
pub fn backoff(attempts: u32) -> Duration {
    let millis = 100u64.saturating_mul(1u64 << attempts.saturating_sub(1).min(20));
    Duration::from_millis(millis.min(30_000))
}

fn op_name(op: &crate::plan::Op) -> &'static str {
    use crate::plan::Op;
    match op {
        Op::CreateReplicaSet(_) => "CreateReplicaSet",
        Op::ScaleReplicaSet { .. } => "ScaleReplicaSet",
        Op::SetReplicaSetRevision { .. } => "SetReplicaSetRevision",
        Op::SetScaleDownDeadline { .. } => "SetScaleDownDeadline",
        Op::DeleteReplicaSet { .. } => "DeleteReplicaSet",
        Op::SwitchService { .. } => "SwitchService",
        Op::SetTrafficWeight { .. } => "SetTrafficWeight",
        Op::CreateAnalysisRun(_) => "CreateAnalysisRun",
        Op::TerminateAnalysisRun { .. } => "TerminateAnalysisRun",
        Op::DeleteAnalysisRun { .. } => "DeleteAnalysisRun",
        Op::EvictPod { .. } => "EvictPod",
        Op::SetRolloutRevision { .. } => "SetRolloutRevision",
        Op::Event(_) => "Event",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_caps() {
        assert_eq!(backoff(1), Duration::from_millis(100));
        assert_eq!(backoff(2), Duration::from_millis(200));
        assert_eq!(backoff(4), Duration::from_millis(800));
        assert_eq!(backoff(30), Duration::from_secs(30));
    }
}
