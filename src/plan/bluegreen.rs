//! The blue-green strategy (reference section 5): the new ReplicaSet runs behind the preview Service; the
//! active Service switches to it after the optional pause and pre-promotion analysis; the old one is
//! scaled down after a delay.

use jiff::{SignedDuration, Timestamp};

use super::analysis::{Gate, ensure_run, react, tidy_runs};
use super::common;
use super::context::Context;
use super::op::{AnalysisKind, Event, Op};
use super::status::{self, Work};
use crate::api::constants::{POD_TEMPLATE_HASH_LABEL, event, pause_reason};
use crate::api::rollout::BlueGreenStrategy;

pub(crate) fn plan(ctx: &Context, work: &mut Work) {
    let Some(blue_green) = ctx.rollout.spec.strategy.blue_green.as_ref() else {
        return;
    };
    let paused = ctx.rollout.spec.paused;
    status::sync_replica_set_revision(ctx, work);
    status::sync_rollout_revision(ctx, work);
    read_back_selectors(ctx, work, blue_green);

    if !blue_green.preview_service.is_empty() && !paused {
        common::point_service(ctx, work, &blue_green.preview_service, &ctx.new_hash);
    }
    if ctx.old.current_pod_hash != ctx.new_hash {
        common::reset_for_new_revision(ctx, work, 0);
        work.status.current_step_index = None;
        tidy_runs(ctx, work, &[]);
        return;
    }

    let promoted = ctx.fully_promoted(&work.status.stable_rs);
    common::settle_abort_and_full_promotion(work, promoted, 0);
    let retried = ctx.old.aborted_at.is_some() && !work.status.abort;
    let active = work.status.blue_green.active_selector.clone();
    let first_deploy = active.is_empty();
    let fast_track = first_deploy || work.status.promote_full || active == ctx.new_hash;

    let new_rs = ctx.new_rs;
    let new_desired = new_rs_size(ctx, work, blue_green);
    let ready_for_pause =
        new_rs.is_some_and(|rs| rs.replicas == new_desired && rs.available_replicas >= new_desired);
    let saturated = new_rs
        .is_some_and(|rs| rs.replicas == ctx.replicas && rs.available_replicas >= ctx.replicas);

    let (pre_gate, post_gate) = run_analysis(
        ctx,
        work,
        blue_green,
        promoted,
        retried,
        &active,
        ready_for_pause,
    );
    common::abort_if_deadline_passed(ctx, work, promoted);
    common::apply_abort(ctx, work, promoted, 0);
    let aborted = work.status.abort;

    // Pause before the switch (reference 5, reconcileBlueGreenPause).
    let pre_passed = blue_green.pre_promotion_analysis.is_none() || pre_gate == Some(Gate::Passed);
    let needs_pause = !blue_green.auto_promotion_enabled_or_default()
        || blue_green.auto_promotion_seconds.unwrap_or(0) > 0;
    let mut pause_completed = !needs_pause;
    if !aborted && !paused && ready_for_pause && !fast_track && needs_pause && pre_passed {
        let user_resumed = work.status.controller_pause
            && !common::has_pause(work, pause_reason::BLUE_GREEN_PAUSE);
        if user_resumed || work.status.blue_green.scale_up_preview_check_point {
            pause_completed = true;
        } else if !common::has_pause(work, pause_reason::BLUE_GREEN_PAUSE) {
            common::add_pause(work, pause_reason::BLUE_GREEN_PAUSE, Some(ctx.now));
            work.event(Event::status_normal(
                event::PAUSED,
                format!("Rollout is paused ({})", pause_reason::BLUE_GREEN_PAUSE),
            ));
        }
        if let Some(start) = common::pause_start(work, pause_reason::BLUE_GREEN_PAUSE) {
            let seconds = blue_green.auto_promotion_seconds.unwrap_or(0);
            if blue_green.auto_promotion_enabled_or_default() && seconds > 0 {
                let at = add_seconds(start, i64::from(seconds));
                if ctx.now >= at {
                    pause_completed = true;
                    work.status
                        .pause_conditions
                        .retain(|p| p.reason != pause_reason::BLUE_GREEN_PAUSE);
                } else {
                    work.wake_at(at);
                }
            }
        }
    }
    if pause_completed && common::has_pause(work, pause_reason::BLUE_GREEN_PAUSE) {
        pause_completed = false;
    }

    // Scale: the desired ReplicaSet to its size, the stable one stays at full size.
    if !paused && !common::has_pause(work, pause_reason::INCONCLUSIVE_ANALYSIS) {
        scale(ctx, work, blue_green, new_desired, aborted, &active);
    }

    // The active Service.
    if !paused {
        let target = if aborted {
            (!work.status.stable_rs.is_empty()).then(|| work.status.stable_rs.clone())
        } else if saturated && (fast_track || (pause_completed && pre_passed)) {
            Some(ctx.new_hash.clone())
        } else {
            None
        };
        if let Some(target) = target {
            common::point_service(ctx, work, &blue_green.active_service, &target);
        }
    }

    // scaleUpPreviewCheckPoint: the preview may grow to full size once the pause is over.
    if blue_green.preview_replica_count.is_some() && !aborted {
        let at_preview_size = new_rs
            .is_some_and(|rs| Some(rs.available_replicas) == blue_green.preview_replica_count);
        if !fast_track && pre_passed && pause_completed && at_preview_size {
            work.status.blue_green.scale_up_preview_check_point = true;
        }
    }

    common::restart_pods(ctx, work, max_unavailable(ctx, blue_green));
    common::clean_up_history(ctx, work);
    if work.status.controller_pause && work.status.pause_conditions.is_empty() {
        work.status.controller_pause = false;
    }

    // Promotion.
    if !aborted && !promoted && active == ctx.new_hash && saturated {
        let reason = if work.status.stable_rs.is_empty() {
            Some("Initial deploy")
        } else if work.status.promote_full {
            Some("Full promotion requested")
        } else if blue_green.post_promotion_analysis.is_some() && post_gate != Some(Gate::Passed) {
            None
        } else {
            Some("Completed blue-green update")
        };
        if let Some(reason) = reason {
            common::promote_stable(ctx, work, 0, reason);
            work.status.blue_green.scale_up_preview_check_point = false;
        }
    }

    work.waiting_on_gate = paused
        || !work.status.pause_conditions.is_empty()
        || pre_gate == Some(Gate::Waiting)
        || post_gate == Some(Gate::Waiting);
    work.status.current_pod_hash = ctx.new_hash.clone();
    work.status.current_step_hash = String::new();
    work.status.current_step_index = None;
}

fn add_seconds(at: Timestamp, seconds: i64) -> Timestamp {
    at.saturating_add(SignedDuration::from_secs(seconds))
        .unwrap_or(Timestamp::MAX)
}

fn max_unavailable(ctx: &Context, blue_green: &BlueGreenStrategy) -> i32 {
    super::replicas::resolve_max_unavailable(&blue_green.max_unavailable_or_default(), ctx.replicas)
        .unwrap_or(0)
}

/// The Services' selectors are the truth about what each serves (reference 5, "Status").
fn read_back_selectors(ctx: &Context, work: &mut Work, blue_green: &BlueGreenStrategy) {
    let hash_of = |service: &str| {
        ctx.observed
            .services
            .get(service)
            .and_then(|s| s.selector.get(POD_TEMPLATE_HASH_LABEL).cloned())
            .unwrap_or_default()
    };
    work.status.blue_green.active_selector = hash_of(&blue_green.active_service);
    if !blue_green.preview_service.is_empty() {
        work.status.blue_green.preview_selector = hash_of(&blue_green.preview_service);
    }
}

/// `NewRSNewReplicas`: previewReplicaCount until the preview may scale up, then the full count.
fn new_rs_size(ctx: &Context, work: &Work, blue_green: &BlueGreenStrategy) -> i32 {
    let status = &work.status;
    let full_size = status.promote_full
        || (status.blue_green.scale_up_preview_check_point && !ctx.rollout.spec.paused)
        || status.blue_green.active_selector == ctx.new_hash
        || status.blue_green.active_selector.is_empty();
    match blue_green.preview_replica_count {
        Some(preview) if !full_size => preview.clamp(0, ctx.replicas),
        _ => ctx.replicas,
    }
}

/// One scale change: the desired ReplicaSet, then the stable one back to full size, then old ones after
/// their delay. An aborted desired ReplicaSet stays up for `abortScaleDownDelaySeconds` (0: for ever).
fn scale(
    ctx: &Context,
    work: &mut Work,
    blue_green: &BlueGreenStrategy,
    new_desired: i32,
    aborted: bool,
    active: &str,
) {
    if let Some(new_rs) = ctx.new_rs {
        let target = if aborted && ctx.stable_distinct().is_some() {
            aborted_size(ctx, work, blue_green, new_rs.replicas)
        } else {
            new_desired
        };
        if new_rs.replicas != target {
            common::scale_rs(ctx, work, new_rs, target);
            return;
        }
    }
    if let Some(stable) = ctx.stable_distinct()
        && stable.replicas != ctx.replicas
    {
        common::scale_rs(ctx, work, stable, ctx.replicas);
        return;
    }
    // Old ReplicaSets, except one a Service still selects.
    let post_running = blue_green.post_promotion_analysis.is_some()
        && blue_green.scale_down_delay_seconds.is_none()
        && work
            .status
            .blue_green
            .post_promotion_analysis_run_status
            .is_some()
        && !ctx.fully_promoted(&work.status.stable_rs);
    if post_running {
        return;
    }
    let delay = blue_green.scale_down_delay_seconds_or_default();
    let limit = blue_green.scale_down_delay_revision_limit;
    let mut waiting = 0;
    for rs in &ctx.other_rs {
        if rs.replicas == 0
            || rs.pod_template_hash == active
            || rs.pod_template_hash == work.status.blue_green.preview_selector
        {
            continue;
        }
        match rs.scale_down_deadline {
            Some(deadline) if deadline > ctx.now && limit.is_none_or(|l| waiting < l) => {
                waiting += 1;
                work.waiting_on_scale_down = true;
                work.wake_at(deadline);
            }
            Some(_) => {
                if !work.scaled() {
                    common::scale_rs(ctx, work, rs, 0);
                }
            }
            None => {
                let deadline = add_seconds(ctx.now, i64::from(delay.max(0)));
                work.ops.push(Op::SetScaleDownDeadline {
                    name: rs.name.clone(),
                    deadline: Some(deadline),
                });
                waiting += 1;
                work.waiting_on_scale_down = true;
                work.wake_at(deadline);
            }
        }
    }
}

fn aborted_size(
    ctx: &Context,
    work: &mut Work,
    blue_green: &BlueGreenStrategy,
    current: i32,
) -> i32 {
    let delay = blue_green.abort_scale_down_delay_seconds_or_default();
    let Some(new_rs) = ctx.new_rs else { return 0 };
    if delay == 0 {
        return current;
    }
    match new_rs.scale_down_deadline {
        Some(deadline) if deadline <= ctx.now => 0,
        Some(deadline) => {
            work.wake_at(deadline);
            current
        }
        None => {
            let stable_available = ctx.stable_distinct().map_or(0, |rs| rs.available_replicas);
            if stable_available >= ctx.replicas && current > 0 {
                let deadline = add_seconds(ctx.now, i64::from(delay));
                work.ops.push(Op::SetScaleDownDeadline {
                    name: new_rs.name.clone(),
                    deadline: Some(deadline),
                });
                work.wake_at(deadline);
            }
            current
        }
    }
}

/// Pre- and post-promotion analysis (reference 5, 6.10).
fn run_analysis(
    ctx: &Context,
    work: &mut Work,
    blue_green: &BlueGreenStrategy,
    promoted: bool,
    retried: bool,
    active: &str,
    ready: bool,
) -> (Option<Gate>, Option<Gate>) {
    let releasing = !promoted && ctx.stable_distinct().is_some();
    if !releasing || work.status.abort || work.status.promote_full {
        if !releasing || work.status.promote_full {
            work.status.blue_green.pre_promotion_analysis_run_status = None;
            work.status.blue_green.post_promotion_analysis_run_status = None;
        }
        tidy_runs(ctx, work, &[]);
        return (None, None);
    }
    let user_resumed = work.status.controller_pause && work.status.pause_conditions.is_empty();
    let mut current = Vec::new();
    let mut pre_gate = None;
    let mut post_gate = None;
    if let Some(pre) = &blue_green.pre_promotion_analysis {
        if ready && !active.is_empty() && active != ctx.new_hash {
            let recorded = work
                .status
                .blue_green
                .pre_promotion_analysis_run_status
                .clone();
            let (run, gate) = promotion_gate(
                ctx,
                work,
                AnalysisKind::PrePromotion,
                pre,
                recorded,
                retried || user_resumed,
            );
            current.extend(run.as_ref().map(|r| r.name.clone()));
            work.status.blue_green.pre_promotion_analysis_run_status = run;
            react(work, &gate, "Blue/green pre-promotion");
            pre_gate = Some(gate);
        } else if active == ctx.new_hash {
            if let Some(run) = &work.status.blue_green.pre_promotion_analysis_run_status {
                current.push(run.name.clone());
            }
            pre_gate = Some(Gate::Passed);
        } else {
            pre_gate = Some(Gate::Waiting);
        }
    }
    if let Some(post) = &blue_green.post_promotion_analysis
        && active == ctx.new_hash
    {
        let recorded = work
            .status
            .blue_green
            .post_promotion_analysis_run_status
            .clone();
        let (run, gate) = promotion_gate(
            ctx,
            work,
            AnalysisKind::PostPromotion,
            post,
            recorded,
            retried || user_resumed,
        );
        current.extend(run.as_ref().map(|r| r.name.clone()));
        work.status.blue_green.post_promotion_analysis_run_status = run;
        react(work, &gate, "Blue/green post-promotion");
        post_gate = Some(gate);
    }
    let current: Vec<&str> = current.iter().map(String::as_str).collect();
    tidy_runs(ctx, work, &current);
    (pre_gate, post_gate)
}

/// The run a pre- or post-promotion gate waits on. `restart` (a retry, or a person promoting) asks for a
/// new run when the recorded one was inconclusive or after a retry.
fn promotion_gate(
    ctx: &Context,
    work: &mut Work,
    kind: AnalysisKind,
    analysis: &crate::api::rollout::RolloutAnalysis,
    recorded: Option<crate::api::rollout::RolloutAnalysisRunStatus>,
    restart: bool,
) -> (Option<crate::api::rollout::RolloutAnalysisRunStatus>, Gate) {
    let retried = ctx.old.aborted_at.is_some() && !work.status.abort;
    let inconclusive = recorded
        .as_ref()
        .is_some_and(|r| r.status == crate::api::AnalysisPhase::Inconclusive);
    let fresh = retried || (restart && inconclusive);
    ensure_run(ctx, work, kind, None, analysis, &recorded, fresh)
}
