//! The AnalysisRun controller: for each unfinished run, measure what the judge finds due, let the judge
//! fold the measurements in, and merge-patch the status when it changed. Finished runs are only looked at
//! again to delete them when their `ttlStrategy` says so; their cached copies keep no metrics, so a
//! namespace full of old runs costs memory for their names only.

mod measure;

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt};
use jiff::Timestamp;
use k8s_openapi::api::core::v1::Secret;
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, Patch, PatchParams, Preconditions, PropagationPolicy};
use kube::runtime::WatchStreamExt;
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::{self, ObjectRef};
use kube::runtime::watcher::{self, Config as WatcherConfig, watcher};
use serde_json::json;

use super::error::{Error, kube};
use super::metrics::{MetricPhase, RequestedAtRelist};
use super::{Context, act::merge_diff, api, async_stream_of_gains, strip};
use crate::analysis::args::{self, Arguments};
use crate::analysis::judge::{self, Judgement, Run};
use crate::analysis::provider::job;
use crate::analysis::ttl;
use crate::api::AnalysisRun;
use crate::api::analysis::AnalysisRunStatus;
use crate::plan::Event;
use measure::Measuring;

/// How soon a conflicting status write (someone else changed the run) is retried.
const CONFLICT_REQUEUE: Duration = Duration::from_secs(1);
/// How soon a failed reconcile is retried.
const ERROR_REQUEUE: Duration = Duration::from_secs(5);
/// How soon a reconcile skipped on a cache behind our own write is retried if no watch event comes first.
const STALE_REQUEUE: Duration = Duration::from_secs(2);

/// Runs the AnalysisRun controller until shutdown, over runs matching `config` in `namespace` (or all).
/// `writer` fills the store the context reads as `ctx.runs`.
pub async fn run(
    ctx: Arc<Context>,
    namespace: Option<&str>,
    config: WatcherConfig,
    writer: reflector::store::Writer<AnalysisRun>,
) {
    let watched_ctx = ctx.clone();
    let mut requested_at_relist = RequestedAtRelist::default();
    let runs = watcher(api::<AnalysisRun>(&ctx.client, namespace), config)
        .default_backoff()
        .modify(strip)
        .modify(forget_finished_metrics)
        .reflect(writer)
        // As for Rollouts: a run deleted without a finalizer is never reconciled again, so what this
        // process keeps about it goes here, once the store no longer has it.
        .map_ok(move |event| {
            let requested_gone = requested_at_relist.see(
                &event,
                &watched_ctx.metrics,
                "analysisruns",
                |ns, name| {
                    watched_ctx
                        .runs
                        .get(&ObjectRef::new(name).within(ns))
                        .is_some()
                },
            );
            let now = Instant::now();
            for (namespace, name) in &requested_gone {
                watched_ctx
                    .metrics
                    .object_deleted("analysisruns", namespace, name, now);
            }
            match &event {
                watcher::Event::Delete(run) => {
                    forget(&watched_ctx, run);
                    watched_ctx.metrics.object_deleted(
                        "analysisruns",
                        &run.namespace().unwrap_or_default(),
                        &run.name_any(),
                        Instant::now(),
                    );
                }
                watcher::Event::InitDone => forget_runs_gone(&watched_ctx),
                _ => {}
            }
            event
        })
        .touched_objects();
    let mut leadership = ctx.leader.subscribe();
    Controller::for_stream(runs, ctx.runs.clone())
        .with_config(
            kube::runtime::controller::Config::default().concurrency(ctx.settings.concurrency),
        )
        .reconcile_all_on(async_stream_of_gains(&mut leadership))
        .shutdown_on_signal()
        .run(reconcile, error_policy, ctx)
        .for_each(|result| async move {
            if let Err(e) = result {
                tracing::debug!(error = %e, "analysis run reconcile failed");
            }
        })
        .await;
}

/// A finished run is never measured again: its cached copy drops the metrics, arguments and results,
/// keeping what deletion by `ttlStrategy` and the phase metric need.
fn forget_finished_metrics(run: &mut AnalysisRun) {
    let Some(status) = run.status.as_mut() else {
        return;
    };
    if !status.phase.is_some_and(|p| p.is_completed()) {
        return;
    }
    status.metric_results = Vec::new();
    status.message = String::new();
    status.run_summary = None;
    status.dry_run_summary = None;
    run.spec.metrics = Vec::new();
    run.spec.args = Vec::new();
    run.spec.dry_run = Vec::new();
    run.spec.measurement_retention = Vec::new();
}

/// Drops what this process keeps about a run that is being deleted or is gone: its metric series and
/// the bookkeeping of its writes.
fn forget(ctx: &Context, run: &AnalysisRun) {
    let namespace = run.namespace().unwrap_or_default();
    ctx.metrics.forget_analysis_run(&namespace, &run.name_any());
    ctx.forget_event_counts(&namespace, &run.name_any());
    if let Some(uid) = run.uid() {
        ctx.analysis_writes.forget(&uid);
    }
}

/// When the watch no longer has this run, forgets it and returns true; when it has another run of the
/// same name, forgets only the bookkeeping kept by this one's uid (the series by name are the new one's).
fn forget_if_deleted(ctx: &Context, run: &AnalysisRun) -> bool {
    match ctx.runs.get(&ObjectRef::from_obj(run)) {
        None => forget(ctx, run),
        Some(current) if current.metadata.uid != run.metadata.uid => {
            if let Some(uid) = run.uid() {
                ctx.analysis_writes.forget(&uid);
            }
        }
        Some(_) => return false,
    }
    true
}

/// After the watch listed again: forgets the runs deleted meanwhile, of which it sent no delete event.
fn forget_runs_gone(ctx: &Context) {
    let gone = ctx.metrics.analysis_runs_gone(|namespace, name| {
        ctx.runs
            .get(&ObjectRef::new(name).within(namespace))
            .is_some()
    });
    for (namespace, name) in &gone {
        ctx.metrics.forget_analysis_run(namespace, name);
    }
    ctx.forget_event_counts_gone();
    let live: HashSet<String> = ctx
        .runs
        .state()
        .iter()
        .filter_map(|run| run.uid())
        .collect();
    ctx.analysis_writes.retain(|uid| live.contains(uid));
    if !gone.is_empty() {
        tracing::info!(
            count = gone.len(),
            "forgot the AnalysisRuns deleted while the watch was not looking"
        );
    }
}

async fn reconcile(run: Arc<AnalysisRun>, ctx: Arc<Context>) -> Result<Action, Error> {
    let outcome = reconcile_run(run.clone(), ctx.clone()).await;
    // Deleted while this reconcile ran: what it recorded since the delete's watch event (metric series,
    // its write) would stay for good. The store loses a run before that event is handled, so checking
    // it after recording leaves nothing behind in either order.
    if forget_if_deleted(&ctx, &run) {
        return Ok(Action::await_change());
    }
    outcome
}

async fn reconcile_run(run: Arc<AnalysisRun>, ctx: Arc<Context>) -> Result<Action, Error> {
    let namespace = run.namespace().unwrap_or_default();
    let name = run.name_any();
    if run.metadata.deletion_timestamp.is_some() {
        forget(&ctx, &run);
        return Ok(Action::await_change());
    }
    if !ctx.leader.is_leader() {
        return Ok(Action::await_change());
    }
    let status = run.status.clone().unwrap_or_default();
    if status.phase.is_some_and(|p| p.is_completed()) {
        ctx.metrics.observe_analysis_run(
            &namespace,
            &name,
            &run.uid().unwrap_or_default(),
            status.phase,
            None,
        );
        return expire(&ctx, &run, &status).await;
    }
    if let (Some(uid), Some(version)) = (run.uid(), run.resource_version())
        && ctx.analysis_writes.behind(&uid, &version)
    {
        return Ok(Action::requeue(STALE_REQUEUE));
    }
    let started = Instant::now();
    let judgement = assess(&ctx, &run, &status).await?;
    let written = write(&ctx, &run, &status, &judgement).await?;
    ctx.metrics
        .analysis_run_reconciled(&namespace, &name, started.elapsed());
    let Some(version) = written else {
        return Ok(Action::requeue(CONFLICT_REQUEUE));
    };
    observe(&ctx, &run, &judgement.status);
    let events: Vec<Event> = judgement
        .events
        .iter()
        .map(|event| Event {
            warning: event.warning,
            reason: event.reason.clone(),
            message: event.message.clone(),
            status_change: true,
        })
        .collect();
    for event in &events {
        ctx.metrics.event(&namespace, &name, event);
    }
    ctx.events.record(run.as_ref(), &version, &events).await;
    if judgement.status.phase.is_some_and(|p| p.is_completed()) {
        return expire(&ctx, &run, &judgement.status).await;
    }
    Ok(match judgement.requeue_after {
        Some(after) => Action::requeue(after.max(Duration::from_millis(100))),
        None => Action::await_change(),
    })
}

/// Measures what is due and judges the run.
async fn assess(
    ctx: &Context,
    run: &AnalysisRun,
    status: &AnalysisRunStatus,
) -> Result<Judgement, Error> {
    let arguments = match arguments(ctx, run).await? {
        Ok(arguments) => arguments,
        Err(why) => return Ok(judge::unresolvable(status, &why, Timestamp::now())),
    };
    let resolved = args::resolve_metrics(&run.spec.metrics, &arguments.values).and_then(|values| {
        Ok((
            values,
            args::resolve_metrics(&run.spec.metrics, &arguments.shown)?,
        ))
    });
    let (metrics, shown) = match resolved {
        Ok(both) => both,
        Err(why) => {
            let why = arguments.redact(&why);
            return Ok(judge::unresolvable(status, &why, Timestamp::now()));
        }
    };
    let judged = Run {
        metrics: &shown,
        terminate: run.spec.terminate,
        dry_run: &run.spec.dry_run,
        retention: &run.spec.measurement_retention,
    };
    // A spec the judge cannot read has no tasks; `judge` then reports it as the run's error.
    let tasks = judge::due(&judged, status, Timestamp::now()).unwrap_or_default();
    let namespace = run.namespace().unwrap_or_default();
    let name = run.name_any();
    let uid = run.uid().unwrap_or_default();
    let measuring = Measuring {
        client: &ctx.client,
        owner: job::Owner {
            namespace: &namespace,
            name: &name,
            uid: &uid,
        },
        metrics: &metrics,
        shown: &shown,
        arguments: &arguments,
        status,
        prometheus_address: ctx.settings.prometheus_address.as_deref(),
    };
    let taken = measure::measure_all(&measuring, &tasks).await;
    Ok(judge::judge(&judged, status, taken, Timestamp::now()))
}

/// The run's argument values, reading Secrets for `secretKeyRef` arguments. The inner error is the
/// user's to fix (a missing Secret or key) and fails the run; the outer one is the API server's and is
/// retried.
async fn arguments(ctx: &Context, run: &AnalysisRun) -> Result<Result<Arguments, String>, Error> {
    let namespace = run.namespace().unwrap_or_default();
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), &namespace);
    let mut values: BTreeMap<(String, String), Result<String, String>> = BTreeMap::new();
    for reference in args::secret_refs(&run.spec.args) {
        let key = (reference.name.clone(), reference.key.clone());
        if values.contains_key(&key) {
            continue;
        }
        let value = match secrets.get_opt(&reference.name).await {
            Ok(None) => Err("the Secret does not exist".to_string()),
            Ok(Some(secret)) => secret
                .data
                .as_ref()
                .and_then(|data| data.get(&reference.key))
                .map(|bytes| String::from_utf8_lossy(&bytes.0).into_owned())
                .ok_or_else(|| "the Secret has no such key".to_string()),
            Err(e) => {
                return Err(kube("get", format!("Secret {}", reference.name))(e));
            }
        };
        values.insert(key, value);
    }
    Ok(args::arguments(&run.spec.args, |reference| {
        values
            .get(&(reference.name.clone(), reference.key.clone()))
            .cloned()
            .unwrap_or_else(|| Err("the Secret was not read".into()))
    }))
}

/// Merge-patches the run's status when the judgement changed it, conditioned on the version read.
/// Returns the run's version after the write (unchanged when nothing was written), or `None` when
/// someone else changed the run first.
async fn write(
    ctx: &Context,
    run: &AnalysisRun,
    status: &AnalysisRunStatus,
    judgement: &Judgement,
) -> Result<Option<String>, Error> {
    let read = run.resource_version().unwrap_or_default();
    let encode =
        |s: &AnalysisRunStatus| serde_json::to_value(s).map_err(|e| Error::Encode("status", e));
    let Some(diff) = merge_diff(&encode(status)?, &encode(&judgement.status)?) else {
        return Ok(Some(read));
    };
    if !ctx.leader.is_leader() {
        return Err(Error::NotLeader);
    }
    let patch = json!({"metadata": {"resourceVersion": read}, "status": diff});
    let runs: Api<AnalysisRun> =
        Api::namespaced(ctx.client.clone(), &run.namespace().unwrap_or_default());
    match runs
        .patch(
            &run.name_any(),
            &PatchParams::default(),
            &Patch::Merge(&patch),
        )
        .await
    {
        Ok(updated) => {
            let after = updated.resource_version().unwrap_or_default();
            if let Some(uid) = run.uid() {
                ctx.analysis_writes.remember(&uid, &[read, after.clone()]);
            }
            Ok(Some(after))
        }
        Err(kube::Error::Api(status)) if status.code == 409 => Ok(None),
        Err(e) => Err(kube(
            "patch",
            format!("AnalysisRun {} status", run.name_any()),
        )(e)),
    }
}

/// Deletes a finished run once its `ttlStrategy` expires; until then, looks again at the expiry.
async fn expire(
    ctx: &Context,
    run: &AnalysisRun,
    status: &AnalysisRunStatus,
) -> Result<Action, Error> {
    let Some(at) = ttl::expires_at(run.spec.ttl_strategy.as_ref(), status) else {
        return Ok(Action::await_change());
    };
    let left = at.duration_since(Timestamp::now());
    if left.is_positive() {
        let wait = Duration::try_from(left).unwrap_or(Duration::from_secs(1));
        return Ok(Action::requeue(wait));
    }
    let runs: Api<AnalysisRun> =
        Api::namespaced(ctx.client.clone(), &run.namespace().unwrap_or_default());
    let params = DeleteParams {
        propagation_policy: Some(PropagationPolicy::Background),
        preconditions: Some(Preconditions {
            uid: run.uid(),
            resource_version: None,
        }),
        ..Default::default()
    };
    match runs.delete(&run.name_any(), &params).await {
        Ok(_) => {
            tracing::info!(run = %run.name_any(), "deleted AnalysisRun after its ttlStrategy");
            Ok(Action::await_change())
        }
        Err(kube::Error::Api(status)) if status.code == 404 || status.code == 409 => {
            Ok(Action::await_change())
        }
        Err(e) => Err(kube("delete", format!("AnalysisRun {}", run.name_any()))(e)),
    }
}

/// Publishes the run's and its metrics' phases.
fn observe(ctx: &Context, run: &AnalysisRun, status: &AnalysisRunStatus) {
    let metrics: Vec<MetricPhase> = run
        .spec
        .metrics
        .iter()
        .map(|metric| {
            let result = status.metric_results.iter().find(|r| r.name == metric.name);
            MetricPhase {
                metric: &metric.name,
                provider: match metric.provider.names().first() {
                    Some(&"prometheus") => "Prometheus",
                    Some(&"web") => "Web",
                    Some(&"job") => "Job",
                    _ => "Unsupported",
                },
                dry_run: result.is_some_and(|r| r.dry_run),
                phase: result.map(|r| r.phase).unwrap_or_default(),
            }
        })
        .collect();
    ctx.metrics.observe_analysis_run(
        &run.namespace().unwrap_or_default(),
        &run.name_any(),
        &run.uid().unwrap_or_default(),
        status.phase,
        Some(&metrics),
    );
}

fn error_policy(run: Arc<AnalysisRun>, error: &Error, ctx: Arc<Context>) -> Action {
    let namespace = run.namespace().unwrap_or_default();
    tracing::warn!(namespace = %namespace, run = %run.name_any(), error = %error, "analysis run reconcile failed");
    ctx.metrics
        .analysis_run_failed(&namespace, &run.name_any(), error.metric_label());
    // Recorded first, then checked, as at the end of `reconcile`.
    if forget_if_deleted(&ctx, &run) {
        return Action::await_change();
    }
    Action::requeue(ERROR_REQUEUE)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::AnalysisPhase;
    use crate::api::analysis::{Metric, MetricResult};

    #[test]
    fn finished_runs_keep_only_what_expiry_needs() {
        let mut run = AnalysisRun::new("r", Default::default());
        run.spec.metrics = vec![Metric {
            name: "m".into(),
            ..Default::default()
        }];
        run.status = Some(AnalysisRunStatus {
            phase: Some(AnalysisPhase::Running),
            metric_results: vec![MetricResult {
                name: "m".into(),
                ..Default::default()
            }],
            ..Default::default()
        });
        let running = run.clone();
        forget_finished_metrics(&mut run);
        assert_eq!(run.spec, running.spec, "a running run is cached whole");
        assert_eq!(run.status, running.status);
        run.status.as_mut().unwrap().phase = Some(AnalysisPhase::Failed);
        forget_finished_metrics(&mut run);
        assert!(run.spec.metrics.is_empty());
        assert!(run.status.as_ref().unwrap().metric_results.is_empty());
        assert_eq!(run.status.unwrap().phase, Some(AnalysisPhase::Failed));
    }
}
