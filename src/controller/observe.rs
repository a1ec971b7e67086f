//! Observe: from cached cluster objects to the planner's plain `Observed` data. The reductions here decide
//! what the controller keeps in memory for each object.

use std::collections::BTreeMap;
use std::sync::Arc;

use jiff::Timestamp;
use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::Service;

use super::cache::{Cache, Reduce};
use crate::api::constants::*;
use crate::api::{
    AnalysisRun, AnalysisTemplate, AnalysisTemplateSpec, ClusterAnalysisTemplate, Rollout,
};
use crate::plan::hash::TemplateIdentity;
use crate::plan::{AnalysisRunState, Observed, ReplicaSetState, ServiceState};

/// A ReplicaSet as cached: the planner's view plus what writes need.
#[derive(Debug, Clone, PartialEq)]
pub struct CachedReplicaSet {
    pub state: ReplicaSetState,
    pub resource_version: String,
    pub generation: i64,
    /// The ephemeral-metadata annotation the template identity was computed with.
    ephemeral_metadata: Option<String>,
}

/// An AnalysisRun as cached.
#[derive(Debug, Clone, PartialEq)]
pub struct CachedAnalysisRun {
    pub state: AnalysisRunState,
    pub resource_version: String,
}

/// Every cache the controller reads.
#[derive(Debug, Default)]
pub struct Caches {
    pub replica_sets: Cache<CachedReplicaSet>,
    pub services: Cache<ServiceState>,
    pub analysis_runs: Cache<CachedAnalysisRun>,
    pub analysis_templates: Cache<AnalysisTemplateSpec>,
    pub cluster_analysis_templates: Cache<AnalysisTemplateSpec>,
}

impl Caches {
    /// Whether every cache has its first complete list.
    pub fn synced(&self) -> bool {
        self.replica_sets.is_ready()
            && self.services.is_ready()
            && self.analysis_runs.is_ready()
            && self.analysis_templates.is_ready()
            && self.cluster_analysis_templates.is_ready()
    }
}

fn created(meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta) -> Timestamp {
    meta.creation_timestamp
        .as_ref()
        .map(|t| t.0)
        .unwrap_or(Timestamp::UNIX_EPOCH)
}

/// Whether a ReplicaSet found under the name of the one a plan creates (for `hash`) is that one: this
/// rollout controls it and it carries the hash, as the planner's own lookup of the new ReplicaSet decides
/// (reference 3.3). Its template is not compared with the rollout's: the API server fills defaults into a
/// ReplicaSet's pod template that the Rollout's lacks. Anything else under that name is a hash collision.
pub fn is_the_new_replica_set(existing: &ReplicaSet, rollout: &Rollout, hash: &str) -> bool {
    let controlled = existing
        .metadata
        .owner_references
        .iter()
        .flatten()
        .any(|owner| {
            owner.controller == Some(true) && Some(&owner.uid) == rollout.metadata.uid.as_ref()
        });
    let carries_hash = existing
        .metadata
        .labels
        .as_ref()
        .and_then(|labels| labels.get(POD_TEMPLATE_HASH_LABEL))
        .is_some_and(|label| label == hash);
    controlled && carries_hash
}

/// Keys of an ephemeral-metadata annotation (`{"labels": {...}, "annotations": {...}}`).
fn ephemeral_keys(annotation: Option<&String>, field: &str) -> Vec<String> {
    annotation
        .and_then(|a| serde_json::from_str::<serde_json::Value>(a).ok())
        .and_then(|v| {
            v.get(field)
                .and_then(|m| m.as_object())
                .map(|m| m.keys().cloned().collect())
        })
        .unwrap_or_default()
}

impl Reduce<ReplicaSet> for CachedReplicaSet {
    fn reduce(rs: &ReplicaSet) -> Option<Self> {
        reduce_replica_set(rs, None)
    }

    /// Most events of a ReplicaSet are status changes. Its template identity (a normalised copy of the
    /// whole pod template) changes only with its spec, which moves its generation, or with its
    /// ephemeral-metadata annotation; otherwise the identity already held is reused.
    fn reduce_after(rs: &ReplicaSet, previous: &Self) -> Option<Self> {
        let meta = &rs.metadata;
        let same_template = meta
            .generation
            .is_some_and(|g| g > 0 && g == previous.generation)
            && created(meta) == previous.state.created
            && ephemeral_metadata(rs) == previous.ephemeral_metadata.as_ref();
        reduce_replica_set(rs, same_template.then(|| previous.state.template.clone()))
    }
}

fn ephemeral_metadata(rs: &ReplicaSet) -> Option<&String> {
    rs.metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(EPHEMERAL_METADATA_ANNOTATION))
}

/// The cached state of a ReplicaSet; its template identity is computed unless `known`.
fn reduce_replica_set(
    rs: &ReplicaSet,
    known: Option<TemplateIdentity>,
) -> Option<CachedReplicaSet> {
    let meta = &rs.metadata;
    let labels = meta.labels.as_ref()?;
    let hash = labels.get(POD_TEMPLATE_HASH_LABEL)?.clone();
    let annotations = meta.annotations.clone().unwrap_or_default();
    let spec = rs.spec.as_ref()?;
    let status = rs.status.clone().unwrap_or_default();
    let parse_i64 = |key: &str| annotations.get(key).and_then(|v| v.parse::<i64>().ok());
    let generation = meta.generation.unwrap_or(0);
    let replica_failure = status
        .conditions
        .as_ref()
        .and_then(|cs| {
            cs.iter()
                .find(|c| c.type_ == "ReplicaFailure" && c.status == "True")
        })
        .map(|c| c.message.clone().unwrap_or_default());
    let state = ReplicaSetState {
        name: meta.name.clone()?,
        pod_template_hash: hash,
        template: known.unwrap_or_else(|| {
            TemplateIdentity::of(
                spec.template.as_ref().unwrap_or(&Default::default()),
                &ephemeral_keys(annotations.get(EPHEMERAL_METADATA_ANNOTATION), "labels"),
                &ephemeral_keys(
                    annotations.get(EPHEMERAL_METADATA_ANNOTATION),
                    "annotations",
                ),
            )
        }),
        replicas: spec.replicas.unwrap_or(1),
        status_replicas: status.replicas,
        ready_replicas: status.ready_replicas.unwrap_or(0),
        available_replicas: status.available_replicas.unwrap_or(0),
        generation_observed: status.observed_generation.unwrap_or(0) >= generation,
        revision: parse_i64(REVISION_ANNOTATION),
        revision_history: annotations.get(REVISION_HISTORY_ANNOTATION).cloned(),
        desired_replicas_annotation: parse_i64(DESIRED_REPLICAS_ANNOTATION).map(|v| v as i32),
        scale_down_deadline: annotations
            .get(SCALE_DOWN_DEADLINE_ANNOTATION)
            .and_then(|d| d.parse().ok()),
        replica_failure,
        created: created(meta),
        min_ready_seconds: spec.min_ready_seconds.unwrap_or(0),
    };
    Some(CachedReplicaSet {
        state,
        resource_version: meta.resource_version.clone().unwrap_or_default(),
        generation,
        ephemeral_metadata: ephemeral_metadata(rs).cloned(),
    })
}

impl Reduce<Service> for ServiceState {
    fn reduce(service: &Service) -> Option<Self> {
        Some(ServiceState {
            name: service.metadata.name.clone()?,
            selector: service
                .spec
                .as_ref()
                .and_then(|s| s.selector.clone())
                .unwrap_or_default(),
            managed_by_rollout: service
                .metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get(MANAGED_BY_ROLLOUTS_ANNOTATION).cloned()),
        })
    }
}

impl Reduce<AnalysisRun> for CachedAnalysisRun {
    fn reduce(run: &AnalysisRun) -> Option<Self> {
        let meta = &run.metadata;
        let labels = meta.labels.clone().unwrap_or_default();
        let status = run.status.clone().unwrap_or_default();
        let state = AnalysisRunState {
            name: meta.name.clone()?,
            pod_template_hash: labels
                .get(POD_TEMPLATE_HASH_LABEL)
                .cloned()
                .unwrap_or_default(),
            rollout_type: labels.get(ROLLOUT_TYPE_LABEL).cloned().unwrap_or_default(),
            step_index: labels.get(STEP_INDEX_LABEL).and_then(|s| s.parse().ok()),
            phase: status.phase,
            message: status.message,
            terminating: run.spec.terminate,
            created: created(meta),
        };
        Some(CachedAnalysisRun {
            state,
            resource_version: meta.resource_version.clone().unwrap_or_default(),
        })
    }
}

impl Reduce<AnalysisTemplate> for AnalysisTemplateSpec {
    fn reduce(template: &AnalysisTemplate) -> Option<Self> {
        Some(template.spec.clone())
    }
}

impl Reduce<ClusterAnalysisTemplate> for AnalysisTemplateSpec {
    fn reduce(template: &ClusterAnalysisTemplate) -> Option<Self> {
        // The two template kinds share one spec shape.
        serde_json::to_value(&template.spec)
            .ok()
            .and_then(|v| serde_json::from_value(v).ok())
    }
}

/// What one Rollout sees of the cluster, plus the resourceVersions its writes are conditioned on.
#[derive(Debug, Default)]
pub struct Observation {
    pub observed: Observed,
    pub replica_set_versions: BTreeMap<String, String>,
    pub analysis_run_versions: BTreeMap<String, String>,
}

/// Names of the Services a Rollout refers to.
pub fn referenced_services(rollout: &Rollout) -> Vec<String> {
    let strategy = &rollout.spec.strategy;
    let mut names = Vec::new();
    if let Some(canary) = &strategy.canary {
        names.extend([canary.canary_service.clone(), canary.stable_service.clone()]);
    }
    if let Some(blue_green) = &strategy.blue_green {
        names.extend([
            blue_green.active_service.clone(),
            blue_green.preview_service.clone(),
        ]);
    }
    names.retain(|n| !n.is_empty());
    names
}

/// Builds the planner's view of one Rollout from the caches.
pub fn observe(rollout: &Rollout, caches: &Caches) -> Observation {
    let namespace = rollout.metadata.namespace.clone().unwrap_or_default();
    let uid = rollout.metadata.uid.clone().unwrap_or_default();
    let mut observation = Observation::default();
    let mut replica_sets: Vec<Arc<CachedReplicaSet>> = caches.replica_sets.owned_by(&uid);
    replica_sets.sort_by(|a, b| {
        a.state
            .created
            .cmp(&b.state.created)
            .then(a.state.name.cmp(&b.state.name))
    });
    for rs in replica_sets {
        observation
            .replica_set_versions
            .insert(rs.state.name.clone(), rs.resource_version.clone());
        observation.observed.replica_sets.push(rs.state.clone());
    }
    for run in caches.analysis_runs.owned_by(&uid) {
        observation
            .analysis_run_versions
            .insert(run.state.name.clone(), run.resource_version.clone());
        observation.observed.analysis_runs.push(run.state.clone());
    }
    for name in referenced_services(rollout) {
        if let Some(service) = caches.services.get(&namespace, &name) {
            observation
                .observed
                .services
                .insert(name, (*service).clone());
        }
    }
    for name in referenced_templates(rollout, false) {
        if let Some(spec) = caches.analysis_templates.get(&namespace, &name) {
            observation
                .observed
                .analysis_templates
                .insert(name, (*spec).clone());
        }
    }
    for name in referenced_templates(rollout, true) {
        if let Some(spec) = caches.cluster_analysis_templates.get("", &name) {
            observation
                .observed
                .cluster_analysis_templates
                .insert(name, (*spec).clone());
        }
    }
    observation
}

/// Names of the (cluster) AnalysisTemplates a Rollout refers to, from steps, background and blue-green analysis.
pub fn referenced_templates(rollout: &Rollout, cluster_scope: bool) -> Vec<String> {
    let strategy = &rollout.spec.strategy;
    let canary = strategy.canary.as_ref();
    let background = canary
        .and_then(|c| c.analysis.as_ref())
        .map(|b| &b.analysis);
    let steps = canary
        .and_then(|c| c.steps.as_deref())
        .unwrap_or_default()
        .iter()
        .filter_map(|step| step.analysis.as_deref());
    let blue_green = strategy.blue_green.as_ref().into_iter().flat_map(|b| {
        [&b.pre_promotion_analysis, &b.post_promotion_analysis]
            .into_iter()
            .flatten()
    });
    let mut names: Vec<String> = background
        .into_iter()
        .chain(steps)
        .chain(blue_green)
        .flat_map(|analysis| &analysis.templates)
        .filter(|template| template.cluster_scope == cluster_scope)
        .map(|template| template.template_name.clone())
        .collect();
    names.sort();
    names.dedup();
    names
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const UID: &str = "3f0c7a52-0000-4000-8000-000000000001";
    const HASH: &str = "6b9d8c7f5";

    fn rollout() -> Rollout {
        serde_json::from_value(json!({
            "apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout",
            "metadata": {"name": "shop", "namespace": "default", "uid": UID},
            "spec": {
                "selector": {"matchLabels": {"app": "shop"}},
                "template": {
                    "metadata": {"labels": {"app": "shop"}},
                    "spec": {"containers": [{"name": "app", "image": "shop:v2"}]}
                },
                "strategy": {"canary": {}}
            }
        }))
        .expect("rollout parses")
    }

    /// A ReplicaSet named as the plan names v2's, with the given owner uid and image.
    fn replica_set(owner: Option<&str>, image: &str, hash_label: bool) -> ReplicaSet {
        let mut labels = json!({"app": "shop"});
        if hash_label {
            labels[POD_TEMPLATE_HASH_LABEL] = json!(HASH);
        }
        let owners: Vec<_> = owner
            .map(|uid| json!({"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout", "name": "shop", "uid": uid, "controller": true}))
            .into_iter()
            .collect();
        serde_json::from_value(json!({
            "metadata": {"name": "shop-6b9d8c7f5", "namespace": "default", "labels": labels, "ownerReferences": owners},
            "spec": {
                "replicas": 0,
                "selector": {"matchLabels": labels},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {"containers": [{"name": "app", "image": image}]}
                }
            }
        }))
        .expect("replica set parses")
    }

    #[test]
    fn a_replica_sets_template_identity_is_reused_until_its_generation_or_ephemeral_metadata_moves()
    {
        let at_generation = |image: &str, generation: i64| {
            let mut rs = replica_set(Some(UID), image, true);
            rs.metadata.generation = Some(generation);
            rs
        };
        let first = CachedReplicaSet::reduce(&at_generation("shop:v2", 1)).expect("reduced");

        let mut status_change = at_generation("shop:v2", 1);
        status_change.status = Some(Default::default());
        let after = CachedReplicaSet::reduce_after(&status_change, &first).expect("reduced");
        assert_eq!(after.state.template, first.state.template);

        // A template that changed without its generation moving (no API server does that) shows the reuse.
        let unmoved =
            CachedReplicaSet::reduce_after(&at_generation("shop:v3", 1), &first).expect("reduced");
        assert_eq!(unmoved.state.template, first.state.template);

        let fresh = CachedReplicaSet::reduce(&at_generation("shop:v3", 2)).expect("reduced");
        let moved =
            CachedReplicaSet::reduce_after(&at_generation("shop:v3", 2), &first).expect("reduced");
        assert_eq!(moved.state.template, fresh.state.template);
        assert_ne!(moved.state.template, first.state.template);

        let mut ephemeral = at_generation("shop:v2", 1);
        ephemeral
            .metadata
            .labels
            .as_mut()
            .expect("labels")
            .insert("role".into(), "canary".into());
        ephemeral
            .spec
            .as_mut()
            .and_then(|s| s.template.as_mut())
            .and_then(|t| t.metadata.as_mut())
            .and_then(|m| m.labels.as_mut())
            .expect("template labels")
            .insert("role".into(), "canary".into());
        ephemeral.metadata.annotations = Some(
            [(
                EPHEMERAL_METADATA_ANNOTATION.to_string(),
                r#"{"labels":{"role":"canary"}}"#.to_string(),
            )]
            .into(),
        );
        let relabelled = CachedReplicaSet::reduce_after(&ephemeral, &first).expect("reduced");
        assert_eq!(
            relabelled.state.template,
            CachedReplicaSet::reduce(&ephemeral)
                .expect("reduced")
                .state
                .template
        );
    }

    #[test]
    fn templates_are_named_from_background_step_and_blue_green_analyses_by_scope() {
        let with_strategy = |strategy: serde_json::Value| {
            let mut value = serde_json::to_value(rollout()).expect("rollout serialises");
            value["spec"]["strategy"] = strategy;
            serde_json::from_value::<Rollout>(value).expect("rollout parses")
        };
        let refs = |names: &[(&str, bool)]| {
            let templates: Vec<_> = names
                .iter()
                .map(|(name, cluster)| json!({"templateName": name, "clusterScope": cluster}))
                .collect();
            json!({"templates": templates})
        };
        let canary = with_strategy(json!({"canary": {
            "analysis": refs(&[("error-rate", false), ("global", true)]),
            "steps": [
                {"setWeight": 20},
                {"analysis": refs(&[("latency", false), ("error-rate", false)])},
                {"experiment": {"templates": [{"name": "baseline", "specRef": "stable"}]}},
            ],
        }}));
        assert_eq!(
            referenced_templates(&canary, false),
            ["error-rate", "latency"]
        );
        assert_eq!(referenced_templates(&canary, true), ["global"]);
        let blue_green = with_strategy(json!({"blueGreen": {
            "activeService": "active",
            "prePromotionAnalysis": refs(&[("smoke", false)]),
            "postPromotionAnalysis": refs(&[("soak", true), ("smoke", false)]),
        }}));
        assert_eq!(referenced_templates(&blue_green, false), ["smoke"]);
        assert_eq!(referenced_templates(&blue_green, true), ["soak"]);
        assert!(referenced_templates(&rollout(), false).is_empty());
    }

    #[test]
    fn a_replica_set_under_the_new_name_is_adopted_only_when_it_is_ours_with_our_hash() {
        let rollout = rollout();
        let ours = replica_set(Some(UID), "shop:v2", true);
        assert!(is_the_new_replica_set(&ours, &rollout, HASH));
        // The API server's defaults in its template do not make it someone else's.
        let mut defaulted = ours.clone();
        if let Some(container) = defaulted
            .spec
            .as_mut()
            .and_then(|spec| spec.template.as_mut())
            .and_then(|template| template.spec.as_mut())
            .and_then(|pod| pod.containers.first_mut())
        {
            container.image_pull_policy = Some("IfNotPresent".into());
            container.termination_message_path = Some("/dev/termination-log".into());
        }
        assert!(is_the_new_replica_set(&defaulted, &rollout, HASH));
        // Someone else's, or nobody's: a hash collision.
        assert!(!is_the_new_replica_set(
            &replica_set(Some("another-uid"), "shop:v2", true),
            &rollout,
            HASH
        ));
        assert!(!is_the_new_replica_set(
            &replica_set(None, "shop:v2", true),
            &rollout,
            HASH
        ));
        // Ours, for another hash or without one: not the ReplicaSet this plan creates.
        assert!(!is_the_new_replica_set(&ours, &rollout, "5f4e3d2c1"));
        assert!(!is_the_new_replica_set(
            &replica_set(Some(UID), "shop:v2", false),
            &rollout,
            HASH
        ));
    }
}
