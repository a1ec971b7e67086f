//! The kubelet: schedules every pod on one node, starts it, makes it Ready after a delay, and plays the
//! behaviour its annotations ask for (never ready, crash loop, image pull failure, run to completion).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::time::Instant;

use super::behaviour::PodBehaviour;
use super::{Reconciler, SimConfig, as_controller, builtin, key_if, pod_phase};
use crate::apiserver::{Cluster, Subresource};
use crate::json::At;
use crate::store::{Change, EventType, ObjectKey, uid_of};

const NODE: &str = "kubesim-node";
const CRASH_PERIOD: Duration = Duration::from_secs(5);
const IMAGE_PULL_BACKOFF_AFTER: Duration = Duration::from_secs(2);

pub struct Kubelet {
    start_delay: Duration,
    ready_delay: Duration,
    first_seen: HashMap<String, Instant>,
    next_ip: u32,
}

impl Kubelet {
    pub fn new(config: &SimConfig) -> Kubelet {
        Kubelet {
            start_delay: config.pod_start_delay,
            ready_delay: config.pod_ready_delay,
            first_seen: HashMap::new(),
            next_ip: 1,
        }
    }

    fn pod_ip(&mut self) -> String {
        let n = self.next_ip;
        self.next_ip += 1;
        format!("10.244.{}.{}", (n >> 8) & 0xff, n & 0xff)
    }
}

/// What the pod's containers are doing at a moment of its life.
#[derive(Debug, PartialEq)]
enum ContainerState {
    Waiting(&'static str),
    Running { ready: bool },
    CrashLooping { restarts: i64 },
    Terminated(i32),
}

/// The state a pod with this behaviour is in `elapsed` after it was first seen, and when that changes next.
fn state_at(
    b: &PodBehaviour,
    elapsed: Duration,
    start: Duration,
    default_ready: Duration,
) -> (ContainerState, Option<Duration>) {
    if elapsed < start {
        return (
            ContainerState::Waiting("ContainerCreating"),
            Some(start - elapsed),
        );
    }
    let running_for = elapsed - start;
    if b.image_pull_failure {
        return if running_for < IMAGE_PULL_BACKOFF_AFTER {
            (
                ContainerState::Waiting("ErrImagePull"),
                Some(IMAGE_PULL_BACKOFF_AFTER - running_for),
            )
        } else {
            (ContainerState::Waiting("ImagePullBackOff"), None)
        };
    }
    if b.crash_loop {
        let restarts = (running_for.as_secs_f64() / CRASH_PERIOD.as_secs_f64()) as i64 + 1;
        return (
            ContainerState::CrashLooping { restarts },
            Some(CRASH_PERIOD),
        );
    }
    if let Some((run_time, exit_code)) = b.completion {
        return if running_for < run_time {
            (
                ContainerState::Running { ready: true },
                Some(run_time - running_for),
            )
        } else {
            (ContainerState::Terminated(exit_code), None)
        };
    }
    if b.never_ready {
        return (ContainerState::Running { ready: false }, None);
    }
    let ready_at = b.ready_delay.unwrap_or(default_ready).max(start);
    if elapsed < ready_at {
        (
            ContainerState::Running { ready: false },
            Some(ready_at - elapsed),
        )
    } else {
        (ContainerState::Running { ready: true }, None)
    }
}

fn now() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

/// Keeps a condition's lastTransitionTime when its status did not change, so an unchanged pod is not rewritten.
fn condition(existing: &Value, type_: &str, status: bool) -> Value {
    let status = if status { "True" } else { "False" };
    let previous = existing
        .at("/status/conditions")
        .and_then(Value::as_array)
        .and_then(|cs| {
            cs.iter()
                .find(|c| c.get("type").and_then(Value::as_str) == Some(type_))
        });
    let since = match previous {
        Some(p) if p.get("status").and_then(Value::as_str) == Some(status) => p
            .get("lastTransitionTime")
            .cloned()
            .unwrap_or_else(|| json!(now())),
        _ => json!(now()),
    };
    json!({"type": type_, "status": status, "lastProbeTime": null, "lastTransitionTime": since})
}

fn desired_status(pod: &Value, state: &ContainerState, ip: &str) -> Value {
    let started = pod
        .at("/status/startTime")
        .cloned()
        .unwrap_or_else(|| json!(now()));
    let (phase, ready) = match state {
        ContainerState::Waiting(_) => ("Pending", false),
        ContainerState::Running { ready } => ("Running", *ready),
        ContainerState::CrashLooping { .. } => ("Running", false),
        ContainerState::Terminated(0) => ("Succeeded", false),
        ContainerState::Terminated(_) => ("Failed", false),
    };
    let container_state = match state {
        ContainerState::Waiting(reason) => json!({"waiting": {"reason": reason}}),
        ContainerState::Running { .. } => json!({"running": {"startedAt": started}}),
        ContainerState::CrashLooping { .. } => {
            json!({"waiting": {"reason": "CrashLoopBackOff", "message": "back-off restarting failed container"}})
        }
        ContainerState::Terminated(code) => {
            json!({"terminated": {"exitCode": code, "reason": if *code == 0 { "Completed" } else { "Error" }, "startedAt": started}})
        }
    };
    let restarts = match state {
        ContainerState::CrashLooping { restarts } => *restarts,
        _ => 0,
    };
    let containers: Vec<Value> = pod
        .at("/spec/containers")
        .and_then(Value::as_array)
        .map(|cs| {
            cs.iter()
                .map(|c| {
                    json!({"name": c.get("name"), "image": c.get("image"), "imageID": "", "ready": ready,
                        "restartCount": restarts, "started": phase == "Running", "state": container_state})
                })
                .collect()
        })
        .unwrap_or_default();
    json!({
        "phase": phase,
        "conditions": [
            condition(pod, "PodScheduled", true),
            condition(pod, "Initialized", true),
            condition(pod, "ContainersReady", ready),
            condition(pod, "Ready", ready),
        ],
        "hostIP": "10.0.0.1",
        "podIP": ip,
        "podIPs": [{"ip": ip}],
        "startTime": started,
        "containerStatuses": containers,
        "qosClass": "BestEffort",
    })
}

impl Reconciler for Kubelet {
    fn name(&self) -> &'static str {
        "kubelet"
    }

    fn keys_for(&mut self, _cluster: &Cluster, change: &Change) -> Vec<ObjectKey> {
        let key = key_if(change, "", "pods");
        if key.is_some() && change.event == EventType::Deleted {
            self.first_seen.remove(uid_of(&change.object));
            return Vec::new();
        }
        key.into_iter().collect()
    }

    fn all_keys(&mut self, cluster: &Cluster) -> Vec<ObjectKey> {
        super::all_of(cluster, builtin(cluster, "", "pods").as_ref())
    }

    fn reconcile(&mut self, cluster: &Cluster, key: &ObjectKey) -> Option<Duration> {
        let rt = builtin(cluster, "", "pods")?;
        // Shared with the store: copied only when the kubelet writes it.
        let Ok(mut pod) = cluster.get(&rt, &key.0, &key.1) else {
            return None;
        };
        let uid = uid_of(&pod).to_string();
        if super::is_terminating(&pod) || matches!(pod_phase(&pod), "Succeeded" | "Failed") {
            self.first_seen.remove(&uid);
            return None;
        }
        let first_seen = *self.first_seen.entry(uid).or_insert_with(Instant::now);
        let behaviour = PodBehaviour::of(&pod);
        let (state, next) = state_at(
            &behaviour,
            first_seen.elapsed(),
            self.start_delay,
            self.ready_delay,
        );
        let ip = match pod.at("/status/podIP").and_then(Value::as_str) {
            Some(ip) => ip.to_string(),
            None => self.pod_ip(),
        };
        if pod.at("/spec/nodeName").is_none() {
            let mut scheduled = Arc::unwrap_or_clone(pod);
            scheduled["spec"]["nodeName"] = json!(NODE);
            let mut options = as_controller("scheduler");
            options.field_manager = Some("kube-scheduler".into());
            match cluster.update(&rt, &key.0, &key.1, scheduled, Subresource::Main, &options) {
                Ok(updated) => pod = updated,
                Err(_) => return Some(Duration::from_millis(100)),
            }
        }
        let status = desired_status(&pod, &state, &ip);
        if pod.get("status") != Some(&status) {
            let mut updated = Arc::unwrap_or_clone(pod);
            updated["status"] = status;
            if cluster
                .update(
                    &rt,
                    &key.0,
                    &key.1,
                    updated,
                    Subresource::Status,
                    &as_controller(self.name()),
                )
                .is_err()
            {
                return Some(Duration::from_millis(100));
            }
        }
        next
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn behaviour() -> PodBehaviour {
        PodBehaviour::of(&json!({}))
    }

    #[test]
    fn a_plain_pod_starts_then_becomes_ready() {
        let (s, next) = state_at(
            &behaviour(),
            Duration::from_millis(50),
            Duration::from_millis(100),
            Duration::from_millis(500),
        );
        assert_eq!(
            (s, next),
            (
                ContainerState::Waiting("ContainerCreating"),
                Some(Duration::from_millis(50))
            )
        );
        let (s, next) = state_at(
            &behaviour(),
            Duration::from_millis(200),
            Duration::from_millis(100),
            Duration::from_millis(500),
        );
        assert_eq!(
            (s, next),
            (
                ContainerState::Running { ready: false },
                Some(Duration::from_millis(300))
            )
        );
        let (s, next) = state_at(
            &behaviour(),
            Duration::from_millis(600),
            Duration::from_millis(100),
            Duration::from_millis(500),
        );
        assert_eq!((s, next), (ContainerState::Running { ready: true }, None));
    }

    #[test]
    fn a_job_pod_terminates_with_its_exit_code() {
        let b = PodBehaviour {
            completion: Some((Duration::from_secs(1), 2)),
            ..behaviour()
        };
        let (s, _) = state_at(&b, Duration::from_secs(2), Duration::ZERO, Duration::ZERO);
        assert_eq!(s, ContainerState::Terminated(2));
    }

    #[test]
    fn crash_loops_count_restarts() {
        let b = PodBehaviour {
            crash_loop: true,
            ..behaviour()
        };
        let (s, _) = state_at(&b, Duration::from_secs(11), Duration::ZERO, Duration::ZERO);
        assert_eq!(s, ContainerState::CrashLooping { restarts: 3 });
    }
}
