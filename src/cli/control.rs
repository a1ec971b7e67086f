//! The commands that steer a release: `promote`, `abort`, `retry rollout`, `pause`, `resume`, `restart`
//! and `terminate analysisrun`. Each builds exactly the patch Argo's plugin sends (reference §7) with a
//! pure function, sends it (the `/status` subresource first, the unified patch on the main resource when
//! the CRD has no status subresource) and prints Argo's confirmation line.

use jiff::{SignedDuration, Timestamp};
use kube::api::{Api, Patch, PatchParams};
use serde_json::{Value, json};

use super::cluster::{CliError, Cluster, api_error, is_not_found};
use crate::api::{AnalysisPhase, AnalysisRun, Rollout};

/// What one command sends: a merge patch for `/status`, one for the main resource, and the unified patch
/// that replaces both when `/status` answers 404.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Patches {
    pub status: Option<Value>,
    pub spec: Option<Value>,
    pub unified: Option<Value>,
}

/// `promote NAME [--full]` (reference §7 and §4.11).
pub fn promote_patches(rollout: &Rollout, full: bool) -> Patches {
    let spec = &rollout.spec;
    let status = rollout.status.clone().unwrap_or_default();
    let unpause = spec.paused.then(|| json!({"spec": {"paused": false}}));
    let unified_spec = if spec.paused {
        json!({"paused": false})
    } else {
        json!({})
    };
    if full {
        if status.current_pod_hash == status.stable_rs {
            return Patches {
                spec: unpause,
                ..Patches::default()
            };
        }
        return Patches {
            status: Some(json!({"status": {"promoteFull": true}})),
            unified: Some(json!({"spec": unified_spec, "status": {"promoteFull": true}})),
            spec: unpause,
        };
    }
    // The step to move to, for a canary with steps: the current one + 1, capped at the number of steps.
    let next_index = spec.strategy.canary.as_ref().and_then(|_| {
        let steps = spec.canary_steps().len() as i32;
        (steps > 0).then(|| {
            let index = status.current_step_index.unwrap_or(0);
            if index < steps { index + 1 } else { index }
        })
    });
    let inconclusive = spec.strategy.canary.is_some()
        && status
            .canary
            .current_step_analysis_run_status
            .as_ref()
            .is_some_and(|run| run.status == AnalysisPhase::Inconclusive);
    let paused_by_controller = !status.pause_conditions.is_empty();
    let status_patch = match next_index {
        Some(index) if inconclusive && paused_by_controller && status.controller_pause => Some(
            json!({"pauseConditions": null, "controllerPause": false, "currentStepIndex": index}),
        ),
        _ if paused_by_controller => Some(json!({"pauseConditions": null})),
        Some(index) => Some(json!({"pauseConditions": null, "currentStepIndex": index})),
        None => None,
    };
    Patches {
        unified: status_patch
            .as_ref()
            .map(|s| json!({"spec": unified_spec, "status": s})),
        status: status_patch.map(|s| json!({ "status": s })),
        spec: unpause,
    }
}

/// `abort NAME` (`true`) and `retry rollout NAME` (`false`).
pub fn abort_patches(abort: bool) -> Patches {
    let patch = json!({"status": {"abort": abort}});
    Patches {
        status: Some(patch.clone()),
        spec: None,
        unified: Some(patch),
    }
}

/// `pause NAME` (`true`) and `resume NAME` (`false`): a merge patch of `spec.paused`.
pub fn paused_patch(paused: bool) -> Value {
    json!({"spec": {"paused": paused}})
}

/// `restart NAME [--in D]`: `spec.restartAt`, RFC 3339 in UTC to the second, as Go's `time.RFC3339`.
pub fn restart_patch(now: Timestamp, delay: SignedDuration) -> Value {
    let at = now.checked_add(delay).unwrap_or(now);
    // Go's RFC 3339 format drops the fraction of the second.
    let at = Timestamp::from_second(at.as_second()).unwrap_or(at);
    json!({"spec": {"restartAt": at.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()}})
}

/// `terminate analysisrun NAME`.
pub fn terminate_patch() -> Value {
    json!({"spec": {"terminate": true}})
}

/// A duration as Go's `time.Duration.String()` prints it: `0s`, `10s`, `1m30s`, `1h0m0s`, `500ms`.
pub fn go_duration(duration: SignedDuration) -> String {
    let nanos = duration.as_nanos();
    if nanos == 0 {
        return "0s".into();
    }
    let sign = if nanos < 0 { "-" } else { "" };
    let nanos = nanos.unsigned_abs();
    if nanos < 1_000_000_000 {
        let (value, unit) = if nanos < 1_000 {
            (nanos as f64, "ns")
        } else if nanos < 1_000_000 {
            (nanos as f64 / 1e3, "µs")
        } else {
            (nanos as f64 / 1e6, "ms")
        };
        return format!("{sign}{value}{unit}");
    }
    let total_seconds = nanos / 1_000_000_000;
    let fraction = nanos % 1_000_000_000;
    let (hours, minutes, seconds) = (
        total_seconds / 3600,
        (total_seconds % 3600) / 60,
        total_seconds % 60,
    );
    let seconds = if fraction == 0 {
        format!("{seconds}s")
    } else {
        let text = format!("{seconds}.{fraction:09}");
        format!("{}s", text.trim_end_matches('0'))
    };
    match (hours, minutes) {
        (0, 0) => format!("{sign}{seconds}"),
        (0, m) => format!("{sign}{m}m{seconds}"),
        (h, m) => format!("{sign}{h}h{m}m{seconds}"),
    }
}

/// Sends `patches`: `/status` first; on 404 from `/status` the unified patch replaces the spec patch.
async fn send(
    cluster: &Cluster,
    name: &str,
    action: &str,
    patches: Patches,
) -> Result<(), CliError> {
    let api = cluster.rollouts();
    let params = PatchParams::default();
    let mut spec = patches.spec;
    if let Some(status) = &patches.status {
        match api.patch_status(name, &params, &Patch::Merge(status)).await {
            Ok(_) => {}
            Err(error) if is_not_found(&error) && patches.unified.is_some() => {
                spec = patches.unified;
            }
            Err(error) => return Err(cluster.rollout_error(name, action, error).await),
        }
    }
    if let Some(spec) = spec
        && let Err(error) = api.patch(name, &params, &Patch::Merge(&spec)).await
    {
        return Err(cluster.rollout_error(name, action, error).await);
    }
    Ok(())
}

async fn get(cluster: &Cluster, name: &str) -> Result<Rollout, CliError> {
    match cluster.rollouts().get(name).await {
        Ok(rollout) => Ok(rollout),
        Err(error) => Err(cluster
            .rollout_error(name, "cannot read the rollout", error)
            .await),
    }
}

pub async fn promote(cluster: &Cluster, name: &str, full: bool) -> Result<String, CliError> {
    let rollout = get(cluster, name).await?;
    let patches = promote_patches(&rollout, full);
    let nothing = patches == Patches::default();
    send(cluster, name, "cannot promote", patches).await?;
    if nothing {
        let why = if full {
            "its current pods are already the stable ones"
        } else {
            "it is not paused and has no steps to skip"
        };
        eprintln!("nothing to promote: rollout '{name}' {why}");
    }
    Ok(if full {
        format!("rollout '{name}' fully promoted")
    } else {
        format!("rollout '{name}' promoted")
    })
}

pub async fn abort(cluster: &Cluster, name: &str) -> Result<String, CliError> {
    send(cluster, name, "cannot abort", abort_patches(true)).await?;
    Ok(format!("rollout '{name}' aborted"))
}

pub async fn retry(cluster: &Cluster, name: &str) -> Result<String, CliError> {
    send(cluster, name, "cannot retry", abort_patches(false)).await?;
    Ok(format!("rollout '{name}' retried"))
}

pub async fn pause(cluster: &Cluster, name: &str, paused: bool) -> Result<String, CliError> {
    let patches = Patches {
        spec: Some(paused_patch(paused)),
        ..Patches::default()
    };
    let (action, done) = if paused {
        ("cannot pause", "paused")
    } else {
        ("cannot resume", "resumed")
    };
    send(cluster, name, action, patches).await?;
    Ok(format!("rollout '{name}' {done}"))
}

pub async fn restart(
    cluster: &Cluster,
    name: &str,
    delay: SignedDuration,
) -> Result<String, CliError> {
    let patches = Patches {
        spec: Some(restart_patch(Timestamp::now(), delay)),
        ..Patches::default()
    };
    send(cluster, name, "cannot restart", patches).await?;
    Ok(format!(
        "rollout '{name}' restarts in {}",
        go_duration(delay)
    ))
}

pub async fn terminate_analysis_run(cluster: &Cluster, name: &str) -> Result<String, CliError> {
    let api: Api<AnalysisRun> = Api::namespaced(cluster.client.clone(), &cluster.namespace);
    match api
        .patch(
            name,
            &PatchParams::default(),
            &Patch::Merge(&terminate_patch()),
        )
        .await
    {
        Ok(_) => Ok(format!("analysisrun '{name}' terminated")),
        Err(error) if is_not_found(&error) => Err(CliError::NotFound {
            kind: "analysisrun",
            name: name.to_string(),
            namespace: cluster.namespace.clone(),
            hint: "list them with `kubectl get analysisruns`, or pick the namespace with -n".into(),
        }),
        Err(error) => Err(api_error("cannot terminate the analysisrun", error)),
    }
}

#[cfg(test)]
mod tests;
