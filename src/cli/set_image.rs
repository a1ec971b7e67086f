//! `set image NAME CONTAINER=IMAGE`: read the rollout as it is stored, change the image of the named
//! container (`*` for every container), and write the whole object back, retrying on a conflict as
//! Argo's plugin does (reference §7).

use kube::api::{Api, ApiResource, DynamicObject, PostParams};
use serde_json::Value;

use super::cluster::{CliError, Cluster, is_conflict};
use crate::api::Rollout;

/// How many times a conflicting write is tried again.
pub const CONFLICT_RETRIES: usize = 5;

/// Parses `CONTAINER=IMAGE`.
pub fn parse_assignment(text: &str) -> Result<(String, String), CliError> {
    match text.split_once('=') {
        Some((container, image)) if !container.is_empty() && !image.is_empty() => {
            Ok((container.to_string(), image.to_string()))
        }
        _ => Err(CliError::Invalid(format!(
            "{text:?} is not CONTAINER=IMAGE; e.g. `kubectl ramp set image demo app=repo/app:v2`, or `*=repo/app:v2` for every container"
        ))),
    }
}

/// Sets `image` on the containers named `container` (or all, for `*`) among the init, regular and
/// ephemeral containers of a pod spec. Returns whether any container matched.
pub fn set_image(pod_spec: &mut Value, container: &str, image: &str) -> bool {
    let mut matched = false;
    for list in ["initContainers", "containers", "ephemeralContainers"] {
        let Some(items) = pod_spec.get_mut(list).and_then(Value::as_array_mut) else {
            continue;
        };
        for item in items {
            if container == "*" || item.get("name").and_then(Value::as_str) == Some(container) {
                item["image"] = Value::String(image.to_string());
                matched = true;
            }
        }
    }
    matched
}

pub async fn run(cluster: &Cluster, name: &str, assignment: &str) -> Result<String, CliError> {
    let (container, image) = parse_assignment(assignment)?;
    let resource = ApiResource::erase::<Rollout>(&());
    let api: Api<DynamicObject> =
        Api::namespaced_with(cluster.client.clone(), &cluster.namespace, &resource);
    let mut attempt = 0;
    loop {
        attempt += 1;
        let mut rollout = match api.get(name).await {
            Ok(rollout) => rollout,
            Err(error) => {
                return Err(cluster
                    .rollout_error(name, "cannot read the rollout", error)
                    .await);
            }
        };
        if rollout.data["spec"].get("workloadRef").is_some() {
            return Err(CliError::Invalid(format!(
                "rollout '{name}' takes its pod template from spec.workloadRef; set the image on that workload instead"
            )));
        }
        let pod_spec = &mut rollout.data["spec"]["template"]["spec"];
        if !set_image(pod_spec, &container, &image) {
            return Err(CliError::Invalid(format!(
                "unable to find container named \"{container}\" in rollout '{name}'"
            )));
        }
        match api.replace(name, &PostParams::default(), &rollout).await {
            Ok(_) => return Ok(format!("rollout \"{name}\" image updated")),
            Err(error) if is_conflict(&error) && attempt <= CONFLICT_RETRIES => continue,
            Err(error) => {
                return Err(cluster
                    .rollout_error(name, "cannot update the image", error)
                    .await);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn sets_the_named_container_only() {
        let mut spec = json!({
            "initContainers": [{"name": "init", "image": "busybox"}],
            "containers": [{"name": "app", "image": "a:1"}, {"name": "sidecar", "image": "s:1"}]
        });
        assert!(set_image(&mut spec, "app", "a:2"));
        assert_eq!(
            spec,
            json!({
                "initContainers": [{"name": "init", "image": "busybox"}],
                "containers": [{"name": "app", "image": "a:2"}, {"name": "sidecar", "image": "s:1"}]
            })
        );
    }

    #[test]
    fn star_sets_every_container_of_every_kind() {
        let mut spec = json!({
            "initContainers": [{"name": "init", "image": "busybox"}],
            "containers": [{"name": "app", "image": "a:1"}],
            "ephemeralContainers": [{"name": "debug", "image": "d:1"}]
        });
        assert!(set_image(&mut spec, "*", "x:9"));
        for list in ["initContainers", "containers", "ephemeralContainers"] {
            assert_eq!(spec[list][0]["image"], "x:9");
        }
    }

    #[test]
    fn an_unknown_container_matches_nothing() {
        let mut spec = json!({"containers": [{"name": "app", "image": "a:1"}]});
        assert!(!set_image(&mut spec, "web", "a:2"));
        assert_eq!(spec["containers"][0]["image"], "a:1");
    }

    #[test]
    fn assignments_need_a_container_and_an_image() {
        assert_eq!(
            parse_assignment("app=repo/app:v2").ok(),
            Some(("app".into(), "repo/app:v2".into()))
        );
        assert!(parse_assignment("repo/app:v2").is_err());
        assert!(parse_assignment("app=").is_err());
    }
}
