//! The ReplicaSet a rollout creates for its desired pod template (reference 3.3, 4.18).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    Affinity, PodAffinityTerm, PodAntiAffinity, WeightedPodAffinityTerm,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, LabelSelectorRequirement};

use super::context::Context;
use super::op::NewReplicaSet;
use crate::api::constants::*;
use crate::api::rollout::{AntiAffinity, PodTemplateMetadata};

/// Annotations of the Rollout that are never copied to its ReplicaSets.
const NOT_COPIED: [&str; 5] = [
    LAST_APPLIED_ANNOTATION,
    REVISION_ANNOTATION,
    REVISION_HISTORY_ANNOTATION,
    DESIRED_REPLICAS_ANNOTATION,
    NOTIFIED_ANNOTATION,
];

/// The desired ReplicaSet, at 0 replicas; `plan` may give it its first scale before it is created.
pub(crate) fn new_replica_set(ctx: &Context) -> NewReplicaSet {
    let spec = &ctx.rollout.spec;
    let hash = ctx.new_hash.clone();
    let releasing = ctx.stable_distinct().is_some();

    let mut template = ctx.template.clone().into_owned();
    let meta = template.metadata.get_or_insert_with(Default::default);
    let labels = meta.labels.get_or_insert_with(Default::default);
    labels.insert(POD_TEMPLATE_HASH_LABEL.into(), hash.clone());
    let rs_labels = labels.clone();

    let mut annotations: BTreeMap<String, String> = ctx
        .rollout
        .metadata
        .annotations
        .clone()
        .unwrap_or_default()
        .into_iter()
        .filter(|(key, _)| !NOT_COPIED.contains(&key.as_str()))
        .collect();
    annotations.insert(REVISION_ANNOTATION.into(), ctx.revision.to_string());
    annotations.insert(DESIRED_REPLICAS_ANNOTATION.into(), ctx.replicas.to_string());

    if let Some(metadata) = ephemeral_metadata(ctx, releasing) {
        inject_metadata(&mut template, metadata);
        annotations.insert(
            EPHEMERAL_METADATA_ANNOTATION.into(),
            serde_json::to_string(metadata).unwrap_or_default(),
        );
    }
    if let (Some(anti_affinity), Some(stable)) = (anti_affinity(ctx), ctx.stable_distinct()) {
        let namespace = ctx.rollout.metadata.namespace.clone().unwrap_or_default();
        inject_anti_affinity(
            &mut template,
            anti_affinity,
            &stable.pod_template_hash,
            &namespace,
        );
    }

    let mut selector: LabelSelector = spec.selector.clone().unwrap_or_default();
    selector
        .match_labels
        .get_or_insert_with(Default::default)
        .insert(POD_TEMPLATE_HASH_LABEL.into(), hash.clone());

    NewReplicaSet {
        name: ctx.new_rs_name(),
        pod_template_hash: hash,
        labels: rs_labels,
        annotations,
        selector,
        template,
        replicas: 0,
        min_ready_seconds: spec.min_ready_seconds_or_default(),
    }
}

/// Canary/preview metadata while a release runs, stable/active metadata otherwise.
fn ephemeral_metadata<'a>(ctx: &'a Context, releasing: bool) -> Option<&'a PodTemplateMetadata> {
    let strategy = &ctx.rollout.spec.strategy;
    if let Some(canary) = &strategy.canary {
        return if releasing {
            canary.canary_metadata.as_ref()
        } else {
            canary.stable_metadata.as_ref()
        };
    }
    let blue_green = strategy.blue_green.as_ref()?;
    if releasing {
        blue_green.preview_metadata.as_ref()
    } else {
        blue_green.active_metadata.as_ref()
    }
}

fn anti_affinity<'a>(ctx: &'a Context) -> Option<&'a AntiAffinity> {
    let strategy = &ctx.rollout.spec.strategy;
    strategy
        .canary
        .as_ref()
        .and_then(|c| c.anti_affinity.as_ref())
        .or_else(|| {
            strategy
                .blue_green
                .as_ref()
                .and_then(|b| b.anti_affinity.as_ref())
        })
}

fn inject_metadata(
    template: &mut k8s_openapi::api::core::v1::PodTemplateSpec,
    metadata: &PodTemplateMetadata,
) {
    let meta = template.metadata.get_or_insert_with(Default::default);
    if !metadata.labels.is_empty() {
        let labels = meta.labels.get_or_insert_with(Default::default);
        for (key, value) in &metadata.labels {
            labels.insert(key.clone(), value.clone());
        }
    }
    if !metadata.annotations.is_empty() {
        let annotations = meta.annotations.get_or_insert_with(Default::default);
        for (key, value) in &metadata.annotations {
            annotations.insert(key.clone(), value.clone());
        }
    }
}

/// Keeps the new pods off the nodes of the stable pods (reference 4.18).
fn inject_anti_affinity(
    template: &mut k8s_openapi::api::core::v1::PodTemplateSpec,
    anti_affinity: &AntiAffinity,
    stable_hash: &str,
    namespace: &str,
) {
    let term = PodAffinityTerm {
        label_selector: Some(LabelSelector {
            match_expressions: Some(vec![LabelSelectorRequirement {
                key: POD_TEMPLATE_HASH_LABEL.into(),
                operator: "In".into(),
                values: Some(vec![stable_hash.to_string()]),
            }]),
            match_labels: None,
        }),
        namespaces: Some(vec![namespace.to_string()]),
        topology_key: "kubernetes.io/hostname".into(),
        ..Default::default()
    };
    let spec = template.spec.get_or_insert_with(Default::default);
    let affinity = spec.affinity.get_or_insert_with(Affinity::default);
    let pod_anti_affinity = affinity
        .pod_anti_affinity
        .get_or_insert_with(PodAntiAffinity::default);
    if let Some(preferred) = &anti_affinity.preferred_during_scheduling_ignored_during_execution {
        pod_anti_affinity
            .preferred_during_scheduling_ignored_during_execution
            .get_or_insert_with(Vec::new)
            .push(WeightedPodAffinityTerm {
                weight: preferred.weight,
                pod_affinity_term: term,
            });
    } else if anti_affinity
        .required_during_scheduling_ignored_during_execution
        .is_some()
    {
        pod_anti_affinity
            .required_during_scheduling_ignored_during_execution
            .get_or_insert_with(Vec::new)
            .push(term);
    }
}
