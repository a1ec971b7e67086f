use super::*;

fn rollout(yaml: &str) -> Rollout {
    let base = "apiVersion: argoproj.io/v1alpha1\nkind: Rollout\nmetadata: {name: demo, namespace: default}\n";
    serde_norway::from_str(&format!("{base}{yaml}")).expect("fixture parses")
}

const CANARY: &str = "spec:\n  strategy:\n    canary:\n      steps: [{setWeight: 20}, {pause: {}}, {setWeight: 60}]\n";

fn parse(text: &str) -> Value {
    serde_json::from_str(text).expect("reference JSON")
}

#[test]
fn promote_at_a_canary_pause_clears_the_pause_conditions() {
    let ro = rollout(&format!(
        "{CANARY}status:\n  currentStepIndex: 1\n  controllerPause: true\n  pauseConditions: [{{reason: CanaryPauseStep, startTime: '2026-01-01T00:00:00Z'}}]\n"
    ));
    let patches = promote_patches(&ro, false);
    assert_eq!(
        patches.status,
        Some(parse(r#"{"status":{"pauseConditions":null}}"#))
    );
    assert_eq!(patches.spec, None);
    assert_eq!(
        patches.unified,
        Some(parse(r#"{"spec":{},"status":{"pauseConditions":null}}"#))
    );
}

#[test]
fn promote_of_a_running_canary_skips_the_current_step() {
    let ro = rollout(&format!("{CANARY}status:\n  currentStepIndex: 2\n"));
    let patches = promote_patches(&ro, false);
    assert_eq!(
        patches.status,
        Some(parse(
            r#"{"status":{"pauseConditions":null, "currentStepIndex":3}}"#
        ))
    );
    assert_eq!(
        patches.unified,
        Some(parse(
            r#"{"spec":{},"status":{"pauseConditions":null, "currentStepIndex":3}}"#
        ))
    );
}

#[test]
fn promote_past_the_last_step_keeps_the_index_at_the_number_of_steps() {
    let ro = rollout(&format!("{CANARY}status:\n  currentStepIndex: 3\n"));
    assert_eq!(
        promote_patches(&ro, false).status,
        Some(parse(
            r#"{"status":{"pauseConditions":null, "currentStepIndex":3}}"#
        ))
    );
}

#[test]
fn promote_of_an_inconclusive_step_analysis_resets_controller_pause_and_moves_on() {
    let ro = rollout(&format!(
        "{CANARY}status:\n  currentStepIndex: 1\n  controllerPause: true\n  pauseConditions: [{{reason: InconclusiveAnalysisRun, startTime: '2026-01-01T00:00:00Z'}}]\n  canary:\n    currentStepAnalysisRunStatus: {{name: demo-1, status: Inconclusive}}\n"
    ));
    let patches = promote_patches(&ro, false);
    assert_eq!(
        patches.status,
        Some(parse(
            r#"{"status":{"pauseConditions":null, "controllerPause":false, "currentStepIndex":2}}"#
        ))
    );
}

#[test]
fn promote_of_a_manually_paused_rollout_unpauses_the_spec_too() {
    let ro = rollout(
        "spec:\n  paused: true\n  strategy:\n    canary:\n      steps: [{setWeight: 20}, {pause: {}}]\nstatus:\n  currentStepIndex: 0\n",
    );
    let patches = promote_patches(&ro, false);
    assert_eq!(patches.spec, Some(parse(r#"{"spec":{"paused":false}}"#)));
    assert_eq!(
        patches.status,
        Some(parse(
            r#"{"status":{"pauseConditions":null, "currentStepIndex":1}}"#
        ))
    );
    assert_eq!(
        patches.unified,
        Some(parse(
            r#"{"spec":{"paused":false},"status":{"pauseConditions":null, "currentStepIndex":1}}"#
        ))
    );
}

#[test]
fn promote_of_a_paused_blue_green_clears_the_pause_and_of_a_running_one_sends_nothing() {
    let paused = rollout(
        "spec:\n  strategy:\n    blueGreen: {activeService: active}\nstatus:\n  controllerPause: true\n  pauseConditions: [{reason: BlueGreenPause, startTime: '2026-01-01T00:00:00Z'}]\n",
    );
    assert_eq!(
        promote_patches(&paused, false).status,
        Some(parse(r#"{"status":{"pauseConditions":null}}"#))
    );
    let running = rollout("spec:\n  strategy:\n    blueGreen: {activeService: active}\n");
    assert_eq!(promote_patches(&running, false), Patches::default());
}

#[test]
fn promote_of_a_canary_without_steps_and_not_paused_sends_nothing() {
    let ro = rollout("spec:\n  strategy:\n    canary: {}\n");
    assert_eq!(promote_patches(&ro, false), Patches::default());
}

#[test]
fn promote_full_sets_promote_full_unless_the_rollout_is_already_stable() {
    let ro = rollout(&format!(
        "{CANARY}status:\n  currentPodHash: new\n  stableRS: old\n"
    ));
    let patches = promote_patches(&ro, true);
    assert_eq!(
        patches.status,
        Some(parse(r#"{"status":{"promoteFull":true}}"#))
    );
    assert_eq!(patches.spec, None);
    let paused = rollout(
        "spec:\n  paused: true\n  strategy:\n    blueGreen: {activeService: active}\nstatus:\n  currentPodHash: new\n  stableRS: old\n",
    );
    let patches = promote_patches(&paused, true);
    assert_eq!(patches.spec, Some(parse(r#"{"spec":{"paused":false}}"#)));
    assert_eq!(
        patches.unified,
        Some(parse(
            r#"{"spec":{"paused":false},"status":{"promoteFull":true}}"#
        ))
    );
    let stable = rollout(&format!(
        "{CANARY}status:\n  currentPodHash: same\n  stableRS: same\n"
    ));
    assert_eq!(promote_patches(&stable, true), Patches::default());
}

#[test]
fn abort_and_retry_set_the_abort_flag_on_status() {
    let abort = abort_patches(true);
    assert_eq!(abort.status, Some(parse(r#"{"status":{"abort":true}}"#)));
    assert_eq!(abort.unified, Some(parse(r#"{"status":{"abort":true}}"#)));
    assert_eq!(abort.spec, None);
    assert_eq!(
        abort_patches(false).status,
        Some(parse(r#"{"status":{"abort":false}}"#))
    );
}

#[test]
fn pause_resume_restart_and_terminate_patch_the_spec() {
    assert_eq!(paused_patch(true), parse(r#"{"spec":{"paused":true}}"#));
    assert_eq!(paused_patch(false), parse(r#"{"spec":{"paused":false}}"#));
    let now: Timestamp = "2026-03-04T05:06:07.891Z".parse().expect("time");
    assert_eq!(
        restart_patch(now, SignedDuration::from_secs(10)),
        parse(r#"{"spec":{"restartAt":"2026-03-04T05:06:17Z"}}"#)
    );
    assert_eq!(terminate_patch(), parse(r#"{"spec":{"terminate":true}}"#));
}

#[test]
fn durations_print_as_go_prints_them() {
    assert_eq!(go_duration(SignedDuration::ZERO), "0s");
    assert_eq!(go_duration(SignedDuration::from_secs(10)), "10s");
    assert_eq!(go_duration(SignedDuration::from_secs(90)), "1m30s");
    assert_eq!(go_duration(SignedDuration::from_secs(3600)), "1h0m0s");
    assert_eq!(go_duration(SignedDuration::from_millis(500)), "500ms");
    assert_eq!(go_duration(SignedDuration::from_millis(1500)), "1.5s");
}
