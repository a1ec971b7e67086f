//! Providers: where measurements come from (reference 6.9). This is the only I/O in the analysis room.
//! A provider turns a metric into a [`Reading`]; [`measurement`] turns the reading into a measurement
//! with the metric's conditions, purely.

pub mod job;
pub mod jsonpath;
pub mod prometheus;
pub mod web;

use std::collections::BTreeMap;
use std::sync::Once;

use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use super::condition::{self, MetricValue};
use crate::api::AnalysisPhase;
use crate::api::analysis::{Measurement, Metric};

/// What a provider saw.
#[derive(Clone, Debug, PartialEq)]
pub enum Reading {
    /// A result for the metric's conditions to judge, and its text for `measurement.value`.
    Value {
        result: MetricValue,
        text: String,
        metadata: BTreeMap<String, String>,
    },
    /// A phase the provider decided itself (a Job's outcome), possibly still running until `resume_at`.
    Phase {
        phase: AnalysisPhase,
        message: String,
        metadata: BTreeMap<String, String>,
        resume_at: Option<Timestamp>,
    },
    /// The provider could not measure; the measurement is `Error` with this message.
    Error(String),
}

/// The measurement a reading makes, judged with the metric's success and failure conditions.
pub fn measurement(
    metric: &Metric,
    reading: Reading,
    started: Timestamp,
    now: Timestamp,
) -> Measurement {
    let mut measurement = Measurement {
        started_at: Some(Time(whole(started))),
        finished_at: Some(Time(whole(now))),
        ..Default::default()
    };
    match reading {
        Reading::Value {
            result,
            text,
            metadata,
        } => {
            measurement.value = text;
            measurement.metadata = metadata;
            match condition::evaluate(
                &result,
                &metric.success_condition,
                &metric.failure_condition,
            ) {
                Ok(phase) => measurement.phase = phase,
                Err(message) => {
                    measurement.phase = AnalysisPhase::Error;
                    measurement.message = message;
                }
            }
        }
        Reading::Phase {
            phase,
            message,
            metadata,
            resume_at,
        } => {
            measurement.phase = phase;
            measurement.message = message;
            measurement.metadata = metadata;
            if !phase.is_completed() {
                measurement.finished_at = None;
                measurement.resume_at = resume_at.map(|t| Time(whole(t)));
            }
        }
        Reading::Error(message) => {
            measurement.phase = AnalysisPhase::Error;
            measurement.message = message;
        }
    }
    measurement
}

fn whole(t: Timestamp) -> Timestamp {
    Timestamp::from_second(t.as_second()).unwrap_or(t)
}

/// The names of the providers a metric uses that Ramp cannot measure with.
pub fn unsupported(metric: &Metric) -> Option<String> {
    let names = metric.provider.names();
    match names.as_slice() {
        ["prometheus"] | ["web"] | ["job"] => None,
        [] => Some(format!("metric \"{}\" has no provider", metric.name)),
        [one] => Some(format!(
            "metric \"{}\": the {one} provider is not supported by Ramp; use prometheus, web or job",
            metric.name
        )),
        _ => Some(format!(
            "metric \"{}\" names more than one provider ({}); use exactly one",
            metric.name,
            names.join(", ")
        )),
    }
}

/// Makes ring rustls's process-wide crypto provider, so HTTP clients built here agree with kube's.
pub fn install_crypto_provider() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // Fails only when another provider was installed first, which serves as well.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// An HTTP client for providers; `insecure` skips certificate checks, as the metric asks.
pub fn http_client(insecure: bool) -> Result<reqwest::Client, String> {
    install_crypto_provider();
    reqwest::Client::builder()
        .tls_danger_accept_invalid_certs(insecure)
        .build()
        .map_err(|e| format!("cannot build an HTTP client: {e}"))
}

/// A JSON value as conditions see it.
pub fn condition_value(value: &serde_json::Value) -> MetricValue {
    condition::from_json(value)
}

/// Formats a float as Go's `strconv.FormatFloat(v, 'f', -1, 64)` does.
pub fn go_float(value: f64) -> String {
    if value.is_nan() {
        "NaN".into()
    } else if value == f64::INFINITY {
        "+Inf".into()
    } else if value == f64::NEG_INFINITY {
        "-Inf".into()
    } else {
        value.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::analysis::MetricProvider;

    fn metric(success: &str) -> Metric {
        Metric {
            name: "m".into(),
            success_condition: success.into(),
            provider: MetricProvider::default(),
            ..Default::default()
        }
    }

    #[test]
    fn readings_become_measurements() {
        let t = Timestamp::from_second(1_000).unwrap();
        let value = |v: f64| Reading::Value {
            result: expr::Value::Float(v),
            text: go_float(v),
            metadata: BTreeMap::new(),
        };
        let ok = measurement(&metric("result < 1"), value(0.5), t, t);
        assert_eq!(
            (ok.phase, ok.value.as_str()),
            (AnalysisPhase::Successful, "0.5")
        );
        assert!(ok.finished_at.is_some());
        let bad = measurement(&metric("result < 1"), value(2.0), t, t);
        assert_eq!(bad.phase, AnalysisPhase::Failed);
        let error = measurement(&metric(""), Reading::Error("boom".into()), t, t);
        assert_eq!(
            (error.phase, error.message.as_str()),
            (AnalysisPhase::Error, "boom")
        );
        let running = measurement(
            &metric(""),
            Reading::Phase {
                phase: AnalysisPhase::Running,
                message: String::new(),
                metadata: BTreeMap::new(),
                resume_at: Some(t),
            },
            t,
            t,
        );
        assert!(running.finished_at.is_none() && running.resume_at.is_some());
    }

    #[test]
    fn floats_print_as_go_does() {
        assert_eq!(go_float(0.99), "0.99");
        assert_eq!(go_float(1.0), "1");
        assert_eq!(go_float(f64::NAN), "NaN");
        assert_eq!(go_float(f64::INFINITY), "+Inf");
        assert_eq!(go_float(0.0000001), "0.0000001");
    }
}
