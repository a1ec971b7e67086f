//! Kubernetes Events as Argo Rollouts records them, for Rollouts and AnalysisRuns alike.

use jiff::Timestamp;
use k8s_openapi::api::core::v1::{Event as KubeEvent, EventSource, ObjectReference};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta, Time};
use kube::api::{Api, PostParams};
use kube::{Client, Resource, ResourceExt};

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

/// Records `event` about `object`. An event that cannot be recorded must not stop a release: the failure
/// is logged, never returned.
pub async fn record<K>(client: &Client, object: &K, version: &str, event: &Event, identity: &str)
where
    K: Resource<DynamicType = ()>,
{
    let kube_event = build(object, version, event, identity, Timestamp::now());
    let namespace = object.namespace().unwrap_or_default();
    let api: Api<KubeEvent> = Api::namespaced(client.clone(), &namespace);
    if let Err(e) = api.create(&PostParams::default(), &kube_event).await {
        tracing::warn!(reason = %event.reason, error = %e, "cannot record event");
    }
}
