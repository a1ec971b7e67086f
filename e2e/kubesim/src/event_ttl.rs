//! Events expire, as the API server's `--event-ttl` (an hour by default) makes them: each Event is deleted
//! that long after it was created, and watches see it go. Without this a long run keeps every Event ever
//! posted, and kubesim's memory grows with them.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tokio::sync::broadcast::error::RecvError;
use tokio::time::Instant;

use crate::apiserver::{Cluster, DeleteOptions, ListOptions};
use crate::json::At;
use crate::registry::ResourceType;
use crate::store::{Change, EventType, name_of, namespace_of, uid_of};

/// An Event due to expire.
struct Expiry {
    at: Instant,
    resource: Arc<ResourceType>,
    namespace: String,
    name: String,
    /// An Event deleted and posted again under the same name expires on its own schedule.
    uid: String,
}

/// The Event kinds of the core and `events.k8s.io` groups, each stored on its own here.
fn event_resources(cluster: &Cluster) -> Vec<Arc<ResourceType>> {
    [("", "v1"), ("events.k8s.io", "v1")]
        .into_iter()
        .filter_map(|(group, version)| cluster.resource_type(group, version, "events"))
        .collect()
}

/// Deletes every Event `ttl` after its creation until the cluster's change feed closes.
pub async fn run(cluster: Arc<Cluster>, ttl: Duration) {
    let resources = event_resources(&cluster);
    let mut feed = cluster.subscribe();
    // Events are created in time order and all live for `ttl`, so a queue is in expiry order.
    let mut queue = existing(&cluster, &resources, ttl);
    loop {
        let next = queue.front().map(|e| e.at);
        tokio::select! {
            change = feed.recv() => match change {
                Ok(change) => {
                    if let Some(expiry) = created_event(&resources, &change, ttl) {
                        queue.push_back(expiry);
                    }
                }
                // Missed changes: start again from what is stored.
                Err(RecvError::Lagged(_)) => queue = existing(&cluster, &resources, ttl),
                Err(RecvError::Closed) => return,
            },
            _ = sleep_until(next) => {
                let now = Instant::now();
                while queue.front().is_some_and(|e| e.at <= now) {
                    if let Some(due) = queue.pop_front() {
                        expire(&cluster, &due);
                    }
                }
            }
        }
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

fn created_event(
    resources: &[Arc<ResourceType>],
    change: &Change,
    ttl: Duration,
) -> Option<Expiry> {
    if change.event != EventType::Added {
        return None;
    }
    let resource = resources
        .iter()
        .find(|rt| rt.storage_key() == change.resource)?;
    Some(expiry_of(resource, &change.object, Instant::now() + ttl))
}

/// The stored Events, each due `ttl` after its `creationTimestamp` (at once if that has passed).
fn existing(cluster: &Cluster, resources: &[Arc<ResourceType>], ttl: Duration) -> VecDeque<Expiry> {
    let now_instant = Instant::now();
    let now = jiff::Timestamp::now();
    let mut expiries: Vec<Expiry> = resources
        .iter()
        .flat_map(|rt| {
            let items = cluster
                .list(rt, None, &ListOptions::default())
                .map(|page| page.items)
                .unwrap_or_default();
            items.into_iter().map(move |event| {
                let age = created_at(&event)
                    .and_then(|created| now.duration_since(created).try_into().ok())
                    .unwrap_or(Duration::ZERO);
                expiry_of(rt, &event, now_instant + ttl.saturating_sub(age))
            })
        })
        .collect();
    expiries.sort_by_key(|e| e.at);
    expiries.into()
}

fn created_at(event: &Value) -> Option<jiff::Timestamp> {
    event
        .at("/metadata/creationTimestamp")?
        .as_str()?
        .parse()
        .ok()
}

fn expiry_of(resource: &Arc<ResourceType>, event: &Value, at: Instant) -> Expiry {
    Expiry {
        at,
        resource: resource.clone(),
        namespace: namespace_of(event).to_string(),
        name: name_of(event).to_string(),
        uid: uid_of(event).to_string(),
    }
}

/// Deletes the Event if it is still the one that was created (a `NotFound` or a changed uid means it went
/// or was replaced meanwhile, which is fine).
fn expire(cluster: &Cluster, due: &Expiry) {
    let options = DeleteOptions {
        precondition_uid: Some(due.uid.clone()),
        ..DeleteOptions::default()
    };
    let _ = cluster.delete(&due.resource, &due.namespace, &due.name, &options);
}
