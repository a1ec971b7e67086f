//! The judge: which metrics to measure now (reference 6.5), and what the measurements taken mean for each
//! metric (6.6) and for the run (6.7). Pure: the clock is an argument and measuring is the caller's job.

use std::collections::BTreeMap;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use regex::Regex;

use crate::api::AnalysisPhase;
use crate::api::analysis::{
    AnalysisRunStatus, DryRun, Measurement, MeasurementRetention, Metric, MetricResult, RunSummary,
};
use crate::api::duration::parse_go_duration_nanos;

/// Measurements kept per metric unless `measurementRetention` says otherwise.
pub const DEFAULT_MEASUREMENT_RETENTION: usize = 10;
/// How long after an errored measurement the metric is measured again.
pub const ERROR_RETRY_INTERVAL: SignedDuration = SignedDuration::from_secs(10);
const DEFAULT_CONSECUTIVE_ERROR_LIMIT: i32 = 4;

/// A run as the judge sees it: its metrics with arguments already substituted.
#[derive(Clone, Copy, Debug)]
pub struct Run<'a> {
    pub metrics: &'a [Metric],
    pub terminate: bool,
    pub dry_run: &'a [DryRun],
    pub retention: &'a [MeasurementRetention],
}

/// A metric to measure now.
#[derive(Clone, Debug, PartialEq)]
pub struct Task {
    pub metric: String,
    /// A measurement still in flight (a Job), to resume, or to stop when `terminate` is set.
    pub in_flight: Option<Measurement>,
    pub terminate: bool,
}

/// A measurement a provider finished (or resumed), for one metric.
#[derive(Clone, Debug, PartialEq)]
pub struct Taken {
    pub metric: String,
    pub measurement: Measurement,
    /// Provider details for the metric result, e.g. `ResolvedPrometheusQuery`.
    pub metadata: BTreeMap<String, String>,
}

/// An event the judge asks for, on a transition only.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunEvent {
    pub reason: String,
    pub message: String,
    pub warning: bool,
}

/// The judge's answer after measuring.
#[derive(Clone, Debug, PartialEq)]
pub struct Judgement {
    pub status: AnalysisRunStatus,
    pub events: Vec<RunEvent>,
    /// When to look at the run again (the next measurement or resume); `None` once it is complete.
    pub requeue_after: Option<Duration>,
}

/// The dry-run and retention rules, matched against metric names (unanchored regular expressions).
struct Rules {
    dry_run: Vec<bool>,
    retention: Vec<usize>,
}

impl Rules {
    fn new(run: &Run) -> Result<Rules, String> {
        let names: Vec<&str> = run.metrics.iter().map(|m| m.name.as_str()).collect();
        let mut dry_run = vec![false; names.len()];
        for (i, rule) in run.dry_run.iter().enumerate() {
            let pattern = Regex::new(&rule.metric_name)
                .map_err(|e| format!("dryRun[{i}]: invalid metricName: {e}"))?;
            let mut matched = false;
            for (flag, name) in dry_run.iter_mut().zip(&names) {
                if pattern.is_match(name) {
                    *flag = true;
                    matched = true;
                }
            }
            if !matched {
                return Err(format!("dryRun[{i}]: Rule didn't match any metric name(s)"));
            }
        }
        let mut retention = vec![DEFAULT_MEASUREMENT_RETENTION; names.len()];
        for (i, rule) in run.retention.iter().enumerate().rev() {
            let pattern = Regex::new(&rule.metric_name)
                .map_err(|e| format!("measurementRetention[{i}]: invalid metricName: {e}"))?;
            let mut matched = false;
            for (limit, name) in retention.iter_mut().zip(&names) {
                if pattern.is_match(name) {
                    *limit = usize::try_from(rule.limit).unwrap_or(0).max(1);
                    matched = true;
                }
            }
            if !matched {
                return Err(format!(
                    "measurementRetention[{i}]: Rule didn't match any metric name(s)"
                ));
            }
        }
        Ok(Rules { dry_run, retention })
    }
}

/// A metric's schedule and limits, defaults applied.
#[derive(Clone, Copy, Debug)]
struct Limits {
    /// `None` measures until the run is terminated.
    count: Option<i32>,
    interval: Option<SignedDuration>,
    initial_delay: SignedDuration,
    failure: i32,
    inconclusive: i32,
    consecutive_error: i32,
    consecutive_success: i32,
    failure_limit_set: bool,
}

impl Limits {
    fn of(metric: &Metric) -> Result<Limits, String> {
        let duration = |field: &str, text: &str| -> Result<Option<SignedDuration>, String> {
            if text.is_empty() {
                return Ok(None);
            }
            parse_go_duration_nanos(text)
                .and_then(|nanos| i64::try_from(nanos).ok())
                .map(|nanos| Some(SignedDuration::from_nanos(nanos)))
                .ok_or_else(|| {
                    format!(
                        "metric \"{}\": {field} {text:?} is not a duration",
                        metric.name
                    )
                })
        };
        let number =
            |field: &str, value: &Option<IntOrString>, default: i32| -> Result<i32, String> {
                match value {
                    None => Ok(default),
                    Some(IntOrString::Int(n)) => Ok(*n),
                    Some(IntOrString::String(text)) => text.trim().parse().map_err(|_| {
                        format!(
                            "metric \"{}\": {field} {text:?} is not a number",
                            metric.name
                        )
                    }),
                }
            };
        let interval = duration("interval", &metric.interval)?;
        let count = number("count", &metric.count, 0)?;
        Ok(Limits {
            count: match (count, interval) {
                (0, None) => Some(1),
                (0, Some(_)) => None,
                (n, _) => Some(n),
            },
            interval,
            initial_delay: duration("initialDelay", &metric.initial_delay)?.unwrap_or_default(),
            failure: number("failureLimit", &metric.failure_limit, 0)?,
            inconclusive: number("inconclusiveLimit", &metric.inconclusive_limit, 0)?,
            consecutive_error: number(
                "consecutiveErrorLimit",
                &metric.consecutive_error_limit,
                DEFAULT_CONSECUTIVE_ERROR_LIMIT,
            )?,
            consecutive_success: number(
                "consecutiveSuccessLimit",
                &metric.consecutive_success_limit,
                0,
            )?,
            failure_limit_set: metric.failure_limit.is_some(),
        })
    }

    fn count_reached(&self, result: &MetricResult) -> bool {
        self.count.is_some_and(|count| result.count >= count)
    }
}

/// Status times are stored with whole seconds; judging on whole seconds keeps a re-read status equal to
/// the one written.
fn whole_seconds(now: Timestamp) -> Timestamp {
    Timestamp::from_second(now.as_second()).unwrap_or(now)
}

fn result_of<'s>(status: &'s AnalysisRunStatus, name: &str) -> Option<&'s MetricResult> {
    status.metric_results.iter().find(|r| r.name == name)
}

/// A run is terminating once asked to, or once a metric that counts has failed, errored or been
/// inconclusive: no new measurements are started for any metric.
fn terminating(run: &Run, rules: &Rules, status: &AnalysisRunStatus) -> bool {
    run.terminate
        || run.metrics.iter().zip(&rules.dry_run).any(|(metric, dry)| {
            !dry && result_of(status, &metric.name).is_some_and(|r| {
                matches!(
                    r.phase,
                    AnalysisPhase::Failed | AnalysisPhase::Error | AnalysisPhase::Inconclusive
                )
            })
        })
}

/// When a metric that is not complete is next due, or `None` when nothing is scheduled.
fn next_due(
    limits: &Limits,
    result: Option<&MetricResult>,
    started: Timestamp,
) -> Option<Timestamp> {
    let Some(result) = result.filter(|r| !r.measurements.is_empty()) else {
        return Some(started + limits.initial_delay);
    };
    let last = result.measurements.last()?;
    let Some(finished) = last.finished_at.as_ref() else {
        return Some(
            last.resume_at
                .as_ref()
                .map_or(finished_or(last, started), |t| t.0),
        );
    };
    if last.phase == AnalysisPhase::Error {
        return Some(finished.0 + ERROR_RETRY_INTERVAL);
    }
    if limits.count_reached(result) {
        return None;
    }
    Some(finished.0 + limits.interval.unwrap_or_default())
}

fn finished_or(measurement: &Measurement, fallback: Timestamp) -> Timestamp {
    measurement.started_at.as_ref().map_or(fallback, |t| t.0)
}

/// The run's metrics with arguments substituted, checked: an error is the run's `Error` message.
pub fn check(run: &Run) -> Result<(), String> {
    Rules::new(run)?;
    for metric in run.metrics {
        Limits::of(metric)?;
    }
    Ok(())
}

/// The metrics to measure at `now` (reference 6.5).
pub fn due(run: &Run, status: &AnalysisRunStatus, now: Timestamp) -> Result<Vec<Task>, String> {
    let now = whole_seconds(now);
    if status.phase.is_some_and(AnalysisPhase::is_completed) {
        return Ok(Vec::new());
    }
    let rules = Rules::new(run)?;
    let terminating = terminating(run, &rules, status);
    let started = status.started_at.as_ref().map_or(now, |t| t.0);
    let mut tasks = Vec::new();
    for metric in run.metrics {
        let limits = Limits::of(metric)?;
        let result = result_of(status, &metric.name);
        if result.is_some_and(|r| r.phase.is_completed()) {
            continue;
        }
        let last = result.and_then(|r| r.measurements.last());
        if let Some(last) = last.filter(|m| m.finished_at.is_none()) {
            let resume = last.resume_at.as_ref().is_none_or(|t| t.0 <= now);
            if terminating || resume {
                tasks.push(Task {
                    metric: metric.name.clone(),
                    in_flight: Some(last.clone()),
                    terminate: terminating,
                });
            }
            continue;
        }
        if terminating {
            continue;
        }
        if next_due(&limits, result, started).is_some_and(|at| at <= now) {
            tasks.push(Task {
                metric: metric.name.clone(),
                in_flight: None,
                terminate: false,
            });
        }
    }
    Ok(tasks)
}

/// Folds the measurements just taken into the status, then judges every metric and the run.
pub fn judge(
    run: &Run,
    status: &AnalysisRunStatus,
    taken: Vec<Taken>,
    now: Timestamp,
) -> Judgement {
    let now = whole_seconds(now);
    let mut status = status.clone();
    let mut events = Vec::new();
    let rules = match Rules::new(run).and_then(|rules| check(run).map(|()| rules)) {
        Ok(rules) => rules,
        Err(message) => return fail(status, format!("Analysis spec invalid: {message}"), now),
    };
    if status.phase.is_some_and(AnalysisPhase::is_completed) {
        return Judgement {
            status,
            events,
            requeue_after: None,
        };
    }
    let started = status.started_at.get_or_insert(Time(now)).0;
    for taken in taken {
        let Some(index) = run.metrics.iter().position(|m| m.name == taken.metric) else {
            continue;
        };
        record(
            &mut status,
            &taken,
            rules.dry_run[index],
            rules.retention[index],
        );
    }
    let before: Vec<Option<AnalysisPhase>> = run
        .metrics
        .iter()
        .map(|m| result_of(&status, &m.name).map(|r| r.phase))
        .collect();
    // Assess with the terminating state the run had, then again if this very assessment tripped a
    // limit, so a failed metric finishes the run now rather than on the next reconcile.
    let was_terminating = terminating(run, &rules, &status);
    let mut verdicts = assess_all(run, &status, was_terminating);
    apply_verdicts(run, &rules, &mut status, &verdicts);
    if !was_terminating && terminating(run, &rules, &status) {
        let again = assess_all(run, &status, true);
        apply_verdicts(run, &rules, &mut status, &again);
        // A metric completed by the first pass keeps that verdict: it holds the limit that tripped,
        // which the run's message quotes.
        for (verdict, again) in verdicts.iter_mut().zip(again) {
            if !verdict.phase.is_completed() {
                *verdict = again;
            }
        }
    }
    let (phase, message) = run_phase(run, &rules, &status, &verdicts);
    for ((metric, verdict), before) in run.metrics.iter().zip(&verdicts).zip(before) {
        if verdict.phase.is_completed() && before != Some(verdict.phase) {
            events.push(RunEvent {
                reason: format!("Metric{}", verdict.phase),
                message: format!(
                    "Metric '{}' Completed. Result: {}",
                    metric.name, verdict.phase
                ),
                warning: is_bad(verdict.phase),
            });
        }
    }
    let summary = |dry: bool| summarize(run, &rules, &verdicts, dry);
    status.run_summary = Some(summary(false));
    status.dry_run_summary = rules.dry_run.iter().any(|d| *d).then(|| summary(true));
    status.message = message;
    let was = status.phase;
    status.phase = Some(phase);
    let requeue_after = if phase.is_completed() {
        status.completed_at.get_or_insert(Time(now));
        if was != Some(phase) {
            events.push(RunEvent {
                reason: format!("AnalysisRun{phase}"),
                message: format!("Analysis Completed. Result: {phase}"),
                warning: is_bad(phase),
            });
        }
        None
    } else {
        next_requeue(run, &status, started, now)
    };
    Judgement {
        status,
        events,
        requeue_after,
    }
}

/// The run's status when its spec cannot be measured: `Error` with the message, at once.
fn fail(mut status: AnalysisRunStatus, message: String, now: Timestamp) -> Judgement {
    let mut events = Vec::new();
    if status.phase != Some(AnalysisPhase::Error) {
        events.push(RunEvent {
            reason: "AnalysisRunError".into(),
            message: "Analysis Completed. Result: Error".into(),
            warning: true,
        });
    }
    status.started_at.get_or_insert(Time(now));
    status.completed_at.get_or_insert(Time(now));
    status.phase = Some(AnalysisPhase::Error);
    status.message = message;
    Judgement {
        status,
        events,
        requeue_after: None,
    }
}

/// The status of a run whose arguments could not be resolved.
pub fn unresolvable(status: &AnalysisRunStatus, error: &str, now: Timestamp) -> Judgement {
    fail(
        status.clone(),
        format!("Unable to resolve metric arguments: {error}"),
        whole_seconds(now),
    )
}

fn is_bad(phase: AnalysisPhase) -> bool {
    matches!(phase, AnalysisPhase::Failed | AnalysisPhase::Error)
}

/// Adds a measurement to its metric's result: counters, the message, and the retention limit.
fn record(status: &mut AnalysisRunStatus, taken: &Taken, dry_run: bool, retention: usize) {
    let index = match status
        .metric_results
        .iter()
        .position(|r| r.name == taken.metric)
    {
        Some(index) => index,
        None => {
            status.metric_results.push(MetricResult {
                name: taken.metric.clone(),
                phase: AnalysisPhase::Running,
                dry_run,
                ..Default::default()
            });
            status.metric_results.len() - 1
        }
    };
    let result = &mut status.metric_results[index];
    let measurement = &taken.measurement;
    let replaces_in_flight = result
        .measurements
        .last()
        .is_some_and(|last| last.finished_at.is_none());
    if replaces_in_flight {
        result.measurements.pop();
    }
    result.measurements.push(measurement.clone());
    if result.measurements.len() > retention {
        let excess = result.measurements.len() - retention;
        result.measurements.drain(..excess);
    }
    result.metadata.extend(taken.metadata.clone());
    result.message = measurement.message.clone();
    if measurement.finished_at.is_none() {
        return;
    }
    match measurement.phase {
        AnalysisPhase::Successful => {
            result.successful += 1;
            result.count += 1;
            result.consecutive_error = 0;
            result.consecutive_success += 1;
        }
        AnalysisPhase::Failed | AnalysisPhase::Inconclusive => {
            if measurement.phase == AnalysisPhase::Failed {
                result.failed += 1;
            } else {
                result.inconclusive += 1;
            }
            result.count += 1;
            result.consecutive_error = 0;
            result.consecutive_success = 0;
        }
        AnalysisPhase::Error => {
            result.error += 1;
            result.consecutive_error += 1;
            result.consecutive_success = 0;
        }
        AnalysisPhase::Pending | AnalysisPhase::Running => {}
    }
}

/// A metric's phase and, when a limit tripped, why.
#[derive(Clone, Debug, PartialEq)]
struct Verdict {
    phase: AnalysisPhase,
    limit: Option<String>,
}

fn assess_all(run: &Run, status: &AnalysisRunStatus, terminating: bool) -> Vec<Verdict> {
    run.metrics
        .iter()
        .map(|metric| {
            let result = result_of(status, &metric.name);
            match Limits::of(metric) {
                Ok(limits) => assess_metric(&limits, result, terminating),
                // Unreachable: `judge` checks every metric's limits first.
                Err(why) => Verdict {
                    phase: AnalysisPhase::Error,
                    limit: Some(why),
                },
            }
        })
        .collect()
}

/// Reference 6.6 (`assessMetricStatus`).
fn assess_metric(limits: &Limits, result: Option<&MetricResult>, terminating: bool) -> Verdict {
    let verdict = |phase, limit: Option<String>| Verdict { phase, limit };
    let Some(result) = result else {
        return verdict(
            if terminating {
                AnalysisPhase::Successful
            } else {
                AnalysisPhase::Pending
            },
            None,
        );
    };
    if result.phase.is_completed() {
        return verdict(result.phase, None);
    }
    match result.measurements.last() {
        None => {
            return verdict(
                if terminating {
                    AnalysisPhase::Successful
                } else {
                    AnalysisPhase::Pending
                },
                None,
            );
        }
        Some(last) if last.finished_at.is_none() => return verdict(AnalysisPhase::Running, None),
        Some(_) => {}
    }
    let mut tripped = None;
    if limits.failure >= 0 && result.failed > limits.failure {
        tripped = Some((
            AnalysisPhase::Failed,
            format!(
                "failed ({}) > failureLimit ({})",
                result.failed, limits.failure
            ),
        ));
    }
    if result.inconclusive > limits.inconclusive {
        tripped = Some((
            AnalysisPhase::Inconclusive,
            format!(
                "inconclusive ({}) > inconclusiveLimit ({})",
                result.inconclusive, limits.inconclusive
            ),
        ));
    }
    if result.consecutive_error > limits.consecutive_error {
        tripped = Some((
            AnalysisPhase::Error,
            format!(
                "consecutiveErrors ({}) > consecutiveErrorLimit ({})",
                result.consecutive_error, limits.consecutive_error
            ),
        ));
    }
    if let Some((phase, why)) = tripped {
        return verdict(phase, Some(why));
    }
    if limits.consecutive_success > 0 && result.consecutive_success >= limits.consecutive_success {
        return verdict(AnalysisPhase::Successful, None);
    }
    if limits.count_reached(result) {
        let phase = if limits.consecutive_success > 0
            && (limits.failure >= 0 || !limits.failure_limit_set)
        {
            AnalysisPhase::Inconclusive
        } else if limits.consecutive_success > 0 {
            AnalysisPhase::Failed
        } else {
            AnalysisPhase::Successful
        };
        return verdict(phase, None);
    }
    verdict(
        if terminating {
            AnalysisPhase::Successful
        } else {
            AnalysisPhase::Running
        },
        None,
    )
}

/// Writes the metric phases into the status; a dry-run metric's message says what it would have done.
fn apply_verdicts(run: &Run, rules: &Rules, status: &mut AnalysisRunStatus, verdicts: &[Verdict]) {
    for ((metric, dry), verdict) in run.metrics.iter().zip(&rules.dry_run).zip(verdicts) {
        let Some(result) = status
            .metric_results
            .iter_mut()
            .find(|r| r.name == metric.name)
        else {
            continue;
        };
        if result.phase.is_completed() {
            continue;
        }
        result.phase = verdict.phase;
        if let (true, Some(limit)) = (*dry, &verdict.limit) {
            result.message = format!("Metric assessed {} due to {limit}", verdict.phase);
        }
    }
}

/// Worst first: Failed, Error, Inconclusive, Pending, Running, Successful.
fn severity(phase: AnalysisPhase) -> u8 {
    match phase {
        AnalysisPhase::Failed => 0,
        AnalysisPhase::Error => 1,
        AnalysisPhase::Inconclusive => 2,
        AnalysisPhase::Pending => 3,
        AnalysisPhase::Running => 4,
        AnalysisPhase::Successful => 5,
    }
}

/// Reference 6.7 (`assessRunStatus`): the worst completed phase among the metrics that count.
fn run_phase(
    run: &Run,
    rules: &Rules,
    status: &AnalysisRunStatus,
    verdicts: &[Verdict],
) -> (AnalysisPhase, String) {
    let mut worst: Option<(AnalysisPhase, String)> = None;
    let mut everything_completed = true;
    let mut in_flight = false;
    for ((metric, dry), verdict) in run.metrics.iter().zip(&rules.dry_run).zip(verdicts) {
        let Some(result) = result_of(status, &metric.name) else {
            everything_completed = false;
            continue;
        };
        if !result.phase.is_completed() {
            everything_completed = false;
            in_flight |= result.phase == AnalysisPhase::Running
                && result
                    .measurements
                    .last()
                    .is_some_and(|m| m.finished_at.is_none());
            continue;
        }
        if *dry
            || worst
                .as_ref()
                .is_some_and(|(w, _)| severity(*w) <= severity(result.phase))
        {
            continue;
        }
        let message = match &verdict.limit {
            Some(limit) => {
                let mut message = format!(
                    "Metric \"{}\" assessed {} due to {limit}",
                    metric.name, result.phase
                );
                if let Some(last) = result.measurements.last().filter(|m| !m.message.is_empty()) {
                    message.push_str(&format!(": \"Error Message: {}\"", last.message));
                }
                message
            }
            None => String::new(),
        };
        worst = Some((result.phase, message));
    }
    if terminating(run, rules, status) && !in_flight {
        return match worst {
            Some((phase, message)) if phase != AnalysisPhase::Successful => (phase, message),
            _ if run.terminate => (AnalysisPhase::Successful, "Run Terminated".into()),
            _ => (AnalysisPhase::Successful, String::new()),
        };
    }
    match worst {
        Some((phase, message)) if everything_completed => (phase, message),
        None if everything_completed => (AnalysisPhase::Successful, String::new()),
        _ => (AnalysisPhase::Running, String::new()),
    }
}

fn summarize(run: &Run, rules: &Rules, verdicts: &[Verdict], dry: bool) -> RunSummary {
    let mut summary = RunSummary::default();
    for ((_, is_dry), verdict) in run.metrics.iter().zip(&rules.dry_run).zip(verdicts) {
        if *is_dry != dry {
            continue;
        }
        summary.count += 1;
        match verdict.phase {
            AnalysisPhase::Successful => summary.successful += 1,
            AnalysisPhase::Failed => summary.failed += 1,
            AnalysisPhase::Inconclusive => summary.inconclusive += 1,
            AnalysisPhase::Error => summary.error += 1,
            AnalysisPhase::Pending | AnalysisPhase::Running => {}
        }
    }
    summary
}

fn next_requeue(
    run: &Run,
    status: &AnalysisRunStatus,
    started: Timestamp,
    now: Timestamp,
) -> Option<Duration> {
    run.metrics
        .iter()
        .filter_map(|metric| {
            let result = result_of(status, &metric.name);
            if result.is_some_and(|r| r.phase.is_completed()) {
                return None;
            }
            next_due(&Limits::of(metric).ok()?, result, started)
        })
        .min()
        .map(|at| {
            let wait = at.duration_since(now);
            Duration::try_from(wait).unwrap_or(Duration::ZERO)
        })
}

#[cfg(test)]
mod tests;
