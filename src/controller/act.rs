//! Act: performs a plan's ops in order, then writes the status when it changed. Every write to an object
//! Ramp read from a cache is conditioned on the resourceVersion it read, so a stale cache produces a
//! conflict (and a retry once the watch catches up), never a decision made on old data.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{ReplicaSet, ReplicaSetSpec};
use k8s_openapi::api::core::v1::{Pod, Service};
use k8s_openapi::api::policy::v1::Eviction;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams, PropagationPolicy};
use kube::{Resource, ResourceExt};
use serde_json::{Value, json};

use super::Context;
use super::error::{Error, kube};
use super::observe::Observation;
use super::own_writes::Before;
use crate::api::constants::*;
use crate::api::{AnalysisRun, Rollout};
use crate::plan::{Event, NewAnalysisRun, NewReplicaSet, Op, Plan};

/// Performs the writes for one Rollout.
pub struct Actor<'a> {
    ctx: &'a Context,
    rollout: &'a Rollout,
    namespace: String,
    observation: &'a Observation,
    /// The Rollout's resourceVersion, updated as our own writes change it.
    rollout_version: String,
    /// Every resourceVersion the Rollout had during this actor's work: the one read, then one per write.
    rollout_versions: Vec<String>,
    /// The ReplicaSets this actor created, patched or deleted, with what the cache showed of each before.
    replica_set_writes: Vec<(String, Before)>,
    /// resourceVersions this actor's own patches moved ReplicaSets to, newer than the cache's.
    replica_set_versions: BTreeMap<String, String>,
    params: PatchParams,
}

impl<'a> Actor<'a> {
    pub fn new(ctx: &'a Context, rollout: &'a Rollout, observation: &'a Observation) -> Self {
        Actor {
            ctx,
            rollout,
            namespace: rollout.namespace().unwrap_or_default(),
            observation,
            rollout_version: rollout.resource_version().unwrap_or_default(),
            rollout_versions: vec![rollout.resource_version().unwrap_or_default()],
            replica_set_writes: Vec::new(),
            replica_set_versions: BTreeMap::new(),
            params: PatchParams {
                field_manager: Some(FIELD_MANAGER.into()),
                ..Default::default()
            },
        }
    }

    /// The Rollout's resourceVersions from the one read to the one after this actor's last write.
    pub fn rollout_versions(&self) -> &[String] {
        &self.rollout_versions
    }

    /// The ReplicaSets this actor created, patched or deleted, for the next reconcile to wait for in the
    /// cache.
    pub fn take_replica_set_writes(&mut self) -> Vec<(String, Before)> {
        std::mem::take(&mut self.replica_set_writes)
    }

    fn moved_rollout_to(&mut self, version: String) {
        self.rollout_version = version.clone();
        self.rollout_versions.push(version);
    }

    fn api<K>(&self) -> Api<K>
    where
        K: Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>,
    {
        Api::namespaced(self.ctx.client.clone(), &self.namespace)
    }

    fn ensure_leader(&self) -> Result<(), Error> {
        if self.ctx.leader.is_leader() {
            Ok(())
        } else {
            Err(Error::NotLeader)
        }
    }

    /// Performs every op, then the status. Stops at the first failure: the next reconcile plans again.
    ///
    /// An Event about a write is recorded once that write has happened; an Event about a change of the
    /// status once the status is written (see [`Event::status_change`]). Events of a plan that fails
    /// part-way and describe what did not happen are not recorded: the next plan reports them again.
    pub async fn execute(&mut self, plan: &Plan) -> Result<(), Error> {
        // The Events of the ops performed, in the plan's order; those of a status change only count once
        // the status is written.
        let mut events: Vec<Event> = Vec::new();
        let mut outcome = Ok(());
        for op in &plan.ops {
            match op {
                Op::Event(event) => events.push(event.clone()),
                op => {
                    outcome = self.ensure_leader();
                    if outcome.is_ok() {
                        outcome = self.perform(op).await;
                    }
                    if outcome.is_err() {
                        break;
                    }
                }
            }
        }
        if outcome.is_ok() {
            outcome = self.write_status(plan).await;
        }
        if outcome.is_err() {
            events.retain(|event| !event.status_change);
        }
        self.record_events(&events).await;
        outcome
    }

    async fn perform(&mut self, op: &Op) -> Result<(), Error> {
        match op {
            // Boxed, as is the AnalysisRun create below: a future has room for its largest branch,
            // and is copied whole each time it moves (into its task, into an await). Inline, this
            // 9 KB one made every reconcile's future 10.7 KB instead of 4 KB.
            Op::CreateReplicaSet(new) => Box::pin(self.create_replica_set(new)).await,
            Op::ScaleReplicaSet {
                name,
                to,
                desired_replicas_annotation,
                ..
            } => {
                let patch = json!({
                    "metadata": {"resourceVersion": self.rs_version(name), "annotations": {DESIRED_REPLICAS_ANNOTATION: desired_replicas_annotation.to_string()}},
                    "spec": {"replicas": to},
                });
                self.patch_replica_set(name, patch).await
            }
            Op::SetReplicaSetRevision {
                name,
                revision,
                revision_history,
            } => {
                let patch = json!({"metadata": {"resourceVersion": self.rs_version(name), "annotations": {
                    REVISION_ANNOTATION: revision.to_string(), REVISION_HISTORY_ANNOTATION: revision_history}}});
                self.patch_replica_set(name, patch).await
            }
            Op::SetScaleDownDeadline { name, deadline } => {
                let value = deadline.map(|d| d.strftime("%Y-%m-%dT%H:%M:%SZ").to_string());
                let patch = json!({"metadata": {"resourceVersion": self.rs_version(name), "annotations": {SCALE_DOWN_DEADLINE_ANNOTATION: value}}});
                self.patch_replica_set(name, patch).await
            }
            Op::DeleteReplicaSet { name } => {
                let params = DeleteParams {
                    propagation_policy: Some(PropagationPolicy::Background),
                    ..Default::default()
                };
                let before = self.rs_version(name).cloned();
                let gone = match self.api::<ReplicaSet>().delete(name, &params).await {
                    // Deleted at once: the answer is a Status, or the object as it was, with no
                    // finalizer left. (One a finalizer holds may stay for long, so it is not waited for.)
                    Ok(deleted) => deleted.left().is_none_or(|rs| rs.finalizers().is_empty()),
                    // Deleted earlier, by us or someone else, and the cache has not shown it yet.
                    Err(kube::Error::Api(status)) if status.is_not_found() => true,
                    Err(e) => return Err(kube("delete", format!("ReplicaSet {name}"))(e)),
                };
                if gone && let Some(before) = before {
                    self.replica_set_writes
                        .push((name.clone(), Before::At(before)));
                }
                Ok(())
            }
            Op::SwitchService {
                service,
                pod_template_hash,
            } => {
                let patch = json!({
                    "metadata": {"annotations": {MANAGED_BY_ROLLOUTS_ANNOTATION: self.rollout.name_any()}},
                    "spec": {"selector": {POD_TEMPLATE_HASH_LABEL: pod_template_hash}},
                });
                self.api::<Service>()
                    .patch(service, &self.params, &Patch::Merge(&patch))
                    .await
                    .map(|_| ())
                    .map_err(kube("patch", format!("Service {service}")))
            }
            Op::SetTrafficWeight { .. } => Err(Error::TrafficRoutingUnsupported),
            Op::CreateAnalysisRun(new) => Box::pin(self.create_analysis_run(new)).await,
            Op::TerminateAnalysisRun { name } => {
                let version = self.observation.analysis_run_versions.get(name).cloned();
                let patch =
                    json!({"metadata": {"resourceVersion": version}, "spec": {"terminate": true}});
                self.api::<AnalysisRun>()
                    .patch(name, &self.params, &Patch::Merge(&patch))
                    .await
                    .map(|_| ())
                    .map_err(kube("patch", format!("AnalysisRun {name}")))
            }
            Op::DeleteAnalysisRun { name } => ignore_not_found(
                self.api::<AnalysisRun>()
                    .delete(name, &DeleteParams::default())
                    .await
                    .map(|_| ()),
            )
            .map_err(kube("delete", format!("AnalysisRun {name}"))),
            Op::EvictPod { name } => {
                let eviction = Eviction {
                    metadata: ObjectMeta {
                        name: Some(name.clone()),
                        namespace: Some(self.namespace.clone()),
                        ..Default::default()
                    },
                    delete_options: None,
                };
                ignore_not_found(
                    self.api::<Pod>()
                        .create_subresource::<Eviction, Value>(
                            "eviction",
                            name,
                            &PostParams::default(),
                            &eviction,
                        )
                        .await
                        .map(|_| ()),
                )
                .map_err(kube("evict", format!("Pod {name}")))
            }
            Op::SetRolloutRevision { revision } => {
                let patch = json!({"metadata": {"resourceVersion": self.rollout_version, "annotations": {REVISION_ANNOTATION: revision.to_string()}}});
                let version = self
                    .merge_patch::<Rollout>(&self.rollout.name_any(), None, &patch)
                    .await
                    .map_err(kube(
                        "patch",
                        format!("Rollout {}", self.rollout.name_any()),
                    ))?;
                self.moved_rollout_to(version);
                Ok(())
            }
            // Recorded by `execute`, after the write they report.
            Op::Event(_) => Ok(()),
        }
    }

    /// The version a patch of the ReplicaSet `name` is conditioned on: the one our last patch in this
    /// reconcile moved it to, or else the cache's.
    fn rs_version(&self, name: &str) -> Option<&String> {
        self.replica_set_versions
            .get(name)
            .or_else(|| self.observation.replica_set_versions.get(name))
    }

    async fn patch_replica_set(&mut self, name: &str, patch: Value) -> Result<(), Error> {
        let before = self.rs_version(name).cloned();
        let version = self
            .merge_patch::<ReplicaSet>(name, None, &patch)
            .await
            .map_err(kube("patch", format!("ReplicaSet {name}")))?;
        // A patch that changed nothing keeps the version, and no watch event will follow it.
        if let Some(before) = before
            && before != version
            && !version.is_empty()
        {
            self.replica_set_writes
                .push((name.to_string(), Before::At(before)));
        }
        if !version.is_empty() {
            self.replica_set_versions.insert(name.to_string(), version);
        }
        Ok(())
    }

    /// Merge-patches the object `name` of kind `K` (or its `subresource`) and returns the
    /// resourceVersion it moved to. The answer holds the whole object, but a write needs only its
    /// version: decoding the rest (a Rollout's spec, a ReplicaSet's pod template) for every write was
    /// about 3 % of the controller's CPU during a burst of updates. API errors are errors as before.
    async fn merge_patch<K>(
        &self,
        name: &str,
        subresource: Option<&str>,
        patch: &Value,
    ) -> Result<String, kube::Error>
    where
        K: Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>,
    {
        let request = kube::core::Request::new(K::url_path(&(), Some(&self.namespace)));
        let patch = Patch::Merge(patch);
        let request = match subresource {
            Some(subresource) => request.patch_subresource(subresource, name, &self.params, &patch),
            None => request.patch(name, &self.params, &patch),
        }
        .map_err(kube::Error::BuildRequest)?;
        let answer = self.ctx.client.request_text(request).await?;
        written_version(&answer).map_err(kube::Error::SerdeError)
    }

    fn owner_reference(&self) -> OwnerReference {
        OwnerReference {
            api_version: Rollout::api_version(&()).into_owned(),
            kind: Rollout::kind(&()).into_owned(),
            name: self.rollout.name_any(),
            uid: self.rollout.uid().unwrap_or_default(),
            controller: Some(true),
            block_owner_deletion: Some(true),
        }
    }

    async fn create_replica_set(&mut self, new: &NewReplicaSet) -> Result<(), Error> {
        let rs = ReplicaSet {
            metadata: ObjectMeta {
                name: Some(new.name.clone()),
                namespace: Some(self.namespace.clone()),
                labels: Some(new.labels.clone()),
                annotations: Some(new.annotations.clone()),
                owner_references: Some(vec![self.owner_reference()]),
                ..Default::default()
            },
            spec: Some(ReplicaSetSpec {
                replicas: Some(new.replicas),
                selector: new.selector.clone(),
                template: Some(new.template.clone()),
                min_ready_seconds: Some(new.min_ready_seconds).filter(|s| *s > 0),
            }),
            status: None,
        };
        match self
            .api::<ReplicaSet>()
            .create(
                &PostParams {
                    field_manager: Some(FIELD_MANAGER.into()),
                    ..Default::default()
                },
                &rs,
            )
            .await
        {
            Ok(_) => {
                self.replica_set_writes
                    .push((new.name.clone(), Before::Absent));
                Ok(())
            }
            Err(kube::Error::Api(status)) if status.is_already_exists() => {
                self.name_taken(new).await
            }
            Err(e) => Err(kube("create", format!("ReplicaSet {}", new.name))(e)),
        }
    }

    /// The name of the ReplicaSet being created is taken. Either our cache has not seen our own
    /// ReplicaSet yet, or something else holds the name (reference 3.3). Nothing was created, so the
    /// rest of the plan and its "created" events are dropped either way; on a collision the count in
    /// the status is raised first, which changes the hash, and so the name, in the next plan.
    async fn name_taken(&mut self, new: &NewReplicaSet) -> Result<(), Error> {
        let existing = self
            .api::<ReplicaSet>()
            .get(&new.name)
            .await
            .map_err(kube("get", format!("ReplicaSet {}", new.name)))?;
        if super::observe::is_the_new_replica_set(&existing, self.rollout, &new.pod_template_hash) {
            // Ours, created by an earlier reconcile: wait for the cache to show it.
            self.replica_set_writes
                .push((new.name.clone(), Before::Absent));
            return Err(Error::CreatedElsewhere(new.name.clone()));
        }
        let count = self
            .rollout
            .status
            .as_ref()
            .and_then(|s| s.collision_count)
            .unwrap_or(0)
            .saturating_add(1);
        self.ensure_leader()?;
        self.patch_rollout_status(json!({"collisionCount": count}))
            .await?;
        Err(Error::NameTaken {
            name: new.name.clone(),
            count,
        })
    }

    async fn create_analysis_run(&self, new: &NewAnalysisRun) -> Result<(), Error> {
        let body = super::analysisrun::build(
            self.rollout,
            new,
            &self.observation.observed,
            self.owner_reference(),
        );
        let api = self.api::<AnalysisRun>();
        let params = PostParams {
            field_manager: Some(FIELD_MANAGER.into()),
            ..Default::default()
        };
        // A name taken by a run of an earlier attempt gets a suffix, as Argo does.
        for attempt in 0..10 {
            let mut run = body.clone();
            if attempt > 0 {
                run.metadata.name = Some(format!("{}.{attempt}", new.name));
            }
            match api.create(&params, &run).await {
                Ok(_) => return Ok(()),
                Err(kube::Error::Api(status)) if status.is_already_exists() => continue,
                Err(e) => return Err(kube("create", format!("AnalysisRun {}", new.name))(e)),
            }
        }
        Ok(())
    }

    async fn record_events(&self, events: &[Event]) {
        let name = self.rollout.name_any();
        for event in events {
            self.ctx.metrics.event(&self.namespace, &name, event);
        }
        self.ctx
            .events
            .record(self.rollout, &self.rollout_version, events)
            .await;
    }

    /// Merge-patches `/status` with what changed, conditioned on the Rollout's resourceVersion, and only
    /// when something changed.
    async fn write_status(&mut self, plan: &Plan) -> Result<(), Error> {
        // Most reconciles confirm the status they read (the echo of our own last write): comparing the
        // typed values first spares serialising both, about 8 % of the controller's CPU during a burst.
        if self.rollout.status.as_ref() == Some(&plan.status) {
            return Ok(());
        }
        let old =
            serde_json::to_value(&self.rollout.status).map_err(|e| Error::Encode("status", e))?;
        let new = serde_json::to_value(&plan.status).map_err(|e| Error::Encode("status", e))?;
        let Some(diff) = merge_diff(&old, &new) else {
            return Ok(());
        };
        self.ensure_leader()?;
        self.patch_rollout_status(diff).await
    }

    /// Merge-patches the Rollout's `/status` with `status`, conditioned on the version this reconcile
    /// holds, and moves on to the version it makes.
    async fn patch_rollout_status(&mut self, status: Value) -> Result<(), Error> {
        let patch =
            json!({"metadata": {"resourceVersion": self.rollout_version}, "status": status});
        let version = self
            .merge_patch::<Rollout>(&self.rollout.name_any(), Some("status"), &patch)
            .await
            .map_err(kube(
                "patch",
                format!("Rollout {} status", self.rollout.name_any()),
            ))?;
        self.moved_rollout_to(version);
        Ok(())
    }
}

/// The resourceVersion in a write's answer; every other field is skipped without being built.
fn written_version(answer: &str) -> Result<String, serde_json::Error> {
    #[derive(serde::Deserialize)]
    struct Written {
        #[serde(default)]
        metadata: Metadata,
    }
    #[derive(Default, serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Metadata {
        #[serde(default)]
        resource_version: String,
    }
    serde_json::from_str::<Written>(answer).map(|written| written.metadata.resource_version)
}

fn ignore_not_found(result: Result<(), kube::Error>) -> Result<(), kube::Error> {
    match result {
        Err(kube::Error::Api(status)) if status.is_not_found() => Ok(()),
        other => other,
    }
}

/// The JSON merge patch that turns `old` into `new`: changed keys, `null` for removed ones, whole arrays.
/// `None` when they are equal.
pub fn merge_diff(old: &Value, new: &Value) -> Option<Value> {
    if old == new {
        return None;
    }
    match (old, new) {
        (Value::Object(old), Value::Object(new)) => {
            let mut patch = serde_json::Map::new();
            for (key, value) in new {
                let changed = match old.get(key) {
                    Some(previous) => merge_diff(previous, value),
                    None => Some(value.clone()),
                };
                if let Some(changed) = changed {
                    patch.insert(key.clone(), changed);
                }
            }
            for key in old.keys().filter(|k| !new.contains_key(*k)) {
                patch.insert(key.clone(), Value::Null);
            }
            Some(Value::Object(patch))
        }
        // A value that is itself null cannot be expressed in a merge patch except as a removal.
        _ => Some(new.clone()),
    }
}

/// Labels of an AnalysisRun created for a rollout.
pub fn analysis_run_labels(new: &NewAnalysisRun) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::from([
        (
            POD_TEMPLATE_HASH_LABEL.to_string(),
            new.pod_template_hash.clone(),
        ),
        (ROLLOUT_TYPE_LABEL.to_string(), new.kind.label().to_string()),
    ]);
    if let Some(step) = new.step_index {
        labels.insert(STEP_INDEX_LABEL.to_string(), step.to_string());
    }
    labels
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_diff_sends_changes_and_nulls_for_removals() {
        let old = json!({"phase": "Paused", "pauseConditions": [{"reason": "CanaryPauseStep"}], "currentStepIndex": 1, "canary": {"weights": null}});
        let new = json!({"phase": "Progressing", "currentStepIndex": 1, "canary": {}});
        assert_eq!(
            merge_diff(&old, &new),
            Some(
                json!({"phase": "Progressing", "pauseConditions": null, "canary": {"weights": null}})
            )
        );
        assert_eq!(merge_diff(&new, &new), None);
    }

    #[test]
    fn a_writes_answer_is_read_for_its_version_only() {
        let answer = json!({
            "apiVersion": "argoproj.io/v1alpha1",
            "kind": "Rollout",
            "metadata": {"name": "web", "resourceVersion": "4711", "managedFields": [{"manager": "ramp"}]},
            "spec": {"template": {"spec": {"containers": [{"name": "web", "image": "nginx:1.27"}]}}},
            "status": {"phase": "Progressing"}
        });
        assert_eq!(written_version(&answer.to_string()).unwrap(), "4711");
        assert_eq!(written_version(r#"{"kind": "Rollout"}"#).unwrap(), "");
        assert!(written_version("<html>proxy error</html>").is_err());
    }

    #[test]
    fn arrays_are_replaced_whole() {
        let old = json!({"conditions": [{"type": "A"}, {"type": "B"}]});
        let new = json!({"conditions": [{"type": "A"}]});
        assert_eq!(
            merge_diff(&old, &new),
            Some(json!({"conditions": [{"type": "A"}]}))
        );
    }
}
