//! The status a plan writes: fields carried from the old status (the ones users and the controller set
//! as inputs), counts recomputed from the ReplicaSets, conditions (reference 2.3) and phase (2.4).

use std::time::Duration;

use jiff::{SignedDuration, Timestamp};

use super::Plan;
use super::conditions::{self, Truth};
use super::context::Context;
use super::op::{Event, Op};
use super::phase::rollout_phase;
use super::replicaset::new_replica_set;
use crate::api::Rollout;
use crate::api::constants::{condition, default, event, reason};
use crate::api::rollout::{BlueGreenStatus, CanaryStatus, RolloutStatus};

/// A plan being built.
pub(crate) struct Work {
    pub ops: Vec<Op>,
    /// The status being built: starts from the fields that carry over, and is completed by `finish`.
    pub status: RolloutStatus,
    /// The earliest time something time-based happens.
    pub wake_at: Option<Timestamp>,
    /// The desired ReplicaSet is created by this plan.
    pub new_rs_created: bool,
    /// Why the rollout is aborted by this plan (analysis failure, progress deadline).
    pub abort_message: Option<String>,
    /// The current step waits on something a person or an analysis controls (pause, analysis): the
    /// progress deadline does not apply.
    pub waiting_on_gate: bool,
    /// Old ReplicaSets wait for their scale-down deadline: the progress deadline does not apply.
    pub waiting_on_scale_down: bool,
    now: Timestamp,
}

impl Work {
    pub fn start(ctx: &Context) -> Self {
        let old = &ctx.old;
        let mut conditions = old.conditions.clone();
        conditions::remove(&mut conditions, condition::INVALID_SPEC);
        let status = RolloutStatus {
            abort: old.abort,
            pause_conditions: old.pause_conditions.clone(),
            controller_pause: old.controller_pause,
            aborted_at: old.aborted_at.clone(),
            current_pod_hash: old.current_pod_hash.clone(),
            current_step_hash: old.current_step_hash.clone(),
            current_step_index: old.current_step_index,
            collision_count: old.collision_count,
            conditions,
            canary: CanaryStatus {
                current_step_analysis_run_status: old
                    .canary
                    .current_step_analysis_run_status
                    .clone(),
                current_background_analysis_run_status: old
                    .canary
                    .current_background_analysis_run_status
                    .clone(),
                current_experiment: old.canary.current_experiment.clone(),
                weights: old.canary.weights.clone(),
                stable_ping_pong: old.canary.stable_ping_pong.clone(),
                step_plugin_statuses: old.canary.step_plugin_statuses.clone(),
            },
            blue_green: BlueGreenStatus {
                scale_up_preview_check_point: old.blue_green.scale_up_preview_check_point,
                pre_promotion_analysis_run_status: old
                    .blue_green
                    .pre_promotion_analysis_run_status
                    .clone(),
                post_promotion_analysis_run_status: old
                    .blue_green
                    .post_promotion_analysis_run_status
                    .clone(),
                ..Default::default()
            },
            stable_rs: old.stable_rs.clone(),
            restarted_at: old.restarted_at.clone(),
            promote_full: old.promote_full,
            workload_observed_generation: old.workload_observed_generation.clone(),
            alb: old.alb.clone(),
            albs: old.albs.clone(),
            ..Default::default()
        };
        Work {
            ops: Vec::new(),
            status,
            wake_at: None,
            new_rs_created: false,
            abort_message: None,
            waiting_on_gate: false,
            waiting_on_scale_down: false,
            now: ctx.now,
        }
    }

    /// Plan again no later than `at`.
    pub fn wake_at(&mut self, at: Timestamp) {
        self.wake_at = Some(self.wake_at.map_or(at, |current| current.min(at)));
    }

    /// The time of this plan.
    pub fn now(&self) -> Timestamp {
        self.now
    }

    /// Record an event.
    pub fn event(&mut self, op: Op) {
        self.ops.push(op);
    }

    /// True when the plan already changes a ReplicaSet's replicas (one scale change per plan).
    pub fn scaled(&self) -> bool {
        self.ops
            .iter()
            .any(|op| matches!(op, Op::ScaleReplicaSet { .. }))
    }
}

/// A Rollout whose spec is invalid: only the InvalidSpec condition and the phase change; nothing is
/// created or scaled, and it is looked at again in 20 s.
pub(crate) fn invalid_spec(rollout: &Rollout, message: String, now: Timestamp) -> Plan {
    let mut status = rollout.status.clone().unwrap_or_default();
    conditions::set(
        &mut status.conditions,
        condition::INVALID_SPEC,
        Truth::True,
        reason::INVALID_SPEC,
        &message,
        now,
        false,
    );
    let (phase, message) = rollout_phase(&rollout.spec, &status);
    status.phase = phase.to_string();
    status.message = message;
    Plan {
        ops: Vec::new(),
        status,
        requeue_after: Some(Duration::from_secs(
            default::INVALID_SPEC_REQUEUE_SECONDS.unsigned_abs(),
        )),
    }
}

/// The desired ReplicaSet does not exist: create it at 0 replicas and record the new revision. Nothing
/// is scaled here; `plan` may create it at its first scale instead (`create_at_first_scale`).
pub(crate) fn create_new_replica_set(ctx: &Context, work: &mut Work) {
    let replica_set = new_replica_set(ctx);
    let name = replica_set.name.clone();
    work.ops.push(Op::CreateReplicaSet(Box::new(replica_set)));
    sync_rollout_revision(ctx, work);
    work.event(Event::normal(
        event::NEW_RS_CREATED,
        format!("Created ReplicaSet {name} (revision {})", ctx.revision),
    ));
    work.event(Event::normal(
        event::NOT_COMPLETED,
        format!(
            "Rollout not completed, started update to revision {} ({})",
            ctx.revision, ctx.new_hash
        ),
    ));
    work.new_rs_created = true;
}

/// Records the rollout's revision annotation when it changed (event `RolloutUpdated`).
pub(crate) fn sync_rollout_revision(ctx: &Context, work: &mut Work) {
    let current = ctx
        .rollout
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(crate::api::constants::REVISION_ANNOTATION))
        .and_then(|v| v.parse::<i64>().ok());
    if current != Some(ctx.revision) {
        work.ops.push(Op::SetRolloutRevision {
            revision: ctx.revision,
        });
        work.event(Event::normal(
            event::ROLLOUT_UPDATED,
            format!("Rollout updated to revision {}", ctx.revision),
        ));
    }
}

/// An old ReplicaSet became the desired one again (a rollback): it takes the next revision and keeps its
/// old one in the revision history.
pub(crate) fn sync_replica_set_revision(ctx: &Context, work: &mut Work) {
    let Some(new_rs) = ctx.new_rs else { return };
    if new_rs.revision == Some(ctx.revision) {
        return;
    }
    let history = match (new_rs.revision, &new_rs.revision_history) {
        (Some(old), Some(history)) if !history.is_empty() => Some(format!("{history},{old}")),
        (Some(old), _) => Some(old.to_string()),
        (None, history) => history.clone(),
    };
    work.ops.push(Op::SetReplicaSetRevision {
        name: new_rs.name.clone(),
        revision: ctx.revision,
        revision_history: history,
    });
}

/// Completes the status (counts, conditions, phase) and turns the wake-up time into `requeue_after`.
pub(crate) fn finish(ctx: &Context, mut work: Work) -> Plan {
    let spec = &ctx.rollout.spec;
    let blue_green = spec.strategy.blue_green.is_some();
    work.status.observed_generation = ctx.generation.to_string();
    count_replicas(ctx, &mut work.status, blue_green);

    progressing_condition(ctx, &mut work);
    other_conditions(ctx, &mut work.status, blue_green);

    let (phase, message) = rollout_phase(spec, &work.status);
    work.status.phase = phase.to_string();
    work.status.message = message;

    let requeue_after = work.wake_at.map(|at| {
        let wait = at.duration_since(ctx.now);
        if wait <= SignedDuration::ZERO {
            Duration::ZERO
        } else {
            wait.unsigned_abs()
        }
    });
    Plan {
        ops: work.ops,
        status: work.status,
        requeue_after,
    }
}

fn count_replicas(ctx: &Context, status: &mut RolloutStatus, blue_green: bool) {
    let all: Vec<_> = ctx.all_rs().collect();
    status.replicas = all.iter().map(|rs| rs.status_replicas).sum();
    status.updated_replicas = ctx.new_rs.map_or(0, |rs| rs.status_replicas);
    status.ready_replicas = all.iter().map(|rs| rs.ready_replicas).sum();
    status.available_replicas = all.iter().map(|rs| rs.available_replicas).sum();
    status.hpa_replicas = status.replicas;
    status.selector = format_selector(ctx);
    if blue_green {
        let active = &status.blue_green.active_selector;
        let active_rs = all.iter().find(|rs| &rs.pod_template_hash == active);
        if let Some(active_rs) = active_rs {
            status.ready_replicas = active_rs.ready_replicas;
            status.available_replicas = active_rs.available_replicas;
            status.hpa_replicas = active_rs.status_replicas;
            status.selector = format!(
                "{},{}={}",
                status.selector,
                crate::api::constants::POD_TEMPLATE_HASH_LABEL,
                active_rs.pod_template_hash
            )
            .trim_start_matches(',')
            .to_string();
        }
    }
}

/// `metav1.FormatLabelSelector` of the rollout's selector: `k=v` pairs, then expressions.
fn format_selector(ctx: &Context) -> String {
    let Some(selector) = &ctx.rollout.spec.selector else {
        return String::new();
    };
    let mut parts: Vec<String> = selector
        .match_labels
        .iter()
        .flatten()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    for requirement in selector.match_expressions.iter().flatten() {
        let values = requirement.values.clone().unwrap_or_default().join(",");
        parts.push(match requirement.operator.as_str() {
            "In" => format!("{} in ({values})", requirement.key),
            "NotIn" => format!("{} notin ({values})", requirement.key),
            "Exists" => requirement.key.clone(),
            "DoesNotExist" => format!("!{}", requirement.key),
            other => format!("{} {other} ({values})", requirement.key),
        });
    }
    parts.join(",")
}

/// RolloutHealthy (reference 2.3).
pub(crate) fn is_healthy(ctx: &Context, status: &RolloutStatus) -> bool {
    let replicas = ctx.replicas;
    let generation_observed = ctx.old.observed_generation == ctx.generation.to_string();
    if status.updated_replicas != replicas
        || status.available_replicas != replicas
        || !generation_observed
    {
        return false;
    }
    let spec = &ctx.rollout.spec;
    if let Some(blue_green) = &spec.strategy.blue_green {
        let current = &status.current_pod_hash;
        return status.blue_green.active_selector == *current
            && (blue_green.preview_service.is_empty()
                || status.blue_green.preview_selector == *current);
    }
    let steps = spec.canary_steps().len() as i32;
    (steps == 0 || status.current_step_index == Some(steps))
        && status.stable_rs == status.current_pod_hash
        && status.replicas == replicas
}

/// Progress since the last status (reference 2.3 "Progress detected").
fn progress_made(ctx: &Context, new: &RolloutStatus) -> bool {
    let old = &ctx.old;
    new.updated_replicas != old.updated_replicas
        || (new.replicas - new.updated_replicas) < (old.replicas - old.updated_replicas)
        || new.ready_replicas > old.ready_replicas
        || new.available_replicas > old.available_replicas
        || new.stable_rs != old.stable_rs
        || new.current_step_index != old.current_step_index
        || new.current_step_hash != old.current_step_hash
        || new.blue_green.active_selector != old.blue_green.active_selector
        || new.blue_green.preview_selector != old.blue_green.preview_selector
}

fn progressing_condition(ctx: &Context, work: &mut Work) {
    let now = ctx.now;
    let rs_name = ctx.new_rs_name();
    let paused = ctx.rollout.spec.paused || !work.status.pause_conditions.is_empty();
    let old_reason = conditions::progressing_reason(&ctx.old.conditions).map(str::to_string);
    let status = &mut work.status;
    let set = |status: &mut RolloutStatus, truth, reason: &str, message: &str, refresh| {
        conditions::set(
            &mut status.conditions,
            condition::PROGRESSING,
            truth,
            reason,
            message,
            now,
            refresh,
        )
    };

    if work.new_rs_created {
        let message = format!("Created new replica set \"{rs_name}\"");
        set(status, Truth::True, reason::NEW_RS_CREATED, &message, false);
        return;
    }
    if status.abort {
        let mut message = format!("Rollout aborted update to revision {}", ctx.revision);
        if let Some(why) = &work.abort_message {
            message = format!("{message}: {why}");
        }
        if ctx.old.aborted_at.is_none() {
            work.ops
                .push(Event::status_warning(event::ABORTED, message.clone()));
        }
        set(
            status,
            Truth::False,
            reason::ROLLOUT_ABORTED,
            &message,
            false,
        );
        return;
    }
    if paused {
        set(
            status,
            Truth::Unknown,
            reason::ROLLOUT_PAUSED,
            "Rollout is paused",
            false,
        );
        return;
    }
    match old_reason.as_deref() {
        Some(reason::ROLLOUT_ABORTED) => {
            let message = "Retrying Rollout after abort";
            set(
                status,
                Truth::Unknown,
                reason::ROLLOUT_RETRY,
                message,
                false,
            );
            return;
        }
        Some(reason::ROLLOUT_PAUSED) => {
            set(
                status,
                Truth::Unknown,
                reason::ROLLOUT_RESUMED,
                "Rollout is resumed",
                false,
            );
            return;
        }
        _ => {}
    }
    let completed = !status.stable_rs.is_empty()
        && status.stable_rs == status.current_pod_hash
        && is_healthy(ctx, status);
    if completed {
        let message = format!("ReplicaSet \"{rs_name}\" has successfully progressed.");
        set(
            status,
            Truth::True,
            reason::NEW_RS_AVAILABLE,
            &message,
            false,
        );
        return;
    }
    if progress_made(ctx, status) || old_reason.is_none() {
        let message = format!("ReplicaSet \"{rs_name}\" is progressing.");
        set(status, Truth::True, reason::RS_UPDATED, &message, true);
        return;
    }
    // No progress: enforce the deadline unless a gate a person can see holds the rollout.
    if work.waiting_on_gate || work.waiting_on_scale_down {
        return;
    }
    let deadline = i64::from(
        ctx.rollout
            .spec
            .progress_deadline_seconds_or_default()
            .max(0),
    );
    let Some(progressing) = conditions::find(&status.conditions, condition::PROGRESSING) else {
        return;
    };
    let timed_out_already = progressing.reason == reason::PROGRESS_DEADLINE_EXCEEDED;
    let expires = progressing
        .last_update_time
        .0
        .saturating_add(SignedDuration::from_secs(deadline))
        .unwrap_or(Timestamp::MAX);
    if timed_out_already || expires < now {
        let message = format!("ReplicaSet \"{rs_name}\" has timed out progressing.");
        set(
            status,
            Truth::False,
            reason::PROGRESS_DEADLINE_EXCEEDED,
            &message,
            false,
        );
    } else {
        let check_at = expires
            .saturating_add(SignedDuration::from_secs(1))
            .unwrap_or(Timestamp::MAX);
        work.wake_at(check_at);
    }
}

fn other_conditions(ctx: &Context, status: &mut RolloutStatus, blue_green: bool) {
    let now = ctx.now;
    let available = if blue_green {
        active_saturated(ctx, status)
    } else {
        status.available_replicas >= ctx.replicas
    };
    let message = if available {
        "Rollout has minimum availability"
    } else {
        "Rollout does not have minimum availability"
    };
    conditions::set(
        &mut status.conditions,
        condition::AVAILABLE,
        Truth::of(available),
        reason::AVAILABLE,
        message,
        now,
        false,
    );

    let paused = ctx.rollout.spec.paused || !status.pause_conditions.is_empty();
    if paused || conditions::find(&status.conditions, condition::PAUSED).is_some() {
        conditions::set(
            &mut status.conditions,
            condition::PAUSED,
            Truth::of(paused),
            reason::ROLLOUT_PAUSED,
            "Rollout is paused",
            now,
            false,
        );
    }

    let healthy = !paused && is_healthy(ctx, status);
    if healthy || conditions::find(&status.conditions, condition::HEALTHY).is_some() {
        let message = if healthy {
            "Rollout is healthy"
        } else {
            "Rollout is not healthy"
        };
        conditions::set(
            &mut status.conditions,
            condition::HEALTHY,
            Truth::of(healthy),
            reason::ROLLOUT_HEALTHY,
            message,
            now,
            false,
        );
    }

    let completed = !status.stable_rs.is_empty() && status.stable_rs == status.current_pod_hash;
    conditions::set(
        &mut status.conditions,
        condition::COMPLETED,
        Truth::of(completed),
        reason::ROLLOUT_COMPLETED,
        reason::ROLLOUT_COMPLETED,
        now,
        false,
    );

    let failure = ctx
        .new_rs
        .and_then(|rs| rs.replica_failure.clone())
        .or_else(|| ctx.all_rs().find_map(|rs| rs.replica_failure.clone()));
    match failure {
        Some(message) => conditions::set(
            &mut status.conditions,
            condition::REPLICA_FAILURE,
            Truth::True,
            "FailedCreate",
            &message,
            now,
            false,
        ),
        None => conditions::remove(&mut status.conditions, condition::REPLICA_FAILURE),
    }
}

/// Blue-green availability: the active ReplicaSet runs the full count, all available.
pub(crate) fn active_saturated(ctx: &Context, status: &RolloutStatus) -> bool {
    ctx.all_rs()
        .find(|rs| rs.pod_template_hash == status.blue_green.active_selector)
        .is_some_and(|rs| {
            rs.replicas == ctx.replicas
                && rs.desired_replicas_annotation == Some(ctx.replicas)
                && rs.available_replicas == ctx.replicas
        })
}
