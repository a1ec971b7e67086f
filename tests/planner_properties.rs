//! Property tests of the planner's safety invariants (DESIGN section 4), its fixed point and its
//! liveness, on a small simulated world (`sim::World`) driven by random user actions interleaved with
//! random time advances.

mod support;

use jiff::SignedDuration;
use proptest::prelude::*;
use ramp::api::rollout::RolloutStatus;
use ramp::api::{AnalysisPhase, Rollout};
use ramp::plan::replicas::resolve_fenceposts;
use ramp::plan::{Op, Plan};
use ramp::sim::World;
use support::*;

/// A canary step as the generator picks it.
#[derive(Clone, Debug)]
enum StepSpec {
    SetWeight(i32),
    /// Indefinite.
    Pause,
    /// Seconds.
    TimedPause(i32),
    Analysis,
}

impl StepSpec {
    fn yaml(&self) -> String {
        match self {
            StepSpec::SetWeight(w) => format!("{{setWeight: {w}}}"),
            StepSpec::Pause => "{pause: {}}".into(),
            StepSpec::TimedPause(s) => format!("{{pause: {{duration: {s}s}}}}"),
            StepSpec::Analysis => "{analysis: {templates: [{templateName: success-rate}]}}".into(),
        }
    }
}

/// What a person does between plans.
#[derive(Clone, Debug)]
enum Action {
    /// `kubectl ramp promote` (reference 7).
    Promote,
    /// `kubectl ramp promote --full`.
    PromoteFull,
    /// `kubectl ramp abort`.
    Abort,
    /// `kubectl ramp retry rollout`.
    Retry,
    /// A new pod template: one of a few images, so going back to an earlier one happens.
    SetImage(usize),
    /// Flip `spec.paused`.
    TogglePaused,
    /// `kubectl scale`.
    Scale(i32),
    /// Pods of ReplicaSets scaled up from now on take this long to become ready.
    ReadyDelay(i64),
    /// How the next AnalysisRuns end.
    AnalysisOutcome(AnalysisPhase),
    /// Time passes (milliseconds).
    Wait(i64),
}

const IMAGES: [&str; 4] = ["demo:v0", "demo:v1", "demo:v2", "demo:v3"];

/// The rollout under test: a basic canary (no traffic routing) with canary and stable Services.
#[derive(Clone, Debug)]
struct Setup {
    replicas: i32,
    max_surge: &'static str,
    max_unavailable: &'static str,
    steps: Vec<StepSpec>,
    /// `progressDeadlineSeconds` and `progressDeadlineAbort`, when set.
    deadline: Option<(i32, bool)>,
}

impl Setup {
    fn rollout(&self) -> Rollout {
        let steps: Vec<String> = self.steps.iter().map(StepSpec::yaml).collect();
        let deadline = match self.deadline {
            Some((seconds, abort)) => {
                format!("progressDeadlineSeconds: {seconds}\n  progressDeadlineAbort: {abort}")
            }
            None => String::new(),
        };
        rollout(&format!(
            r#"
apiVersion: argoproj.io/v1alpha1
kind: Rollout
metadata: {{name: demo}}
spec:
  replicas: {replicas}
  {deadline}
  selector: {{matchLabels: {{app: demo}}}}
  template:
    metadata: {{labels: {{app: demo}}}}
    spec: {{containers: [{{name: app, image: "{image}"}}]}}
  strategy:
    canary:
      canaryService: demo-canary
      stableService: demo-stable
      maxSurge: {surge}
      maxUnavailable: {unavailable}
      steps: [{steps}]
"#,
            replicas = self.replicas,
            image = IMAGES[0],
            surge = self.max_surge,
            unavailable = self.max_unavailable,
            steps = steps.join(", "),
        ))
    }
}

fn step_spec() -> impl Strategy<Value = StepSpec> {
    prop_oneof![
        4 => (0..=20i32).prop_map(|w| StepSpec::SetWeight(w * 5)),
        2 => Just(StepSpec::Pause),
        2 => (1..=3i32).prop_map(StepSpec::TimedPause),
        1 => Just(StepSpec::Analysis),
    ]
}

fn setup() -> impl Strategy<Value = Setup> {
    let fenceposts = prop_oneof![
        Just(("\"25%\"", "\"25%\"")),
        Just(("1", "0")),
        Just(("0", "1")),
        Just(("2", "2")),
        Just(("\"50%\"", "\"0%\"")),
        Just(("0", "\"34%\"")),
    ];
    let deadline = prop_oneof![
        2 => Just(None),
        1 => (prop_oneof![Just(6), Just(12)], any::<bool>()).prop_map(Some),
    ];
    (
        1..=8i32,
        fenceposts,
        proptest::collection::vec(step_spec(), 0..=6),
        deadline,
    )
        .prop_map(
            |(replicas, (max_surge, max_unavailable), steps, deadline)| Setup {
                replicas,
                max_surge,
                max_unavailable,
                steps,
                deadline,
            },
        )
}

fn action() -> impl Strategy<Value = Action> {
    prop_oneof![
        3 => Just(Action::Promote),
        1 => Just(Action::PromoteFull),
        1 => Just(Action::Abort),
        1 => Just(Action::Retry),
        2 => (0..IMAGES.len()).prop_map(Action::SetImage),
        1 => Just(Action::TogglePaused),
        1 => (1..=8i32).prop_map(Action::Scale),
        1 => (0..=8_000i64).prop_map(Action::ReadyDelay),
        1 => prop_oneof![
            3 => Just(AnalysisPhase::Successful),
            1 => Just(AnalysisPhase::Failed),
            1 => Just(AnalysisPhase::Inconclusive),
        ]
        .prop_map(Action::AnalysisOutcome),
        10 => (0..=3_000i64).prop_map(Action::Wait),
    ]
}

/// `kubectl ramp promote` as the plugin does it (reference 7): unpause the spec; resume a step analysis
/// that was inconclusive past its step; else clear the pause conditions; else skip the current step.
fn promote(world: &mut World) {
    let steps = world.rollout.spec.canary_steps().len() as i32;
    if world.rollout.spec.paused {
        world.update_spec(|spec| spec.paused = false);
    }
    world.update_status(|s| {
        let index = s.current_step_index.unwrap_or(0);
        let inconclusive_step = s
            .canary
            .current_step_analysis_run_status
            .as_ref()
            .is_some_and(|r| r.status == AnalysisPhase::Inconclusive);
        if inconclusive_step && !s.pause_conditions.is_empty() && s.controller_pause {
            s.pause_conditions.clear();
            s.controller_pause = false;
            s.current_step_index = Some((index + 1).min(steps));
        } else if !s.pause_conditions.is_empty() {
            s.pause_conditions.clear();
        } else if steps > 0 {
            s.current_step_index = Some((index + 1).min(steps));
        }
    });
}

fn perform(world: &mut World, action: &Action) {
    match action {
        Action::Promote => promote(world),
        Action::PromoteFull => {
            if world.rollout.spec.paused {
                world.update_spec(|spec| spec.paused = false);
            }
            world.update_status(|s| {
                if s.current_pod_hash != s.stable_rs {
                    s.promote_full = true;
                }
            });
        }
        Action::Abort => world.update_status(|s| s.abort = true),
        Action::Retry => world.update_status(|s| s.abort = false),
        Action::SetImage(i) => world.set_image(IMAGES[*i]),
        Action::TogglePaused => world.update_spec(|spec| spec.paused = !spec.paused),
        Action::Scale(n) => world.update_spec(|spec| spec.replicas = Some(*n)),
        Action::ReadyDelay(ms) => world.pod_ready_delay = SignedDuration::from_millis(*ms),
        Action::AnalysisOutcome(phase) => world.analysis_outcome = *phase,
        Action::Wait(ms) => world.advance(SignedDuration::from_millis(*ms)),
    }
}

fn spec_total(world: &World) -> i32 {
    world
        .observed
        .replica_sets
        .iter()
        .map(|rs| rs.replicas)
        .sum()
}

fn available_total(world: &World) -> i32 {
    world
        .observed
        .replica_sets
        .iter()
        .map(|rs| rs.available_replicas)
        .sum()
}

fn spec_of(world: &World, hash: &str) -> Option<i32> {
    rs(world, hash).map(|rs| rs.replicas)
}

/// `(R + maxSurge, R − maxUnavailable)` for the rollout as it is now.
fn bounds(world: &World) -> (i32, i32) {
    let spec = &world.rollout.spec;
    let canary = spec.strategy.canary.as_ref().expect("canary");
    let replicas = spec.replicas_or_default();
    let (surge, unavailable) = resolve_fenceposts(
        &canary.max_surge_or_default(),
        &canary.max_unavailable_or_default(),
        replicas,
    )
    .expect("valid fenceposts");
    (replicas + surge, replicas - unavailable)
}

/// What the checks remember between plans.
#[derive(Default)]
struct Track {
    /// `spec.replicas` of the last Healthy status, as long as it has not changed since.
    healthy_at_replicas: Option<i32>,
}

/// Plans once on `world` and checks every per-plan invariant against the world before and after.
fn plan_and_check(world: &mut World, track: &mut Track) -> Result<Plan, TestCaseError> {
    let before_world = world.clone();
    let before = status(world);
    let plan = world.reconcile();
    let after = status(world);
    assert_valid(world);
    let (max_total, min_available) = bounds(world);
    let replicas = world.rollout.spec.replicas_or_default();
    if track.healthy_at_replicas != Some(replicas) {
        track.healthy_at_replicas = None;
    }

    // (1) maxSurge: a plan that scales anything up keeps the ReplicaSets' specs within R + maxSurge.
    let scales_up = plan
        .ops
        .iter()
        .any(|op| matches!(op, Op::ScaleReplicaSet { from, to, .. } if to > from));
    if scales_up {
        prop_assert!(
            spec_total(world) <= max_total,
            "scaled up to {} pods, more than {max_total}: {:?}",
            spec_total(world),
            plan.ops
        );
    }
    // (1) maxUnavailable: pods only become ready over time here, so a plan never takes the available
    // pods below R − maxUnavailable (or below what there was, when it was already lower).
    let (available_before, available_after) =
        (available_total(&before_world), available_total(world));
    prop_assert!(
        available_after >= available_before.min(min_available),
        "available went from {available_before} to {available_after} (minimum {min_available}): {:?}",
        plan.ops
    );
    // (1) as DESIGN states it, with its precondition: once the rollout has been Healthy and while
    // spec.replicas has not changed since, the specs never exceed R + maxSurge and the available pods
    // never drop below R − maxUnavailable.
    if track.healthy_at_replicas == Some(replicas) {
        prop_assert!(
            spec_total(world) <= max_total,
            "{} > {max_total}",
            spec_total(world)
        );
        prop_assert!(
            available_total(world) >= min_available,
            "{} < {min_available}",
            available_total(world)
        );
    }
    if after.phase == "Healthy" {
        track.healthy_at_replicas = Some(replicas);
    }

    // (2) A Service is never pointed at a ReplicaSet without an available pod.
    for (service, hash) in switches(&plan) {
        let available = rs(&before_world, &hash).map_or(0, |rs| rs.available_replicas);
        prop_assert!(
            available > 0,
            "{service} switched to {hash} with no available pod"
        );
    }

    // (4) While aborted, the canary only shrinks and the stable only grows, up to R. Precondition: the
    // specs were within R + maxSurge before the plan. (A person who scales the rollout down can leave
    // more pods than that; the reference's `adjustReplicaWithinLimits` then cuts the stable too.)
    let same_revision = before.current_pod_hash == after.current_pod_hash;
    let within_surge = spec_total(&before_world) <= max_total;
    if before.abort
        && after.abort
        && within_surge
        && same_revision
        && after.current_pod_hash != after.stable_rs
    {
        let canary = &after.current_pod_hash;
        prop_assert!(
            spec_of(world, canary) <= spec_of(&before_world, canary),
            "aborted canary scaled up: {:?}",
            plan.ops
        );
        let stable_before = spec_of(&before_world, &after.stable_rs).map(|n| n.min(replicas));
        prop_assert!(
            spec_of(world, &after.stable_rs) >= stable_before,
            "aborted stable scaled down: {:?}",
            plan.ops
        );
    }

    // (6) The step index only moves forward, except on a new revision, an abort or a retry.
    let new_revision = !same_revision || before.current_step_hash != after.current_step_hash;
    let retried = before.aborted_at.is_some() && !before.abort;
    let backwards = match (before.current_step_index, after.current_step_index) {
        (Some(old), Some(new)) => new < old,
        (Some(_), None) => true,
        _ => false,
    };
    if backwards {
        prop_assert!(
            new_revision || after.abort || retried,
            "step index went from {:?} to {:?}",
            before.current_step_index,
            after.current_step_index
        );
    }

    check_fixed_point(world)?;
    Ok(plan)
}

/// Fixed point (DESIGN 3): with nothing else changing and the clock stopped, planning again on the
/// resulting world converges to a plan with no ops at all (no events either) and an unchanged status,
/// and that plan does not ask to be run again at once. It takes a few plans, not one, because a plan
/// changes at most one ReplicaSet and completes at most one step (reference 10.4); the bound is a few
/// plans per step and per ReplicaSet.
fn check_fixed_point(world: &World) -> Result<(), TestCaseError> {
    let mut still = world.clone();
    let bound =
        12 + 4 * (still.rollout.spec.canary_steps().len() + still.observed.replica_sets.len());
    for _ in 0..bound {
        let before: Option<RolloutStatus> = still.rollout.status.clone();
        let plan = still.reconcile();
        if plan.ops.is_empty() && Some(&plan.status) == before.as_ref() {
            prop_assert_ne!(
                plan.requeue_after,
                Some(std::time::Duration::ZERO),
                "a fixed point that asks to be planned again at once"
            );
            // Planning is pure: the same inputs give the same plan.
            let again = still.reconcile();
            prop_assert_eq!(again, plan);
            return Ok(());
        }
    }
    Err(TestCaseError::fail(format!(
        "no fixed point within {bound} plans at a stopped clock: {:#?}",
        still.rollout.status
    )))
}

/// After the person stops acting: retry an abort, unpause, promote every indefinite pause, let pods
/// become ready and analyses pass. The rollout must end Healthy on its current pod template with the
/// old ReplicaSets at 0, within a bounded number of plans.
fn check_liveness(world: &mut World, track: &mut Track) -> Result<(), TestCaseError> {
    world.analysis_outcome = AnalysisPhase::Successful;
    world.pod_ready_delay = world.pod_ready_delay.min(SignedDuration::from_secs(2));
    // Pods started before this point may still take up to 8 s: a short progress deadline may
    // legitimately expire once more, and with progressDeadlineAbort the person retries.
    let deadline_aborts = world.rollout.spec.progress_deadline_abort;
    // `spec.paused` halts all scaling, an abort's included (reference 4.12), so unpause first.
    if world.rollout.spec.paused {
        world.update_spec(|spec| spec.paused = false);
    }
    let was_aborted = status(world).abort;
    if was_aborted {
        // (4) First, with nobody acting, the abort completes: canary at 0 and stable back at R.
        let mut done = false;
        for _ in 0..200 {
            plan_and_check(world, track)?;
            let s = status(world);
            if !s.abort {
                done = true; // a promoted rollout drops its abort
                break;
            }
            let replicas = world.rollout.spec.replicas_or_default();
            let stable = rs(world, &s.stable_rs);
            if spec_of(world, &s.current_pod_hash) == Some(0)
                && stable
                    .is_some_and(|rs| rs.replicas == replicas && rs.available_replicas == replicas)
            {
                done = true;
                break;
            }
            world.advance(SignedDuration::from_millis(500));
        }
        prop_assert!(
            done,
            "the abort never completed: {:#?}",
            world.rollout.status
        );
        world.update_status(|s| s.abort = false);
    }
    for _ in 0..600 {
        let s = status(world);
        let indefinite = s
            .pause_conditions
            .iter()
            .any(|p| p.reason != "CanaryPauseStep")
            || (!s.pause_conditions.is_empty() && !at_timed_pause(world, &s));
        if indefinite {
            promote(world);
        }
        if s.abort && deadline_aborts {
            world.update_status(|s| s.abort = false);
        }
        plan_and_check(world, track)?;
        let s = status(world);
        let old_at_zero = world
            .observed
            .replica_sets
            .iter()
            .filter(|rs| rs.pod_template_hash != s.current_pod_hash)
            .all(|rs| rs.replicas == 0 && rs.available_replicas == 0);
        if s.phase == "Healthy" && s.stable_rs == s.current_pod_hash && old_at_zero {
            let replicas = world.rollout.spec.replicas_or_default();
            prop_assert_eq!(
                rs(world, &s.current_pod_hash).map(|rs| rs.replicas),
                Some(replicas)
            );
            return Ok(());
        }
        world.advance(SignedDuration::from_millis(500));
    }
    Err(TestCaseError::fail(format!(
        "not Healthy after the person stopped acting: {:#?}\n{:#?}",
        world.rollout.status, world.observed.replica_sets
    )))
}

fn at_timed_pause(world: &World, status: &RolloutStatus) -> bool {
    let steps = world.rollout.spec.canary_steps();
    status
        .current_step_index
        .and_then(|i| steps.get(i as usize))
        .and_then(|step| step.pause.as_ref())
        .is_some_and(|pause| pause.duration.is_some())
}

fn new_world(setup: &Setup) -> World {
    let mut world = World::new(setup.rollout(), t0());
    world
        .observed
        .analysis_templates
        .insert("success-rate".into(), success_rate_template());
    world.analysis_duration = SignedDuration::from_secs(2);
    world
}

fn run_case(setup: &Setup, actions: &[Action]) -> Result<(), TestCaseError> {
    let mut world = new_world(setup);
    let mut track = Track::default();
    for action in actions {
        perform(&mut world, action);
        plan_and_check(&mut world, &mut track)?;
    }
    check_liveness(&mut world, &mut track)
}

proptest! {
    #![proptest_config(ProptestConfig {
        // PROPTEST_CASES=5000 for a longer search.
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|n| n.parse().ok()).unwrap_or(300),
        // Failures found are kept below as plain tests instead.
        failure_persistence: None,
        max_shrink_iters: 2_000,
        ..ProptestConfig::default()
    })]

    /// Random people, random clocks: the invariants hold after every plan, every plan converges to a
    /// fixed point, and the rollout ends Healthy once people stop.
    #[test]
    fn basic_canary_invariants_hold_under_random_actions(
        setup in setup(),
        actions in proptest::collection::vec(action(), 1..60),
    ) {
        run_case(&setup, &actions)?;
    }
}

// Scenarios the property found or that pin its corners, kept as plain tests.

/// Found by the property: scaling an aborted rollout down below its pods (R 4 -> 2, maxSurge 0) makes
/// the reference's replica math cut the stable as well; the abort still completes.
#[test]
fn an_aborted_rollout_scaled_down_below_its_pods_still_completes_the_abort() {
    let setup = Setup {
        replicas: 1,
        max_surge: "0",
        max_unavailable: "\"34%\"",
        steps: vec![StepSpec::SetWeight(0)],
        deadline: None,
    };
    let actions = [
        Action::ReadyDelay(1),
        Action::Promote,
        Action::SetImage(1),
        Action::Promote,
        Action::Scale(3),
        Action::Abort,
        Action::Scale(4),
        Action::Scale(2),
    ];
    run_case(&setup, &actions).unwrap();
}

#[test]
fn a_rollout_aborted_then_rolled_back_and_scaled_still_ends_healthy() {
    let setup = Setup {
        replicas: 4,
        max_surge: "\"25%\"",
        max_unavailable: "\"25%\"",
        steps: vec![StepSpec::SetWeight(50), StepSpec::Pause, StepSpec::Analysis],
        deadline: None,
    };
    let actions = [
        Action::Wait(3_000),
        Action::Wait(3_000),
        Action::SetImage(1),
        Action::Wait(2_000),
        Action::Wait(2_000),
        Action::Abort,
        Action::Wait(500),
        Action::Scale(6),
        Action::SetImage(0),
        Action::Wait(2_000),
        Action::SetImage(2),
        Action::Wait(1_000),
        Action::TogglePaused,
        Action::Wait(1_000),
    ];
    run_case(&setup, &actions).unwrap();
}
