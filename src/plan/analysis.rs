//! Which AnalysisRuns a rollout needs (reference 6.3, 6.10): the planner asks for runs to be created and
//! terminated and reacts to their phases; measuring is the analysis controller's job.

use super::context::Context;
use super::observed::AnalysisRunState;
use super::op::{AnalysisKind, NewAnalysisRun, Op};
use super::status::Work;
use crate::api::AnalysisPhase;
use crate::api::rollout::{RolloutAnalysis, RolloutAnalysisRunStatus};

/// The verdict of the run a gate waits on.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Gate {
    /// No run yet, or it is still measuring.
    Waiting,
    /// The run passed.
    Passed,
    /// The run failed or errored: abort with this message.
    Failed(String),
    /// The run was inconclusive: pause until a person decides.
    Inconclusive,
}

/// The base name of a run: `<rollout>-<hash>-<revision>[-<infix>]`.
pub(crate) fn run_name(ctx: &Context, infix: Option<&str>) -> String {
    let base = format!("{}-{}-{}", ctx.name, ctx.new_hash, ctx.revision);
    match infix {
        Some(infix) => format!("{base}-{infix}"),
        None => base,
    }
}

/// The first of `base`, `base.1`, `base.2`, ... that no observed run has (Argo's collision counter).
fn free_name(ctx: &Context, base: &str) -> String {
    let taken = |name: &str| {
        ctx.observed
            .analysis_runs
            .iter()
            .any(|run| run.name == name)
    };
    if !taken(base) {
        return base.to_string();
    }
    (1..)
        .map(|n| format!("{base}.{n}"))
        .find(|name| !taken(name))
        .unwrap_or_else(|| base.to_string())
}

/// Makes sure the run a gate needs exists and reports its verdict.
///
/// `recorded` is the run named in the rollout's status for this gate; it stays current while it belongs
/// to the same ReplicaSet, kind and step. `fresh` forces a new run (after a retry, or after a person
/// promoted past an inconclusive run).
pub(crate) fn ensure_run(
    ctx: &Context,
    work: &mut Work,
    kind: AnalysisKind,
    step_index: Option<i32>,
    analysis: &RolloutAnalysis,
    recorded: &Option<RolloutAnalysisRunStatus>,
    fresh: bool,
) -> (Option<RolloutAnalysisRunStatus>, Gate) {
    let current = recorded
        .as_ref()
        .filter(|_| !fresh)
        .filter(|run| belongs(ctx, &run.name, kind, step_index));
    if let Some(current) = current {
        let observed = find(ctx, &current.name);
        let (phase, message) = match observed {
            Some(run) => (
                run.phase.unwrap_or(AnalysisPhase::Pending),
                run.message.clone(),
            ),
            // Created by an earlier plan but not seen yet: still pending.
            None => (AnalysisPhase::Pending, String::new()),
        };
        let status = RolloutAnalysisRunStatus {
            name: current.name.clone(),
            status: phase,
            message: message.clone(),
        };
        let gate = match phase {
            AnalysisPhase::Successful => Gate::Passed,
            AnalysisPhase::Failed | AnalysisPhase::Error => Gate::Failed(message),
            AnalysisPhase::Inconclusive => Gate::Inconclusive,
            AnalysisPhase::Pending | AnalysisPhase::Running => Gate::Waiting,
        };
        return (Some(status), gate);
    }
    let infix = match kind {
        AnalysisKind::Step => step_index.map(|i| i.to_string()),
        AnalysisKind::Background => None,
        AnalysisKind::PrePromotion => Some("pre".into()),
        AnalysisKind::PostPromotion => Some("post".into()),
    };
    let name = free_name(ctx, &run_name(ctx, infix.as_deref()));
    work.ops.push(Op::CreateAnalysisRun(NewAnalysisRun {
        name: name.clone(),
        kind,
        step_index,
        pod_template_hash: ctx.new_hash.clone(),
        stable_pod_template_hash: ctx.old.stable_rs.clone(),
        revision: ctx.revision,
        analysis: analysis.clone(),
    }));
    let status = RolloutAnalysisRunStatus {
        name,
        status: AnalysisPhase::Pending,
        message: String::new(),
    };
    (Some(status), Gate::Waiting)
}

fn find<'a>(ctx: &'a Context, name: &str) -> Option<&'a AnalysisRunState> {
    ctx.observed
        .analysis_runs
        .iter()
        .find(|run| run.name == name)
}

/// A recorded run is current while it is for the desired ReplicaSet, the same kind and step. A run not
/// observed yet is taken on trust (the plan that created it recorded it).
fn belongs(ctx: &Context, name: &str, kind: AnalysisKind, step_index: Option<i32>) -> bool {
    match find(ctx, name) {
        Some(run) => {
            run.pod_template_hash == ctx.new_hash
                && run.rollout_type == kind.label()
                && (kind != AnalysisKind::Step || run.step_index == step_index)
        }
        None => name.starts_with(&run_name(ctx, None)),
    }
}

/// Terminates every unfinished run that is not one of `current`, and deletes finished runs beyond the
/// history limits (newest kept) or whose ReplicaSet is gone.
pub(crate) fn tidy_runs(ctx: &Context, work: &mut Work, current: &[&str]) {
    for run in &ctx.observed.analysis_runs {
        let finished = run.phase.is_some_and(AnalysisPhase::is_completed);
        if !current.contains(&run.name.as_str()) && !finished && !run.terminating {
            work.ops.push(Op::TerminateAnalysisRun {
                name: run.name.clone(),
            });
        }
    }
    let spec = &ctx.rollout.spec;
    let mut finished: Vec<&AnalysisRunState> = ctx
        .observed
        .analysis_runs
        .iter()
        .filter(|run| !current.contains(&run.name.as_str()))
        .filter(|run| run.phase.is_some_and(AnalysisPhase::is_completed))
        .collect();
    finished.sort_by_key(|run| std::cmp::Reverse((run.created, run.name.clone())));
    let (mut successful, mut unsuccessful) = (0, 0);
    for run in finished {
        let rs_gone = !ctx
            .all_rs()
            .any(|rs| rs.pod_template_hash == run.pod_template_hash);
        let over_limit = if run.phase == Some(AnalysisPhase::Successful) {
            successful += 1;
            successful > spec.successful_run_history_limit()
        } else {
            unsuccessful += 1;
            unsuccessful > spec.unsuccessful_run_history_limit()
        };
        let gone_or_over = (rs_gone && !run.pod_template_hash.is_empty()) || over_limit;
        if gone_or_over && !super::common::deleting_run(work, &run.name) {
            work.ops.push(Op::DeleteAnalysisRun {
                name: run.name.clone(),
            });
        }
    }
}

/// A failed or errored run aborts the rollout; an inconclusive one pauses it (reference 6.10). `kind`
/// starts Argo's abort message, e.g. `Step-based`.
pub(crate) fn react(work: &mut Work, gate: &Gate, kind: &str) {
    match gate {
        Gate::Failed(message) => {
            if !work.status.abort {
                work.status.abort = true;
                work.abort_message = Some(format!("{kind} analysis phase error/failed: {message}"));
            }
        }
        Gate::Inconclusive => super::common::add_pause(
            work,
            crate::api::constants::pause_reason::INCONCLUSIVE_ANALYSIS,
            None,
        ),
        Gate::Waiting | Gate::Passed => {}
    }
}
