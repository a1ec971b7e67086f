//! Per-pod behaviour, read from the pod's annotations (copied from its template), all under one prefix:
//!
//! | annotation                          | meaning                                               |
//! |-------------------------------------|-------------------------------------------------------|
//! | `kubesim.ramp.dev/ready-delay`      | time from creation to Ready (`500ms`, `2s`)           |
//! | `kubesim.ramp.dev/never-ready`      | `"true"`: Running, never Ready                        |
//! | `kubesim.ramp.dev/crash-loop`       | `"true"`: restarts over and over, CrashLoopBackOff    |
//! | `kubesim.ramp.dev/image-pull-failure` | `"true"`: ErrImagePull / ImagePullBackOff (also any image tagged `does-not-exist`) |
//! | `kubesim.ramp.dev/exit-code`        | a Job pod's container exit code (default 0)           |
//! | `kubesim.ramp.dev/run-time`         | how long a Job pod runs (default 1s)                  |
//! | `kubesim.ramp.dev/error-rate`       | fraction of simulated requests answered 500 (0 to 1)  |
//! | `kubesim.ramp.dev/latency`          | simulated request latency (`20ms`)                    |

use std::time::Duration;

use serde_json::Value;

use crate::json::At;

pub const PREFIX: &str = "kubesim.ramp.dev/";
pub const READY_DELAY: &str = "kubesim.ramp.dev/ready-delay";
pub const NEVER_READY: &str = "kubesim.ramp.dev/never-ready";
pub const CRASH_LOOP: &str = "kubesim.ramp.dev/crash-loop";
pub const IMAGE_PULL_FAILURE: &str = "kubesim.ramp.dev/image-pull-failure";
pub const EXIT_CODE: &str = "kubesim.ramp.dev/exit-code";
pub const RUN_TIME: &str = "kubesim.ramp.dev/run-time";
pub const ERROR_RATE: &str = "kubesim.ramp.dev/error-rate";
pub const LATENCY: &str = "kubesim.ramp.dev/latency";
/// On a Service: simulated requests per second.
pub const REQUESTS_PER_SECOND: &str = "kubesim.ramp.dev/requests-per-second";

pub fn annotation<'a>(obj: &'a Value, key: &str) -> Option<&'a str> {
    obj.at("/metadata/annotations")
        .and_then(|a| a.get(key))
        .and_then(Value::as_str)
}

fn flag(obj: &Value, key: &str) -> bool {
    annotation(obj, key) == Some("true")
}

/// Parses `500ms`, `2s`, `1m`, `1.5s`, or a bare number of seconds.
pub fn parse_duration(text: &str) -> Option<Duration> {
    let text = text.trim();
    let (number, unit) = match text.find(|c: char| c.is_ascii_alphabetic()) {
        Some(i) => text.split_at(i),
        None => (text, "s"),
    };
    let value: f64 = number
        .parse()
        .ok()
        .filter(|v: &f64| v.is_finite() && *v >= 0.0)?;
    let seconds = match unit {
        "ms" => value / 1000.0,
        "s" => value,
        "m" => value * 60.0,
        "h" => value * 3600.0,
        _ => return None,
    };
    Some(Duration::from_secs_f64(seconds))
}

/// How a pod behaves once scheduled.
#[derive(Debug, Clone, PartialEq)]
pub struct PodBehaviour {
    pub ready_delay: Option<Duration>,
    pub never_ready: bool,
    pub crash_loop: bool,
    pub image_pull_failure: bool,
    /// For pods that run to completion: (run time, exit code).
    pub completion: Option<(Duration, i32)>,
    pub error_rate: f64,
    pub latency: Duration,
}

impl PodBehaviour {
    pub fn of(pod: &Value) -> PodBehaviour {
        let images_fail = pod
            .at("/spec/containers")
            .and_then(Value::as_array)
            .is_some_and(|cs| {
                cs.iter().any(|c| {
                    c.get("image")
                        .and_then(Value::as_str)
                        .is_some_and(|i| i.ends_with(":does-not-exist"))
                })
            });
        let restart_policy = pod
            .at("/spec/restartPolicy")
            .and_then(Value::as_str)
            .unwrap_or("Always");
        let completes = restart_policy != "Always" || annotation(pod, RUN_TIME).is_some();
        PodBehaviour {
            ready_delay: annotation(pod, READY_DELAY).and_then(parse_duration),
            never_ready: flag(pod, NEVER_READY),
            crash_loop: flag(pod, CRASH_LOOP),
            image_pull_failure: flag(pod, IMAGE_PULL_FAILURE) || images_fail,
            completion: completes.then(|| {
                (
                    annotation(pod, RUN_TIME)
                        .and_then(parse_duration)
                        .unwrap_or(Duration::from_secs(1)),
                    annotation(pod, EXIT_CODE)
                        .and_then(|c| c.parse().ok())
                        .unwrap_or(0),
                )
            }),
            error_rate: annotation(pod, ERROR_RATE)
                .and_then(|r| r.parse().ok())
                .filter(|r: &f64| (0.0..=1.0).contains(r))
                .unwrap_or(0.0),
            latency: annotation(pod, LATENCY)
                .and_then(parse_duration)
                .unwrap_or(Duration::from_millis(10)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(parse_duration("2s"), Some(Duration::from_secs(2)));
        assert_eq!(parse_duration("3"), Some(Duration::from_secs(3)));
        assert_eq!(parse_duration("1m"), Some(Duration::from_secs(60)));
        assert_eq!(parse_duration("x"), None);
        assert_eq!(parse_duration("-1s"), None);
    }

    #[test]
    fn behaviour_from_annotations_and_images() {
        let pod = json!({"metadata": {"annotations": {NEVER_READY: "true", ERROR_RATE: "0.25"}},
            "spec": {"containers": [{"image": "app:does-not-exist"}]}});
        let b = PodBehaviour::of(&pod);
        assert!(b.never_ready && b.image_pull_failure && !b.crash_loop);
        assert_eq!(b.error_rate, 0.25);
        assert_eq!(b.completion, None);
        let job_pod = json!({"metadata": {"annotations": {EXIT_CODE: "3", RUN_TIME: "2s"}}, "spec": {"restartPolicy": "Never"}});
        assert_eq!(
            PodBehaviour::of(&job_pod).completion,
            Some((Duration::from_secs(2), 3))
        );
    }
}
