//! `get rollout NAME` and `list rollouts`: the rollout's header and its tree of revisions, ReplicaSets,
//! pods and AnalysisRuns (reference §7), and the one-line-per-rollout table. Rendering is a pure function
//! of the fetched objects and the time; fetching and `--watch` live at the bottom.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use kube::api::{Api, ListParams};

use super::cluster::{CliError, Cluster, api_error};
use super::info::{actual_weight, age, client_phase, set_weight, step};
use super::undo::format_selector;
use crate::api::constants::{
    POD_TEMPLATE_HASH_LABEL, REVISION_ANNOTATION, SCALE_DOWN_DEADLINE_ANNOTATION,
};
use crate::api::{AnalysisRun, Rollout};

/// Everything `get rollout` shows, as fetched.
#[derive(Clone, Debug)]
pub struct Snapshot {
    pub rollout: Rollout,
    pub replica_sets: Vec<ReplicaSet>,
    pub pods: Vec<Pod>,
    pub analysis_runs: Vec<AnalysisRun>,
}

/// An ANSI colour, or none.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Colour {
    None,
    Green,
    Red,
    Yellow,
    Blue,
    Grey,
}

impl Colour {
    fn code(self) -> &'static str {
        match self {
            Colour::None => "",
            Colour::Green => "\x1b[32m",
            Colour::Red => "\x1b[31m",
            Colour::Yellow => "\x1b[33m",
            Colour::Blue => "\x1b[94m",
            Colour::Grey => "\x1b[90m",
        }
    }
}

/// A table cell: plain text for the width, and a colour applied when printing.
#[derive(Clone, Debug)]
struct Cell {
    parts: Vec<(String, Colour)>,
}

impl Cell {
    fn plain(text: impl Into<String>) -> Cell {
        Cell {
            parts: vec![(text.into(), Colour::None)],
        }
    }
    fn width(&self) -> usize {
        self.parts.iter().map(|(t, _)| t.chars().count()).sum()
    }
    fn render(&self, colour: bool) -> String {
        let mut out = String::new();
        for (text, c) in &self.parts {
            if colour && *c != Colour::None {
                let _ = write!(out, "{}{text}\x1b[0m", c.code());
            } else {
                out.push_str(text);
            }
        }
        out
    }
}

/// Aligns rows like Go's tabwriter with padding 2: every column but the last is padded to its widest
/// cell plus two spaces; trailing spaces are dropped.
fn table(rows: &[Vec<Cell>], colour: bool) -> String {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let mut widths = vec![0; columns];
    for row in rows {
        for (i, cell) in row.iter().enumerate().take(row.len().saturating_sub(1)) {
            widths[i] = widths[i].max(cell.width());
        }
    }
    let mut out = String::new();
    for row in rows {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            line.push_str(&cell.render(colour));
            if i + 1 < row.len() {
                line.push_str(&" ".repeat(widths[i] - cell.width() + 2));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

fn icon(status: &str) -> (&'static str, Colour) {
    match status {
        "Progressing" | "Terminating" => ("◌", Colour::Yellow),
        "Healthy" | "Successful" | "Running" | "Completed" | "Succeeded" => ("✔", Colour::Green),
        "Degraded" | "Failed" => ("✖", Colour::Red),
        "Paused" => ("॥", Colour::Grey),
        "Inconclusive" | "Unknown" => ("?", Colour::Yellow),
        "Pending" | "ContainerCreating" | "PodInitializing" => ("◷", Colour::Yellow),
        s if s.starts_with("Init:") => ("◷", Colour::Yellow),
        "ScaledDown" => ("•", Colour::Grey),
        _ => ("⚠", Colour::Red),
    }
}

fn status_cell(status: &str) -> Cell {
    let (symbol, colour) = icon(status);
    Cell {
        parts: vec![(format!("{symbol} {status}"), colour)],
    }
}

fn created(meta: &ObjectMeta) -> Option<Timestamp> {
    meta.creation_timestamp.as_ref().map(|Time(t)| *t)
}

fn label<'a>(meta: &'a ObjectMeta, key: &str) -> Option<&'a str> {
    meta.labels.as_ref()?.get(key).map(String::as_str)
}

fn annotation<'a>(meta: &'a ObjectMeta, key: &str) -> Option<&'a str> {
    meta.annotations.as_ref()?.get(key).map(String::as_str)
}

fn owned_by(meta: &ObjectMeta, owner: &ObjectMeta) -> bool {
    let refs = meta.owner_references.iter().flatten();
    match &owner.uid {
        Some(uid) => refs.clone().any(|o| &o.uid == uid),
        None => refs.clone().any(|o| Some(&o.name) == owner.name.as_ref()),
    }
}

fn rs_status(rs: &ReplicaSet) -> &'static str {
    let spec = rs.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
    let status = rs.status.clone().unwrap_or_default();
    let unobserved = status.observed_generation.unwrap_or(0) < rs.metadata.generation.unwrap_or(0);
    if unobserved || status.available_replicas.unwrap_or(0) < spec {
        return "Progressing";
    }
    if status
        .conditions
        .iter()
        .flatten()
        .any(|c| c.type_ == "ReplicaFailure" && c.status == "True")
    {
        return "ReplicaFailure";
    }
    if spec == 0 { "ScaledDown" } else { "Healthy" }
}

/// The STATUS `kubectl get pods` shows (a subset of its reason logic).
pub fn pod_status(pod: &Pod) -> String {
    if pod.metadata.deletion_timestamp.is_some() {
        return "Terminating".into();
    }
    let status = pod.status.clone().unwrap_or_default();
    let mut reason = status
        .reason
        .clone()
        .or(status.phase.clone())
        .unwrap_or_else(|| "Unknown".into());
    let init_count = pod
        .spec
        .as_ref()
        .and_then(|s| s.init_containers.as_ref())
        .map_or(0, Vec::len);
    for (i, init) in status.init_container_statuses.iter().flatten().enumerate() {
        let state = init.state.clone().unwrap_or_default();
        if let Some(terminated) = &state.terminated {
            if terminated.exit_code == 0 {
                continue;
            }
            return format!(
                "Init:{}",
                terminated
                    .reason
                    .clone()
                    .unwrap_or_else(|| format!("ExitCode:{}", terminated.exit_code))
            );
        }
        if let Some(waiting) = state
            .waiting
            .as_ref()
            .and_then(|w| w.reason.clone())
            .filter(|r| r != "PodInitializing")
        {
            return format!("Init:{waiting}");
        }
        return format!("Init:{i}/{init_count}");
    }
    let mut running = false;
    for container in status.container_statuses.iter().flatten().rev() {
        let state = container.state.clone().unwrap_or_default();
        if let Some(waiting) = state.waiting.as_ref().and_then(|w| w.reason.clone()) {
            reason = waiting;
        } else if let Some(terminated) = &state.terminated {
            reason = terminated
                .reason
                .clone()
                .unwrap_or_else(|| match terminated.signal {
                    Some(signal) if signal != 0 => format!("Signal:{signal}"),
                    _ => format!("ExitCode:{}", terminated.exit_code),
                });
        } else if container.ready && state.running.is_some() {
            running = true;
        }
    }
    if reason == "Completed" && running {
        reason = "Running".into();
    }
    reason
}

fn pod_info(pod: &Pod) -> String {
    let statuses = pod
        .status
        .as_ref()
        .and_then(|s| s.container_statuses.clone())
        .unwrap_or_default();
    let total = pod
        .spec
        .as_ref()
        .map_or(statuses.len(), |s| s.containers.len());
    let ready = statuses.iter().filter(|c| c.ready).count();
    let restarts: i32 = statuses.iter().map(|c| c.restart_count).sum();
    if restarts > 0 {
        format!("ready:{ready}/{total},restarts:{restarts}")
    } else {
        format!("ready:{ready}/{total}")
    }
}

struct RsView<'a> {
    rs: &'a ReplicaSet,
    hash: String,
    revision: i64,
    tags: Vec<(String, Colour)>,
}

fn rs_views<'a>(snapshot: &'a Snapshot, now: Timestamp) -> Vec<RsView<'a>> {
    let ro = &snapshot.rollout;
    let status = ro.status.clone().unwrap_or_default();
    let canary = ro.spec.strategy.canary.is_some();
    let blue_green = ro.spec.strategy.blue_green.is_some();
    snapshot
        .replica_sets
        .iter()
        .filter(|rs| owned_by(&rs.metadata, &ro.metadata))
        .map(|rs| {
            let hash = label(&rs.metadata, POD_TEMPLATE_HASH_LABEL)
                .unwrap_or_default()
                .to_string();
            let revision = annotation(&rs.metadata, REVISION_ANNOTATION)
                .and_then(|r| r.parse().ok())
                .unwrap_or(0);
            let mut tags = Vec::new();
            let is_stable = !hash.is_empty() && hash == status.stable_rs;
            if is_stable {
                tags.push(("stable".to_string(), Colour::Green));
            }
            if canary && !is_stable && !hash.is_empty() && hash == status.current_pod_hash {
                tags.push(("canary".to_string(), Colour::Yellow));
            }
            if blue_green && !hash.is_empty() && hash == status.blue_green.active_selector {
                tags.push(("active".to_string(), Colour::Green));
            }
            if blue_green && !hash.is_empty() && hash == status.blue_green.preview_selector {
                tags.push(("preview".to_string(), Colour::Blue));
            }
            if let Some(deadline) = annotation(&rs.metadata, SCALE_DOWN_DEADLINE_ANNOTATION)
                .and_then(|d| d.parse::<Timestamp>().ok())
            {
                let tag = if deadline > now {
                    format!(
                        "delay:{}",
                        super::info::human_duration(deadline.duration_since(now))
                    )
                } else {
                    "delay:passed".to_string()
                };
                tags.push((tag, Colour::None));
            }
            RsView {
                rs,
                hash,
                revision,
                tags,
            }
        })
        .collect()
}

fn tagged_cell(tags: &[(String, Colour)]) -> Cell {
    let mut parts = Vec::new();
    for (i, (tag, colour)) in tags.iter().enumerate() {
        if i > 0 {
            parts.push((",".to_string(), Colour::None));
        }
        parts.push((tag.clone(), *colour));
    }
    Cell { parts }
}

/// The `get rollout` text: header, a blank line, then the tree.
pub fn render_rollout(snapshot: &Snapshot, now: Timestamp, colour: bool) -> String {
    let ro = &snapshot.rollout;
    let status = ro.status.clone().unwrap_or_default();
    let (phase, message) = client_phase(ro);
    let views = rs_views(snapshot, now);
    let mut out = String::new();
    let mut line = |key: &str, value: &str| {
        let text = format!("{key:<17}{value}");
        out.push_str(text.trim_end());
        out.push('\n');
    };
    line("Name:", ro.metadata.name.as_deref().unwrap_or_default());
    line(
        "Namespace:",
        ro.metadata.namespace.as_deref().unwrap_or_default(),
    );
    line("Status:", &status_cell(&phase).render(colour));
    if !message.is_empty() {
        line("Message:", &message);
    }
    if ro.spec.strategy.blue_green.is_some() {
        line("Strategy:", "BlueGreen");
    } else {
        line("Strategy:", "Canary");
        if let Some(step) = step(ro) {
            line("  Step:", &step);
        }
        let canary_available = views
            .iter()
            .find(|v| v.hash == status.current_pod_hash && v.hash != status.stable_rs)
            .and_then(|v| v.rs.status.as_ref())
            .and_then(|s| s.available_replicas)
            .unwrap_or(0);
        if let Some(weight) = set_weight(ro) {
            line("  SetWeight:", &weight.to_string());
        }
        if let Some(weight) = actual_weight(ro, canary_available) {
            line("  ActualWeight:", &weight.to_string());
        }
    }
    let mut images: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for view in &views {
        if view.rs.status.as_ref().map_or(0, |s| s.replicas) == 0 {
            continue;
        }
        let containers = view
            .rs
            .spec
            .as_ref()
            .and_then(|s| s.template.as_ref())
            .and_then(|t| t.spec.as_ref());
        for container in containers.map(|s| s.containers.clone()).unwrap_or_default() {
            let tags = images
                .entry(container.image.unwrap_or_default())
                .or_default();
            tags.extend(
                view.tags
                    .iter()
                    .filter(|(t, _)| !t.starts_with("delay"))
                    .map(|(t, _)| t.clone()),
            );
        }
    }
    let image_lines: Vec<String> = images
        .iter()
        .map(|(image, tags)| {
            if tags.is_empty() {
                image.clone()
            } else {
                format!(
                    "{image} ({})",
                    tags.iter().cloned().collect::<Vec<_>>().join(", ")
                )
            }
        })
        .collect();
    if image_lines.is_empty() {
        line("Images:", "");
    }
    for (i, image) in image_lines.iter().enumerate() {
        line(if i == 0 { "Images:" } else { "" }, image);
    }
    line("Replicas:", "");
    line("  Desired:", &ro.spec.replicas.unwrap_or(1).to_string());
    line("  Current:", &status.replicas.to_string());
    line("  Updated:", &status.updated_replicas.to_string());
    line("  Ready:", &status.ready_replicas.to_string());
    line("  Available:", &status.available_replicas.to_string());
    out.push('\n');
    out.push_str(&render_tree(snapshot, &views, &phase, now, colour));
    out
}

fn render_tree(
    snapshot: &Snapshot,
    views: &[RsView],
    phase: &str,
    now: Timestamp,
    colour: bool,
) -> String {
    let ro = &snapshot.rollout;
    let mut rows: Vec<Vec<Cell>> = vec![
        ["NAME", "KIND", "STATUS", "AGE", "INFO"]
            .map(Cell::plain)
            .to_vec(),
        vec![
            Cell::plain(format!(
                "⟳ {}",
                ro.metadata.name.as_deref().unwrap_or_default()
            )),
            Cell::plain("Rollout"),
            status_cell(phase),
            Cell::plain(age(created(&ro.metadata), now)),
            Cell::plain(""),
        ],
    ];
    let revision_of_hash: BTreeMap<&str, i64> = views
        .iter()
        .map(|v| (v.hash.as_str(), v.revision))
        .collect();
    let mut runs_by_revision: BTreeMap<i64, Vec<&AnalysisRun>> = BTreeMap::new();
    for run in snapshot
        .analysis_runs
        .iter()
        .filter(|r| owned_by(&r.metadata, &ro.metadata))
    {
        let revision = annotation(&run.metadata, REVISION_ANNOTATION)
            .and_then(|r| r.parse().ok())
            .or_else(|| {
                label(&run.metadata, POD_TEMPLATE_HASH_LABEL)
                    .and_then(|h| revision_of_hash.get(h).copied())
            })
            .unwrap_or(0);
        runs_by_revision.entry(revision).or_default().push(run);
    }
    let mut revisions: BTreeSet<i64> = views.iter().map(|v| v.revision).collect();
    revisions.extend(runs_by_revision.keys());
    let revisions: Vec<i64> = revisions.into_iter().rev().collect();
    for (ri, revision) in revisions.iter().enumerate() {
        let last_revision = ri + 1 == revisions.len();
        let (branch, indent) = if last_revision {
            ("└──", "   ")
        } else {
            ("├──", "│  ")
        };
        rows.push(vec![Cell::plain(format!("{branch}# revision:{revision}"))]);
        let mut children: Vec<Child> = Vec::new();
        let mut sets: Vec<&RsView> = views.iter().filter(|v| v.revision == *revision).collect();
        sets.sort_by(|a, b| a.rs.metadata.name.cmp(&b.rs.metadata.name));
        children.extend(sets.into_iter().map(Child::ReplicaSet));
        let mut runs = runs_by_revision.remove(revision).unwrap_or_default();
        runs.sort_by(|a, b| {
            (created(&a.metadata), &a.metadata.name).cmp(&(created(&b.metadata), &b.metadata.name))
        });
        children.extend(runs.into_iter().map(Child::AnalysisRun));
        for (ci, child) in children.iter().enumerate() {
            let last_child = ci + 1 == children.len();
            let (branch, sub) = if last_child {
                ("└──", "   ")
            } else {
                ("├──", "│  ")
            };
            match child {
                Child::ReplicaSet(view) => {
                    rows.push(vec![
                        Cell::plain(format!(
                            "{indent}{branch}⧉ {}",
                            view.rs.metadata.name.as_deref().unwrap_or_default()
                        )),
                        Cell::plain("ReplicaSet"),
                        status_cell(rs_status(view.rs)),
                        Cell::plain(age(created(&view.rs.metadata), now)),
                        tagged_cell(&view.tags),
                    ]);
                    let mut pods: Vec<&Pod> = snapshot
                        .pods
                        .iter()
                        .filter(|p| owned_by(&p.metadata, &view.rs.metadata))
                        .collect();
                    pods.sort_by(|a, b| {
                        (created(&a.metadata), &a.metadata.name)
                            .cmp(&(created(&b.metadata), &b.metadata.name))
                    });
                    for (pi, pod) in pods.iter().enumerate() {
                        let pod_branch = if pi + 1 == pods.len() {
                            "└──"
                        } else {
                            "├──"
                        };
                        rows.push(vec![
                            Cell::plain(format!(
                                "{indent}{sub}{pod_branch}□ {}",
                                pod.metadata.name.as_deref().unwrap_or_default()
                            )),
                            Cell::plain("Pod"),
                            status_cell(&pod_status(pod)),
                            Cell::plain(age(created(&pod.metadata), now)),
                            Cell::plain(pod_info(pod)),
                        ]);
                    }
                }
                Child::AnalysisRun(run) => {
                    let status = run.status.clone().unwrap_or_default();
                    let phase = status.phase.map(|p| p.as_str()).unwrap_or("Pending");
                    let mut counts = [0; 4];
                    for metric in &status.metric_results {
                        counts[0] += metric.successful;
                        counts[1] += metric.failed;
                        counts[2] += metric.inconclusive;
                        counts[3] += metric.error;
                    }
                    let mut parts = Vec::new();
                    let symbols = [
                        ("✔", Colour::Green),
                        ("✖", Colour::Red),
                        ("?", Colour::Yellow),
                        ("⚠", Colour::Red),
                    ];
                    for (count, (symbol, c)) in counts.iter().zip(symbols) {
                        if *count > 0 {
                            if !parts.is_empty() {
                                parts.push((",".to_string(), Colour::None));
                            }
                            parts.push((format!("{symbol} {count}"), c));
                        }
                    }
                    rows.push(vec![
                        Cell::plain(format!(
                            "{indent}{branch}α {}",
                            run.metadata.name.as_deref().unwrap_or_default()
                        )),
                        Cell::plain("AnalysisRun"),
                        status_cell(phase),
                        Cell::plain(age(created(&run.metadata), now)),
                        Cell { parts },
                    ]);
                }
            }
        }
    }
    table(&rows, colour)
}

enum Child<'a> {
    ReplicaSet(&'a RsView<'a>),
    AnalysisRun(&'a AnalysisRun),
}

/// `list rollouts`: Argo's columns, NAMESPACE first with `-A`. `None` when there are no rollouts.
pub fn render_list(rollouts: &[Rollout], all_namespaces: bool) -> Option<String> {
    if rollouts.is_empty() {
        return None;
    }
    let rows: Vec<Vec<Cell>> = std::iter::once(list_header(all_namespaces))
        .chain(rollouts.iter().map(|ro| list_row(ro, all_namespaces)))
        .map(|row| row.into_iter().map(Cell::plain).collect())
        .collect();
    Some(table(&rows, false))
}

/// The header of `list rollouts`.
pub fn list_header(all_namespaces: bool) -> Vec<String> {
    let namespace = all_namespaces.then_some("NAMESPACE");
    namespace
        .into_iter()
        .chain([
            "NAME",
            "STRATEGY",
            "STATUS",
            "STEP",
            "SET-WEIGHT",
            "READY",
            "DESIRED",
            "UP-TO-DATE",
            "AVAILABLE",
        ])
        .map(str::to_string)
        .collect()
}

/// One rollout's row of `list rollouts`, in the columns of [`list_header`].
pub fn list_row(ro: &Rollout, all_namespaces: bool) -> Vec<String> {
    let status = ro.status.clone().unwrap_or_default();
    let namespace = all_namespaces.then(|| ro.metadata.namespace.clone().unwrap_or_default());
    let strategy = if ro.spec.strategy.blue_green.is_some() {
        "BlueGreen"
    } else {
        "Canary"
    };
    namespace
        .into_iter()
        .chain([
            ro.metadata.name.clone().unwrap_or_default(),
            strategy.to_string(),
            client_phase(ro).0,
            step(ro).unwrap_or_else(|| "-".into()),
            set_weight(ro).map_or_else(|| "-".into(), |w| w.to_string()),
            format!("{}/{}", status.ready_replicas, status.replicas),
            ro.spec.replicas.unwrap_or(1).to_string(),
            status.updated_replicas.to_string(),
            status.available_replicas.to_string(),
        ])
        .collect()
}

/// Reads the rollout and everything its tree shows.
pub async fn fetch(cluster: &Cluster, name: &str) -> Result<Snapshot, CliError> {
    let rollout = match cluster.rollouts().get(name).await {
        Ok(rollout) => rollout,
        Err(error) => {
            return Err(cluster
                .rollout_error(name, "cannot read the rollout", error)
                .await);
        }
    };
    let selector = rollout
        .spec
        .selector
        .as_ref()
        .map(format_selector)
        .unwrap_or_default();
    let params = ListParams::default().labels(&selector);
    let client = cluster.client.clone();
    let ns = &cluster.namespace;
    let replica_sets = Api::<ReplicaSet>::namespaced(client.clone(), ns)
        .list(&params)
        .await
        .map_err(|e| api_error("cannot list ReplicaSets", e))?
        .items;
    let pods = Api::<Pod>::namespaced(client.clone(), ns)
        .list(&params)
        .await
        .map_err(|e| api_error("cannot list pods", e))?
        .items;
    let analysis_runs = Api::<AnalysisRun>::namespaced(client, ns)
        .list(&ListParams::default())
        .await
        .map_err(|e| api_error("cannot list AnalysisRuns", e))?
        .items;
    Ok(Snapshot {
        rollout,
        replica_sets,
        pods,
        analysis_runs,
    })
}

/// `get rollout`: prints once, or with `watch` redraws every second when the text changed, until
/// `timeout` (if any) passes.
pub async fn get_rollout(
    cluster: &Cluster,
    name: &str,
    watch: bool,
    colour: bool,
    timeout: Option<Duration>,
) -> Result<(), CliError> {
    let started = std::time::Instant::now();
    let mut last = String::new();
    loop {
        let text = render_rollout(&fetch(cluster, name).await?, Timestamp::now(), colour);
        if !watch {
            print!("{text}");
            return Ok(());
        }
        if text != last {
            print!("\x1b[H\x1b[2J\x1b[0;0H{text}");
            last = text;
        }
        if timeout.is_some_and(|t| started.elapsed() >= t) {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

#[cfg(test)]
mod tests;
