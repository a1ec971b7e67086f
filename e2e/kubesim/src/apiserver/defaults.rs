//! The defaults kube-apiserver fills in when it decodes a built-in object (`SetDefaults_*` of `k8s.io/api`):
//! a controller that copies a pod template into a ReplicaSet reads back more than it wrote, as on a real
//! cluster. Only the defaults of the kinds kubesim simulates are applied; admission plugins (service account,
//! default tolerations, priority) add nothing here.

use serde_json::{Map, Value, json};

use crate::registry::ResourceType;

/// Fills the defaults of a built-in object in place; other kinds are left alone.
pub(super) fn apply(rt: &ResourceType, obj: &mut Value) {
    if rt.custom {
        return;
    }
    match (rt.group.as_str(), rt.kind.as_str()) {
        ("", "Pod") => {
            let spec = object_at(obj, "spec");
            pod_spec(spec);
            or_insert(spec, "enableServiceLinks", json!(true));
        }
        ("apps", "Deployment") => {
            let spec = object_at(obj, "spec");
            deployment(spec);
            template(spec);
        }
        ("apps", "ReplicaSet") => {
            let spec = object_at(obj, "spec");
            or_insert(spec, "replicas", json!(1));
            template(spec);
        }
        ("batch", "Job") => {
            let spec = object_at(obj, "spec");
            job(spec);
            template(spec);
        }
        ("", "Service") => service(object_at(obj, "spec")),
        _ => {}
    }
}

/// The object under `key`, made an object if it is missing or of another type.
fn object_at<'a>(parent: &'a mut Value, key: &str) -> &'a mut Map<String, Value> {
    if !parent.is_object() {
        *parent = json!({});
    }
    let map = parent.as_object_mut().expect("just made an object");
    let child = map.entry(key).or_insert_with(|| json!({}));
    if !child.is_object() {
        *child = json!({});
    }
    child.as_object_mut().expect("just made an object")
}

/// Sets `key` unless it holds a non-null value.
fn or_insert(map: &mut Map<String, Value>, key: &str, value: Value) {
    let entry = map.entry(key).or_insert(Value::Null);
    if entry.is_null() {
        *entry = value;
    }
}

/// Sets `key` unless it holds a non-empty string.
fn or_insert_str(map: &mut Map<String, Value>, key: &str, value: &str) {
    if map
        .get(key)
        .and_then(Value::as_str)
        .is_none_or(str::is_empty)
    {
        map.insert(key.into(), json!(value));
    }
}

/// Applies `f` to every object of the array at `key`.
fn each(map: &mut Map<String, Value>, key: &str, f: impl Fn(&mut Map<String, Value>)) {
    if let Some(items) = map.get_mut(key).and_then(Value::as_array_mut) {
        items
            .iter_mut()
            .filter_map(Value::as_object_mut)
            .for_each(f);
    }
}

fn template(workload_spec: &mut Map<String, Value>) {
    let Some(template) = workload_spec.get_mut("template").filter(|t| t.is_object()) else {
        return;
    };
    pod_spec(object_at(template, "spec"));
}

fn deployment(spec: &mut Map<String, Value>) {
    or_insert(spec, "replicas", json!(1));
    or_insert(spec, "revisionHistoryLimit", json!(10));
    or_insert(spec, "progressDeadlineSeconds", json!(600));
    let strategy = spec.entry("strategy").or_insert_with(|| json!({}));
    let Some(strategy) = strategy.as_object_mut() else {
        return;
    };
    or_insert_str(strategy, "type", "RollingUpdate");
    if strategy.get("type").and_then(Value::as_str) == Some("RollingUpdate") {
        let rolling = strategy.entry("rollingUpdate").or_insert_with(|| json!({}));
        if let Some(rolling) = rolling.as_object_mut() {
            or_insert(rolling, "maxUnavailable", json!("25%"));
            or_insert(rolling, "maxSurge", json!("25%"));
        }
    }
}

fn job(spec: &mut Map<String, Value>) {
    let completions = spec.get("completions").is_some_and(|c| !c.is_null());
    if !completions && spec.get("parallelism").is_none_or(Value::is_null) {
        spec.insert("completions".into(), json!(1));
        spec.insert("parallelism".into(), json!(1));
    }
    or_insert(spec, "parallelism", json!(1));
    or_insert(spec, "backoffLimit", json!(6));
    or_insert_str(spec, "completionMode", "NonIndexed");
    or_insert(spec, "suspend", json!(false));
}

fn service(spec: &mut Map<String, Value>) {
    let external_name = spec.get("type").and_then(Value::as_str) == Some("ExternalName");
    or_insert_str(spec, "type", "ClusterIP");
    or_insert_str(spec, "sessionAffinity", "None");
    if !external_name {
        or_insert(spec, "ipFamilies", json!(["IPv4"]));
        or_insert_str(spec, "ipFamilyPolicy", "SingleStack");
        or_insert_str(spec, "internalTrafficPolicy", "Cluster");
    }
    each(spec, "ports", |port| {
        or_insert_str(port, "protocol", "TCP");
        if port.get("targetPort").is_none_or(Value::is_null)
            && let Some(number) = port.get("port").cloned()
        {
            port.insert("targetPort".into(), number);
        }
    });
}

fn pod_spec(spec: &mut Map<String, Value>) {
    or_insert_str(spec, "dnsPolicy", "ClusterFirst");
    or_insert_str(spec, "restartPolicy", "Always");
    or_insert(spec, "securityContext", json!({}));
    or_insert(spec, "terminationGracePeriodSeconds", json!(30));
    or_insert_str(spec, "schedulerName", "default-scheduler");
    each(spec, "initContainers", container);
    each(spec, "containers", container);
    each(spec, "volumes", volume);
}

fn container(container: &mut Map<String, Value>) {
    let image = container.get("image").and_then(Value::as_str).unwrap_or("");
    let policy = if pulls_always(image) {
        "Always"
    } else {
        "IfNotPresent"
    };
    or_insert_str(container, "imagePullPolicy", policy);
    or_insert_str(container, "terminationMessagePath", "/dev/termination-log");
    or_insert_str(container, "terminationMessagePolicy", "File");
    each(container, "ports", |port| {
        or_insert_str(port, "protocol", "TCP")
    });
    for probe in ["livenessProbe", "readinessProbe", "startupProbe"] {
        if let Some(probe) = container.get_mut(probe).and_then(Value::as_object_mut) {
            or_insert(probe, "timeoutSeconds", json!(1));
            or_insert(probe, "periodSeconds", json!(10));
            or_insert(probe, "successThreshold", json!(1));
            or_insert(probe, "failureThreshold", json!(3));
            if let Some(get) = probe.get_mut("httpGet").and_then(Value::as_object_mut) {
                or_insert_str(get, "path", "/");
                or_insert_str(get, "scheme", "HTTP");
            }
        }
    }
}

/// `imagePullPolicy` defaults to Always for an untagged or `:latest` image without a digest.
fn pulls_always(image: &str) -> bool {
    if image.contains('@') {
        return false;
    }
    let last = image.rsplit('/').next().unwrap_or(image);
    match last.split_once(':') {
        Some((_, tag)) => tag == "latest",
        None => true,
    }
}

fn volume(volume: &mut Map<String, Value>) {
    for source in ["configMap", "secret", "projected", "downwardAPI"] {
        if let Some(source) = volume.get_mut(source).and_then(Value::as_object_mut) {
            or_insert(source, "defaultMode", json!(420));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::Registry;

    fn builtin(group: &str, plural: &str) -> ResourceType {
        let version = if group == "autoscaling" { "v2" } else { "v1" };
        (*Registry::with_builtins()
            .get(group, version, plural)
            .unwrap())
        .clone()
    }

    #[test]
    fn deployments_and_their_templates_are_defaulted() {
        let mut d = json!({"spec": {"selector": {}, "template": {"spec": {"containers": [
            {"name": "a", "image": "nginx", "ports": [{"containerPort": 80}]},
            {"name": "b", "image": "registry:5000/app:1.2", "imagePullPolicy": "Never"},
        ]}}}});
        apply(&builtin("apps", "deployments"), &mut d);
        let spec = &d["spec"];
        assert_eq!(spec["replicas"], 1);
        assert_eq!(spec["revisionHistoryLimit"], 10);
        assert_eq!(spec["progressDeadlineSeconds"], 600);
        assert_eq!(
            spec["strategy"],
            json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}})
        );
        let pod = &spec["template"]["spec"];
        assert_eq!(pod["restartPolicy"], "Always");
        assert_eq!(pod["terminationGracePeriodSeconds"], 30);
        assert_eq!(pod["schedulerName"], "default-scheduler");
        assert_eq!(pod["containers"][0]["imagePullPolicy"], "Always");
        assert_eq!(pod["containers"][0]["ports"][0]["protocol"], "TCP");
        assert_eq!(pod["containers"][1]["imagePullPolicy"], "Never");
        assert_eq!(
            pod["containers"][1]["terminationMessagePath"],
            "/dev/termination-log"
        );
        assert!(pod.get("enableServiceLinks").is_none(), "pods only");

        let before = d.clone();
        apply(&builtin("apps", "deployments"), &mut d);
        assert_eq!(d, before, "defaulting is idempotent");
    }

    #[test]
    fn recreate_deployments_get_no_rolling_update() {
        let mut d = json!({"spec": {"strategy": {"type": "Recreate"}}});
        apply(&builtin("apps", "deployments"), &mut d);
        assert_eq!(d["spec"]["strategy"], json!({"type": "Recreate"}));
    }

    #[test]
    fn service_ports_and_job_counts() {
        let mut s = json!({"spec": {"ports": [{"port": 80}, {"port": 443, "targetPort": "https", "protocol": "UDP"}]}});
        apply(&builtin("", "services"), &mut s);
        assert_eq!(s["spec"]["ports"][0]["targetPort"], 80);
        assert_eq!(s["spec"]["ports"][0]["protocol"], "TCP");
        assert_eq!(s["spec"]["ports"][1]["targetPort"], "https");
        assert_eq!(s["spec"]["ports"][1]["protocol"], "UDP");
        assert_eq!(s["spec"]["ipFamilies"], json!(["IPv4"]));

        let mut j =
            json!({"spec": {"template": {"spec": {"restartPolicy": "Never", "containers": []}}}});
        apply(&builtin("batch", "jobs"), &mut j);
        assert_eq!(
            (
                &j["spec"]["completions"],
                &j["spec"]["parallelism"],
                &j["spec"]["backoffLimit"]
            ),
            (&json!(1), &json!(1), &json!(6))
        );
        assert_eq!(j["spec"]["template"]["spec"]["restartPolicy"], "Never");
    }

    #[test]
    fn image_pull_policy_follows_the_tag() {
        assert!(pulls_always("nginx"));
        assert!(pulls_always("nginx:latest"));
        assert!(pulls_always("localhost:5000/nginx"));
        assert!(!pulls_always("localhost:5000/nginx:1"));
        assert!(!pulls_always("nginx@sha256:abc"));
    }
}
