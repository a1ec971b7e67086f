//! Rules shared by the canary and blue-green strategies: resets on a new revision, abort, pause
//! conditions, promotion, Service switching, scaling old ReplicaSets down, restarts and history cleanup.

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use super::conditions;
use super::context::Context;
use super::observed::ReplicaSetState;
use super::op::{Event, Op};
use super::status::Work;
use crate::api::constants::{condition, event, reason};
use crate::api::rollout::PauseCondition;

/// A new pod template or new steps: start the release over (reference 4.13, 4.14). No scaling in this
/// plan.
pub(crate) fn reset_for_new_revision(ctx: &Context, work: &mut Work, step_count: i32) {
    let status = &mut work.status;
    status.pause_conditions.clear();
    status.controller_pause = false;
    status.abort = false;
    status.aborted_at = None;
    status.promote_full = false;
    status.restarted_at = ctx.rollout.spec.restart_at.clone();
    status.canary.current_step_analysis_run_status = None;
    status.canary.current_background_analysis_run_status = None;
    status.canary.step_plugin_statuses = None;
    status.blue_green.pre_promotion_analysis_run_status = None;
    status.blue_green.post_promotion_analysis_run_status = None;
    status.blue_green.scale_up_preview_check_point = false;
    status.current_step_index = (step_count > 0).then_some(0);
    let back_to_stable = ctx.fully_promoted(&status.stable_rs);
    if back_to_stable && step_count > 0 {
        status.current_step_index = Some(step_count);
        work.event(Event::status_normal(
            event::SKIP_STEPS,
            "Rollback to stable ReplicaSets",
        ));
    } else if step_count > 0 && rollback_within_window(ctx) {
        work.status.current_step_index = Some(step_count);
        work.status.promote_full = true;
        work.event(Event::status_normal(
            event::SKIP_STEPS,
            "Rollback to active ReplicaSets within RollbackWindow",
        ));
    }
    work.status.current_pod_hash = ctx.new_hash.clone();
    work.status.current_step_hash = ctx.step_hash.clone();
}

/// `rollbackWindow` (reference 4.14): the desired ReplicaSet is an older one that still runs, and fewer
/// than `revisions` ReplicaSets lie between it and the stable one.
fn rollback_within_window(ctx: &Context) -> bool {
    let Some(window) = ctx
        .rollout
        .spec
        .rollback_window
        .as_ref()
        .and_then(|w| w.revisions)
    else {
        return false;
    };
    let (Some(new_rs), Some(stable)) = (ctx.new_rs, ctx.stable_distinct()) else {
        return false;
    };
    let (Some(target), Some(stable_revision)) = (new_rs.revision, stable.revision) else {
        return false;
    };
    if target >= stable_revision || new_rs.replicas == 0 {
        return false;
    }
    let between = ctx
        .all_rs()
        .filter_map(|rs| rs.revision)
        .filter(|r| *r > target && *r < stable_revision)
        .count() as i32;
    between < window
}

/// Drops an abort of a fully promoted rollout; applies `promote --full` (reference 4.1, 4.11).
pub(crate) fn settle_abort_and_full_promotion(work: &mut Work, promoted: bool, step_count: i32) {
    let status = &mut work.status;
    if promoted && status.abort {
        status.abort = false;
        status.aborted_at = None;
    }
    if status.promote_full {
        status.pause_conditions.clear();
        status.controller_pause = false;
        status.abort = false;
        status.aborted_at = None;
        if step_count > 0 {
            status.current_step_index = Some(step_count);
        }
    }
    if !status.abort {
        status.aborted_at = None;
    }
}

/// `progressDeadlineAbort` (reference 4.15): a rollout whose deadline passed aborts.
pub(crate) fn abort_if_deadline_passed(ctx: &Context, work: &mut Work, promoted: bool) {
    if !ctx.rollout.spec.progress_deadline_abort || promoted || work.status.abort {
        return;
    }
    let Some(progressing) = conditions::find(&ctx.old.conditions, condition::PROGRESSING) else {
        return;
    };
    if progressing.reason == reason::PROGRESS_DEADLINE_EXCEEDED {
        work.status.abort = true;
        work.abort_message = Some(progressing.message.clone());
    }
}

/// The effects of an abort on status (reference 4.9): `abortedAt` set once, pauses dropped, back to the
/// first step (or past the last, when nothing was being released).
pub(crate) fn apply_abort(ctx: &Context, work: &mut Work, promoted: bool, step_count: i32) {
    if !work.status.abort {
        return;
    }
    if work.status.aborted_at.is_none() {
        // The `RolloutAborted` event goes out with the status (`status::finish`), after this plan's
        // scaling, as in Argo.
        work.status.aborted_at = Some(Time(ctx.now));
    }
    work.status.pause_conditions.clear();
    work.status.controller_pause = false;
    if step_count > 0 {
        work.status.current_step_index = Some(if promoted { step_count } else { 0 });
    }
}

/// True when a pause condition with this reason exists.
pub(crate) fn has_pause(work: &Work, reason: &str) -> bool {
    work.status
        .pause_conditions
        .iter()
        .any(|p| p.reason == reason)
}

/// When the pause with this reason started.
pub(crate) fn pause_start(work: &Work, reason: &str) -> Option<Timestamp> {
    work.status
        .pause_conditions
        .iter()
        .find(|p| p.reason == reason)
        .map(|p| p.start_time.0)
}

/// Adds a controller pause unless it exists or a person already resumed it.
pub(crate) fn add_pause(work: &mut Work, reason: &str, at: Option<Timestamp>) {
    if has_pause(work, reason) {
        return;
    }
    if work.status.controller_pause && work.status.pause_conditions.is_empty() {
        return;
    }
    let start = at.unwrap_or_else(|| work.now());
    work.status.pause_conditions.push(PauseCondition {
        reason: reason.to_string(),
        start_time: Time(start),
    });
    work.status.controller_pause = true;
}

/// Makes the desired ReplicaSet the stable one (reference 4.8).
pub(crate) fn promote_stable(ctx: &Context, work: &mut Work, step_count: i32, why: &str) {
    let status = &mut work.status;
    status.pause_conditions.clear();
    status.controller_pause = false;
    status.abort = false;
    status.aborted_at = None;
    status.promote_full = false;
    status.current_step_index = (step_count > 0).then_some(step_count);
    status.stable_rs = ctx.new_hash.clone();
    work.event(Event::status_normal(
        event::COMPLETED,
        format!(
            "Rollout completed update to revision {} ({}): {why}",
            ctx.revision, ctx.new_hash
        ),
    ));
}

/// Scales one ReplicaSet, with Argo's `ScalingReplicaSet` event.
pub(crate) fn scale_rs(ctx: &Context, work: &mut Work, rs: &ReplicaSetState, to: i32) {
    let direction = if to > rs.replicas { "up" } else { "down" };
    let revision = rs.revision.unwrap_or(0);
    work.ops.push(Op::ScaleReplicaSet {
        name: rs.name.clone(),
        from: rs.replicas,
        to,
        desired_replicas_annotation: ctx.replicas,
    });
    work.event(Event::normal(
        event::SCALING_RS,
        format!(
            "Scaled {direction} ReplicaSet {} (revision {revision}) from {} to {to}",
            rs.name, rs.replicas
        ),
    ));
}

/// Old ReplicaSets get a `scale-down-deadline` and are scaled to 0 once it passes (reference 4.5, 5).
/// Returns true when no old ReplicaSet runs pods any more.
pub(crate) fn scale_down_others_after_delay(
    ctx: &Context,
    work: &mut Work,
    delay_seconds: i32,
) -> bool {
    let mut settled = true;
    for rs in &ctx.other_rs {
        if rs.replicas == 0 {
            if rs.available_replicas > 0 {
                settled = false;
            }
            continue;
        }
        settled = false;
        match rs.scale_down_deadline {
            Some(deadline) if deadline <= ctx.now => {
                if !work.scaled() {
                    scale_rs(ctx, work, rs, 0);
                }
            }
            Some(deadline) => {
                work.waiting_on_scale_down = true;
                work.wake_at(deadline);
            }
            None => {
                let deadline = ctx
                    .now
                    .saturating_add(SignedDuration::from_secs(i64::from(delay_seconds.max(0))))
                    .unwrap_or(Timestamp::MAX);
                work.ops.push(Op::SetScaleDownDeadline {
                    name: rs.name.clone(),
                    deadline: Some(deadline),
                });
                work.waiting_on_scale_down = true;
                work.wake_at(deadline);
            }
        }
    }
    settled
}

/// Points a Service at a pod-template hash once that ReplicaSet has an available pod (all of its pods,
/// when the Service is taken over for the first time). Invariant 2: never at a ReplicaSet with no
/// available pod.
pub(crate) fn point_service(ctx: &Context, work: &mut Work, service: &str, hash: &str) {
    let Some(current) = ctx.observed.services.get(service) else {
        return;
    };
    let selected = current
        .selector
        .get(crate::api::constants::POD_TEMPLATE_HASH_LABEL);
    let managed = current.managed_by_rollout.as_deref() == Some(ctx.name.as_str());
    if selected.map(String::as_str) == Some(hash) && managed {
        return;
    }
    let Some(target) = ctx.all_rs().find(|rs| rs.pod_template_hash == hash) else {
        return;
    };
    let ready = if selected.is_none() {
        target.replicas != 0 && target.available_replicas >= target.replicas
    } else {
        target.available_replicas > 0
    };
    if !ready {
        return;
    }
    work.ops.push(Op::SwitchService {
        service: service.to_string(),
        pod_template_hash: hash.to_string(),
    });
    if selected.map(String::as_str) != Some(hash) {
        work.event(Event::normal(
            event::SWITCH_SERVICE,
            format!(
                "Switched selector for service '{service}' from '{}' to '{hash}'",
                selected.map(String::as_str).unwrap_or("")
            ),
        ));
    }
}

/// `spec.restartAt` (reference 4.17): evicts pods created before it, a few at a time within
/// maxUnavailable, and records `restartedAt` once none remain.
pub(crate) fn restart_pods(ctx: &Context, work: &mut Work, max_unavailable: i32) {
    let Some(restart_at) = &ctx.rollout.spec.restart_at else {
        return;
    };
    if work.status.restarted_at.as_ref() == Some(restart_at) {
        return;
    }
    if ctx.now < restart_at.0 {
        work.wake_at(restart_at.0);
        return;
    }
    let mut stale: Vec<_> = ctx
        .observed
        .pods
        .iter()
        .filter(|pod| !pod.terminating && pod.created < restart_at.0)
        .collect();
    if stale.is_empty() {
        work.status.restarted_at = Some(restart_at.clone());
        return;
    }
    if work.scaled() {
        return;
    }
    // Stable pods first, then the new ones, then the rest, oldest first.
    let rank = |hash: &str| {
        if hash == work.status.stable_rs {
            0
        } else if hash == ctx.new_hash {
            1
        } else {
            2
        }
    };
    stale.sort_by_key(|pod| (rank(&pod.pod_template_hash), pod.created));
    let available: i32 = ctx.all_rs().map(|rs| rs.available_replicas).sum();
    let scheduled: i32 = ctx.all_rs().map(|rs| rs.replicas).sum();
    let can_restart = available - (ctx.replicas.max(scheduled) - max_unavailable.max(1));
    for pod in stale.into_iter().take(can_restart.max(0) as usize) {
        work.ops.push(Op::EvictPod {
            name: pod.name.clone(),
        });
    }
    work.wake_at(
        ctx.now
            .saturating_add(SignedDuration::from_secs(30))
            .unwrap_or(Timestamp::MAX),
    );
}

/// `revisionHistoryLimit` (reference 4.16): deletes the oldest scaled-down old ReplicaSets beyond it, and
/// their AnalysisRuns.
pub(crate) fn clean_up_history(ctx: &Context, work: &mut Work) {
    let limit = ctx.rollout.spec.revision_history_limit_or_default().max(0) as usize;
    let mut idle: Vec<&ReplicaSetState> = ctx
        .other_rs
        .iter()
        .copied()
        .filter(|rs| rs.replicas == 0 && rs.status_replicas == 0 && rs.generation_observed)
        .collect();
    if ctx.other_rs.len() <= limit {
        return;
    }
    idle.sort_by_key(|rs| (rs.created, rs.revision));
    let excess = ctx.other_rs.len() - limit;
    for rs in idle.into_iter().take(excess) {
        work.ops.push(Op::DeleteReplicaSet {
            name: rs.name.clone(),
        });
        // Its AnalysisRuns go with it, finished or not: nothing would ever collect an unfinished run of
        // a revision that no longer exists.
        for run in ctx
            .observed
            .analysis_runs
            .iter()
            .filter(|run| !run.pod_template_hash.is_empty())
            .filter(|run| run.pod_template_hash == rs.pod_template_hash)
        {
            if !deleting_run(work, &run.name) {
                work.ops.push(Op::DeleteAnalysisRun {
                    name: run.name.clone(),
                });
            }
        }
    }
}

/// True when this plan already deletes the AnalysisRun with this name.
pub(crate) fn deleting_run(work: &Work, name: &str) -> bool {
    work.ops
        .iter()
        .any(|op| matches!(op, Op::DeleteAnalysisRun { name: n } if n == name))
}
