//! Shared helpers for the planner's scenario and property tests.
#![allow(dead_code)]

use jiff::{SignedDuration, Timestamp};
use ramp::api::Rollout;
use ramp::api::rollout::RolloutStatus;
use ramp::plan::{Op, Plan, ReplicaSetState};
use ramp::sim::World;

pub fn t0() -> Timestamp {
    "2026-01-01T00:00:00Z".parse().expect("valid time")
}

pub fn rollout(yaml: &str) -> Rollout {
    let mut rollout: Rollout = serde_norway::from_str(yaml).expect("rollout parses");
    rollout
        .metadata
        .namespace
        .get_or_insert_with(|| "default".into());
    rollout.metadata.generation.get_or_insert(1);
    rollout
}

pub fn basic_canary(replicas: i32, steps: &str) -> Rollout {
    rollout(&format!(
        r#"
apiVersion: argoproj.io/v1alpha1
kind: Rollout
metadata: {{name: demo}}
spec:
  replicas: {replicas}
  selector: {{matchLabels: {{app: demo}}}}
  template:
    metadata: {{labels: {{app: demo}}}}
    spec: {{containers: [{{name: app, image: "demo:blue"}}]}}
  strategy:
    canary:
      steps: {steps}
"#
    ))
}

/// Reconciles until a plan has no ops, the status no longer changes, nothing is scheduled and the world
/// is idle (no pod still becoming ready, no run still measuring), advancing the clock by `tick` between
/// plans; gives up after `max_plans`. A rollout waiting on a person (an
/// indefinite pause) also settles: nothing is scheduled then.
pub fn settle(world: &mut World, tick: SignedDuration, max_plans: usize) -> usize {
    for n in 0..max_plans {
        let before = world.rollout.status.clone();
        let plan = world.reconcile();
        assert_valid(world);
        let waiting = plan
            .requeue_after
            .is_some_and(|after| after < std::time::Duration::from_secs(600));
        if plan.ops.is_empty()
            && Some(&plan.status) == before.as_ref()
            && !waiting
            && world.is_idle()
        {
            return n;
        }
        world.advance(tick);
    }
    max_plans
}

/// (new RS spec, stable RS spec) by hash.
pub fn counts(world: &World) -> (i32, i32) {
    let status = world.rollout.status.clone().unwrap_or_default();
    let by_hash = |hash: &str| {
        world
            .observed
            .replica_sets
            .iter()
            .find(|rs| rs.pod_template_hash == hash)
            .map_or(0, |rs| rs.replicas)
    };
    (
        by_hash(&status.current_pod_hash),
        if status.stable_rs == status.current_pod_hash {
            0
        } else {
            by_hash(&status.stable_rs)
        },
    )
}

pub fn phase(world: &World) -> (String, String) {
    let status = world.rollout.status.clone().unwrap_or_default();
    (status.phase, status.message)
}

pub fn event_reasons(world: &World) -> Vec<String> {
    world.events.iter().map(|e| e.reason.clone()).collect()
}

/// Fails the test with the planner's message when it rejected the Rollout as invalid.
pub fn assert_valid(world: &World) {
    if let Some(invalid) = status(world)
        .conditions
        .iter()
        .find(|c| c.type_ == "InvalidSpec")
    {
        panic!("the test Rollout is invalid: {}", invalid.message);
    }
}

/// The Rollout's status as the last plan wrote it.
pub fn status(world: &World) -> RolloutStatus {
    world.rollout.status.clone().unwrap_or_default()
}

/// Plans once, performs the plan, then moves the clock by `tick`.
pub fn step(world: &mut World, tick: SignedDuration) -> Plan {
    let plan = world.reconcile();
    assert_valid(world);
    world.advance(tick);
    plan
}

/// Plans (moving the clock by `tick` after each plan) until `done` holds right after a plan; panics
/// after `max_plans`. Returns the plans made.
pub fn run_until(
    world: &mut World,
    tick: SignedDuration,
    max_plans: usize,
    mut done: impl FnMut(&World) -> bool,
) -> Vec<Plan> {
    let mut plans = Vec::new();
    for _ in 0..max_plans {
        plans.push(world.reconcile());
        assert_valid(world);
        if done(world) {
            return plans;
        }
        world.advance(tick);
    }
    panic!(
        "condition not reached after {max_plans} plans; status: {:#?}",
        world.rollout.status
    );
}

/// The ReplicaSet with this pod-template hash.
pub fn rs<'w>(world: &'w World, hash: &str) -> Option<&'w ReplicaSetState> {
    world
        .observed
        .replica_sets
        .iter()
        .find(|rs| rs.pod_template_hash == hash)
}

/// Messages of the events with this reason, in order.
pub fn event_messages(world: &World, reason: &str) -> Vec<String> {
    world
        .events
        .iter()
        .filter(|e| e.reason == reason)
        .map(|e| e.message.clone())
        .collect()
}

/// The pod-template hash a Service selects.
pub fn service_hash(world: &World, service: &str) -> Option<String> {
    world
        .observed
        .services
        .get(service)
        .and_then(|s| s.selector.get("rollouts-pod-template-hash").cloned())
}

/// The Service switches a plan asks for: (service, hash).
pub fn switches(plan: &Plan) -> Vec<(String, String)> {
    plan.ops
        .iter()
        .filter_map(|op| match op {
            Op::SwitchService {
                service,
                pod_template_hash,
            } => Some((service.clone(), pod_template_hash.clone())),
            _ => None,
        })
        .collect()
}

/// An AnalysisTemplate spec with one Prometheus metric named `success-rate`.
pub fn success_rate_template() -> ramp::api::AnalysisTemplateSpec {
    serde_norway::from_str(
        r#"
metrics:
- name: success-rate
  successCondition: "result[0] >= 0.95"
  provider:
    prometheus:
      address: "http://prometheus.monitoring:9090"
      query: "sum(rate(requests_total{code!~'5..'}[1m])) / sum(rate(requests_total[1m]))"
"#,
    )
    .expect("template parses")
}

/// Plans until `done`, advancing the clock by `tick`, and checks before each plan that every Service
/// switch it asks for targets a ReplicaSet with an available pod (DESIGN invariant 2).
pub fn run_checking_switches(
    world: &mut World,
    tick: SignedDuration,
    max_plans: usize,
    mut done: impl FnMut(&World) -> bool,
) {
    for _ in 0..max_plans {
        let before = world.observed.clone();
        let plan = world.reconcile();
        assert_valid(world);
        for (service, hash) in switches(&plan) {
            let target = before
                .replica_sets
                .iter()
                .find(|rs| rs.pod_template_hash == hash)
                .expect("the target ReplicaSet exists");
            assert!(
                target.available_replicas > 0,
                "{service} switched to {hash} with no available pod"
            );
        }
        if done(world) {
            return;
        }
        world.advance(tick);
    }
    panic!("not reached: {:#?}", world.rollout.status);
}
