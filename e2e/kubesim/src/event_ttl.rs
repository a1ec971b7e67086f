//! Events expire, as the API server's `--event-ttl` (an hour by default) makes them: each Event is deleted
//! once it is older than the TTL, and watches see it go. Without this a long run keeps every Event ever
//! posted, and kubesim's memory grows with them.
//!
//! A sweep every sixtieth of the TTL (at least every 100 ms, at most every minute) deletes what has
//! expired, so an Event lives between the TTL and a sixtieth more. The sweep reads the store rather than
//! following the change feed: a reader of the feed is woken for every change, and one that falls behind
//! during a burst must list everything again, which is when the server can least afford it.

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use crate::apiserver::{Cluster, DeleteOptions, ListOptions};
use crate::json::At;
use crate::registry::ResourceType;
use crate::store::{name_of, namespace_of, uid_of};

/// Deletes every Event older than `ttl`, sweeping until the task is dropped.
pub async fn run(cluster: Arc<Cluster>, ttl: Duration) {
    let resources = event_resources(&cluster);
    let mut sweeps = tokio::time::interval(sweep_interval(ttl));
    sweeps.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        sweeps.tick().await;
        let now = jiff::Timestamp::now();
        for resource in &resources {
            sweep(&cluster, resource, ttl, now).await;
        }
    }
}

fn sweep_interval(ttl: Duration) -> Duration {
    (ttl / 60).clamp(Duration::from_millis(100), Duration::from_secs(60))
}

/// The Event kinds of the core and `events.k8s.io` groups, each stored on its own here.
fn event_resources(cluster: &Cluster) -> Vec<Arc<ResourceType>> {
    [("", "v1"), ("events.k8s.io", "v1")]
        .into_iter()
        .filter_map(|(group, version)| cluster.resource_type(group, version, "events"))
        .collect()
}

/// Deletions between two yields: a burst of Events (a cold start posts tens of thousands) expires as
/// a burst, and the simulated controllers and watches should get to run in between.
const DELETES_PER_TURN: usize = 1_000;

async fn sweep(cluster: &Cluster, resource: &ResourceType, ttl: Duration, now: jiff::Timestamp) {
    let Ok(page) = cluster.list(resource, None, &ListOptions::default()) else {
        return;
    };
    let expired: Vec<&Arc<Value>> = page.items.iter().filter(|e| expired(e, ttl, now)).collect();
    for turn in expired.chunks(DELETES_PER_TURN) {
        for event in turn {
            // The uid precondition spares an Event deleted and posted again under the same name.
            let options = DeleteOptions {
                precondition_uid: Some(uid_of(event).to_string()),
                ..DeleteOptions::default()
            };
            let _ = cluster.delete(resource, namespace_of(event), name_of(event), &options);
        }
        tokio::task::yield_now().await;
    }
}

/// Whether the Event is older than `ttl`. `creationTimestamp` has one-second resolution, so an Event can
/// go up to a second early, which a TTL of an hour does not notice.
fn expired(event: &Value, ttl: Duration, now: jiff::Timestamp) -> bool {
    let Some(created) = event
        .at("/metadata/creationTimestamp")
        .and_then(Value::as_str)
        .and_then(|t| t.parse::<jiff::Timestamp>().ok())
    else {
        return false;
    };
    now.duration_since(created)
        .try_into()
        .is_ok_and(|age: Duration| age >= ttl)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn created(at: &str) -> Value {
        json!({"metadata": {"name": "e", "creationTimestamp": at}})
    }

    #[test]
    fn an_event_expires_once_it_is_older_than_the_ttl() {
        let now: jiff::Timestamp = "2026-01-01T01:00:00Z".parse().unwrap();
        let hour = Duration::from_secs(3600);
        assert!(expired(&created("2026-01-01T00:00:00Z"), hour, now));
        assert!(!expired(&created("2026-01-01T00:00:01Z"), hour, now));
        assert!(
            !expired(&created("2026-01-01T02:00:00Z"), hour, now),
            "a clock behind the Event's"
        );
        assert!(
            !expired(&json!({"metadata": {"name": "e"}}), hour, now),
            "no creation time: kept"
        );
    }

    #[test]
    fn sweeps_come_every_sixtieth_of_the_ttl_within_bounds() {
        assert_eq!(
            sweep_interval(Duration::from_secs(3600)),
            Duration::from_secs(60)
        );
        assert_eq!(
            sweep_interval(Duration::from_secs(6)),
            Duration::from_millis(100)
        );
        assert_eq!(
            sweep_interval(Duration::from_secs(600)),
            Duration::from_secs(10)
        );
        assert_eq!(
            sweep_interval(Duration::from_secs(86_400)),
            Duration::from_secs(60)
        );
    }
}
