//! The canary strategy (reference 4.2-4.15): the step machine, replica scaling within maxSurge and
//! maxUnavailable, Service selectors, traffic weight, analysis gates, abort and promotion.

use jiff::{SignedDuration, Timestamp};

use super::analysis::{Gate, ensure_run, react, tidy_runs};
use super::common;
use super::context::Context;
use super::op::{AnalysisKind, Event, Op};
use super::replicas::{self, BasicCanaryInput, CanaryScale, RsReplicas, TrafficRoutedInput};
use super::status::{self, Work};
use crate::api::constants::{event, pause_reason};
use crate::api::duration::pause_duration_seconds;
use crate::api::rollout::{CanaryStep, CanaryStrategy, TrafficWeights, WeightDestination};

/// A new pod template or new steps start the release over at step 0 (reference 4.13): true when this
/// plan did that, and so does nothing else.
pub(crate) fn start_release(ctx: &Context, work: &mut Work) -> bool {
    if ctx.old.current_pod_hash == ctx.new_hash && ctx.old.current_step_hash == ctx.step_hash {
        return false;
    }
    let step_count = ctx.rollout.spec.canary_steps().len() as i32;
    common::reset_for_new_revision(ctx, work, step_count);
    tidy_runs(ctx, work, &[]);
    true
}

pub(crate) fn plan(ctx: &Context, work: &mut Work) {
    let Some(canary) = ctx.rollout.spec.strategy.canary.as_ref() else {
        return;
    };
    let steps = ctx.rollout.spec.canary_steps();
    let step_count = steps.len() as i32;
    status::sync_replica_set_revision(ctx, work);
    status::sync_rollout_revision(ctx, work);

    if start_release(ctx, work) {
        return;
    }

    let stable_hash = work.status.stable_rs.clone();
    let promoted = ctx.fully_promoted(&stable_hash);
    let initial = ctx.stable_distinct().is_none() && !promoted;
    common::settle_abort_and_full_promotion(work, promoted, step_count);
    let retried = ctx.old.aborted_at.is_some() && !work.status.abort;

    let index = work
        .status
        .current_step_index
        .map(|i| i.clamp(0, step_count));
    work.status.current_step_index = index;
    let current_step = index.and_then(|i| steps.get(i as usize));

    let step_gate = run_analysis(
        ctx,
        work,
        canary,
        current_step,
        index,
        promoted || initial,
        retried,
    );
    common::abort_if_deadline_passed(ctx, work, promoted);
    common::apply_abort(ctx, work, promoted, step_count);

    let aborted = work.status.abort;
    let halted =
        ctx.rollout.spec.paused || common::has_pause(work, pause_reason::INCONCLUSIVE_ANALYSIS);
    if !aborted && !ctx.rollout.spec.paused && !initial {
        add_pause_for_step(ctx, work, current_step);
    }

    let weight = desired_weight(work, canary, steps, promoted || initial);
    let settled = if halted {
        true
    } else {
        scale(ctx, work, canary, steps, weight, promoted || initial)
    };
    switch_services(ctx, work, canary, promoted, weight);
    let weight_applied = set_traffic_weight(ctx, work, canary, steps, weight, settled);
    common::restart_pods(ctx, work, canary_max_unavailable(ctx, canary));
    common::clean_up_history(ctx, work);

    let mut step_done = false;
    if initial {
        // With no stable ReplicaSet the rollout is promoted at once, before any step is looked at
        // (reference 4.8: `shouldFullPromote` comes first and says "Initial deploy").
        common::promote_stable(ctx, work, step_count, "Initial deploy");
        step_done = true;
    } else if !aborted
        && !ctx.rollout.spec.paused
        && !work.scaled()
        && let (Some(i), Some(step)) = (index, current_step)
    {
        let complete = match step_kind(step) {
            StepKind::SetWeight | StepKind::SetCanaryScale => settled && weight_applied,
            StepKind::Pause => pause_complete(ctx, work, step),
            StepKind::Analysis => step_gate == Some(Gate::Passed),
            StepKind::Unsupported => false,
        };
        if complete {
            complete_step(work, i, step, step_count);
            step_done = true;
            // Argo enters a pause step in the sync after the one that reached it. Nothing outside the
            // status decides it, so it is entered here, in the same write: one status write and one
            // reconcile fewer per pause, before every pause of a release.
            add_pause_for_step(ctx, work, steps.get(i as usize + 1));
        }
    }
    if work.status.controller_pause && work.status.pause_conditions.is_empty() {
        work.status.controller_pause = false;
    }
    if !step_done {
        promote_if_ready(ctx, work, step_count);
    }
    mark_gates(ctx, work, current_step, step_gate.as_ref());
    work.status.current_pod_hash = ctx.new_hash.clone();
    work.status.current_step_hash = ctx.step_hash.clone();
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum StepKind {
    SetWeight,
    Pause,
    SetCanaryScale,
    Analysis,
    Unsupported,
}

fn step_kind(step: &CanaryStep) -> StepKind {
    if step.set_weight.is_some() {
        StepKind::SetWeight
    } else if step.pause.is_some() {
        StepKind::Pause
    } else if step.set_canary_scale.is_some() {
        StepKind::SetCanaryScale
    } else if step.analysis.is_some() {
        StepKind::Analysis
    } else {
        StepKind::Unsupported
    }
}

/// How a step is named in `RolloutStepCompleted` events.
fn describe(step: &CanaryStep) -> String {
    if let Some(weight) = step.set_weight {
        return format!("setWeight: {weight}");
    }
    if let Some(pause) = &step.pause {
        return match &pause.duration {
            Some(duration) => match pause_duration_seconds(duration) {
                Some(seconds) => format!("pause: {seconds}s"),
                None => "pause".into(),
            },
            None => "pause".into(),
        };
    }
    if let Some(scale) = &step.set_canary_scale {
        if let Some(weight) = scale.weight {
            return format!("setCanaryScale{{weight: {weight}}}");
        }
        if let Some(replicas) = scale.replicas {
            return format!("setCanaryScale{{replicas: {replicas}}}");
        }
        return "setCanaryScale{matchTrafficWeight: true}".into();
    }
    if step.analysis.is_some() {
        return "analysis".into();
    }
    "step".into()
}

/// Step and background analysis (reference 6.3, 6.10). Returns the step run's verdict, if any.
fn run_analysis(
    ctx: &Context,
    work: &mut Work,
    canary: &CanaryStrategy,
    current_step: Option<&CanaryStep>,
    index: Option<i32>,
    nothing_to_release: bool,
    retried: bool,
) -> Option<Gate> {
    let active = !nothing_to_release && !work.status.abort && !work.status.promote_full;
    if !active {
        if nothing_to_release || work.status.promote_full {
            work.status.canary.current_step_analysis_run_status = None;
            work.status.canary.current_background_analysis_run_status = None;
        }
        tidy_runs(ctx, work, &[]);
        return None;
    }
    let user_resumed = work.status.controller_pause && work.status.pause_conditions.is_empty();
    let mut current: Vec<String> = Vec::new();
    let mut step_gate = None;

    match current_step.and_then(|step| step.analysis.as_ref()) {
        Some(analysis) if work.status.pause_conditions.is_empty() => {
            let recorded = work.status.canary.current_step_analysis_run_status.clone();
            let promoted_past_inconclusive = user_resumed
                && recorded
                    .as_ref()
                    .is_some_and(|r| r.status == crate::api::AnalysisPhase::Inconclusive);
            let (run, gate) = ensure_run(
                ctx,
                work,
                AnalysisKind::Step,
                index,
                analysis,
                &recorded,
                retried || promoted_past_inconclusive,
            );
            if let Some(run) = &run {
                current.push(run.name.clone());
            }
            work.status.canary.current_step_analysis_run_status = run;
            react(work, &gate, "Step-based");
            step_gate = Some(gate);
        }
        Some(_) => {
            // Paused on an inconclusive run: keep it until a person decides.
            if let Some(run) = &work.status.canary.current_step_analysis_run_status {
                current.push(run.name.clone());
            }
        }
        None => work.status.canary.current_step_analysis_run_status = None,
    }

    let background = canary
        .analysis
        .as_ref()
        .filter(|bg| !bg.analysis.templates.is_empty());
    let started = background.is_some_and(|bg| index.unwrap_or(0) >= bg.starting_step.unwrap_or(0));
    match background.filter(|_| started) {
        Some(bg) => {
            let recorded = work
                .status
                .canary
                .current_background_analysis_run_status
                .clone();
            let promoted_past_inconclusive = user_resumed
                && !common::has_pause(work, pause_reason::CANARY_PAUSE_STEP)
                && recorded
                    .as_ref()
                    .is_some_and(|r| r.status == crate::api::AnalysisPhase::Inconclusive);
            let (run, gate) = ensure_run(
                ctx,
                work,
                AnalysisKind::Background,
                None,
                &bg.analysis,
                &recorded,
                retried || promoted_past_inconclusive,
            );
            if let Some(run) = &run {
                current.push(run.name.clone());
            }
            work.status.canary.current_background_analysis_run_status = run;
            react(work, &gate, "Background");
        }
        None => work.status.canary.current_background_analysis_run_status = None,
    }
    let current: Vec<&str> = current.iter().map(String::as_str).collect();
    tidy_runs(ctx, work, &current);
    step_gate
}

/// At a pause step, pause (once) and schedule the wake-up of a timed pause (reference 4.7).
fn add_pause_for_step(ctx: &Context, work: &mut Work, step: Option<&CanaryStep>) {
    let Some(pause) = step.and_then(|s| s.pause.as_ref()) else {
        return;
    };
    let has_condition = common::has_pause(work, pause_reason::CANARY_PAUSE_STEP);
    if !has_condition && !work.status.controller_pause {
        common::add_pause(work, pause_reason::CANARY_PAUSE_STEP, Some(ctx.now));
        work.event(Event::status_normal(
            event::PAUSED,
            format!("Rollout is paused ({})", pause_reason::CANARY_PAUSE_STEP),
        ));
    }
    if let (Some(duration), Some(start)) = (
        pause.duration.as_ref().and_then(pause_duration_seconds),
        common::pause_start(work, pause_reason::CANARY_PAUSE_STEP),
    ) {
        work.wake_at(add_seconds(start, duration));
    }
}

fn add_seconds(at: Timestamp, seconds: i64) -> Timestamp {
    at.saturating_add(SignedDuration::from_secs(seconds))
        .unwrap_or(Timestamp::MAX)
}

/// A pause completes when a person resumed it or its duration passed.
fn pause_complete(ctx: &Context, work: &Work, step: &CanaryStep) -> bool {
    let has_condition = common::has_pause(work, pause_reason::CANARY_PAUSE_STEP);
    if work.status.controller_pause && !has_condition {
        return true;
    }
    let duration = step
        .pause
        .as_ref()
        .and_then(|p| p.duration.as_ref())
        .and_then(pause_duration_seconds);
    match (
        duration,
        common::pause_start(work, pause_reason::CANARY_PAUSE_STEP),
    ) {
        (Some(seconds), Some(start)) => ctx.now >= add_seconds(start, seconds),
        _ => false,
    }
}

fn complete_step(work: &mut Work, index: i32, step: &CanaryStep, step_count: i32) {
    let was_pause = step.pause.is_some();
    work.status.current_step_index = Some(index + 1);
    work.status.canary.current_step_analysis_run_status = None;
    work.status
        .pause_conditions
        .retain(|p| p.reason != pause_reason::CANARY_PAUSE_STEP);
    if work.status.pause_conditions.is_empty() {
        work.status.controller_pause = false;
    }
    work.event(Event::status_normal(
        event::STEP_COMPLETED,
        format!(
            "Rollout step {}/{} completed ({})",
            index + 1,
            step_count,
            describe(step)
        ),
    ));
    if was_pause {
        work.event(Event::status_normal(event::RESUMED, "Rollout is resumed"));
    }
}

/// `shouldFullPromote` and `promoteStable` (reference 4.8).
fn promote_if_ready(ctx: &Context, work: &mut Work, step_count: i32) {
    if work.status.abort || ctx.fully_promoted(&work.status.stable_rs) {
        return;
    }
    let Some(new_rs) = ctx.new_rs else { return };
    if new_rs.available_replicas < ctx.replicas || new_rs.replicas != ctx.replicas {
        return;
    }
    let reason = if work.status.promote_full {
        "Full promotion requested".to_string()
    } else if step_count == 0 || work.status.current_step_index == Some(step_count) {
        format!("Completed all {step_count} canary steps")
    } else {
        return;
    };
    common::promote_stable(ctx, work, step_count, &reason);
}

/// The weight in effect (reference 4.3): 0 when aborted, 100 when all steps are done or nothing is being
/// released, else the nearest setWeight at or before the current step.
fn desired_weight(
    work: &Work,
    canary: &CanaryStrategy,
    steps: &[CanaryStep],
    nothing_to_release: bool,
) -> i32 {
    let max = canary.max_traffic_weight();
    if work.status.abort {
        return 0;
    }
    if nothing_to_release || work.status.promote_full {
        return max;
    }
    current_set_weight(steps, work.status.current_step_index, max)
}

fn current_set_weight(steps: &[CanaryStep], index: Option<i32>, max: i32) -> i32 {
    let index = index.unwrap_or(0).max(0) as usize;
    if index >= steps.len() {
        return max;
    }
    steps[..=index]
        .iter()
        .rev()
        .find_map(|s| s.set_weight)
        .unwrap_or(0)
        .clamp(0, max)
}

/// The setCanaryScale in effect, if any (traffic routing only; reference 4.3).
fn canary_scale(
    steps: &[CanaryStep],
    index: Option<i32>,
    aborted: bool,
    abort_delay: i32,
) -> Option<CanaryScale> {
    if aborted && abort_delay != 0 {
        return None;
    }
    let index = (index.unwrap_or(0).max(0) as usize).min(steps.len().saturating_sub(1));
    let scale = steps
        .get(..=index)?
        .iter()
        .rev()
        .find_map(|s| s.set_canary_scale.as_ref())?;
    if scale.match_traffic_weight {
        return None;
    }
    scale
        .replicas
        .map(CanaryScale::Replicas)
        .or(scale.weight.map(CanaryScale::Weight))
}

fn canary_max_unavailable(ctx: &Context, canary: &CanaryStrategy) -> i32 {
    replicas::resolve_fenceposts(
        &canary.max_surge_or_default(),
        &canary.max_unavailable_or_default(),
        ctx.replicas,
    )
    .map(|(_, unavailable)| unavailable)
    .unwrap_or(0)
}

/// Scales at most one ReplicaSet (stable first, then new, then the others). Returns true when every
/// ReplicaSet is already where this weight wants it and the canary's pods are available.
fn scale(
    ctx: &Context,
    work: &mut Work,
    canary: &CanaryStrategy,
    steps: &[CanaryStep],
    weight: i32,
    nothing_to_release: bool,
) -> bool {
    let replicas = ctx.replicas;
    let Ok((surge, unavailable)) = replicas::resolve_fenceposts(
        &canary.max_surge_or_default(),
        &canary.max_unavailable_or_default(),
        replicas,
    ) else {
        return false;
    };
    let new_rs = ctx.new_rs;
    let stable_rs = if nothing_to_release {
        None
    } else {
        ctx.stable_distinct()
    };
    let others: Vec<RsReplicas> = ctx.other_rs.iter().map(|rs| rs.counts()).collect();
    let routed = canary.traffic_routing.is_some();

    let (new_target, stable_target) = if routed && stable_rs.is_some() {
        let weights = work
            .status
            .canary
            .weights
            .as_ref()
            .map(|w| (w.canary.weight, w.stable.weight));
        replicas::traffic_routed_counts(&TrafficRoutedInput {
            replicas,
            max_weight: canary.max_traffic_weight(),
            desired_weight: weight,
            canary_scale: canary_scale(
                steps,
                work.status.current_step_index,
                work.status.abort,
                canary.abort_scale_down_delay_seconds_or_default(),
            ),
            min_pods_per_rs: canary.min_pods_per_replica_set,
            dynamic_stable_scale: canary.dynamic_stable_scale,
            aborted: work.status.abort,
            current_weights: weights,
        })
    } else {
        replicas::basic_canary_counts(&BasicCanaryInput {
            replicas,
            weight,
            max_weight: canary.max_traffic_weight(),
            surge,
            unavailable,
            new_rs: new_rs.map(|rs| rs.counts()),
            stable_rs: stable_rs.map(|rs| rs.counts()),
            other_rs: &others,
        })
    };

    let mut new_target = new_target;
    if routed && work.status.abort && stable_rs.is_some() {
        new_target = hold_aborted_canary(ctx, work, canary, new_target);
    }

    if let Some(stable) = stable_rs
        && stable.replicas != stable_target
    {
        // A ReplicaSet the stable Service selects is not drained while maxSurge leaves room for the
        // new ReplicaSet to run every replica beside it: the new one grows first, the Service is
        // handed over (`switch_services`), then the stable drains. Without that room, Argo's order.
        let others_total: i32 = ctx.other_rs.iter().map(|rs| rs.replicas).sum();
        if stable_target == 0
            && !routed
            && selects(ctx, &canary.stable_service, &stable.pod_template_hash)
            && stable.replicas + others_total <= surge
            && let Some(new_rs) = new_rs
        {
            if new_rs.replicas < replicas {
                common::scale_rs(ctx, work, new_rs, replicas);
            }
            return false;
        }
        common::scale_rs(ctx, work, stable, stable_target);
        return false;
    }
    if let Some(new_rs) = new_rs
        && new_rs.replicas != new_target
    {
        common::scale_rs(ctx, work, new_rs, new_target);
        return false;
    }
    let others_settled = if routed {
        common::scale_down_others_after_delay(
            ctx,
            work,
            canary.scale_down_delay_seconds_or_default(),
        )
    } else {
        let total_available: i32 = ctx.all_rs().map(|rs| rs.available_replicas).sum();
        let targets = replicas::scale_down_other_rs_for_canary(
            replicas,
            unavailable,
            total_available,
            &others,
        );
        let mut settled = true;
        for (rs, target) in ctx.other_rs.iter().zip(targets) {
            if rs.replicas != target {
                common::scale_rs(ctx, work, rs, target);
                return false;
            }
            if rs.available_replicas > 0 || rs.replicas > 0 {
                settled = false;
            }
        }
        settled
    };
    let new_ready = new_rs.is_none_or(|rs| rs.available_replicas >= rs.replicas);
    let stable_ready = stable_rs.is_none_or(|rs| rs.status_replicas == rs.replicas);
    others_settled && new_ready && stable_ready
}

/// With traffic routing, an aborted canary keeps its pods for `abortScaleDownDelaySeconds` (0: for ever)
/// once the stable is fully available, then goes to its target.
fn hold_aborted_canary(
    ctx: &Context,
    work: &mut Work,
    canary: &CanaryStrategy,
    target: i32,
) -> i32 {
    let Some(new_rs) = ctx.new_rs else {
        return target;
    };
    if new_rs.replicas <= target {
        return target;
    }
    let delay = canary.abort_scale_down_delay_seconds_or_default();
    if delay == 0 {
        return new_rs.replicas;
    }
    match new_rs.scale_down_deadline {
        Some(deadline) if deadline <= ctx.now => target,
        Some(deadline) => {
            work.wake_at(deadline);
            new_rs.replicas
        }
        None => {
            let stable_available = ctx.stable_distinct().map_or(0, |rs| rs.available_replicas);
            if stable_available >= ctx.replicas {
                let deadline = add_seconds(ctx.now, i64::from(delay));
                work.ops.push(Op::SetScaleDownDeadline {
                    name: new_rs.name.clone(),
                    deadline: Some(deadline),
                });
                work.wake_at(deadline);
            }
            new_rs.replicas
        }
    }
}

/// Points the stable Service at the stable pods and the canary Service at the canary pods (at the stable
/// ones after an abort), never at a ReplicaSet with no available pod (reference 3.5).
fn switch_services(
    ctx: &Context,
    work: &mut Work,
    canary: &CanaryStrategy,
    promoted: bool,
    weight: i32,
) {
    let stable_hash = work.status.stable_rs.clone();
    if !canary.stable_service.is_empty() && !stable_hash.is_empty() {
        let target = if hand_stable_service_over(ctx, work, canary, weight) {
            ctx.new_hash.clone()
        } else {
            stable_hash.clone()
        };
        common::point_service(ctx, work, &canary.stable_service, &target);
    }
    if !canary.canary_service.is_empty() {
        let target = if (work.status.abort || promoted) && !stable_hash.is_empty() {
            stable_hash
        } else {
            ctx.new_hash.clone()
        };
        common::point_service(ctx, work, &canary.canary_service, &target);
    }
}

/// A basic canary at full weight drains the stable ReplicaSet before promotion (reference 4.4). Argo
/// switches the stable Service only at promotion, so for a moment it selects no pod. Ramp hands the
/// Service to the new ReplicaSet as soon as that one runs every replica, and drains the stable after.
fn hand_stable_service_over(
    ctx: &Context,
    work: &Work,
    canary: &CanaryStrategy,
    weight: i32,
) -> bool {
    canary.traffic_routing.is_none()
        && !work.status.abort
        && weight >= canary.max_traffic_weight()
        && ctx.stable_distinct().is_some()
        && ctx
            .new_rs
            .is_some_and(|rs| rs.available_replicas >= ctx.replicas)
}

/// True when the Service exists and selects this pod-template hash.
fn selects(ctx: &Context, service: &str, hash: &str) -> bool {
    !service.is_empty()
        && ctx
            .observed
            .services
            .get(service)
            .and_then(|svc| {
                svc.selector
                    .get(crate::api::constants::POD_TEMPLATE_HASH_LABEL)
            })
            .is_some_and(|selected| selected == hash)
}

/// With traffic routing, moves the canary weight (reference 4.19). Returns true when the router carries
/// the weight the current step wants (always true without a router).
fn set_traffic_weight(
    ctx: &Context,
    work: &mut Work,
    canary: &CanaryStrategy,
    steps: &[CanaryStep],
    weight: i32,
    settled: bool,
) -> bool {
    if canary.traffic_routing.is_none() {
        return true;
    }
    let max = canary.max_traffic_weight();
    let promoted = ctx.fully_promoted(&work.status.stable_rs);
    let new_available = ctx.new_rs.map_or(0, |rs| rs.available_replicas);
    let desired = if promoted || work.status.abort || new_available == 0 {
        0
    } else if !settled {
        // Not at the step's replica counts yet: keep the previous step's weight.
        let previous = work.status.current_step_index.map(|i| i - 1);
        match previous {
            Some(i) if i >= 0 => current_set_weight(steps, Some(i), max),
            _ => 0,
        }
    } else {
        weight
    };
    let applied = ctx.observed.traffic_weight.or(work
        .status
        .canary
        .weights
        .as_ref()
        .map(|w| w.canary.weight));
    if applied == Some(desired) {
        return desired == weight || promoted;
    }
    // Only move weight to the stable when it has the pods to carry it.
    let stable_available = ctx.stable_distinct().map_or(0, |rs| rs.available_replicas);
    let needed =
        ((i64::from(max - desired) * i64::from(ctx.replicas)) / i64::from(max.max(1))) as i32;
    if ctx.stable_distinct().is_some() && stable_available < needed {
        return false;
    }
    let stable_hash = if work.status.stable_rs.is_empty() {
        ctx.new_hash.clone()
    } else {
        work.status.stable_rs.clone()
    };
    work.ops.push(Op::SetTrafficWeight {
        canary_weight: desired,
        canary_hash: ctx.new_hash.clone(),
        stable_hash: stable_hash.clone(),
    });
    let message = match applied {
        Some(from) => format!("Traffic weight updated from {from} to {desired}"),
        None => format!("Traffic weight updated to {desired}"),
    };
    work.event(Event::normal(event::TRAFFIC_WEIGHT_UPDATED, message));
    work.status.canary.weights = Some(TrafficWeights {
        canary: WeightDestination {
            weight: desired,
            service_name: canary.canary_service.clone(),
            pod_template_hash: ctx.new_hash.clone(),
        },
        stable: WeightDestination {
            weight: max - desired,
            service_name: canary.stable_service.clone(),
            pod_template_hash: stable_hash,
        },
        additional: Vec::new(),
        verified: None,
    });
    false
}

/// Marks the progress deadline as not applying while a pause or an analysis holds the rollout.
fn mark_gates(ctx: &Context, work: &mut Work, step: Option<&CanaryStep>, gate: Option<&Gate>) {
    let at_gate = step.is_some_and(|s| s.pause.is_some() || s.analysis.is_some())
        && work.status.current_step_index == ctx.old.current_step_index;
    work.waiting_on_gate = at_gate
        || gate.is_some_and(|g| *g == Gate::Waiting)
        || !work.status.pause_conditions.is_empty()
        || ctx.rollout.spec.paused;
}
