//! Fault injection and request accounting for the HTTP API: tests and benchmarks say which failures to
//! inject, and read back exactly which requests a client made.

use std::collections::BTreeMap;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use crate::apiserver::ApiError;

/// Error responses injected at a rate for requests matching a verb and resource (absent matches all).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ErrorRule {
    /// `get`, `list`, `watch`, `create`, `update`, `patch`, `delete`, `deletecollection`.
    pub verb: Option<String>,
    /// The plural, with the subresource when there is one: `rollouts`, `rollouts/status`.
    pub resource: Option<String>,
    /// 500, 503, 429 (carries `Retry-After`) or 410 (`Gone`: to a watch, its resourceVersion is too old,
    /// so the client lists again).
    pub code: u16,
    /// Fraction of matching requests that fail, 0.0 to 1.0.
    pub rate: f64,
    pub retry_after_seconds: Option<u64>,
}

/// Everything that can go wrong on purpose.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Faults {
    pub errors: Vec<ErrorRule>,
    /// Added to every request before it is served.
    pub latency_ms: u64,
    /// Watches end after this many events.
    pub watch_max_events: Option<u64>,
    /// Watches end after this many seconds.
    pub watch_max_seconds: Option<f64>,
    /// The next N watches that resume from a resourceVersion get `410 Gone`.
    pub gone_on_resume: u64,
    /// Fraction of create, update and patch requests answered `409 Conflict`.
    pub conflict_rate: f64,
}

/// One line of the request accounting.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RequestKey {
    pub verb: String,
    /// The API group (`""` for the core group), so `events` of `v1` and of `events.k8s.io` stay apart.
    #[serde(default)]
    pub group: String,
    pub resource: String,
    pub code: u16,
    pub user_agent: String,
}

/// A counted line, as the admin endpoint reports it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RequestCount {
    #[serde(flatten)]
    pub key: RequestKey,
    pub count: u64,
}

pub const WRITE_VERBS: &[&str] = &["create", "update", "patch", "delete", "deletecollection"];

#[derive(Default)]
pub struct FaultState {
    faults: Mutex<Faults>,
    counts: Mutex<BTreeMap<RequestKey, u64>>,
}

impl FaultState {
    pub fn set(&self, faults: Faults) {
        *lock(&self.faults) = faults;
    }

    pub fn get(&self) -> Faults {
        lock(&self.faults).clone()
    }

    /// The error to answer instead of serving this request, if one is due.
    pub fn injected_error(
        &self,
        verb: &str,
        resource: &str,
        resuming_watch: bool,
    ) -> Option<ApiError> {
        let mut faults = lock(&self.faults);
        if resuming_watch && faults.gone_on_resume > 0 {
            faults.gone_on_resume -= 1;
            return Some(ApiError::gone(
                "too old resource version (injected by kubesim)",
            ));
        }
        for rule in &faults.errors {
            let verb_matches = rule.verb.as_deref().is_none_or(|v| v == verb);
            let resource_matches = rule.resource.as_deref().is_none_or(|r| r == resource);
            if verb_matches && resource_matches && fastrand::f64() < rule.rate {
                return Some(match rule.code {
                    429 => ApiError::too_many_requests(rule.retry_after_seconds.unwrap_or(1)),
                    503 => ApiError::unavailable("injected by kubesim"),
                    410 => ApiError::gone("too old resource version (injected by kubesim)"),
                    _ => ApiError::internal("injected by kubesim"),
                });
            }
        }
        None
    }

    pub fn injected_conflict(&self, verb: &str) -> bool {
        let rate = lock(&self.faults).conflict_rate;
        matches!(verb, "create" | "update" | "patch") && rate > 0.0 && fastrand::f64() < rate
    }

    pub fn latency(&self) -> std::time::Duration {
        std::time::Duration::from_millis(lock(&self.faults).latency_ms)
    }

    pub fn count(&self, key: RequestKey) {
        *lock(&self.counts).entry(key).or_default() += 1;
    }

    pub fn counts(&self) -> Vec<RequestCount> {
        lock(&self.counts)
            .iter()
            .map(|(key, count)| RequestCount {
                key: key.clone(),
                count: *count,
            })
            .collect()
    }

    pub fn reset_counts(&self) {
        lock(&self.counts).clear();
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
