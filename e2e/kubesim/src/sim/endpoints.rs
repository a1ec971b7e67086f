//! The endpoints controller: for every Service with a selector, an `Endpoints` object listing the ready pods'
//! IPs under `addresses` and the others under `notReadyAddresses`. EndpointSlices are not derived.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};

use super::{Reconciler, as_controller, builtin, is_pod_ready, is_terminating, key_if};
use crate::apiserver::{Cluster, ListOptions, Subresource};
use crate::json::At;
use crate::selector::LabelSelector;
use crate::store::{Change, ObjectKey, name_of, namespace_of, uid_of};

pub struct EndpointsController;

const NAME: &str = "endpoint-controller";

/// The Service selector, or none when the Service has no selector (its endpoints are managed by hand).
pub fn service_selector(service: &Value) -> Option<LabelSelector> {
    let selector = service.at("/spec/selector")?;
    let selector = LabelSelector::from_map(selector);
    (!selector.is_empty()).then_some(selector)
}

/// Ready and not-ready pods a Service selects.
pub fn selected_pods(cluster: &Cluster, service: &Value) -> Vec<Value> {
    let (Some(selector), Some(pods)) = (service_selector(service), builtin(cluster, "", "pods"))
    else {
        return Vec::new();
    };
    cluster
        .list(&pods, Some(namespace_of(service)), &ListOptions::default())
        .map(|page| {
            page.items
                .iter()
                .filter(|p| {
                    !is_terminating(p)
                        && selector.matches(p.at("/metadata/labels").unwrap_or(&Value::Null))
                })
                .map(|p| (**p).clone())
                .collect()
        })
        .unwrap_or_default()
}

fn address(pod: &Value) -> Option<Value> {
    let ip = pod.at("/status/podIP")?.as_str()?;
    Some(json!({"ip": ip, "nodeName": pod.at("/spec/nodeName"),
        "targetRef": {"kind": "Pod", "namespace": namespace_of(pod), "name": name_of(pod), "uid": uid_of(pod)}}))
}

impl Reconciler for EndpointsController {
    fn name(&self) -> &'static str {
        NAME
    }

    fn keys_for(&mut self, cluster: &Cluster, change: &Change) -> Vec<ObjectKey> {
        if let Some(key) = key_if(change, "", "services") {
            return vec![key];
        }
        if key_if(change, "", "pods").is_none() {
            return Vec::new();
        }
        let Some(services) = builtin(cluster, "", "services") else {
            return Vec::new();
        };
        let labels = change.object.at("/metadata/labels").unwrap_or(&Value::Null);
        cluster
            .list(&services, Some(change.namespace()), &ListOptions::default())
            .map(|page| {
                page.items
                    .iter()
                    .filter(|s| service_selector(s).is_some_and(|sel| sel.matches(labels)))
                    .map(|s| super::key_of(s))
                    .collect()
            })
            .unwrap_or_default()
    }

    fn all_keys(&mut self, cluster: &Cluster) -> Vec<ObjectKey> {
        super::all_of(cluster, builtin(cluster, "", "services").as_ref())
    }

    fn reconcile(&mut self, cluster: &Cluster, key: &ObjectKey) -> Option<Duration> {
        let services = builtin(cluster, "", "services")?;
        let endpoints = builtin(cluster, "", "endpoints")?;
        let options = as_controller(NAME);
        let Ok(service) = cluster.get(&services, &key.0, &key.1) else {
            let _ = cluster.delete(&endpoints, &key.0, &key.1, &Default::default());
            return None;
        };
        service_selector(&service)?;
        let pods = selected_pods(cluster, &service);
        let ready: Vec<Value> = pods
            .iter()
            .filter(|p| is_pod_ready(p))
            .filter_map(address)
            .collect();
        let not_ready: Vec<Value> = pods
            .iter()
            .filter(|p| !is_pod_ready(p))
            .filter_map(address)
            .collect();
        let ports: Vec<Value> = service
            .at("/spec/ports")
            .and_then(Value::as_array)
            .map(|ports| {
                ports.iter().map(|p| json!({"name": p.get("name"), "port": p.get("targetPort").filter(|t| t.is_number()).or(p.get("port")), "protocol": p.get("protocol").cloned().unwrap_or(json!("TCP"))})).collect()
            })
            .unwrap_or_default();
        let mut subset = json!({"ports": ports});
        if !ready.is_empty() {
            subset["addresses"] = json!(ready);
        }
        if !not_ready.is_empty() {
            subset["notReadyAddresses"] = json!(not_ready);
        }
        let subsets = if ready.is_empty() && not_ready.is_empty() {
            json!([])
        } else {
            json!([subset])
        };
        match cluster
            .get(&endpoints, &key.0, &key.1)
            .map(Arc::unwrap_or_clone)
        {
            Ok(existing) if existing.get("subsets") == Some(&subsets) => {}
            Ok(mut existing) => {
                existing["subsets"] = subsets;
                let _ = cluster.update(
                    &endpoints,
                    &key.0,
                    &key.1,
                    existing,
                    Subresource::Main,
                    &options,
                );
            }
            Err(_) => {
                let object = json!({"apiVersion": "v1", "kind": "Endpoints",
                    "metadata": {"name": key.1, "namespace": key.0, "labels": service.at("/metadata/labels")},
                    "subsets": subsets});
                let _ = cluster.create(&endpoints, &key.0, object, &options);
            }
        }
        None
    }
}
