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

/// Argo resets the release in the sync that creates the new ReplicaSet; so does Ramp, so that the next
/// plan scales the canary instead of spending a round trip (a status write and a reconcile) on the reset.
/// Here the first scale is the stable's, so the new ReplicaSet is created at 0 and waits for it.
#[test]
fn the_plan_that_creates_the_new_replica_set_starts_the_release_and_the_next_one_scales() {
    let mut world = healthy_world();
    let old_hash = status(&world).stable_rs;
    world.set_image("demo:green");
    let created = world.reconcile();
    let new_hash = created_hash(&created).expect("a ReplicaSet is created");
    assert!(
        !created
            .ops
            .iter()
            .any(|op| matches!(op, ramp::plan::Op::ScaleReplicaSet { .. })),
        "nothing is scaled in the plan that creates: {:?}",
        created.ops
    );
    assert_eq!(
        created_replicas(&created),
        vec![(format!("demo-{new_hash}"), 0)]
    );
    let after_create = status(&world);
    assert_eq!(after_create.current_pod_hash, new_hash);
    assert_eq!(after_create.current_step_index, Some(0));
    assert_eq!(after_create.stable_rs, old_hash);
    assert_eq!(phase(&world).0, "Progressing");

    let next = world.reconcile();
    let scaled: Vec<_> = next
        .ops
        .iter()
        .filter_map(|op| match op {
            ramp::plan::Op::ScaleReplicaSet { name, to, .. } => Some((name.clone(), *to)),
            _ => None,
        })
        .collect();
    // The reference's worked example: 20 % of 5 first takes a pod off the stable (maxUnavailable).
    assert_eq!(
        scaled,
        vec![(format!("demo-{old_hash}"), 4)],
        "{:?}",
        next.ops
    );
}

/// The ReplicaSets a plan creates, by name, with the replicas each is created at.
fn created_replicas(plan: &ramp::plan::Plan) -> Vec<(String, i32)> {
    plan.ops
        .iter()
        .filter_map(|op| match op {
            ramp::plan::Op::CreateReplicaSet(new) => Some((new.name.clone(), new.replicas)),
            _ => None,
        })
        .collect()
}

fn scales(plan: &ramp::plan::Plan) -> Vec<(String, i32)> {
    plan.ops
        .iter()
        .filter_map(|op| match op {
            ramp::plan::Op::ScaleReplicaSet { name, to, .. } => Some((name.clone(), *to)),
            _ => None,
        })
        .collect()
}

/// Argo creates the new ReplicaSet at 0 and scales it in the same sync; Ramp creates it at the replicas
/// that scale gives, in one write, when the scale is the new ReplicaSet's (here: 2 replicas at 50 %, room
/// for one surge pod beside the stable).
#[test]
fn the_plan_that_creates_the_new_replica_set_creates_it_at_its_first_scale() {
    let steps = "[{setWeight: 50}, {pause: {duration: 5s}}]";
    let mut world = World::new(basic_canary(2, steps), t0());
    settle(&mut world, TICK, 100);
    let v1 = status(&world).stable_rs;
    world.set_image("demo:green");

    let created = world.reconcile();
    let new_hash = created_hash(&created).expect("a ReplicaSet is created");
    let name = format!("demo-{new_hash}");
    assert_eq!(created_replicas(&created), vec![(name.clone(), 1)]);
    assert!(scales(&created).is_empty(), "{:?}", created.ops);
    assert_eq!(
        planned_event_reasons(&created),
        vec![
            "RolloutUpdated",
            "NewReplicaSetCreated",
            "RolloutNotCompleted",
            "ScalingReplicaSet"
        ]
    );
    assert_eq!(
        event_messages(&world, "ScalingReplicaSet").last(),
        Some(&format!(
            "Scaled up ReplicaSet {name} (revision 2) from 0 to 1"
        ))
    );
    let reset = status(&world);
    assert_eq!(reset.current_step_index, Some(0));
    assert_eq!(reset.current_pod_hash, new_hash);
    assert_eq!(reset.stable_rs, v1);
    assert_eq!(counts(&world), (1, 2), "one surge pod beside the stable");

    // The next plan does not scale the new ReplicaSet again; the release goes on to the pause with one
    // canary pod and one stable, never more than 3 pods (2 + 25 % surge, rounded up).
    let next = world.reconcile();
    assert!(
        !scales(&next).iter().any(|(scaled, _)| *scaled == name),
        "{:?}",
        next.ops
    );
    run_until(&mut world, TICK, 100, |w| {
        assert!(w.pod_count() <= 3, "{} pods", w.pod_count());
        paused_at_step(w, 1)
    });
    assert_eq!(counts(&world), (1, 1));
}

#[test]
fn an_initial_deploy_creates_its_replica_set_at_full_size() {
    let mut world = World::new(basic_canary(5, STEPS), t0());
    let created = world.reconcile();
    let hash = created_hash(&created).expect("a ReplicaSet is created");
    assert_eq!(
        created_replicas(&created),
        vec![(format!("demo-{hash}"), 5)]
    );
    assert!(scales(&created).is_empty(), "{:?}", created.ops);
    assert_eq!(
        event_messages(&world, "ScalingReplicaSet"),
        vec![format!(
            "Scaled up ReplicaSet demo-{hash} (revision 1) from 0 to 5"
        )]
    );
}

/// Argo ends a timed pause in one sync and acts on the step after it in the next, which in a burst of
/// releases waits behind every other one. Ramp plans on the status it is about to write and performs
/// that next sync's ops in the same plan: the scale of the next setWeight, and after the last step the
/// promotion with the old stable's scale-down. The intermediate status is never written.
#[test]
fn the_plan_that_ends_a_timed_pause_performs_what_the_next_step_needs() {
    let steps =
        "[{setWeight: 50}, {pause: {duration: 5s}}, {setWeight: 75}, {pause: {duration: 5s}}]";
    let mut world = World::new(basic_canary(2, steps), t0());
    settle(&mut world, TICK, 100);
    let v1 = status(&world).stable_rs;
    world.set_image("demo:green");
    run_until(&mut world, TICK, 100, |w| paused_at_step(w, 1));
    let v2 = status(&world).current_pod_hash;
    assert_ne!(v1, v2);

    // The first pause ends: step 2 (setWeight 75) and the canary's scale to 2 in one plan.
    let plans = run_until(&mut world, TICK, 100, |w| {
        status(w).current_step_index == Some(2)
    });
    let ended = plans.last().unwrap();
    assert_eq!(scales(ended), vec![(format!("demo-{v2}"), 2)]);
    assert_eq!(
        planned_event_reasons(ended),
        vec![
            "RolloutStepCompleted",
            "RolloutResumed",
            "ScalingReplicaSet"
        ]
    );
    assert!(ended.status.pause_conditions.is_empty());
    assert!(!ended.status.controller_pause);

    // The last pause ends: the last step, the promotion and the old stable's scale-down in one plan.
    run_until(&mut world, TICK, 100, |w| paused_at_step(w, 3));
    let plans = run_until(&mut world, TICK, 100, |w| {
        status(w).current_step_index == Some(4)
    });
    let ended = plans.last().unwrap();
    assert_eq!(ended.status.stable_rs, v2, "promoted in the same plan");
    assert_eq!(scales(ended), vec![(format!("demo-{v1}"), 0)]);
    assert_eq!(
        planned_event_reasons(ended),
        vec![
            "RolloutStepCompleted",
            "RolloutResumed",
            "ScalingReplicaSet",
            "RolloutCompleted"
        ]
    );
    run_until(&mut world, TICK, 100, |w| {
        assert!(w.pod_count() <= 3, "{} pods", w.pod_count());
        phase(w).0 == "Healthy"
    });
    assert_eq!(counts(&world), (2, 0));
    assert_valid(&world);
}

/// The reasons of the Events a plan records, in order.
fn planned_event_reasons(plan: &ramp::plan::Plan) -> Vec<String> {
    plan.ops
        .iter()
        .filter_map(|op| match op {
            ramp::plan::Op::Event(event) => Some(event.reason.clone()),
            _ => None,
        })
        .collect()
}

/// Argo pauses at a pause step in the sync after the one that reached it; Ramp pauses in the same plan,
/// so reaching a pause costs one status write, not two. The Events are Argo's, in Argo's order.
#[test]
fn the_plan_that_reaches_a_pause_step_pauses_in_the_same_status() {
    let steps = "[{setWeight: 20}, {pause: {duration: 2s}}, {pause: {}}, {setWeight: 40}]";
    let (mut world, _, _) = release(basic_canary(5, steps), "demo:green");
    let plans = run_until(&mut world, TICK, 200, |w| {
        status(w).current_step_index == Some(1)
    });
    let reached = plans.last().unwrap();
    assert!(paused_at_step(&world, 1), "{:#?}", reached.status);
    assert!(reached.status.controller_pause);
    assert_eq!(
        reached.status.pause_conditions[0].start_time.0, world.now,
        "the pause starts when the step is reached"
    );
    assert_eq!(
        planned_event_reasons(reached),
        vec!["RolloutStepCompleted", "RolloutPaused"]
    );
    assert_eq!(
        reached.requeue_after,
        Some(std::time::Duration::from_secs(2)),
        "the timed pause's end is scheduled by the same plan"
    );
    assert_eq!(phase(&world), ("Paused".into(), "CanaryPauseStep".into()));

    // A timed pause followed by an indefinite one: the plan that ends the first enters the second.
    let plans = run_until(&mut world, TICK, 40, |w| {
        status(w).current_step_index == Some(2)
    });
    let next = plans.last().unwrap();
    assert!(paused_at_step(&world, 2), "{:#?}", next.status);
    assert_eq!(
        planned_event_reasons(next),
        vec!["RolloutStepCompleted", "RolloutResumed", "RolloutPaused"]
    );
    assert_eq!(next.status.pause_conditions.len(), 1);
    assert_eq!(next.status.pause_conditions[0].start_time.0, world.now);

    // Nothing is left for the next plan to do while the indefinite pause holds.
    let again = world.reconcile();
    assert!(again.ops.is_empty(), "{:?}", again.ops);
    assert_eq!(Some(&again.status), world.rollout.status.as_ref());
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

// ---------------------------------------------------------------------------------------------------
// The reference's basic canary (reference 4.2-4.14), one behaviour per test.

const TICK: SignedDuration = SignedDuration::from_millis(250);

/// The pod-template hash of the ReplicaSet `plan` creates, if it creates one.
fn created_hash(plan: &ramp::plan::Plan) -> Option<String> {
    plan.ops.iter().find_map(|op| match op {
        ramp::plan::Op::CreateReplicaSet(new) => Some(new.pod_template_hash.clone()),
        _ => None,
    })
}

fn ms(n: i64) -> SignedDuration {
    SignedDuration::from_millis(n)
}

/// A healthy rollout of `rollout`, then a new image: returns (world, V1 hash, V2 hash) once V2's
/// ReplicaSet exists.
fn release(rollout: ramp::api::Rollout, image: &str) -> (World, String, String) {
    let mut world = World::new(rollout, t0());
    settle(&mut world, SignedDuration::from_secs(1), 100);
    assert_eq!(phase(&world).0, "Healthy", "{:#?}", world.rollout.status);
    let v1 = status(&world).stable_rs;
    world.set_image(image);
    world.reconcile(); // creates V2's ReplicaSet, at 0
    let v2 = world
        .observed
        .replica_sets
        .iter()
        .find(|rs| rs.pod_template_hash != v1)
        .expect("the new ReplicaSet")
        .pod_template_hash
        .clone();
    assert_eq!(rs(&world, &v2).unwrap().replicas, 0);
    (world, v1, v2)
}

fn paused_at_step(world: &World, index: i32) -> bool {
    let status = status(world);
    status.current_step_index == Some(index)
        && status
            .pause_conditions
            .iter()
            .any(|p| p.reason == "CanaryPauseStep")
}

#[test]
fn reference_basic_canary_walks_every_step_with_the_reference_counts_and_pause_durations() {
    let (mut world, v1, v2) = release(basic_canary(5, STEPS), "demo:green");
    run_until(&mut world, TICK, 200, |w| paused_at_step(w, 1));
    assert_eq!(counts(&world), (1, 4));
    assert_eq!(phase(&world), ("Paused".into(), "CanaryPauseStep".into()));

    // Nothing moves past an indefinite pause.
    for _ in 0..40 {
        step(&mut world, TICK);
    }
    assert!(paused_at_step(&world, 1));
    assert_eq!(counts(&world), (1, 4));

    world.update_status(|s| s.pause_conditions.clear());
    // For each timed pause: the counts while it holds, when it started and when the index moved on.
    let mut at_pause: Vec<(i32, (i32, i32), jiff::Timestamp)> = Vec::new();
    let mut left_at: Vec<(i32, jiff::Timestamp)> = Vec::new();
    let mut last_index = 1;
    run_until(&mut world, TICK, 400, |w| {
        let s = status(w);
        let index = s.current_step_index.unwrap_or(0);
        if index != last_index {
            left_at.push((last_index, w.now));
            last_index = index;
        }
        if let Some(pause) = s.pause_conditions.first()
            && at_pause.last().is_none_or(|(i, _, _)| *i != index)
        {
            at_pause.push((index, counts(w), pause.start_time.0));
        }
        s.phase == "Healthy"
    });

    let pauses: Vec<(i32, (i32, i32))> = at_pause.iter().map(|(i, c, _)| (*i, *c)).collect();
    assert_eq!(pauses, vec![(3, (2, 3)), (5, (3, 2)), (7, (4, 1))]);
    for (index, _, started) in &at_pause {
        let (_, left) = left_at
            .iter()
            .find(|(i, _)| i == index)
            .expect("the pause step was left");
        let held = left.duration_since(*started);
        assert!(
            held >= SignedDuration::from_secs(2) && held <= SignedDuration::from_secs(2) + TICK,
            "pause at step {index} held for {held:?}"
        );
    }

    let status = status(&world);
    assert_eq!(status.stable_rs, v2);
    assert_eq!(status.current_step_index, Some(8));
    assert_eq!(rs(&world, &v2).unwrap().replicas, 5);
    assert_eq!(rs(&world, &v1).unwrap().replicas, 0);
    assert_eq!(phase(&world), ("Healthy".into(), String::new()));
    assert_eq!(
        event_messages(&world, "RolloutStepCompleted"),
        vec![
            "Rollout step 1/8 completed (setWeight: 20)",
            "Rollout step 2/8 completed (pause)",
            "Rollout step 3/8 completed (setWeight: 40)",
            "Rollout step 4/8 completed (pause: 2s)",
            "Rollout step 5/8 completed (setWeight: 60)",
            "Rollout step 6/8 completed (pause: 2s)",
            "Rollout step 7/8 completed (setWeight: 80)",
            "Rollout step 8/8 completed (pause: 2s)",
        ]
    );
    let completed = event_messages(&world, "RolloutCompleted");
    assert_eq!(
        completed.last().unwrap(),
        &format!("Rollout completed update to revision 2 ({v2}): Completed all 8 canary steps")
    );
}

#[test]
fn requeue_after_is_the_time_left_in_a_timed_pause() {
    let (mut world, _, _) = release(basic_canary(5, STEPS), "demo:green");
    run_until(&mut world, TICK, 200, |w| paused_at_step(w, 1));
    world.update_status(|s| s.pause_conditions.clear());
    run_until(&mut world, TICK, 200, |w| paused_at_step(w, 3));
    let started = status(&world).pause_conditions[0].start_time.0;
    world.now = started;
    world.advance(ms(500));
    let plan = world.reconcile();
    assert_eq!(
        plan.requeue_after,
        Some(std::time::Duration::from_millis(1500))
    );
    assert_eq!(status(&world).current_step_index, Some(3));
    world.advance(ms(1499));
    let plan = world.reconcile();
    assert_eq!(
        plan.requeue_after,
        Some(std::time::Duration::from_millis(1))
    );
    assert_eq!(status(&world).current_step_index, Some(3));
    world.advance(ms(1));
    world.reconcile();
    assert_eq!(status(&world).current_step_index, Some(4));
}

#[test]
fn abort_at_forty_percent_drains_the_canary_within_surge_and_unavailability_then_retry_restarts() {
    let (mut world, v1, v2) = release(basic_canary(5, STEPS), "demo:green");
    run_until(&mut world, TICK, 200, |w| paused_at_step(w, 1));
    world.update_status(|s| s.pause_conditions.clear());
    run_until(&mut world, TICK, 200, |w| paused_at_step(w, 3));
    assert_eq!(counts(&world), (2, 3));

    world.update_status(|s| s.abort = true);
    run_until(&mut world, TICK, 200, |w| {
        let specs: i32 = w.observed.replica_sets.iter().map(|r| r.replicas).sum();
        let available: i32 = w
            .observed
            .replica_sets
            .iter()
            .map(|r| r.available_replicas)
            .sum();
        assert!(specs <= 5 + 2, "{specs} pods scheduled");
        assert!(available >= 5 - 1, "only {available} available");
        counts(w) == (0, 5) && rs(w, &v1).unwrap().available_replicas == 5
    });
    let aborted = status(&world);
    assert!(aborted.abort);
    assert!(aborted.aborted_at.is_some());
    assert!(aborted.pause_conditions.is_empty());
    assert_eq!(aborted.current_step_index, Some(0));
    assert_eq!(aborted.stable_rs, v1);
    assert_eq!(
        phase(&world),
        (
            "Degraded".into(),
            "RolloutAborted: Rollout aborted update to revision 2".into()
        )
    );
    let aborted_events = event_messages(&world, "RolloutAborted");
    assert_eq!(aborted_events, vec!["Rollout aborted update to revision 2"]);
    assert!(
        world
            .events
            .iter()
            .any(|e| e.reason == "RolloutAborted" && e.warning)
    );
    // Still aborted later: nothing scales back up on its own.
    settle(&mut world, TICK, 50);
    assert_eq!(counts(&world), (0, 5));

    world.update_status(|s| s.abort = false);
    world.reconcile();
    let retrying = status(&world);
    assert!(!retrying.abort);
    assert!(retrying.aborted_at.is_none());
    let progressing = retrying
        .conditions
        .iter()
        .find(|c| c.type_ == "Progressing")
        .unwrap();
    assert_eq!(
        (progressing.reason.as_str(), progressing.message.as_str()),
        ("RolloutRetry", "Retrying Rollout after abort")
    );
    run_until(&mut world, TICK, 200, |w| paused_at_step(w, 1));
    assert_eq!(counts(&world), (1, 4));
    assert_eq!(status(&world).current_pod_hash, v2);
}

#[test]
fn promote_full_mid_canary_skips_the_timed_pauses_and_promotes() {
    let (mut world, v1, v2) = release(basic_canary(5, STEPS), "demo:green");
    run_until(&mut world, TICK, 200, |w| paused_at_step(w, 1));
    world.update_status(|s| s.promote_full = true);
    world.reconcile();
    let s = status(&world);
    assert!(s.pause_conditions.is_empty());
    assert_eq!(s.current_step_index, Some(8));
    run_until(&mut world, TICK, 200, |w| phase(w).0 == "Healthy");
    let s = status(&world);
    assert_eq!(s.stable_rs, v2);
    assert!(!s.promote_full);
    assert_eq!(rs(&world, &v1).unwrap().replicas, 0);
    assert_eq!(rs(&world, &v2).unwrap().replicas, 5);
    // No step ran after step 1: the full promotion bypassed them.
    assert_eq!(
        event_messages(&world, "RolloutStepCompleted"),
        vec!["Rollout step 1/8 completed (setWeight: 20)"]
    );
    assert!(
        event_messages(&world, "RolloutCompleted")
            .last()
            .unwrap()
            .ends_with(": Full promotion requested")
    );
}

#[test]
fn a_new_image_mid_canary_drains_the_intermediate_version_and_restarts_the_steps() {
    let (mut world, v1, v2) = release(basic_canary(5, STEPS), "demo:green");
    run_until(&mut world, TICK, 200, |w| paused_at_step(w, 1));
    world.update_status(|s| s.pause_conditions.clear());
    run_until(&mut world, TICK, 200, |w| paused_at_step(w, 3));
    assert_eq!(counts(&world), (2, 3));

    world.set_image("demo:yellow");
    let plan = world.reconcile(); // creates V3 and resets the release: no scaling in this plan
    let v3 = created_hash(&plan).expect("V3 is created");
    assert!(v3 != v1 && v3 != v2);
    assert!(
        !plan
            .ops
            .iter()
            .any(|op| matches!(op, ramp::plan::Op::ScaleReplicaSet { .. }))
    );
    let reset = status(&world);
    assert_eq!(reset.current_pod_hash, v3);
    assert_eq!(reset.current_step_index, Some(0));
    assert!(reset.pause_conditions.is_empty());
    assert_eq!(reset.stable_rs, v1);

    run_until(&mut world, TICK, 300, |w| {
        assert_eq!(status(w).stable_rs, v1, "the stable stays V1");
        paused_at_step(w, 1) && rs(w, &v2).unwrap().replicas == 0
    });
    // Let the intermediate pods go away.
    settle(&mut world, TICK, 100);
    assert_eq!(rs(&world, &v2).unwrap().replicas, 0);
    assert_eq!(rs(&world, &v2).unwrap().available_replicas, 0);
    assert_eq!(counts(&world), (1, 4));
    assert_eq!(rs(&world, &v1).unwrap().replicas, 4);
    assert_eq!(phase(&world), ("Paused".into(), "CanaryPauseStep".into()));
}

#[test]
fn rolling_back_to_the_stable_image_skips_the_steps_and_ends_healthy_on_v1() {
    let (mut world, v1, v2) = release(basic_canary(5, STEPS), "demo:green");
    run_until(&mut world, TICK, 200, |w| paused_at_step(w, 1));
    world.update_status(|s| s.pause_conditions.clear());
    run_until(&mut world, TICK, 200, |w| paused_at_step(w, 3));
    let steps_before = event_messages(&world, "RolloutStepCompleted").len();

    world.set_image("demo:blue");
    world.reconcile();
    let s = status(&world);
    assert_eq!(s.current_pod_hash, v1);
    assert_eq!(s.current_step_index, Some(8));
    assert!(s.pause_conditions.is_empty());
    assert_eq!(
        event_messages(&world, "SkipSteps"),
        vec!["Rollback to stable ReplicaSets"]
    );

    run_until(&mut world, TICK, 200, |w| {
        assert!(
            status(w).pause_conditions.is_empty(),
            "no pause on a rollback"
        );
        phase(w).0 == "Healthy" && rs(w, &v2).unwrap().available_replicas == 0
    });
    let s = status(&world);
    assert_eq!(s.stable_rs, v1);
    assert_eq!(s.current_pod_hash, v1);
    assert_eq!(rs(&world, &v1).unwrap().replicas, 5);
    assert_eq!(rs(&world, &v2).unwrap().replicas, 0);
    assert_eq!(
        event_messages(&world, "RolloutStepCompleted").len(),
        steps_before,
        "no step ran again"
    );
}

#[test]
fn spec_paused_halts_scaling_and_steps_until_unpaused() {
    let mut world = healthy_world();
    let v1 = status(&world).stable_rs;
    world.set_image("demo:green");
    world.update_spec(|spec| spec.paused = true);
    settle(&mut world, TICK, 100);
    let s = status(&world);
    let v2 = s.current_pod_hash.clone();
    assert_ne!(v1, v2);
    // The new ReplicaSet is created, at 0, and nothing else moves.
    assert_eq!(rs(&world, &v2).unwrap().replicas, 0);
    assert_eq!(counts(&world), (0, 5));
    assert_eq!(s.current_step_index, Some(0));
    assert!(s.pause_conditions.is_empty());
    assert_eq!(phase(&world), ("Paused".into(), "manually paused".into()));
    let paused = s.conditions.iter().find(|c| c.type_ == "Paused").unwrap();
    assert_eq!(paused.status, "True");

    world.update_spec(|spec| spec.paused = false);
    run_until(&mut world, TICK, 200, |w| paused_at_step(w, 1));
    assert_eq!(counts(&world), (1, 4));

    // Paused during a timed pause: the step does not complete, however long it waits.
    world.update_status(|s| s.pause_conditions.clear());
    run_until(&mut world, TICK, 200, |w| paused_at_step(w, 3));
    world.update_spec(|spec| spec.paused = true);
    for _ in 0..40 {
        step(&mut world, TICK);
    }
    assert_eq!(status(&world).current_step_index, Some(3));
    assert_eq!(counts(&world), (2, 3));
    assert_eq!(phase(&world), ("Paused".into(), "manually paused".into()));
    world.update_spec(|spec| spec.paused = false);
    run_until(&mut world, TICK, 20, |w| {
        status(w).current_step_index == Some(4)
    });
}

#[test]
fn scaling_while_paused_keeps_the_weight() {
    // e2e TestRolloutScalingWhenPaused: 25% of 8 is 2 canary / 6 stable, of 4 is 1 / 3.
    let (mut world, _, _) = release(
        basic_canary(4, "[{setWeight: 25}, {pause: {}}]"),
        "demo:green",
    );
    run_until(&mut world, TICK, 200, |w| paused_at_step(w, 1));
    assert_eq!(counts(&world), (1, 3));

    world.update_spec(|spec| spec.replicas = Some(8));
    settle(&mut world, TICK, 200);
    assert_eq!(counts(&world), (2, 6));
    assert!(paused_at_step(&world, 1));
    assert_eq!(phase(&world), ("Paused".into(), "CanaryPauseStep".into()));

    world.update_spec(|spec| spec.replicas = Some(4));
    settle(&mut world, TICK, 200);
    assert_eq!(counts(&world), (1, 3));
    assert!(paused_at_step(&world, 1));
}

fn with_deadline(abort: bool) -> ramp::api::Rollout {
    let mut rollout = basic_canary(5, STEPS);
    rollout.spec.progress_deadline_seconds = Some(10);
    rollout.spec.progress_deadline_abort = abort;
    rollout
}

#[test]
fn never_ready_canary_pods_exceed_the_progress_deadline() {
    let (mut world, _, v2) = release(with_deadline(false), "demo:broken");
    world.never_ready.push(v2.clone());
    let start = world.now;
    run_until(&mut world, TICK, 200, |w| phase(w).0 == "Degraded");
    let waited = world.now.duration_since(start);
    assert!(
        waited >= SignedDuration::from_secs(10) && waited <= SignedDuration::from_secs(12),
        "timed out after {waited:?}"
    );
    assert_eq!(
        phase(&world).1,
        format!("ProgressDeadlineExceeded: ReplicaSet \"demo-{v2}\" has timed out progressing.")
    );
    let s = status(&world);
    assert!(!s.abort);
    let progressing = s
        .conditions
        .iter()
        .find(|c| c.type_ == "Progressing")
        .unwrap();
    assert_eq!(progressing.status, "False");
    // No abort: the canary stays where it was.
    settle(&mut world, TICK, 50);
    assert_eq!(counts(&world), (1, 4));
    assert_eq!(phase(&world).0, "Degraded");
}

#[test]
fn progress_deadline_abort_aborts_and_scales_the_canary_away() {
    let (mut world, v1, v2) = release(with_deadline(true), "demo:broken");
    world.never_ready.push(v2.clone());
    run_until(&mut world, TICK, 200, |w| status(w).abort);
    settle(&mut world, TICK, 200);
    let s = status(&world);
    assert!(s.abort);
    assert_eq!(s.stable_rs, v1);
    assert_eq!(counts(&world), (0, 5));
    assert_eq!(
        phase(&world),
        (
            "Degraded".into(),
            format!(
                "RolloutAborted: Rollout aborted update to revision 2: ReplicaSet \"demo-{v2}\" has timed out progressing."
            )
        )
    );
}

#[test]
fn initial_deploy_is_promoted_at_once_without_running_steps() {
    let world = healthy_world();
    assert!(event_messages(&world, "RolloutStepCompleted").is_empty());
    assert!(event_messages(&world, "RolloutPaused").is_empty());
    assert_eq!(
        event_reasons(&world),
        vec![
            "RolloutUpdated",
            "NewReplicaSetCreated",
            "RolloutNotCompleted",
            "ScalingReplicaSet",
            "RolloutCompleted"
        ]
    );
    let hash = status(&world).stable_rs;
    assert_eq!(
        event_messages(&world, "RolloutCompleted"),
        vec![format!(
            "Rollout completed update to revision 1 ({hash}): Initial deploy"
        )]
    );
}

/// A basic canary with canary and stable Services.
fn with_services(steps: &str) -> ramp::api::Rollout {
    let mut rollout = basic_canary(5, steps);
    let canary = rollout.spec.strategy.canary.as_mut().unwrap();
    canary.canary_service = "demo-canary".into();
    canary.stable_service = "demo-stable".into();
    rollout
}

#[test]
fn canary_and_stable_services_follow_available_pods_and_the_canary_returns_to_stable_on_abort() {
    let mut world = World::new(with_services(STEPS), t0());
    run_checking_switches(&mut world, TICK, 100, |w| phase(w).0 == "Healthy");
    let v1 = status(&world).stable_rs;
    assert_eq!(service_hash(&world, "demo-stable"), Some(v1.clone()));
    assert_eq!(service_hash(&world, "demo-canary"), Some(v1.clone()));
    assert_eq!(
        world.observed.services["demo-stable"]
            .managed_by_rollout
            .as_deref(),
        Some("demo")
    );

    world.set_image("demo:green");
    world.pod_ready_delay = SignedDuration::from_secs(2);
    world.reconcile();
    let v2 = status(&world).current_pod_hash.clone();
    let v2 = if v2 == v1 {
        world.reconcile();
        status(&world).current_pod_hash
    } else {
        v2
    };
    // While the canary pod is not ready, the canary Service stays on V1.
    run_checking_switches(&mut world, TICK, 100, |w| {
        rs(w, &v2).is_some_and(|rs| rs.replicas == 1)
    });
    assert_eq!(rs(&world, &v2).unwrap().available_replicas, 0);
    assert_eq!(service_hash(&world, "demo-canary"), Some(v1.clone()));
    run_checking_switches(&mut world, TICK, 100, |w| paused_at_step(w, 1));
    assert_eq!(service_hash(&world, "demo-canary"), Some(v2.clone()));
    assert_eq!(service_hash(&world, "demo-stable"), Some(v1.clone()));
    assert!(event_messages(&world, "SwitchService").contains(&format!(
        "Switched selector for service 'demo-canary' from '{v1}' to '{v2}'"
    )));

    world.update_status(|s| s.abort = true);
    run_checking_switches(&mut world, TICK, 100, |w| counts(w) == (0, 5));
    assert_eq!(service_hash(&world, "demo-canary"), Some(v1.clone()));
    assert_eq!(service_hash(&world, "demo-stable"), Some(v1.clone()));

    // Retry and promote to the end: both Services end on V2.
    world.update_status(|s| s.abort = false);
    run_checking_switches(&mut world, TICK, 200, |w| paused_at_step(w, 1));
    world.update_status(|s| s.promote_full = true);
    run_checking_switches(&mut world, TICK, 200, |w| phase(w).0 == "Healthy");
    // As in Argo, the Services follow the promotion on the next plan.
    run_checking_switches(&mut world, TICK, 1, |_| true);
    assert_eq!(service_hash(&world, "demo-stable"), Some(v2.clone()));
    assert_eq!(service_hash(&world, "demo-canary"), Some(v2));
}

const ANALYSIS_STEPS: &str = "[{setWeight: 20}, {analysis: {templates: [{templateName: success-rate}]}}, {setWeight: 40}, {pause: {}}]";

fn analysis_world(steps: &str, outcome: ramp::api::AnalysisPhase) -> (World, String, String) {
    let mut world = World::new(basic_canary(5, steps), t0());
    world
        .observed
        .analysis_templates
        .insert("success-rate".into(), success_rate_template());
    world.analysis_outcome = outcome;
    world.analysis_duration = SignedDuration::from_secs(5);
    settle(&mut world, SignedDuration::from_secs(1), 100);
    assert_eq!(phase(&world).0, "Healthy", "{:#?}", world.rollout.status);
    let v1 = status(&world).stable_rs;
    world.set_image("demo:green");
    world.reconcile();
    world.reconcile();
    let v2 = status(&world).current_pod_hash;
    assert_ne!(v1, v2);
    (world, v1, v2)
}

#[test]
fn a_passing_analysis_step_advances_to_the_next_step() {
    let (mut world, _, v2) = analysis_world(ANALYSIS_STEPS, ramp::api::AnalysisPhase::Successful);
    run_until(&mut world, TICK, 200, |w| {
        status(w).current_step_index == Some(1)
    });
    // One step run, named <rollout>-<hash>-<revision>-<step>, labelled with its step.
    run_until(&mut world, TICK, 10, |w| {
        !w.observed.analysis_runs.is_empty()
    });
    let run = world.observed.analysis_runs[0].clone();
    assert_eq!(run.name, format!("demo-{v2}-2-1"));
    assert_eq!(run.rollout_type, "Step");
    assert_eq!(run.step_index, Some(1));
    // The step waits for the run's verdict (5 s).
    let created = run.created;
    run_until(&mut world, TICK, 100, |w| {
        status(w).current_step_index == Some(2)
    });
    assert!(world.now.duration_since(created) >= SignedDuration::from_secs(5));
    assert!(
        event_messages(&world, "RolloutStepCompleted")
            .contains(&"Rollout step 2/4 completed (analysis)".to_string())
    );
    run_until(&mut world, TICK, 200, |w| paused_at_step(w, 3));
    assert_eq!(counts(&world), (2, 3));
    assert_eq!(world.observed.analysis_runs.len(), 1);
    assert!(!status(&world).abort);
}

#[test]
fn a_failing_analysis_step_aborts_with_the_reference_message() {
    let (mut world, v1, _) = analysis_world(ANALYSIS_STEPS, ramp::api::AnalysisPhase::Failed);
    run_until(&mut world, TICK, 200, |w| status(w).abort);
    settle(&mut world, TICK, 200);
    assert_eq!(
        phase(&world),
        (
            "Degraded".into(),
            "RolloutAborted: Rollout aborted update to revision 2: Step-based analysis phase error/failed: Metric \"success-rate\" assessed Failed due to failed (1) > failureLimit (0)".into()
        )
    );
    let s = status(&world);
    assert_eq!(s.current_step_index, Some(0));
    assert_eq!(s.stable_rs, v1);
    assert_eq!(counts(&world), (0, 5));
    let recorded = s.canary.current_step_analysis_run_status;
    assert!(
        recorded
            .as_ref()
            .is_none_or(|r| r.status == ramp::api::AnalysisPhase::Failed),
        "{recorded:?}"
    );
}

#[test]
fn an_inconclusive_analysis_step_pauses_until_promoted() {
    let (mut world, _, _) = analysis_world(ANALYSIS_STEPS, ramp::api::AnalysisPhase::Inconclusive);
    run_until(&mut world, TICK, 200, |w| phase(w).0 == "Paused");
    assert_eq!(
        phase(&world),
        ("Paused".into(), "InconclusiveAnalysisRun".into())
    );
    let s = status(&world);
    assert_eq!(s.current_step_index, Some(1));
    assert!(s.controller_pause);
    assert!(!s.abort);
    // Held while nobody acts.
    for _ in 0..40 {
        step(&mut world, TICK);
    }
    assert_eq!(
        phase(&world),
        ("Paused".into(), "InconclusiveAnalysisRun".into())
    );
    assert_eq!(counts(&world), (1, 4));
    // `kubectl ramp promote` on an inconclusive step run (reference 7): clears the pause, skips the step.
    world.update_status(|s| {
        s.pause_conditions.clear();
        s.controller_pause = false;
        s.current_step_index = Some(2);
    });
    run_until(&mut world, TICK, 200, |w| paused_at_step(w, 3));
    assert_eq!(counts(&world), (2, 3));
    assert!(!status(&world).abort);
}

#[test]
fn background_analysis_starts_at_its_starting_step_and_aborts_on_failure() {
    let mut rollout = basic_canary(
        5,
        "[{setWeight: 20}, {pause: {duration: 2s}}, {setWeight: 40}, {pause: {}}]",
    );
    rollout.spec.strategy.canary.as_mut().unwrap().analysis = Some(
        serde_norway::from_str("{templates: [{templateName: success-rate}], startingStep: 2}")
            .unwrap(),
    );
    let mut world = World::new(rollout, t0());
    world
        .observed
        .analysis_templates
        .insert("success-rate".into(), success_rate_template());
    world.analysis_duration = SignedDuration::from_secs(1000);
    settle(&mut world, SignedDuration::from_secs(1), 100);
    assert!(
        world.observed.analysis_runs.is_empty(),
        "no run on the initial deploy"
    );
    let v1 = status(&world).stable_rs;
    world.set_image("demo:green");
    let mut run_created_at_index = None;
    run_until(&mut world, TICK, 300, |w| {
        if run_created_at_index.is_none() && !w.observed.analysis_runs.is_empty() {
            run_created_at_index = status(w).current_step_index;
        }
        paused_at_step(w, 3)
    });
    assert_eq!(run_created_at_index, Some(2));
    let v2 = status(&world).current_pod_hash;
    assert_eq!(world.observed.analysis_runs.len(), 1);
    let run = world.observed.analysis_runs[0].clone();
    assert_eq!(run.name, format!("demo-{v2}-2"));
    assert_eq!(run.rollout_type, "Background");
    assert_eq!(
        status(&world)
            .canary
            .current_background_analysis_run_status
            .map(|r| r.name),
        Some(run.name.clone())
    );

    // The background run fails: the rollout aborts.
    world.analysis_outcome = ramp::api::AnalysisPhase::Failed;
    world.analysis_duration = SignedDuration::ZERO;
    world.advance(SignedDuration::ZERO);
    run_until(&mut world, TICK, 20, |w| status(w).abort);
    settle(&mut world, TICK, 200);
    assert_eq!(
        phase(&world).1,
        "RolloutAborted: Rollout aborted update to revision 2: Background analysis phase error/failed: Metric \"success-rate\" assessed Failed due to failed (1) > failureLimit (0)"
    );
    assert_eq!(counts(&world), (0, 5));
    assert_eq!(status(&world).stable_rs, v1);
}

#[test]
fn background_analysis_is_terminated_when_the_rollout_is_promoted() {
    let mut rollout = basic_canary(5, "[{setWeight: 20}, {pause: {}}]");
    rollout.spec.strategy.canary.as_mut().unwrap().analysis =
        Some(serde_norway::from_str("{templates: [{templateName: success-rate}]}").unwrap());
    let mut world = World::new(rollout, t0());
    world
        .observed
        .analysis_templates
        .insert("success-rate".into(), success_rate_template());
    world.analysis_duration = SignedDuration::from_secs(1000);
    settle(&mut world, SignedDuration::from_secs(1), 100);
    world.set_image("demo:green");
    run_until(&mut world, TICK, 200, |w| paused_at_step(w, 1));
    assert_eq!(world.observed.analysis_runs.len(), 1);
    assert!(!world.observed.analysis_runs[0].terminating);
    world.update_status(|s| s.pause_conditions.clear());
    run_until(&mut world, TICK, 200, |w| phase(w).0 == "Healthy");
    settle(&mut world, TICK, 50);
    assert!(world.observed.analysis_runs[0].terminating);
    assert!(
        status(&world)
            .canary
            .current_background_analysis_run_status
            .is_none()
    );
}

#[test]
fn revision_history_limit_deletes_the_oldest_scaled_down_replica_sets() {
    let mut rollout = basic_canary(2, "[]");
    rollout.spec.revision_history_limit = Some(1);
    let mut world = World::new(rollout, t0());
    settle(&mut world, SignedDuration::from_secs(1), 100);
    let mut hashes = vec![status(&world).stable_rs];
    for image in ["demo:v2", "demo:v3", "demo:v4"] {
        world.set_image(image);
        run_until(&mut world, TICK, 200, |w| {
            phase(w).0 == "Healthy" && status(w).stable_rs != *hashes.last().unwrap()
        });
        settle(&mut world, TICK, 100);
        hashes.push(status(&world).stable_rs);
    }
    let left: Vec<String> = world
        .observed
        .replica_sets
        .iter()
        .map(|rs| rs.pod_template_hash.clone())
        .collect();
    // The stable (V4) and one old ReplicaSet (the newest, V3) remain.
    assert_eq!(left.len(), 2, "{left:?}");
    assert!(left.contains(&hashes[3]));
    assert!(left.contains(&hashes[2]));
    assert_eq!(rs(&world, &hashes[2]).unwrap().replicas, 0);
}

#[test]
fn a_replica_set_deleted_for_the_history_limit_takes_its_unfinished_analysis_runs_along() {
    // Reference 4.16: the ReplicaSets deleted past revisionHistoryLimit lose their AnalysisRuns too. A run
    // asked to terminate whose analysis controller has not finished it yet must not outlive them.
    let (mut world, _, v2) = analysis_world(ANALYSIS_STEPS, ramp::api::AnalysisPhase::Successful);
    world.rollout.spec.revision_history_limit = Some(0);
    world.analysis_duration = SignedDuration::from_secs(1000);
    run_until(&mut world, TICK, 200, |w| {
        !w.observed.analysis_runs.is_empty()
    });
    world.update_status(|s| s.abort = true);
    settle(&mut world, TICK, 100);
    assert_eq!(phase(&world).0, "Degraded");
    let run = world.observed.analysis_runs[0].name.clone();
    // Termination requested, not yet acted on.
    world.observed.analysis_runs[0].phase = Some(ramp::api::AnalysisPhase::Running);
    world.set_image("demo:blue-again");
    let v2_name = rs(&world, &v2).map(|r| r.name.clone()).unwrap_or_default();
    for _ in 0..200 {
        let plan = world.reconcile();
        let deletes_rs = plan
            .ops
            .iter()
            .any(|op| matches!(op, ramp::plan::Op::DeleteReplicaSet { name } if *name == v2_name));
        if deletes_rs {
            assert!(
                plan.ops.iter().any(
                    |op| matches!(op, ramp::plan::Op::DeleteAnalysisRun { name } if *name == run)
                ),
                "{:#?}",
                plan.ops
            );
            return;
        }
        world.advance(TICK);
    }
    panic!("the aborted ReplicaSet {v2_name} was never deleted");
}

#[test]
fn abort_retry_promote_emits_the_reference_event_sequence() {
    // e2e TestRolloutAbortRetryPromote (reference 4.20), one replica, setWeight 50 then an indefinite
    // pause. `RolloutAddedToInformer` is the controller's informer event, not a planner decision, so
    // it is not expected here.
    let mut world = World::new(basic_canary(1, "[{setWeight: 50}, {pause: {}}]"), t0());
    settle(&mut world, TICK, 100);
    world.set_image("demo:green");
    settle(&mut world, TICK, 100);
    assert!(paused_at_step(&world, 1));
    world.update_status(|s| s.abort = true);
    settle(&mut world, TICK, 100);
    assert_eq!(phase(&world).0, "Degraded");
    world.update_status(|s| s.abort = false);
    settle(&mut world, TICK, 100);
    assert!(paused_at_step(&world, 1));
    world.update_status(|s| s.pause_conditions.clear());
    settle(&mut world, TICK, 100);
    assert_eq!(phase(&world).0, "Healthy");

    let reasons = event_reasons(&world);
    let scaling: Vec<String> = event_messages(&world, "ScalingReplicaSet");
    assert_eq!(
        reasons,
        vec![
            "RolloutUpdated",
            "NewReplicaSetCreated",
            "RolloutNotCompleted",
            "ScalingReplicaSet",
            "RolloutCompleted",
            "RolloutUpdated",
            "NewReplicaSetCreated",
            "RolloutNotCompleted",
            "ScalingReplicaSet",
            "RolloutStepCompleted",
            "RolloutPaused",
            "ScalingReplicaSet",
            "RolloutAborted",
            "ScalingReplicaSet",
            "RolloutStepCompleted",
            "RolloutPaused",
            "RolloutStepCompleted",
            "RolloutResumed",
            "ScalingReplicaSet",
            "RolloutCompleted",
        ],
        "scaling events: {scaling:#?}"
    );
    let v2 = status(&world).stable_rs;
    assert!(scaling[2].starts_with(&format!(
        "Scaled down ReplicaSet demo-{v2} (revision 2) from 1 to 0"
    )));
    assert!(scaling[3].starts_with(&format!(
        "Scaled up ReplicaSet demo-{v2} (revision 2) from 0 to 1"
    )));
    assert!(scaling[4].starts_with("Scaled down ReplicaSet demo-"));
    assert!(!scaling[4].contains(&v2));
}

#[test]
fn stable_service_always_selects_available_pods_through_the_end_of_a_basic_canary() {
    let mut world = World::new(with_services(STEPS), t0());
    settle(&mut world, TICK, 100);
    world.set_image("demo:green");
    world.pod_ready_delay = SignedDuration::from_secs(3);
    for _ in 0..400 {
        let plan = world.reconcile();
        if status(&world)
            .pause_conditions
            .iter()
            .any(|p| p.reason == "CanaryPauseStep")
            && plan.requeue_after.is_none()
        {
            world.update_status(|s| s.pause_conditions.clear());
        }
        let selected = service_hash(&world, "demo-stable").expect("stable Service selects a hash");
        let available = rs(&world, &selected).map_or(0, |rs| rs.available_replicas);
        assert!(
            available > 0,
            "the stable Service selects {selected}, which has no available pod: {:#?}",
            world.observed.replica_sets
        );
        if phase(&world).0 == "Healthy"
            && status(&world).stable_rs == status(&world).current_pod_hash
        {
            let new = status(&world).current_pod_hash;
            assert_eq!(service_hash(&world, "demo-stable"), Some(new));
            return;
        }
        world.advance(TICK);
    }
    panic!("the release did not finish: {:#?}", world.rollout.status);
}

/// A Rollout that Argo Rollouts ran before: its ReplicaSet carries Argo's pod-template hash, which Ramp
/// does not reproduce byte for byte (Argo hashes Go's JSON). Ramp finds it by its template and carries
/// on with it (reference 3.1).
fn handed_over_from_argo(world: &World) -> (ramp::api::Rollout, ramp::plan::Observed) {
    const ARGO_HASH: &str = "5d8f7b6c9";
    let ramp_hash = status(world).current_pod_hash;
    let mut observed = world.observed.clone();
    let rs = &mut observed.replica_sets[0];
    rs.name = format!("demo-{ARGO_HASH}");
    // Its template carries Argo's hash label, which the template's identity leaves out by definition.
    rs.pod_template_hash = ARGO_HASH.into();
    let mut rollout = world.rollout.clone();
    let status = rollout.status.as_mut().expect("settled status");
    assert_ne!(status.stable_rs, ARGO_HASH, "{ramp_hash}");
    status.stable_rs = ARGO_HASH.into();
    status.current_pod_hash = ARGO_HASH.into();
    (rollout, observed)
}

#[test]
fn a_replica_set_with_argos_hash_and_the_same_template_is_adopted_not_recreated() {
    let mut world = World::new(basic_canary(3, "[{setWeight: 50}, {pause: {}}]"), t0());
    settle(&mut world, TICK, 100);
    let (rollout, observed) = handed_over_from_argo(&world);

    let plan = ramp::plan::plan(&rollout, &observed, world.now);
    assert!(
        !plan.ops.iter().any(|op| matches!(
            op,
            ramp::plan::Op::CreateReplicaSet(_) | ramp::plan::Op::ScaleReplicaSet { .. }
        )),
        "adopted as it is: {:?}",
        plan.ops
    );
    assert_eq!(plan.status.current_pod_hash, "5d8f7b6c9");
    assert_eq!(plan.status.stable_rs, "5d8f7b6c9");
    assert_eq!(plan.status.phase, "Healthy");

    // A different template is a new revision: a ReplicaSet of Ramp's own hash is created beside it.
    let mut changed = rollout.clone();
    let pod_spec = changed.spec.template.as_mut().and_then(|t| t.spec.as_mut());
    pod_spec.expect("pod spec").containers[0].image = Some("demo:green".into());
    let plan = ramp::plan::plan(&changed, &observed, world.now);
    let created: Vec<String> = plan
        .ops
        .iter()
        .filter_map(|op| match op {
            ramp::plan::Op::CreateReplicaSet(new) => Some(new.name.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(created.len(), 1, "{:?}", plan.ops);
    assert_ne!(created[0], "demo-5d8f7b6c9");
    assert_eq!(
        plan.status.stable_rs, "5d8f7b6c9",
        "the adopted set stays stable"
    );
}
