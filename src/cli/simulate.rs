//! `kubectl ramp simulate`: runs the real planner against the pure world model (`sim`) and reports the
//! release as a timeline, before the Rollout touches a cluster.

use jiff::{SignedDuration, Timestamp};
use serde::Serialize;

use crate::api::constants::pause_reason;
use crate::api::{AnalysisPhase, Rollout};
use crate::plan::Op;
use crate::sim::World;

/// How the simulated cluster behaves.
#[derive(Clone, Debug)]
pub struct Options {
    /// How long pods take to become available.
    pub pod_ready_delay: SignedDuration,
    /// The verdicts of the release's AnalysisRuns in the order they are created; the last one
    /// also holds for every later run. Empty means every run is Successful.
    pub analysis_outcomes: Vec<AnalysisPhase>,
    /// How long AnalysisRuns take.
    pub analysis_duration: SignedDuration,
    /// How long the simulated person waits before promoting an indefinite pause.
    pub promote_after: SignedDuration,
    /// Stop after this much simulated time.
    pub max_duration: SignedDuration,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            pod_ready_delay: SignedDuration::from_secs(5),
            analysis_outcomes: vec![AnalysisPhase::Successful],
            analysis_duration: SignedDuration::from_secs(30),
            promote_after: SignedDuration::from_secs(60),
            max_duration: SignedDuration::from_hours(6),
        }
    }
}

/// One moment of the release at which something visible changed. The JSON form is stable: fields are
/// only ever added.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Moment {
    /// Seconds since the new version was applied.
    pub at_seconds: i64,
    /// `currentStepIndex` (absent without steps).
    pub step_index: Option<i32>,
    /// The current step, e.g. `setWeight: 20` (absent past the last one).
    pub step: Option<String>,
    /// `spec.replicas` of the new ReplicaSet.
    pub canary_replicas: i32,
    /// `spec.replicas` of the stable ReplicaSet (0 once the new one is stable).
    pub stable_replicas: i32,
    /// Available pods of the new ReplicaSet.
    pub canary_available: i32,
    /// Available pods of the stable ReplicaSet.
    pub stable_available: i32,
    /// The setWeight in effect.
    pub weight: i32,
    /// Service name -> the ReplicaSet (`canary` or `stable`) it selects.
    pub services: std::collections::BTreeMap<String, String>,
    /// The new version's AnalysisRuns that gate the release, oldest first.
    pub analysis: Vec<AnalysisGate>,
    /// `status.phase`.
    pub phase: String,
    /// `status.message`.
    pub message: String,
    /// What the simulated person did at this moment, if anything.
    pub action: Option<String>,
    /// The pod-template hash the status describes.
    #[serde(skip)]
    pub revision_hash: String,
}

/// An AnalysisRun of the new version, as the timeline shows it.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AnalysisGate {
    /// The run's name.
    pub name: String,
    /// Its `rollout-type` label: `Step`, `Background`, `PrePromotion` or `PostPromotion`.
    pub kind: String,
    /// The step that started it, for a step analysis.
    pub step_index: Option<i32>,
    /// Its phase (`Pending` until it is first measured).
    pub phase: String,
}

impl AnalysisGate {
    /// `Step 2: Running`, `Background: Successful`.
    fn summary(&self) -> String {
        match self.step_index {
            Some(step) if self.kind == "Step" => format!("Step {step}: {}", self.phase),
            _ => format!("{}: {}", self.kind, self.phase),
        }
    }
}

/// The whole simulated release.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Timeline {
    /// The Rollout's name.
    pub rollout: String,
    /// How the release ended: the final phase.
    pub outcome: String,
    /// The moments, in order.
    pub moments: Vec<Moment>,
}

/// AnalysisTemplates the simulated Rollout may reference, by name.
#[derive(Clone, Debug, Default)]
pub struct Templates {
    /// AnalysisTemplates.
    pub namespaced: std::collections::BTreeMap<String, crate::api::AnalysisTemplateSpec>,
    /// ClusterAnalysisTemplates.
    pub cluster: std::collections::BTreeMap<String, crate::api::AnalysisTemplateSpec>,
}

/// Deploys `rollout` once (the stable version), then releases a new pod template and records the
/// timeline of that release. A Rollout that is invalid gives a one-moment timeline with the
/// `InvalidSpec` message, as the controller would report it.
pub fn simulate(rollout: Rollout, templates: &Templates, options: &Options) -> Timeline {
    let start: Timestamp = Timestamp::UNIX_EPOCH;
    let mut world = World::new(rollout, start);
    world.observed.analysis_templates = templates.namespaced.clone();
    world.observed.cluster_analysis_templates = templates.cluster.clone();
    world.pod_ready_delay = SignedDuration::ZERO;
    world.analysis_duration = options.analysis_duration;
    run_until_idle(&mut world, options, None);
    let deployed = world.rollout.status.clone().unwrap_or_default();
    if deployed.phase != "Healthy" {
        return Timeline {
            rollout: world.rollout.metadata.name.clone().unwrap_or_default(),
            outcome: deployed.phase.clone(),
            moments: vec![moment(&world, world.now, None)],
        };
    }

    // Release a new version: the same template with a changed annotation.
    world.update_spec(|spec| {
        let template = spec.template.get_or_insert_with(Default::default);
        template
            .metadata
            .get_or_insert_with(Default::default)
            .annotations
            .get_or_insert_with(Default::default)
            .insert("ramp.simulate/revision".into(), "2".into());
    });
    world.pod_ready_delay = options.pod_ready_delay;
    if let Some((last, first)) = options.analysis_outcomes.split_last() {
        world.analysis_script = first.iter().copied().collect();
        world.analysis_outcome = *last;
    }
    let released_at = world.now;
    let previous_hash = world
        .rollout
        .status
        .as_ref()
        .map(|s| s.current_pod_hash.clone())
        .unwrap_or_default();
    let mut moments = Vec::new();
    run_until_idle(&mut world, options, Some((&mut moments, released_at)));
    // Until the planner has taken up the new version, the status still describes the old one.
    moments.retain(|m: &Moment| m.revision_hash != previous_hash);
    Timeline {
        rollout: world.rollout.metadata.name.clone().unwrap_or_default(),
        outcome: world
            .rollout
            .status
            .as_ref()
            .map(|s| s.phase.clone())
            .unwrap_or_default(),
        moments,
    }
}

fn run_until_idle(
    world: &mut World,
    options: &Options,
    mut record: Option<(&mut Vec<Moment>, Timestamp)>,
) {
    let deadline = world
        .now
        .saturating_add(options.max_duration)
        .unwrap_or(Timestamp::MAX);
    let mut paused_since: Option<Timestamp> = None;
    while world.now < deadline {
        let before = world.rollout.status.clone();
        let plan = world.reconcile();
        let mut action = None;
        let status = plan.status.clone();
        let waiting_on_person = status.pause_conditions.iter().any(|p| {
            p.reason == pause_reason::CANARY_PAUSE_STEP
                || p.reason == pause_reason::BLUE_GREEN_PAUSE
        }) && plan.requeue_after.is_none();
        if waiting_on_person {
            let since = *paused_since.get_or_insert(world.now);
            if world.now.duration_since(since) >= options.promote_after {
                world.update_status(|s| s.pause_conditions.clear());
                action = Some("promote".to_string());
                paused_since = None;
            }
        } else {
            paused_since = None;
        }
        if let Some((moments, released_at)) = record.as_mut() {
            let moment = moment(world, *released_at, action.clone());
            let changed = moments.last().is_none_or(|last: &Moment| {
                let mut last = last.clone();
                last.at_seconds = moment.at_seconds;
                last.action = moment.action.clone();
                last != moment
            });
            if changed || action.is_some() {
                moments.push(moment);
            }
        }
        let idle = plan.ops.iter().all(|op| matches!(op, Op::Event(_)))
            && plan.ops.is_empty()
            && Some(&status) == before.as_ref()
            && action.is_none();
        let pods_settled = world.observed.replica_sets.iter().all(|rs| {
            rs.available_replicas == rs.replicas
                || world.never_ready.contains(&rs.pod_template_hash)
        });
        let done = matches!(status.phase.as_str(), "Healthy" | "Degraded") && pods_settled;
        if idle && done && plan.requeue_after.is_none() {
            return;
        }
        let step = if idle {
            SignedDuration::from_secs(1)
        } else {
            SignedDuration::ZERO
        };
        world.advance(step.max(SignedDuration::from_millis(250)));
    }
}

fn moment(world: &World, released_at: Timestamp, action: Option<String>) -> Moment {
    let status = world.rollout.status.clone().unwrap_or_default();
    let steps = world.rollout.spec.canary_steps();
    let find = |hash: &str| {
        world
            .observed
            .replica_sets
            .iter()
            .find(|rs| !hash.is_empty() && rs.pod_template_hash == hash)
    };
    let canary = find(&status.current_pod_hash);
    let stable = find(&status.stable_rs).filter(|_| status.stable_rs != status.current_pod_hash);
    let index = status.current_step_index;
    let step = index
        .and_then(|i| steps.get(i as usize))
        .map(|s| serde_json::to_string(s).unwrap_or_default());
    let weight = if status.stable_rs == status.current_pod_hash {
        100
    } else if status.abort {
        0
    } else {
        let upto = index.unwrap_or(0).max(0) as usize;
        if upto >= steps.len() {
            100
        } else {
            steps[..=upto]
                .iter()
                .rev()
                .find_map(|s| s.set_weight)
                .unwrap_or(0)
        }
    };
    let services = world
        .observed
        .services
        .iter()
        .map(|(name, svc)| {
            let hash = svc
                .selector
                .get(crate::api::constants::POD_TEMPLATE_HASH_LABEL)
                .cloned()
                .unwrap_or_default();
            let role = if hash.is_empty() {
                "-".to_string()
            } else if hash == status.stable_rs {
                // Checked first: once the release is done, the new ReplicaSet is the stable one.
                "stable".to_string()
            } else if hash == status.current_pod_hash {
                "canary".to_string()
            } else {
                hash
            };
            (name.clone(), role)
        })
        .collect();
    let analysis = world
        .observed
        .analysis_runs
        .iter()
        .filter(|run| run.pod_template_hash == status.current_pod_hash)
        .map(|run| AnalysisGate {
            name: run.name.clone(),
            kind: run.rollout_type.clone(),
            step_index: run.step_index,
            phase: run
                .phase
                .map_or_else(|| "Pending".to_string(), |p| p.as_str().to_string()),
        })
        .collect();
    Moment {
        at_seconds: world.now.duration_since(released_at).as_secs(),
        step_index: index,
        step,
        canary_replicas: canary.map_or(0, |rs| rs.replicas),
        stable_replicas: stable.map_or(0, |rs| rs.replicas),
        canary_available: canary.map_or(0, |rs| rs.available_replicas),
        stable_available: stable.map_or(0, |rs| rs.available_replicas),
        weight,
        services,
        analysis,
        phase: status.phase,
        message: status.message,
        action,
        revision_hash: status.current_pod_hash,
    }
}

/// The timeline as an aligned table. SERVICES shows which ReplicaSet each Service selects and
/// ANALYSIS the phase of each of the new version's runs; both columns are as wide as their content.
pub fn render_table(timeline: &Timeline) -> String {
    let services = |m: &Moment| {
        let pairs: Vec<String> = m
            .services
            .iter()
            .map(|(name, role)| format!("{name}={role}"))
            .collect();
        if pairs.is_empty() {
            "-".into()
        } else {
            pairs.join(",")
        }
    };
    let analysis = |m: &Moment| {
        let gates: Vec<String> = m.analysis.iter().map(AnalysisGate::summary).collect();
        if gates.is_empty() {
            "-".into()
        } else {
            gates.join(", ")
        }
    };
    let width = |column: &dyn Fn(&Moment) -> String, header: &str| {
        timeline
            .moments
            .iter()
            .map(|m| column(m).chars().count())
            .chain([header.len()])
            .max()
            .unwrap_or_default()
    };
    let services_width = width(&services, "SERVICES");
    let analysis_width = width(&analysis, "ANALYSIS");
    let mut out = format!(
        "{:>6}  {:<6} {:<28} {:>7} {:>7} {:>6}  {:<services_width$}  {:<analysis_width$}  {:<12} MESSAGE\n",
        "TIME", "STEP", "ACTION", "CANARY", "STABLE", "WEIGHT", "SERVICES", "ANALYSIS", "PHASE"
    );
    for m in &timeline.moments {
        let step = match m.step_index {
            Some(i) => i.to_string(),
            None => "-".into(),
        };
        let what = m
            .action
            .clone()
            .or_else(|| m.step.clone())
            .unwrap_or_else(|| "-".into());
        let line = format!(
            "{:>5}s  {:<6} {:<28} {:>3}/{:<3} {:>3}/{:<3} {:>6}  {:<services_width$}  {:<analysis_width$}  {:<12} {}",
            m.at_seconds,
            step,
            truncate(&what, 28),
            m.canary_available,
            m.canary_replicas,
            m.stable_available,
            m.stable_replicas,
            m.weight,
            services(m),
            analysis(m),
            m.phase,
            m.message
        );
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out.push_str(&format!("outcome: {}\n", timeline.outcome));
    out
}

fn truncate(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        text.to_string()
    } else {
        let mut cut: String = text.chars().take(width - 1).collect();
        cut.push('…');
        cut
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn documents(name: &str) -> Vec<serde_json::Value> {
        let path = format!("{}/examples/{name}", env!("CARGO_MANIFEST_DIR"));
        let text = std::fs::read_to_string(&path).expect("example exists");
        serde_norway::Deserializer::from_str(&text)
            .map(|document| serde::Deserialize::deserialize(document).expect("YAML parses"))
            .collect()
    }

    /// Every template in the examples directory.
    fn example_templates() -> Templates {
        let mut templates = Templates::default();
        for file in ["analysis-templates.yaml", "cluster-analysis-templates.yaml"] {
            for value in documents(file) {
                let name = value["metadata"]["name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string();
                let spec = serde_json::from_value(value["spec"].clone()).expect("template parses");
                match value["kind"].as_str() {
                    Some("AnalysisTemplate") => templates.namespaced.insert(name, spec),
                    Some("ClusterAnalysisTemplate") => templates.cluster.insert(name, spec),
                    _ => None,
                };
            }
        }
        templates
    }

    fn example(name: &str) -> Rollout {
        for value in documents(name) {
            if value["kind"] == "Rollout" {
                let mut rollout: Rollout = serde_json::from_value(value).expect("Rollout parses");
                rollout.metadata.namespace = Some("default".into());
                rollout.metadata.generation = Some(1);
                return rollout;
            }
        }
        panic!("{name} holds no Rollout");
    }

    /// The (canary, stable) replica counts at which each step is reached, in order, without repeats.
    fn counts_at_steps(timeline: &Timeline) -> Vec<(i32, i32)> {
        let mut seen: Vec<(Option<i32>, (i32, i32))> = Vec::new();
        for m in &timeline.moments {
            let key = (m.step_index, (m.canary_replicas, m.stable_replicas));
            let settled =
                m.canary_available == m.canary_replicas && m.stable_available == m.stable_replicas;
            if settled && m.phase == "Paused" && !seen.contains(&key) {
                seen.push(key);
            }
        }
        seen.into_iter().map(|(_, counts)| counts).collect()
    }

    #[test]
    fn canary_example_pauses_at_the_basic_canary_replica_counts() {
        let timeline = simulate(
            example("rollout-canary.yaml"),
            &Templates::default(),
            &Options::default(),
        );
        assert_eq!(timeline.outcome, "Healthy");
        // 5 replicas at 20/40/60/80%: reference 4.4's approximation gives 1/4, 2/3, 3/2, 4/1.
        assert_eq!(
            counts_at_steps(&timeline),
            vec![(1, 4), (2, 3), (3, 2), (4, 1)]
        );
        let last = timeline.moments.last().expect("moments");
        assert_eq!((last.canary_replicas, last.stable_replicas), (5, 0));
        assert!(
            timeline
                .moments
                .iter()
                .any(|m| m.action.as_deref() == Some("promote"))
        );
    }

    #[test]
    fn failed_analysis_aborts_the_simulated_release() {
        let options = Options {
            analysis_outcomes: vec![AnalysisPhase::Failed],
            ..Options::default()
        };
        let timeline = simulate(
            example("rollout-analysis-step.yaml"),
            &example_templates(),
            &options,
        );
        assert_eq!(timeline.outcome, "Degraded");
        let last = timeline.moments.last().expect("moments");
        assert_eq!(last.canary_replicas, 0);
        assert!(
            last.message.starts_with("RolloutAborted: Rollout aborted update to revision 2: Step-based analysis phase error/failed"),
            "{}",
            last.message
        );
    }

    #[test]
    fn json_timeline_names_its_fields_in_camel_case() {
        let timeline = simulate(
            example("rollout-canary.yaml"),
            &Templates::default(),
            &Options::default(),
        );
        let json = serde_json::to_value(&timeline).expect("serialises");
        let first = &json["moments"][0];
        for field in [
            "atSeconds",
            "stepIndex",
            "canaryReplicas",
            "stableReplicas",
            "weight",
            "phase",
        ] {
            assert!(first.get(field).is_some(), "missing {field} in {first}");
        }
    }
}

#[cfg(test)]
mod gate_tests {
    use super::*;

    /// A canary with two analysis steps on one template.
    fn two_analysis_steps() -> (Rollout, Templates) {
        let rollout: Rollout = serde_json::from_value(serde_json::json!({
            "apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout",
            "metadata": {"name": "gated", "namespace": "default", "generation": 1},
            "spec": {
                "replicas": 4,
                "selector": {"matchLabels": {"app": "gated"}},
                "template": {"metadata": {"labels": {"app": "gated"}},
                             "spec": {"containers": [{"name": "app", "image": "gated:1"}]}},
                "strategy": {"canary": {"steps": [
                    {"setWeight": 25},
                    {"analysis": {"templates": [{"templateName": "check"}]}},
                    {"setWeight": 50},
                    {"analysis": {"templates": [{"templateName": "check"}]}},
                    {"setWeight": 75}
                ]}}
            }
        }))
        .expect("parses");
        let template = serde_json::from_value(serde_json::json!({
            "metrics": [{"name": "ok", "provider": {"web": {"url": "http://example/ok"}}}]
        }))
        .expect("template parses");
        let mut templates = Templates::default();
        templates.namespaced.insert("check".into(), template);
        (rollout, templates)
    }

    #[test]
    fn each_run_reaches_the_verdict_given_for_it_in_creation_order() {
        let (rollout, templates) = two_analysis_steps();
        let options = Options {
            analysis_outcomes: vec![AnalysisPhase::Successful, AnalysisPhase::Failed],
            ..Options::default()
        };
        let timeline = simulate(rollout, &templates, &options);
        assert_eq!(timeline.outcome, "Degraded");
        let last = timeline.moments.last().expect("moments");
        let verdicts: Vec<(Option<i32>, &str)> = last
            .analysis
            .iter()
            .map(|gate| (gate.step_index, gate.phase.as_str()))
            .collect();
        assert_eq!(verdicts, vec![(Some(1), "Successful"), (Some(3), "Failed")]);
        // The first gate held the canary at 25% until it passed; the second sent traffic back.
        assert!(timeline.moments.iter().any(|m| m.weight == 25
            && m.analysis.first().is_some_and(|g| g.phase == "Running")));
        assert!(timeline.moments.iter().any(|m| m.weight == 50));
        assert_eq!((last.weight, last.canary_replicas), (0, 0));
    }

    #[test]
    fn table_shows_the_analysis_gates() {
        let (rollout, templates) = two_analysis_steps();
        let table = render_table(&simulate(rollout, &templates, &Options::default()));
        assert!(
            table.lines().next().is_some_and(|h| h.contains("ANALYSIS")),
            "{table}"
        );
        assert!(table.contains("Step 1: Running"), "{table}");
        assert!(
            table.contains("Step 1: Successful, Step 3: Successful"),
            "{table}"
        );
        assert!(table.ends_with("outcome: Healthy\n"), "{table}");
    }

    #[test]
    fn blue_green_timeline_shows_which_version_each_service_selects() {
        let text = std::fs::read_to_string(format!(
            "{}/examples/rollout-bluegreen.yaml",
            env!("CARGO_MANIFEST_DIR")
        ))
        .expect("example exists");
        let value = serde_norway::Deserializer::from_str(&text)
            .map(|d| serde::Deserialize::deserialize(d).expect("YAML parses"))
            .find(|v: &serde_json::Value| v["kind"] == "Rollout")
            .expect("a Rollout");
        let mut rollout: Rollout = serde_json::from_value(value).expect("Rollout parses");
        rollout.metadata.namespace = Some("default".into());
        rollout.metadata.generation = Some(1);
        let active = rollout
            .spec
            .strategy
            .blue_green
            .as_ref()
            .expect("blue-green")
            .active_service
            .clone();
        let preview = rollout
            .spec
            .strategy
            .blue_green
            .as_ref()
            .expect("blue-green")
            .preview_service
            .clone();
        let timeline = simulate(rollout, &Templates::default(), &Options::default());
        assert_eq!(timeline.outcome, "Healthy");
        let role = |m: &Moment, service: &str| m.services.get(service).cloned().unwrap_or_default();
        // Before the promotion: active on the old version, preview on the new one.
        let paused = timeline
            .moments
            .iter()
            .find(|m| m.phase == "Paused")
            .expect("a manual-promotion pause");
        assert_eq!(
            (role(paused, &active), role(paused, &preview)),
            ("stable".into(), "canary".into())
        );
        // After it: both on the new version, which is now the stable one.
        let last = timeline.moments.last().expect("moments");
        assert_eq!(
            (role(last, &active), role(last, &preview)),
            ("stable".into(), "stable".into())
        );
    }
}

#[cfg(test)]
mod invalid_tests {
    use super::*;

    #[test]
    fn rollout_referencing_a_missing_template_reports_invalid_spec() {
        let rollout: Rollout = serde_json::from_value(serde_json::json!({
            "apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout",
            "metadata": {"name": "demo", "namespace": "default", "generation": 1},
            "spec": {
                "selector": {"matchLabels": {"app": "demo"}},
                "template": {"metadata": {"labels": {"app": "demo"}},
                             "spec": {"containers": [{"name": "app", "image": "demo:1"}]}},
                "strategy": {"canary": {"steps": [{"analysis": {"templates": [{"templateName": "missing"}]}}]}}
            }
        }))
        .expect("parses");
        let timeline = simulate(rollout, &Templates::default(), &Options::default());
        assert_eq!(timeline.outcome, "Degraded");
        assert!(
            timeline.moments[0]
                .message
                .starts_with("InvalidSpec: The Rollout \"demo\" is invalid:")
        );
        assert!(timeline.moments[0].message.contains("missing"));
    }
}
