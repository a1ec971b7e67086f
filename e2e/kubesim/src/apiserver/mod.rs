//! The API server's semantics without HTTP: what get, list, watch, create, update, patch and delete do to the
//! store. The HTTP layer and the simulated controllers both call this; only the HTTP layer is counted and
//! fault-injected.

mod defaults;
mod delete;
mod error;
mod kinds;
mod object_meta;
mod write;

use std::sync::{Arc, Mutex, MutexGuard};

use serde_json::Value;
use tokio::sync::broadcast;

pub use delete::DeleteOptions;
pub use error::ApiError;
pub use write::{PatchType, Subresource, WriteOptions};

use crate::json::At;
use crate::registry::{Registry, ResourceType};
use crate::selector::{FieldSelector, LabelSelector};
use crate::store::{Change, EventType, ObjectKey, Store};

/// What a list or watch selects.
#[derive(Debug, Clone, Default)]
pub struct ListOptions {
    pub label_selector: Option<String>,
    pub field_selector: Option<String>,
    pub limit: Option<usize>,
    pub continue_token: Option<String>,
}

/// One page of a list.
#[derive(Debug)]
pub struct ListPage {
    pub items: Vec<Arc<Value>>,
    pub resource_version: u64,
    pub continue_token: Option<String>,
    pub remaining: Option<usize>,
}

/// Where a watch starts.
#[derive(Debug, Clone, Default)]
pub struct WatchOptions {
    pub list: ListOptions,
    /// `None` or `Some(0)`: start with the current state as ADDED events.
    pub resource_version: Option<u64>,
    pub send_initial_events: bool,
}

/// Compiled selectors of a list or watch.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub namespace: Option<String>,
    pub labels: LabelSelector,
    pub fields: FieldSelector,
}

impl Filter {
    pub fn new(
        rt: &ResourceType,
        namespace: Option<&str>,
        options: &ListOptions,
    ) -> Result<Filter, ApiError> {
        let labels = match options.label_selector.as_deref() {
            Some(s) => LabelSelector::parse(s).map_err(ApiError::bad_request)?,
            None => LabelSelector::default(),
        };
        let fields = match options.field_selector.as_deref() {
            Some(s) => FieldSelector::parse(s).map_err(ApiError::bad_request)?,
            None => FieldSelector::default(),
        };
        rt.check_field_selector(fields.paths())
            .map_err(ApiError::bad_request)?;
        Ok(Filter {
            namespace: namespace.filter(|ns| !ns.is_empty()).map(str::to_string),
            labels,
            fields,
        })
    }

    /// The event a watch with this filter sees for a change, as kube-apiserver's watch cache decides it: an
    /// object entering the selection is ADDED, one that stays in it MODIFIED, and one leaving it DELETED, in its
    /// previous state but at the change's resourceVersion. `None` when the change is invisible to this watch.
    pub fn event_for(&self, change: &Change) -> Option<(EventType, Arc<Value>)> {
        let passes_now = change.event != EventType::Deleted && self.matches(&change.object);
        let passed_before = change.previous.as_ref().is_some_and(|p| self.matches(p));
        match (passed_before, passes_now) {
            (false, true) => Some((EventType::Added, change.object.clone())),
            (true, true) => Some((EventType::Modified, change.object.clone())),
            (true, false) if change.event == EventType::Deleted => {
                Some((EventType::Deleted, change.object.clone()))
            }
            (true, false) => {
                let mut last_seen = change.previous.as_deref().cloned().unwrap_or_default();
                if let Some(meta) = last_seen.get_mut("metadata").and_then(Value::as_object_mut) {
                    meta.insert(
                        "resourceVersion".into(),
                        Value::String(change.rv.to_string()),
                    );
                }
                Some((EventType::Deleted, Arc::new(last_seen)))
            }
            (false, false) => None,
        }
    }

    pub fn matches(&self, obj: &Value) -> bool {
        if let Some(ns) = &self.namespace
            && crate::store::namespace_of(obj) != ns
        {
            return false;
        }
        self.labels
            .matches(obj.at("/metadata/labels").unwrap_or(&Value::Null))
            && self.fields.matches(obj)
    }
}

/// The start of a watch: events to send first, then the live feed (changes with `rv` above `after`).
pub struct WatchStart {
    pub initial: Vec<(EventType, Arc<Value>)>,
    pub after: u64,
    pub feed: broadcast::Receiver<Arc<Change>>,
    pub filter: Filter,
}

pub(crate) struct State {
    pub registry: Registry,
    pub store: Store,
}

/// The in-process API server.
pub struct Cluster {
    state: Mutex<State>,
}

impl Cluster {
    pub fn new(history_limit: usize) -> Cluster {
        let mut state = State {
            registry: Registry::with_builtins(),
            store: Store::new(history_limit),
        };
        for ns in ["default", "kube-system", "kube-public", "kube-node-lease"] {
            kinds::bootstrap_namespace(&mut state, ns);
        }
        Cluster {
            state: Mutex::new(state),
        }
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock would be a kubesim bug; the data is still consistent
        // because every write is applied by a single `put` or `remove`.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn resource_type(
        &self,
        group: &str,
        version: &str,
        plural: &str,
    ) -> Option<Arc<ResourceType>> {
        self.lock().registry.get(group, version, plural)
    }

    pub fn resource_type_for_kind(
        &self,
        api_version: &str,
        kind: &str,
    ) -> Option<Arc<ResourceType>> {
        self.lock().registry.by_kind(api_version, kind)
    }

    pub fn registry(&self) -> Registry {
        self.lock().registry.clone()
    }

    pub fn resource_version(&self) -> u64 {
        self.lock().store.resource_version()
    }

    /// Every change from now on, in resourceVersion order (the simulated controllers' feed).
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Change>> {
        self.lock().store.subscribe()
    }

    /// Objects whose `ownerReferences` name this uid.
    pub fn dependents(&self, uid: &str) -> Vec<Arc<Value>> {
        let state = self.lock();
        state
            .store
            .dependents_of(uid)
            .iter()
            .filter_map(|(resource, key)| state.store.get(resource, key).cloned())
            .collect()
    }

    /// Forgets watch history: any resume from an earlier version gets `410 Gone`.
    pub fn compact(&self) {
        self.lock().store.compact();
    }

    pub fn get(
        &self,
        rt: &ResourceType,
        namespace: &str,
        name: &str,
    ) -> Result<Arc<Value>, ApiError> {
        let key = object_key(rt, namespace, name);
        // Shared under the lock, served after it (the guard is this statement's temporary).
        let stored = self.lock().store.get(&rt.storage_key(), &key).cloned();
        stored
            .map(|obj| served(rt, &obj))
            .ok_or_else(|| ApiError::not_found(rt, name))
    }

    pub fn list(
        &self,
        rt: &ResourceType,
        namespace: Option<&str>,
        options: &ListOptions,
    ) -> Result<ListPage, ApiError> {
        let filter = Filter::new(rt, namespace, options)?;
        let state = self.lock();
        let (snapshot_rv, start_after) = match options.continue_token.as_deref() {
            Some(token) => parse_continue(token)?,
            None => (state.store.resource_version(), None),
        };
        let Some(collection) = state.store.collection(&rt.storage_key()) else {
            return Ok(ListPage {
                items: Vec::new(),
                resource_version: snapshot_rv,
                continue_token: None,
                remaining: None,
            });
        };
        // Keys sort by namespace first, so one namespace is one contiguous range.
        let first = match (&start_after, &filter.namespace) {
            (Some(key), _) => std::ops::Bound::Excluded(key.clone()),
            (None, Some(ns)) => std::ops::Bound::Included((ns.clone(), String::new())),
            (None, None) => std::ops::Bound::Unbounded,
        };
        let in_namespace =
            |key: &ObjectKey| filter.namespace.as_ref().is_none_or(|ns| &key.0 == ns);
        let range = collection
            .range::<ObjectKey, _>((first, std::ops::Bound::Unbounded))
            .take_while(|(key, _)| in_namespace(key));
        let limit = options.limit.filter(|l| *l > 0).unwrap_or(usize::MAX);
        let mut items = Vec::new();
        let mut matching = range.filter(|(_, obj)| filter.matches(obj));
        for (_, obj) in matching.by_ref().take(limit) {
            items.push(served(rt, obj));
        }
        let remaining = matching.count();
        let continue_token = (remaining > 0)
            .then(|| items.last().map(|last| continue_token(snapshot_rv, last)))
            .flatten();
        Ok(ListPage {
            items,
            resource_version: snapshot_rv,
            continue_token,
            remaining: (remaining > 0).then_some(remaining),
        })
    }

    pub fn watch(
        &self,
        rt: &ResourceType,
        namespace: Option<&str>,
        options: &WatchOptions,
    ) -> Result<WatchStart, ApiError> {
        let filter = Filter::new(rt, namespace, &options.list)?;
        let mut state = self.lock();
        let resource = rt.storage_key();
        let feed = state.store.subscribe_to(&resource);
        let now = state.store.resource_version();
        let initial = match options.resource_version.filter(|rv| *rv > 0) {
            Some(rv) if rv < state.store.oldest_resumable() => {
                return Err(ApiError::gone(format!(
                    "too old resource version: {rv} ({})",
                    state.store.oldest_resumable()
                )));
            }
            Some(rv) => state
                .store
                .history_since(rv)
                .filter(|c| c.resource == resource)
                .filter_map(|c| filter.event_for(c))
                .map(|(event, object)| (event, served(rt, &object)))
                .collect(),
            None => state
                .store
                .collection(&resource)
                .map(|c| {
                    c.values()
                        .filter(|o| filter.matches(o))
                        .map(|o| (EventType::Added, served(rt, o)))
                        .collect()
                })
                .unwrap_or_default(),
        };
        Ok(WatchStart {
            initial,
            after: now,
            feed,
            filter,
        })
    }
}

pub(crate) fn object_key(rt: &ResourceType, namespace: &str, name: &str) -> ObjectKey {
    let ns = if rt.namespaced { namespace } else { "" };
    (ns.to_string(), name.to_string())
}

/// Objects are stored in one version; a read in another served version only changes `apiVersion`
/// (every CRD here uses the `None` conversion strategy).
pub fn with_api_version(rt: &ResourceType, obj: &Value) -> Value {
    let mut out = obj.clone();
    if let Some(map) = out.as_object_mut() {
        map.insert("apiVersion".into(), Value::String(rt.api_version()));
        map.insert("kind".into(), Value::String(rt.kind.clone()));
    }
    out
}

/// A stored object as a read in `rt`'s version serves it: shared, not copied, when it is stored in that
/// version already (the common case; copying every object for every watcher cost kubesim a third of its
/// CPU when 10,000 Rollouts were reconciled).
pub fn served(rt: &ResourceType, obj: &Arc<Value>) -> Arc<Value> {
    let kind = obj.get("kind").and_then(Value::as_str);
    let version = obj.get("apiVersion").and_then(Value::as_str);
    if kind == Some(rt.kind.as_str()) && version.is_some_and(|v| rt.is_api_version(v)) {
        return obj.clone();
    }
    Arc::new(with_api_version(rt, obj))
}

fn continue_token(rv: u64, last: &Value) -> String {
    format!(
        "{rv}.{}.{}",
        crate::store::namespace_of(last),
        crate::store::name_of(last)
    )
}

fn parse_continue(token: &str) -> Result<(u64, Option<ObjectKey>), ApiError> {
    let invalid = || ApiError::bad_request(format!("continue key is not valid: {token}"));
    let mut parts = token.splitn(2, '.');
    let rv = parts
        .next()
        .and_then(|p| p.parse().ok())
        .ok_or_else(invalid)?;
    let rest = parts.next().ok_or_else(invalid)?;
    // Namespaces cannot contain dots; names can.
    let (ns, name) = rest.split_once('.').ok_or_else(invalid)?;
    Ok((rv, Some((ns.to_string(), name.to_string()))))
}
