//! The controller's Prometheus metrics, under Argo Rollouts' names so existing dashboards keep working,
//! plus Ramp's own (`ramp_*`).

mod ordered;

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use kube::runtime::watcher;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::api::{AnalysisPhase, Rollout, RolloutStatus};
use crate::plan::Event;
use ordered::OrderedFamily;

// Every family keyed by an object is an `OrderedFamily` (see its module for why), and every label set
// starts with the object's namespace and name, so all the series of one object sit together in label
// order and go by range when the object does.

#[derive(Clone, Debug, Hash, PartialEq, Eq, PartialOrd, Ord, EncodeLabelSet)]
pub struct RolloutLabels {
    pub namespace: String,
    pub name: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, PartialOrd, Ord, EncodeLabelSet)]
pub struct InfoLabels {
    pub namespace: String,
    pub name: String,
    pub strategy: String,
    pub phase: String,
}

/// The values of one Rollout's own series.
#[derive(Debug, PartialEq)]
struct RolloutGauges {
    info: InfoLabels,
    desired: i64,
    available: i64,
    unavailable: i64,
    updated: i64,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, PartialOrd, Ord, EncodeLabelSet)]
pub struct EventLabels {
    pub namespace: String,
    pub name: String,
    pub reason: String,
    #[prometheus(flatten)]
    pub kind: EventType,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, PartialOrd, Ord, EncodeLabelSet)]
pub struct EventType {
    pub r#type: String,
}

/// Labels in Argo's order; ordered by the object first (see [`RequestLabels::object_order`]).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub kind: String,
    pub namespace: String,
    pub name: String,
    pub verb: String,
    pub status_code: String,
}

impl RequestLabels {
    /// Namespace and name before kind, so one object's series (its subresources' included) are
    /// neighbours whatever their kind; the exposition keeps Argo's label order.
    fn object_order(&self) -> [&str; 5] {
        [
            &self.namespace,
            &self.name,
            &self.kind,
            &self.verb,
            &self.status_code,
        ]
    }
}

impl Ord for RequestLabels {
    fn cmp(&self, other: &Self) -> Ordering {
        self.object_order().cmp(&other.object_order())
    }
}

impl PartialOrd for RequestLabels {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, PartialOrd, Ord, EncodeLabelSet)]
pub struct ErrorLabels {
    pub namespace: String,
    pub name: String,
    pub error: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, PartialOrd, Ord, EncodeLabelSet)]
pub struct RunInfoLabels {
    pub namespace: String,
    pub name: String,
    pub phase: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, PartialOrd, Ord, EncodeLabelSet)]
pub struct MetricPhaseLabels {
    pub namespace: String,
    pub name: String,
    pub metric: String,
    pub r#type: String,
    pub dry_run: String,
    pub phase: String,
}

/// The series one AnalysisRun has, so they can be dropped with it.
#[derive(Clone, Debug, Default)]
struct RunSeries {
    /// The run they are of: a run deleted unseen and created again under its name is another run.
    uid: String,
    info: Option<RunInfoLabels>,
    metric_phases: Vec<MetricPhaseLabels>,
}

/// How long the request series of a deleted object stay after its deletion is seen: long enough for
/// several scrapes to read their last values (its delete included), short enough that a controller
/// releasing all day does not keep a series per ReplicaSet it ever made.
pub const DELETED_OBJECT_SERIES_GRACE: Duration = Duration::from_secs(300);

/// A deleted object whose request series are due to go.
#[derive(Debug)]
struct Departed {
    due: Instant,
    resource: String,
    namespace: String,
    name: String,
}

/// One metric of an AnalysisRun, as `analysis_run_metric_phase` reports it.
pub struct MetricPhase<'a> {
    pub metric: &'a str,
    /// `Prometheus`, `Web` or `Job`.
    pub provider: &'a str,
    pub dry_run: bool,
    pub phase: AnalysisPhase,
}

fn reconcile_histogram() -> Histogram {
    Histogram::new([0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0])
}

/// Which objects a re-list found deleted, by their request series. Only an object that had series when
/// the re-list began can have been deleted unseen: one created after the list was taken, and written
/// meanwhile, is missing from the list as well, but it is not gone.
#[derive(Default)]
pub struct RequestedAtRelist(BTreeSet<(String, String)>);

impl RequestedAtRelist {
    /// Follows one watch event of `resource`; after a complete list, returns the objects that had
    /// request series when it began and that `exists` no longer finds.
    pub fn see<K>(
        &mut self,
        event: &watcher::Event<K>,
        metrics: &Metrics,
        resource: &str,
        exists: impl Fn(&str, &str) -> bool,
    ) -> BTreeSet<(String, String)> {
        match event {
            watcher::Event::Init => {
                self.0 = metrics.requested_objects(resource);
                BTreeSet::new()
            }
            watcher::Event::InitDone => {
                let before = std::mem::take(&mut self.0);
                metrics.requested_objects_gone(resource, |namespace, name| {
                    exists(namespace, name)
                        || !before.contains(&(namespace.to_string(), name.to_string()))
                })
            }
            _ => BTreeSet::new(),
        }
    }
}

pub struct Metrics {
    registry: Registry,
    info: OrderedFamily<InfoLabels, Gauge>,
    /// What each Rollout's series were last set to, so a reconcile that changes none of them (most do
    /// not) skips the lookups in five families.
    gauges_by_rollout: Mutex<BTreeMap<RolloutLabels, RolloutGauges>>,
    replicas_available: OrderedFamily<RolloutLabels, Gauge>,
    replicas_unavailable: OrderedFamily<RolloutLabels, Gauge>,
    replicas_desired: OrderedFamily<RolloutLabels, Gauge>,
    replicas_updated: OrderedFamily<RolloutLabels, Gauge>,
    reconcile: OrderedFamily<RolloutLabels, Histogram>,
    reconcile_errors: OrderedFamily<ErrorLabels, Counter>,
    events: OrderedFamily<EventLabels, Counter>,
    requests: OrderedFamily<RequestLabels, Counter>,
    ops: OrderedFamily<OpLabels, Counter>,
    run_info: OrderedFamily<RunInfoLabels, Gauge>,
    run_metric_phase: OrderedFamily<MetricPhaseLabels, Gauge>,
    run_reconcile: OrderedFamily<RolloutLabels, Histogram>,
    run_reconcile_errors: OrderedFamily<ErrorLabels, Counter>,
    series_by_run: Mutex<BTreeMap<RolloutLabels, RunSeries>>,
    departed: Mutex<VecDeque<Departed>>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, PartialOrd, Ord, EncodeLabelSet)]
pub struct OpLabels {
    pub op: String,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::default();
        let m = Metrics {
            info: OrderedFamily::default(),
            gauges_by_rollout: Mutex::default(),
            replicas_available: OrderedFamily::default(),
            replicas_unavailable: OrderedFamily::default(),
            replicas_desired: OrderedFamily::default(),
            replicas_updated: OrderedFamily::default(),
            reconcile: OrderedFamily::new_with(reconcile_histogram),
            reconcile_errors: OrderedFamily::default(),
            events: OrderedFamily::default(),
            requests: OrderedFamily::default(),
            ops: OrderedFamily::default(),
            run_info: OrderedFamily::default(),
            run_metric_phase: OrderedFamily::default(),
            run_reconcile: OrderedFamily::new_with(reconcile_histogram),
            run_reconcile_errors: OrderedFamily::default(),
            series_by_run: Mutex::default(),
            departed: Mutex::default(),
            registry: Registry::default(),
        };
        registry.register(
            "rollout_info",
            "Information about a Rollout",
            m.info.clone(),
        );
        registry.register(
            "rollout_info_replicas_available",
            "Available replicas of a Rollout",
            m.replicas_available.clone(),
        );
        registry.register(
            "rollout_info_replicas_unavailable",
            "Unavailable replicas of a Rollout",
            m.replicas_unavailable.clone(),
        );
        registry.register(
            "rollout_info_replicas_desired",
            "Desired replicas of a Rollout",
            m.replicas_desired.clone(),
        );
        registry.register(
            "rollout_info_replicas_updated",
            "Updated replicas of a Rollout",
            m.replicas_updated.clone(),
        );
        registry.register(
            "rollout_reconcile",
            "Rollout reconciliation performance, in seconds",
            m.reconcile.clone(),
        );
        registry.register(
            "rollout_reconcile_error",
            "Rollout reconciliations that failed",
            m.reconcile_errors.clone(),
        );
        registry.register(
            "rollout_events",
            "Events recorded for Rollouts",
            m.events.clone(),
        );
        registry.register(
            "controller_clientset_k8s_request",
            "Requests the controller sent to the API server",
            m.requests.clone(),
        );
        registry.register(
            "ramp_plan_ops",
            "Effects performed, by kind of op",
            m.ops.clone(),
        );
        registry.register(
            "analysis_run_info",
            "Information about an AnalysisRun",
            m.run_info.clone(),
        );
        registry.register(
            "analysis_run_metric_phase",
            "The phase of each metric of an AnalysisRun (1 for its current phase, 0 for the others)",
            m.run_metric_phase.clone(),
        );
        registry.register(
            "analysis_run_reconcile",
            "AnalysisRun reconciliation performance, in seconds",
            m.run_reconcile.clone(),
        );
        registry.register(
            "analysis_run_reconcile_error",
            "AnalysisRun reconciliations that failed",
            m.run_reconcile_errors.clone(),
        );
        Metrics { registry, ..m }
    }

    /// The text exposition of every metric.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Encoding into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }

    pub fn observe_rollout(&self, rollout: &Rollout) {
        let key = labels(rollout);
        let no_status = RolloutStatus::default();
        let status = rollout.status.as_ref().unwrap_or(&no_status);
        let strategy = if rollout.spec.strategy.blue_green.is_some() {
            "blueGreen"
        } else {
            "canary"
        };
        let available = i64::from(status.available_replicas);
        let gauges = RolloutGauges {
            info: InfoLabels {
                namespace: key.namespace.clone(),
                name: key.name.clone(),
                strategy: strategy.into(),
                phase: status.phase.clone(),
            },
            desired: i64::from(rollout.spec.replicas.unwrap_or(1)),
            available,
            unavailable: (i64::from(status.replicas) - available).max(0),
            updated: i64::from(status.updated_replicas),
        };
        let mut by_rollout = self
            .gauges_by_rollout
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let previous = by_rollout.get(&key);
        if previous == Some(&gauges) {
            return;
        }
        if let Some(previous) = previous
            && previous.info != gauges.info
        {
            self.info.remove(&previous.info);
        }
        self.info.get_or_create(&gauges.info).set(1);
        for (family, value) in [
            (&self.replicas_desired, gauges.desired),
            (&self.replicas_available, gauges.available),
            (&self.replicas_unavailable, gauges.unavailable),
            (&self.replicas_updated, gauges.updated),
        ] {
            family.get_or_create(&key).set(value);
        }
        by_rollout.insert(key, gauges);
    }

    /// Drops every series of a deleted Rollout, so memory does not grow with churn, except its Event
    /// counts (see [`Metrics::forget_events`]).
    pub fn forget_rollout(&self, namespace: &str, name: &str) {
        let key = RolloutLabels {
            namespace: namespace.into(),
            name: name.into(),
        };
        if let Some(gauges) = self
            .gauges_by_rollout
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&key)
        {
            self.info.remove(&gauges.info);
        }
        for family in [
            &self.replicas_available,
            &self.replicas_unavailable,
            &self.replicas_desired,
            &self.replicas_updated,
        ] {
            family.remove(&key);
        }
        self.reconcile.remove(&key);
        forget_errors(&self.reconcile_errors, namespace, name);
    }

    /// The Rollouts, as (namespace, name), that have series of their own and that `exists` no longer
    /// finds. A watch that re-lists sends no delete event for what was deleted while it was down.
    pub fn rollouts_gone(&self, exists: impl Fn(&str, &str) -> bool) -> BTreeSet<(String, String)> {
        // Not the Event counts: they name AnalysisRuns too (as Argo's do); see
        // [`Metrics::event_names_gone`].
        objects_gone(
            &self.gauges_by_rollout,
            &self.reconcile,
            &self.reconcile_errors,
            exists,
        )
    }

    /// The AnalysisRuns, as (namespace, name), that have series of their own and that `exists` no longer
    /// finds (see [`Metrics::rollouts_gone`]).
    pub fn analysis_runs_gone(
        &self,
        exists: impl Fn(&str, &str) -> bool,
    ) -> BTreeSet<(String, String)> {
        objects_gone(
            &self.series_by_run,
            &self.run_reconcile,
            &self.run_reconcile_errors,
            exists,
        )
    }

    /// The objects of `resource` (a plural, e.g. `replicasets`), as (namespace, name), that have request
    /// series and that `exists` no longer finds (see [`Metrics::rollouts_gone`]).
    pub fn requested_objects_gone(
        &self,
        resource: &str,
        exists: impl Fn(&str, &str) -> bool,
    ) -> BTreeSet<(String, String)> {
        self.requests
            .label_sets_where(|l| {
                !l.name.is_empty()
                    && l.kind
                        .strip_prefix(resource)
                        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
                    && !exists(&l.namespace, &l.name)
            })
            .into_iter()
            .map(|l| (l.namespace, l.name))
            .collect()
    }

    /// The objects of `resource`, as (namespace, name), that have request series.
    pub fn requested_objects(&self, resource: &str) -> BTreeSet<(String, String)> {
        self.requested_objects_gone(resource, |_, _| false)
    }

    /// An object (`resource` is its plural, e.g. `replicasets`) was deleted at `now`: its request series
    /// go [`DELETED_OBJECT_SERIES_GRACE`] later. Also drops the series of objects whose grace is over.
    ///
    /// Without this, `controller_clientset_k8s_request_total` (whose `name` label Argo defines) would
    /// keep about three series for every ReplicaSet a release ever created, for the life of the process.
    pub fn object_deleted(&self, resource: &str, namespace: &str, name: &str, now: Instant) {
        let mut departed = self.departed.lock().unwrap_or_else(|e| e.into_inner());
        departed.push_back(Departed {
            due: now + DELETED_OBJECT_SERIES_GRACE,
            resource: resource.to_string(),
            namespace: namespace.to_string(),
            name: name.to_string(),
        });
        while departed.front().is_some_and(|d| d.due <= now) {
            if let Some(gone) = departed.pop_front() {
                self.forget_requests(&gone.resource, &gone.namespace, &gone.name);
            }
        }
    }

    /// Drops the request series that name one object, its subresources included.
    fn forget_requests(&self, resource: &str, namespace: &str, name: &str) {
        if name.is_empty() {
            // The series without a name (lists, watches, creates) belong to no one object.
            return;
        }
        let first = RequestLabels {
            kind: String::new(),
            namespace: namespace.into(),
            name: name.into(),
            verb: String::new(),
            status_code: String::new(),
        };
        self.requests.remove_run(
            &first,
            |l| l.namespace == namespace && l.name == name,
            |l| {
                l.kind
                    .strip_prefix(resource)
                    .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
            },
        );
    }

    pub fn reconciled(&self, rollout: &Rollout, took: Duration) {
        self.reconcile
            .get_or_create(&labels(rollout))
            .observe(took.as_secs_f64());
    }

    pub fn reconcile_failed(&self, namespace: &str, name: &str, error: &str) {
        self.reconcile_errors
            .get_or_create(&ErrorLabels {
                namespace: namespace.into(),
                name: name.into(),
                error: error.into(),
            })
            .inc();
    }

    pub fn event(&self, namespace: &str, name: &str, event: &Event) {
        let kind = EventType {
            r#type: if event.warning { "Warning" } else { "Normal" }.into(),
        };
        self.events
            .get_or_create(&EventLabels {
                namespace: namespace.into(),
                name: name.into(),
                reason: event.reason.clone(),
                kind,
            })
            .inc();
    }

    /// One request sent to the API server and how it was answered (`error` when it got no answer).
    pub fn request(&self, request: &super::requests::RequestInfo, status_code: &str) {
        self.requests
            .get_or_create(&RequestLabels {
                kind: request.kind.clone(),
                namespace: request.namespace.clone(),
                name: request.name.clone(),
                verb: request.verb.clone(),
                status_code: status_code.into(),
            })
            .inc();
    }

    pub fn op(&self, op: &str) {
        self.ops.get_or_create(&OpLabels { op: op.into() }).inc();
    }
}

impl Metrics {
    /// The run's phase, and its metrics' phases when `metrics` is given (a finished run's cached copy
    /// no longer carries them; their last values stay).
    pub fn observe_analysis_run(
        &self,
        namespace: &str,
        name: &str,
        uid: &str,
        phase: Option<AnalysisPhase>,
        metrics: Option<&[MetricPhase]>,
    ) {
        let key = RolloutLabels {
            namespace: namespace.into(),
            name: name.into(),
        };
        let mut by_run = self.series_by_run.lock().unwrap_or_else(|e| e.into_inner());
        let series = by_run.entry(key).or_default();
        if series.uid != uid {
            // The last values kept for a finished run are its own, not a namesake's before it.
            for labels in series.metric_phases.drain(..) {
                self.run_metric_phase.remove(&labels);
            }
            series.uid = uid.to_string();
        }
        let info = RunInfoLabels {
            namespace: namespace.into(),
            name: name.into(),
            phase: phase.map(|p| p.to_string()).unwrap_or_default(),
        };
        if let Some(previous) = series.info.replace(info.clone())
            && previous != info
        {
            self.run_info.remove(&previous);
        }
        self.run_info.get_or_create(&info).set(1);
        let Some(metrics) = metrics else {
            return;
        };
        for labels in series.metric_phases.drain(..) {
            self.run_metric_phase.remove(&labels);
        }
        for metric in metrics {
            for candidate in AnalysisPhase::ALL {
                let labels = MetricPhaseLabels {
                    namespace: namespace.into(),
                    name: name.into(),
                    metric: metric.metric.into(),
                    r#type: metric.provider.into(),
                    dry_run: metric.dry_run.to_string(),
                    phase: candidate.to_string(),
                };
                self.run_metric_phase
                    .get_or_create(&labels)
                    .set(i64::from(candidate == metric.phase));
                series.metric_phases.push(labels);
            }
        }
    }

    /// Drops every series of a deleted AnalysisRun, except its Event counts (see
    /// [`Metrics::forget_events`]).
    pub fn forget_analysis_run(&self, namespace: &str, name: &str) {
        let key = RolloutLabels {
            namespace: namespace.into(),
            name: name.into(),
        };
        let removed = self
            .series_by_run
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&key);
        if let Some(series) = removed {
            if let Some(info) = series.info {
                self.run_info.remove(&info);
            }
            for labels in series.metric_phases {
                self.run_metric_phase.remove(&labels);
            }
        }
        self.run_reconcile.remove(&key);
        forget_errors(&self.run_reconcile_errors, namespace, name);
    }

    /// The names, as (namespace, name), with Event counts that `exists` no longer finds. A Rollout
    /// being deleted loses its other series before it leaves the watch's store, so a re-list that
    /// misses its delete event finds only its Event counts left.
    pub fn event_names_gone(
        &self,
        exists: impl Fn(&str, &str) -> bool,
    ) -> BTreeSet<(String, String)> {
        self.events
            .label_sets_where(|l| !exists(&l.namespace, &l.name))
            .into_iter()
            .map(|l| (l.namespace, l.name))
            .collect()
    }

    /// Drops the Event counts of one name. The family names Rollouts and AnalysisRuns alike (as
    /// Argo's does), so a caller drops them only once neither kind has an object of that name.
    pub fn forget_events(&self, namespace: &str, name: &str) {
        let first = EventLabels {
            namespace: namespace.into(),
            name: name.into(),
            reason: String::new(),
            kind: EventType {
                r#type: String::new(),
            },
        };
        self.events.remove_run(
            &first,
            |l| l.namespace == namespace && l.name == name,
            |_| true,
        );
    }

    pub fn analysis_run_reconciled(&self, namespace: &str, name: &str, took: Duration) {
        self.run_reconcile
            .get_or_create(&RolloutLabels {
                namespace: namespace.into(),
                name: name.into(),
            })
            .observe(took.as_secs_f64());
    }

    pub fn analysis_run_failed(&self, namespace: &str, name: &str, error: &str) {
        self.run_reconcile_errors
            .get_or_create(&ErrorLabels {
                namespace: namespace.into(),
                name: name.into(),
                error: error.into(),
            })
            .inc();
    }
}

/// Drops one object's error series, whatever their error.
/// The objects, as (namespace, name), with series in `kept` (what their series were last set to),
/// `reconciles` or `errors`, that `exists` no longer finds.
fn objects_gone<T>(
    kept: &Mutex<BTreeMap<RolloutLabels, T>>,
    reconciles: &OrderedFamily<RolloutLabels, Histogram>,
    errors: &OrderedFamily<ErrorLabels, Counter>,
    exists: impl Fn(&str, &str) -> bool,
) -> BTreeSet<(String, String)> {
    let gone = |namespace: &str, name: &str| !exists(namespace, name);
    let mut found: BTreeSet<(String, String)> = kept
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .keys()
        .filter(|key| gone(&key.namespace, &key.name))
        .map(|key| (key.namespace.clone(), key.name.clone()))
        .collect();
    found.extend(
        reconciles
            .label_sets_where(|l| gone(&l.namespace, &l.name))
            .into_iter()
            .map(|l| (l.namespace, l.name)),
    );
    found.extend(
        errors
            .label_sets_where(|l| gone(&l.namespace, &l.name))
            .into_iter()
            .map(|l| (l.namespace, l.name)),
    );
    found
}

fn forget_errors(errors: &OrderedFamily<ErrorLabels, Counter>, namespace: &str, name: &str) {
    let first = ErrorLabels {
        namespace: namespace.into(),
        name: name.into(),
        error: String::new(),
    };
    errors.remove_run(
        &first,
        |l| l.namespace == namespace && l.name == name,
        |_| true,
    );
}

fn labels(rollout: &Rollout) -> RolloutLabels {
    RolloutLabels {
        namespace: rollout.metadata.namespace.clone().unwrap_or_default(),
        name: rollout.metadata.name.clone().unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controller::requests::RequestInfo;

    fn request(kind: &str, name: &str, verb: &str) -> RequestInfo {
        RequestInfo {
            kind: kind.into(),
            namespace: "shop".into(),
            name: name.into(),
            verb: verb.into(),
        }
    }

    fn an_event(reason: &str, warning: bool) -> Event {
        Event {
            reason: reason.into(),
            message: "message".into(),
            warning,
            status_change: true,
        }
    }

    fn series_naming(metrics: &Metrics, name: &str) -> Vec<String> {
        let quoted = format!("name=\"{name}\"");
        metrics
            .encode()
            .lines()
            .filter(|l| !l.starts_with('#') && l.contains(&quoted))
            .map(str::to_string)
            .collect()
    }

    #[test]
    fn a_deleted_objects_request_series_go_after_the_grace_period() {
        let metrics = Metrics::new();
        for name in ["web-6d4f", "web-7a1c", "web-8b2d"] {
            metrics.request(&request("replicasets", name, "patch"), "200");
            metrics.request(&request("replicasets", name, "patch"), "409");
        }
        metrics.request(&request("replicasets", "web-6d4f", "delete"), "200");
        metrics.request(&request("replicasets", "", "create"), "201");
        let t0 = Instant::now();

        metrics.object_deleted("replicasets", "shop", "web-6d4f", t0);
        metrics.object_deleted(
            "replicasets",
            "shop",
            "web-7a1c",
            t0 + Duration::from_secs(60),
        );
        assert_eq!(
            series_naming(&metrics, "web-6d4f").len(),
            3,
            "kept for scrapes to read, the delete included"
        );

        let later = t0 + DELETED_OBJECT_SERIES_GRACE + Duration::from_secs(1);
        metrics.object_deleted("replicasets", "shop", "web-8b2d", later);
        assert_eq!(series_naming(&metrics, "web-6d4f"), Vec::<String>::new());
        assert_eq!(
            series_naming(&metrics, "web-7a1c").len(),
            2,
            "deleted a minute later: still in its grace"
        );
        assert_eq!(series_naming(&metrics, "web-8b2d").len(), 2);
        assert!(
            metrics.encode().contains("verb=\"create\""),
            "series that name no object stay"
        );
    }

    #[test]
    fn a_deleted_objects_subresources_go_with_it_and_namesakes_of_other_kinds_stay() {
        let metrics = Metrics::new();
        metrics.request(&request("rollouts", "web", "patch"), "200");
        metrics.request(&request("rollouts/status", "web", "patch"), "409");
        metrics.request(&request("replicasets", "web", "get"), "200");
        metrics.request(&request("rolloutsets", "web", "get"), "200");
        let t0 = Instant::now();
        metrics.object_deleted("rollouts", "shop", "web", t0);
        metrics.object_deleted(
            "replicasets",
            "shop",
            "other",
            t0 + DELETED_OBJECT_SERIES_GRACE,
        );
        let kinds: Vec<String> = series_naming(&metrics, "web")
            .iter()
            .filter_map(|l| l.split("kind=\"").nth(1))
            .filter_map(|rest| rest.split('"').next())
            .map(str::to_string)
            .collect();
        assert_eq!(kinds, vec!["replicasets", "rolloutsets"]);
    }

    #[test]
    fn a_rollouts_series_follow_its_status_and_go_with_it() {
        let metrics = Metrics::new();
        let mut rollout: Rollout = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "web", "namespace": "shop"},
            "spec": {"replicas": 3, "strategy": {"canary": {}}},
            "status": {"phase": "Progressing", "replicas": 3, "availableReplicas": 1, "updatedReplicas": 2},
        }))
        .expect("rollout parses");
        // The phase on the info series, and the unavailable count.
        let shown = |series: &[String]| {
            let phase = series
                .iter()
                .find(|l| l.starts_with("rollout_info{"))
                .and_then(|l| l.split("phase=\"").nth(1))
                .and_then(|rest| rest.split('"').next())
                .map(str::to_string);
            let unavailable = series
                .iter()
                .find(|l| l.starts_with("rollout_info_replicas_unavailable{"))
                .and_then(|l| l.rsplit(' ').next())
                .map(str::to_string);
            (phase, unavailable)
        };
        metrics.observe_rollout(&rollout);
        metrics.observe_rollout(&rollout);
        let first = series_naming(&metrics, "web");
        assert_eq!(
            shown(&first),
            (Some("Progressing".into()), Some("2".into()))
        );

        let status = rollout.status.as_mut().expect("status");
        status.phase = "Healthy".into();
        status.available_replicas = 3;
        metrics.observe_rollout(&rollout);
        let healthy = series_naming(&metrics, "web");
        assert_eq!(
            healthy.len(),
            first.len(),
            "the info series is replaced, not added"
        );
        assert_eq!(shown(&healthy), (Some("Healthy".into()), Some("0".into())));

        metrics.forget_rollout("shop", "web");
        assert_eq!(series_naming(&metrics, "web"), Vec::<String>::new());
    }

    #[test]
    fn a_deleted_rollout_takes_its_error_series_and_its_event_counts_go_by_name() {
        let metrics = Metrics::new();
        let event = an_event("RolloutCompleted", false);
        let warning = an_event("RolloutAborted", true);
        for name in ["web", "api"] {
            metrics.event("shop", name, &event);
            metrics.event("shop", name, &warning);
            metrics.reconcile_failed("shop", name, "conflict");
            metrics.request(&request("rollouts/status", name, "patch"), "200");
        }
        assert_eq!(series_naming(&metrics, "web").len(), 4);

        metrics.forget_rollout("shop", "web");
        let left = series_naming(&metrics, "web");
        assert_eq!(
            left.len(),
            3,
            "the Event counts and the request count: {left:?}"
        );
        assert!(
            left.iter()
                .all(|l| !l.starts_with("rollout_reconcile_error"))
        );

        metrics.forget_events("shop", "web");
        // Request counts stay: summed by verb and resource they must keep matching the API server's.
        assert_eq!(
            series_naming(&metrics, "web"),
            vec![
                "controller_clientset_k8s_request_total{kind=\"rollouts/status\",namespace=\"shop\",name=\"web\",verb=\"patch\",status_code=\"200\"} 1"
                    .to_string()
            ]
        );
        assert_eq!(series_naming(&metrics, "api").len(), 4, "others stay");
    }

    #[test]
    fn rollouts_gone_are_those_with_series_of_their_own_that_no_longer_exist() {
        let metrics = Metrics::new();
        let event = an_event("RolloutCompleted", false);
        let rollout = |name: &str| -> Rollout {
            serde_json::from_value(serde_json::json!({
                "metadata": {"name": name, "namespace": "shop"},
                "spec": {"strategy": {"canary": {}}},
            }))
            .expect("rollout parses")
        };
        metrics.reconciled(&rollout("web"), Duration::from_millis(2));
        metrics.event("shop", "web", &event);
        metrics.reconcile_failed("shop", "api", "conflict");
        metrics.observe_rollout(&rollout("db"));
        // An AnalysisRun's Events are counted in the same family: they make no Rollout.
        metrics.event("shop", "web-6d4f-2-1", &event);
        // Request counts alone make no Rollout: they go by their own grace period.
        metrics.request(&request("rollouts/status", "cache", "patch"), "200");

        let gone = metrics.rollouts_gone(|namespace, name| namespace == "shop" && name == "db");

        let gone: Vec<(&str, &str)> = gone.iter().map(|(n, r)| (n.as_str(), r.as_str())).collect();
        assert_eq!(gone, vec![("shop", "api"), ("shop", "web")]);
    }

    #[test]
    fn analysis_runs_gone_are_those_with_series_of_their_own_that_no_longer_exist() {
        let metrics = Metrics::new();
        metrics.observe_analysis_run(
            "shop",
            "run-a",
            "uid-a",
            Some(AnalysisPhase::Successful),
            None,
        );
        metrics.analysis_run_failed("shop", "run-b", "timeout");
        metrics.analysis_run_reconciled("shop", "run-c", Duration::from_millis(3));

        let gone = metrics.analysis_runs_gone(|_, name| name == "run-c");

        let gone: Vec<&str> = gone.iter().map(|(_, name)| name.as_str()).collect();
        assert_eq!(gone, vec!["run-a", "run-b"]);
    }

    #[test]
    fn a_deleted_analysis_runs_event_counts_go_by_name() {
        let metrics = Metrics::new();
        let event = an_event("AnalysisRunSuccessful", false);
        for name in ["run-a", "run-b"] {
            metrics.observe_analysis_run("shop", name, name, Some(AnalysisPhase::Successful), None);
            metrics.event("shop", name, &event);
        }
        assert_eq!(series_naming(&metrics, "run-a").len(), 2);

        metrics.forget_analysis_run("shop", "run-a");
        let left = series_naming(&metrics, "run-a");
        assert_eq!(left.len(), 1, "only the Event count: {left:?}");
        assert!(left[0].starts_with("rollout_events_total"), "{left:?}");

        metrics.forget_events("shop", "run-a");
        assert_eq!(series_naming(&metrics, "run-a"), Vec::<String>::new());
        assert_eq!(series_naming(&metrics, "run-b").len(), 2, "others stay");
    }

    #[test]
    fn a_namesake_run_does_not_keep_the_metric_phases_of_the_run_before_it() {
        let metrics = Metrics::new();
        let phase = |metric| MetricPhase {
            metric,
            provider: "Prometheus",
            dry_run: false,
            phase: AnalysisPhase::Successful,
        };
        let running = Some(AnalysisPhase::Running);
        metrics.observe_analysis_run("shop", "run-a", "uid-1", running, Some(&[phase("errors")]));
        let finished = Some(AnalysisPhase::Successful);
        // The same run again, finished: its cached copy carries no metrics, so their last values stay.
        metrics.observe_analysis_run("shop", "run-a", "uid-1", finished, None);
        let kept = series_naming(&metrics, "run-a");
        assert!(
            kept.iter().any(|l| l.contains("metric=\"errors\"")),
            "{kept:?}"
        );

        // Deleted unseen and created again, finished, with other metrics.
        metrics.observe_analysis_run("shop", "run-a", "uid-2", finished, None);
        let left = series_naming(&metrics, "run-a");
        assert!(
            left.iter().all(|l| !l.contains("metric=\"errors\"")),
            "{left:?}"
        );
        assert!(
            left.iter()
                .any(|l| l.starts_with("analysis_run_info{") && l.contains("Successful")),
            "{left:?}"
        );
    }

    #[test]
    fn event_names_gone_are_those_neither_kind_still_has() {
        let metrics = Metrics::new();
        let event = an_event("RolloutCompleted", false);
        for name in ["web", "web-6d4f-2-1", "api"] {
            metrics.event("shop", name, &event);
        }
        metrics.event("shop", "web", &an_event("RolloutAborted", true));

        let gone = metrics.event_names_gone(|namespace, name| namespace == "shop" && name == "api");

        let gone: Vec<&str> = gone.iter().map(|(_, name)| name.as_str()).collect();
        assert_eq!(gone, vec!["web", "web-6d4f-2-1"], "each name once");
    }

    #[test]
    fn a_relist_finds_gone_only_what_had_series_when_it_began() {
        let metrics = Metrics::new();
        metrics.request(&request("replicasets", "web-1", "patch"), "200");
        metrics.request(&request("replicasets", "web-2", "patch"), "200");
        let mut relist = RequestedAtRelist::default();
        let event = |e: watcher::Event<()>| e;

        assert!(
            relist
                .see(
                    &event(watcher::Event::Init),
                    &metrics,
                    "replicasets",
                    |_, _| false
                )
                .is_empty()
        );
        // Created after the list was taken and written while it is read: missing from it, not gone.
        metrics.request(&request("replicasets", "web-3", "patch"), "200");
        let gone = relist.see(
            &event(watcher::Event::InitDone),
            &metrics,
            "replicasets",
            |_, name| name == "web-2",
        );

        let gone: Vec<&str> = gone.iter().map(|(_, name)| name.as_str()).collect();
        assert_eq!(gone, vec!["web-1"]);
        // Outside a re-list nothing is gone.
        let apply = relist.see(
            &event(watcher::Event::Apply(())),
            &metrics,
            "replicasets",
            |_, _| false,
        );
        assert!(apply.is_empty());
    }

    #[test]
    fn requested_objects_gone_are_named_objects_of_that_kind_only() {
        let metrics = Metrics::new();
        metrics.request(&request("replicasets", "web-1", "patch"), "200");
        metrics.request(&request("replicasets/scale", "web-3", "patch"), "200");
        metrics.request(&request("replicasets", "web-2", "patch"), "409");
        metrics.request(&request("replicasets", "", "create"), "201");
        metrics.request(&request("services", "web-1", "patch"), "200");
        metrics.request(&request("replicasetsx", "web-4", "patch"), "200");

        let gone = metrics.requested_objects_gone("replicasets", |_, name| name == "web-2");

        let gone: Vec<&str> = gone.iter().map(|(_, name)| name.as_str()).collect();
        assert_eq!(gone, vec!["web-1", "web-3"]);
    }
}
