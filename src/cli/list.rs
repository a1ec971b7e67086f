//! `list rollouts [-A] [--name NAME] [--watch] [--timestamps]`: Argo's one-line-per-rollout table.
//! With `--watch` the table is printed once and then a rollout's row again each time it changes, driven
//! by a watch on Rollouts (no polling). What to print is decided by [`RowPrinter`], a pure state machine,
//! so the watch output is tested without a cluster.

use std::collections::BTreeMap;

use futures::TryStreamExt as _;
use jiff::Timestamp;
use kube::api::{Api, ListParams};
use kube::runtime::{WatchStreamExt as _, watcher};

use super::cluster::{CliError, Cluster, api_error};
use super::get::{list_header, list_row};
use crate::api::Rollout;

/// What `list rollouts` shows.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// Every namespace, with a NAMESPACE column.
    pub all_namespaces: bool,
    /// Only the rollout of this name.
    pub name: Option<String>,
    /// Keep printing rows as rollouts change.
    pub watch: bool,
    /// A TIMESTAMP column first: when the row was printed.
    pub timestamps: bool,
}

/// Decides which lines `list rollouts` prints: the header and every row first, then a rollout's row
/// only when its text changed since it was last printed. Columns keep the widths of the first table
/// (wider cells push the rest of their line right rather than reflowing what is already on screen).
#[derive(Debug)]
pub struct RowPrinter {
    all_namespaces: bool,
    timestamps: bool,
    widths: Vec<usize>,
    printed: BTreeMap<(String, String), Vec<String>>,
}

impl RowPrinter {
    /// A printer for these columns; nothing is printed until [`RowPrinter::table`].
    pub fn new(all_namespaces: bool, timestamps: bool) -> Self {
        RowPrinter {
            all_namespaces,
            timestamps,
            widths: Vec::new(),
            printed: BTreeMap::new(),
        }
    }

    /// The header and a row per rollout, sorted by namespace and name; `None` without rollouts.
    pub fn table(&mut self, rollouts: &[Rollout], now: Timestamp) -> Option<String> {
        if rollouts.is_empty() {
            return None;
        }
        let mut sorted: Vec<&Rollout> = rollouts.iter().collect();
        sorted.sort_by_key(|ro| key(ro));
        let header = self.with_timestamp(list_header(self.all_namespaces), "TIMESTAMP".into());
        let rows: Vec<Vec<String>> = sorted
            .iter()
            .map(|ro| self.with_timestamp(list_row(ro, self.all_namespaces), stamp(now)))
            .collect();
        self.widths = vec![0; header.len()];
        for row in std::iter::once(&header).chain(&rows) {
            for (width, cell) in self.widths.iter_mut().zip(row) {
                *width = (*width).max(cell.chars().count());
            }
        }
        let mut out = self.line(&header);
        for (ro, row) in sorted.iter().zip(&rows) {
            out.push_str(&self.line(row));
            self.printed
                .insert(key(ro), list_row(ro, self.all_namespaces));
        }
        Some(out)
    }

    /// Whether the header has been printed.
    pub fn started(&self) -> bool {
        !self.widths.is_empty()
    }

    /// The rollout's row, when it differs from the one last printed for it.
    pub fn changed(&mut self, rollout: &Rollout, now: Timestamp) -> Option<String> {
        let row = list_row(rollout, self.all_namespaces);
        if self.printed.get(&key(rollout)) == Some(&row) {
            return None;
        }
        let line = self.line(&self.with_timestamp(row.clone(), stamp(now)));
        self.printed.insert(key(rollout), row);
        Some(line)
    }

    /// Forgets a deleted rollout, so a new one of the same name is printed.
    pub fn deleted(&mut self, rollout: &Rollout) {
        self.printed.remove(&key(rollout));
    }

    fn with_timestamp(&self, mut row: Vec<String>, stamp: String) -> Vec<String> {
        if self.timestamps {
            row.insert(0, stamp);
        }
        row
    }

    fn line(&self, row: &[String]) -> String {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            line.push_str(cell);
            if i + 1 < row.len() {
                let width = self.widths.get(i).copied().unwrap_or(0);
                let pad = width.saturating_sub(cell.chars().count()) + 2;
                line.push_str(&" ".repeat(pad));
            }
        }
        let mut line = line.trim_end().to_string();
        line.push('\n');
        line
    }
}

fn key(rollout: &Rollout) -> (String, String) {
    (
        rollout.metadata.namespace.clone().unwrap_or_default(),
        rollout.metadata.name.clone().unwrap_or_default(),
    )
}

/// RFC 3339 to the second, in UTC.
fn stamp(now: Timestamp) -> String {
    now.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// Runs `list rollouts`.
pub async fn list_rollouts(cluster: &Cluster, options: &Options) -> Result<(), CliError> {
    let api: Api<Rollout> = if options.all_namespaces {
        Api::all(cluster.client.clone())
    } else {
        cluster.rollouts()
    };
    let fields = options
        .name
        .as_ref()
        .map(|name| format!("metadata.name={name}"));
    let mut printer = RowPrinter::new(options.all_namespaces, options.timestamps);
    if !options.watch {
        let mut params = ListParams::default();
        if let Some(fields) = &fields {
            params = params.fields(fields);
        }
        let rollouts = api
            .list(&params)
            .await
            .map_err(|e| api_error("cannot list rollouts", e))?
            .items;
        match printer.table(&rollouts, Timestamp::now()) {
            Some(table) => print!("{table}"),
            None => eprintln!("No resources found."),
        }
        return Ok(());
    }

    let mut config = watcher::Config::default();
    if let Some(fields) = &fields {
        config = config.fields(fields);
    }
    let mut events = std::pin::pin!(watcher(api, config).default_backoff());
    let mut initial: Vec<Rollout> = Vec::new();
    loop {
        let event = match events.try_next().await {
            Ok(Some(event)) => event,
            Ok(None) => return Ok(()),
            // Before anything is on screen an error is the answer; later, the watch retries.
            Err(error) if !printer.started() => {
                let error = match error {
                    watcher::Error::InitialListFailed(error)
                    | watcher::Error::WatchStartFailed(error)
                    | watcher::Error::WatchFailed(error) => error,
                    other => kube::Error::Service(other.into()),
                };
                return Err(api_error("cannot list rollouts", error));
            }
            Err(error) => {
                eprintln!("warning: the watch on rollouts failed, retrying: {error}");
                continue;
            }
        };
        let now = Timestamp::now();
        let mut out = String::new();
        match event {
            watcher::Event::Init => initial.clear(),
            watcher::Event::InitApply(rollout) if !printer.started() => initial.push(rollout),
            watcher::Event::InitDone if !printer.started() => match printer.table(&initial, now) {
                Some(table) => out = table,
                None => eprintln!("No resources found."),
            },
            watcher::Event::InitApply(rollout) | watcher::Event::Apply(rollout) => {
                if printer.started() {
                    out = printer.changed(&rollout, now).unwrap_or_default();
                } else {
                    out = printer
                        .table(std::slice::from_ref(&rollout), now)
                        .unwrap_or_default();
                }
            }
            watcher::Event::Delete(rollout) => printer.deleted(&rollout),
            watcher::Event::InitDone => {}
        }
        if !out.is_empty() {
            print!("{out}");
            use std::io::Write as _;
            let _ = std::io::stdout().flush();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rollout(namespace: &str, name: &str, phase: &str, ready: i32) -> Rollout {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout",
            "metadata": {"name": name, "namespace": namespace, "generation": 1},
            "spec": {"replicas": 2, "strategy": {"canary": {}},
                     "selector": {"matchLabels": {"app": name}},
                     "template": {"spec": {"containers": [{"name": "app", "image": "app:1"}]}}},
            "status": {"observedGeneration": "1", "phase": phase, "replicas": 2,
                       "readyReplicas": ready, "updatedReplicas": 2, "availableReplicas": ready}
        }))
        .expect("rollout parses")
    }

    fn at(seconds: i64) -> Timestamp {
        Timestamp::from_second(1_800_000_000 + seconds).expect("valid time")
    }

    #[test]
    fn first_the_sorted_table_then_only_rows_that_changed() {
        let mut printer = RowPrinter::new(false, false);
        let table = printer
            .table(
                &[
                    rollout("default", "web", "Progressing", 1),
                    rollout("default", "api", "Healthy", 2),
                ],
                at(0),
            )
            .expect("a table");
        let names: Vec<&str> = table
            .lines()
            .map(|l| l.split_whitespace().next().unwrap_or_default())
            .collect();
        assert_eq!(names, ["NAME", "api", "web"]);
        // Unchanged: nothing printed, also after a relist that repeats the same objects.
        assert_eq!(
            printer.changed(&rollout("default", "api", "Healthy", 2), at(5)),
            None
        );
        let line = printer
            .changed(&rollout("default", "web", "Healthy", 2), at(6))
            .expect("web changed");
        assert!(line.starts_with("web "), "{line}");
        assert!(line.contains("2/2"), "{line}");
        // Aligned with the table's columns.
        let header = table.lines().next().unwrap_or_default();
        assert_eq!(
            line.find("Canary"),
            header.find("STRATEGY"),
            "{header}\n{line}"
        );
        assert_eq!(
            printer.changed(&rollout("default", "web", "Healthy", 2), at(7)),
            None
        );
    }

    #[test]
    fn a_deleted_rollout_created_again_is_printed_again() {
        let mut printer = RowPrinter::new(true, false);
        let web = rollout("shop", "web", "Healthy", 2);
        printer
            .table(std::slice::from_ref(&web), at(0))
            .expect("a table");
        printer.deleted(&web);
        let line = printer.changed(&web, at(1)).expect("printed again");
        let cells: Vec<&str> = line.split_whitespace().take(2).collect();
        assert_eq!(cells, ["shop", "web"], "{line}");
    }

    #[test]
    fn timestamps_come_first() {
        let mut printer = RowPrinter::new(false, true);
        let table = printer
            .table(&[rollout("default", "web", "Healthy", 2)], at(0))
            .expect("a table");
        let mut lines = table.lines();
        assert!(
            lines
                .next()
                .is_some_and(|h| h.starts_with("TIMESTAMP             NAME"))
        );
        assert!(
            lines
                .next()
                .is_some_and(|r| r.starts_with("2027-01-15T08:00:00Z  web"))
        );
        assert_eq!(printer.table(&[], at(1)), None);
    }
}
