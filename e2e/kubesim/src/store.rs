//! Object storage: every object once, one monotonic resourceVersion counter for all of them, a bounded history
//! of changes for watches to resume from, and an index from owner uid to dependents for garbage collection.
//! The store knows nothing of API semantics; `apiserver` decides what to write.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::{Arc, OnceLock};

use serde_json::Value;
use tokio::sync::broadcast;

use crate::json::At;
use crate::registry::StorageKey;

/// Namespace (empty for cluster-scoped objects) and name.
pub type ObjectKey = (String, String);

/// What happened to an object, as a watch reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    Added,
    Modified,
    Deleted,
}

impl EventType {
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Added => "ADDED",
            EventType::Modified => "MODIFIED",
            EventType::Deleted => "DELETED",
        }
    }
}

/// One change, at the resourceVersion it produced.
#[derive(Debug)]
pub struct Change {
    pub rv: u64,
    pub event: EventType,
    pub resource: StorageKey,
    pub object: Arc<Value>,
    /// The object as stored before this change (none for a creation), so that a watch with a selector can tell
    /// an object entering or leaving its selection.
    pub previous: Option<Arc<Value>>,
    /// `object` as JSON, written once for every watch that serves it as stored rather than once per watch.
    encoded: OnceLock<Vec<u8>>,
}

impl Change {
    /// The object serialised as JSON; the first watch to send it pays for the serialisation.
    pub fn encoded(&self) -> &[u8] {
        self.encoded
            .get_or_init(|| serde_json::to_vec(self.object.as_ref()).unwrap_or_default())
    }

    pub fn namespace(&self) -> &str {
        namespace_of(&self.object)
    }
}

pub fn namespace_of(obj: &Value) -> &str {
    obj.at("/metadata/namespace")
        .and_then(Value::as_str)
        .unwrap_or("")
}

pub fn name_of(obj: &Value) -> &str {
    obj.at("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("")
}

pub fn uid_of(obj: &Value) -> &str {
    obj.at("/metadata/uid")
        .and_then(Value::as_str)
        .unwrap_or("")
}

/// The uids an object names in `metadata.ownerReferences`.
pub fn owner_uids(obj: &Value) -> Vec<String> {
    obj.at("/metadata/ownerReferences")
        .and_then(Value::as_array)
        .map(|refs| {
            refs.iter()
                .filter_map(|r| r.get("uid").and_then(Value::as_str))
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

/// How many changes a feed holds for a slow reader before it lags (and its watch is closed).
fn feed_capacity(history_limit: usize) -> usize {
    history_limit.clamp(1024, 1 << 16)
}

pub struct Store {
    rv: u64,
    collections: HashMap<StorageKey, BTreeMap<ObjectKey, Arc<Value>>>,
    dependents: HashMap<String, BTreeSet<(StorageKey, ObjectKey)>>,
    by_uid: HashMap<String, (StorageKey, ObjectKey)>,
    history: VecDeque<Arc<Change>>,
    history_limit: usize,
    changes: broadcast::Sender<Arc<Change>>,
    /// One feed per resource for watches, so a change wakes only the watches of its resource (on the one
    /// feed of all changes, every watch woke for every change, though each watches one resource).
    feeds: HashMap<StorageKey, broadcast::Sender<Arc<Change>>>,
}

impl Store {
    pub fn new(history_limit: usize) -> Store {
        let (changes, _) = broadcast::channel(feed_capacity(history_limit));
        Store {
            rv: 1,
            collections: HashMap::new(),
            dependents: HashMap::new(),
            by_uid: HashMap::new(),
            history: VecDeque::new(),
            history_limit,
            changes,
            feeds: HashMap::new(),
        }
    }

    pub fn resource_version(&self) -> u64 {
        self.rv
    }

    pub fn next_rv(&mut self) -> u64 {
        self.rv += 1;
        self.rv
    }

    /// The oldest resourceVersion a watch can resume from without `410 Gone`.
    pub fn oldest_resumable(&self) -> u64 {
        self.history
            .front()
            .map(|c| c.rv.saturating_sub(1))
            .unwrap_or(self.rv)
    }

    /// Every change from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Change>> {
        self.changes.subscribe()
    }

    /// The changes of one resource from now on.
    pub fn subscribe_to(&mut self, resource: &StorageKey) -> broadcast::Receiver<Arc<Change>> {
        let capacity = feed_capacity(self.history_limit);
        self.feeds
            .entry(resource.clone())
            .or_insert_with(|| broadcast::channel(capacity).0)
            .subscribe()
    }

    /// Changes after `rv`, oldest first.
    pub fn history_since(&self, rv: u64) -> impl Iterator<Item = &Arc<Change>> {
        let start = self.history.partition_point(|c| c.rv <= rv);
        self.history.range(start..)
    }

    pub fn get(&self, resource: &StorageKey, key: &ObjectKey) -> Option<&Arc<Value>> {
        self.collections.get(resource)?.get(key)
    }

    pub fn collection(&self, resource: &StorageKey) -> Option<&BTreeMap<ObjectKey, Arc<Value>>> {
        self.collections.get(resource)
    }

    /// Objects whose `ownerReferences` name this uid.
    pub fn dependents_of(&self, uid: &str) -> Vec<(StorageKey, ObjectKey)> {
        self.dependents
            .get(uid)
            .map(|d| d.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// Where the object with this uid lives, if it still exists.
    pub fn locate_uid(&self, uid: &str) -> Option<&(StorageKey, ObjectKey)> {
        self.by_uid.get(uid)
    }

    /// Stores `object`, whose `metadata.resourceVersion` must already be `rv` (from [`Store::next_rv`]).
    pub fn put(&mut self, resource: &StorageKey, object: Value, rv: u64) -> Arc<Value> {
        let key = (
            namespace_of(&object).to_string(),
            name_of(&object).to_string(),
        );
        let object = Arc::new(object);
        let previous = self
            .collections
            .entry(resource.clone())
            .or_default()
            .insert(key.clone(), object.clone());
        if let Some(previous) = &previous {
            self.unindex(resource, &key, previous);
        }
        self.index(resource, &key, &object);
        let event = if previous.is_some() {
            EventType::Modified
        } else {
            EventType::Added
        };
        self.record(rv, event, resource, object.clone(), previous);
        object
    }

    /// Removes an object; `final_state` is what the DELETED event carries (its resourceVersion is `rv`).
    pub fn remove(&mut self, resource: &StorageKey, key: &ObjectKey, final_state: Value, rv: u64) {
        let Some(removed) = self
            .collections
            .get_mut(resource)
            .and_then(|c| c.remove(key))
        else {
            return;
        };
        self.unindex(resource, key, &removed);
        self.record(
            rv,
            EventType::Deleted,
            resource,
            Arc::new(final_state),
            Some(removed),
        );
    }

    fn record(
        &mut self,
        rv: u64,
        event: EventType,
        resource: &StorageKey,
        object: Arc<Value>,
        previous: Option<Arc<Value>>,
    ) {
        let change = Arc::new(Change {
            rv,
            event,
            resource: resource.clone(),
            object,
            previous,
            encoded: OnceLock::new(),
        });
        self.history.push_back(change.clone());
        while self.history.len() > self.history_limit {
            self.history.pop_front();
        }
        // Nobody listening is fine: the change stays in the history.
        if let Some(feed) = self.feeds.get(resource) {
            let _ = feed.send(change.clone());
        }
        let _ = self.changes.send(change);
    }

    /// Forgets history so that resuming from any earlier version answers `410 Gone`.
    pub fn compact(&mut self) {
        self.history.clear();
    }

    fn index(&mut self, resource: &StorageKey, key: &ObjectKey, object: &Value) {
        self.by_uid
            .insert(uid_of(object).to_string(), (resource.clone(), key.clone()));
        for uid in owner_uids(object) {
            self.dependents
                .entry(uid)
                .or_default()
                .insert((resource.clone(), key.clone()));
        }
    }

    fn unindex(&mut self, resource: &StorageKey, key: &ObjectKey, object: &Value) {
        self.by_uid.remove(uid_of(object));
        for uid in owner_uids(object) {
            if let Some(set) = self.dependents.get_mut(&uid) {
                set.remove(&(resource.clone(), key.clone()));
                if set.is_empty() {
                    self.dependents.remove(&uid);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn key(plural: &str) -> StorageKey {
        StorageKey {
            group: String::new(),
            plural: plural.into(),
        }
    }

    fn object(name: &str, rv: u64) -> Value {
        json!({"metadata": {"name": name, "namespace": "default", "resourceVersion": rv.to_string()}})
    }

    #[test]
    fn a_resource_feed_carries_its_own_changes_and_the_common_feed_all_of_them() {
        let mut store = Store::new(100);
        let mut pods = store.subscribe_to(&key("pods"));
        let mut all = store.subscribe();
        let rv = store.next_rv();
        store.put(&key("services"), object("web", rv), rv);
        let rv = store.next_rv();
        store.put(&key("pods"), object("web-1", rv), rv);

        let change = pods.try_recv().expect("the pod's change");
        assert_eq!(name_of(&change.object), "web-1");
        assert!(
            pods.try_recv().is_err(),
            "no service change on the pods feed"
        );
        assert_eq!(name_of(&all.try_recv().expect("service").object), "web");
        assert_eq!(name_of(&all.try_recv().expect("pod").object), "web-1");
        assert_eq!(
            change.encoded(),
            serde_json::to_vec(change.object.as_ref())
                .unwrap()
                .as_slice(),
            "the shared encoding is the object's JSON"
        );
    }
}
