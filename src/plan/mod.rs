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
