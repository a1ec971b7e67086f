//! Delete and deletecollection: preconditions, finalizers with `deletionTimestamp`, propagation policies and
//! garbage collection of dependents. Collection is synchronous: dependents are gone when the owner's delete
//! returns (unless their own finalizers hold them), where a real cluster's garbage collector takes a moment. A
//! foreground deletion keeps the owner, marked with the `foregroundDeletion` finalizer, while a dependent that
//! blocks it is still there.

use serde_json::{Value, json};

use super::write::{current, ensure_metadata, now_rfc3339};
use super::{ApiError, Cluster, ListOptions, State, kinds, object_key};
use crate::json::At;
use crate::registry::{ResourceType, StorageKey};
use crate::store::{ObjectKey, name_of, owner_uids, uid_of};

/// `DeleteOptions` that matter here.
#[derive(Debug, Clone, Default)]
pub struct DeleteOptions {
    pub precondition_uid: Option<String>,
    pub precondition_resource_version: Option<String>,
    /// `Orphan`, `Background` (the default) or `Foreground`.
    pub propagation_policy: Option<String>,
    pub dry_run: bool,
}

impl DeleteOptions {
    /// Reads a `DeleteOptions` body (may be empty) and the `propagationPolicy`/`dryRun` query parameters.
    pub fn from_body(body: &Value) -> DeleteOptions {
        let str_at = |p: &str| body.at(p).and_then(Value::as_str).map(str::to_string);
        DeleteOptions {
            precondition_uid: str_at("/preconditions/uid"),
            precondition_resource_version: str_at("/preconditions/resourceVersion"),
            propagation_policy: str_at("/propagationPolicy").or_else(|| {
                match body.get("orphanDependents").and_then(Value::as_bool) {
                    Some(true) => Some("Orphan".into()),
                    _ => None,
                }
            }),
            dry_run: body
                .get("dryRun")
                .and_then(Value::as_array)
                .is_some_and(|d| d.iter().any(|v| v == "All")),
        }
    }
}

impl Cluster {
    /// Deletes one object; returns it as it was last seen (with `deletionTimestamp` when finalizers hold it).
    pub fn delete(
        &self,
        rt: &ResourceType,
        namespace: &str,
        name: &str,
        options: &DeleteOptions,
    ) -> Result<Value, ApiError> {
        let mut state = self.lock();
        delete_locked(&mut state, rt, namespace, name, options)
    }

    /// Deletes every object a list with these options would return.
    pub fn delete_collection(
        &self,
        rt: &ResourceType,
        namespace: Option<&str>,
        list: &ListOptions,
        options: &DeleteOptions,
    ) -> Result<Vec<Value>, ApiError> {
        let page = self.list(
            rt,
            namespace,
            &ListOptions {
                limit: None,
                continue_token: None,
                ..list.clone()
            },
        )?;
        let mut state = self.lock();
        let mut deleted = Vec::new();
        for item in page.items {
            match delete_locked(
                &mut state,
                rt,
                crate::store::namespace_of(&item),
                name_of(&item),
                options,
            ) {
                Ok(obj) => deleted.push(obj),
                Err(e) if e.code == 404 => {}
                Err(e) => return Err(e),
            }
        }
        Ok(deleted)
    }
}

pub(super) fn delete_locked(
    state: &mut State,
    rt: &ResourceType,
    namespace: &str,
    name: &str,
    options: &DeleteOptions,
) -> Result<Value, ApiError> {
    let existing = current(state, rt, namespace, name)?;
    let meta = existing.get("metadata").cloned().unwrap_or_default();
    let str_at = |key: &str| {
        meta.get(key)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    if let Some(uid) = &options.precondition_uid
        && *uid != str_at("uid")
    {
        return Err(ApiError::precondition_failed(
            rt,
            name,
            format!(
                "Precondition failed: UID in precondition: {uid}, UID in object meta: {}",
                str_at("uid")
            ),
        ));
    }
    if let Some(rv) = &options.precondition_resource_version
        && *rv != str_at("resourceVersion")
    {
        return Err(ApiError::precondition_failed(
            rt,
            name,
            format!(
                "Precondition failed: ResourceVersion in precondition: {rv}, ResourceVersion in object meta: {}",
                str_at("resourceVersion")
            ),
        ));
    }
    if options.dry_run {
        return Ok(existing);
    }
    let policy = options
        .propagation_policy
        .as_deref()
        .unwrap_or("Background");
    if policy == "Orphan" {
        orphan_dependents(state, uid_of(&existing));
    }
    if policy == "Foreground" && !state.store.dependents_of(uid_of(&existing)).is_empty() {
        return Ok(delete_in_foreground(state, rt, existing));
    }
    let has_finalizers = meta
        .get("finalizers")
        .and_then(Value::as_array)
        .is_some_and(|f| !f.is_empty());
    if has_finalizers {
        if meta.get("deletionTimestamp").is_some() {
            return Ok(existing);
        }
        let mut marked = existing.clone();
        let m = ensure_metadata(&mut marked);
        m.insert("deletionTimestamp".into(), json!(now_rfc3339()));
        m.insert("deletionGracePeriodSeconds".into(), json!(0));
        let rv = state.store.next_rv();
        ensure_metadata(&mut marked).insert("resourceVersion".into(), json!(rv.to_string()));
        let stored = state.store.put(&rt.storage_key(), marked, rv);
        return Ok((*stored).clone());
    }
    let rv = state.store.next_rv();
    let mut final_state = existing;
    ensure_metadata(&mut final_state).insert("resourceVersion".into(), json!(rv.to_string()));
    remove_now(state, rt, final_state.clone(), rv);
    Ok(final_state)
}

/// Removes an object for good and collects what depended on it.
pub(super) fn remove_now(state: &mut State, rt: &ResourceType, final_state: Value, rv: u64) {
    let key = object_key(
        rt,
        crate::store::namespace_of(&final_state),
        name_of(&final_state),
    );
    let uid = uid_of(&final_state).to_string();
    state
        .store
        .remove(&rt.storage_key(), &key, final_state.clone(), rv);
    kinds::after_delete(state, rt, &final_state);
    collect_dependents(state, &uid);
    for owner in owner_uids(&final_state) {
        finish_foreground(state, &owner);
    }
}

/// The finalizer that holds an owner deleted in the foreground until its blocking dependents are gone.
const FOREGROUND_DELETION: &str = "foregroundDeletion";

/// Foreground deletion: the owner is marked deleting with the `foregroundDeletion` finalizer and stays until
/// the dependents that block its deletion (`blockOwnerDeletion`) are gone. Dependents are deleted at once,
/// in the foreground too, unless another live owner keeps them (then they only lose the reference). Returns
/// the owner as marked, as the API server answers.
fn delete_in_foreground(state: &mut State, rt: &ResourceType, existing: Value) -> Value {
    let owner_uid = uid_of(&existing).to_string();
    let mut marked = existing;
    let meta = ensure_metadata(&mut marked);
    if !meta.contains_key("deletionTimestamp") {
        meta.insert("deletionTimestamp".into(), json!(now_rfc3339()));
        meta.insert("deletionGracePeriodSeconds".into(), json!(0));
    }
    let finalizers = meta.entry("finalizers").or_insert_with(|| json!([]));
    if let Some(list) = finalizers.as_array_mut()
        && !list.iter().any(|f| f == FOREGROUND_DELETION)
    {
        list.push(json!(FOREGROUND_DELETION));
    }
    let rv = state.store.next_rv();
    meta.insert("resourceVersion".into(), json!(rv.to_string()));
    state.store.put(&rt.storage_key(), marked.clone(), rv);
    let foreground = DeleteOptions {
        propagation_policy: Some("Foreground".into()),
        ..DeleteOptions::default()
    };
    for (resource, key) in state.store.dependents_of(&owner_uid) {
        let Some(dependent) = state.store.get(&resource, &key).map(|o| (**o).clone()) else {
            continue;
        };
        if has_live_owner(state, &dependent, &owner_uid) {
            drop_owner_reference(state, &resource, dependent, &owner_uid);
        } else if let Some(rt) = type_of(state, &resource) {
            let _ = delete_locked(state, &rt, &key.0, &key.1, &foreground);
        }
    }
    finish_foreground(state, &owner_uid);
    marked
}

/// Whether an owner other than `except` exists and is not itself being deleted.
fn has_live_owner(state: &State, dependent: &Value, except: &str) -> bool {
    owner_uids(dependent).iter().any(|uid| {
        uid != except
            && state
                .store
                .locate_uid(uid)
                .and_then(|(resource, key)| state.store.get(resource, key))
                .is_some_and(|owner| owner.at("/metadata/deletionTimestamp").is_none())
    })
}

/// Completes the foreground deletion of this owner once no dependent blocks it any more.
fn finish_foreground(state: &mut State, owner_uid: &str) {
    let Some((resource, key)) = state.store.locate_uid(owner_uid).cloned() else {
        return;
    };
    let Some(mut owner) = state.store.get(&resource, &key).map(|o| (**o).clone()) else {
        return;
    };
    let waiting = owner
        .at("/metadata/finalizers")
        .and_then(Value::as_array)
        .is_some_and(|f| f.iter().any(|f| f == FOREGROUND_DELETION));
    if !waiting || owner.at("/metadata/deletionTimestamp").is_none() {
        return;
    }
    let blocked = state
        .store
        .dependents_of(owner_uid)
        .iter()
        .any(|(r, k)| state.store.get(r, k).is_some_and(|d| blocks(d, owner_uid)));
    if blocked {
        return;
    }
    let Some(rt) = type_of(state, &resource) else {
        return;
    };
    let meta = ensure_metadata(&mut owner);
    if let Some(list) = meta.get_mut("finalizers").and_then(Value::as_array_mut) {
        list.retain(|f| f != FOREGROUND_DELETION);
    }
    let done = meta
        .get("finalizers")
        .and_then(Value::as_array)
        .is_none_or(|f| f.is_empty());
    if done {
        meta.remove("finalizers");
    }
    let rv = state.store.next_rv();
    meta.insert("resourceVersion".into(), json!(rv.to_string()));
    if done {
        remove_now(state, &rt, owner, rv);
    } else {
        state.store.put(&resource, owner, rv);
    }
}

/// Whether a dependent's reference to this owner has `blockOwnerDeletion: true`.
fn blocks(dependent: &Value, owner_uid: &str) -> bool {
    dependent
        .at("/metadata/ownerReferences")
        .and_then(Value::as_array)
        .is_some_and(|refs| {
            refs.iter().any(|r| {
                r.get("uid").and_then(Value::as_str) == Some(owner_uid)
                    && r.get("blockOwnerDeletion").and_then(Value::as_bool) == Some(true)
            })
        })
}

/// Background collection: a dependent none of whose owners exist any more is deleted; one that still has a
/// live owner only loses the dangling reference.
fn collect_dependents(state: &mut State, owner_uid: &str) {
    for (resource, key) in state.store.dependents_of(owner_uid) {
        let Some(dependent) = state.store.get(&resource, &key).map(|o| (**o).clone()) else {
            continue;
        };
        let live_owner = owner_uids(&dependent)
            .iter()
            .any(|uid| uid != owner_uid && state.store.locate_uid(uid).is_some());
        if live_owner {
            drop_owner_reference(state, &resource, dependent, owner_uid);
        } else if let Some(rt) = type_of(state, &resource) {
            let _ = delete_locked(state, &rt, &key.0, &key.1, &DeleteOptions::default());
        }
    }
}

fn orphan_dependents(state: &mut State, owner_uid: &str) {
    for (resource, key) in state.store.dependents_of(owner_uid) {
        if let Some(dependent) = state.store.get(&resource, &key).map(|o| (**o).clone()) {
            drop_owner_reference(state, &resource, dependent, owner_uid);
        }
    }
}

fn drop_owner_reference(
    state: &mut State,
    resource: &StorageKey,
    mut dependent: Value,
    owner_uid: &str,
) {
    if let Some(refs) = dependent
        .pointer_mut("/metadata/ownerReferences")
        .and_then(Value::as_array_mut)
    {
        refs.retain(|r| r.get("uid").and_then(Value::as_str) != Some(owner_uid));
    }
    let rv = state.store.next_rv();
    ensure_metadata(&mut dependent).insert("resourceVersion".into(), json!(rv.to_string()));
    state.store.put(resource, dependent, rv);
}

fn type_of(state: &State, resource: &StorageKey) -> Option<std::sync::Arc<ResourceType>> {
    state
        .registry
        .all()
        .find(|rt| rt.group == resource.group && rt.plural == resource.plural)
        .cloned()
}

/// Deletes every object of a namespace (the namespace controller, done at once).
pub(super) fn empty_namespace(state: &mut State, namespace: &str) {
    let types: Vec<_> = state
        .registry
        .all()
        .filter(|rt| rt.namespaced)
        .cloned()
        .collect();
    let mut seen = std::collections::BTreeSet::new();
    for rt in types {
        if !seen.insert(rt.storage_key()) {
            continue;
        }
        let keys: Vec<ObjectKey> = state
            .store
            .collection(&rt.storage_key())
            .map(|c| {
                c.keys()
                    .filter(|(ns, _)| ns == namespace)
                    .cloned()
                    .collect()
            })
            .unwrap_or_default();
        for (ns, name) in keys {
            let _ = delete_locked(state, &rt, &ns, &name, &DeleteOptions::default());
        }
    }
}

/// Deletes every object of a custom resource whose CRD is gone.
pub(super) fn drop_all(state: &mut State, resource: &StorageKey) {
    let objects: Vec<Value> = state
        .store
        .collection(resource)
        .map(|c| c.values().map(|o| (**o).clone()).collect())
        .unwrap_or_default();
    for obj in objects {
        let key = (
            crate::store::namespace_of(&obj).to_string(),
            name_of(&obj).to_string(),
        );
        let rv = state.store.next_rv();
        state.store.remove(resource, &key, obj, rv);
    }
}
