//! Kubernetes Events as Argo Rollouts records them, for Rollouts and AnalysisRuns alike.

use futures::StreamExt;
use jiff::Timestamp;
use k8s_openapi::api::core::v1::{Event as KubeEvent, EventSource, ObjectReference};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta, Time};
use kube::api::{Api, PostParams};
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

/// Batches waiting to be posted before a reconcile that records more waits for room.
const QUEUE: usize = 1024;
/// Batches posted at once.
const IN_FLIGHT: usize = 8;

/// Records Events off the reconcile path. A reconcile hands over the Events of one plan as a batch
/// and goes on; a background task posts each batch in order, several batches at once. An Event that
/// cannot be recorded must not stop a release: the failure is logged, never returned.
#[derive(Clone)]
pub struct Recorder {
    batches: mpsc::Sender<Vec<KubeEvent>>,
    identity: String,
}

impl Recorder {
    /// Starts the posting task on the current runtime; it ends when the last `Recorder` is dropped.
    pub fn start(client: Client, identity: String) -> Recorder {
        let (batches, receiver) = mpsc::channel::<Vec<KubeEvent>>(QUEUE);
        let queue = futures::stream::unfold(receiver, |mut receiver| async move {
            receiver.recv().await.map(|batch| (batch, receiver))
        });
        tokio::spawn(queue.for_each_concurrent(IN_FLIGHT, move |batch| {
            let client = client.clone();
            async move {
                for event in batch {
                    post(&client, event).await;
                }
            }
        }));
        Recorder { batches, identity }
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
        if self.batches.send(batch).await.is_err() {
            tracing::warn!("event recorder stopped; events dropped");
        }
    }
}

async fn post(client: &Client, event: KubeEvent) {
    let namespace = event.metadata.namespace.clone().unwrap_or_default();
    let api: Api<KubeEvent> = Api::namespaced(client.clone(), &namespace);
    if let Err(e) = api.create(&PostParams::default(), &event).await {
        let reason = event.reason.as_deref().unwrap_or_default();
        tracing::warn!(%reason, error = %e, "cannot record event");
    }
}
