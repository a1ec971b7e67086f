//! Kubernetes Events as Argo Rollouts records them, for Rollouts and AnalysisRuns alike.

use jiff::Timestamp;
use k8s_openapi::api::core::v1::{Event as KubeEvent, EventSource, ObjectReference};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta, Time};
use kube::api::PostParams;
use kube::{Client, Resource, ResourceExt};
use tokio::sync::mpsc;

use crate::plan::Event;

/// The component name on Events, as Argo Rollouts records them.
const COMPONENT: &str = "rollouts-controller";

/// The Event `event` about `object` (at `version`), reported by the process `identity`.
pub fn build<K>(
    object: &K,
    version: &str,
    event: &Event,
    identity: &str,
    now: Timestamp,
) -> KubeEvent
where
    K: Resource<DynamicType = ()>,
{
    let namespace = object.namespace().unwrap_or_default();
    KubeEvent {
        metadata: ObjectMeta {
            name: Some(format!("{}.{:x}", object.name_any(), now.as_nanosecond())),
            namespace: Some(namespace.clone()),
            ..Default::default()
        },
        involved_object: ObjectReference {
            api_version: Some(K::api_version(&()).into_owned()),
            kind: Some(K::kind(&()).into_owned()),
            name: Some(object.name_any()),
            namespace: Some(namespace),
            uid: object.uid(),
            resource_version: Some(version.to_string()),
            field_path: None,
        },
        reason: Some(event.reason.clone()),
        message: Some(event.message.clone()),
        type_: Some(if event.warning { "Warning" } else { "Normal" }.into()),
        source: Some(EventSource {
            component: Some(COMPONENT.into()),
            host: None,
        }),
        first_timestamp: Some(Time(now)),
        last_timestamp: Some(Time(now)),
        event_time: Some(MicroTime(now)),
        reporting_component: Some(COMPONENT.into()),
        reporting_instance: Some(identity.to_string()),
        action: Some(event.reason.clone()),
        count: Some(1),
        ..Default::default()
    }
}

/// Batches waiting to be posted, over all writers, before a reconcile that records more waits for room.
const QUEUE: usize = 1024;
/// Writers posting at once; each posts its own batches one after another.
const WRITERS: usize = 8;

/// Records Events off the reconcile path. A reconcile hands over the Events of one plan as a batch
/// and goes on. Each object's batches go to the same writer, which posts them in turn, so the Events of
/// one Rollout are recorded in the order its plans made them (the API server numbers them in that
/// order); different objects' batches are posted in parallel. An Event that cannot be recorded must
/// not stop a release: the failure is logged, never returned.
#[derive(Clone)]
pub struct Recorder {
    writers: Vec<mpsc::Sender<Vec<KubeEvent>>>,
    identity: String,
}

impl Recorder {
    /// Starts the writers on the current runtime; they end when the last `Recorder` is dropped.
    pub fn start(client: Client, identity: String) -> Recorder {
        let writers = (0..WRITERS)
            .map(|_| {
                let (batches, mut receiver) = mpsc::channel::<Vec<KubeEvent>>(QUEUE / WRITERS);
                let client = client.clone();
                tokio::spawn(async move {
                    while let Some(batch) = receiver.recv().await {
                        for event in batch {
                            post(&client, event).await;
                        }
                    }
                });
                batches
            })
            .collect();
        Recorder { writers, identity }
    }

    /// Queues `events` about `object` (at `version`), stamped now, in their order.
    pub async fn record<K>(&self, object: &K, version: &str, events: &[Event])
    where
        K: Resource<DynamicType = ()>,
    {
        if events.is_empty() {
            return;
        }
        let now = Timestamp::now();
        let batch = events
            .iter()
            .enumerate()
            // One nanosecond apart, so the Events of one plan have distinct names and keep their order.
            .map(|(i, event)| {
                let at = now
                    .checked_add(jiff::SignedDuration::from_nanos(i as i64))
                    .unwrap_or(now);
                build(object, version, event, &self.identity, at)
            })
            .collect();
        let writer =
            &self.writers[writer_for(&object.namespace().unwrap_or_default(), &object.name_any())];
        if writer.send(batch).await.is_err() {
            tracing::warn!("event recorder stopped; events dropped");
        }
    }
}

/// The writer that posts every Event about one object.
fn writer_for(namespace: &str, name: &str) -> usize {
    use std::hash::{Hash, Hasher};
    // SipHash with fixed keys: the same object always lands on the same writer in this process.
    let mut hasher = std::hash::DefaultHasher::new();
    (namespace, name).hash(&mut hasher);
    (hasher.finish() % WRITERS as u64) as usize
}

async fn post(client: &Client, event: KubeEvent) {
    if let Err(e) = create(client, &event).await {
        let reason = event.reason.as_deref().unwrap_or_default();
        tracing::warn!(%reason, error = %e, "cannot record event");
    }
}

/// Creates the Event and ignores the answer's body: nothing reads the created Event, and decoding it
/// was about a fifth of what posting cost.
async fn create(client: &Client, event: &KubeEvent) -> Result<(), kube::Error> {
    let namespace = event.metadata.namespace.as_deref().unwrap_or_default();
    let body = serde_json::to_vec(event).map_err(kube::Error::SerdeError)?;
    let request = kube::core::Request::new(KubeEvent::url_path(&(), Some(namespace)))
        .create(&PostParams::default(), body)
        .map_err(kube::Error::BuildRequest)?;
    client.request_text(request).await.map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_objects_events_always_go_to_the_same_writer_and_objects_spread() {
        let first = writer_for("shop", "web");
        for _ in 0..100 {
            assert_eq!(writer_for("shop", "web"), first);
        }
        let used: std::collections::BTreeSet<usize> = (0..200)
            .map(|i| writer_for("shop", &format!("web-{i}")))
            .collect();
        assert_eq!(used.len(), WRITERS, "200 Rollouts use every writer");
    }
}
