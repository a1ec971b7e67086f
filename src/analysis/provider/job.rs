//! The Job provider: each measurement runs a Kubernetes Job; its outcome is the measurement. The
//! measurement stays `Running` (with `resumeAt`) while the Job runs.

use std::collections::BTreeMap;

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::api::{DeleteParams, PostParams, PropagationPolicy};
use kube::{Api, Client};

use super::Reading;
use crate::api::AnalysisPhase;
use crate::api::analysis::{JobMetric, Measurement};

/// Label on every Job a run started, with the run's uid.
pub const RUN_UID_LABEL: &str = "analysisrun.argoproj.io/uid";
const JOB_NAME: &str = "job-name";
const JOB_NAMESPACE: &str = "job-namespace";
const MAX_NAME: usize = 63;

/// The run a Job measures for.
pub struct Owner<'a> {
    pub namespace: &'a str,
    pub name: &'a str,
    pub uid: &'a str,
}

/// `<run uid>.<metric>.<n>`, the metric part shortened so the whole fits in 63 characters.
pub fn job_name(run_uid: &str, metric: &str, n: i32) -> String {
    let suffix = format!(".{n}");
    let room = MAX_NAME.saturating_sub(run_uid.len() + 1 + suffix.len());
    let metric: String = metric.chars().take(room).collect();
    format!("{run_uid}.{metric}{suffix}")
}

/// Starts the Job of measurement number `n` of `metric`.
pub async fn start(
    client: &Client,
    owner: &Owner<'_>,
    metric_name: &str,
    job: &JobMetric,
    n: i32,
    now: Timestamp,
) -> Reading {
    let name = job_name(owner.uid, metric_name, n);
    let metadata = job.metadata.clone().unwrap_or_default();
    let mut labels = metadata.labels;
    labels.insert(RUN_UID_LABEL.into(), owner.uid.into());
    let object = Job {
        metadata: ObjectMeta {
            name: Some(name.clone()),
            namespace: Some(owner.namespace.into()),
            labels: Some(labels),
            annotations: (!metadata.annotations.is_empty()).then_some(metadata.annotations),
            owner_references: Some(vec![OwnerReference {
                api_version: "argoproj.io/v1alpha1".into(),
                kind: "AnalysisRun".into(),
                name: owner.name.into(),
                uid: owner.uid.into(),
                controller: Some(true),
                block_owner_deletion: Some(true),
            }]),
            ..Default::default()
        },
        spec: Some(job.spec.clone()),
        status: None,
    };
    let api: Api<Job> = Api::namespaced(client.clone(), owner.namespace);
    match api.create(&PostParams::default(), &object).await {
        Ok(_) => {}
        // Created by an earlier attempt whose status write was lost: follow that Job.
        Err(kube::Error::Api(status)) if status.code == 409 => {}
        Err(e) => return Reading::Error(format!("cannot create Job {name}: {e}")),
    }
    running(&name, owner.namespace, now, now)
}

/// Looks at the Job of an in-flight measurement.
pub async fn resume(client: &Client, measurement: &Measurement, now: Timestamp) -> Reading {
    let Some((name, namespace)) = job_of(measurement) else {
        return Reading::Error("the measurement names no Job".into());
    };
    let api: Api<Job> = Api::namespaced(client.clone(), namespace);
    let job = match api.get(name).await {
        Ok(job) => job,
        Err(e) => return Reading::Error(format!("cannot read Job {name}: {e}")),
    };
    let started = measurement.started_at.as_ref().map_or(now, |t| t.0);
    match outcome(&job) {
        Some((phase, message)) => Reading::Phase {
            phase,
            message,
            metadata: job_metadata(name, namespace),
            resume_at: None,
        },
        None => running(name, namespace, started, now),
    }
}

/// Deletes the Job of an in-flight measurement of a run that is terminating.
pub async fn terminate(client: &Client, measurement: &Measurement) -> Reading {
    if let Some((name, namespace)) = job_of(measurement) {
        let api: Api<Job> = Api::namespaced(client.clone(), namespace);
        let params = DeleteParams {
            propagation_policy: Some(PropagationPolicy::Background),
            ..Default::default()
        };
        if let Err(e) = api.delete(name, &params).await
            && !matches!(&e, kube::Error::Api(status) if status.code == 404)
        {
            return Reading::Error(format!("cannot delete Job {name}: {e}"));
        }
    }
    Reading::Phase {
        phase: AnalysisPhase::Inconclusive,
        message: "Metric Terminated".into(),
        metadata: measurement.metadata.clone(),
        resume_at: None,
    }
}

/// Complete → Successful, Failed → Failed; `None` while the Job runs.
pub fn outcome(job: &Job) -> Option<(AnalysisPhase, String)> {
    let conditions = job.status.as_ref()?.conditions.as_ref()?;
    conditions
        .iter()
        .filter(|c| c.status == "True")
        .find_map(|c| match c.type_.as_str() {
            "Complete" => Some((AnalysisPhase::Successful, String::new())),
            "Failed" => Some((
                AnalysisPhase::Failed,
                c.message.clone().unwrap_or_else(|| "Job failed".into()),
            )),
            _ => None,
        })
}

fn running(name: &str, namespace: &str, started: Timestamp, now: Timestamp) -> Reading {
    Reading::Phase {
        phase: AnalysisPhase::Running,
        message: String::new(),
        metadata: job_metadata(name, namespace),
        resume_at: Some(now + poll_after(now.duration_since(started))),
    }
}

/// Polls back off with the Job's age: `sqrt(2 * elapsed)` seconds, at least one.
pub fn poll_after(elapsed: SignedDuration) -> SignedDuration {
    let seconds = (2.0 * elapsed.as_secs_f64().max(0.0)).sqrt().max(1.0);
    SignedDuration::from_secs(seconds.round() as i64)
}

fn job_metadata(name: &str, namespace: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        (JOB_NAME.to_string(), name.to_string()),
        (JOB_NAMESPACE.to_string(), namespace.to_string()),
    ])
}

fn job_of(measurement: &Measurement) -> Option<(&str, &str)> {
    Some((
        measurement.metadata.get(JOB_NAME)?.as_str(),
        measurement.metadata.get(JOB_NAMESPACE)?.as_str(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn job_names_fit_in_63_characters() {
        let uid = "0b6d5f2e-8f1c-4f7e-9d4b-3a2c1e0f9a8b";
        assert_eq!(job_name(uid, "smoke", 1), format!("{uid}.smoke.1"));
        let long = job_name(uid, &"x".repeat(80), 12);
        assert_eq!(long.len(), 63);
        assert!(long.ends_with(".12"));
    }

    #[test]
    fn polling_backs_off_with_age() {
        assert_eq!(
            poll_after(SignedDuration::ZERO),
            SignedDuration::from_secs(1)
        );
        assert_eq!(
            poll_after(SignedDuration::from_secs(50)),
            SignedDuration::from_secs(10)
        );
    }

    #[test]
    fn job_conditions_decide_the_outcome() {
        let job: Job = serde_json::from_value(serde_json::json!({
            "status": {"conditions": [{"type": "Failed", "status": "True", "message": "BackoffLimitExceeded"}]}
        }))
        .unwrap();
        assert_eq!(
            outcome(&job),
            Some((AnalysisPhase::Failed, "BackoffLimitExceeded".into()))
        );
        let done: Job = serde_json::from_value(serde_json::json!({
            "status": {"conditions": [{"type": "Complete", "status": "True"}]}
        }))
        .unwrap();
        assert_eq!(
            outcome(&done),
            Some((AnalysisPhase::Successful, String::new()))
        );
        assert_eq!(outcome(&Job::default()), None);
    }
}
