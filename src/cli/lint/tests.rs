use super::*;

const SERVICES: &str = "---\napiVersion: v1\nkind: Service\nmetadata: {name: demo-canary}\nspec:\n  selector: {app: demo}\n  ports: [{port: 80}]\n---\napiVersion: v1\nkind: Service\nmetadata: {name: demo-stable}\nspec:\n  selector: {app: demo}\n  ports: [{port: 80}]\n";

fn rollout(strategy: &str) -> String {
    format!(
        "apiVersion: argoproj.io/v1alpha1\nkind: Rollout\nmetadata: {{name: demo}}\nspec:\n  replicas: 2\n  selector: {{matchLabels: {{app: demo}}}}\n  template:\n    metadata: {{labels: {{app: demo}}}}\n    spec: {{containers: [{{name: app, image: 'a:1'}}]}}\n  strategy:\n{strategy}"
    )
}

#[test]
fn the_examples_are_clean() {
    for example in [
        "rollout-canary.yaml",
        "rollout-canary-services.yaml",
        "rollout-bluegreen.yaml",
        "analysis-templates.yaml",
    ] {
        let text =
            std::fs::read_to_string(format!("{}/examples/{example}", env!("CARGO_MANIFEST_DIR")))
                .expect("example exists");
        assert_eq!(lint(&text), Vec::<Problem>::new(), "{example}");
    }
}

#[test]
fn unknown_fields_are_errors_with_their_path() {
    let text =
        rollout("    canary:\n      steps: [{setWeight: 20, pasue: {}}]\n      maxSurgee: 1\n");
    let messages: Vec<String> = lint(&text).iter().map(ToString::to_string).collect();
    assert_eq!(
        messages,
        [
            "Rollout \"demo\": spec.strategy.canary.maxSurgee: unknown field",
            "Rollout \"demo\": spec.strategy.canary.steps[0].pasue: unknown field",
        ]
    );
}

#[test]
fn unknown_fields_inside_the_pod_template_are_found_too() {
    let text = rollout("    canary: {}\n")
        .replace("image: 'a:1'", "image: 'a:1', imagePullPolicyy: Always");
    let messages: Vec<String> = lint(&text).iter().map(|p| p.message.clone()).collect();
    assert_eq!(
        messages,
        ["spec.template.spec.containers[0].imagePullPolicyy: unknown field"]
    );
}

#[test]
fn every_validation_problem_is_listed() {
    let text = rollout("    canary:\n      steps: [{setWeight: 120}, {setWeight: -1}]\n");
    let messages: Vec<String> = lint(&text).iter().map(|p| p.message.clone()).collect();
    assert_eq!(messages.len(), 2, "{messages:?}");
    assert!(
        messages[0].starts_with("spec.strategy.canary.steps[0].setWeight: Invalid value: 120"),
        "{messages:?}"
    );
    assert!(
        messages[1].starts_with("spec.strategy.canary.steps[1].setWeight: Invalid value: -1"),
        "{messages:?}"
    );
}

#[test]
fn services_in_the_file_are_checked_against_the_rollout() {
    let strategy =
        "    canary:\n      canaryService: demo-canary\n      stableService: demo-stable\n";
    let clean = format!("{}{SERVICES}", rollout(strategy));
    assert_eq!(lint(&clean), Vec::<Problem>::new());
    let wrong = format!(
        "{}{}",
        rollout(strategy),
        SERVICES.replace("app: demo}", "app: other}")
    );
    let problems = lint(&wrong);
    assert!(
        !problems.is_empty(),
        "a Service that selects other pods is a problem"
    );
    assert!(
        problems.iter().all(|p| p.object == "Rollout \"demo\""),
        "{problems:?}"
    );
}

#[test]
fn type_errors_name_their_field() {
    let text = rollout("    canary: {}\n").replace("replicas: 2", "replicas: two");
    let messages: Vec<String> = lint(&text).iter().map(|p| p.message.clone()).collect();
    assert_eq!(messages.len(), 1, "{messages:?}");
    assert!(messages[0].starts_with("spec.replicas: "), "{messages:?}");
}
