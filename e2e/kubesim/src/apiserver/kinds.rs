//! What particular kinds do on write, beyond generic storage: namespaces become Active, Services get a
//! cluster IP, pods start Pending, and CustomResourceDefinitions start (and stop) serving their resources.

use serde_json::{Value, json};

use super::write::{ensure_metadata, now_rfc3339};
use super::{ApiError, State, defaults, delete};
use crate::json::At;
use crate::registry::{self, ResourceType, StorageKey};
use crate::store::name_of;

pub(super) fn bootstrap_namespace(state: &mut State, name: &str) {
    let rv = state.store.next_rv();
    let ns = json!({
        "apiVersion": "v1", "kind": "Namespace",
        "metadata": {"name": name, "uid": format!("ns-{name}"), "resourceVersion": rv.to_string(),
            "creationTimestamp": now_rfc3339(), "labels": {"kubernetes.io/metadata.name": name}},
        "spec": {"finalizers": ["kubernetes"]},
        "status": {"phase": "Active"},
    });
    state.store.put(
        &StorageKey {
            group: String::new(),
            plural: "namespaces".into(),
        },
        ns,
        rv,
    );
}

fn is(rt: &ResourceType, group: &str, kind: &str) -> bool {
    !rt.custom && rt.group == group && rt.kind == kind
}

pub(super) fn on_create(
    state: &mut State,
    rt: &ResourceType,
    body: &mut Value,
) -> Result<(), ApiError> {
    defaults::apply(rt, body);
    validate_job(rt, body)?;
    if is(rt, "", "Namespace") {
        let name = name_of(body).to_string();
        let meta = ensure_metadata(body);
        let labels = meta.entry("labels").or_insert_with(|| json!({}));
        labels["kubernetes.io/metadata.name"] = json!(name);
        if body.at("/spec/finalizers").is_none() {
            body["spec"]["finalizers"] = json!(["kubernetes"]);
        }
        body["status"] = json!({"phase": "Active"});
    } else if is(rt, "", "Service") {
        default_service(state, body);
    } else if is(rt, "", "Pod") {
        body["status"] = json!({"phase": "Pending", "qosClass": "BestEffort"});
    } else if is(rt, "apiextensions.k8s.io", "CustomResourceDefinition") {
        crd_status(rt, body)?;
    }
    Ok(())
}

pub(super) fn on_update(
    _state: &mut State,
    rt: &ResourceType,
    existing: &Value,
    desired: &mut Value,
) -> Result<(), ApiError> {
    defaults::apply(rt, desired);
    validate_job(rt, desired)?;
    if is(rt, "", "Service") {
        for field in ["clusterIP", "clusterIPs"] {
            if let Some(ip) = existing.at(&format!("/spec/{field}")) {
                desired["spec"][field] = ip.clone();
            }
        }
    } else if is(rt, "apiextensions.k8s.io", "CustomResourceDefinition") {
        crd_status(rt, desired)?;
    }
    Ok(())
}

pub(super) fn after_write(state: &mut State, rt: &ResourceType, stored: &Value) {
    if is(rt, "apiextensions.k8s.io", "CustomResourceDefinition")
        && let Ok(types) = registry::from_crd(stored)
        && let Some(first) = types.first()
    {
        state.registry.remove(&first.group, &first.plural);
        for t in types {
            state.registry.insert(t);
        }
    }
}

pub(super) fn after_delete(state: &mut State, rt: &ResourceType, deleted: &Value) {
    if is(rt, "apiextensions.k8s.io", "CustomResourceDefinition") {
        let group = deleted
            .at("/spec/group")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let plural = deleted
            .at("/spec/names/plural")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        state.registry.remove(&group, &plural);
        delete::drop_all(state, &StorageKey { group, plural });
    } else if is(rt, "", "Namespace") {
        delete::empty_namespace(state, name_of(deleted));
    }
}

/// A Job's pods must not restart in place: `restartPolicy` (defaulted to Always) must be OnFailure or Never.
fn validate_job(rt: &ResourceType, job: &Value) -> Result<(), ApiError> {
    if !is(rt, "batch", "Job") {
        return Ok(());
    }
    let policy = job
        .at("/spec/template/spec/restartPolicy")
        .and_then(Value::as_str)
        .unwrap_or("");
    if matches!(policy, "OnFailure" | "Never") {
        return Ok(());
    }
    Err(ApiError::invalid(
        rt,
        name_of(job),
        &[(
            "spec.template.spec.restartPolicy".into(),
            "FieldValueNotSupported".into(),
            format!("Unsupported value: \"{policy}\": supported values: \"OnFailure\", \"Never\""),
        )],
    ))
}

fn default_service(state: &mut State, body: &mut Value) {
    if !body.get("spec").is_some_and(Value::is_object) {
        body["spec"] = json!({});
    }
    let spec = &mut body["spec"];
    if spec.get("type").is_none() {
        spec["type"] = json!("ClusterIP");
    }
    if spec.get("sessionAffinity").is_none() {
        spec["sessionAffinity"] = json!("None");
    }
    let headless = spec.get("clusterIP").and_then(Value::as_str) == Some("None");
    if spec.get("type").and_then(Value::as_str) != Some("ExternalName")
        && !headless
        && spec.get("clusterIP").is_none()
    {
        let n = state.store.resource_version();
        let ip = format!("10.96.{}.{}", (n >> 8) & 0xff, (n & 0xff).max(1));
        spec["clusterIP"] = json!(ip);
        spec["clusterIPs"] = json!([ip]);
    }
}

/// Checks a CRD and marks it accepted and established, as the API server does within a moment.
fn crd_status(rt: &ResourceType, body: &mut Value) -> Result<(), ApiError> {
    let types = registry::from_crd(body).map_err(|message| {
        let (field, message) = message.split_once(": ").unwrap_or(("spec", &message));
        ApiError::invalid(
            rt,
            name_of(body),
            &[(
                field.to_string(),
                "FieldValueInvalid".into(),
                message.to_string(),
            )],
        )
    })?;
    let stored: Vec<String> = body
        .at("/spec/versions")
        .and_then(Value::as_array)
        .map(|v| {
            v.iter()
                .filter(|v| v.get("storage").and_then(Value::as_bool) == Some(true))
                .filter_map(|v| v.get("name").and_then(Value::as_str).map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    if stored.len() != 1 {
        return Err(ApiError::invalid(
            rt,
            name_of(body),
            &[(
                "spec.versions".into(),
                "FieldValueInvalid".into(),
                "Invalid value: must have exactly one version marked as storage version".into(),
            )],
        ));
    }
    let now = now_rfc3339();
    let condition = |type_: &str, reason: &str, message: &str| json!({"type": type_, "status": "True", "lastTransitionTime": now, "reason": reason, "message": message});
    body["status"] = json!({
        "acceptedNames": body.at("/spec/names").cloned().unwrap_or_else(|| json!({})),
        "conditions": [
            condition("NamesAccepted", "NoConflicts", "no conflicts found"),
            condition("Established", "InitialNamesAccepted", "the initial names have been accepted"),
        ],
        "storedVersions": stored,
    });
    let _ = types;
    Ok(())
}
