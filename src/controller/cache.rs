//! Caches fed by watches, holding only what the planner needs: each object is reduced to a small state as it
//! arrives (no managedFields, no last-applied annotation, no fields Ramp never reads), and indexed by its
//! controlling owner's uid so observing one Rollout never scans every ReplicaSet in the cluster.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, RwLock};

use kube::Resource;
use kube::runtime::watcher;

/// (namespace, name); namespace is empty for cluster-scoped objects.
pub type Key = (String, String);

/// A cached object reduced to `S`, with its controlling owner's uid when it has one.
#[derive(Debug)]
struct Entry<S> {
    owner: Option<String>,
    state: Arc<S>,
}

#[derive(Debug)]
struct Contents<S> {
    by_key: HashMap<Key, Entry<S>>,
    by_owner: HashMap<String, BTreeMap<Key, Arc<S>>>,
}

impl<S> Default for Contents<S> {
    fn default() -> Self {
        Contents {
            by_key: HashMap::new(),
            by_owner: HashMap::new(),
        }
    }
}

impl<S> Contents<S> {
    fn insert(&mut self, key: Key, owner: Option<String>, state: S) {
        self.remove(&key);
        let state = Arc::new(state);
        if let Some(owner) = &owner {
            self.by_owner
                .entry(owner.clone())
                .or_default()
                .insert(key.clone(), state.clone());
        }
        self.by_key.insert(key, Entry { owner, state });
    }

    fn remove(&mut self, key: &Key) {
        let Some(old) = self.by_key.remove(key) else {
            return;
        };
        if let Some(owner) = old.owner
            && let Some(owned) = self.by_owner.get_mut(&owner)
        {
            owned.remove(key);
            if owned.is_empty() {
                self.by_owner.remove(&owner);
            }
        }
    }
}

/// One kind of object, reduced and indexed.
#[derive(Debug)]
pub struct Cache<S> {
    contents: RwLock<Contents<S>>,
    /// Objects of a re-list in progress; swapped in when the list is complete.
    relisting: RwLock<Option<Contents<S>>>,
    ready: std::sync::atomic::AtomicBool,
}

impl<S> Default for Cache<S> {
    fn default() -> Self {
        Cache {
            contents: RwLock::default(),
            relisting: RwLock::new(None),
            ready: Default::default(),
        }
    }
}

/// How an object of kind `K` enters a cache: its reduced state, or `None` to leave it out.
pub trait Reduce<K>: Sized {
    fn reduce(object: &K) -> Option<Self>;

    /// [`Reduce::reduce`] for an object whose key the cache already holds `previous` for: a state may
    /// reuse what cannot have changed since. Reduced afresh unless a type says otherwise.
    fn reduce_after(object: &K, _previous: &Self) -> Option<Self> {
        Self::reduce(object)
    }
}

fn key_of<K: Resource>(object: &K) -> Key {
    let meta = object.meta();
    (
        meta.namespace.clone().unwrap_or_default(),
        meta.name.clone().unwrap_or_default(),
    )
}

fn controller_uid<K: Resource>(object: &K) -> Option<String> {
    object
        .meta()
        .owner_references
        .as_ref()?
        .iter()
        .find(|r| r.controller == Some(true))
        .map(|r| r.uid.clone())
}

impl<S> Cache<S> {
    /// Applies one watch event.
    pub fn apply<K>(&self, event: &watcher::Event<K>)
    where
        K: Resource,
        S: Reduce<K>,
    {
        match event {
            watcher::Event::Apply(object) => self.upsert(object),
            watcher::Event::Delete(object) => write(&self.contents).remove(&key_of(object)),
            watcher::Event::Init => *write(&self.relisting) = Some(Contents::default()),
            watcher::Event::InitApply(object) => {
                if let Some(relisting) = write(&self.relisting).as_mut()
                    && let Some(state) = S::reduce(object)
                {
                    relisting.insert(key_of(object), controller_uid(object), state);
                }
            }
            watcher::Event::InitDone => {
                if let Some(fresh) = write(&self.relisting).take() {
                    *write(&self.contents) = fresh;
                }
                self.ready.store(true, std::sync::atomic::Ordering::Release);
            }
        }
    }

    fn upsert<K>(&self, object: &K)
    where
        K: Resource,
        S: Reduce<K>,
    {
        let key = key_of(object);
        let previous = read(&self.contents)
            .by_key
            .get(&key)
            .map(|e| e.state.clone());
        // Reduced before the write lock is taken, so reconciles reading the cache do not wait for it.
        let state = match &previous {
            Some(previous) => S::reduce_after(object, previous),
            None => S::reduce(object),
        };
        let mut contents = write(&self.contents);
        match state {
            Some(state) => contents.insert(key, controller_uid(object), state),
            None => contents.remove(&key),
        }
    }

    /// Whether the first complete list has arrived.
    pub fn is_ready(&self) -> bool {
        self.ready.load(std::sync::atomic::Ordering::Acquire)
    }

    /// The objects a controller owner (by uid) controls.
    pub fn owned_by(&self, owner_uid: &str) -> Vec<Arc<S>> {
        read(&self.contents)
            .by_owner
            .get(owner_uid)
            .map(|owned| owned.values().cloned().collect())
            .unwrap_or_default()
    }

    pub fn get(&self, namespace: &str, name: &str) -> Option<Arc<S>> {
        read(&self.contents)
            .by_key
            .get(&(namespace.to_string(), name.to_string()))
            .map(|e| e.state.clone())
    }

    pub fn len(&self) -> usize {
        read(&self.contents).by_key.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

// A poisoned lock means a panic while holding it; the maps are still whole (every change is one insert or
// remove), so keep serving rather than take the controller down.
fn read<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(|e| e.into_inner())
}

fn write<T>(lock: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::ConfigMap;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};

    struct Name(String);
    impl Reduce<ConfigMap> for Name {
        fn reduce(object: &ConfigMap) -> Option<Self> {
            object.metadata.name.clone().map(Name)
        }
    }

    fn owned(name: &str, owner: &str) -> ConfigMap {
        ConfigMap {
            metadata: ObjectMeta {
                name: Some(name.into()),
                namespace: Some("ns".into()),
                owner_references: Some(vec![OwnerReference {
                    uid: owner.into(),
                    controller: Some(true),
                    ..Default::default()
                }]),
                ..Default::default()
            },
            ..Default::default()
        }
    }

    #[test]
    fn objects_are_indexed_by_their_controller() {
        let cache = Cache::<Name>::default();
        cache.apply(&watcher::Event::Apply(owned("a", "u1")));
        cache.apply(&watcher::Event::Apply(owned("b", "u1")));
        cache.apply(&watcher::Event::Apply(owned("c", "u2")));
        assert_eq!(cache.owned_by("u1").len(), 2);
        cache.apply(&watcher::Event::Apply(owned("b", "u2")));
        assert_eq!(cache.owned_by("u1").len(), 1);
        assert_eq!(cache.owned_by("u2").len(), 2);
        cache.apply(&watcher::Event::Delete(owned("c", "u2")));
        assert_eq!(
            cache
                .owned_by("u2")
                .iter()
                .map(|n| n.0.as_str())
                .collect::<Vec<_>>(),
            ["b"]
        );
    }

    #[test]
    fn a_relist_replaces_the_contents_when_complete() {
        let cache = Cache::<Name>::default();
        cache.apply(&watcher::Event::Apply(owned("gone", "u1")));
        cache.apply(&watcher::Event::Init);
        cache.apply(&watcher::Event::InitApply(owned("kept", "u1")));
        assert_eq!(
            cache.len(),
            1,
            "the old contents serve until the list completes"
        );
        assert!(!cache.is_ready());
        cache.apply(&watcher::Event::<ConfigMap>::InitDone);
        assert!(cache.is_ready());
        assert!(cache.get("ns", "gone").is_none());
        assert!(cache.get("ns", "kept").is_some());
    }
}
