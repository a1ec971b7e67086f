//! A small, pure model of a cluster that performs a plan's ops the way Kubernetes would: ReplicaSets get
//! pods that become available after a delay, Services and traffic weights follow the ops, AnalysisRuns
//! finish with a chosen verdict. Used by the planner's tests and by offline simulation.

use std::collections::{BTreeMap, VecDeque};

use jiff::{SignedDuration, Timestamp};

use crate::api::AnalysisPhase;
use crate::api::Rollout;
use crate::api::constants::{POD_TEMPLATE_HASH_LABEL, REVISION_ANNOTATION};
use crate::plan::{
    AnalysisRunState, Event, Observed, Op, Plan, PodState, ReplicaSetState, ServiceState, plan,
};

/// A pod in the model.
#[derive(Clone, Debug)]
struct Pod {
    name: String,
    hash: String,
    created: Timestamp,
    ready_at: Timestamp,
}

/// The simulated cluster around one Rollout.
#[derive(Clone, Debug)]
pub struct World {
    /// The Rollout, with the status the last plan wrote.
    pub rollout: Rollout,
    /// What the planner sees; kept in step with the pods.
    pub observed: Observed,
    /// The simulated time.
    pub now: Timestamp,
    /// How long a new pod takes to become available.
    pub pod_ready_delay: SignedDuration,
    /// Pods of these pod-template hashes never become ready.
    pub never_ready: Vec<String>,
    /// The verdict analysis runs reach, and how long they take.
    pub analysis_outcome: AnalysisPhase,
    /// See `analysis_outcome`.
    pub analysis_duration: SignedDuration,
    /// Verdicts for the next runs created, in creation order; once it is empty, runs reach
    /// `analysis_outcome`.
    pub analysis_script: VecDeque<AnalysisPhase>,
    /// The verdict each run took from `analysis_script` when it was created.
    scripted_outcomes: BTreeMap<String, AnalysisPhase>,
    /// Every event the plans emitted, in order.
    pub events: Vec<Event>,
    pods: Vec<Pod>,
    pod_counter: u64,
}

impl World {
    /// A world holding `rollout` and the Services it references (with the given selectors).
    pub fn new(rollout: Rollout, now: Timestamp) -> Self {
        let mut observed = Observed::default();
        for service in referenced_services(&rollout) {
            let selector = rollout
                .spec
                .selector
                .as_ref()
                .and_then(|s| s.match_labels.clone())
                .unwrap_or_default();
            observed.services.insert(
                service.clone(),
                ServiceState {
                    name: service,
                    selector,
                    managed_by_rollout: None,
                },
            );
        }
        World {
            rollout,
            observed,
            now,
            pod_ready_delay: SignedDuration::from_secs(1),
            never_ready: Vec::new(),
            analysis_outcome: AnalysisPhase::Successful,
            analysis_duration: SignedDuration::from_secs(5),
            analysis_script: VecDeque::new(),
            scripted_outcomes: BTreeMap::new(),
            events: Vec::new(),
            pods: Vec::new(),
            pod_counter: 0,
        }
    }

    /// Plans once and performs the plan.
    pub fn reconcile(&mut self) -> Plan {
        let plan = plan(&self.rollout, &self.observed, self.now);
        self.apply(&plan);
        plan
    }

    /// Performs a plan's ops and writes its status.
    pub fn apply(&mut self, plan: &Plan) {
        for op in &plan.ops {
            self.perform(op);
        }
        self.rollout.status = Some(plan.status.clone());
        self.refresh();
    }

    /// Moves the clock; pods and analysis runs progress.
    pub fn advance(&mut self, by: SignedDuration) {
        self.now = self.now.saturating_add(by).unwrap_or(Timestamp::MAX);
        self.refresh();
    }

    /// Changes the Rollout's spec the way a user's `kubectl apply` would (generation bumped).
    pub fn update_spec(&mut self, change: impl FnOnce(&mut crate::api::RolloutSpec)) {
        change(&mut self.rollout.spec);
        let generation = self.rollout.metadata.generation.unwrap_or(1);
        self.rollout.metadata.generation = Some(generation + 1);
    }

    /// Changes the Rollout's status the way `kubectl ramp promote/abort/retry` would.
    pub fn update_status(&mut self, change: impl FnOnce(&mut crate::api::RolloutStatus)) {
        let mut status = self.rollout.status.clone().unwrap_or_default();
        change(&mut status);
        self.rollout.status = Some(status);
    }

    /// Sets the image of every container.
    pub fn set_image(&mut self, image: &str) {
        self.update_spec(|spec| {
            if let Some(pod_spec) = spec.template.as_mut().and_then(|t| t.spec.as_mut()) {
                for container in &mut pod_spec.containers {
                    container.image = Some(image.to_string());
                }
            }
        });
    }

    /// True when nothing changes by itself any more as time passes: no pod is still becoming ready and
    /// no AnalysisRun is still measuring. (Pods that never become ready do not count.)
    pub fn is_idle(&self) -> bool {
        let pods_pending = self
            .pods
            .iter()
            .any(|pod| pod.ready_at > self.now && pod.ready_at != Timestamp::MAX);
        let runs_pending = self
            .observed
            .analysis_runs
            .iter()
            .any(|run| !run.phase.is_some_and(AnalysisPhase::is_completed));
        !pods_pending && !runs_pending
    }

    /// Pods that exist in all ReplicaSets.
    pub fn pod_count(&self) -> i32 {
        self.pods.len() as i32
    }

    fn perform(&mut self, op: &Op) {
        match op {
            Op::CreateReplicaSet(new) => {
                let replicas = self.rollout.spec.replicas_or_default();
                self.observed
                    .replica_sets
                    .push(ReplicaSetState::created(new, replicas, self.now));
            }
            Op::ScaleReplicaSet {
                name,
                to,
                desired_replicas_annotation,
                ..
            } => {
                if let Some(rs) = self.rs_mut(name) {
                    rs.replicas = *to;
                    rs.desired_replicas_annotation = Some(*desired_replicas_annotation);
                }
            }
            Op::SetReplicaSetRevision {
                name,
                revision,
                revision_history,
            } => {
                if let Some(rs) = self.rs_mut(name) {
                    rs.revision = Some(*revision);
                    rs.revision_history = revision_history.clone();
                }
            }
            Op::SetScaleDownDeadline { name, deadline } => {
                if let Some(rs) = self.rs_mut(name) {
                    rs.scale_down_deadline = *deadline;
                }
            }
            Op::DeleteReplicaSet { name } => {
                if let Some(hash) = self.rs_mut(name).map(|rs| rs.pod_template_hash.clone()) {
                    self.pods.retain(|pod| pod.hash != hash);
                }
                self.observed.replica_sets.retain(|rs| rs.name != *name);
            }
            Op::SwitchService {
                service,
                pod_template_hash,
            } => {
                let owner = self.rollout.metadata.name.clone();
                if let Some(svc) = self.observed.services.get_mut(service) {
                    svc.selector
                        .insert(POD_TEMPLATE_HASH_LABEL.into(), pod_template_hash.clone());
                    svc.managed_by_rollout = owner;
                }
            }
            Op::SetTrafficWeight { canary_weight, .. } => {
                self.observed.traffic_weight = Some(*canary_weight);
            }
            Op::CreateAnalysisRun(new) => {
                if let Some(outcome) = self.analysis_script.pop_front() {
                    self.scripted_outcomes.insert(new.name.clone(), outcome);
                }
                self.observed.analysis_runs.push(AnalysisRunState {
                    name: new.name.clone(),
                    pod_template_hash: new.pod_template_hash.clone(),
                    rollout_type: new.kind.label().to_string(),
                    step_index: new.step_index,
                    phase: None,
                    message: String::new(),
                    terminating: false,
                    created: self.now,
                });
            }
            Op::TerminateAnalysisRun { name } => {
                if let Some(run) = self
                    .observed
                    .analysis_runs
                    .iter_mut()
                    .find(|r| r.name == *name)
                {
                    run.terminating = true;
                    if !run.phase.is_some_and(AnalysisPhase::is_completed) {
                        run.phase = Some(AnalysisPhase::Successful);
                        run.message = "Run Terminated".into();
                    }
                }
            }
            Op::DeleteAnalysisRun { name } => {
                self.observed.analysis_runs.retain(|r| r.name != *name);
            }
            Op::EvictPod { name } => {
                self.pods.retain(|pod| pod.name != *name);
            }
            Op::SetRolloutRevision { revision } => {
                self.rollout
                    .metadata
                    .annotations
                    .get_or_insert_with(BTreeMap::new)
                    .insert(REVISION_ANNOTATION.into(), revision.to_string());
            }
            Op::Event(event) => self.events.push(event.clone()),
        }
    }

    fn rs_mut(&mut self, name: &str) -> Option<&mut ReplicaSetState> {
        self.observed
            .replica_sets
            .iter_mut()
            .find(|rs| rs.name == name)
    }

    /// The ReplicaSet controller and kubelet: pods are created or removed to match each ReplicaSet
    /// (unready pods removed first), and counted ready once their delay has passed.
    fn refresh(&mut self) {
        let now = self.now;
        for index in 0..self.observed.replica_sets.len() {
            let (hash, wanted) = {
                let rs = &self.observed.replica_sets[index];
                (rs.pod_template_hash.clone(), rs.replicas.max(0) as usize)
            };
            let mut have: Vec<usize> = (0..self.pods.len())
                .filter(|i| self.pods[*i].hash == hash)
                .collect();
            while have.len() < wanted {
                self.pod_counter += 1;
                let ready_at = if self.never_ready.contains(&hash) {
                    Timestamp::MAX
                } else {
                    now.saturating_add(self.pod_ready_delay)
                        .unwrap_or(Timestamp::MAX)
                };
                self.pods.push(Pod {
                    name: format!(
                        "{}-{}-{}",
                        self.rollout.metadata.name.clone().unwrap_or_default(),
                        hash,
                        self.pod_counter
                    ),
                    hash: hash.clone(),
                    created: now,
                    ready_at,
                });
                have.push(self.pods.len() - 1);
            }
            if have.len() > wanted {
                // Unready pods go first, then the newest.
                have.sort_by_key(|i| {
                    (
                        self.pods[*i].ready_at <= now,
                        std::cmp::Reverse(self.pods[*i].created),
                    )
                });
                let remove: Vec<String> = have[..have.len() - wanted]
                    .iter()
                    .map(|i| self.pods[*i].name.clone())
                    .collect();
                self.pods.retain(|pod| !remove.contains(&pod.name));
            }
        }
        for rs in &mut self.observed.replica_sets {
            let pods: Vec<&Pod> = self
                .pods
                .iter()
                .filter(|p| p.hash == rs.pod_template_hash)
                .collect();
            rs.status_replicas = pods.len() as i32;
            let ready = pods.iter().filter(|p| p.ready_at <= now).count() as i32;
            rs.ready_replicas = ready;
            rs.available_replicas = ready;
        }
        self.observed.pods = self
            .pods
            .iter()
            .map(|pod| PodState {
                name: pod.name.clone(),
                pod_template_hash: pod.hash.clone(),
                created: pod.created,
                terminating: false,
            })
            .collect();
        for run in &mut self.observed.analysis_runs {
            if run.phase.is_some_and(AnalysisPhase::is_completed) {
                continue;
            }
            let done_at = run
                .created
                .saturating_add(self.analysis_duration)
                .unwrap_or(Timestamp::MAX);
            if now >= done_at {
                let outcome = self
                    .scripted_outcomes
                    .get(&run.name)
                    .copied()
                    .unwrap_or(self.analysis_outcome);
                run.phase = Some(outcome);
                run.message = match outcome {
                    AnalysisPhase::Failed => {
                        "Metric \"success-rate\" assessed Failed due to failed (1) > failureLimit (0)".into()
                    }
                    _ => String::new(),
                };
            } else {
                run.phase = Some(AnalysisPhase::Running);
            }
        }
    }
}

/// The Services a Rollout names.
fn referenced_services(rollout: &Rollout) -> Vec<String> {
    let strategy = &rollout.spec.strategy;
    let mut names = Vec::new();
    if let Some(canary) = &strategy.canary {
        names.push(canary.canary_service.clone());
        names.push(canary.stable_service.clone());
    }
    if let Some(blue_green) = &strategy.blue_green {
        names.push(blue_green.active_service.clone());
        names.push(blue_green.preview_service.clone());
    }
    names.retain(|n| !n.is_empty());
    names
}
