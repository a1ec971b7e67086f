//! The planner: a pure function from a Rollout, what the cluster looks like and the time, to the effects
//! to perform and the status to write.
//!
//! ```text
//! plan(&Rollout, &Observed, now) -> Plan { ops, status, requeue_after }
//! ```
//! No I/O, no clock, no randomness: every decision Ramp makes is here and tested with plain data. Planning
//! again on the world that results from a plan, with nothing else changed, gives no ops and the same
//! status (the fixed point), so an idle controller writes nothing.

mod analysis;
mod bluegreen;
mod canary;
mod common;
pub mod conditions;
mod context;
pub mod hash;
pub mod observed;
pub mod op;
pub mod phase;
pub mod replicas;
mod replicaset;
mod status;

use std::time::Duration;

use jiff::Timestamp;

pub use observed::{AnalysisRunState, Observed, PodState, ReplicaSetState, ServiceState};
pub use op::{AnalysisKind, Event, NewAnalysisRun, NewReplicaSet, Op};

use crate::api::Rollout;
use crate::api::rollout::RolloutStatus;

/// What to do next for one Rollout.
#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    /// Effects to perform, in order.
    pub ops: Vec<Op>,
    /// The status to write (only when it differs from the current one).
    pub status: RolloutStatus,
    /// Plan again after this long even if nothing changes: the earliest time-based event (pause end,
    /// auto-promotion, scale-down deadline, progress deadline). `None` when nothing is pending.
    pub requeue_after: Option<Duration>,
}

/// Decides the next effects and the status of `rollout`.
pub fn plan(rollout: &Rollout, observed: &Observed, now: Timestamp) -> Plan {
    let refs = crate::api::validation::References {
        services: &observed.services,
        analysis_templates: &observed.analysis_templates,
        cluster_analysis_templates: &observed.cluster_analysis_templates,
    };
    if let Some(message) = crate::api::validation::invalid_spec_message(rollout, &refs) {
        return status::invalid_spec(rollout, message, now);
    }
    let mut plan = plan_valid(rollout, observed, now);
    create_at_first_scale(rollout, observed, now, &mut plan);
    carry_on(rollout, observed, now, plan)
}

/// The plan of a Rollout whose spec and references are valid.
fn plan_valid(rollout: &Rollout, observed: &Observed, now: Timestamp) -> Plan {
    let ctx = context::Context::new(rollout, observed, now);
    let mut work = status::Work::start(&ctx);
    if ctx.new_rs.is_none() {
        status::create_new_replica_set(&ctx, &mut work);
        // As Argo does in the sync that creates the ReplicaSet: the status already names the new
        // revision at step 0, so the next plan scales instead of spending a round trip on the reset.
        if rollout.spec.strategy.canary.is_some() {
            canary::start_release(&ctx, &mut work);
        }
    } else if rollout.spec.strategy.blue_green.is_some() {
        bluegreen::plan(&ctx, &mut work);
    } else {
        canary::plan(&ctx, &mut work);
    }
    status::finish(&ctx, work)
}

/// A plan that creates the new ReplicaSet creates it at the replicas the next plan would scale it to.
///
/// Argo creates it at 0 and scales it with a second write. Here the next plan is made on the world as
/// it will be once the create lands (the ReplicaSet at 0, no pod, the status this plan writes), and
/// when that plan's one scale is of the new ReplicaSet, the create carries it, with its
/// `ScalingReplicaSet` event: the same pods by the same replica math, in one write and without the
/// round trip to the next reconcile, which in a burst of releases waits behind every other one.
/// Anything else the next plan would do is left to it. (A canary whose first scale takes a stable pod
/// away, and any blue-green rollout, whose next plan resets the release, create at 0 as Argo does.)
fn create_at_first_scale(rollout: &Rollout, observed: &Observed, now: Timestamp, plan: &mut Plan) {
    let Some(Op::CreateReplicaSet(new)) = plan
        .ops
        .iter_mut()
        .find(|op| matches!(op, Op::CreateReplicaSet(_)))
    else {
        return;
    };
    let mut landed = rollout.clone();
    landed.status = Some(plan.status.clone());
    let mut world = observed.clone();
    let replicas = rollout.spec.replicas_or_default();
    world
        .replica_sets
        .push(ReplicaSetState::created(new, replicas, now));
    // The spec and the references are those `plan` has just validated.
    let next = plan_valid(&landed, &world, now);

    let Some(at) = next.ops.iter().position(
        |op| matches!(op, Op::ScaleReplicaSet { name, from: 0, .. } if *name == new.name),
    ) else {
        return;
    };
    let Op::ScaleReplicaSet { to, .. } = next.ops[at] else {
        return;
    };
    new.replicas = to;
    let scaled = next.ops.get(at + 1).filter(
        |op| matches!(op, Op::Event(event) if event.reason == crate::api::constants::event::SCALING_RS),
    );
    plan.ops.extend(scaled.cloned());
}

/// How many plans `carry_on` may chain. Planning on a plan's own result reaches the fixed point within
/// two or three plans; the bound only keeps a planner bug from looping.
const MAX_CHAINED_PLANS: usize = 4;

/// A plan that only writes the status is followed, in the same plan, by what that status leads to.
///
/// Some transitions are decided on the status alone: a timed pause's end moves to the next step, the
/// last step's end promotes, an abort turns the weight back. Argo writes each such status and acts on
/// it in the next sync, and in a burst of releases that sync waits behind every other one. Here the
/// next plan is made at once on the world as it will be once the status lands (the same cluster, the
/// new status); when it does more than the plan did, its ops follow the plan's events and its status
/// and wake-up replace the plan's. The ops are the ones the next reconcile would perform, in its
/// order; only the status in between is never written. A plan with ops is left as it is: what it
/// changes in the cluster is for the next reconcile to see.
fn carry_on(rollout: &Rollout, observed: &Observed, now: Timestamp, mut plan: Plan) -> Plan {
    let mut landed = rollout.clone();
    for _ in 1..MAX_CHAINED_PLANS {
        let acts = plan.ops.iter().any(|op| !matches!(op, Op::Event(_)));
        if acts || landed.status.as_ref() == Some(&plan.status) {
            break;
        }
        landed.status = Some(plan.status.clone());
        // The spec and the references are those `plan` has just validated.
        let next = plan_valid(&landed, observed, now);
        if next.ops.is_empty() && next.status == plan.status {
            break;
        }
        plan.ops.extend(next.ops);
        plan.status = next.status;
        plan.requeue_after = next.requeue_after;
    }
    plan
}
