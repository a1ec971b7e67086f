//! What every plan starts from: the rollout's desired pod-template hash, its ReplicaSets sorted into new,
//! stable and others, and its revision.

use std::borrow::Cow;

use jiff::Timestamp;
use k8s_openapi::api::core::v1::PodTemplateSpec;

use super::hash::{TemplateIdentity, pod_template_hash, step_hash};
use super::observed::{Observed, ReplicaSetState};
use crate::api::rollout::{Rollout, RolloutStatus};

/// The facts every part of the planner reads.
pub(crate) struct Context<'a> {
    pub rollout: &'a Rollout,
    pub observed: &'a Observed,
    pub old: RolloutStatus,
    pub now: Timestamp,
    pub name: String,
    pub generation: i64,
    /// `spec.replicas` (1 when unset).
    pub replicas: i32,
    /// The rollout's pod template, borrowed: a plan hashes it and only a new ReplicaSet copies it.
    pub template: Cow<'a, PodTemplateSpec>,
    /// Pod-template hash of the desired ReplicaSet (an adopted ReplicaSet's own hash when found by
    /// template equality).
    pub new_hash: String,
    pub new_rs: Option<&'a ReplicaSetState>,
    /// The ReplicaSet named by `status.stableRS`, when it exists.
    pub stable_rs: Option<&'a ReplicaSetState>,
    /// All other ReplicaSets, newest revision first.
    pub other_rs: Vec<&'a ReplicaSetState>,
    /// Hash of the canary steps; empty for blue-green.
    pub step_hash: String,
    /// The revision of the desired ReplicaSet.
    pub revision: i64,
}

impl<'a> Context<'a> {
    pub fn new(rollout: &'a Rollout, observed: &'a Observed, now: Timestamp) -> Self {
        let old = rollout.status.clone().unwrap_or_default();
        let template = rollout
            .spec
            .template
            .as_ref()
            .map_or_else(Cow::default, Cow::Borrowed);
        let computed_hash = pod_template_hash(&template, old.collision_count);

        let by_hash = observed
            .replica_sets
            .iter()
            .find(|rs| rs.pod_template_hash == computed_hash);
        // A ReplicaSet carrying the hash is ours even though its template differs from the rollout's
        // by injected metadata or anti-affinity, as in Argo's FindNewReplicaSet.
        let new_rs = by_hash.or_else(|| {
            let identity = TemplateIdentity::of(&template, &[], &[]);
            observed
                .replica_sets
                .iter()
                .filter(|rs| rs.template == identity)
                .max_by_key(|rs| (rs.revision, rs.created))
        });
        let new_hash = new_rs
            .map(|rs| rs.pod_template_hash.clone())
            .unwrap_or(computed_hash);

        let stable_rs = observed
            .replica_sets
            .iter()
            .find(|rs| !old.stable_rs.is_empty() && rs.pod_template_hash == old.stable_rs);
        let mut other_rs: Vec<&ReplicaSetState> = observed
            .replica_sets
            .iter()
            .filter(|rs| rs.pod_template_hash != new_hash && rs.pod_template_hash != old.stable_rs)
            .collect();
        other_rs.sort_by_key(|rs| std::cmp::Reverse((rs.revision, rs.created)));

        let max_other_revision = observed
            .replica_sets
            .iter()
            .filter(|rs| rs.pod_template_hash != new_hash)
            .filter_map(|rs| rs.revision)
            .max()
            .unwrap_or(0);
        let revision = match new_rs.and_then(|rs| rs.revision) {
            Some(revision) if revision > max_other_revision => revision,
            _ => max_other_revision + 1,
        };

        let steps = rollout
            .spec
            .strategy
            .canary
            .as_ref()
            .map(|canary| canary.steps.as_deref());
        let step_hash = match steps {
            Some(steps) => step_hash(steps),
            None => String::new(),
        };

        Context {
            name: rollout.metadata.name.clone().unwrap_or_default(),
            generation: rollout.metadata.generation.unwrap_or(0),
            replicas: rollout.spec.replicas_or_default().max(0),
            rollout,
            observed,
            old,
            now,
            template,
            new_hash,
            new_rs,
            stable_rs,
            other_rs,
            step_hash,
            revision,
        }
    }

    /// The stable ReplicaSet, unless it is the desired one.
    pub fn stable_distinct(&self) -> Option<&'a ReplicaSetState> {
        self.stable_rs
            .filter(|rs| rs.pod_template_hash != self.new_hash)
    }

    /// True when the desired ReplicaSet is the stable one: nothing is being released.
    pub fn fully_promoted(&self, stable_hash: &str) -> bool {
        !stable_hash.is_empty() && stable_hash == self.new_hash
    }

    /// Every ReplicaSet of the rollout.
    pub fn all_rs(&self) -> impl Iterator<Item = &'a ReplicaSetState> {
        self.observed.replica_sets.iter()
    }

    /// `<rollout>-<hash>`.
    pub fn new_rs_name(&self) -> String {
        format!("{}-{}", self.name, self.new_hash)
    }
}
