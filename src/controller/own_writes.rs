//! What this process's own writes changed that its watch caches may not show yet. A reconcile planned on
//! a cache from before our own write would repeat that write: a conflict, a ReplicaSet created or
//! deleted a second time. Such a reconcile is skipped instead; the watch event of our write triggers the next one.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Per object uid, the resourceVersions our last writes to the object moved it on from: the one the
/// reconcile read and, when it wrote twice (the revision annotation, then the status), the one in
/// between. A cached object at any of them has not caught up with our own writes yet; planning on it
/// would make a write conditioned on a version already gone, and a conflict.
#[derive(Default)]
pub struct OwnWrites(Mutex<HashMap<String, Vec<String>>>);

impl OwnWrites {
    /// True when the cached version is one our last writes to this object moved it on from.
    pub fn behind(&self, uid: &str, cached_version: &str) -> bool {
        lock(&self.0)
            .get(uid)
            .is_some_and(|passed| passed.iter().any(|v| v == cached_version))
    }

    /// After a reconcile whose writes moved the object through `versions` (the one it read first, the
    /// one it left last): remembers all but the last, when it moved at all. A write that changed nothing
    /// keeps the version, so the last version is never remembered as passed.
    pub fn remember(&self, uid: &str, versions: &[String]) {
        if let [passed @ .., last] = versions {
            let passed: Vec<String> = passed.iter().filter(|v| *v != last).cloned().collect();
            if !passed.is_empty() {
                lock(&self.0).insert(uid.to_string(), passed);
            }
        }
    }

    pub fn forget(&self, uid: &str) {
        lock(&self.0).remove(uid);
    }

    /// Keeps only the objects whose uid `kept` keeps.
    pub fn retain(&self, kept: impl Fn(&str) -> bool) {
        lock(&self.0).retain(|uid, _| kept(uid));
    }
}

/// What a ReplicaSet looked like in the cache before one of our writes to it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Before {
    /// We created it: the cache did not have it.
    Absent,
    /// We patched or deleted it: the cache had it at this resourceVersion.
    At(String),
}

/// How long a ReplicaSet write is waited for in the cache. Its watch event normally arrives within
/// milliseconds, but the cache may never show it as such: it was deleted again before this reconcile
/// ran, or the watch is re-listing or down. A Rollout must not be held back for longer than this.
pub const REPLICA_SET_PATIENCE: Duration = Duration::from_secs(5);

/// Per Rollout uid, the ReplicaSets the last reconcile that wrote any created, patched or deleted, and
/// when. An entry goes once the cache has caught up; one whose Rollout is never reconciled again (it was
/// deleted meanwhile) goes in the next sweep after [`REPLICA_SET_PATIENCE`], so only Rollouts written in
/// the last few seconds take memory.
pub struct ReplicaSetWrites(Mutex<Pending>);

struct Pending {
    by_rollout: HashMap<String, Written>,
    swept: Instant,
}

struct Written {
    at: Instant,
    writes: Vec<(String, Before)>,
}

impl Default for ReplicaSetWrites {
    fn default() -> Self {
        ReplicaSetWrites(Mutex::new(Pending {
            by_rollout: HashMap::new(),
            swept: Instant::now(),
        }))
    }
}

impl ReplicaSetWrites {
    /// Remembers the ReplicaSet writes of a reconcile of the Rollout `uid` that ended at `at`, and at
    /// most once per [`REPLICA_SET_PATIENCE`] drops the entries that are no longer waited for.
    pub fn remember(&self, uid: &str, writes: Vec<(String, Before)>, at: Instant) {
        if writes.is_empty() {
            return;
        }
        let mut pending = lock(&self.0);
        if at.saturating_duration_since(pending.swept) >= REPLICA_SET_PATIENCE {
            pending.by_rollout.retain(|_, written| {
                at.saturating_duration_since(written.at) < REPLICA_SET_PATIENCE
            });
            pending.swept = at;
        }
        pending
            .by_rollout
            .insert(uid.to_string(), Written { at, writes });
    }

    /// How many Rollouts have writes remembered.
    #[cfg(test)]
    fn len(&self) -> usize {
        lock(&self.0).by_rollout.len()
    }

    /// True while the cache, read through `cached_version` (a ReplicaSet's name to the resourceVersion
    /// cached for it), still shows one of the Rollout's last written ReplicaSets as it was before our
    /// write, and for at most [`REPLICA_SET_PATIENCE`] after it. The first time it is not, the writes
    /// are forgotten: a caught-up cache is never asked about them again.
    pub fn behind(
        &self,
        uid: &str,
        now: Instant,
        cached_version: impl Fn(&str) -> Option<String>,
    ) -> bool {
        let mut pending = lock(&self.0);
        let written = &mut pending.by_rollout;
        let Some(last) = written.get(uid) else {
            return false;
        };
        let waiting = now.saturating_duration_since(last.at) < REPLICA_SET_PATIENCE
            && last.writes.iter().any(|(name, before)| {
                match (before, cached_version(name)) {
                    (Before::Absent, cached) => cached.is_none(),
                    (Before::At(version), Some(cached)) => *version == cached,
                    // Deleted: our delete seen, or someone else's after our patch.
                    (Before::At(_), None) => false,
                }
            });
        if !waiting {
            written.remove(uid);
        }
        waiting
    }

    pub fn forget(&self, uid: &str) {
        lock(&self.0).by_rollout.remove(uid);
    }

    /// Keeps only the Rollouts whose uid `kept` keeps.
    pub fn retain(&self, kept: impl Fn(&str) -> bool) {
        lock(&self.0).by_rollout.retain(|uid, _| kept(uid));
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retain_keeps_only_the_objects_it_is_told_to() {
        let writes = OwnWrites::default();
        for uid in ["a", "b"] {
            writes.remember(uid, &["1".to_string(), "2".to_string()]);
        }
        writes.retain(|uid| uid == "b");
        assert!(!writes.behind("a", "1"), "a forgotten");
        assert!(writes.behind("b", "1"), "b kept");

        let replica_sets = ReplicaSetWrites::default();
        let now = Instant::now();
        for uid in ["a", "b"] {
            replica_sets.remember(uid, vec![("web-1".into(), Before::Absent)], now);
        }
        replica_sets.retain(|uid| uid == "b");
        assert_eq!(replica_sets.len(), 1);
        assert!(replica_sets.behind("b", now, |_| None), "b kept");
    }

    #[test]
    fn a_cache_at_a_version_we_wrote_from_is_behind() {
        let versions = |vs: &[&str]| vs.iter().map(|v| v.to_string()).collect::<Vec<_>>();
        let writes = OwnWrites::default();
        assert!(!writes.behind("uid", "10"), "nothing written yet");
        writes.remember("uid", &versions(&["10"]));
        assert!(
            !writes.behind("uid", "10"),
            "a reconcile that wrote nothing"
        );
        writes.remember("uid", &versions(&["10", "12"]));
        assert!(
            writes.behind("uid", "10"),
            "the cache still has what we read"
        );
        assert!(!writes.behind("uid", "12"), "the cache caught up");
        assert!(
            !writes.behind("uid", "13"),
            "a later change by someone else"
        );
        assert!(!writes.behind("other", "10"));
        writes.forget("uid");
        assert!(!writes.behind("uid", "10"));
    }

    #[test]
    fn a_cache_between_two_of_our_writes_is_behind() {
        let writes = OwnWrites::default();
        let passed = ["20", "21", "22"].map(String::from);
        writes.remember("uid", &passed);
        assert!(writes.behind("uid", "20"), "what the reconcile read");
        assert!(
            writes.behind("uid", "21"),
            "the revision annotation written, the status not yet seen"
        );
        assert!(!writes.behind("uid", "22"), "the cache caught up");
        writes.remember("uid", &["22".to_string()]);
        assert!(
            writes.behind("uid", "21"),
            "a reconcile that wrote nothing keeps what is still stale"
        );
    }

    #[test]
    fn a_write_that_changed_nothing_is_not_waited_for() {
        let writes = OwnWrites::default();
        writes.remember("uid", &["30", "30"].map(String::from));
        assert!(!writes.behind("uid", "30"));
        writes.remember("uid", &["30", "31", "31"].map(String::from));
        assert!(writes.behind("uid", "30"));
        assert!(!writes.behind("uid", "31"));
    }

    /// A cache of ReplicaSet names to resourceVersions, as `behind` reads it.
    fn cache(entries: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let entries: HashMap<String, String> = entries
            .iter()
            .map(|(name, version)| (name.to_string(), version.to_string()))
            .collect();
        move |name| entries.get(name).cloned()
    }

    #[test]
    fn a_created_replica_set_is_waited_for_until_the_cache_has_it() {
        let writes = ReplicaSetWrites::default();
        let t0 = Instant::now();
        assert!(!writes.behind("uid", t0, cache(&[])), "nothing written yet");
        writes.remember("uid", vec![("web-new".into(), Before::Absent)], t0);
        assert!(writes.behind("uid", t0, cache(&[("web-old", "3")])));
        assert!(!writes.behind("other", t0, cache(&[])));
        assert!(!writes.behind("uid", t0, cache(&[("web-new", "7")])));
        assert!(
            !writes.behind("uid", t0, cache(&[])),
            "caught up once: forgotten, even if the ReplicaSet is deleted afterwards"
        );
    }

    #[test]
    fn a_patched_replica_set_is_waited_for_until_the_cache_moves_past_the_version_we_read() {
        let writes = ReplicaSetWrites::default();
        let t0 = Instant::now();
        writes.remember(
            "uid",
            vec![
                ("web-new".into(), Before::At("7".into())),
                ("web-old".into(), Before::At("3".into())),
            ],
            t0,
        );
        let both_read = cache(&[("web-new", "7"), ("web-old", "3")]);
        assert!(writes.behind("uid", t0, &both_read));
        assert!(
            writes.behind("uid", t0, cache(&[("web-new", "9"), ("web-old", "3")])),
            "one of the two writes not seen yet"
        );
        assert!(
            !writes.behind("uid", t0, cache(&[("web-new", "9")])),
            "seen, and the other deleted since"
        );
        assert!(!writes.behind("uid", t0, &both_read), "forgotten");
    }

    #[test]
    fn a_deleted_replica_set_is_waited_for_until_the_cache_drops_that_version() {
        let writes = ReplicaSetWrites::default();
        let t0 = Instant::now();
        writes.remember("uid", vec![("web-old".into(), Before::At("3".into()))], t0);
        assert!(writes.behind("uid", t0, cache(&[("web-old", "3"), ("web-new", "9")])));
        assert!(!writes.behind("uid", t0, cache(&[("web-new", "9")])));
        writes.remember("uid", vec![("web-old".into(), Before::At("3".into()))], t0);
        assert!(
            !writes.behind("uid", t0, cache(&[("web-old", "12")])),
            "created again under the same name: not ours to wait for"
        );
    }

    #[test]
    fn writes_of_rollouts_never_reconciled_again_are_swept() {
        let writes = ReplicaSetWrites::default();
        let t0 = Instant::now();
        for uid in ["deleted-1", "deleted-2"] {
            writes.remember(uid, vec![("rs".into(), Before::Absent)], t0);
        }
        let later = t0 + REPLICA_SET_PATIENCE;
        writes.remember("busy", vec![("rs".into(), Before::Absent)], later);
        assert_eq!(writes.len(), 1, "only the write of the last few seconds");
        writes.remember(
            "deleted-1",
            vec![("rs".into(), Before::Absent)],
            later + Duration::from_secs(1),
        );
        assert_eq!(
            writes.len(),
            2,
            "no sweep until the patience has passed again"
        );
    }

    #[test]
    fn a_write_the_cache_never_shows_is_waited_for_no_longer_than_the_patience() {
        let writes = ReplicaSetWrites::default();
        let t0 = Instant::now();
        writes.remember("uid", vec![("web-new".into(), Before::Absent)], t0);
        let just_before = t0 + REPLICA_SET_PATIENCE - Duration::from_millis(1);
        assert!(writes.behind("uid", just_before, cache(&[])));
        assert!(!writes.behind("uid", t0 + REPLICA_SET_PATIENCE, cache(&[])));
        assert!(!writes.behind("uid", t0, cache(&[])), "forgotten");
    }

    #[test]
    fn a_reconcile_that_wrote_no_replica_set_keeps_what_is_waited_for() {
        let writes = ReplicaSetWrites::default();
        let t0 = Instant::now();
        writes.remember("uid", vec![("web-new".into(), Before::Absent)], t0);
        writes.remember("uid", Vec::new(), t0);
        assert!(writes.behind("uid", t0, cache(&[])));
        writes.forget("uid");
        assert!(!writes.behind("uid", t0, cache(&[])));
    }
}
