//! Canary releases driven through the planner and the pure world model, step by step.

mod support;

use jiff::SignedDuration;
use ramp::sim::World;
use support::*;

const STEPS: &str = "[{setWeight: 20}, {pause: {}}, {setWeight: 40}, {pause: {duration: 2s}}, {setWeight: 60}, {pause: {duration: 2s}}, {setWeight: 80}, {pause: {duration: 2s}}]";

fn healthy_world() -> World {
    let mut world = World::new(basic_canary(5, STEPS), t0());
    settle(&mut world, SignedDuration::from_secs(1), 100);
    world
}

#[test]
fn initial_deploy_goes_healthy_at_full_size() {
    let world = healthy_world();
    let (phase, message) = phase(&world);
    assert_eq!((phase.as_str(), message.as_str()), ("Healthy", ""));
    let status = world.rollout.status.clone().unwrap();
    assert_eq!(status.stable_rs, status.current_pod_hash);
    assert_eq!(status.current_step_index, Some(8));
    assert_eq!(status.available_replicas, 5);
    assert_eq!(world.observed.replica_sets.len(), 1);
    assert_eq!(world.observed.replica_sets[0].replicas, 5);
}

#[test]
fn new_image_pauses_at_first_pause_with_one_canary_and_four_stable() {
    let mut world = healthy_world();
    world.set_image("demo:green");
    settle(&mut world, SignedDuration::from_secs(1), 100);
    let status = world.rollout.status.clone().unwrap();
    assert_eq!(counts(&world), (1, 4));
    assert_eq!(status.current_step_index, Some(1));
    assert_eq!(phase(&world), ("Paused".into(), "CanaryPauseStep".into()));
    assert_eq!(status.pause_conditions.len(), 1);
    assert!(status.controller_pause);
}

#[test]
fn promote_then_timed_pauses_end_healthy_on_the_new_version() {
    let mut world = healthy_world();
    let old_hash = world.rollout.status.clone().unwrap().stable_rs;
    world.set_image("demo:green");
    settle(&mut world, SignedDuration::from_secs(1), 100);
    world.update_status(|s| s.pause_conditions.clear());
    settle(&mut world, SignedDuration::from_secs(1), 200);
    let status = world.rollout.status.clone().unwrap();
    assert_eq!(phase(&world), ("Healthy".into(), String::new()));
    assert_ne!(status.stable_rs, old_hash);
    assert_eq!(status.stable_rs, status.current_pod_hash);
    let old = world
        .observed
        .replica_sets
        .iter()
        .find(|rs| rs.pod_template_hash == old_hash)
        .unwrap();
    assert_eq!(old.replicas, 0);
    assert!(event_reasons(&world).contains(&"RolloutCompleted".to_string()));
}

#[test]
fn abort_during_basic_canary_scales_canary_down_and_degrades() {
    let mut world = healthy_world();
    world.set_image("demo:green");
    settle(&mut world, SignedDuration::from_secs(1), 100);
    world.update_status(|s| s.abort = true);
    settle(&mut world, SignedDuration::from_secs(1), 100);
    let status = world.rollout.status.clone().unwrap();
    assert_eq!(counts(&world), (0, 5));
    assert_eq!(status.current_step_index, Some(0));
    assert_eq!(
        phase(&world),
        (
            "Degraded".into(),
            "RolloutAborted: Rollout aborted update to revision 2".into()
        )
    );
}

#[test]
fn retry_after_abort_runs_the_steps_again() {
    let mut world = healthy_world();
    world.set_image("demo:green");
    settle(&mut world, SignedDuration::from_secs(1), 100);
    world.update_status(|s| s.abort = true);
    settle(&mut world, SignedDuration::from_secs(1), 100);
    world.update_status(|s| s.abort = false);
    settle(&mut world, SignedDuration::from_secs(1), 100);
    assert_eq!(counts(&world), (1, 4));
    assert_eq!(phase(&world), ("Paused".into(), "CanaryPauseStep".into()));
}

#[test]
fn promote_full_skips_remaining_steps() {
    let mut world = healthy_world();
    world.set_image("demo:green");
    settle(&mut world, SignedDuration::from_secs(1), 100);
    world.update_status(|s| s.promote_full = true);
    settle(&mut world, SignedDuration::from_secs(1), 100);
    let status = world.rollout.status.clone().unwrap();
    assert_eq!(phase(&world), ("Healthy".into(), String::new()));
    assert_eq!(status.stable_rs, status.current_pod_hash);
    assert!(!status.promote_full);
}

