//! Shared helpers for the planner's scenario and property tests.
#![allow(dead_code)]

use jiff::{SignedDuration, Timestamp};
use ramp::api::Rollout;
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

/// Reconciles until a plan has no ops, the status no longer changes and nothing is scheduled, advancing
/// the clock by `tick` between plans; gives up after `max_plans`. A rollout waiting on a person (an
/// indefinite pause) also settles: nothing is scheduled then.
pub fn settle(world: &mut World, tick: SignedDuration, max_plans: usize) -> usize {
    for n in 0..max_plans {
        let before = world.rollout.status.clone();
        let plan = world.reconcile();
        let waiting = plan
            .requeue_after
            .is_some_and(|after| after < std::time::Duration::from_secs(600));
        if plan.ops.is_empty() && Some(&plan.status) == before.as_ref() && !waiting {
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
