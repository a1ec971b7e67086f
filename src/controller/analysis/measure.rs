//! Measuring: each task the judge finds due becomes one measurement through its metric's provider. Tasks
//! of one run are measured concurrently; secrets never leave this module unredacted.

use std::collections::BTreeMap;

use futures::future::join_all;
use jiff::Timestamp;
use kube::Client;

use crate::analysis::args::Arguments;
use crate::analysis::judge::{Taken, Task};
use crate::analysis::provider::{self, Reading, job, prometheus, web};
use crate::api::analysis::{AnalysisRunStatus, Metric};

/// What measuring needs besides the tasks.
pub struct Measuring<'a> {
    pub client: &'a Client,
    /// The run, as the owner of the Jobs it starts.
    pub owner: job::Owner<'a>,
    /// Metrics with the real argument values, to measure with.
    pub metrics: &'a [Metric],
    /// The same metrics with secrets redacted, for what the status shows.
    pub shown: &'a [Metric],
    pub arguments: &'a Arguments,
    pub status: &'a AnalysisRunStatus,
    /// `--prometheus-address`, for metrics that name none.
    pub prometheus_address: Option<&'a str>,
}

/// Measures every task at once; one [`Taken`] per task of a metric of this run.
pub async fn measure_all(measuring: &Measuring<'_>, tasks: &[Task]) -> Vec<Taken> {
    let found = tasks.iter().filter_map(|task| {
        let index = measuring
            .metrics
            .iter()
            .position(|m| m.name == task.metric)?;
        Some((&measuring.metrics[index], measuring.shown.get(index)?, task))
    });
    join_all(found.map(|(metric, shown, task)| measure(measuring, metric, shown, task))).await
}

async fn measure(measuring: &Measuring<'_>, metric: &Metric, shown: &Metric, task: &Task) -> Taken {
    let started = task
        .in_flight
        .as_ref()
        .and_then(|m| m.started_at.as_ref())
        .map_or_else(Timestamp::now, |t| t.0);
    let reading = read(measuring, metric, task).await;
    let mut measurement = provider::measurement(metric, reading, started, Timestamp::now());
    measurement.message = measuring.arguments.redact(&measurement.message);
    measurement.value = measuring.arguments.redact(&measurement.value);
    let mut metadata = BTreeMap::new();
    if let Some(query) = shown.provider.prometheus.as_ref().map(|p| &p.query) {
        metadata.insert(prometheus::RESOLVED_QUERY.to_string(), query.clone());
    }
    Taken {
        metric: task.metric.clone(),
        measurement,
        metadata,
    }
}

async fn read(measuring: &Measuring<'_>, metric: &Metric, task: &Task) -> Reading {
    if let Some(why) = provider::unsupported(metric) {
        return Reading::Error(why);
    }
    let now = Timestamp::now();
    let provider = &metric.provider;
    if let Some(query) = &provider.prometheus {
        return prometheus::measure(query, measuring.prometheus_address, now).await;
    }
    if let Some(request) = &provider.web {
        return web::measure(request).await;
    }
    let Some(spec) = &provider.job else {
        return Reading::Error(format!("metric \"{}\" has no provider", metric.name));
    };
    match (&task.in_flight, task.terminate) {
        (Some(running), true) => job::terminate(measuring.client, running).await,
        (Some(running), false) => job::resume(measuring.client, running, now).await,
        (None, _) => {
            let result = measuring
                .status
                .metric_results
                .iter()
                .find(|r| r.name == metric.name);
            let n = result.map_or(0, |r| r.count + r.error) + 1;
            job::start(
                measuring.client,
                &measuring.owner,
                &metric.name,
                spec,
                n,
                now,
            )
            .await
        }
    }
}
