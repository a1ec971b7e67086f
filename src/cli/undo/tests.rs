use super::*;

fn rollout(image: &str) -> Rollout {
    serde_norway::from_str(&format!(
        "apiVersion: argoproj.io/v1alpha1\nkind: Rollout\nmetadata: {{name: demo, namespace: default, uid: ro-uid}}\nspec:\n  selector: {{matchLabels: {{app: demo}}}}\n  template:\n    metadata: {{labels: {{app: demo}}}}\n    spec: {{containers: [{{name: app, image: '{image}'}}]}}\n  strategy: {{canary: {{}}}}\n"
    ))
    .expect("rollout fixture")
}

fn rs(revision: i64, image: &str, owner: &str) -> ReplicaSet {
    serde_norway::from_str(&format!(
        "apiVersion: apps/v1\nkind: ReplicaSet\nmetadata:\n  name: demo-{revision}\n  annotations: {{rollout.argoproj.io/revision: '{revision}'}}\n  ownerReferences: [{{apiVersion: argoproj.io/v1alpha1, kind: Rollout, name: demo, uid: {owner}, controller: true}}]\nspec:\n  selector: {{matchLabels: {{app: demo}}}}\n  template:\n    metadata: {{labels: {{app: demo, rollouts-pod-template-hash: h{revision}}}}}\n    spec: {{containers: [{{name: app, image: '{image}'}}]}}\n"
    ))
    .expect("rs fixture")
}

#[test]
fn undo_goes_back_to_the_previous_revision_without_the_hash_label() {
    let sets = [
        rs(1, "a:1", "ro-uid"),
        rs(3, "a:3", "ro-uid"),
        rs(2, "a:2", "ro-uid"),
    ];
    let outcome = undo(&rollout("a:3"), &sets, 0).expect("undo");
    let expected: Value = serde_json::from_str(
        r#"[{"op":"replace","path":"/spec/template","value":{"metadata":{"labels":{"app":"demo"}},"spec":{"containers":[{"name":"app","image":"a:2"}]}}}]"#,
    )
    .expect("json");
    assert_eq!(
        outcome,
        Undo::Patch {
            revision: 2,
            patch: expected
        }
    );
}

#[test]
fn undo_to_a_named_revision_and_to_an_unknown_one() {
    let sets = [rs(1, "a:1", "ro-uid"), rs(2, "a:2", "ro-uid")];
    let Ok(Undo::Patch { revision, .. }) = undo(&rollout("a:2"), &sets, 1) else {
        panic!("expected a patch");
    };
    assert_eq!(revision, 1);
    let error = undo(&rollout("a:2"), &sets, 7).expect_err("no revision 7");
    assert_eq!(
        error.to_string(),
        "unable to find specified revision 7 in history; revisions there: 2, 1"
    );
}

#[test]
fn undo_skips_when_the_template_already_matches() {
    let sets = [rs(1, "a:1", "ro-uid"), rs(2, "a:2", "ro-uid")];
    assert_eq!(
        undo(&rollout("a:1"), &sets, 1).expect("undo"),
        Undo::Skip { revision: 1 }
    );
}

#[test]
fn undo_ignores_replica_sets_of_other_owners() {
    let sets = [rs(1, "a:1", "other"), rs(2, "a:2", "ro-uid")];
    assert!(undo(&rollout("a:2"), &sets, 0).is_err());
}
