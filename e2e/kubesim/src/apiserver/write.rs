//! Create, update and patch: metadata bookkeeping, resourceVersion preconditions, status and scale
//! subresources, schema validation of custom resources, and no-op detection (an unchanged write keeps its
//! resourceVersion and sends no watch event, as the real API server does).

use std::sync::Arc;

use serde_json::{Map, Value, json};

use super::{ApiError, Cluster, State, kinds, object_key, object_meta, served};
use crate::json::At;
use crate::registry::ResourceType;
use crate::selector::LabelSelector;
use crate::store::{name_of, namespace_of};

/// Which part of an object a write addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subresource {
    Main,
    Status,
    Scale,
}

/// The patch formats the API server accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchType {
    Json,
    Merge,
    StrategicMerge,
    /// Server-side apply, approximated as a patch that may create the object: strategic merge for built-in
    /// kinds, JSON merge for custom resources; managers are recorded, field ownership is not.
    Apply,
}

/// The patch formats every resource accepts.
const PATCH_MEDIA_TYPES: &[&str] = &[
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/apply-patch+yaml",
];

/// The patch formats a built-in kind accepts (strategic merge too).
const BUILTIN_PATCH_MEDIA_TYPES: &[&str] = &[
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/strategic-merge-patch+json",
    "application/apply-patch+yaml",
];

impl PatchType {
    /// The patch media types a resource accepts, as a 415 lists them.
    pub fn accepted(rt: &ResourceType) -> &'static [&'static str] {
        if rt.custom {
            PATCH_MEDIA_TYPES
        } else {
            BUILTIN_PATCH_MEDIA_TYPES
        }
    }

    pub fn from_content_type(content_type: &str) -> Option<PatchType> {
        let media = content_type.split(';').next().unwrap_or("").trim();
        match media {
            "application/json-patch+json" => Some(PatchType::Json),
            "application/merge-patch+json" => Some(PatchType::Merge),
            "application/strategic-merge-patch+json" => Some(PatchType::StrategicMerge),
            "application/apply-patch+yaml" | "application/apply-patch+json" => {
                Some(PatchType::Apply)
            }
            _ => None,
        }
    }
}

/// How a write is recorded in `managedFields`: server-side apply or any other write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Operation {
    Update,
    Apply,
}

impl Operation {
    fn of(patch_type: PatchType) -> Operation {
        match patch_type {
            PatchType::Apply => Operation::Apply,
            _ => Operation::Update,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Operation::Update => "Update",
            Operation::Apply => "Apply",
        }
    }
}

/// What a write to an existing object is, for its `managedFields` entry.
#[derive(Debug, Clone, Copy)]
pub(super) struct Write {
    pub operation: Operation,
    pub sub: Subresource,
}

/// Query parameters shared by writes.
#[derive(Debug, Clone, Default)]
pub struct WriteOptions {
    pub dry_run: bool,
    pub field_manager: Option<String>,
    /// `fieldValidation=Strict`: unknown fields are an error instead of being pruned.
    pub strict: bool,
    pub user_agent: Option<String>,
}

impl Cluster {
    pub fn create(
        &self,
        rt: &ResourceType,
        namespace: &str,
        body: Value,
        options: &WriteOptions,
    ) -> Result<Arc<Value>, ApiError> {
        let mut state = self.lock();
        create_locked(&mut state, rt, namespace, body, options, Operation::Update)
    }

    pub fn update(
        &self,
        rt: &ResourceType,
        namespace: &str,
        name: &str,
        body: Value,
        sub: Subresource,
        options: &WriteOptions,
    ) -> Result<Arc<Value>, ApiError> {
        // The guard is a temporary of this statement: the lock is released before the answer is copied.
        let out = update_locked(&mut self.lock(), rt, namespace, name, body, sub, options)?;
        Ok(present(rt, &out, sub))
    }

    #[allow(clippy::too_many_arguments)]
    pub fn patch(
        &self,
        rt: &ResourceType,
        namespace: &str,
        name: &str,
        patch_type: PatchType,
        patch: Value,
        sub: Subresource,
        options: &WriteOptions,
    ) -> Result<Arc<Value>, ApiError> {
        let out = {
            let mut state = self.lock();
            let existing = match current_shared(&state, rt, namespace, name) {
                Ok(existing) => existing,
                Err(_) if patch_type == PatchType::Apply && sub == Subresource::Main => {
                    let mut body = patch;
                    ensure_metadata(&mut body).insert("name".into(), json!(name));
                    return create_locked(
                        &mut state,
                        rt,
                        namespace,
                        body,
                        options,
                        Operation::Apply,
                    );
                }
                Err(e) => return Err(e),
            };
            let write = Write {
                operation: Operation::of(patch_type),
                sub,
            };
            patch_existing(
                &mut state, rt, name, &existing, patch, patch_type, write, options,
            )?
        }; // The store lock is released here: the answer is copied without it.
        Ok(present(rt, &out, sub))
    }

    /// The object as a subresource presents it (the Scale object for `scale`).
    pub fn get_subresource(
        &self,
        rt: &ResourceType,
        namespace: &str,
        name: &str,
        sub: Subresource,
    ) -> Result<Arc<Value>, ApiError> {
        let existing = current_shared(&self.lock(), rt, namespace, name)?;
        Ok(present(rt, &existing, sub))
    }
}

/// A PUT of the main resource or a subresource, under the store lock; returns the object as stored.
fn update_locked(
    state: &mut State,
    rt: &ResourceType,
    namespace: &str,
    name: &str,
    body: Value,
    sub: Subresource,
    options: &WriteOptions,
) -> Result<Arc<Value>, ApiError> {
    let existing = current_shared(state, rt, namespace, name)?;
    if !body.is_object() {
        return Err(ApiError::bad_request(
            "the request body must be a JSON object",
        ));
    }
    let body_name = name_of(&body);
    if sub != Subresource::Scale && !body_name.is_empty() && body_name != name {
        return Err(ApiError::bad_request(format!(
            "the name of the object ({body_name}) does not match the name on the URL ({name})"
        )));
    }
    let requested_rv = body
        .at("/metadata/resourceVersion")
        .and_then(Value::as_str)
        .unwrap_or("");
    if requested_rv.is_empty() && rt.custom && sub == Subresource::Main {
        return Err(ApiError::invalid(
            rt,
            name,
            &[(
                "metadata.resourceVersion".into(),
                "FieldValueInvalid".into(),
                "Invalid value: 0x0: must be specified for an update".into(),
            )],
        ));
    }
    check_resource_version(rt, name, &existing, requested_rv)?;
    let desired = apply_subresource(rt, &existing, body, sub)?;
    let write = Write {
        operation: Operation::Update,
        sub,
    };
    commit_update(state, rt, &existing, desired, options, write)
}

/// A patch of an object that exists, under the store lock; returns the object as stored.
#[allow(clippy::too_many_arguments)]
fn patch_existing(
    state: &mut State,
    rt: &ResourceType,
    name: &str,
    existing: &Arc<Value>,
    patch: Value,
    patch_type: PatchType,
    write: Write,
    options: &WriteOptions,
) -> Result<Arc<Value>, ApiError> {
    let patched = apply_patch(
        rt,
        Arc::unwrap_or_clone(present(rt, existing, write.sub)),
        &patch,
        patch_type,
    )?;
    let requested_rv = patched
        .at("/metadata/resourceVersion")
        .and_then(Value::as_str)
        .unwrap_or("");
    check_resource_version(rt, name, existing, requested_rv)?;
    let desired = apply_subresource(rt, existing, patched, write.sub)?;
    commit_update(state, rt, existing, desired, options, write)
}

/// The stored object, shared rather than copied (a write replaces the store's `Arc`, never the value in it).
fn current_shared(
    state: &State,
    rt: &ResourceType,
    namespace: &str,
    name: &str,
) -> Result<Arc<Value>, ApiError> {
    state
        .store
        .get(&rt.storage_key(), &object_key(rt, namespace, name))
        .cloned()
        .ok_or_else(|| ApiError::not_found(rt, name))
}

/// The stored object as a copy of its own, for a caller that edits it.
pub(super) fn current(
    state: &State,
    rt: &ResourceType,
    namespace: &str,
    name: &str,
) -> Result<Value, ApiError> {
    current_shared(state, rt, namespace, name).map(|o| (*o).clone())
}

fn check_resource_version(
    rt: &ResourceType,
    name: &str,
    existing: &Value,
    requested: &str,
) -> Result<(), ApiError> {
    let actual = existing
        .at("/metadata/resourceVersion")
        .and_then(Value::as_str)
        .unwrap_or("");
    if !requested.is_empty() && requested != actual {
        return Err(ApiError::conflict(rt, name));
    }
    Ok(())
}

pub(super) fn ensure_metadata(obj: &mut Value) -> &mut Map<String, Value> {
    if !obj.is_object() {
        *obj = json!({});
    }
    let map = obj.as_object_mut().expect("just made an object");
    let meta = map.entry("metadata").or_insert_with(|| json!({}));
    if !meta.is_object() {
        *meta = json!({});
    }
    meta.as_object_mut().expect("just made an object")
}

pub(super) fn now_rfc3339() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

const NAME_SUFFIX_ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

fn generated_name(prefix: &str) -> String {
    let suffix: String = (0..5)
        .map(|_| NAME_SUFFIX_ALPHABET[fastrand::usize(..NAME_SUFFIX_ALPHABET.len())] as char)
        .collect();
    let keep = prefix.len().min(58);
    format!("{}{suffix}", &prefix[..keep])
}

fn new_uid() -> String {
    let hex: String = (0..32)
        .map(|_| format!("{:x}", fastrand::u8(..16)))
        .collect();
    format!(
        "{}-{}-4{}-a{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[13..16],
        &hex[17..20],
        &hex[20..32]
    )
}

fn is_dns_subdomain(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

pub(super) fn create_locked(
    state: &mut State,
    rt: &ResourceType,
    namespace: &str,
    mut body: Value,
    options: &WriteOptions,
    operation: Operation,
) -> Result<Arc<Value>, ApiError> {
    if !body.is_object() {
        return Err(ApiError::bad_request(
            "the request body must be a JSON object",
        ));
    }
    check_type_meta(rt, &body)?;
    let namespace = resolve_namespace(state, rt, namespace, &body)?;
    let meta = ensure_metadata(&mut body);
    let name = match meta
        .get("name")
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty())
    {
        Some(name) => name.to_string(),
        None => match meta
            .get("generateName")
            .and_then(Value::as_str)
            .filter(|n| !n.is_empty())
        {
            Some(prefix) => generated_name(prefix),
            None => {
                return Err(ApiError::invalid(
                    rt,
                    "",
                    &[(
                        "metadata.name".into(),
                        "FieldValueRequired".into(),
                        "Required value: name or generateName is required".into(),
                    )],
                ));
            }
        },
    };
    if !is_dns_subdomain(&name) {
        return Err(ApiError::invalid(
            rt,
            &name,
            &[(
                "metadata.name".into(),
                "FieldValueInvalid".into(),
                format!(
                    "Invalid value: \"{name}\": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character"
                ),
            )],
        ));
    }
    if state
        .store
        .get(&rt.storage_key(), &object_key(rt, &namespace, &name))
        .is_some()
    {
        return Err(ApiError::already_exists(rt, &name));
    }
    meta.insert("name".into(), json!(name));
    if rt.namespaced {
        meta.insert("namespace".into(), json!(namespace));
    } else {
        meta.remove("namespace");
    }
    for server_owned in [
        "uid",
        "resourceVersion",
        "creationTimestamp",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "generation",
        "managedFields",
        "selfLink",
    ] {
        meta.remove(server_owned);
    }
    object_meta::drop_empty(meta);
    meta.insert("uid".into(), json!(new_uid()));
    meta.insert("creationTimestamp".into(), json!(now_rfc3339()));
    if rt.has_generation {
        meta.insert("generation".into(), json!(1));
    }
    record_manager(
        meta,
        rt,
        options,
        Write {
            operation,
            sub: Subresource::Main,
        },
    );
    if rt.status_subresource
        && let Some(map) = body.as_object_mut()
    {
        map.remove("status");
    }
    set_type_meta(rt, &mut body);
    object_meta::validate(rt, &body)?;
    validate_custom(rt, &name, &mut body, options, false)?;
    kinds::on_create(state, rt, &mut body)?;
    if options.dry_run {
        return Ok(Arc::new(body));
    }
    let rv = state.store.next_rv();
    ensure_metadata(&mut body).insert("resourceVersion".into(), json!(rv.to_string()));
    let stored = state.store.put(&rt.storage_key(), body, rv);
    kinds::after_write(state, rt, &stored);
    Ok(served(rt, &stored))
}

fn resolve_namespace(
    state: &State,
    rt: &ResourceType,
    url_namespace: &str,
    body: &Value,
) -> Result<String, ApiError> {
    if !rt.namespaced {
        return Ok(String::new());
    }
    let body_ns = namespace_of(body);
    if !body_ns.is_empty() && !url_namespace.is_empty() && body_ns != url_namespace {
        return Err(ApiError::bad_request(
            "the namespace of the provided object does not match the namespace sent on the request",
        ));
    }
    let ns = if url_namespace.is_empty() {
        body_ns
    } else {
        url_namespace
    };
    if ns.is_empty() {
        return Err(ApiError::bad_request(
            "a namespace is required for namespaced resources",
        ));
    }
    let namespaces = crate::registry::StorageKey {
        group: String::new(),
        plural: "namespaces".into(),
    };
    if state
        .store
        .get(&namespaces, &(String::new(), ns.to_string()))
        .is_none()
    {
        return Err(ApiError::namespace_not_found(ns));
    }
    Ok(ns.to_string())
}

fn check_type_meta(rt: &ResourceType, body: &Value) -> Result<(), ApiError> {
    if let Some(kind) = body.get("kind").and_then(Value::as_str)
        && kind != rt.kind
    {
        return Err(ApiError::bad_request(format!(
            "the kind in the data ({kind}) does not match the expected kind ({})",
            rt.kind
        )));
    }
    if let Some(api_version) = body.get("apiVersion").and_then(Value::as_str)
        && api_version != rt.api_version()
    {
        return Err(ApiError::bad_request(format!(
            "the API version in the data ({api_version}) does not match the expected API version ({})",
            rt.api_version()
        )));
    }
    Ok(())
}

fn set_type_meta(rt: &ResourceType, body: &mut Value) {
    if let Some(map) = body.as_object_mut() {
        map.insert("apiVersion".into(), json!(rt.api_version()));
        map.insert("kind".into(), json!(rt.kind));
    }
}

/// Records the writer in `managedFields`, one entry per manager, operation and subresource, as the API server
/// does (without the field sets: `fieldsV1` stays empty).
fn record_manager(
    meta: &mut Map<String, Value>,
    rt: &ResourceType,
    options: &WriteOptions,
    write: Write,
) {
    let manager = options.field_manager.clone().or_else(|| {
        options
            .user_agent
            .as_ref()
            .map(|ua| ua.split('/').next().unwrap_or(ua).to_string())
    });
    let Some(manager) = manager else { return };
    let mut entry = json!({
        "manager": manager, "operation": write.operation.as_str(), "apiVersion": rt.api_version(),
        "time": now_rfc3339(), "fieldsType": "FieldsV1", "fieldsV1": {},
    });
    match write.sub {
        Subresource::Main => {}
        Subresource::Status => entry["subresource"] = json!("status"),
        Subresource::Scale => entry["subresource"] = json!("scale"),
    }
    let list = meta.entry("managedFields").or_insert_with(|| json!([]));
    if let Some(list) = list.as_array_mut() {
        let same = |e: &Value| {
            ["manager", "operation", "subresource"]
                .iter()
                .all(|k| e.get(k) == entry.get(k))
        };
        list.retain(|e| !same(e));
        list.push(entry);
    }
}

/// Custom resources are pruned, defaulted and validated against their schema; a rejection names every field.
fn validate_custom(
    rt: &ResourceType,
    name: &str,
    body: &mut Value,
    options: &WriteOptions,
    only_status: bool,
) -> Result<(), ApiError> {
    let Some(schema) = &rt.schema else {
        return Ok(());
    };
    let before = options.strict.then(|| body.clone());
    let errors = match only_status {
        true => crate::schema::prune_default_validate_field(schema, body, "status"),
        false => crate::schema::prune_default_validate(schema, body),
    };
    if !errors.is_empty() {
        let causes: Vec<_> = errors
            .iter()
            .map(|e| (e.field.clone(), e.reason.to_string(), e.message.clone()))
            .collect();
        return Err(ApiError::invalid(rt, name, &causes));
    }
    if let Some(before) = before {
        let mut unknown = Vec::new();
        removed_paths(&before, body, "", &mut unknown);
        if !unknown.is_empty() {
            let list: Vec<String> = unknown
                .iter()
                .map(|f| format!("unknown field \"{f}\""))
                .collect();
            return Err(ApiError::bad_request(format!(
                "{} in version \"{}\" cannot be handled as a {}: strict decoding error: {}",
                rt.kind,
                rt.api_version(),
                rt.kind,
                list.join(", ")
            )));
        }
    }
    Ok(())
}

/// Paths present in `before` but pruned from `after`.
fn removed_paths(before: &Value, after: &Value, path: &str, out: &mut Vec<String>) {
    match (before, after) {
        (Value::Object(b), Value::Object(a)) => {
            for (k, v) in b {
                let child = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                match a.get(k) {
                    Some(av) => removed_paths(v, av, &child, out),
                    None if !v.is_null() => out.push(child),
                    None => {}
                }
            }
        }
        (Value::Array(b), Value::Array(a)) => {
            for (i, (bv, av)) in b.iter().zip(a).enumerate() {
                removed_paths(bv, av, &format!("{path}[{i}]"), out);
            }
        }
        _ => {}
    }
}

/// Builds the full desired object from a write to the main resource or a subresource.
/// The stored object with its status replaced by the body's: everything else is the stored object's. The
/// body usually carries the rest unchanged, so it is kept where it agrees and copied from the store only
/// where it does not (copying the whole object on every status write was about 5 % of kubesim's CPU).
fn status_written(existing: &Value, mut body: Value) -> Value {
    let (Some(stored), Some(map)) = (existing.as_object(), body.as_object_mut()) else {
        let mut desired = existing.clone();
        if let Some(map) = desired.as_object_mut() {
            map.remove("status");
        }
        return desired;
    };
    map.retain(|key, value| match key.as_str() {
        "status" => !value.is_null(),
        _ => stored.contains_key(key),
    });
    for (key, value) in stored {
        if key != "status" && map.get(key) != Some(value) {
            map.insert(key.clone(), value.clone());
        }
    }
    body
}

fn apply_subresource(
    rt: &ResourceType,
    existing: &Value,
    body: Value,
    sub: Subresource,
) -> Result<Value, ApiError> {
    match sub {
        Subresource::Main => {
            let mut desired = body;
            if rt.status_subresource
                && let Some(map) = desired.as_object_mut()
            {
                match existing.get("status") {
                    Some(status) => map.insert("status".into(), status.clone()),
                    None => map.remove("status"),
                };
            }
            Ok(desired)
        }
        Subresource::Status => Ok(status_written(existing, body)),
        Subresource::Scale => {
            let scale = rt
                .scale
                .as_ref()
                .ok_or_else(|| ApiError::method_not_supported(rt, "scale"))?;
            let replicas = body
                .at("/spec/replicas")
                .and_then(Value::as_i64)
                .ok_or_else(|| ApiError::bad_request("spec.replicas: Required value"))?;
            if replicas < 0 {
                return Err(ApiError::invalid(
                    rt,
                    name_of(existing),
                    &[(
                        "spec.replicas".into(),
                        "FieldValueInvalid".into(),
                        format!("Invalid value: {replicas}: must be greater than or equal to 0"),
                    )],
                ));
            }
            let mut desired = existing.clone();
            set_path(&mut desired, &scale.spec_replicas, json!(replicas));
            Ok(desired)
        }
    }
}

/// What a read of the main resource or a subresource returns.
fn present(rt: &ResourceType, obj: &Arc<Value>, sub: Subresource) -> Arc<Value> {
    match (sub, &rt.scale) {
        (Subresource::Scale, Some(scale)) => {
            let meta = obj.get("metadata").cloned().unwrap_or_else(|| json!({}));
            let mut status = json!({"replicas": get_path(obj, &scale.status_replicas).cloned().unwrap_or(json!(0))});
            if let Some(selector) = scale
                .label_selector
                .as_ref()
                .and_then(|p| get_path(obj, p))
                .and_then(selector_string)
            {
                status["selector"] = json!(selector);
            }
            Arc::new(json!({
                "kind": "Scale", "apiVersion": "autoscaling/v1",
                "metadata": {"name": meta.get("name"), "namespace": meta.get("namespace"), "uid": meta.get("uid"),
                    "resourceVersion": meta.get("resourceVersion"), "creationTimestamp": meta.get("creationTimestamp")},
                "spec": {"replicas": get_path(obj, &scale.spec_replicas).cloned().unwrap_or(json!(0))},
                "status": status,
            }))
        }
        _ => served(rt, obj),
    }
}

/// Scale's `status.selector`: a selector string as stored, or a `LabelSelector` object in string form.
fn selector_string(selector: &Value) -> Option<String> {
    match selector {
        Value::String(s) => Some(s.clone()),
        Value::Object(_) => LabelSelector::from_json(selector)
            .ok()
            .map(|s| s.to_string()),
        _ => None,
    }
}

pub(crate) fn get_path<'a>(obj: &'a Value, dotted: &str) -> Option<&'a Value> {
    dotted.split('.').try_fold(obj, |v, key| v.get(key))
}

fn set_path(obj: &mut Value, dotted: &str, value: Value) {
    let mut cursor = obj;
    let keys: Vec<&str> = dotted.split('.').collect();
    for key in &keys[..keys.len() - 1] {
        if !cursor.get(*key).is_some_and(Value::is_object) {
            cursor[*key] = json!({});
        }
        cursor = &mut cursor[*key];
    }
    cursor[keys[keys.len() - 1]] = value;
}

/// Applies a patch to `doc`, the object as the client sees it (taken by value: it becomes the result).
fn apply_patch(
    rt: &ResourceType,
    mut doc: Value,
    patch: &Value,
    patch_type: PatchType,
) -> Result<Value, ApiError> {
    match patch_type {
        // Server-side apply merges keyed lists of built-in kinds (containers by name ...) as strategic
        // merge does; a custom resource's lists are atomic unless its schema says otherwise, as in a merge.
        PatchType::Apply if !rt.custom => {
            if !patch.is_object() {
                return Err(ApiError::bad_request("the patch must be a JSON object"));
            }
            doc = crate::strategic::apply(&doc, patch, &rt.kind).map_err(ApiError::bad_request)?;
        }
        PatchType::Merge | PatchType::Apply => {
            if !patch.is_object() {
                return Err(ApiError::bad_request("the patch must be a JSON object"));
            }
            json_patch::merge(&mut doc, patch);
        }
        PatchType::Json => {
            // An error names the object as it was before the patch.
            let name = name_of(&doc).to_string();
            let ops: json_patch::Patch = serde_json::from_value(patch.clone())
                .map_err(|e| ApiError::bad_request(format!("the JSON patch is malformed: {e}")))?;
            json_patch::patch(&mut doc, &ops).map_err(|e| {
                ApiError::invalid(
                    rt,
                    &name,
                    &[(
                        "".into(),
                        "FieldValueInvalid".into(),
                        format!("the JSON patch could not be applied: {e}"),
                    )],
                )
            })?;
        }
        PatchType::StrategicMerge => {
            if rt.custom {
                return Err(ApiError::unsupported_media_type(PatchType::accepted(rt)));
            }
            doc = crate::strategic::apply(&doc, patch, &rt.kind).map_err(ApiError::bad_request)?;
        }
    }
    Ok(doc)
}

/// Writes `desired` over `existing`: keeps server-owned metadata, bumps generation on spec changes, skips
/// no-op writes, and completes a deletion whose last finalizer was removed.
pub(super) fn commit_update(
    state: &mut State,
    rt: &ResourceType,
    existing: &Arc<Value>,
    mut desired: Value,
    options: &WriteOptions,
    write: Write,
) -> Result<Arc<Value>, ApiError> {
    check_type_meta(rt, &desired)?;
    set_type_meta(rt, &mut desired);
    // Borrowed, not copied: the old metadata is only read.
    let no_metadata = Map::new();
    let old_meta = existing
        .get("metadata")
        .and_then(Value::as_object)
        .unwrap_or(&no_metadata);
    let meta = ensure_metadata(&mut desired);
    for owned in [
        "name",
        "namespace",
        "uid",
        "creationTimestamp",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "generation",
        "managedFields",
    ] {
        match old_meta.get(owned) {
            Some(v) => meta.insert(owned.into(), v.clone()),
            None => meta.remove(owned),
        };
    }
    meta.remove("resourceVersion");
    object_meta::drop_empty(meta);
    object_meta::validate(rt, &desired)?;
    object_meta::validate_update(rt, existing, &desired)?;
    let name = name_of(existing).to_string();
    // A status write keeps everything else as stored (and validated then); only a status that was there
    // and still is can be checked alone.
    let only_status = write.sub == Subresource::Status
        && existing.get("status").is_some_and(|s| !s.is_null())
        && desired.get("status").is_some_and(|s| !s.is_null());
    validate_custom(rt, &name, &mut desired, options, only_status)?;
    kinds::on_update(state, rt, existing, &mut desired)?;
    if rt.has_generation && !same_spec(rt, &desired, existing) {
        let generation = old_meta
            .get("generation")
            .and_then(Value::as_i64)
            .unwrap_or(0);
        ensure_metadata(&mut desired).insert("generation".into(), json!(generation + 1));
    }
    if same_except_resource_version(existing, &desired) {
        return Ok(Arc::clone(existing));
    }
    record_manager(ensure_metadata(&mut desired), rt, options, write);
    if options.dry_run {
        // Nothing is stored, so the object keeps the version it was read at.
        if let Some(rv) = old_meta.get("resourceVersion") {
            ensure_metadata(&mut desired).insert("resourceVersion".into(), rv.clone());
        }
        return Ok(Arc::new(desired));
    }
    let finished_deleting = desired.at("/metadata/deletionTimestamp").is_some()
        && desired
            .at("/metadata/finalizers")
            .and_then(Value::as_array)
            .is_none_or(|f| f.is_empty());
    let rv = state.store.next_rv();
    ensure_metadata(&mut desired).insert("resourceVersion".into(), json!(rv.to_string()));
    if finished_deleting {
        super::delete::remove_now(state, rt, desired.clone(), rv);
        return Ok(Arc::new(desired));
    }
    let stored = state.store.put(&rt.storage_key(), desired, rv);
    kinds::after_write(state, rt, &stored);
    Ok(stored)
}

/// Whether two objects agree on what `generation` tracks: everything but metadata, and but status when status
/// is a subresource (a custom resource without one bumps its generation on status changes too, as on a real
/// server). Compared in place, without copies of the objects.
fn same_spec(rt: &ResourceType, a: &Value, b: &Value) -> bool {
    let untracked = |key: &str| key == "metadata" || (rt.status_subresource && key == "status");
    match (a.as_object(), b.as_object()) {
        (Some(a), Some(b)) => equal_without(a, b, untracked),
        _ => a == b,
    }
}

/// Whether a write changes nothing: `existing` equals `desired` once `existing`'s `metadata.resourceVersion`
/// is left out (the one a write carries was removed from `desired`). Compared in place, without a copy.
fn same_except_resource_version(existing: &Value, desired: &Value) -> bool {
    let (Some(e), Some(d)) = (existing.as_object(), desired.as_object()) else {
        return existing == desired;
    };
    equal_without(e, d, |key| key == "metadata")
        && match (e.get("metadata"), d.get("metadata")) {
            (Some(Value::Object(em)), Some(Value::Object(dm))) => {
                !dm.contains_key("resourceVersion")
                    && equal_without(em, dm, |key| key == "resourceVersion")
            }
            (em, dm) => em == dm,
        }
}

/// `a == b` once the keys `skip` names are removed from both maps, without removing them.
fn equal_without(
    a: &Map<String, Value>,
    b: &Map<String, Value>,
    skip: impl Fn(&str) -> bool,
) -> bool {
    let kept = |m: &Map<String, Value>| m.keys().filter(|k| !skip(k)).count();
    kept(a) == kept(b)
        && a.iter()
            .filter(|(k, _)| !skip(k))
            .all(|(k, v)| b.get(k) == Some(v))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::sync::broadcast::error::TryRecvError;

    fn replica_set(name: &str) -> Value {
        json!({
            "apiVersion": "apps/v1", "kind": "ReplicaSet",
            "metadata": {"name": name, "labels": {"app": "web"}},
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": {"app": "web"}},
                "template": {
                    "metadata": {"labels": {"app": "web"}},
                    "spec": {"containers": [{"name": "web", "image": "nginx:1.27"}]},
                },
            },
        })
    }

    #[test]
    fn a_status_write_keeps_everything_but_status_as_stored() {
        let mut stored = replica_set("web");
        stored["status"] = json!({"replicas": 1});
        let mut body = stored.clone();
        body["spec"]["replicas"] = json!(5);
        body["metadata"]["labels"] = json!({"app": "other"});
        body["extra"] = json!(true);
        body["status"] = json!({"replicas": 2});
        let mut expected = stored.clone();
        expected["status"] = json!({"replicas": 2});
        assert_eq!(status_written(&stored, body), expected);

        let mut cleared = stored.clone();
        cleared["status"] = Value::Null;
        let mut expected = stored.clone();
        expected.as_object_mut().unwrap().remove("status");
        assert_eq!(status_written(&stored, cleared.clone()), expected);
        cleared.as_object_mut().unwrap().remove("kind");
        assert_eq!(
            status_written(&stored, cleared),
            expected,
            "a key the body lost comes back"
        );
    }

    fn setup() -> (Cluster, Arc<ResourceType>, Value) {
        let cluster = Cluster::new(1000);
        let rt = cluster
            .resource_type("apps", "v1", "replicasets")
            .expect("replicasets are built in");
        let created = cluster
            .create(&rt, "default", replica_set("web"), &WriteOptions::default())
            .unwrap();
        (cluster, rt, Arc::unwrap_or_clone(created))
    }

    fn merge(cluster: &Cluster, rt: &ResourceType, patch: Value) -> Result<Value, ApiError> {
        cluster
            .patch(
                rt,
                "default",
                "web",
                PatchType::Merge,
                patch,
                Subresource::Main,
                &WriteOptions::default(),
            )
            .map(Arc::unwrap_or_clone)
    }

    fn rv(obj: &Value) -> &str {
        obj.at("/metadata/resourceVersion")
            .and_then(Value::as_str)
            .unwrap()
    }

    fn generation(obj: &Value) -> i64 {
        obj.at("/metadata/generation")
            .and_then(Value::as_i64)
            .unwrap()
    }

    #[test]
    fn a_merge_patch_that_changes_nothing_keeps_the_version_and_sends_no_event() {
        let (cluster, rt, created) = setup();
        let mut feed = cluster.subscribe();
        let same = merge(
            &cluster,
            &rt,
            json!({"metadata": {"labels": {"app": "web"}}}),
        )
        .unwrap();
        assert_eq!(same, created, "the stored object, unchanged");
        assert_eq!(
            cluster.resource_version(),
            rv(&created).parse::<u64>().unwrap()
        );
        assert!(matches!(feed.try_recv(), Err(TryRecvError::Empty)));
    }

    #[test]
    fn a_metadata_only_patch_keeps_the_generation_and_a_spec_patch_bumps_it() {
        let (cluster, rt, created) = setup();
        assert_eq!(generation(&created), 1);
        let mut feed = cluster.subscribe();

        let relabelled = merge(
            &cluster,
            &rt,
            json!({"metadata": {"labels": {"bench": "patched"}}}),
        )
        .unwrap();
        assert_eq!(generation(&relabelled), 1);
        assert_eq!(relabelled["metadata"]["labels"]["bench"], "patched");
        assert_eq!(
            (
                relabelled["apiVersion"].as_str(),
                relabelled["kind"].as_str()
            ),
            (Some("apps/v1"), Some("ReplicaSet"))
        );
        assert!(rv(&relabelled).parse::<u64>().unwrap() > rv(&created).parse::<u64>().unwrap());
        let change = feed.try_recv().unwrap();
        assert_eq!(change.event, crate::store::EventType::Modified);
        assert_eq!(
            *change.object, relabelled,
            "the answer is the stored object"
        );
        assert_eq!(change.previous.as_deref(), Some(&created));

        let rescaled = merge(&cluster, &rt, json!({"spec": {"replicas": 3}})).unwrap();
        assert_eq!(generation(&rescaled), 2);
        assert_eq!(*cluster.get(&rt, "default", "web").unwrap(), rescaled);
    }

    #[test]
    fn a_write_with_a_stale_resource_version_conflicts_and_changes_nothing() {
        let (cluster, rt, created) = setup();
        let updated = merge(&cluster, &rt, json!({"spec": {"replicas": 2}})).unwrap();
        let stale = json!({"metadata": {"resourceVersion": rv(&created)}, "spec": {"replicas": 5}});
        assert_eq!(merge(&cluster, &rt, stale).unwrap_err().code, 409);

        let mut body = created.clone();
        body["spec"]["replicas"] = json!(7);
        let err = cluster
            .update(
                &rt,
                "default",
                "web",
                body,
                Subresource::Main,
                &WriteOptions::default(),
            )
            .unwrap_err();
        assert_eq!(err.code, 409);
        assert_eq!(*cluster.get(&rt, "default", "web").unwrap(), updated);

        // The current version is accepted, and an update that changes nothing keeps it.
        let unchanged = cluster
            .update(
                &rt,
                "default",
                "web",
                updated.clone(),
                Subresource::Main,
                &WriteOptions::default(),
            )
            .unwrap();
        assert_eq!(*unchanged, updated);
    }

    /// The comparisons as they were made before, on copies with the ignored keys removed.
    fn spec_copy(rt: &ResourceType, obj: &Value) -> Value {
        let mut out = obj.clone();
        if let Some(map) = out.as_object_mut() {
            map.remove("metadata");
            if rt.status_subresource {
                map.remove("status");
            }
        }
        out
    }

    fn without_resource_version(obj: &Value) -> Value {
        let mut out = obj.clone();
        if let Some(meta) = out.get_mut("metadata").and_then(Value::as_object_mut) {
            meta.remove("resourceVersion");
        }
        out
    }

    #[test]
    fn in_place_comparisons_agree_with_comparing_copies() {
        let objects = [
            json!({"metadata": {"name": "a", "resourceVersion": "5"}, "spec": {"x": 1}, "status": {"y": 1}}),
            json!({"metadata": {"name": "a"}, "spec": {"x": 1}, "status": {"y": 1}}),
            json!({"metadata": {"name": "a"}, "spec": {"x": 1}, "status": {"y": 2}}),
            json!({"metadata": {"name": "a", "resourceVersion": "5"}, "spec": {"x": 1}}),
            json!({"metadata": {"name": "a"}, "spec": {"x": 2}}),
            json!({"metadata": {"name": "b"}, "spec": {"x": 1}}),
            json!({"metadata": {"name": "a", "resourceVersion": "6"}, "spec": {"x": 1}}),
            json!({"metadata": "odd", "spec": {"x": 1}}),
            json!({"spec": {"x": 1}}),
            json!({"spec": {"x": 1}, "extra": null}),
            json!({"metadata": {}}),
            json!({}),
            json!("not an object"),
        ];
        let registry = crate::registry::Registry::with_builtins();
        let with_status = registry.get("apps", "v1", "replicasets").unwrap();
        let without_status = registry.get("", "v1", "configmaps").unwrap();
        assert!(with_status.status_subresource && !without_status.status_subresource);
        for a in &objects {
            for b in &objects {
                for rt in [&with_status, &without_status] {
                    assert_eq!(
                        same_spec(rt, a, b),
                        spec_copy(rt, a) == spec_copy(rt, b),
                        "{a} {b}"
                    );
                }
                assert_eq!(
                    same_except_resource_version(a, b),
                    without_resource_version(a) == *b,
                    "{a} {b}"
                );
            }
        }
    }
}
