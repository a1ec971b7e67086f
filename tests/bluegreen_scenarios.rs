//! Blue-green releases (reference section 5) driven through the planner and the pure world model.

mod support;

use jiff::SignedDuration;
use ramp::api::{AnalysisPhase, Rollout};
use ramp::plan::Op;
use ramp::sim::World;
use support::*;

const TICK: SignedDuration = SignedDuration::from_millis(250);

/// Three replicas behind `demo-active` and `demo-preview`; `strategy` is the rest of the blueGreen block.
fn blue_green(strategy: &str) -> Rollout {
    rollout(&format!(
        r#"
apiVersion: argoproj.io/v1alpha1
kind: Rollout
metadata: {{name: demo}}
spec:
  replicas: 3
  selector: {{matchLabels: {{app: demo}}}}
  template:
    metadata: {{labels: {{app: demo}}}}
    spec: {{containers: [{{name: app, image: "demo:blue"}}]}}
  strategy:
    blueGreen:
      activeService: demo-active
      previewService: demo-preview
      {strategy}
"#
    ))
}

/// A healthy world of `rollout` (with the `success-rate` template) and its V1 hash.
fn healthy(rollout: Rollout) -> (World, String) {
    let mut world = World::new(rollout, t0());
    world
        .observed
        .analysis_templates
        .insert("success-rate".into(), success_rate_template());
    settle(&mut world, TICK, 200);
    assert_eq!(phase(&world), ("Healthy".into(), String::new()));
    let v1 = status(&world).stable_rs;
    (world, v1)
}

/// Sets a new image and plans until its ReplicaSet exists; returns its hash.
fn new_image(world: &mut World, image: &str) -> String {
    let before: Vec<String> = world
        .observed
        .replica_sets
        .iter()
        .map(|rs| rs.pod_template_hash.clone())
        .collect();
    world.set_image(image);
    world.reconcile();
    world
        .observed
        .replica_sets
        .iter()
        .map(|rs| rs.pod_template_hash.clone())
        .find(|hash| !before.contains(hash))
        .expect("a new ReplicaSet")
}

fn paused_for(world: &World, reason: &str) -> bool {
    status(world)
        .pause_conditions
        .iter()
        .any(|p| p.reason == reason)
}

/// Plans until `done`, checking that no Service is ever switched to a ReplicaSet with no available pod.
fn run(world: &mut World, max_plans: usize, done: impl FnMut(&World) -> bool) {
    run_checking_switches(world, TICK, max_plans, done);
}

#[test]
fn initial_deploy_is_healthy_with_both_services_on_v1() {
    let (world, v1) = healthy(blue_green("autoPromotionEnabled: false"));
    let s = status(&world);
    assert_eq!(s.current_pod_hash, v1);
    assert_eq!(service_hash(&world, "demo-active"), Some(v1.clone()));
    assert_eq!(service_hash(&world, "demo-preview"), Some(v1.clone()));
    assert_eq!(s.blue_green.active_selector, v1);
    assert_eq!(s.blue_green.preview_selector, v1);
    assert_eq!(
        s.selector,
        format!("app=demo,rollouts-pod-template-hash={v1}")
    );
    assert_eq!(rs(&world, &v1).unwrap().replicas, 3);
    assert!(
        s.pause_conditions.is_empty(),
        "no pause on the first deploy"
    );
    assert!(s.current_step_index.is_none());
    assert_eq!(s.current_step_hash, "");
}

#[test]
fn a_new_image_goes_to_preview_and_pauses_with_active_unchanged() {
    let (mut world, v1) = healthy(blue_green("autoPromotionEnabled: false"));
    let v2 = new_image(&mut world, "demo:green");
    run(&mut world, 200, |w| paused_for(w, "BlueGreenPause"));
    settle(&mut world, TICK, 100);
    assert_eq!(phase(&world), ("Paused".into(), "BlueGreenPause".into()));
    assert_eq!(service_hash(&world, "demo-preview"), Some(v2.clone()));
    assert_eq!(service_hash(&world, "demo-active"), Some(v1.clone()));
    assert_eq!(rs(&world, &v2).unwrap().available_replicas, 3);
    assert_eq!(rs(&world, &v1).unwrap().replicas, 3);
    let s = status(&world);
    assert_eq!(s.stable_rs, v1);
    assert!(s.controller_pause);
    // Blue-green counts come from the active ReplicaSet.
    assert_eq!(s.available_replicas, 3);
    assert_eq!(s.hpa_replicas, 3);
    assert_eq!(s.blue_green.preview_selector, v2);
    assert_eq!(s.blue_green.active_selector, v1);
    // Held while nobody promotes.
    for _ in 0..100 {
        step(&mut world, TICK);
    }
    assert_eq!(service_hash(&world, "demo-active"), Some(v1));
    assert!(paused_for(&world, "BlueGreenPause"));
}

#[test]
fn promote_switches_active_and_scales_the_old_version_down_after_the_delay() {
    let (mut world, v1) = healthy(blue_green(
        "autoPromotionEnabled: false\n      scaleDownDelaySeconds: 10",
    ));
    let v2 = new_image(&mut world, "demo:green");
    run(&mut world, 200, |w| paused_for(w, "BlueGreenPause"));
    world.update_status(|s| s.pause_conditions.clear());
    run(&mut world, 20, |w| {
        service_hash(w, "demo-active").as_deref() == Some(v2.as_str())
    });
    assert!(event_messages(&world, "SwitchService").contains(&format!(
        "Switched selector for service 'demo-active' from '{v1}' to '{v2}'"
    )));
    // Promotion follows the switch; the old ReplicaSet gets a deadline 10 s out and keeps its pods.
    run(&mut world, 20, |w| {
        rs(w, &v1).unwrap().scale_down_deadline.is_some() && status(w).stable_rs == v2
    });
    let deadline = rs(&world, &v1).unwrap().scale_down_deadline.unwrap();
    assert_eq!(deadline, world.now + SignedDuration::from_secs(10));
    assert_eq!(rs(&world, &v1).unwrap().replicas, 3);
    assert!(
        event_messages(&world, "RolloutCompleted")
            .last()
            .unwrap()
            .ends_with(": Completed blue-green update")
    );
    let plan = world.reconcile();
    assert_eq!(
        plan.requeue_after,
        Some(std::time::Duration::try_from(deadline.duration_since(world.now)).unwrap())
    );
    run(&mut world, 200, |w| {
        let v1_rs = rs(w, &v1).unwrap();
        if w.now < deadline {
            assert_eq!(v1_rs.replicas, 3, "scaled down before the deadline");
        }
        v1_rs.replicas == 0
    });
    assert!(world.now >= deadline && world.now <= deadline + SignedDuration::from_secs(1));
    settle(&mut world, TICK, 100);
    assert_eq!(phase(&world), ("Healthy".into(), String::new()));
    assert_eq!(service_hash(&world, "demo-preview"), Some(v2.clone()));
    assert_eq!(status(&world).stable_rs, v2);
}

#[test]
fn auto_promotion_seconds_promotes_after_the_delay() {
    let (mut world, v1) = healthy(blue_green("autoPromotionSeconds: 5"));
    let v2 = new_image(&mut world, "demo:green");
    run(&mut world, 200, |w| paused_for(w, "BlueGreenPause"));
    let started = status(&world).pause_conditions[0].start_time.0;
    assert_eq!(phase(&world), ("Paused".into(), "BlueGreenPause".into()));
    run(&mut world, 200, |w| {
        let switched = service_hash(w, "demo-active").as_deref() == Some(v2.as_str());
        if switched {
            assert!(
                w.now >= started + SignedDuration::from_secs(5),
                "promoted too early"
            );
        } else {
            assert_eq!(service_hash(w, "demo-active"), Some(v1.clone()));
        }
        switched
    });
    assert!(world.now <= started + SignedDuration::from_secs(5) + TICK);
    settle(&mut world, TICK, 400);
    assert_eq!(phase(&world), ("Healthy".into(), String::new()));
    assert_eq!(status(&world).stable_rs, v2);
}

#[test]
fn preview_replica_count_runs_a_small_preview_until_promoted() {
    let (mut world, v1) = healthy(blue_green(
        "autoPromotionEnabled: false\n      previewReplicaCount: 1",
    ));
    let v2 = new_image(&mut world, "demo:green");
    run(&mut world, 200, |w| paused_for(w, "BlueGreenPause"));
    settle(&mut world, TICK, 100);
    assert_eq!(rs(&world, &v2).unwrap().replicas, 1);
    assert_eq!(rs(&world, &v1).unwrap().replicas, 3);
    assert_eq!(service_hash(&world, "demo-preview"), Some(v2.clone()));
    assert_eq!(service_hash(&world, "demo-active"), Some(v1.clone()));

    world.update_status(|s| s.pause_conditions.clear());
    run(&mut world, 200, |w| {
        let switched = service_hash(w, "demo-active").as_deref() == Some(v2.as_str());
        if switched {
            assert_eq!(
                rs(w, &v2).unwrap().available_replicas,
                3,
                "switched before full size"
            );
        }
        switched
    });
    settle(&mut world, TICK, 400);
    assert_eq!(phase(&world), ("Healthy".into(), String::new()));
    assert_eq!(rs(&world, &v2).unwrap().replicas, 3);
    assert!(!status(&world).blue_green.scale_up_preview_check_point);
}

#[test]
fn abort_keeps_active_on_stable_and_degrades() {
    let (mut world, v1) = healthy(blue_green(
        "autoPromotionEnabled: false\n      abortScaleDownDelaySeconds: 5",
    ));
    let v2 = new_image(&mut world, "demo:green");
    run(&mut world, 200, |w| paused_for(w, "BlueGreenPause"));
    world.update_status(|s| s.abort = true);
    world.reconcile();
    let s = status(&world);
    assert!(s.abort);
    assert!(s.pause_conditions.is_empty());
    assert_eq!(
        phase(&world),
        (
            "Degraded".into(),
            "RolloutAborted: Rollout aborted update to revision 2".into()
        )
    );
    // The preview keeps V2 for abortScaleDownDelaySeconds, then V2 goes to 0.
    let deadline = rs(&world, &v2)
        .unwrap()
        .scale_down_deadline
        .expect("a deadline");
    run(&mut world, 100, |w| {
        assert_eq!(service_hash(w, "demo-active"), Some(v1.clone()));
        if w.now < deadline {
            assert_eq!(rs(w, &v2).unwrap().replicas, 3);
        }
        rs(w, &v2).unwrap().replicas == 0
    });
    settle(&mut world, TICK, 100);
    assert_eq!(phase(&world).0, "Degraded");
    assert_eq!(service_hash(&world, "demo-active"), Some(v1.clone()));
    assert_eq!(rs(&world, &v1).unwrap().replicas, 3);
    assert_eq!(status(&world).stable_rs, v1);
}

fn scale_ops(plan: &ramp::plan::Plan) -> usize {
    plan.ops
        .iter()
        .filter(|op| matches!(op, Op::ScaleReplicaSet { .. }))
        .count()
}

#[test]
fn failing_pre_promotion_analysis_aborts_and_keeps_active_on_v1() {
    let (mut world, v1) = healthy(blue_green(
        "prePromotionAnalysis: {templates: [{templateName: success-rate}]}",
    ));
    world.analysis_outcome = AnalysisPhase::Failed;
    let v2 = new_image(&mut world, "demo:green");
    run(&mut world, 200, |w| {
        assert_eq!(service_hash(w, "demo-active"), Some(v1.clone()));
        status(w).abort
    });
    let run_state = world.observed.analysis_runs[0].clone();
    assert_eq!(run_state.name, format!("demo-{v2}-2-pre"));
    assert_eq!(run_state.rollout_type, "PrePromotion");
    settle(&mut world, TICK, 200);
    assert_eq!(service_hash(&world, "demo-active"), Some(v1.clone()));
    assert_eq!(status(&world).stable_rs, v1);
    assert_eq!(
        phase(&world),
        (
            "Degraded".into(),
            "RolloutAborted: Rollout aborted update to revision 2: Blue/green pre-promotion analysis phase error/failed: Metric \"success-rate\" assessed Failed due to failed (1) > failureLimit (0)".into()
        )
    );
    let plan = world.reconcile();
    assert_eq!(scale_ops(&plan), 0);
}

#[test]
fn passing_pre_promotion_analysis_lets_the_switch_happen() {
    let (mut world, v1) = healthy(blue_green(
        "prePromotionAnalysis: {templates: [{templateName: success-rate}]}",
    ));
    let v2 = new_image(&mut world, "demo:green");
    run(&mut world, 200, |w| {
        let switched = service_hash(w, "demo-active").as_deref() == Some(v2.as_str());
        if switched {
            let pre = status(w).blue_green.pre_promotion_analysis_run_status;
            assert_eq!(pre.map(|r| r.status), Some(AnalysisPhase::Successful));
        }
        switched
    });
    settle(&mut world, TICK, 400);
    assert_eq!(phase(&world), ("Healthy".into(), String::new()));
    assert_eq!(status(&world).stable_rs, v2);
    assert_eq!(rs(&world, &v1).unwrap().replicas, 0);
}

#[test]
fn failing_post_promotion_analysis_switches_active_back_to_v1() {
    let (mut world, v1) = healthy(blue_green(
        "postPromotionAnalysis: {templates: [{templateName: success-rate}]}",
    ));
    world.analysis_outcome = AnalysisPhase::Failed;
    let v2 = new_image(&mut world, "demo:green");
    run(&mut world, 200, |w| {
        service_hash(w, "demo-active").as_deref() == Some(v2.as_str())
    });
    // Not promoted while the post-promotion run measures.
    assert_eq!(status(&world).stable_rs, v1);
    run(&mut world, 200, |w| status(w).abort);
    run(&mut world, 100, |w| {
        service_hash(w, "demo-active").as_deref() == Some(v1.as_str())
    });
    settle(&mut world, TICK, 400);
    let run_state = world
        .observed
        .analysis_runs
        .iter()
        .find(|r| r.rollout_type == "PostPromotion")
        .unwrap();
    assert_eq!(run_state.name, format!("demo-{v2}-2-post"));
    assert_eq!(service_hash(&world, "demo-active"), Some(v1.clone()));
    assert_eq!(status(&world).stable_rs, v1);
    assert_eq!(rs(&world, &v1).unwrap().replicas, 3);
    assert_eq!(
        phase(&world),
        (
            "Degraded".into(),
            "RolloutAborted: Rollout aborted update to revision 2: Blue/green post-promotion analysis phase error/failed: Metric \"success-rate\" assessed Failed due to failed (1) > failureLimit (0)".into()
        )
    );
}
